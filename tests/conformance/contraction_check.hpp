// What the contraction and convolution conformance tests share: operands with random elements
// (floats in [-2, 2], integers over their whole range), a tensor's logical elements, and the check
// of a result against a reference summed in long double (integers wrapping in 64 bits) with a
// tolerance that scales with K and the dtypes.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "codegen/eval.hpp"
#include "runtime/kiln.hpp"
#include "tests/conformance/device_suite.hpp"

namespace kiln::conformance {

inline std::int64_t numel(const Shape& s) {
  std::int64_t n = 1;
  for (std::int64_t d : s) n *= d;
  return n;
}

inline std::vector<Scalar> scalars(const Tensor& t) {
  const Tensor h = t.to(device("cpu"));
  const std::vector<std::byte> bytes = h.to_host();
  std::vector<Scalar> v(std::size_t(h.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = load_scalar(t.dtype(), bytes.data() + i * dtype_size(t.dtype()));
  return v;
}

// Random elements of |t| on the CPU: floats in [-2, 2] (rounded to t), integers over their whole
// range (|small|: in [-8, 8], to mix with floats exactly).
inline Tensor random_tensor(const Shape& shape, DType t, unsigned seed, bool small = false) {
  std::mt19937_64 rng(seed);
  const std::int64_t n = numel(shape);
  std::vector<std::byte> bytes(std::size_t(n) * dtype_size(t));
  for (std::int64_t i = 0; i < n; ++i) {
    Scalar s;
    if (is_float(t)) {
      s.f = std::uniform_real_distribution<double>(-2, 2)(rng);
    } else if (small) {
      s.i = std::int64_t(rng() % 17) - 8;
      if (!is_signed_int(t)) s.u = rng() % 9;
    } else {
      s.u = rng();  // stored wrapping into the dtype
    }
    store_scalar(t, bytes.data() + std::size_t(i) * dtype_size(t), s);
  }
  return Tensor::from_host(bytes.data(), bytes.size(), shape, t, device("cpu"));
}

struct Ref {
  std::vector<long double> f;      // floats: the exact-ish sums
  std::vector<long double> mag;    // floats: sum of |a b| (for the tolerance)
  std::vector<std::uint64_t> u;    // integers: wrapping sums
  std::int64_t k = 0;
};

// |got| (dtype out) against the reference, NaN positions matched, floats within
// (K + 2) units of the accumulator times sum|a b| plus the output's rounding.
inline void expect_contraction_matches(const Tensor& got, const Ref& ref, DType a, DType b, const std::string& what) {
  const DType out = got.dtype(), acc = contract_accumulator_dtype(a, b, out);
  const std::vector<Scalar> g = scalars(got);
  ASSERT_EQ(g.size(), ref.f.size()) << what;
  int bad = 0;
  for (std::size_t i = 0; i < g.size() && bad < 5; ++i) {
    bool ok;
    std::string want;
    if (!is_float(out)) {
      std::byte buf[8];
      Scalar w;
      w.u = ref.u[i];
      store_scalar(out, buf, w);
      const Scalar wr = load_scalar(out, buf);
      ok = g[i].u == wr.u;
      want = fmt::format("bits {:#x}", wr.u);
    } else {
      std::byte buf[8];
      store_scalar(out, buf, Scalar::from_f(double(ref.f[i])));
      const double wr = load_scalar(out, buf).f;
      want = fmt::format("{}", wr);
      if (std::isnan(wr) || std::isinf(wr)) {
        ok = std::isnan(wr) ? std::isnan(g[i].f) : g[i].f == wr;
      } else {
        const double tol = double(ref.k + 2) * unit_roundoff(acc) * double(ref.mag[i]) +
                           2 * unit_roundoff(out) * std::fabs(wr) + smallest_subnormal(out);
        ok = std::fabs(g[i].f - wr) <= tol;
      }
    }
    if (!ok) {
      ++bad;
      ADD_FAILURE() << what << ": element " << i << " got "
                    << (is_float(out) ? fmt::format("{}", g[i].f) : fmt::format("bits {:#x}", g[i].u)) << ", want "
                    << want;
    }
  }
}

// |x| and |y| (on any devices) of one shape and the same bits: a fused kernel against the same
// expression op by op, or two kernels whose sums are specified to agree exactly.
inline void expect_same_bits(const Tensor& x, const Tensor& y, const std::string& what) {
  EXPECT_EQ(x.shape(), y.shape()) << what;
  EXPECT_EQ(x.to(device("cpu")).to_host(), y.to(device("cpu")).to_host()) << what;
}

// KILN_COOPMAT set to |value| (nullptr: unset) for the scope: which Vulkan kernel f16 contractions
// and convolutions run (runtime/contract.hpp, coopmat_on; read on each call).
class ScopedCoopmat {
 public:
  explicit ScopedCoopmat(const char* value) : had_(std::getenv("KILN_COOPMAT") != nullptr) {
    if (had_) saved_ = std::getenv("KILN_COOPMAT");
    if (value) ::setenv("KILN_COOPMAT", value, 1);
    else ::unsetenv("KILN_COOPMAT");
  }
  ~ScopedCoopmat() { had_ ? (void)::setenv("KILN_COOPMAT", saved_.c_str(), 1) : (void)::unsetenv("KILN_COOPMAT"); }
  ScopedCoopmat(const ScopedCoopmat&) = delete;
  ScopedCoopmat& operator=(const ScopedCoopmat&) = delete;

 private:
  bool had_;
  std::string saved_;
};

}  // namespace kiln::conformance
