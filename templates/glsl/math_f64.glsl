// f64 transcendental functions, exp ... pow (GLSL has none in double precision), inlined after
// glsl/ops.glsl by glsl_prelude (codegen/emit.cpp) when an expression uses one on f64;
// glsl/trig_f64.glsl (sin ... atan2) and glsl/erf_f64.glsl follow it. Bounds: CUDA's documented
// max ulp for the double functions (exp, expm1, log, log1p, cosh, tanh, cbrt 1; sigmoid, sinh,
// atanh, pow 2; asinh, acosh 3), measured by kiln-accuracy (docs/semantics.md "Accuracy").
//
// The building blocks are double-double values (hi + lo, |lo| <= ulp(hi)/2): e^x, log and the
// reduced trig argument are carried to ~2^-100 and rounded once at the end. Error-free sums and
// products only work if the compiler keeps them as written, and lavapipe does not, despite
// `precise`: it folded x - ((1 + x) - 1) to 0 and factored a*b + a*c into a*(b + c) (see
// math_f32.glsl). Every value such a step depends on passes through kiln_hide, an xor with a zero
// the compiler cannot see (a dispatch never has 0 workgroups), so there is nothing to fold.
double kiln_hide(double v, int n) {
  const uint64_t b = doubleBitsToUint64(v);
  return uint64BitsToDouble(b ^ (uint64_t(b == 0x7FF4B1D3C0DE5EEDul) << n));
}
double kiln_hide(double v) { return kiln_hide(v, 0); }
double kiln_nan_f64() { return uint64BitsToDouble(0x7FF8000000000000ul); }
double kiln_inf_f64() { return uint64BitsToDouble(0x7FF0000000000000ul); }
double kiln_copysign(double m, double s) {
  return uint64BitsToDouble((doubleBitsToUint64(m) & 0x7FFFFFFFFFFFFFFFul) | (doubleBitsToUint64(s) & 0x8000000000000000ul));
}
double kiln_pow2_64(int k) { return uint64BitsToDouble(uint64_t(k + 1023) << 52); }  // k in [-1022, 1023]
// v * 2^k for k in [-2044, 2046], in two normal factors: a subnormal result is rounded once.
double kiln_scale64(double v, int k) {
  const int k1 = k / 2;
  return (v * kiln_pow2_64(k1)) * kiln_pow2_64(k - k1);
}
// s + e = a + b exactly (Knuth); the fast form needs |a| >= |b| (or a = 0). Inputs and outputs are
// hidden too: lavapipe reassociated an addend's own sum (x + c) into the error terms (the product
// error of (0.5 + 2^-30) (0.5 + 2^-29) came out 0), and a caller's (c - p) - e into c - (a b).
void kiln_two_sum(double a0, double b0, out double s, out double e) {
  const double a = kiln_hide(a0, 1), b = kiln_hide(b0, 2);
  s = kiln_hide(a + b);
  precise double bb = s - a;
  precise double err = (a - (s - bb)) + (b - bb);
  e = kiln_hide(err, 3);
}
void kiln_fast_two_sum(double a0, double b0, out double s, out double e) {
  const double a = kiln_hide(a0, 1), b = kiln_hide(b0, 2);
  s = kiln_hide(a + b);
  precise double err = b - (s - a);
  e = kiln_hide(err, 3);
}
// p + e = a b exactly, by Veltkamp's split and Dekker's product, not fma: SPIR-V's Fma need not be
// fused, and lavapipe's is not (fma(a, a, -a*a) gave 0 for a = 0.5 + 2^-30). |a|, |b| < 2^995.
void kiln_split64(double a, out double hi, out double lo) {
  const double c = kiln_hide(134217729.0LF * a);  // 2^27 + 1
  hi = kiln_hide(c - (c - a));
  precise double l = a - hi;
  lo = kiln_hide(l, 3);
}
// Each half is used twice, as two copies the compiler cannot prove equal: lavapipe factored
// ah bh + al bh into (ah + al) bh = a bh, rounded (math_f32.glsl saw the same with Cody-Waite).
void kiln_two_prod(double a0, double b0, out double p, out double e) {
  const double a = kiln_hide(a0, 1), b = kiln_hide(b0, 2);
  p = kiln_hide(a * b);
  double ah, al, bh, bl;
  kiln_split64(a, ah, al);
  kiln_split64(b, bh, bl);
  precise double err = (((ah * bh - p) + kiln_hide(ah, 5) * bl) + al * kiln_hide(bh, 6)) + kiln_hide(al, 7) * kiln_hide(bl, 8);
  e = kiln_hide(err, 3);  // else lavapipe cancels p against a caller's c - p
}
// c - a b, rounded once (the remainder of a quotient or square root: c ~ a b, so each step but
// the last is exact; Dekker). Not (c - p) - e from kiln_two_prod: lavapipe returned 0 for that.
double kiln_residual64(double a0, double b0, double c0) {
  const double a = kiln_hide(a0, 1), b = kiln_hide(b0, 2), c = kiln_hide(c0, 3);
  double ah, al, bh, bl;
  kiln_split64(a, ah, al);
  kiln_split64(b, bh, bl);
  precise double r = (((c - ah * bh) - kiln_hide(ah, 5) * bl) - al * kiln_hide(bh, 6)) - kiln_hide(al, 7) * kiln_hide(bl, 8);
  return kiln_hide(r, 4);
}
// hi + lo += b + c (a double-double plus a double-double), renormalized.
void kiln_dd_add(inout double hi, inout double lo, double b, double c) {
  double s, e;
  kiln_two_sum(hi, b, s, e);
  precise double t = e + (lo + c);
  kiln_fast_two_sum(s, t, hi, lo);
}

