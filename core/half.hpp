// Bit-exact conversions between f32 and the 16-bit float formats (round to nearest even, NaN
// stays NaN, overflow goes to infinity), and round-to-odd steps that take f64 and 64-bit integers
// to them with one rounding. The same rules are written in the CUDA and GLSL preludes.
#pragma once

#include <bit>
#include <cstdint>
#include <type_traits>

namespace kiln {

inline std::uint16_t f32_to_f16_bits(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return std::uint16_t(sign | 0x7E00u);                 // NaN
  if (abs >= 0x477FF000u) return std::uint16_t(sign | 0x7C00u);                // overflow / Inf
  if (abs < 0x38800000u) {                                                      // subnormal or 0
    if (abs < 0x33000000u) return std::uint16_t(sign);                          // < half of min
    const std::uint32_t e = abs >> 23;
    const std::uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
    // value = m * 2^(e-150); in units of the f16 subnormal step 2^-24 that is m >> (126 - e).
    const std::uint32_t shift = 126 - e;
    const std::uint32_t r = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1);
    const std::uint32_t half = 1u << (shift - 1);
    std::uint32_t out = r + ((rem > half || (rem == half && (r & 1))) ? 1 : 0);
    return std::uint16_t(sign | out);
  }
  // normal: rebias exponent 127 -> 15, drop 13 mantissa bits with RNE
  std::uint32_t v = abs - 0x38000000u;  // exponent - 112
  v += 0x0FFFu + ((v >> 13) & 1u);
  return std::uint16_t(sign | (v >> 13));
}

inline float f16_bits_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu;
  const std::uint32_t m = h & 0x3FFu;
  if (e == 0) {
    const float v = float(m) * (1.0f / 16777216.0f);  // m * 2^-24
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7F800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112) << 23) | (m << 13));
}

inline std::uint16_t f32_to_bf16_bits(float f) {
  std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return std::uint16_t((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7FFFu + ((x >> 16) & 1u);
  return std::uint16_t(x >> 16);
}

inline float bf16_bits_to_f32(std::uint16_t b) {
  return std::bit_cast<float>(std::uint32_t(b) << 16);
}

// Round to odd, to f32: the f32 next to |d| toward zero, its last bit set when that is not |d|
// (NaN and infinities as they are). Rounding the result to f16 or bf16 (nearest even) rounds |d|
// once, as XLA does: f32 keeps at least two bits more than either, and the set last bit stands for
// what was cut. Two roundings to nearest (f64 -> f32 -> bf16) are one unit off where the first
// lands on a midpoint of the second: 1 + 2^-8 + 2^-40 gives 1 for bf16 that way, 1 + 2^-7 once.
template <class F>
  requires std::is_floating_point_v<F>
inline float to_f32_odd(F d) {
  const float f = float(d);
  if (F(f) == d || d != d) return f;
  std::uint32_t b = std::bit_cast<std::uint32_t>(f);
  if ((d > 0) == (F(f) > d)) --b;  // rounded away from zero: the neighbour toward it
  return std::bit_cast<float>(b | 1u);
}
inline float f64_to_f32_odd(double d) { return to_f32_odd(d); }

// f64 (or long double: also once, straight to f32) to f16 and bf16 bits, rounded once to nearest even.
template <class F>
inline std::uint16_t to_f16_bits(F d) { return f32_to_f16_bits(to_f32_odd(d)); }
template <class F>
inline std::uint16_t to_bf16_bits(F d) { return f32_to_bf16_bits(to_f32_odd(d)); }

// Round to odd, to f32, from an integer's magnitude |m| (exact below 2^24).
inline float u64_to_f32_odd(std::uint64_t m) {
  if (m < (std::uint64_t(1) << 24)) return float(m);
  const int shift = 40 - std::countl_zero(m);  // the bits past the 24 an f32 keeps
  const std::uint64_t kept = (m >> shift) | ((m & ((std::uint64_t(1) << shift) - 1)) != 0 ? 1u : 0u);
  return float(kept) * std::bit_cast<float>(std::uint32_t(127 + shift) << 23);  // exact: 2^shift
}

inline float s64_to_f32_odd(std::int64_t v) {
  const float f = u64_to_f32_odd(v < 0 ? 0 - std::uint64_t(v) : std::uint64_t(v));
  return v < 0 ? -f : f;
}

// Host types for f16 and bf16 elements (Tensor::from_vector / to_vector): the 16-bit pattern, built
// from a number rounded once to nearest even (as as_type), and read back as a float exactly.
template <std::uint16_t (*ToBits)(float), float (*FromBits)(std::uint16_t)>
struct Float16Storage {
  std::uint16_t bits = 0;
  Float16Storage() = default;
  explicit Float16Storage(float f) : bits(ToBits(f)) {}
  // double, long double and integers: through f32 by round to odd (once, from the value given).
  template <class T>
    requires(std::is_floating_point_v<T> && !std::is_same_v<T, float>)
  explicit Float16Storage(T d) : bits(ToBits(to_f32_odd(d))) {}
  template <class T>
    requires std::is_integral_v<T>
  explicit Float16Storage(T i)
      : bits(ToBits(std::is_signed_v<T> ? s64_to_f32_odd(std::int64_t(i)) : u64_to_f32_odd(std::uint64_t(i)))) {}
  static Float16Storage from_bits(std::uint16_t b) {
    Float16Storage h;
    h.bits = b;
    return h;
  }
  explicit operator float() const { return FromBits(bits); }
};
using half = Float16Storage<f32_to_f16_bits, f16_bits_to_f32>;
using bfloat16 = Float16Storage<f32_to_bf16_bits, bf16_bits_to_f32>;
static_assert(sizeof(half) == 2 && sizeof(bfloat16) == 2);

}  // namespace kiln
