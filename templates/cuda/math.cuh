// Kiln's own versions of the CUDA math functions that missed CUDA's documented bounds when built
// the way Kiln builds them (--fmad=false, which the library's internal polynomials were not tuned
// for): measured on an H100 against MPFR (kiln-accuracy, 2026-11-28), expm1f 1.18 ulp at 0.1935
// (bound 1) and log1p (double) 1.30 ulp at -0.4274 (bound 1). Both use explicit fused
// multiply-adds (__fmaf_rn / __fma_rn are fused whatever --fmad says) and sums whose rounding error
// is carried, so that the result is rounded about once: ~0.5 ulp.
//
// Included by cuda/ops.cuh. Also compiled for the host by tests/test_cuda_math_host.cpp, which
// defines KILN_MATH_FN and the few CUDA intrinsics used here, and checks both over their whole range
// against long double.
#ifndef KILN_TEMPLATES_CUDA_MATH_CUH
#define KILN_TEMPLATES_CUDA_MATH_CUH

#ifndef KILN_MATH_FN
#define KILN_MATH_FN __device__ __forceinline__
#endif

// e^x - 1 for float. |x| <= ln2/2: x + x^2/2 + x^3 (1/6 + ... + x^6/9!) with x^2 split exactly
// (truncation < 2e-10 relative). Beyond: x = k ln2 + r (ln2 in two parts, k hi exact), m = e^r - 1
// = (r hi) + (r lo + r^2 (...)) as two floats, and e^x - 1 = 2^k (m + (1 - 2^-k)) summed exactly
// (1 - 2^-k is exact for |k| <= 24) and rounded once; beyond, 2^k (1 + m) - 1 likewise.
KILN_MATH_FN float kiln_expm1_f32(float x) {
  if (!(x == x)) return x;
  if (x > 88.7228394f) return __int_as_float(0x7F800000);
  if (x < -17.4f) return -1.0f;  // e^x < 2^-25: -1 + e^x rounds to -1
  const float ax = x < 0.0f ? -x : x;
  if (ax <= 0.346573591f) {
    if (ax < 1e-30f) return x;  // keeps -0 and subnormals (x^2 underflows)
    float p = 2.75573192e-6f;
    p = __fmaf_rn(p, x, 2.48015873e-5f);
    p = __fmaf_rn(p, x, 1.98412698e-4f);
    p = __fmaf_rn(p, x, 1.38888889e-3f);
    p = __fmaf_rn(p, x, 8.33333333e-3f);
    p = __fmaf_rn(p, x, 4.16666667e-2f);
    p = __fmaf_rn(p, x, 1.66666667e-1f);
    const float q = x * x, qe = __fmaf_rn(x, x, -q);
    return x + (0.5f * q + (0.5f * qe + x * q * p));
  }
  const float k = rintf(x * 1.44269504f);
  const float rhi = __fmaf_rn(-k, 0.693145751953125f, x);  // exact: k hi has 8 + 15 bits
  const float rlo = -k * 1.42860677e-6f;
  const float r = rhi + rlo;
  float p = 2.75573192e-6f;
  p = __fmaf_rn(p, r, 2.48015873e-5f);
  p = __fmaf_rn(p, r, 1.98412698e-4f);
  p = __fmaf_rn(p, r, 1.38888889e-3f);
  p = __fmaf_rn(p, r, 8.33333333e-3f);
  p = __fmaf_rn(p, r, 4.16666667e-2f);
  p = __fmaf_rn(p, r, 1.66666667e-1f);
  // m = e^r - 1 = rhi + h + ml: h = rhi^2 / 2 exact with its error in ml (as a small term, r^2 / 2
  // rounded cost up to 0.96 ulp in all)
  const float q = rhi * rhi, h = 0.5f * q;
  const float ml = rlo + (0.5f * __fmaf_rn(rhi, rhi, -q) + rhi * rlo + r * r * r * p);
  const int ki = int(k);
  if (ki > 24 || ki < -24) {  // e^x - 1 = 2^k (s + t) - 1, s + t = 1 + m
    const float s = 1.0f + rhi, t = ((1.0f - s) + rhi) + (h + ml);  // Fast2Sum
    if (ki < 0) return (s + t) * __int_as_float((ki + 127) << 23) - 1.0f;  // 2^k (1 + m) < 2^-24
    if (ki > 50) {  // the -1 is below 2^-26 of the result
      const int k1 = ki / 2;
      return ((s + t) * __int_as_float((k1 + 127) << 23)) * __int_as_float((ki - k1 + 127) << 23);
    }
    const float p2 = __int_as_float((ki + 127) << 23), a = s * p2;  // exact
    const float S = a - 1.0f, bb = S - a, E = (a - (S - bb)) + (-1.0f - bb);  // Knuth: S + E = a - 1
    return S + (E + t * p2);
  }
  const float c = 1.0f - __int_as_float((127 - ki) << 23);  // 1 - 2^-k, exact
  const float s = c + rhi, bb = s - c, e = (c - (s - bb)) + (rhi - bb);  // Knuth: s + e = c + rhi
  const float S = s + h, b2 = S - s, E = (s - (S - b2)) + (h - b2);  // S + E = s + h
  return (S + (E + (e + ml))) * __int_as_float((ki + 127) << 23);
}