// ---- e^x ------------------------------------------------------------------------------------------
// (e^r - 1 - r - r^2/2) / r^3 = 1/6 + r/24 + ... + r^10/13!, by Horner (e^x and expm1 share it).
double kiln_exp_taylor64(double r) {
  precise double p = 1.6059043836821613e-10LF;
  p = p * r + 2.08767569878681e-09LF;
  p = p * r + 2.505210838544172e-08LF;
  p = p * r + 2.755731922398589e-07LF;
  p = p * r + 2.7557319223985893e-06LF;
  p = p * r + 2.48015873015873e-05LF;
  p = p * r + 0.0001984126984126984LF;
  p = p * r + 0.001388888888888889LF;
  p = p * r + 0.008333333333333333LF;
  p = p * r + 0.041666666666666664LF;
  p = p * r + 0.16666666666666666LF;
  return p;
}
// e^(x + xlo) = 2^k (hi + lo) for finite |x| < 746 (xlo: pow's low part, |xlo| < ulp(x)):
// x = k ln2 + r, ln2 in two parts (hi has 42 bits, so k hi is exact for |k| < 2^11 and x - k hi is
// exact), e^r = 1 + r + r^2 (1/2 + r/6 + ... + r^11/13!) (truncation < 2^-60 for |r| <= ln2/2),
// with 1 + r summed exactly. hi + lo in [0.7, 1.42], relative error ~2^-62.
double kiln_exp_core64(double x, double xlo, out int k, out double lo) {
  const double kd = roundEven(x * 1.4426950408889634LF);
  k = int(kd);
  const double kh = kiln_hide(kd);  // kd, but not to the compiler: nothing to factor (math_f32.glsl)
  precise double rhi = x - kd * 0.6931471805598903LF;  // kd * hi is exact
  precise double rlo = xlo - kh * 5.497923018708371e-14LF;
  precise double r = rhi + rlo;
  precise double p = kiln_exp_taylor64(r) * r + 0.5LF;
  precise double t = r * r * p;
  double s, e, h;
  kiln_fast_two_sum(1.0LF, rhi, s, e);
  precise double tail = e + (rlo + t);
  kiln_fast_two_sum(s, tail, h, lo);
  return h;
}
double kiln_exp(double x) {
  if (kiln_isnan(x)) return x;
  if (x > 709.79LF) return kiln_inf_f64();  // e^x > DBL_MAX (closer in, the scaling overflows)
  if (x < -745.2LF) return 0.0LF;           // e^x < 2^-1075
  int k;
  double lo;
  const double hi = kiln_exp_core64(x, 0.0LF, k, lo);
  precise double v = hi + lo;
  return kiln_scale64(v, k);
}
// e^x - 1. |x| <= ln2/2: x + x^2/2 + x^3 (1/6 + ... + x^10/13!) with x^2 split exactly. Beyond, with
// e^r - 1 = m (double-double) from the reduction: 2^k m + (2^k - 1) = 2^k (m + (1 - 2^-k)), summed
// exactly and rounded once (1 - 2^-k is exact for |k| <= 53).
double kiln_expm1(double x) {
  if (kiln_isnan(x)) return x;
  if (x > 709.79LF) return kiln_inf_f64();
  if (x < -40.0LF) return -1.0LF;  // e^x < 2^-57: -1 + e^x rounds to -1
  if (abs(x) <= 0.34657359027997264LF) {
    if (abs(x) < 1.0e-300LF) return x;  // keeps -0 and subnormals (x^2 would underflow anyway)
    const double p = kiln_exp_taylor64(x);
    double q, qe;
    kiln_two_prod(x, x, q, qe);
    precise double r = x + (0.5LF * q + (0.5LF * qe + x * q * p));
    return r;
  }
  int k;
  double lo;
  const double hi = kiln_exp_core64(x, 0.0LF, k, lo);
  // m = e^r - 1 = (hi - 1) + lo; hi - 1 is exact (hi in [0.7, 1.42]).
  precise double mh = hi - 1.0LF;
  if (k > 53) {
    precise double v = hi + lo;
    return kiln_scale64(v, k);  // - 1 is below half an ulp
  }
  if (k < -53) {
    precise double v = kiln_scale64(hi + lo, k) - 1.0LF;
    return v;
  }
  const double c = 1.0LF - kiln_pow2_64(-k);
  double s, e;
  kiln_two_sum(c, mh, s, e);
  precise double v = s + (e + lo);
  return v * kiln_pow2_64(k);
}
double kiln_sigmoid(double x) {  // never forms inf / inf
  if (x >= 0.0LF) {
    precise double r = 1.0LF / (1.0LF + kiln_exp(-x));
    return r;
  }
  const double e = kiln_exp(x);
  precise double r = e / (1.0LF + e);
  return r;
}

