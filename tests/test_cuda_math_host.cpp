// templates/cuda/math.cuh compiled for the host: Kiln's CUDA expm1 (f32) and log1p (f64), which
// replaced CUDA's (1.18 and 1.30 ulp on an H100 with --fmad=false, over CUDA's own 1-ulp bounds),
// checked in CI over their whole range against long double (x87: 11 more bits than double). The
// host's fma is fused as __fmaf_rn / __fma_rn are, so this is the arithmetic a GPU does.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

namespace cuda_host {
#include "tests/cuda_host_shims.hpp"
#define KILN_MATH_FN inline
#include "templates/cuda/math.cuh"
#undef KILN_MATH_FN
}  // namespace cuda_host

namespace kiln {
namespace {

// Error of |got| (an F) against |want| in ulps of |want|'s binade for F's p bits (subnormal ulp
// below emin); 0 when equal or when want rounds to got's infinity, infinite when one is NaN or
// infinite and the other is not.
template <class F> double ulps(F got, long double want, int p, int emin) {
  if (std::isnan(got) && std::isnan(want)) return 0;
  if (got == want || (std::isinf(got) && got == F(want))) return 0;
  if (!std::isfinite(got) || !std::isfinite(want)) return INFINITY;
  const int e = want == 0 ? emin : std::max(std::ilogb(want), emin);
  return double(std::fabs((long double)got - want) / std::ldexp(1.0L, e - p + 1));
}

// Inputs over every binade (random sign and significand) plus the edges of each method.
template <class F> std::vector<F> inputs(std::initializer_list<F> edges, int emin, int emax, int n) {
  std::mt19937_64 rng(11);
  std::vector<F> xs(edges);
  for (int i = 0; i < n; ++i) {
    const int e = std::uniform_int_distribution<int>(emin - 1, emax)(rng);
    const double m = std::uniform_real_distribution<double>(0, 1)(rng);
    const F v = F(e < emin ? std::ldexp(m, emin) : std::ldexp(1 + m, e));
    xs.push_back((rng() & 1) ? -v : v);
    xs.push_back(F(std::uniform_real_distribution<double>(-20, 20)(rng)));  // where it is not -1 or inf
  }
  return xs;
}

TEST(CudaMathOnHost, Expm1F32WithinOneUlp) {
  const auto xs = inputs<float>({0.19350308f, 0.34657359f, 0.3465736f, -0.34657359f, 1.0283860f, 17.3f, 16.6f, -16.6f,
                                 -17.0f, -17.39f, -17.4f, 88.72f, 88.7228394f, 88.8f, -0.f, 1e-30f, 1e-45f,
                                 FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN},
                                -126, 127, 200000);
  double worst = 0;
  float at = 0;
  for (float x : xs) {
    const double e = ulps(cuda_host::kiln_expm1_f32(x), std::expm1((long double)x), 24, -126);
    if (e > worst) worst = e, at = x;
  }
  std::printf("[ info ] expm1 f32: %zu inputs, max %.3f ulp at %.9g\n", xs.size(), worst, double(at));
  EXPECT_LE(worst, 1.0) << "expm1(" << at << ") = " << cuda_host::kiln_expm1_f32(at) << ", exact " << double(std::expm1((long double)at));
  EXPECT_TRUE(std::signbit(cuda_host::kiln_expm1_f32(-0.f)));
}

TEST(CudaMathOnHost, Log1pF64WithinOneUlp) {
  const auto xs = inputs<double>({-0.4273895438642246, -0.2928932188134524, 0.41421356237309503, -1 + 0x1p-53, -1.0,
                                  -1.5, 1e-17, 0x1p-1074, -0.0, 3.0, 1e300, DBL_MAX, INFINITY, NAN},
                                 -1022, 1023, 100000);
  double worst = 0, at = 0;
  for (double x : xs) {
    const double e = ulps(cuda_host::kiln_log1p_f64(x), std::log1p((long double)x), 53, -1022);
    if (e > worst) worst = e, at = x;
  }
  std::printf("[ info ] log1p f64: %zu inputs, max %.3f ulp at %.17g\n", xs.size(), worst, at);
  EXPECT_LE(worst, 1.0) << "log1p(" << at << ") = " << cuda_host::kiln_log1p_f64(at) << ", exact " << double(std::log1p((long double)at));
}

}  // namespace
}  // namespace kiln
