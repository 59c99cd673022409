// Inputs that tell one rounding from two when f64 and integers are narrowed to f16 and bf16, with
// their expected bits worked out from the format alone (no conversion code): for every pair of
// neighbouring finite values v < w of the target (and the largest value with infinity), the
// midpoint rounds to the one with the even pattern, anything above it to w, anything below to v.
// Rounded through f32 to nearest twice, the value just above a midpoint lands on it (f32 cannot
// hold the difference) and ties to even: one unit off at every other pair.
// Used by tests/conformance/test_numerics.cpp (every device) and tests/test_cuda_reduce_host.cpp
// (the CUDA prelude compiled for the host).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/half.hpp"

namespace kiln::narrowing {

struct FloatCase {
  double x;
  std::uint16_t want;
};

struct IntCase {
  std::uint64_t magnitude;
  bool negative;
  std::uint16_t want;
};

inline double value_of(bool bf16, std::uint32_t bits) {
  return bf16 ? double(bf16_bits_to_f32(std::uint16_t(bits))) : double(f16_bits_to_f32(std::uint16_t(bits)));
}

// Each midpoint, the doubles next to it on both sides, of both signs: 6 cases per pair.
inline std::vector<FloatCase> float_cases(bool bf16) {
  const std::uint32_t inf = bf16 ? 0x7F80u : 0x7C00u;
  std::vector<FloatCase> cases;
  for (std::uint32_t b = 0; b < inf; ++b) {
    const double v = value_of(bf16, b);
    // Past the largest value the next step is as wide as the last one (the overflow threshold).
    const double mid = b + 1 == inf ? v + (v - value_of(bf16, b - 1)) / 2 : (v + value_of(bf16, b + 1)) / 2;
    const std::uint16_t even = std::uint16_t(b & 1u ? b + 1 : b);
    for (std::uint16_t sign : {std::uint16_t(0), std::uint16_t(0x8000)}) {
      const double s = sign ? -1.0 : 1.0;
      cases.push_back({s * mid, std::uint16_t(sign | even)});
      cases.push_back({s * std::nextafter(mid, INFINITY), std::uint16_t(sign | (b + 1))});
      cases.push_back({s * std::nextafter(mid, 0.0), std::uint16_t(sign | b)});
    }
  }
  // Past f32's range (the f32 step gives FLT_MAX with its last bit set, then infinity; the last is
  // FLT_MAX plus half its step, where f32's own rounding ties), and below f32's smallest subnormal
  // (the f32 step gives that subnormal, then 0 or -0).
  for (double big : {1e39, 1e300, 3.4028235677973366e38})
    for (double s : {1.0, -1.0}) cases.push_back({s * big, std::uint16_t((s < 0 ? 0x8000u : 0u) | inf)});
  for (double tiny : {1e-300, 4.9406564584124654e-324, 1e-46})
    for (double s : {1.0, -1.0}) cases.push_back({s * tiny, std::uint16_t(s < 0 ? 0x8000 : 0)});
  return cases;
}

// To bf16 from an integer of |bits| bits (16 or more: the range ends below assume 2^bits - 1 is
// not a bf16 value): each midpoint between neighbouring bf16 integers (from
// 256 on, where they are 2 or more apart) and the integers next to it, within the source's range;
// negated too for signed sources.
inline std::vector<IntCase> int_cases(int bits, bool is_signed) {
  const long double top = std::ldexp(1.0L, is_signed ? bits - 1 : bits);  // first magnitude out of range
  std::vector<IntCase> cases;
  for (std::uint32_t b = 0x4380u; b < 0x7F80u; ++b) {  // 0x4380: 256
    const long double v = value_of(true, b), w = value_of(true, b + 1);
    if (w >= top) break;
    const std::uint64_t vm = std::uint64_t(v), mid = vm + (std::uint64_t(w) - vm) / 2;
    const std::uint16_t even = std::uint16_t(b & 1u ? b + 1 : b);
    for (bool negative : {false, true}) {
      if (negative && !is_signed) continue;
      const std::uint16_t sign = negative ? 0x8000 : 0;
      cases.push_back({mid, negative, std::uint16_t(sign | even)});
      cases.push_back({mid + 1, negative, std::uint16_t(sign | (b + 1))});
      cases.push_back({mid - 1, negative, std::uint16_t(sign | b)});
    }
  }
  // The ends of the range: -2^(bits-1) exactly; 2^bits - 1 rounds up to 2^bits (a power of two
  // past the last bf16 step of the range: 0x5F80 is 2^64, 0x4F80 2^32).
  const std::uint16_t pow2 = std::uint16_t((127 + (is_signed ? bits - 1 : bits)) << 7);
  if (is_signed) {
    cases.push_back({std::uint64_t(1) << (bits - 1), true, std::uint16_t(0x8000 | pow2)});
    cases.push_back({(std::uint64_t(1) << (bits - 1)) - 1, false, pow2});  // 2^(bits-1) - 1
  } else {
    cases.push_back({bits == 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << bits) - 1, false, pow2});
  }
  return cases;
}

}  // namespace kiln::narrowing