// ---- logarithms -----------------------------------------------------------------------------------
// e ln2 + log(1 + f) for an exact f, sqrt(1/2) - 1 <= f < sqrt(2) - 1: log(1 + f) = f - (h - s (h +
// R)), s = f / (2 + f), h = f^2 / 2, R = 2 atanh(s)/s - 2 by its series in s^2 (to s^24; truncation
// < 2^-64). f exact and the rest a small correction, so the sum rounds about once; tail (log1p's
// rounding error of 1 + x over 1 + x) joins the low part.
double kiln_log_reduced(double f, int e, double tail) {
  precise double s = f / (2.0LF + f);
  precise double z = s * s;
  precise double R = 0.08LF;
  R = R * z + 0.08695652173913043LF;
  R = R * z + 0.09523809523809523LF;
  R = R * z + 0.10526315789473684LF;
  R = R * z + 0.11764705882352941LF;
  R = R * z + 0.13333333333333333LF;
  R = R * z + 0.15384615384615385LF;
  R = R * z + 0.18181818181818182LF;
  R = R * z + 0.2222222222222222LF;
  R = R * z + 0.2857142857142857LF;
  R = R * z + 0.4LF;
  R = R * z + 0.6666666666666666LF;
  R = R * z;
  precise double h = 0.5LF * f * f;
  const double de = double(e), de2 = kiln_hide(double(e));  // nothing to factor (kiln_exp_core64)
  precise double r = de * 0.6931471805598903LF - ((h - (s * (h + R) + (de2 * 5.497923018708371e-14LF + tail))) - f);
  return r;
}
// x = 2^e m for a finite x > 0, m in [sqrt(1/2), sqrt(2)), from the bits (subnormals by their
// integer significand, exact: no dependence on how a driver treats f64 subnormals).
double kiln_log_split64(double x, out int e) {
  uint64_t ix = doubleBitsToUint64(x);
  e = int(ix >> 52) - 1023;
  if (e == -1023) {  // subnormal: x = mant * 2^-1074, mant exact as a double
    const uint64_t nx = doubleBitsToUint64(double(ix));
    e = int(nx >> 52) - 1023 - 1074;
    ix = nx;
  }
  uint64_t mb = ix & 0x000FFFFFFFFFFFFFul;
  if (mb >= 0x6A09E667F3BCDul) {  // m >= sqrt(2): halve it
    e += 1;
    mb |= 0x3FE0000000000000ul;
  } else {
    mb |= 0x3FF0000000000000ul;
  }
  return uint64BitsToDouble(mb);
}
double kiln_log(double x) {
  const uint64_t ix = doubleBitsToUint64(x);
  if (kiln_isnan(x) || ix > 0x8000000000000000ul) return kiln_nan_f64();  // NaN, x < 0
  if ((ix << 1) == 0ul) return -kiln_inf_f64();
  if (kiln_isinf(x)) return x;
  int e;
  const double m = kiln_log_split64(x, e);
  precise double f = m - 1.0LF;
  return kiln_log_reduced(f, e, 0.0LF);
}
// log1p: directly inside [sqrt(1/2) - 1, sqrt(2) - 1); beyond, u = 1 + x rounded (hidden: see the
// top), c = its rounding error (Fast2Sum, exact) and log1p(x) = log(u) + c / u.
double kiln_log1p(double x) {
  if (kiln_isnan(x) || x < -1.0LF) return kiln_nan_f64();
  if (x == -1.0LF) return -kiln_inf_f64();
  if (kiln_isinf(x)) return x;
  if (x >= -0.2928932188134524LF && x < 0.41421356237309503LF) {
    if (abs(x) < 1.0e-300LF) return x;  // -0 and subnormals
    return kiln_log_reduced(x, int(x > 1.0LF), 0.0LF);  // e = 0, unknown to the compiler
  }
  const double u = kiln_hide(1.0LF + x);
  precise double c = x >= 1.0LF ? 1.0LF - (u - x) : x - (u - 1.0LF);
  precise double cu = c / u;
  int e;
  const double m = kiln_log_split64(u, e);
  precise double f = m - 1.0LF;
  return kiln_log_reduced(f, e, cu);
}
// log(x) as hi + lo with relative error ~2^-64 for a finite x > 0 (pow needs it: its error is
// multiplied by |y log x| <= 745). log(m) = 2s + (2/3)s^3 + s^5 (...), s = f / (2 + f) carried as a
// double-double; the first two terms exact to ~2^-100, the rest < 2^-12 of the total.
double kiln_log_dd64(double x, out double lo) {
  int e;
  const double m = kiln_log_split64(x, e);
  const double f = kiln_hide(m - 1.0LF);
  double d, dl;
  kiln_two_sum(2.0LF, f, d, dl);
  const double sh = kiln_hide(f / d);
  precise double sl = (kiln_residual64(sh, d, f) - sh * dl) / d;
  double z, zl;  // s^2 = z + zl
  kiln_two_prod(sh, sh, z, zl);
  zl = zl + 2.0LF * sh * sl;
  double c, cl;  // s^3 = c + cl
  kiln_two_prod(z, sh, c, cl);
  cl = cl + (z * sl + zl * sh);
  double t, tl;  // (2/3) s^3 = t + tl
  kiln_two_prod(c, 0.6666666666666666LF, t, tl);
  tl = tl + (c * 3.700743415417188e-17LF + cl * 0.6666666666666666LF);
  precise double R = 0.08LF;
  R = R * z + 0.08695652173913043LF;
  R = R * z + 0.09523809523809523LF;
  R = R * z + 0.10526315789473684LF;
  R = R * z + 0.11764705882352941LF;
  R = R * z + 0.13333333333333333LF;
  R = R * z + 0.15384615384615385LF;
  R = R * z + 0.18181818181818182LF;
  R = R * z + 0.2222222222222222LF;
  R = R * z + 0.2857142857142857LF;
  R = R * z + 0.4LF;
  precise double rest = R * z * c;  // 2 s^5 / 5 + ...
  double ln_h, ln_l;  // e ln2: e hi is exact, e lo split exactly
  kiln_two_prod(kiln_hide(double(e), 1), 5.497923018708371e-14LF, ln_h, ln_l);
  double hi = double(e) * 0.6931471805598903LF, l = 0.0LF;
  kiln_dd_add(hi, l, 2.0LF * sh, 2.0LF * sl);
  kiln_dd_add(hi, l, t, tl);
  kiln_dd_add(hi, l, ln_h, ln_l + rest);
  lo = l;
  return hi;
}

