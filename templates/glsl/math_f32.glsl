// f32 transcendental functions (exp ... pow; erf, erfc, erf_inv in erf_f32.glsl), inlined after
// glsl/ops.glsl by glsl_prelude (codegen/emit.cpp) only when an expression uses one of them on f32
// (also the compute type of f16 and bf16). Accuracy: docs/semantics.md "Accuracy" (kiln-accuracy).
// Written out where GLSL has none (expm1, log1p, cbrt, erf, erfc, erf_inv) or where its
// precision rules are too loose for the op table tolerances (sin/cos absolute error 2^-11, atan
// 4096 ulp, asinh/acosh/atanh/tanh by their textbook formulas, which cancel or overflow).
// ---- float-float helpers (pow): the f32 versions of math_f64.glsl's, for the same reasons ------
// (lavapipe's fma is unfused and it reassociates despite `precise`): kiln_hide is an identity the
// compiler cannot see through, products are exact by Veltkamp's split (2^12 + 1) and Dekker.
float kiln_hide(float v, int n) {
  const uint b = floatBitsToUint(v);
  return uintBitsToFloat(b ^ (uint(b == 0x7FA5C3D1u) << n));  // a signalling NaN nothing here makes
}
float kiln_hide(float v) { return kiln_hide(v, 0); }
void kiln_two_sum(float a0, float b0, out float s, out float e) {
  const float a = kiln_hide(a0, 1), b = kiln_hide(b0, 2);
  s = kiln_hide(a + b);
  precise float bb = s - a;
  precise float err = (a - (s - bb)) + (b - bb);
  e = kiln_hide(err, 3);
}
void kiln_fast_two_sum(float a0, float b0, out float s, out float e) {  // |a| >= |b|
  const float a = kiln_hide(a0, 1), b = kiln_hide(b0, 2);
  s = kiln_hide(a + b);
  precise float err = b - (s - a);
  e = kiln_hide(err, 3);
}
void kiln_split32(float a, out float hi, out float lo) {  // |a| < 2^115
  const float c = kiln_hide(4097.0 * a);
  hi = kiln_hide(c - (c - a));
  precise float l = a - hi;
  lo = kiln_hide(l, 3);
}
void kiln_two_prod(float a0, float b0, out float p, out float e) {
  const float a = kiln_hide(a0, 1), b = kiln_hide(b0, 2);
  p = kiln_hide(a * b);
  float ah, al, bh, bl;
  kiln_split32(a, ah, al);
  kiln_split32(b, bh, bl);
  precise float err = (((ah * bh - p) + kiln_hide(ah, 5) * bl) + al * kiln_hide(bh, 6)) + kiln_hide(al, 7) * kiln_hide(bl, 8);
  e = kiln_hide(err, 3);
}
float kiln_residual32(float a0, float b0, float c0) {  // c - a b, c ~ a b (as kiln_residual64)
  const float a = kiln_hide(a0, 1), b = kiln_hide(b0, 2), c = kiln_hide(c0, 3);
  float ah, al, bh, bl;
  kiln_split32(a, ah, al);
  kiln_split32(b, bh, bl);
  precise float r = (((c - ah * bh) - kiln_hide(ah, 5) * bl) - al * kiln_hide(bh, 6)) - kiln_hide(al, 7) * kiln_hide(bl, 8);
  return kiln_hide(r, 4);
}
void kiln_ff_add(inout float hi, inout float lo, float b, float c) {
  float s, e;
  kiln_two_sum(hi, b, s, e);
  precise float t = e + (lo + c);
  kiln_fast_two_sum(s, t, hi, lo);
}

