// f32 transcendental functions (sin ... pow, erf_inv), inlined after glsl/ops.glsl by
// glsl_prelude (codegen/emit.cpp) only when an expression uses one of them on f32 (also the compute
// type of f16 and bf16). Accuracy: docs/semantics.md "Accuracy" (kiln-accuracy, tests/accuracy/).
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
// e ln2 + log(1 + f) for an exact f, |f| < 0.5: log(1 + f) = f - (h - s (h + R)), s = f / (2 + f),
// h = f^2 / 2, R the series of 2 atanh(s) - 2s in s^2 (to s^18). f is exact and the rest a small
// correction, so the sum rounds about once (2 (s + s^3 p) was 1.57 ulp, the builtin log 2.07 on
// lavapipe). ln2 in two parts as in kiln_exp; |tail| (a small addend, log1p's rounding error of
// 1 + x over 1 + x) joins the low part, so it too is rounded once.
float kiln_log_reduced(float f, int e, float tail) {
  precise float s = f / (2.0 + f);
  precise float z = s * s;
  precise float R = 2.0 / 17.0;
  R = R * z + 2.0 / 15.0;
  R = R * z + 2.0 / 13.0;
  R = R * z + 2.0 / 11.0;
  R = R * z + 2.0 / 9.0;
  R = R * z + 2.0 / 7.0;
  R = R * z + 2.0 / 5.0;
  R = R * z + 2.0 / 3.0;
  R = R * z;
  precise float h = 0.5 * f * f;
  // e twice, the second unknown to the compiler: lavapipe factors e*hi and e*lo into one product.
  const float de = float(e), de2 = float(bitfieldExtract(e, 0, 16));
  precise float r = de * 0.693145751953125 - ((h - (s * (h + R) + (de2 * 1.42860682030941723e-06 + tail))) - f);
  return r;
}
// log(x 2^scale) for a normal x: x = 2^e m with m in [sqrt(1/2), sqrt(2)) from the bits, f = m - 1
// exact (next to 1 too: there e = 0 and f = x - 1, the builtin's 13 % at 1 - 2^-23 gone).
float kiln_log_normal(float x, int scale, float tail) {
  const uint ix = floatBitsToUint(x);
  int e = int(ix >> 23) - 127 + scale;
  uint mb = ix & 0x007fffffu;
  if (mb >= 0x003504f3u) {  // m >= sqrt(2): halve it
    e += 1;
    mb |= 0x3f000000u;
  } else {
    mb |= 0x3f800000u;
  }
  precise float f = uintBitsToFloat(mb) - 1.0;
  return kiln_log_reduced(f, e, tail);
}
float kiln_log(float x) {
  // Classified by bits: a driver that flushes f32 subnormals (NVIDIA) compares a subnormal equal
  // to 0 and flushes it in arithmetic.
  const uint mag = floatBitsToUint(x) & 0x7fffffffu;
  if (mag > 0x7f800000u || floatBitsToUint(x) > 0x80000000u) return kiln_nan_f32();  // NaN, x < 0
  if (mag == 0u) return -kiln_inf_f32();
  if (mag == 0x7f800000u) return x;
  // Subnormals: x = mag * 2^-149 with mag exact as a float (the builtin was wrong for them, e.g.
  // log(2^-149) gave -88.03), so log(x) = log(float(mag)) with its exponent 149 lower.
  if (mag < 0x00800000u) return kiln_log_normal(float(mag), -149, 0.0);
  return kiln_log_normal(x, 0, 0.0);
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
  if (x < 0.5) {  // e^x < 0.61: its error shrinks in e^x - 1 (|result| > 0.39)
    precise float r = kiln_exp(x) - 1.0;
    return r;
  }
  // e^x - 1 loses up to 1.6 ulp here (e^x's error, scaled by e^x / (e^x - 1)). Instead x = k ln2 + r
  // (kiln_exp's reduction), |r| <= ln2/2, m = e^r - 1 by its series, and e^x - 1 = 2^k m + (2^k - 1),
  // rounded once (2^k m and 2^k - 1 are exact for k <= 24); beyond, (m + 1) 2^k in two factors.
  const float k = roundEven(x * 1.44269504088896341);
  const float k2 = float(bitfieldExtract(int(k), 0, 16));  // k, unknown to the compiler (kiln_exp)
  precise float r = fma(-k2, 1.42860682030941723e-06, fma(-k, 0.693145751953125, x));
  precise float p = 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  precise float m = p * r * r + r;
  const int ki = int(k);
  if (ki <= 24) {
    precise float scaled = m * uintBitsToFloat(uint(ki + 127) << 23);
    precise float e = scaled + float((1 << ki) - 1);
    return e;
  }
  const int k1 = ki / 2;
  precise float e = ((m + 1.0) * uintBitsToFloat(uint(k1 + 127) << 23)) * uintBitsToFloat(uint(ki - k1 + 127) << 23);
  return e;
}
float kiln_log1p(float x) {
  if (kiln_isnan(x) || x < -1.0) return kiln_nan_f32();
  if (x == -1.0) return -kiln_inf_f32();
  if (kiln_isinf(x)) return x;
  // e = 0, but not to the compiler: with a constant 0 lavapipe folded e's terms away and then
  // reassociated f - (h - c) into (f - h) + c despite `precise` (1.03 ulp at log(1.2011)).
  if (abs(x) < 0.5) return kiln_log_reduced(x, int(x > 0.5), 0.0);
  // u = 1 + x rounded, c its rounding error (Fast2Sum, exact), log1p(x) = log(u) + c / u. (The
  // builtin log(1 + x) was 2.88 ulp.) u passes through an xor with a zero the compiler cannot
  // see: lavapipe folded x - ((1 + x) - 1) to 0 despite `precise`.
  const uint opaque_zero = uint(x > 3.0e38);
  const float u = uintBitsToFloat(floatBitsToUint(1.0 + x) ^ opaque_zero);
  precise float c = x >= 1.0 ? 1.0 - (u - x) : x - (u - 1.0);
  precise float cu = c / u;
  return kiln_log_normal(u, 0, cu);
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
// erf_inv: Giles' single-precision approximation ("Approximating the erfinv function", 2010),
// erf_inv(y) ~ y * kiln_erf_inv_poly(-log((1 - y) (1 + y))) (also erf_f64.glsl's first guess), and
// one Newton step on kiln_erf.
float kiln_erf_inv_poly(float w) {
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
  return p;
}
float kiln_erf_inv(float y) {
  if (kiln_isnan(y) || abs(y) > 1.0) return kiln_nan_f32();
  if (abs(y) == 1.0) return kiln_copysign(kiln_inf_f32(), y);
  precise float w = -log((1.0 - y) * (1.0 + y));
  precise float r = kiln_erf_inv_poly(w) * y;
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

