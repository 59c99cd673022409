#include "core/dtype.hpp"

#include <algorithm>
#include <vector>

namespace kiln {

namespace {
constexpr std::array<std::string_view, kNumDTypes> kNames = {
    "pred", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f16", "bf16", "f32", "f64"};
constexpr std::array<std::size_t, kNumDTypes> kSizes = {1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 2, 4, 8};

DType sized(bool is_signed, int bits) {
  switch (bits) {
    case 8: return is_signed ? DType::s8 : DType::u8;
    case 16: return is_signed ? DType::s16 : DType::u16;
    case 32: return is_signed ? DType::s32 : DType::u32;
    default: return is_signed ? DType::s64 : DType::u64;
  }
}
}  // namespace

std::string_view dtype_name(DType t) { return kNames[static_cast<int>(t)]; }

std::span<const std::string_view> dtype_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (DType d : kAllDTypes) v.push_back(dtype_name(d));
    return v;
  }();
  return names;
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (int i = 0; i < kNumDTypes; ++i)
    if (kNames[i] == name) return static_cast<DType>(i);
  return std::nullopt;
}

std::size_t dtype_size(DType t) { return kSizes[static_cast<int>(t)]; }

DType promote(DType a, DType b) {
  if (a == b) return a;
  if (a == DType::pred) a = DType::u8;
  if (b == DType::pred) b = DType::u8;
  if (a == b) return a;
  if (is_float(a) && is_float(b)) {
    if ((a == DType::f16 && b == DType::bf16) || (a == DType::bf16 && b == DType::f16)) return DType::f32;
    return dtype_size(a) >= dtype_size(b) ? a : b;
  }
  if (is_float(a)) return a;
  if (is_float(b)) return b;
  const int ba = dtype_bits(a), bb = dtype_bits(b);
  if (is_signed_int(a) == is_signed_int(b)) return sized(is_signed_int(a), std::max(ba, bb));
  // One signed, one unsigned: the signed type must hold every unsigned value (capped at 64 bits).
  const int ubits = is_unsigned_int(a) ? ba : bb;
  const int sbits = is_signed_int(a) ? ba : bb;
  return sized(true, std::max(std::min(ubits * 2, 64), sbits));
}

DType merge_integer_literal(DType t, bool negative, std::uint64_t magnitude) {
  if (t == DType::pred) t = DType::u8;
  auto unsigned_bits = [](std::uint64_t v) { return v <= 0xFF ? 8 : v <= 0xFFFF ? 16 : v <= 0xFFFFFFFFull ? 32 : 64; };
  // The bits of a signed dtype holding -magnitude (negative) or magnitude; 64 past them all (Nx's
  // signed_size falls back to 64 too).
  auto signed_bits = [](bool neg, std::uint64_t m) {
    const std::uint64_t v = neg ? m - 1 : m;  // -2^(b-1) fits b bits as 2^(b-1) - 1 does
    if (neg && m == 0) return 8;
    return v <= 0x7F ? 8 : v <= 0x7FFF ? 16 : v <= 0x7FFFFFFFull ? 32 : 64;
  };
  const int bits = dtype_bits(t);
  if (is_unsigned_int(t) && !negative) return sized(false, std::max(bits, unsigned_bits(magnitude)));
  return sized(true, std::max(is_unsigned_int(t) ? std::min(2 * bits, 64) : bits, signed_bits(negative, magnitude)));
}

DType to_floating(DType t) { return is_float(t) ? t : DType::f32; }

DType compute_dtype(DType t) {
  switch (t) {
    case DType::pred: case DType::u8: case DType::u16: case DType::u32: return DType::u32;
    case DType::s8: case DType::s16: case DType::s32: return DType::s32;
    case DType::f16: case DType::bf16: case DType::f32: return DType::f32;
    default: return t;
  }
}

}  // namespace kiln
