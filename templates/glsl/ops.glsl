// The GLSL prelude: every elementwise op of the op table (codegen/ops.cpp) as kiln_<name>, with the
// semantics of the CPU reference (codegen/eval.cpp); see docs/semantics.md. Inlined first into
// every emitted shader, after the emitter's defines:
//   KILN_NEED_INT8 / KILN_NEED_INT16  the kernel stores 8-/16-bit elements (enables the extensions)
//   KILN_NEED_FLOAT64                 the kernel computes in double (compiles the f64 overloads)
//   KILN_USE_F32, KILN_USE_S32, KILN_USE_U32, KILN_USE_S64, KILN_USE_U64
//                                     some value is computed in float / int / uint / int64 / uint64
//   KILN_USE_F32_FUNCS                the kernel calls an f32 transcendental function
//   KILN_USE_CASTS                    the kernel converts between dtypes
// Sections nobody uses are skipped, which keeps shader compilation fast.
// A pure-f32 kernel needs Int64 only (addresses), never Int8/Int16/Float16/Float64.
//
// Compute types: uint for pred/u8/u16/u32, int for s8/s16/s32, int64_t, uint64_t, float for
// f16/bf16/f32, double. Integer arithmetic wraps (SPIR-V integer ops are modular); everything GLSL
// leaves undefined (division by 0, shifts >= width, % of negatives, pow/log/sqrt out of domain,
// atan(0, 0), NaN handling of min/max/round) is decided here explicitly. Float temporaries that
// must not be contracted into fma are `precise`. GLSL has no double-precision transcendental
// functions: those ops are refused for f64 (target_supports) and exist only for float here.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_control_flow_attributes : enable
#ifdef KILN_NEED_INT8
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#endif
#ifdef KILN_NEED_INT16
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#endif

