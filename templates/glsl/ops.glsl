// The GLSL prelude: every elementwise op of the op table (codegen/ops.cpp) as kiln_<name>, with the
// semantics of the CPU reference (codegen/eval.cpp); see docs/semantics.md. Inlined first into
// every emitted shader, after the emitter's defines:
//   KILN_NEED_INT8 / KILN_NEED_INT16  the kernel stores 8-/16-bit elements (enables the extensions)
//   KILN_NEED_FLOAT64                 the kernel computes in double (compiles the f64 overloads)
//   KILN_USE_F32, KILN_USE_S32, KILN_USE_U32, KILN_USE_S64, KILN_USE_U64
//                                     some value is computed in float / int / uint / int64 / uint64
//   KILN_USE_CASTS                    the kernel converts between dtypes
// Sections nobody uses are skipped, which keeps shader compilation fast; the f32 transcendental
// functions (glsl/math_f32.glsl) follow this file only in kernels that call one.
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
  uint kiln_equal(T x, T y) { return x == y ? 1u : 0u; }                                            \
  uint kiln_not_equal(T x, T y) { return !(x == y) ? 1u : 0u; }                                     \
  uint kiln_greater(T x, T y) { return x > y ? 1u : 0u; }                                           \
  uint kiln_less(T x, T y) { return x < y ? 1u : 0u; }                                              \
  uint kiln_greater_equal(T x, T y) { return x >= y ? 1u : 0u; }                                    \
  uint kiln_less_equal(T x, T y) { return x <= y ? 1u : 0u; }                                       \
  T kiln_select(uint c, T x, T y) { return c != 0u ? x : y; }

#ifdef KILN_USE_F32
KILN_FLOAT_COMMON(float)
float kiln_rsqrt(float x) { precise float r = 1.0 / kiln_sqrt(x); return r; }  // f64: math_f64.glsl

// NVIDIA's Vulkan compiler divides as x * (1 / y): for |y| > 2^126 the reciprocal is subnormal and
// flushed to zero (H100, driver 580.159: inf / FLT_MAX gave NaN, 1 / FLT_MAX gave 0). There both
// operands are scaled by 2^-4, which leaves the quotient as it is and rounds it once (scaling the
// quotient back instead rounded subnormal quotients twice: 0.61 ulp). x * 2^-4 is exact unless
// |x| < 2^-122, and then |x / y| < 2^-248 rounds to a zero of the right sign either way.
// (The conformance case divide.f32.specials is the regression test; lavapipe divides exactly.)
float kiln_divide(float x, float y) {
  if (abs(y) > 8.5070592e+37) { precise float r = (x * 0.0625) / (y * 0.0625); return r; }
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

// ---- f32 transcendental functions: glsl/math_f32.glsl (inlined after this file when used) ------

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
// Integers and f64 reach f16/bf16 rounded once: to f32 by round to odd (the f32 toward zero, its
// last bit set when inexact), then to nearest even (core/half.hpp, as cast_scalar).
float kiln_f32_odd_magnitude(uint64_t m) {
  if (m < (1ul << 24)) return float(m);
  const uint hi = uint(m >> 32);
  const int shift = (hi != 0u ? 33 + findMSB(hi) : 1 + findMSB(uint(m))) - 24;  // bits past the 24 kept
  const uint64_t kept = (m >> shift) | ((m & ((1ul << shift) - 1ul)) != 0ul ? 1ul : 0ul);
  return float(kept) * uintBitsToFloat(uint(127 + shift) << 23);  // exact: 2^shift
}
float kiln_f32_odd(float x) { return x; }
float kiln_f32_odd(uint64_t x) { return kiln_f32_odd_magnitude(x); }
float kiln_f32_odd(uint x) { return kiln_f32_odd_magnitude(uint64_t(x)); }
float kiln_f32_odd(int64_t x) {
  const float f = kiln_f32_odd_magnitude(x < 0l ? 0ul - uint64_t(x) : uint64_t(x));
  return x < 0l ? -f : f;
}
float kiln_f32_odd(int x) {  // in 32 bits: lavapipe (Mesa 22.3) got int64_t(x) < 0 wrong here
  const float f = kiln_f32_odd_magnitude(uint64_t(x < 0 ? 0u - uint(x) : uint(x)));
  return x < 0 ? -f : f;
}
#ifdef KILN_NEED_FLOAT64
float kiln_f32_odd(double d) {
  const float f = float(d);
  if (double(f) == d || kiln_isnan(d)) return f;
  uint b = floatBitsToUint(f);
  if ((d > 0.0LF) == (double(f) > d)) b -= 1u;  // rounded away from zero: the neighbour toward it
  return uintBitsToFloat(b | 1u);
}
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
  /* integers and f64 reach f16/bf16 rounded once (kiln_f32_odd) */                                \
  float kiln_cast_f16(S x) { return kiln_narrow_f16(kiln_f32_odd(x)); }                             \
  float kiln_cast_bf16(S x) { return kiln_narrow_bf16(kiln_f32_odd(x)); }
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