// ---- hyperbolic functions -----------------------------------------------------------------------
// |x| < 0.36 by their Taylor series (x^15/15! and x^18/18! the first terms left out: < 2^-60);
// beyond, from e^|x| = 2^k (hi + lo) as a double-double, so e^a -+ e^-a rounds once.
// (e^a + s e^-a) / 2 for a >= 0.36, s = +-1 (cosh, sinh): e^a = E = 2^k (hi + lo) exactly scaled,
// 1/E = q + ql to ~2^-100, summed and rounded once; e^a / 2 alone once e^-a < 2^-80 e^a.
double kiln_half_exp_pm64(double a, double s) {
  if (a > 710.5LF) return kiln_inf_f64();
  int k;
  double lo;
  const double hi = kiln_exp_core64(a, 0.0LF, k, lo);
  if (k > 40) {
    precise double v = hi + lo;
    return kiln_scale64(v, k - 1);
  }
  const double Eh = hi * kiln_pow2_64(k), El = lo * kiln_pow2_64(k);
  const double q = kiln_hide(1.0LF / Eh);
  precise double ql = (kiln_residual64(Eh, q, 1.0LF) - El * q) * q;
  double h = Eh, l = El;
  kiln_dd_add(h, l, s * q, s * ql);
  precise double r = 0.5LF * (h + l);
  return r;
}
double kiln_sinh(double x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return x;
  const double a = abs(x);
  precise double r;
  if (a < 0.36LF) {
    if (a < 1.0e-300LF) return x;
    precise double z = x * x;
    precise double p = 7.647163731819816e-13LF;
    p = p * z + 1.6059043836821613e-10LF;
    p = p * z + 2.505210838544172e-08LF;
    p = p * z + 2.7557319223985893e-06LF;
    p = p * z + 0.0001984126984126984LF;
    p = p * z + 0.008333333333333333LF;
    p = p * z + 0.16666666666666666LF;
    r = x + x * z * p;
    return r;
  }
  return kiln_copysign(kiln_half_exp_pm64(a, -1.0LF), x);
}
double kiln_cosh(double x) {
  if (kiln_isnan(x)) return x;
  const double a = abs(x);
  if (kiln_isinf(x)) return a;
  precise double r;
  if (a < 0.36LF) {
    precise double z = x * x;
    precise double p = 4.779477332387385e-14LF;
    p = p * z + 1.1470745597729725e-11LF;
    p = p * z + 2.08767569878681e-09LF;
    p = p * z + 2.755731922398589e-07LF;
    p = p * z + 2.48015873015873e-05LF;
    p = p * z + 0.001388888888888889LF;
    p = p * z + 0.041666666666666664LF;
    r = 1.0LF + (0.5LF * z + z * z * p);
    return r;
  }
  return kiln_half_exp_pm64(a, 1.0LF);
}
// tanh: |x| < 0.36 by its Taylor series (to x^29); beyond, (E - 1) / (E + 1) with E = e^(2|x|) as
// a double-double, the quotient corrected once; 1 from |x| > 19.1 (tanh rounds to 1 there).
double kiln_tanh(double x) {
  if (kiln_isnan(x)) return x;
  const double a = abs(x);
  if (a > 19.1LF) return kiln_copysign(1.0LF, x);
  precise double r;
  if (a < 0.36LF) {
    if (a < 1.0e-300LF) return x;
    precise double z = x * x;
    precise double p = 2.6147711512907546e-06LF;
    p = p * z - 6.451689215655431e-06LF;
    p = p * z + 1.5918905069328964e-05LF;
    p = p * z - 3.927832388331683e-05LF;
    p = p * z + 9.691537956929451e-05LF;
    p = p * z - 0.00023912911424355248LF;
    p = p * z + 0.000590027440945586LF;
    p = p * z - 0.0014558343870513183LF;
    p = p * z + 0.003592128036572481LF;
    p = p * z - 0.008863235529902197LF;
    p = p * z + 0.021869488536155203LF;
    p = p * z - 0.05396825396825397LF;
    p = p * z + 0.13333333333333333LF;
    p = p * z - 0.3333333333333333LF;
    r = x + x * z * p;
    return r;
  }
  int k;
  double lo;
  const double hi = kiln_exp_core64(2.0LF * a, 0.0LF, k, lo);
  const double Eh = hi * kiln_pow2_64(k), El = lo * kiln_pow2_64(k);
  double nh = Eh, nl = El, dh = Eh, dl = El;
  kiln_dd_add(nh, nl, -1.0LF, 0.0LF);
  kiln_dd_add(dh, dl, 1.0LF, 0.0LF);
  const double q = kiln_hide(nh / dh);
  precise double corr = (kiln_residual64(q, dh, nh) + (nl - q * dl)) / dh;
  r = q + corr;
  return kiln_copysign(r, x);
}
double kiln_asinh(double x) {
  if (kiln_isnan(x) || kiln_isinf(x)) return x;
  const double a = abs(x);
  precise double r;
  if (a < 1.0e-10LF) return x;  // asinh x = x - x^3/6: the cube is below half an ulp
  if (a > 268435456.0LF) {      // 2^28: sqrt(x^2 + 1) = x to double precision
    int e;
    const double m = kiln_log_split64(a, e);
    precise double f = m - 1.0LF;
    r = kiln_log_reduced(f, e + 1, 0.0LF);  // log(2a)
  } else if (a > 2.0LF) {
    r = kiln_log(2.0LF * a + 1.0LF / (sqrt(a * a + 1.0LF) + a));
  } else {
    precise double a2 = a * a;
    r = kiln_log1p(a + a2 / (1.0LF + sqrt(1.0LF + a2)));
  }
  return kiln_copysign(r, x);
}
double kiln_acosh(double x) {
  if (kiln_isnan(x) || x < 1.0LF) return kiln_nan_f64();
  if (kiln_isinf(x)) return x;
  precise double r;
  if (x > 268435456.0LF) {
    int e;
    const double m = kiln_log_split64(x, e);
    precise double f = m - 1.0LF;
    r = kiln_log_reduced(f, e + 1, 0.0LF);
  } else if (x > 2.0LF) {
    r = kiln_log(2.0LF * x - 1.0LF / (x + sqrt(x * x - 1.0LF)));
  } else {
    precise double t = x - 1.0LF;
    r = kiln_log1p(t + sqrt(2.0LF * t + t * t));
  }
  return r;
}
double kiln_atanh(double x) {
  const double a = abs(x);
  if (kiln_isnan(x) || a > 1.0LF) return kiln_nan_f64();
  if (a < 1.0e-300LF) return x;
  precise double r;
  if (a < 0.5LF) {
    precise double t = a + a;
    r = 0.5LF * kiln_log1p(t + t * a / (1.0LF - a));
  } else {
    r = 0.5LF * kiln_log1p((a + a) / (1.0LF - a));
  }
  return kiln_copysign(r, x);
}
// cbrt: |x| = 2^(3q + i) m, a float first guess for cbrt(2^i m), two Newton steps in double, then
// one correction from the residual m' - y^3 computed exactly: ~0.5 ulp. Never subnormal.
double kiln_cbrt(double x) {
  if (kiln_isnan(x) || kiln_isinf(x) || x == 0.0LF) return x;
  int e;
  uint64_t ix = doubleBitsToUint64(abs(x));
  e = int(ix >> 52) - 1023;
  if (e == -1023) {
    const uint64_t nx = doubleBitsToUint64(double(ix));
    e = int(nx >> 52) - 1023 - 1074;
    ix = nx;
  }
  const int q = (e >= 0 ? e : e - 2) / 3, i = e - 3 * q;  // floor division
  const double m = uint64BitsToDouble((ix & 0x000FFFFFFFFFFFFFul) | (uint64_t(1023 + i) << 52));  // [1, 8)
  precise double y = double(exp2(log2(float(m)) * (1.0 / 3.0)));
  y = y - (y * y * y - m) / (3.0LF * y * y);
  y = y - (y * y * y - m) / (3.0LF * y * y);
  double s, sl, c, cl;
  kiln_two_prod(y, y, s, sl);
  kiln_two_prod(s, y, c, cl);
  precise double res = ((m - c) - cl) - sl * y;
  y = y + res / (3.0LF * y * y);
  return kiln_copysign(y * kiln_pow2_64(q), x);
}