// log(1 + x) for double. Inside [sqrt(1/2) - 1, sqrt(2) - 1): log(1 + f) = f - (h - s (h + R)), s =
// f / (2 + f), h = f^2/2, R = 2 atanh(s)/s - 2 by its series in s^2 (to s^24). Beyond: u = 1 + x
// rounded, c = its rounding error, and log(u) + c/u with u = 2^e m, m in [sqrt(1/2), sqrt(2)) from
// the bits, e ln2 in two parts; the small terms join before the one rounding.
KILN_MATH_FN double kiln_log1p_reduced_f64(double f, int e, double tail) {
  const double s = f / (2.0 + f), z = s * s;
  double R = 0.08;
  R = __fma_rn(R, z, 0.08695652173913043);
  R = __fma_rn(R, z, 0.09523809523809523);
  R = __fma_rn(R, z, 0.10526315789473684);
  R = __fma_rn(R, z, 0.11764705882352941);
  R = __fma_rn(R, z, 0.13333333333333333);
  R = __fma_rn(R, z, 0.15384615384615385);
  R = __fma_rn(R, z, 0.18181818181818182);
  R = __fma_rn(R, z, 0.2222222222222222);
  R = __fma_rn(R, z, 0.2857142857142857);
  R = __fma_rn(R, z, 0.4);
  R = __fma_rn(R, z, 0.6666666666666666);
  R = R * z;
  const double h = 0.5 * f * f, de = double(e);
  return de * 0.6931471805598903 - ((h - (s * (h + R) + (de * 5.497923018708371e-14 + tail))) - f);
}
KILN_MATH_FN double kiln_log1p_f64(double x) {
  if (!(x == x) || x < -1.0) return __longlong_as_double(0x7FF8000000000000ll);
  if (x == -1.0) return __longlong_as_double(static_cast<long long>(0xFFF0000000000000ull));
  if (x > 1.7976931348623157e308) return x;
  if (x >= -0.2928932188134524 && x < 0.41421356237309503) {
    if ((x < 0.0 ? -x : x) < 1e-300) return x;  // -0 and subnormals
    return kiln_log1p_reduced_f64(x, 0, 0.0);
  }
  const double u = 1.0 + x;
  const double c = x >= 1.0 ? 1.0 - (u - x) : x - (u - 1.0);  // exact (Fast2Sum)
  const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(u));
  int e = int(bits >> 52) - 1023;
  unsigned long long mb = bits & 0x000FFFFFFFFFFFFFull;
  if (mb >= 0x6A09E667F3BCDull) {  // m >= sqrt(2): halve it
    e += 1;
    mb |= 0x3FE0000000000000ull;
  } else {
    mb |= 0x3FF0000000000000ull;
  }
  const double f = __longlong_as_double(static_cast<long long>(mb)) - 1.0;  // exact
  return kiln_log1p_reduced_f64(f, e, c / u);
}

#endif  // KILN_TEMPLATES_CUDA_MATH_CUH
