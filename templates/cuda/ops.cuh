// The CUDA prelude: every elementwise op of the op table (codegen/ops.cpp) as kiln_<name>, with
// exactly the semantics of the CPU reference (codegen/eval.cpp); see docs/semantics.md.
//
// Values are computed in compute_dtype(dtype): unsigned for pred/u8/u16/u32, int for s8/s16/s32,
// long long, unsigned long long, float for f16/bf16/f32, double. After every op the emitter brings
// narrow results back with kiln_narrow_<dtype> (integers wrap, f16/bf16 round to nearest even).
// Signed arithmetic is done in unsigned types (wraps, no UB). f16 and bf16 live in memory as 16-bit
// patterns; f16 converts with the PTX cvt instructions, bf16 with the bit code of core/half.hpp
// (no cuda_fp16.h: NVRTC has no include path for it).
//
// Build contract: compile with --fmad=false (nvcc and NVRTC) so a*b+c is never contracted into an
// fma and results match the reference bit for bit; keep the IEEE defaults -prec-div=true,
// -prec-sqrt=true and -ftz=false. Needs only C++17 and no standard headers (NVRTC-friendly).
#ifndef KILN_TEMPLATES_CUDA_OPS_CUH
#define KILN_TEMPLATES_CUDA_OPS_CUH

#define KILN_DEVICE __device__ __forceinline__

#include "cuda/math.cuh"

typedef unsigned long long kiln_u64;
typedef long long kiln_s64;

// ---- integer traits ---------------------------------------------------------------------------
template <class T> struct kiln_int_traits;
template <> struct kiln_int_traits<int> { typedef unsigned U; static constexpr bool is_signed = true; static constexpr int bits = 32; };
template <> struct kiln_int_traits<unsigned> { typedef unsigned U; static constexpr bool is_signed = false; static constexpr int bits = 32; };
template <> struct kiln_int_traits<long long> { typedef kiln_u64 U; static constexpr bool is_signed = true; static constexpr int bits = 64; };
template <> struct kiln_int_traits<kiln_u64> { typedef kiln_u64 U; static constexpr bool is_signed = false; static constexpr int bits = 64; };
#define KILN_U(T) typename kiln_int_traits<T>::U