// 1 / sqrt(x) rounded once: x = 2^2k m (m in [sqrt(1/2), 2 sqrt(2))), y = 1/sqrt(m) (two
// roundings: 1.44 ulp), then y + y (1 - m y^2) / 2 with 1 - m y^2 (~2^-52) from exact products.
double kiln_rsqrt(double x) {
  const double y0 = 1.0LF / kiln_sqrt(x);
  if (kiln_isnan(y0) || kiln_isinf(y0) || y0 == 0.0LF) return y0;  // x < 0, +-0, inf
  int e;
  double m = kiln_log_split64(x, e);
  if ((e & 1) != 0) {
    m *= 2.0LF;
    e -= 1;
  }
  const double y = kiln_hide(1.0LF / sqrt(m));
  double s, sl, p, pl;
  kiln_two_prod(y, y, s, sl);
  kiln_two_prod(m, s, p, pl);
  precise double t = (1.0LF - p) - (pl + m * sl);
  precise double r = y + 0.5LF * y * t;
  return r * kiln_pow2_64(-e / 2);
}

// ---- pow ----------------------------------------------------------------------------------------
// C pow (Annex F: zeros, infinities, NaN, negative bases with integer exponents), otherwise
// e^(y log|x|) with log|x| and the product as double-doubles (see kiln_log_dd64).
double kiln_pow(double x, double y) {
  if (y == 0.0LF || x == 1.0LF) return 1.0LF;
  if (kiln_isnan(x) || kiln_isnan(y)) return kiln_nan_f64();
  const double ax = abs(x), ay = abs(y);
  const bool y_int = kiln_isinf(y) || floor(y) == y;
  const bool y_odd = y_int && ay < 9007199254740992.0LF && floor(ay * 0.5LF) * 2.0LF != ay;
  if (ax == 1.0LF && y_int) return y_odd ? x : 1.0LF;  // -1 to an integer, however large
  if (kiln_isinf(y)) {
    return ((ax < 1.0LF) == (y > 0.0LF)) ? 0.0LF : kiln_inf_f64();
  }
  const uint64_t mag = doubleBitsToUint64(x) & 0x7FFFFFFFFFFFFFFFul;
  double r;
  if (mag == 0ul) {
    r = y < 0.0LF ? kiln_inf_f64() : 0.0LF;
  } else if (mag == 0x7FF0000000000000ul) {
    r = y < 0.0LF ? 0.0LF : kiln_inf_f64();
  } else if (kiln_signbit(x) && !y_int) {
    return kiln_nan_f64();
  } else {
    double ll;
    const double lh = kiln_log_dd64(ax, ll);
    double p, pl;
    kiln_two_prod(y, lh, p, pl);
    pl = pl + y * ll;
    if (p > 709.8LF) {
      r = kiln_inf_f64();
    } else if (p < -745.2LF) {
      r = 0.0LF;
    } else {
      int k;
      double lo;
      const double hi = kiln_exp_core64(p, pl, k, lo);
      precise double v = hi + lo;
      r = kiln_scale64(v, k);
    }
  }
  return (kiln_signbit(x) && y_odd) ? -r : r;
}