// e^(x + xlo) = v 2^k for |x| < 105, v in [0.7, 1.42] (unrounded but for v itself): kiln_exp's
// reduction with the low part carried, 1 + r summed exactly, e^r - 1 - r by its series to r^8.
float kiln_exp_ff_parts(float x, float xlo, out int ki) {
  const float k = roundEven(x * 1.44269504088896341);
  const float k2 = kiln_hide(k);
  precise float rhi = x - k * 0.693145751953125;  // exact
  precise float rlo = xlo - k2 * 1.428606765330187e-06;
  precise float r = rhi + rlo;
  precise float p = 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  precise float tr = r * r * p;
  float s, e;
  kiln_fast_two_sum(1.0, rhi, s, e);
  precise float v = s + (e + (rlo + tr));
  ki = int(k);
  return v;
}
// e^(x + xlo) rounded once, also into the subnormals (2^k in two normal factors).
float kiln_exp_ff(float x, float xlo) {
  int k;
  const float v = kiln_exp_ff_parts(x, xlo, k);
  const int k1 = k / 2;
  return (v * uintBitsToFloat(uint(k1 + 127) << 23)) * uintBitsToFloat(uint(k - k1 + 127) << 23);
}
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
  if (x == 0.0) return x;  // +-0 keeps its sign (the reference, CUDA)
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
  if (x < -16.5) {  // e^x < 2^-23.8: its error vanishes in e^x - 1
    precise float r = kiln_exp(x) - 1.0;
    return r;
  }
  // e^x - 1 loses up to 1.6 ulp here (e^x's error, scaled by e^x / (e^x - 1); 1.32 ulp at -0.507
  // below -1/2). Instead x = k ln2 + r (kiln_exp's reduction), |r| <= ln2/2, m = e^r - 1 by its
  // series, and e^x - 1 = 2^k m + (2^k - 1), rounded once (2^k m and 2^k - 1 are exact for
  // -24 <= k <= 24); beyond, (m + 1) 2^k in two factors.
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
  if (ki <= 24) {  // 2^k twice, the second hidden: lavapipe would factor 2^k (m + 1) - 1
    const float p2 = uintBitsToFloat(uint(ki + 127) << 23);
    precise float e = m * p2 + (kiln_hide(p2) - 1.0);
    return e;
  }
  const int k1 = ki / 2;
  const float v = kiln_hide(m + 1.0);  // hidden: lavapipe folds m - ((m + 1) - 1) to 0
  if (ki <= 50) {  // the -1 is still up to half an ulp (1.34 ulp at 17.017): 2^k v - 1 summed exactly
    float s, e;
    kiln_two_sum(v * uintBitsToFloat(uint(ki + 127) << 23), -1.0, s, e);
    precise float r = s + (e + (m - (v - 1.0)) * uintBitsToFloat(uint(ki + 127) << 23));
    return r;
  }
  precise float e = (v * uintBitsToFloat(uint(k1 + 127) << 23)) * uintBitsToFloat(uint(ki - k1 + 127) << 23);
  return e;
}
float kiln_log1p(float x) {
  if (x == 0.0) return x;  // +-0 keeps its sign (the reference, CUDA)
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
// quadrant q: |x| = q * pi/2 + (r + rl), |r| <= pi/4. pi/2 in four parts, the first three of 8, 11
// and 11 bits so that each j C_i is exact (j < 2^13; the old third part had 24 bits, and pi/2 in
// three floats was 3.7e-11 off at 8192).
float kiln_sincos_reduce(float a, out int q, out float rl) {
  float j = floor(a * 0.636619772367581343 + 0.5);
  q = int(j);
  // Multipliers equal to j that the compiler cannot prove equal: lavapipe factored
  // (r - j*C2) - j*C3 into r - j*(C2 + C3), one rounded constant, despite `precise` (sin(2pi_f32)
  // was 722 ulp off).
  const float j2 = float(bitfieldExtract(q, 0, 30)), j3 = float(bitfieldExtract(q, 0, 29)),
              j4 = float(bitfieldExtract(q, 0, 28));  // q < 2^13
  precise float r = a - j * 1.5703125;
  r = r - j2 * 4.83751296997070312e-4;
  // r - j C3 (exact product) as s + e by Knuth's sum, only s hidden (kiln_two_sum's four hides cost
  // lavapipe 10 %; rounding r here cost 2.19 ulp in kiln-accuracy --full)
  const float p3 = j3 * 7.549533620476723e-08;
  const float s = kiln_hide(r - p3);
  precise float bb = s - r;
  precise float e = (r - (s - bb)) + (-p3 - bb);
  rl = e - j4 * 2.5633440682570896e-12;
  return s;
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
float kiln_trig_reduce_huge(float a, out int q, out float rl) {
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
  // r 2^62 = |f| (pi/2 2^30) 2^-30 in integers (pi/2 to 31 bits: 2^-31 relative, far below a float
  // ulp), then as two floats: no rounded float product (the fma form was not fused on lavapipe).
  const uint64_t u = uint64_t(f < 0l ? -f : f), c = 0x6487ED51ul;  // pi/2 2^30, |f| < 2^61
  const int64_t rr = int64_t((((u >> 32) * c) << 2) + (((u & 0xFFFFFFFFul) * c) >> 30));
  const float r_hi = float(rr);
  rl = float(rr - int64_t(r_hi)) * 2.16840434497100887e-19;  // * 2^-62 (exact)
  const float r = r_hi * 2.16840434497100887e-19;
  if (f < 0l) {
    rl = -rl;
    return -r;
  }
  return r;
}
// |x| = q * pi/2 + (r + rl), |r| <= pi/4.
// GPUs skip the huge path when no invocation of a subgroup needs it; lavapipe runs both sides of
// every data-dependent branch, so there it costs every element (sin.f32 13 -> 45 ms at 4M).
float kiln_trig_reduce(float a, out int q, out float rl) {
  float r = kiln_sincos_reduce(a, q, rl);
  if (a > 8192.0) r = kiln_trig_reduce_huge(a, q, rl);
  return r;
}
// sin(r + rl) and cos(r + rl) (Cephes sinf/cosf polynomials, |r| <= pi/4), rl to first order.
float kiln_sin_poly(float r, float rl) {
  precise float z = r * r;
  precise float p = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + (rl - 0.5 * z * rl) + r;
  return p;
}
// cos: 1 - r^2/2 summed exactly (Fast2Sum; rounding it cost ~0.5 ulp, cos 1.9 in all).
float kiln_cos_poly(float r, float rl) {
  precise float z = r * r;
  const float h = 0.5 * z;
  const float w = kiln_hide(1.0 - h);
  precise float e = (1.0 - w) - h;
  precise float p = e + (((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - r * rl);
  return w + p;
}
float kiln_sin(float x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f32();
  int q;
  float rl;
  const float r = kiln_trig_reduce(abs(x), q, rl);
  const int m = q & 3;
  const float v = (m & 1) == 0 ? kiln_sin_poly(r, rl) : kiln_cos_poly(r, rl);
  return kiln_copysign(1.0, x) * (m >= 2 ? -v : v);
}
float kiln_cos(float x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f32();
  int q;
  float rl;
  const float r = kiln_trig_reduce(abs(x), q, rl);
  const int m = q & 3;
  const float v = (m & 1) == 0 ? kiln_cos_poly(r, rl) : kiln_sin_poly(r, rl);
  return (m == 1 || m == 2) ? -v : v;
}
float kiln_tan(float x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return kiln_nan_f32();
  int q;
  float rl;
  const float r = kiln_trig_reduce(abs(x), q, rl);
  const float s = kiln_sin_poly(r, rl), c = kiln_cos_poly(r, rl);
  precise float t = (q & 1) == 0 ? s / c : -c / s;
  return kiln_copysign(1.0, x) * t;
}
// e^a / 2 for 88 <= a (sinh and cosh there): e^a = v 2^k (kiln_exp_ff_parts, v rounded once) and
// 2^(k-1) in two factors, so nothing overflows early and v is the only rounding (e^(a/2) squared
// doubled its error: cosh 2.31 ulp at 89.37).
float kiln_half_exp_large(float a) {
  if (a > 90.0) return kiln_inf_f32();
  int k;
  const float v = kiln_exp_ff_parts(a, 0.0, k);
  k -= 1;
  const int k1 = k / 2;
  return (v * uintBitsToFloat(uint(k1 + 127) << 23)) * uintBitsToFloat(uint(k - k1 + 127) << 23);
}
float kiln_sinh(float x) {
  float a = abs(x);
  precise float r;
  if (a < 88.0) {
    precise float e = kiln_expm1(a);
    r = 0.5 * (e + e / (e + 1.0));
  } else {
    r = kiln_half_exp_large(a);
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
  return kiln_half_exp_large(a);
}
// tanh: below 0.3 its Maclaurin series to x^13 (truncation < 1e-10 relative), where e / (e + 2)
// passed expm1's error on whole (2.34 ulp at -0.00776); beyond, e / (e + 2) with e = expm1(2|x|)
// (its error scaled by 2 / (e + 2) < 0.71 there). (The series to x^21 below 0.55 made gelu_tanh
// 6 % slower on lavapipe, which runs both sides of the branch.)
float kiln_tanh(float x) {
  if (x == 0.0) return x;  // +-0 keeps its sign (the reference, CUDA)
  float a = abs(x);
  if (kiln_isnan(x)) return x;
  if (a > 20.0) return kiln_copysign(1.0, x);
  if (a < 0.3) {
    precise float z = x * x;
    precise float p = 3.5921280365724810e-03;
    p = p * z - 8.8632355299021966e-03;
    p = p * z + 2.1869488536155203e-02;
    p = p * z - 5.3968253968253968e-02;
    p = p * z + 0.13333333333333333;
    p = p * z - 0.33333333333333333;
    precise float r = x + x * z * p;
    return r;
  }
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
  if (a > 0.5) {  // pi/2 - 2 asin(sqrt(z)): pi/2, sqrt(z) and the difference carried in two floats
    // (the difference cancels up to 1 bit: rounded parts cost 2.34 ulp at 0.5033)
    precise float z = 0.5 * (1.0 - a);  // exact
    const float s = sqrt(z);
    precise float sl = s > 0.0 ? kiln_residual32(s, s, z) / (2.0 * s) : 0.0;  // sqrt(z) - s
    precise float t = s * z * kiln_asin_poly(z);
    float h, e;
    kiln_two_sum(1.57079637050628662, -2.0 * s, h, e);  // pi/2 = 1.5707963705 - 4.3711390e-8
    r = h + (e + (-4.37113900018624283e-08 - 2.0 * (sl + t)));
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
// atan: Cephes atanf's reduction and polynomial, the reduced argument t + tl and the constant (pi/4
// or pi/2) carried in two floats and summed exactly (rounded t and pi/4 cost 2.36 ulp at 0.4437).
float kiln_atan(float x) {
  if (kiln_isnan(x)) return x;
  const float a = abs(x);
  float t = a, tl = 0.0, yh = 0.0, yl = 0.0;
  if (a > 2.414213562373095) {  // pi/2 + atan(-1/a)
    const float q = kiln_hide(1.0 / a);
    t = -q;
    tl = a < 1.0e30 ? -kiln_residual32(a, q, 1.0) / a : 0.0;
    yh = 1.5707963705062866;
    yl = -4.371138828673793e-08;
  } else if (a > 0.4142135623730950) {  // pi/4 + atan((a - 1) / (a + 1))
    float n, nl, d, dl;
    kiln_two_sum(a, -1.0, n, nl);
    kiln_two_sum(a, 1.0, d, dl);
    t = kiln_hide(n / d);
    tl = (kiln_residual32(t, d, n) + (nl - t * dl)) / d;
    yh = 0.7853981852531433;
    yl = -2.1855694143368964e-08;
  }
  precise float z = t * t;
  precise float p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * t;
  float s, e;
  kiln_two_sum(yh, t, s, e);
  precise float y = s + (e + (yl + (tl + p)));
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
// log(x) = hi + lo to ~2^-40 for a finite x > 0 (pow: its error is multiplied by |y log x| <= 104):
// x = 2^e m from the bits (subnormals by their integer significand), log(m) = 2s + (2/3)s^3 + s^5 R,
// s = f / (2 + f), the first two terms as float-floats (as kiln_log_dd64), ln2 in three parts.
float kiln_log_ff(float x, out float lo) {
  uint ix = floatBitsToUint(x);
  int e = int(ix >> 23) - 127;
  if (ix < 0x00800000u) {
    ix = floatBitsToUint(float(ix));
    e = int(ix >> 23) - 127 - 149;
  }
  uint mb = ix & 0x007FFFFFu;
  if (mb >= 0x003504F3u) {
    e += 1;
    mb |= 0x3F000000u;
  } else {
    mb |= 0x3F800000u;
  }
  const float f = kiln_hide(uintBitsToFloat(mb) - 1.0);  // exact
  float d, dl;
  kiln_two_sum(2.0, f, d, dl);
  const float sh = kiln_hide(f / d);
  precise float sl = (kiln_residual32(sh, d, f) - sh * dl) / d;
  float z, zl, c, cl, t, tl;
  kiln_two_prod(sh, sh, z, zl);
  zl = zl + 2.0 * sh * sl;
  kiln_two_prod(z, sh, c, cl);
  cl = cl + (z * sl + zl * sh);
  kiln_two_prod(c, 0.6666666865348816, t, tl);
  tl = tl + (c * -1.9868215517249155e-08 + cl * 0.6666666865348816);
  precise float R = 2.0 / 15.0;
  R = R * z + 2.0 / 13.0;
  R = R * z + 2.0 / 11.0;
  R = R * z + 2.0 / 9.0;
  R = R * z + 2.0 / 7.0;
  R = R * z + 2.0 / 5.0;
  precise float rest = R * z * c;
  const float de = float(e);
  float ln_h, ln_l;
  kiln_two_prod(kiln_hide(de, 4), 1.428606765330187e-06, ln_h, ln_l);
  float hi = de * 0.693145751953125, l = 0.0;  // exact: 15 bits times 9
  kiln_ff_add(hi, l, 2.0 * sh, 2.0 * sl);
  kiln_ff_add(hi, l, t, tl);
  kiln_ff_add(hi, l, ln_h, ln_l + (rest + kiln_hide(de, 9) * 5.497923148104107e-14));
  lo = l;
  return hi;
}
// C pow: integer exponents of negative bases, zeros, infinities and NaN as in std::pow; otherwise
// e^(y log|x|) through float-floats (the builtin exp2(y log2 x) overflowed at pow(FLT_MAX, 1) and
// flushed subnormal results: bf16 pow(7.5e-17, 2.36) gave 0, true 9.0e-39).
float kiln_pow(float x, float y) {
  if (y == 0.0 || x == 1.0) return 1.0;
  if (kiln_isnan(x) || kiln_isnan(y)) return kiln_nan_f32();
  float ax = abs(x), ay = abs(y);
  bool y_int = kiln_isinf(y) || floor(y) == y;
  bool y_odd = y_int && ay < 16777216.0 && (uint(ay) & 1u) == 1u;
  if (ax == 1.0 && y_int) return y_odd ? x : 1.0;  // -1 to an integer, however large
  if (kiln_isinf(y)) return ((ax < 1.0) == (y > 0.0)) ? 0.0 : kiln_inf_f32();
  // x classified by bits: a driver that flushes subnormals compares them equal to 0.
  const uint mag = floatBitsToUint(x) & 0x7FFFFFFFu;
  float r;
  if (mag == 0u) {
    r = y < 0.0 ? kiln_inf_f32() : 0.0;
  } else if (mag == 0x7F800000u) {
    r = y < 0.0 ? 0.0 : kiln_inf_f32();
  } else if (kiln_signbit(x) && !y_int) {
    return kiln_nan_f32();
  } else {
    float ll;
    const float lh = kiln_log_ff(uintBitsToFloat(mag), ll);
    float p, pl;
    kiln_two_prod(y, lh, p, pl);  // |y| < 2^115 here, or |p| is far beyond 105 anyway
    pl = pl + y * ll;
    r = p > 89.0 ? kiln_inf_f32() : p < -104.0 ? 0.0 : kiln_exp_ff(p, pl);
  }
  return (kiln_signbit(x) && y_odd) ? -r : r;
}