// ---- f16 / bf16 bit conversions (core/half.hpp, round to nearest even) ----------------------
uint kiln_f32_to_f16_bits(float f) {
  uint x = floatBitsToUint(f);
  uint sign = (x >> 16) & 0x8000u;
  uint a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u;   // NaN
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // overflow / Inf
  if (a < 0x38800000u) {                        // f16 subnormal or zero
    if (a < 0x33000000u) return sign;
    uint e = a >> 23;
    uint m = (a & 0x7FFFFFu) | 0x800000u;
    uint shift = 126u - e;
    uint r = m >> shift;
    uint rem = m & ((1u << shift) - 1u);
    uint half_ = 1u << (shift - 1u);
    return sign | (r + ((rem > half_ || (rem == half_ && (r & 1u) != 0u)) ? 1u : 0u));
  }
  uint v = a - 0x38000000u;
  v += 0x0FFFu + ((v >> 13) & 1u);
  return sign | (v >> 13);
}
float kiln_f16_bits_to_f32(uint h) {
  uint sign = (h & 0x8000u) << 16;
  uint e = (h >> 10) & 0x1Fu;
  uint m = h & 0x3FFu;
  if (e == 0u) {  // subnormal: m * 2^-24, a normal f32 (exact)
    if (m == 0u) return uintBitsToFloat(sign);
    int msb = findMSB(m);  // m * 2^-24 = 1.f * 2^(msb - 24)
    return uintBitsToFloat(sign | (uint(msb + 103) << 23) | ((m << uint(23 - msb)) & 0x7FFFFFu));
  }
  if (e == 31u) return uintBitsToFloat(sign | 0x7F800000u | (m << 13));
  return uintBitsToFloat(sign | ((e + 112u) << 23) | (m << 13));
}
uint kiln_f32_to_bf16_bits(float f) {
  uint x = floatBitsToUint(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return ((x >> 16) | 0x40u) & 0xFFFFu;  // quiet NaN
  x += 0x7FFFu + ((x >> 16) & 1u);
  return x >> 16;
}
float kiln_bf16_bits_to_f32(uint b) { return uintBitsToFloat(b << 16); }

// ---- narrowing after every op ------------------------------------------------------------------
uint kiln_narrow_pred(uint x) { return x & 1u; }
int kiln_narrow_s8(int x) { return bitfieldExtract(x, 0, 8); }
int kiln_narrow_s16(int x) { return bitfieldExtract(x, 0, 16); }
uint kiln_narrow_u8(uint x) { return x & 0xFFu; }
uint kiln_narrow_u16(uint x) { return x & 0xFFFFu; }
float kiln_narrow_f16(float x) { return kiln_f16_bits_to_f32(kiln_f32_to_f16_bits(x)); }
float kiln_narrow_bf16(float x) { return kiln_bf16_bits_to_f32(kiln_f32_to_bf16_bits(x)); }

// ---- float helpers -----------------------------------------------------------------------------
const float kiln_kPi = 3.14159265358979323846;
const float kiln_kPi_2 = 1.57079632679489661923;
const float kiln_kLn2 = 0.693147180559945309417;
bool kiln_isnan(float x) { return (floatBitsToUint(x) & 0x7FFFFFFFu) > 0x7F800000u; }
bool kiln_isinf(float x) { return (floatBitsToUint(x) & 0x7FFFFFFFu) == 0x7F800000u; }
bool kiln_signbit(float x) { return (floatBitsToUint(x) >> 31) != 0u; }
float kiln_nan_f32() { return uintBitsToFloat(0x7FC00000u); }
float kiln_inf_f32() { return uintBitsToFloat(0x7F800000u); }
float kiln_copysign(float m, float s) { return uintBitsToFloat((floatBitsToUint(m) & 0x7FFFFFFFu) | (floatBitsToUint(s) & 0x80000000u)); }

// ---- float ops common to f32 and f64 ------------------------------------------------------------
#define KILN_FLOAT_COMMON(T)                                                                        \
  T kiln_add(T x, T y) { precise T r = x + y; return r; }                                           \
  T kiln_subtract(T x, T y) { precise T r = x - y; return r; }                                      \
  T kiln_multiply(T x, T y) { precise T r = x * y; return r; }                                      \
  T kiln_negate(T x) { return -x; }                                                                 \
  T kiln_abs(T x) { return abs(x); }                                                                \
  T kiln_ceil(T x) { return ceil(x); }                                                              \
  T kiln_floor(T x) { return floor(x); }                                                            \
  T kiln_sign(T x) { return (kiln_isnan(x) || x == T(0)) ? x : (x > T(0) ? T(1) : T(-1)); }         \
  /* halves away from zero; x - trunc(x) is exact */                                               \
  T kiln_round(T x) {                                                                               \
    precise T t = trunc(x);                                                                         \
    precise T d = abs(x - t);                                                                       \
    return d >= T(0.5) ? t + sign(x) : t;                                                           \
  }                                                                                                 \
  /* NaN propagates; -0 orders below +0 (XLA), so the result never depends on the operand order */ \
  T kiln_min(T x, T y) {                                                                            \
    return (kiln_isnan(x) || kiln_isnan(y)) ? x + y : (x < y || (x == y && kiln_signbit(x))) ? x : y; \
  }                                                                                                 \
  T kiln_max(T x, T y) {                                                                            \
    return (kiln_isnan(x) || kiln_isnan(y)) ? x + y : (x > y || (x == y && !kiln_signbit(x))) ? x : y; \
  }                                                                                                 \
  uint kiln_is_nan(T x) { return kiln_isnan(x) ? 1u : 0u; }                                         \
  uint kiln_is_infinity(T x) { return kiln_isinf(x) ? 1u : 0u; }                                    \
  T kiln_sqrt(T x) { return x < T(0) ? T(kiln_nan_f32()) : sqrt(x); }                               \
  T kiln_rsqrt(T x) { precise T r = T(1) / kiln_sqrt(x); return r; }                               \
  uint kiln_equal(T x, T y) { return x == y ? 1u : 0u; }                                            \
  uint kiln_not_equal(T x, T y) { return !(x == y) ? 1u : 0u; }                                     \
  uint kiln_greater(T x, T y) { return x > y ? 1u : 0u; }                                           \
  uint kiln_less(T x, T y) { return x < y ? 1u : 0u; }                                              \
  uint kiln_greater_equal(T x, T y) { return x >= y ? 1u : 0u; }                                    \
  uint kiln_less_equal(T x, T y) { return x <= y ? 1u : 0u; }                                       \
  T kiln_select(uint c, T x, T y) { return c != 0u ? x : y; }

#ifdef KILN_USE_F32
KILN_FLOAT_COMMON(float)

// NVIDIA's Vulkan compiler divides as x * (1 / y): for |y| > 2^126 the reciprocal is subnormal and
// flushed to zero (H100, driver 580.159: inf / FLT_MAX gave NaN, 1 / FLT_MAX gave 0). There the
// divisor is scaled by 2^-4 (exact) and the quotient scaled back, which rounds a subnormal quotient
// once. (The conformance case divide.f32.specials is the regression test; lavapipe divides exactly.)
float kiln_divide(float x, float y) {
  if (abs(y) > 8.5070592e+37) { precise float q = x / (y * 0.0625); precise float r = q * 0.0625; return r; }
  precise float r = x / y;
  return r;
}

// Exact fmod (the result is always representable): shift-and-subtract on the significands, as in
// musl's fmodf. GLSL's mod() is x - y * floor(x / y), neither exact nor truncating.
float kiln_remainder(float x, float y) {
  uint ux = floatBitsToUint(x), uy = floatBitsToUint(y);
  int ex = int((ux >> 23) & 0xFFu), ey = int((uy >> 23) & 0xFFu);
  uint sx = ux & 0x80000000u;
  if ((uy << 1) == 0u || kiln_isnan(y) || ex == 0xFF) return kiln_nan_f32();
  if ((ux << 1) <= (uy << 1)) return (ux << 1) == (uy << 1) ? uintBitsToFloat(sx) : x;
  if (ex == 0) {
    for (uint i = ux << 9; (i >> 31) == 0u; i <<= 1) ex--;
    ux <<= uint(1 - ex);
  } else {
    ux = (ux & 0x7FFFFFu) | 0x800000u;
  }
  if (ey == 0) {
    for (uint i = uy << 9; (i >> 31) == 0u; i <<= 1) ey--;
    uy <<= uint(1 - ey);
  } else {
    uy = (uy & 0x7FFFFFu) | 0x800000u;
  }
  for (; ex > ey; ex--) {
    uint i = ux - uy;
    if ((i >> 31) == 0u) {
      if (i == 0u) return uintBitsToFloat(sx);
      ux = i;
    }
    ux <<= 1;
  }
  uint i = ux - uy;
  if ((i >> 31) == 0u) {
    if (i == 0u) return uintBitsToFloat(sx);
    ux = i;
  }
  for (; (ux >> 23) == 0u; ux <<= 1) ex--;
  if (ex > 0) {
    ux = (ux - 0x800000u) | (uint(ex) << 23);
  } else {
    ux >>= uint(1 - ex);
  }
  return uintBitsToFloat(ux | sx);
}

#endif  // KILN_USE_F32

// ---- f32 transcendental functions -----------------------------------------------------------------
#ifdef KILN_USE_F32_FUNCS
// Written out where GLSL has none (expm1, log1p, cbrt, erf, erfc, erf_inv) or where its
// precision rules are too loose for the op table tolerances (sin/cos absolute error 2^-11, atan
// 4096 ulp, asinh/acosh/atanh/tanh by their textbook formulas, which cancel or overflow).
// exp: Cody-Waite reduction x = k ln2 + r (|r| <= ln2/2; ln2 in two parts, k * hi exact for |k| <
// 2^8), a degree-7 polynomial for e^r (truncation < 6e-9 relative), then 2^k in two steps so that
// results below the normal range round once (the builtin lost 7.6e6 ulp at exp(-87.44), a
// subnormal result, and its relative error grew with |x|: 52 ulp at exp(88.7)).
float kiln_exp(float x) {
  if (kiln_isnan(x)) return x;
  if (x > 89.0) return kiln_inf_f32();  // e^x > FLT_MAX (closer in, the last multiply overflows)
  if (x < -104.0) return 0.0;           // e^x < 2^-150 / 1.03 (closer in, the last multiply rounds)
  const float k = roundEven(x * 1.44269504088896341);
  // k2 == k, but not to the compiler: lavapipe factored (x - k*hi) - k*lo into x - k*(hi + lo),
  // one rounded ln2, despite `precise` (55 ulp at exp(-72.3)); with two multipliers it cannot.
  const float k2 = float(bitfieldExtract(int(k), 0, 16));  // |k| <= 150
  precise float r = fma(-k2, 1.42860682030941723e-06, fma(-k, 0.693145751953125, x));
  precise float p = 1.0 / 5040.0;
  p = 1.0 / 720.0 + r * p;
  p = 1.0 / 120.0 + r * p;
  p = 1.0 / 24.0 + r * p;
  p = 1.0 / 6.0 + r * p;
  p = 0.5 + r * p;
  p = 1.0 + r * p;
  p = 1.0 + r * p;
  // 2^k as two normal factors (k in [-150, 128]): the first product stays normal, so a subnormal
  // result is rounded once, by the second; no branch (lavapipe runs both sides of one).
  const int ki = int(k), k1 = ki / 2;
  return (p * uintBitsToFloat(uint(k1 + 127) << 23)) * uintBitsToFloat(uint(ki - k1 + 127) << 23);
}
float kiln_log1p(float x);
float kiln_log(float x) {
  // Classified by bits: a driver that flushes f32 subnormals (NVIDIA) compares a subnormal equal
  // to 0 and flushes it in arithmetic.
  const uint mag = floatBitsToUint(x) & 0x7fffffffu;
  if (mag > 0x7f800000u || floatBitsToUint(x) > 0x80000000u) return kiln_nan_f32();  // NaN, x < 0
  if (mag == 0u) return -kiln_inf_f32();
  if (mag == 0x7f800000u) return x;
  // Subnormals: x = mag * 2^-149 with mag exact as a float (the builtin is wrong for them, e.g.
  // log(2^-149) gave -88.03). Near 1 the builtin's absolute error is a large relative one (13 %
  // at 1 - 2^-23): x - 1 is exact there (Sterbenz), and log1p is accurate.
  if (mag < 0x00800000u) {
    precise float r = log(float(mag)) - 149.0 * kiln_kLn2;
    return r;
  }
  if (abs(x - 1.0) < 0.5) return kiln_log1p(x - 1.0);
  return log(x);
}
float kiln_expm1(float x) {
  if (abs(x) < 0.5) {  // Taylor series to x^9: relative error < 3e-10
    precise float p = 1.0 / 362880.0;
    p = p * x + 1.0 / 40320.0;
    p = p * x + 1.0 / 5040.0;
    p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;
    p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;
    p = p * x + 0.5;
    p = p * x * x + x;
    return p;
  }
  if (x > 88.8) return kiln_inf_f32();
  precise float r = kiln_exp(x) - 1.0;
  return r;
}
float kiln_log1p(float x) {
  if (kiln_isnan(x) || x < -1.0) return kiln_nan_f32();
  if (x == -1.0) return -kiln_inf_f32();
  if (kiln_isinf(x)) return x;
  if (abs(x) < 0.5) {  // log(1 + x) = 2 atanh(s), s = x / (2 + x), |s| <= 1/3
    precise float s = x / (2.0 + x);
    precise float z = s * s;
    precise float p = 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    p = 2.0 * (s + s * z * p);
    return p;
  }
  return log(1.0 + x);
}
float kiln_sigmoid(float x) {  // never forms inf / inf
  if (x >= 0.0) {
    precise float r = 1.0 / (1.0 + kiln_exp(-x));
    return r;
  }
  precise float e = kiln_exp(x);
  precise float r = e / (1.0 + e);
  return r;
}

// sin and cos after Cody-Waite reduction by pi/2 (Cephes sinf/cosf) up to |x| = 8192, Payne-Hanek
// beyond (the builtins returned constants from ~1e8: cos(FLT_MAX) gave 1, true 0.853).
// quadrant q: x = q * pi/2 + r, |r| <= pi/4.
float kiln_sincos_reduce(float x, out int q) {
  float j = floor(abs(x) * 0.636619772367581343 + 0.5);
  q = int(j);
  // Three multipliers equal to j that the compiler cannot prove equal: lavapipe factored
  // (r - j*C2) - j*C3 into r - j*(C2 + C3), one rounded constant, despite `precise` (sin(2pi_f32)
  // was 722 ulp off).
  const float j2 = float(bitfieldExtract(q, 0, 30)), j3 = float(bitfieldExtract(q, 0, 29));  // q < 2^13
  precise float r = fma(-j, 1.5703125, abs(x));
  r = fma(-j2, 4.83751296997070312e-4, r);
  r = fma(-j3, 7.54978995489188216e-8, r);
  return x < 0.0 ? -r : r;
}
// 2/pi in binary from the binary point, 32 bits a word (the known constant, 288 bits: enough for
// every f32 exponent plus the 96-bit window). Selected, not indexed: a constant array indexed at run
// time costs lavapipe a copy per invocation even where no invocation reaches it.
uint kiln_2_over_pi_word(int i) {
  return i == 0 ? 0xA2F9836Eu : i == 1 ? 0x4E441529u : i == 2 ? 0xFC2757D1u : i == 3 ? 0xF534DDC0u
       : i == 4 ? 0xDB629599u : i == 5 ? 0x3C439041u : i == 6 ? 0xFE5163ABu : i == 7 ? 0xDEBBC561u : 0xB7246E3Au;
}
// The 32 bits of 2/pi weighing 2^-(s+1) ... 2^-(s+32) (zeros before the binary point).
uint kiln_2_over_pi_bits(int s) {
  if (s <= -32) return 0u;
  if (s < 0) return 0xA2F9836Eu >> uint(-s);
  const int i = s >> 5, o = s & 31;
  const uint hi = kiln_2_over_pi_word(i), lo = kiln_2_over_pi_word(i + 1);
  return o == 0 ? hi : (hi << uint(o)) | (lo >> uint(32 - o));
}
// Payne-Hanek for a = |x| > 8192: a = m * 2^e exactly (m < 2^24). The bits of 2/pi weighing 2^-k,
// k <= e - 2, add multiples of 4 to a * 2/pi, so the 96 bits from 2^-(e-1) on give P = m * window
// with a * 2/pi = P * 2^-94 (mod 4): q = bits 94-95 of P, the fraction the 94 bits below (62 kept,
// as a pair of floats), centred to [-1/2, 1/2), times pi/2 in two parts.
float kiln_trig_reduce_huge(float a, out int q) {
  const uint ua = floatBitsToUint(a);
  const int s = int(ua >> 23) - 152;  // e - 2, e = biased exponent - 150
  const uint64_t m = uint64_t((ua & 0x7FFFFFu) | 0x800000u);
  const uint64_t p0 = m * uint64_t(kiln_2_over_pi_bits(s)), p1 = m * uint64_t(kiln_2_over_pi_bits(s + 32)),
                 p2 = m * uint64_t(kiln_2_over_pi_bits(s + 64));
  const uint64_t lo = p2 + (p1 << 32);
  const uint hi = uint(p0) + uint(p1 >> 32) + (lo < p2 ? 1u : 0u);  // bits 64..95 of P
  q = int(hi >> 30);
  int64_t f = int64_t((uint64_t(hi & 0x3FFFFFFFu) << 32) | (lo >> 32));  // the fraction * 2^62
  if (f >= (1l << 61)) {
    f -= 1l << 62;
    q += 1;
  }
  q &= 3;
  const float f_hi = float(f);
  const float f_lo = float(f - int64_t(f_hi));
  precise float r = fma(f_hi, 1.57079637050628662, fma(f_hi, -4.37113900018624283e-8, f_lo * 1.57079637050628662));
  return r * 2.16840434497100887e-19;  // * 2^-62 (exact)
}
// x = q * pi/2 + r, |r| <= pi/4 (r carries x's sign, q is for |x|).
// GPUs skip the huge path when no invocation of a subgroup needs it; lavapipe runs both sides of
// every data-dependent branch, so there it costs every element (sin.f32 13 -> 45 ms at 4M).
float kiln_trig_reduce(float x, out int q) {
  float r = kiln_sincos_reduce(x, q);
  if (abs(x) > 8192.0) {
    const float h = kiln_trig_reduce_huge(abs(x), q);
    r = x < 0.0 ? -h : h;
  }
  return r;
}
float kiln_sin_poly(float r) {
  precise float z = r * r;
  precise float p = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  return p;
}
float kiln_cos_poly(float r) {
  precise float z = r * r;
  precise float p = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  return p;
}
float kiln_sin(float x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f32();
  int q;
  float r = kiln_trig_reduce(x, q);
  if (x < 0.0) q = -q;
  int m = q & 3;
  float v = (m & 1) == 0 ? kiln_sin_poly(r) : kiln_cos_poly(r);
  return m >= 2 ? -v : v;
}
float kiln_cos(float x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f32();
  int q;
  float r = kiln_trig_reduce(x, q);
  if (x < 0.0) q = -q;
  int m = q & 3;
  float v = (m & 1) == 0 ? kiln_cos_poly(r) : kiln_sin_poly(r);
  return (m == 1 || m == 2) ? -v : v;
}
float kiln_tan(float x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f32();
  int q;
  float r = kiln_trig_reduce(x, q);
  if (x < 0.0) q = -q;
  float s = kiln_sin_poly(r), c = kiln_cos_poly(r);
  precise float t = (q & 1) == 0 ? s / c : -c / s;
  return t;
}
float kiln_sinh(float x) {
  float a = abs(x);
  precise float r;
  if (a < 88.0) {
    precise float e = kiln_expm1(a);
    r = 0.5 * (e + e / (e + 1.0));
  } else {  // e^a / 2 without overflowing early
    precise float h = kiln_exp(0.5 * a);
    r = (0.5 * h) * h;
  }
  return kiln_copysign(r, x);
}
float kiln_cosh(float x) {
  float a = abs(x);
  if (kiln_isnan(x)) return x;
  if (a < 88.0) {
    precise float e = kiln_exp(a);
    precise float r = 0.5 * e + 0.5 / e;
    return r;
  }
  precise float h = kiln_exp(0.5 * a);
  precise float r = (0.5 * h) * h;
  return r;
}
float kiln_tanh(float x) {
  float a = abs(x);
  if (kiln_isnan(x)) return x;
  if (a > 20.0) return kiln_copysign(1.0, x);
  precise float e = kiln_expm1(2.0 * a);
  precise float r = e / (e + 2.0);
  return kiln_copysign(r, x);
}
// asin, acos and atan: Cephes asinf/acosf/atanf (about 1 ulp).
float kiln_asin_poly(float z) {
  precise float p = (((4.2163199048e-2 * z + 2.4181311049e-2) * z + 4.5470025998e-2) * z + 7.4953002686e-2) * z + 1.6666752422e-1;
  return p;
}
float kiln_asin(float x) {
  float a = abs(x);
  if (kiln_isnan(x) || a > 1.0) return kiln_nan_f32();
  precise float r;
  if (a > 0.5) {
    precise float z = 0.5 * (1.0 - a);
    precise float s = sqrt(z);
    r = kiln_kPi_2 - 2.0 * (s + s * z * kiln_asin_poly(z));
  } else {
    precise float z = a * a;
    r = a + a * z * kiln_asin_poly(z);
  }
  return kiln_copysign(r, x);
}
float kiln_acos(float x) {
  if (kiln_isnan(x) || abs(x) > 1.0) return kiln_nan_f32();
  precise float r;
  if (x < -0.5) {
    r = kiln_kPi - 2.0 * kiln_asin(sqrt(0.5 * (1.0 + x)));
  } else if (x > 0.5) {
    r = 2.0 * kiln_asin(sqrt(0.5 * (1.0 - x)));
  } else {
    r = kiln_kPi_2 - kiln_asin(x);
  }
  return r;
}
float kiln_atan(float x) {
  if (kiln_isnan(x)) return x;
  float a = abs(x);
  precise float y = 0.0;
  precise float t = a;
  if (a > 2.414213562373095) {
    y = kiln_kPi_2;
    t = -1.0 / a;
  } else if (a > 0.4142135623730950) {
    y = 0.25 * kiln_kPi;
    t = (a - 1.0) / (a + 1.0);
  }
  precise float z = t * t;
  y += (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * t + t;
  return kiln_copysign(y, x);
}
float kiln_atan2(float y, float x) {  // C atan2 including zeros and infinities
  if (kiln_isnan(x) || kiln_isnan(y)) return kiln_nan_f32();
  float ay = abs(y), ax = abs(x);
  precise float r;
  if (ay == 0.0 && ax == 0.0) {
    r = kiln_signbit(x) ? kiln_kPi : 0.0;
  } else if (kiln_isinf(ax) && kiln_isinf(ay)) {
    r = x > 0.0 ? 0.25 * kiln_kPi : 0.75 * kiln_kPi;
  } else if (kiln_isinf(ax)) {
    r = x > 0.0 ? 0.0 : kiln_kPi;
  } else if (kiln_isinf(ay)) {
    r = kiln_kPi_2;
  } else {
    r = ay <= ax ? kiln_atan(ay / ax) : kiln_kPi_2 - kiln_atan(ax / ay);
    if (x < 0.0) r = kiln_kPi - r;
  }
  return kiln_copysign(r, y);
}
float kiln_asinh(float x) {
  float a = abs(x);
  if (kiln_isnan(x) || kiln_isinf(x)) return x;
  precise float r;
  if (a > 4096.0) {
    r = log(a) + kiln_kLn2;
  } else {
    precise float a2 = a * a;
    r = kiln_log1p(a + a2 / (1.0 + sqrt(1.0 + a2)));
  }
  return kiln_copysign(r, x);
}
float kiln_acosh(float x) {
  if (kiln_isnan(x) || x < 1.0) return kiln_nan_f32();
  if (kiln_isinf(x)) return x;
  if (x > 4096.0) {
    precise float r = log(x) + kiln_kLn2;
    return r;
  }
  precise float t = x - 1.0;
  precise float r = kiln_log1p(t + sqrt(t * (x + 1.0)));
  return r;
}
float kiln_atanh(float x) {
  float a = abs(x);
  if (kiln_isnan(x) || a > 1.0) return kiln_nan_f32();
  precise float r = 0.5 * kiln_log1p(2.0 * a / (1.0 - a));
  return kiln_copysign(r, x);
}
float kiln_cbrt(float x) {
  const uint mag = floatBitsToUint(x) & 0x7fffffffu;
  if (mag == 0u || mag >= 0x7f800000u) return x;  // +-0, +-inf, NaN (by bits: see kiln_log)
  // Subnormals: the cube root of x * 2^24 = mag * 2^-125 (normal, exact), times 2^-8 (exact);
  // log2 of a subnormal was wrong (cbrt(2^-149) came out 100x off) or flushed to 0.
  const bool tiny = mag < 0x00800000u;
  const float a = tiny ? float(mag) * uintBitsToFloat(0x01000000u) : abs(x);
  precise float r = exp2(log2(a) * (1.0 / 3.0));
  r = r + (a / (r * r) - r) * (1.0 / 3.0);  // one Newton step (no overflow): error ~1 ulp
  if (tiny) r *= 0.00390625;
  return kiln_copysign(r, x);
}
// erfc(|x|) with relative error < 1.2e-7 everywhere (Numerical Recipes' erfcc, Chebyshev fit).
float kiln_erfc_pos(float z) {
  if (z > 10.1) return 0.0;  // erfc(10.1) < 2^-150 (and z^2 must not overflow below)
  precise float t = 1.0 / (1.0 + 0.5 * z);
  precise float p = -0.82215223 + t * 0.17087277;
  p = 1.48851587 + t * p;
  p = -1.13520398 + t * p;
  p = 0.27886807 + t * p;
  p = -0.18628806 + t * p;
  p = 0.09678418 + t * p;
  p = 0.37409196 + t * p;
  p = 1.00002368 + t * p;
  // e^(-z^2) apart: z = zh + zl with zh's low 12 significand bits cleared (integer ops), so zh^2
  // is exact and zl (2 zh + zl) a small correction. Rounding z^2 inside one exponent cost 2^-24 z^2
  // relative (88 ulp at z = 8.7); the fma form of the same split was folded away by lavapipe.
  const float zh = uintBitsToFloat(floatBitsToUint(z) & 0xFFFFF000u);
  const float zl = z - zh;
  precise float rest = zl * (2.0 * zh + zl);
  p = t * kiln_exp(-zh * zh) * kiln_exp(-1.26551223 + t * p - rest);
  return p;
}
float kiln_erf(float x) {
  if (kiln_isnan(x)) return x;
  float a = abs(x);
  precise float r;
  if (a < 0.5) {  // Maclaurin series to x^15: error < 1e-9
    precise float z = x * x;
    precise float p = -1.0 / 75600.0;
    p = p * z + 1.0 / 9360.0;
    p = p * z - 1.0 / 1320.0;
    p = p * z + 1.0 / 216.0;
    p = p * z - 1.0 / 42.0;
    p = p * z + 1.0 / 10.0;
    p = p * z - 1.0 / 3.0;
    r = 1.1283791670955126 * (x + x * z * p);
    return r;
  }
  r = 1.0 - kiln_erfc_pos(a);
  return kiln_copysign(r, x);
}
float kiln_erfc(float x) {
  if (kiln_isnan(x)) return x;
  if (abs(x) < 0.5) {
    precise float r = 1.0 - kiln_erf(x);
    return r;
  }
  if (x > 0.0) return kiln_erfc_pos(x);
  precise float r = 2.0 - kiln_erfc_pos(-x);
  return r;
}
// erf_inv: Giles' single-precision approximation ("Approximating the erfinv function", 2010) and
// one Newton step on kiln_erf.
float kiln_erf_inv(float y) {
  if (kiln_isnan(y) || abs(y) > 1.0) return kiln_nan_f32();
  if (abs(y) == 1.0) return kiln_copysign(kiln_inf_f32(), y);
  precise float w = -log((1.0 - y) * (1.0 + y));
  precise float p;
  if (w < 5.0) {
    w = w - 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  precise float r = p * y;
  if (abs(y) < 0.999) {  // Newton step; erf is too flat near +-1 for it to help
    precise float e = kiln_erf(r) - y;
    r = r - e / (1.1283791670955126 * kiln_exp(-r * r));
  }
  return r;
}
// C pow: integer exponents of negative bases, zeros, infinities and NaN as in std::pow.
float kiln_pow(float x, float y) {
  if (y == 0.0 || x == 1.0) return 1.0;
  if (kiln_isnan(x) || kiln_isnan(y)) return kiln_nan_f32();
  float ax = abs(x), ay = abs(y);
  bool y_int = kiln_isinf(y) || floor(y) == y;
  bool y_odd = y_int && ay < 16777216.0 && (uint(ay) & 1u) == 1u;
  if (kiln_isinf(y)) {
    if (ax == 1.0) return 1.0;
    return ((ax < 1.0) == (y > 0.0)) ? 0.0 : kiln_inf_f32();
  }
  // x classified by bits: a driver that flushes subnormals compares them equal to 0.
  const uint mag = floatBitsToUint(x) & 0x7FFFFFFFu;
  float r;
  if (mag == 0u) {
    r = y < 0.0 ? kiln_inf_f32() : 0.0;
  } else if (mag == 0x7F800000u) {
    r = y < 0.0 ? 0.0 : kiln_inf_f32();
  } else if (kiln_signbit(x) && !y_int) {
    return kiln_nan_f32();
  } else if (mag < 0x00800000u) {
    // Subnormal base: x = mag * 2^-149, mag exact as a float (the builtin took log2 of the
    // subnormal: bf16 pow(9.2e-41, -1) gave 1.7e38, true +inf).
    precise float l = log2(float(mag)) - 149.0;
    r = exp2(y * l);
  } else {
    r = pow(ax, y);
  }
  return (kiln_signbit(x) && y_odd) ? -r : r;
}

#endif  // KILN_USE_F32_FUNCS

// ---- f64: the ops GLSL can do in double precision ----------------------------------------------
#ifdef KILN_NEED_FLOAT64
bool kiln_isnan(double x) { uvec2 b = unpackDouble2x32(x); return (b.y & 0x7FFFFFFFu) > 0x7FF00000u || ((b.y & 0x7FFFFFFFu) == 0x7FF00000u && b.x != 0u); }
bool kiln_isinf(double x) { uvec2 b = unpackDouble2x32(x); return (b.y & 0x7FFFFFFFu) == 0x7FF00000u && b.x == 0u; }
bool kiln_signbit(double x) { return (unpackDouble2x32(x).y >> 31) != 0u; }
KILN_FLOAT_COMMON(double)
double kiln_divide(double x, double y) { precise double r = x / y; return r; }

double kiln_remainder(double x, double y) {  // exact fmod, as the f32 version
  uint64_t ux = doubleBitsToUint64(x), uy = doubleBitsToUint64(y);
  int ex = int((ux >> 52) & 0x7FFul), ey = int((uy >> 52) & 0x7FFul);
  uint64_t sx = ux & 0x8000000000000000ul;
  if ((uy << 1) == 0ul || kiln_isnan(y) || ex == 0x7FF) return double(kiln_nan_f32());
  if ((ux << 1) <= (uy << 1)) return (ux << 1) == (uy << 1) ? uint64BitsToDouble(sx) : x;
  const uint64_t kImplicit = 0x10000000000000ul, kMant = 0xFFFFFFFFFFFFFul;
  if (ex == 0) {
    for (uint64_t i = ux << 12; (i >> 63) == 0ul; i <<= 1) ex--;
    ux <<= uint(1 - ex);
  } else {
    ux = (ux & kMant) | kImplicit;
  }
  if (ey == 0) {
    for (uint64_t i = uy << 12; (i >> 63) == 0ul; i <<= 1) ey--;
    uy <<= uint(1 - ey);
  } else {
    uy = (uy & kMant) | kImplicit;
  }
  for (; ex > ey; ex--) {
    uint64_t i = ux - uy;
    if ((i >> 63) == 0ul) {
      if (i == 0ul) return uint64BitsToDouble(sx);
      ux = i;
    }
    ux <<= 1;
  }
  uint64_t i = ux - uy;
  if ((i >> 63) == 0ul) {
    if (i == 0ul) return uint64BitsToDouble(sx);
    ux = i;
  }
  for (; (ux >> 52) == 0ul; ux <<= 1) ex--;
  if (ex > 0) {
    ux = (ux - kImplicit) | (uint64_t(ex) << 52);
  } else {
    ux >>= uint(1 - ex);
  }
  return uint64BitsToDouble(ux | sx);
}
#endif

// ---- integer ops --------------------------------------------------------------------------------
uint kiln_width_mask_32(int bits) { return bits >= 32 ? 0xFFFFFFFFu : (1u << uint(bits)) - 1u; }
uint64_t kiln_width_mask_64(int bits) { return bits >= 64 ? ~0ul : (1ul << uint(bits)) - 1ul; }
// Leading zeros and set bits within the dtype's width |bits| (the value may be sign-extended).
int kiln_clz32(uint x) { return x == 0u ? 32 : 31 - findMSB(x); }
int kiln_clz64(uint64_t x) {
  uvec2 h = unpackUint2x32(x);
  return h.y != 0u ? kiln_clz32(h.y) : 32 + kiln_clz32(h.x);
}
int kiln_popcount64(uint64_t x) { uvec2 h = unpackUint2x32(x); return bitCount(h.x) + bitCount(h.y); }

// T the type, U its unsigned twin, Z/ONE its 0 and 1 literals, W its width.
#define KILN_INT_COMMON(T, U, Z, ONE, W)                                                            \
  T kiln_add(T x, T y) { return x + y; }                                                            \
  T kiln_subtract(T x, T y) { return x - y; }                                                       \
  T kiln_multiply(T x, T y) { return x * y; }                                                       \
  T kiln_negate(T x) { return Z - x; }                                                              \
  T kiln_bitwise_not(T x) { return ~x; }                                                            \
  T kiln_bitwise_and(T x, T y) { return x & y; }                                                    \
  T kiln_bitwise_or(T x, T y) { return x | y; }                                                     \
  T kiln_bitwise_xor(T x, T y) { return x ^ y; }                                                    \
  T kiln_ceil(T x) { return x; }                                                                    \
  T kiln_floor(T x) { return x; }                                                                   \
  T kiln_round(T x) { return x; }                                                                   \
  T kiln_min(T x, T y) { return x < y ? x : y; }                                                    \
  T kiln_max(T x, T y) { return x > y ? x : y; }                                                    \
  uint kiln_is_nan(T x) { return 0u; }                                                              \
  uint kiln_is_infinity(T x) { return 0u; }                                                         \
  uint kiln_equal(T x, T y) { return x == y ? 1u : 0u; }                                            \
  uint kiln_not_equal(T x, T y) { return x != y ? 1u : 0u; }                                        \
  uint kiln_greater(T x, T y) { return x > y ? 1u : 0u; }                                           \
  uint kiln_less(T x, T y) { return x < y ? 1u : 0u; }                                              \
  uint kiln_greater_equal(T x, T y) { return x >= y ? 1u : 0u; }                                    \
  uint kiln_less_equal(T x, T y) { return x <= y ? 1u : 0u; }                                       \
  T kiln_select(uint c, T x, T y) { return c != 0u ? x : y; }                                       \
  /* repeated squaring with wrapping */                                                             \
  T kiln_pow_nonneg(T x, T y) {                                                                     \
    U r = U(1), b = U(x), e = U(y);                                                                 \
    while (e != U(0)) {                                                                             \
      if ((e & U(1)) != U(0)) r *= b;                                                               \
      b *= b;                                                                                       \
      e >>= 1u;                                                                                     \
    }                                                                                               \
    return T(r);                                                                                    \
  }

// Division and remainder go through unsigned magnitudes: SPIR-V leaves signed division of INT_MIN
// by -1 and GLSL leaves % of negative operands undefined.
#define KILN_INT_SIGNED(T, U, Z, ONE, W)                                                            \
  KILN_INT_COMMON(T, U, Z, ONE, W)                                                                  \
  T kiln_abs(T x) { return x < Z ? Z - x : x; }                                                     \
  /* branch-free: NVIDIA's compiler crashed on the select chain for s8/s16 (strided kernel) */      \
  T kiln_sign(T x) { return (x >> (W - 1)) | T(U(Z - x) >> (W - 1)); }                              \
  T kiln_quotient(T x, T y) {                                                                       \
    if (y == Z) return Z - ONE;                                                                     \
    U q = U(x < Z ? Z - x : x) / U(y < Z ? Z - y : y);                                              \
    return (x < Z) != (y < Z) ? Z - T(q) : T(q);                                                    \
  }                                                                                                 \
  T kiln_remainder(T x, T y) {                                                                      \
    if (y == Z) return x;                                                                           \
    U r = U(x < Z ? Z - x : x) % U(y < Z ? Z - y : y);                                              \
    return x < Z ? Z - T(r) : T(r);                                                                 \
  }                                                                                                 \
  T kiln_pow(T x, T y) {                                                                            \
    if (y < Z) return x == ONE ? ONE : (x == Z - ONE ? ((y & ONE) != Z ? Z - ONE : ONE) : Z);       \
    return kiln_pow_nonneg(x, y);                                                                   \
  }                                                                                                 \
  T kiln_left_shift(T x, T y, int bits) {                                                           \
    if (y < Z || y >= T(bits)) return Z;                                                            \
    return T(U(x) << uint(y));                                                                      \
  }                                                                                                 \
  T kiln_right_shift(T x, T y, int bits) {                                                          \
    if (y < Z || y >= T(bits)) return x < Z ? Z - ONE : Z;                                          \
    return x >> uint(y);                                                                            \
  }

#define KILN_INT_UNSIGNED(T, Z, ONE, W)                                                             \
  KILN_INT_COMMON(T, T, Z, ONE, W)                                                                  \
  T kiln_abs(T x) { return x; }                                                                     \
  T kiln_sign(T x) { return x > Z ? ONE : Z; }                                                      \
  T kiln_quotient(T x, T y) { return y == Z ? ~Z : x / y; }                                         \
  T kiln_remainder(T x, T y) { return y == Z ? x : x % y; }                                         \
  T kiln_pow(T x, T y) { return kiln_pow_nonneg(x, y); }                                            \
  T kiln_left_shift(T x, T y, int bits) { return y >= T(bits) ? Z : x << uint(y); }                 \
  T kiln_right_shift(T x, T y, int bits) { return y >= T(bits) ? Z : x >> uint(y); }

#ifdef KILN_USE_S32
KILN_INT_SIGNED(int, uint, 0, 1, 32)
int kiln_count_leading_zeros(int x, int bits) { return kiln_clz32(uint(x) & kiln_width_mask_32(bits)) - (32 - bits); }
// Set bits within the low |bits|: shifted to the top rather than masked. NVIDIA's compiler (driver
// 580.159) dropped the mask of a zero-extended 8/16-bit load and counted 8/16 extra bits.
int kiln_population_count(int x, int bits) { return bitCount(uint(x) << uint(32 - bits)); }
#endif
#ifdef KILN_USE_U32
KILN_INT_UNSIGNED(uint, 0u, 1u, 32)
uint kiln_count_leading_zeros(uint x, int bits) { return uint(kiln_clz32(x & kiln_width_mask_32(bits)) - (32 - bits)); }
uint kiln_population_count(uint x, int bits) { return uint(bitCount(x << uint(32 - bits))); }
#endif
#ifdef KILN_USE_S64
KILN_INT_SIGNED(int64_t, uint64_t, 0l, 1l, 64)
int64_t kiln_count_leading_zeros(int64_t x, int bits) { return int64_t(kiln_clz64(uint64_t(x) & kiln_width_mask_64(bits)) - (64 - bits)); }
int64_t kiln_population_count(int64_t x, int bits) { return int64_t(kiln_popcount64(uint64_t(x) & kiln_width_mask_64(bits))); }
#endif
#ifdef KILN_USE_U64
KILN_INT_UNSIGNED(uint64_t, 0ul, 1ul, 64)
uint64_t kiln_count_leading_zeros(uint64_t x, int bits) { return uint64_t(kiln_clz64(x & kiln_width_mask_64(bits)) - (64 - bits)); }
uint64_t kiln_population_count(uint64_t x, int bits) { return uint64_t(kiln_popcount64(x & kiln_width_mask_64(bits))); }
#endif

// ---- logical ops (pred operands, compute type uint) -----------------------------------------------
#ifdef KILN_USE_U32
uint kiln_logical_and(uint x, uint y) { return (x != 0u && y != 0u) ? 1u : 0u; }
uint kiln_logical_or(uint x, uint y) { return (x != 0u || y != 0u) ? 1u : 0u; }
uint kiln_logical_xor(uint x, uint y) { return ((x != 0u) != (y != 0u)) ? 1u : 0u; }
#endif

// ---- casts: kiln_cast_<to>(x) for x of any compute type (codegen/eval.cpp cast_scalar) ------------
#ifdef KILN_USE_CASTS
// An integer's 64-bit two's complement form: signed values sign-extend, unsigned zero-extend.
uint64_t kiln_int_bits(int x) { return uint64_t(int64_t(x)); }
uint64_t kiln_int_bits(uint x) { return uint64_t(x); }
uint64_t kiln_int_bits(int64_t x) { return uint64_t(x); }
uint64_t kiln_int_bits(uint64_t x) { return x; }
int64_t kiln_wrap_signed(uint64_t b, int bits) {
  return bits >= 64 ? int64_t(b) : int64_t(b << uint(64 - bits)) >> uint(64 - bits);
}
uint64_t kiln_wrap_unsigned(uint64_t b, int bits) { return b & kiln_width_mask_64(bits); }
// Float to integer: truncate, NaN -> 0, saturate to the |bits|-wide range.
#define KILN_FLOAT_TO_INT(F)                                                                        \
  int64_t kiln_to_signed(F x, int bits) {                                                           \
    F t = trunc(x);                                                                                 \
    if (kiln_isnan(t)) return 0l;                                                                   \
    F hi = F(ldexp(1.0, bits - 1));                                                                 \
    if (t >= hi) return int64_t(kiln_width_mask_64(bits - 1));                                      \
    if (t < -hi) return -int64_t(kiln_width_mask_64(bits - 1)) - 1l;                                \
    return int64_t(t);                                                                              \
  }                                                                                                 \
  uint64_t kiln_to_unsigned(F x, int bits) {                                                        \
    F t = trunc(x);                                                                                 \
    if (kiln_isnan(t) || t <= F(0)) return 0ul;                                                     \
    if (t >= F(ldexp(1.0, bits))) return kiln_width_mask_64(bits);                                  \
    return uint64_t(t);                                                                             \
  }
#ifdef KILN_USE_F32
KILN_FLOAT_TO_INT(float)
#endif
#ifdef KILN_NEED_FLOAT64
KILN_FLOAT_TO_INT(double)
#endif
#define KILN_INT_TO_INT(S)                                                                          \
  int64_t kiln_to_signed(S x, int bits) { return kiln_wrap_signed(kiln_int_bits(x), bits); }        \
  uint64_t kiln_to_unsigned(S x, int bits) { return kiln_wrap_unsigned(kiln_int_bits(x), bits); }

#define KILN_CASTS_FROM(S)                                                                          \
  uint kiln_cast_pred(S x) { return !(x == S(0)) ? 1u : 0u; } /* NaN -> 1 */                        \
  int kiln_cast_s8(S x) { return int(kiln_to_signed(x, 8)); }                                       \
  int kiln_cast_s16(S x) { return int(kiln_to_signed(x, 16)); }                                     \
  int kiln_cast_s32(S x) { return int(kiln_to_signed(x, 32)); }                                     \
  int64_t kiln_cast_s64(S x) { return kiln_to_signed(x, 64); }                                      \
  uint kiln_cast_u8(S x) { return uint(kiln_to_unsigned(x, 8)); }                                   \
  uint kiln_cast_u16(S x) { return uint(kiln_to_unsigned(x, 16)); }                                 \
  uint kiln_cast_u32(S x) { return uint(kiln_to_unsigned(x, 32)); }                                 \
  uint64_t kiln_cast_u64(S x) { return kiln_to_unsigned(x, 64); }                                   \
  float kiln_cast_f32(S x) { return float(x); }                                                     \
  /* integers and f64 reach f16/bf16 through f32 (two roundings, as in cast_scalar) */              \
  float kiln_cast_f16(S x) { return kiln_narrow_f16(float(x)); }                                    \
  float kiln_cast_bf16(S x) { return kiln_narrow_bf16(float(x)); }
#ifdef KILN_USE_S32
KILN_INT_TO_INT(int)
KILN_CASTS_FROM(int)
#endif
#ifdef KILN_USE_U32
KILN_INT_TO_INT(uint)
KILN_CASTS_FROM(uint)
#endif
#ifdef KILN_USE_S64
KILN_INT_TO_INT(int64_t)
KILN_CASTS_FROM(int64_t)
#endif
#ifdef KILN_USE_U64
KILN_INT_TO_INT(uint64_t)
KILN_CASTS_FROM(uint64_t)
#endif
#ifdef KILN_USE_F32
KILN_CASTS_FROM(float)
#endif
#ifdef KILN_NEED_FLOAT64
KILN_CASTS_FROM(double)
double kiln_cast_f64(int x) { return double(x); }
double kiln_cast_f64(uint x) { return double(x); }
double kiln_cast_f64(int64_t x) { return double(x); }
double kiln_cast_f64(uint64_t x) { return double(x); }
double kiln_cast_f64(float x) { return double(x); }
double kiln_cast_f64(double x) { return x; }
#endif
#endif  // KILN_USE_CASTS
