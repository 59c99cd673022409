// Element types of Kiln tensors and kernels, and Nx's type promotion.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace kiln {

// pred is a boolean stored as one byte holding 0 or 1.
enum class DType : std::uint8_t { pred, s8, s16, s32, s64, u8, u16, u32, u64, f16, bf16, f32, f64 };

inline constexpr int kNumDTypes = 13;
inline constexpr std::array<DType, kNumDTypes> kAllDTypes = {
    DType::pred, DType::s8,  DType::s16, DType::s32,  DType::s64, DType::u8, DType::u16,
    DType::u32,  DType::u64, DType::f16, DType::bf16, DType::f32, DType::f64};

std::string_view dtype_name(DType t);
std::optional<DType> parse_dtype(std::string_view name);
// Every dtype's name (for "did you mean" suggestions).
std::span<const std::string_view> dtype_names();

std::size_t dtype_size(DType t);
inline int dtype_bits(DType t) { return t == DType::pred ? 1 : int(dtype_size(t) * 8); }
inline bool is_float(DType t) { return t >= DType::f16; }
inline bool is_signed_int(DType t) { return t >= DType::s8 && t <= DType::s64; }
inline bool is_unsigned_int(DType t) { return t >= DType::u8 && t <= DType::u64; }
// Integers in the narrow sense: signed or unsigned, not pred.
inline bool is_int(DType t) { return is_signed_int(t) || is_unsigned_int(t); }

// Nx.Type.merge: the type two operands are converted to before a binary op.
// pred behaves as u8 except that pred with pred stays pred.
DType promote(DType a, DType b);
// Nx.Type.merge_number for an integer literal (|negative| and |magnitude|) meeting integer dtype
// |t| (pred counts as u8): the dtype the literal takes, which then promotes with |t| — |t| itself
// when it holds the value, else the smallest wider one (s8 + 300 is s16, u8 + -1 is s16); s64 when
// none does (a signed operand and a value past 2^63 - 1: wrapped to it, as Nx's fallback).
DType merge_integer_literal(DType t, bool negative, std::uint64_t magnitude);
// Nx.Type.to_floating: integers and pred become f32, floats stay.
DType to_floating(DType t);

// The arithmetic type kernels compute a value of dtype |t| in (all three backends):
//   u32 for pred/u8/u16/u32, s32 for s8/s16/s32, s64, u64, f32 for f16/bf16/f32, f64.
// Narrow results are wrapped (integers) or rounded (f16, bf16) back to |t| after every op.
DType compute_dtype(DType t);

}  // namespace kiln