// ---- f16 / bf16 bit conversions (core/half.hpp, round to nearest even) ----------------------
// The hardware conversions (PTX cvt, sm_53+) round to nearest even and keep subnormals, exactly
// as half.hpp; only NaN differs (cvt gives the canonical 0x7FFF), so NaN keeps half.hpp's quiet
// NaN with the input's sign. The bit code these replaced cost f16 kernels about 45 % of the copy
// bandwidth on an H100 (multiply.f16 at 56 %: bench/results/2026-11-27-*).
KILN_DEVICE unsigned kiln_f32_to_f16_bits(float f) {
  const unsigned x = __float_as_uint(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return ((x >> 16) & 0x8000u) | 0x7E00u;  // NaN
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
  unsigned short h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
#else  // compiled for the host (tests/test_cuda_reduce_host.cpp): core/half.hpp's conversions
  return kiln_host_f32_to_f16_bits(f);
#endif
}
KILN_DEVICE float kiln_f16_bits_to_f32(unsigned h) {
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"((unsigned short)h));
  return f;
#else
  return kiln_host_f16_bits_to_f32(h);
#endif
}
KILN_DEVICE unsigned kiln_f32_to_bf16_bits(float f) {
  unsigned x = __float_as_uint(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return ((x >> 16) | 0x40u) & 0xFFFFu;  // quiet NaN
  x += 0x7FFFu + ((x >> 16) & 1u);
  return x >> 16;
}
KILN_DEVICE float kiln_bf16_bits_to_f32(unsigned b) { return __uint_as_float(b << 16); }

// ---- loads and stores: storage type <-> compute type -------------------------------------------
KILN_DEVICE unsigned kiln_load_pred(unsigned char x) { return x != 0 ? 1u : 0u; }
KILN_DEVICE int kiln_load_s8(signed char x) { return x; }
KILN_DEVICE int kiln_load_s16(short x) { return x; }
KILN_DEVICE int kiln_load_s32(int x) { return x; }
KILN_DEVICE long long kiln_load_s64(long long x) { return x; }
KILN_DEVICE unsigned kiln_load_u8(unsigned char x) { return x; }
KILN_DEVICE unsigned kiln_load_u16(unsigned short x) { return x; }
KILN_DEVICE unsigned kiln_load_u32(unsigned x) { return x; }
KILN_DEVICE kiln_u64 kiln_load_u64(kiln_u64 x) { return x; }
KILN_DEVICE float kiln_load_f16(unsigned short x) { return kiln_f16_bits_to_f32(x); }
KILN_DEVICE float kiln_load_bf16(unsigned short x) { return kiln_bf16_bits_to_f32(x); }
KILN_DEVICE float kiln_load_f32(float x) { return x; }
KILN_DEVICE double kiln_load_f64(double x) { return x; }

KILN_DEVICE unsigned char kiln_store_pred(unsigned x) { return (unsigned char)(x != 0u ? 1 : 0); }
KILN_DEVICE signed char kiln_store_s8(int x) { return (signed char)x; }
KILN_DEVICE short kiln_store_s16(int x) { return (short)x; }
KILN_DEVICE int kiln_store_s32(int x) { return x; }
KILN_DEVICE long long kiln_store_s64(long long x) { return x; }
KILN_DEVICE unsigned char kiln_store_u8(unsigned x) { return (unsigned char)x; }
KILN_DEVICE unsigned short kiln_store_u16(unsigned x) { return (unsigned short)x; }
KILN_DEVICE unsigned kiln_store_u32(unsigned x) { return x; }
KILN_DEVICE kiln_u64 kiln_store_u64(kiln_u64 x) { return x; }
KILN_DEVICE unsigned short kiln_store_f16(float x) { return (unsigned short)kiln_f32_to_f16_bits(x); }
KILN_DEVICE unsigned short kiln_store_bf16(float x) { return (unsigned short)kiln_f32_to_bf16_bits(x); }
KILN_DEVICE float kiln_store_f32(float x) { return x; }
KILN_DEVICE double kiln_store_f64(double x) { return x; }

// ---- narrowing after every op ------------------------------------------------------------------
KILN_DEVICE unsigned kiln_narrow_pred(unsigned x) { return x & 1u; }
KILN_DEVICE int kiln_narrow_s8(int x) { return int((unsigned)x << 24) >> 24; }
KILN_DEVICE int kiln_narrow_s16(int x) { return int((unsigned)x << 16) >> 16; }
KILN_DEVICE unsigned kiln_narrow_u8(unsigned x) { return x & 0xFFu; }
KILN_DEVICE unsigned kiln_narrow_u16(unsigned x) { return x & 0xFFFFu; }
KILN_DEVICE float kiln_narrow_f16(float x) { return kiln_f16_bits_to_f32(kiln_f32_to_f16_bits(x)); }
KILN_DEVICE float kiln_narrow_bf16(float x) { return kiln_bf16_bits_to_f32(kiln_f32_to_bf16_bits(x)); }

// ---- float helpers -----------------------------------------------------------------------------
KILN_DEVICE bool kiln_isnan(float x) { return (__float_as_uint(x) & 0x7FFFFFFFu) > 0x7F800000u; }
KILN_DEVICE bool kiln_isnan(double x) { return ((kiln_u64)__double_as_longlong(x) & 0x7FFFFFFFFFFFFFFFull) > 0x7FF0000000000000ull; }
KILN_DEVICE bool kiln_isinf(float x) { return (__float_as_uint(x) & 0x7FFFFFFFu) == 0x7F800000u; }
KILN_DEVICE bool kiln_isinf(double x) { return ((kiln_u64)__double_as_longlong(x) & 0x7FFFFFFFFFFFFFFFull) == 0x7FF0000000000000ull; }
KILN_DEVICE float kiln_nan(float) { return __uint_as_float(0x7FC00000u); }
KILN_DEVICE double kiln_nan(double) { return __longlong_as_double(0x7FF8000000000000ll); }
KILN_DEVICE float kiln_trunc(float x) { return truncf(x); }
KILN_DEVICE double kiln_trunc(double x) { return trunc(x); }

// ---- float ops: f32 spelled with the f-suffixed functions, f64 with the plain ones --------------
#define KILN_FLOAT_UNARY(name, f32, f64)                 \
  KILN_DEVICE float kiln_##name(float x) { return f32; } \
  KILN_DEVICE double kiln_##name(double x) { return f64; }
KILN_FLOAT_UNARY(exp, expf(x), exp(x))
KILN_FLOAT_UNARY(expm1, kiln_expm1_f32(x), expm1(x))  // cuda/math.cuh: expm1f was 1.18 ulp
KILN_FLOAT_UNARY(log, logf(x), log(x))
KILN_FLOAT_UNARY(log1p, log1pf(x), kiln_log1p_f64(x))  // cuda/math.cuh: log1p was 1.30 ulp
KILN_FLOAT_UNARY(cos, cosf(x), cos(x))
KILN_FLOAT_UNARY(sin, sinf(x), sin(x))
KILN_FLOAT_UNARY(tan, tanf(x), tan(x))
KILN_FLOAT_UNARY(cosh, coshf(x), cosh(x))
KILN_FLOAT_UNARY(sinh, sinhf(x), sinh(x))
KILN_FLOAT_UNARY(tanh, tanhf(x), tanh(x))
KILN_FLOAT_UNARY(acos, acosf(x), acos(x))
KILN_FLOAT_UNARY(asin, asinf(x), asin(x))
KILN_FLOAT_UNARY(atan, atanf(x), atan(x))
KILN_FLOAT_UNARY(acosh, acoshf(x), acosh(x))
KILN_FLOAT_UNARY(asinh, asinhf(x), asinh(x))
KILN_FLOAT_UNARY(atanh, atanhf(x), atanh(x))
KILN_FLOAT_UNARY(sqrt, sqrtf(x), sqrt(x))
KILN_FLOAT_UNARY(rsqrt, 1.0f / sqrtf(x), rsqrt(x))  // f64: CUDA's rsqrt is 1 ulp, 1.0 / sqrt(x) 1.44
KILN_FLOAT_UNARY(cbrt, cbrtf(x), cbrt(x))
KILN_FLOAT_UNARY(erf, erff(x), erf(x))
KILN_FLOAT_UNARY(erfc, erfcf(x), erfc(x))
KILN_FLOAT_UNARY(erf_inv, erfinvf(x), erfinv(x))
KILN_FLOAT_UNARY(abs, fabsf(x), fabs(x))
KILN_FLOAT_UNARY(ceil, ceilf(x), ceil(x))
KILN_FLOAT_UNARY(floor, floorf(x), floor(x))
KILN_FLOAT_UNARY(negate, -x, -x)
KILN_FLOAT_UNARY(round, roundf(x), round(x))  // C round: halves away from zero
#undef KILN_FLOAT_UNARY
// sigmoid as e^x / (1 + e^x) below 0: 1 / (1 + e^-x) gave 0 once e^-x overflowed (x < -88.7 for
// f32), where the true value is a subnormal down to x = -103.
template <class F> KILN_DEVICE F kiln_float_sigmoid(F x, F e) { return x >= F(0) ? F(1) / (F(1) + e) : e / (F(1) + e); }
KILN_DEVICE float kiln_sigmoid(float x) { return kiln_float_sigmoid(x, expf(x >= 0.0f ? -x : x)); }
KILN_DEVICE double kiln_sigmoid(double x) { return kiln_float_sigmoid(x, exp(x >= 0.0 ? -x : x)); }

#define KILN_FLOAT_BINARY(name, f32, f64)                         \
  KILN_DEVICE float kiln_##name(float x, float y) { return f32; } \
  KILN_DEVICE double kiln_##name(double x, double y) { return f64; }
KILN_FLOAT_BINARY(add, x + y, x + y)
KILN_FLOAT_BINARY(subtract, x - y, x - y)
KILN_FLOAT_BINARY(multiply, x * y, x * y)
KILN_FLOAT_BINARY(divide, x / y, x / y)
KILN_FLOAT_BINARY(pow, powf(x, y), pow(x, y))
KILN_FLOAT_BINARY(remainder, fmodf(x, y), fmod(x, y))
KILN_FLOAT_BINARY(atan2, atan2f(x, y), atan2(x, y))
#undef KILN_FLOAT_BINARY

template <class F> KILN_DEVICE F kiln_float_sign(F x) {
  if (kiln_isnan(x) || x == F(0)) return x;
  return x > F(0) ? F(1) : F(-1);
}
KILN_DEVICE float kiln_sign(float x) { return kiln_float_sign(x); }
KILN_DEVICE double kiln_sign(double x) { return kiln_float_sign(x); }
// NaN propagates; -0 orders below +0 (XLA), so the result never depends on the operand order.
KILN_DEVICE bool kiln_signbit(float x) { return (__float_as_uint(x) >> 31) != 0u; }
KILN_DEVICE bool kiln_signbit(double x) { return __double_as_longlong(x) < 0; }
template <class F> KILN_DEVICE F kiln_float_min(F x, F y) {
  return kiln_isnan(x) || kiln_isnan(y) ? kiln_nan(x) : (x < y || (x == y && kiln_signbit(x))) ? x : y;
}
template <class F> KILN_DEVICE F kiln_float_max(F x, F y) {
  return kiln_isnan(x) || kiln_isnan(y) ? kiln_nan(x) : (x > y || (x == y && !kiln_signbit(x))) ? x : y;
}
KILN_DEVICE float kiln_min(float x, float y) { return kiln_float_min(x, y); }
KILN_DEVICE double kiln_min(double x, double y) { return kiln_float_min(x, y); }
KILN_DEVICE float kiln_max(float x, float y) { return kiln_float_max(x, y); }
KILN_DEVICE double kiln_max(double x, double y) { return kiln_float_max(x, y); }
KILN_DEVICE unsigned kiln_is_nan(float x) { return kiln_isnan(x) ? 1u : 0u; }
KILN_DEVICE unsigned kiln_is_nan(double x) { return kiln_isnan(x) ? 1u : 0u; }
KILN_DEVICE unsigned kiln_is_infinity(float x) { return kiln_isinf(x) ? 1u : 0u; }
KILN_DEVICE unsigned kiln_is_infinity(double x) { return kiln_isinf(x) ? 1u : 0u; }

// ---- integer ops (T is int, unsigned, long long or unsigned long long) --------------------------
template <class T> KILN_DEVICE T kiln_add(T x, T y) { return T(KILN_U(T)(x) + KILN_U(T)(y)); }
template <class T> KILN_DEVICE T kiln_subtract(T x, T y) { return T(KILN_U(T)(x) - KILN_U(T)(y)); }
template <class T> KILN_DEVICE T kiln_multiply(T x, T y) { return T(KILN_U(T)(x) * KILN_U(T)(y)); }
template <class T> KILN_DEVICE T kiln_negate(T x) { return T(KILN_U(T)(0) - KILN_U(T)(x)); }
template <class T> KILN_DEVICE T kiln_abs(T x) {
  if constexpr (kiln_int_traits<T>::is_signed) return x < T(0) ? kiln_negate(x) : x;
  else return x;
}
template <class T> KILN_DEVICE T kiln_bitwise_not(T x) { return T(~KILN_U(T)(x)); }
template <class T> KILN_DEVICE T kiln_ceil(T x) { return x; }
template <class T> KILN_DEVICE T kiln_floor(T x) { return x; }
template <class T> KILN_DEVICE T kiln_round(T x) { return x; }
template <class T> KILN_DEVICE T kiln_sign(T x) {
  if constexpr (kiln_int_traits<T>::is_signed) return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
  else return x > T(0) ? T(1) : T(0);
}
template <class T> KILN_DEVICE unsigned kiln_is_nan(T) { return 0u; }
template <class T> KILN_DEVICE unsigned kiln_is_infinity(T) { return 0u; }
template <class T> KILN_DEVICE T kiln_min(T x, T y) { return x < y ? x : y; }
template <class T> KILN_DEVICE T kiln_max(T x, T y) { return x > y ? x : y; }
template <class T> KILN_DEVICE T kiln_bitwise_and(T x, T y) { return x & y; }
template <class T> KILN_DEVICE T kiln_bitwise_or(T x, T y) { return x | y; }
template <class T> KILN_DEVICE T kiln_bitwise_xor(T x, T y) { return x ^ y; }

template <class T> KILN_DEVICE KILN_U(T) kiln_width_mask(int bits) {
  return bits >= kiln_int_traits<T>::bits ? ~KILN_U(T)(0) : (KILN_U(T)(1) << bits) - 1;
}
// Leading zeros and set bits within the dtype's width |bits| (the value may be sign-extended).
template <class T> KILN_DEVICE T kiln_count_leading_zeros(T x, int bits) {
  const KILN_U(T) u = KILN_U(T)(x) & kiln_width_mask<T>(bits);
  const int z = kiln_int_traits<T>::bits == 64 ? __clzll((long long)u) : __clz((int)u);
  return T(z - (kiln_int_traits<T>::bits - bits));
}
template <class T> KILN_DEVICE T kiln_population_count(T x, int bits) {
  const KILN_U(T) u = KILN_U(T)(x) & kiln_width_mask<T>(bits);
  return T(kiln_int_traits<T>::bits == 64 ? __popcll((kiln_u64)u) : __popc((unsigned)u));
}
// Shifts by y < 0 or y >= width: left gives 0, right fills with the sign (0 for unsigned).
template <class T> KILN_DEVICE bool kiln_shift_out_of_range(T y, int bits) {
  if constexpr (kiln_int_traits<T>::is_signed) return y < T(0) || y >= T(bits);
  else return y >= T(bits);
}
template <class T> KILN_DEVICE T kiln_left_shift(T x, T y, int bits) {
  if (kiln_shift_out_of_range(y, bits)) return T(0);
  return T(KILN_U(T)(x) << int(y));
}
template <class T> KILN_DEVICE T kiln_right_shift(T x, T y, int bits) {
  if (kiln_shift_out_of_range(y, bits)) {
    if constexpr (kiln_int_traits<T>::is_signed) return x < T(0) ? T(-1) : T(0);
    else return T(0);
  }
  return x >> int(y);  // arithmetic for signed T
}
// Truncating division; x / 0 = -1 (all bits), INT_MIN / -1 = INT_MIN.
template <class T> KILN_DEVICE T kiln_quotient(T x, T y) {
  if (y == T(0)) return T(~KILN_U(T)(0));
  if constexpr (kiln_int_traits<T>::is_signed)
    if (y == T(-1)) return kiln_negate(x);
  return x / y;
}
// Remainder with the sign of x; x % 0 = x, INT_MIN % -1 = 0.
template <class T> KILN_DEVICE T kiln_remainder(T x, T y) {
  if (y == T(0)) return x;
  if constexpr (kiln_int_traits<T>::is_signed)
    if (y == T(-1)) return T(0);
  return x % y;
}
// Repeated squaring with wrapping; a negative exponent gives 0 unless the base is 1 or -1.
template <class T> KILN_DEVICE T kiln_pow(T x, T y) {
  if constexpr (kiln_int_traits<T>::is_signed) {
    if (y < T(0)) {
      if (x == T(1)) return T(1);
      if (x == T(-1)) return (KILN_U(T)(y) & 1u) ? T(-1) : T(1);
      return T(0);
    }
  }
  KILN_U(T) r = 1, b = KILN_U(T)(x), e = KILN_U(T)(y);
  while (e) {
    if (e & 1u) r *= b;
    b *= b;
    e >>= 1;
  }
  return T(r);
}

// ---- comparisons (IEEE for floats: not_equal is !(x == y)), logical ops, select ------------------
template <class T> KILN_DEVICE unsigned kiln_equal(T x, T y) { return x == y ? 1u : 0u; }
template <class T> KILN_DEVICE unsigned kiln_not_equal(T x, T y) { return !(x == y) ? 1u : 0u; }
template <class T> KILN_DEVICE unsigned kiln_greater(T x, T y) { return x > y ? 1u : 0u; }
template <class T> KILN_DEVICE unsigned kiln_less(T x, T y) { return x < y ? 1u : 0u; }
template <class T> KILN_DEVICE unsigned kiln_greater_equal(T x, T y) { return x >= y ? 1u : 0u; }
template <class T> KILN_DEVICE unsigned kiln_less_equal(T x, T y) { return x <= y ? 1u : 0u; }
KILN_DEVICE unsigned kiln_logical_and(unsigned x, unsigned y) { return (x != 0u && y != 0u) ? 1u : 0u; }
KILN_DEVICE unsigned kiln_logical_or(unsigned x, unsigned y) { return (x != 0u || y != 0u) ? 1u : 0u; }
KILN_DEVICE unsigned kiln_logical_xor(unsigned x, unsigned y) { return ((x != 0u) != (y != 0u)) ? 1u : 0u; }
template <class T> KILN_DEVICE T kiln_select(unsigned c, T x, T y) { return c != 0u ? x : y; }

// ---- casts: kiln_cast_<to>(x) for x of any compute type (codegen/eval.cpp cast_scalar) ------------
// An integer's 64-bit two's complement form: signed values sign-extend, unsigned zero-extend.
KILN_DEVICE kiln_u64 kiln_int_bits(int x) { return (kiln_u64)(long long)x; }
KILN_DEVICE kiln_u64 kiln_int_bits(unsigned x) { return (kiln_u64)x; }
KILN_DEVICE kiln_u64 kiln_int_bits(long long x) { return (kiln_u64)x; }
KILN_DEVICE kiln_u64 kiln_int_bits(kiln_u64 x) { return x; }
KILN_DEVICE long long kiln_wrap_signed(kiln_u64 b, int bits) {
  return bits >= 64 ? (long long)b : (long long)(b << (64 - bits)) >> (64 - bits);
}
KILN_DEVICE kiln_u64 kiln_wrap_unsigned(kiln_u64 b, int bits) {
  return bits >= 64 ? b : b & ((1ull << bits) - 1ull);
}
// Float to integer: truncate, NaN -> 0, saturate to the |bits|-wide range.
template <class F> KILN_DEVICE long long kiln_float_to_signed(F x, int bits) {
  const F t = kiln_trunc(x);
  if (kiln_isnan(t)) return 0;
  const F hi = F(1ull << (bits - 1));
  if (t >= hi) return (long long)((1ull << (bits - 1)) - 1ull);
  if (t < -hi) return -(long long)((1ull << (bits - 1)) - 1ull) - 1;
  return (long long)t;
}
template <class F> KILN_DEVICE kiln_u64 kiln_float_to_unsigned(F x, int bits) {
  const F t = kiln_trunc(x);
  if (kiln_isnan(t) || t <= F(0)) return 0;
  const F hi = bits >= 64 ? F(18446744073709551616.0) : F(1ull << bits);
  if (t >= hi) return kiln_wrap_unsigned(~0ull, bits);
  return (kiln_u64)t;
}
template <class T> KILN_DEVICE long long kiln_to_signed(T x, int bits) { return kiln_wrap_signed(kiln_int_bits(x), bits); }
KILN_DEVICE long long kiln_to_signed(float x, int bits) { return kiln_float_to_signed(x, bits); }
KILN_DEVICE long long kiln_to_signed(double x, int bits) { return kiln_float_to_signed(x, bits); }
template <class T> KILN_DEVICE kiln_u64 kiln_to_unsigned(T x, int bits) { return kiln_wrap_unsigned(kiln_int_bits(x), bits); }
KILN_DEVICE kiln_u64 kiln_to_unsigned(float x, int bits) { return kiln_float_to_unsigned(x, bits); }
KILN_DEVICE kiln_u64 kiln_to_unsigned(double x, int bits) { return kiln_float_to_unsigned(x, bits); }

template <class T> KILN_DEVICE unsigned kiln_cast_pred(T x) { return !(x == T(0)) ? 1u : 0u; }  // NaN -> 1
template <class T> KILN_DEVICE int kiln_cast_s8(T x) { return (int)kiln_to_signed(x, 8); }
template <class T> KILN_DEVICE int kiln_cast_s16(T x) { return (int)kiln_to_signed(x, 16); }
template <class T> KILN_DEVICE int kiln_cast_s32(T x) { return (int)kiln_to_signed(x, 32); }
template <class T> KILN_DEVICE long long kiln_cast_s64(T x) { return kiln_to_signed(x, 64); }
template <class T> KILN_DEVICE unsigned kiln_cast_u8(T x) { return (unsigned)kiln_to_unsigned(x, 8); }
template <class T> KILN_DEVICE unsigned kiln_cast_u16(T x) { return (unsigned)kiln_to_unsigned(x, 16); }
template <class T> KILN_DEVICE unsigned kiln_cast_u32(T x) { return (unsigned)kiln_to_unsigned(x, 32); }
template <class T> KILN_DEVICE kiln_u64 kiln_cast_u64(T x) { return kiln_to_unsigned(x, 64); }
// Integers and f64 reach f16/bf16 rounded once: to f32 by round to odd (the f32 toward zero, its
// last bit set when inexact), then to nearest even (core/half.hpp, as cast_scalar).
KILN_DEVICE float kiln_f32_odd(float x) { return x; }
KILN_DEVICE float kiln_f32_odd(double d) {
  const float f = (float)d;
  if ((double)f == d || kiln_isnan(d)) return f;
  unsigned b = __float_as_uint(f);
  if ((d > 0) == ((double)f > d)) b -= 1u;  // rounded away from zero: the neighbour toward it
  return __uint_as_float(b | 1u);
}
KILN_DEVICE float kiln_f32_odd_magnitude(kiln_u64 m) {
  if (m < (1ull << 24)) return (float)m;
  const int shift = 40 - __clzll((long long)m);  // the bits past the 24 an f32 keeps
  const kiln_u64 kept = (m >> shift) | ((m & ((1ull << shift) - 1ull)) != 0ull ? 1ull : 0ull);
  return (float)kept * __uint_as_float((unsigned)(127 + shift) << 23);  // exact: 2^shift
}
KILN_DEVICE float kiln_f32_odd(kiln_u64 x) { return kiln_f32_odd_magnitude(x); }
KILN_DEVICE float kiln_f32_odd(unsigned x) { return kiln_f32_odd_magnitude(x); }
KILN_DEVICE float kiln_f32_odd(long long x) {
  const float f = kiln_f32_odd_magnitude(x < 0 ? 0ull - (kiln_u64)x : (kiln_u64)x);
  return x < 0 ? -f : f;
}
KILN_DEVICE float kiln_f32_odd(int x) { return kiln_f32_odd((long long)x); }
template <class T> KILN_DEVICE float kiln_cast_f32(T x) { return (float)x; }
template <class T> KILN_DEVICE float kiln_cast_f16(T x) { return kiln_narrow_f16(kiln_f32_odd(x)); }
template <class T> KILN_DEVICE float kiln_cast_bf16(T x) { return kiln_narrow_bf16(kiln_f32_odd(x)); }
template <class T> KILN_DEVICE double kiln_cast_f64(T x) { return (double)x; }

#undef KILN_U
#endif  // KILN_TEMPLATES_CUDA_OPS_CUH
