// The rows family (softmax, log_softmax, logsumexp, layer_norm, rms_norm) on every device against an
// independent long double reference written here from docs/semantics.md ("Row ops"): row lengths
// around the block size and up to 2^20 + 1, f16/bf16/f32/f64, a non-last axis, non-contiguous rows,
// empty tensors, rows of -inf, +inf, NaN and values that overflow a naive exp; bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "runtime/kiln.hpp"
#include "tests/conformance/device_suite.hpp"

namespace kiln {
namespace {

using conformance::smallest_subnormal;
using conformance::unit_roundoff;

using L = long double;
constexpr double kInf = std::numeric_limits<double>::infinity();

// The documented semantics in long double: each row of |x| (rows x n, row-major) to its outputs;
// a norm's sum of squares past |top| (the compute dtype's largest finite value) is +inf.
std::vector<double> reference(RowsOp op, const std::vector<double>& x, std::int64_t rows, std::int64_t n,
                              const std::vector<double>* gamma, const std::vector<double>* beta, double eps,
                              double top = std::numeric_limits<float>::max()) {
  std::vector<double> out;
  for (std::int64_t r = 0; r < rows; ++r) {
    const double* v = x.data() + r * n;
    if (op == RowsOp::layer_norm || op == RowsOp::rms_norm) {
      L mean = 0, q = 0;
      if (op == RowsOp::layer_norm) {
        for (std::int64_t j = 0; j < n; ++j) mean += v[j];
        mean /= L(n);
      }
      for (std::int64_t j = 0; j < n; ++j) q += (v[j] - mean) * (v[j] - mean);
      if (q > L(top)) q = INFINITY;
      const L inv = 1 / std::sqrt(q / L(n) + L(eps));
      for (std::int64_t j = 0; j < n; ++j)
        out.push_back(double((v[j] - mean) * inv * (gamma ? L((*gamma)[j]) : 1) + (beta ? L((*beta)[j]) : 0)));
      continue;
    }
    L m = -INFINITY;
    bool nan = false;
    for (std::int64_t j = 0; j < n; ++j) {
      nan |= std::isnan(v[j]);
      m = std::max(m, L(v[j]));
    }
    if (nan) m = NAN;
    if (op == RowsOp::logsumexp && m == INFINITY) {
      out.push_back(kInf);
      continue;
    }
    const L me = m == -INFINITY ? 0 : m;
    L s = 0;
    for (std::int64_t j = 0; j < n; ++j) s += std::exp(L(v[j]) - me);
    if (op == RowsOp::logsumexp) {
      out.push_back(double(me + std::log(s)));
      continue;
    }
    for (std::int64_t j = 0; j < n; ++j) {
      if (op == RowsOp::softmax) out.push_back(s == 0 ? 0.0 : double(std::exp(L(v[j]) - me) / s));
      else out.push_back(s == 0 ? -kInf : double((L(v[j]) - me) - std::log(s)));
    }
  }
  return out;
}

class Rows : public conformance::DeviceSuite {
 protected:

  // |values| rounded to |t| on the device, and the rounded values as doubles.
  Tensor make(const std::vector<double>& values, const Shape& shape, DType t, std::vector<double>* rounded) {
    Device& cpu = device("cpu");
    const Tensor h = as_type(Tensor::from_vector(values, shape, cpu), t);
    if (rounded) *rounded = as_type(h, DType::f64).to_vector<double>();
    return h.to(*dev_);
  }
  std::vector<double> back(const Tensor& t) { return as_type(t.to(device("cpu")), DType::f64).to_vector<double>(); }

  // The op over rows of x (rows x n) on the device against the reference; |scale| bounds the
  // magnitude the error is relative to (norms: the outputs are O(1) times gamma plus beta).
  void check(RowsOp op, DType t, std::int64_t rows, std::int64_t n, const std::vector<double>& values,
             bool affine = false, const std::string& what = "") {
    std::vector<double> x, g, b;
    const Tensor xt = make(values, {rows, n}, t, &x);
    std::optional<Tensor> gt, bt;
    if (affine) {
      std::vector<double> gv, bv;
      for (std::int64_t j = 0; j < n; ++j) {
        gv.push_back(0.5 + double(j % 7) / 4);
        bv.push_back(double(j % 5) / 3 - 0.5);
      }
      gt = make(gv, {n}, t, &g);
      bt = make(bv, {n}, t, &b);
    }
    const double eps = 1e-5;
    Tensor out;
    switch (op) {
      case RowsOp::softmax: out = softmax(xt); break;
      case RowsOp::log_softmax: out = log_softmax(xt); break;
      case RowsOp::logsumexp: out = logsumexp(xt); break;
      case RowsOp::layer_norm: out = layer_norm(xt, gt ? &*gt : nullptr, bt ? &*bt : nullptr, eps); break;
      case RowsOp::rms_norm: out = rms_norm(xt, gt ? &*gt : nullptr, eps); break;
    }
    ASSERT_EQ(out.dtype(), t);
    const std::vector<double> got = back(out);
    const std::vector<double> want =
        reference(op, x, rows, n, affine ? &g : nullptr, affine && op == RowsOp::layer_norm ? &b : nullptr, eps,
                  t == DType::f64 ? std::numeric_limits<double>::max() : std::numeric_limits<float>::max());
    ASSERT_EQ(got.size(), want.size());
    // Sums of n/256 terms per thread, then a tree: the compute type's error grows with n/256.
    const double uc = t == DType::f64 ? unit_roundoff(DType::f64) : unit_roundoff(DType::f32);
    const double tol = 2 * unit_roundoff(t) + (16 + 2 * double(n) / 256) * uc;
    const std::int64_t per_row = std::int64_t(want.size()) / std::max<std::int64_t>(rows, 1);
    std::vector<double> cond(want.size(), 0);  // norms: max|x| / sigma of each element's row
    if (op == RowsOp::layer_norm || op == RowsOp::rms_norm)
      for (std::int64_t r = 0; r < rows; ++r) {
        L mean = 0, q = 0, big = 0;
        for (std::int64_t j = 0; j < n; ++j) mean += x[std::size_t(r * n + j)];
        mean = op == RowsOp::layer_norm ? mean / L(n) : 0;
        for (std::int64_t j = 0; j < n; ++j) {
          const L d = x[std::size_t(r * n + j)] - mean;
          q += d * d;
          big = std::max(big, std::fabs(L(x[std::size_t(r * n + j)])));
        }
        const L c = big / std::sqrt(q / L(n) + L(eps));  // a row of infinities or NaN: exact 0 or NaN
        for (std::int64_t j = 0; j < n; ++j) cond[std::size_t(r * n + j)] = std::isfinite(c) ? double(c) : 0.0;
      }
    int bad = 0;
    for (std::size_t i = 0; i < want.size() && bad < 5; ++i) {
      const double w = want[i], v = got[i];
      bool ok;
      if (std::isnan(w) || std::isinf(w)) {
        ok = std::isnan(w) ? std::isnan(v) : v == w;
      } else {
        // softmax: relative (down to the dtype's smallest subnormal); log_softmax/logsumexp: the
        // absolute error of the log of the row's sum; norms: x - mean carries the rounding of x and
        // the mean, amplified by 1/sigma (max|x| / sigma of the row).
        double scale = std::fabs(w);
        if (op == RowsOp::log_softmax || op == RowsOp::logsumexp) scale += 1;
        if (op == RowsOp::layer_norm || op == RowsOp::rms_norm) scale = (scale + 1 + cond[i]) * (affine ? 3 : 1);
        ok = std::fabs(v - w) <= tol * scale + smallest_subnormal(t);
      }
      if (!ok) {
        ++bad;
        ADD_FAILURE() << rows_op_info(op).name << " " << dtype_name(t) << " " << what << " rows " << rows << " n " << n
                      << ": element " << i << " (row " << std::int64_t(i) / std::max<std::int64_t>(per_row, 1)
                      << ") got " << v << ", want " << w << " (tol " << tol << ")";
      }
    }
  }
};

std::vector<double> random_values(std::size_t count, double lo, double hi, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(count);
  for (double& x : v) x = u(rng);
  return v;
}

constexpr RowsOp kOps[] = {RowsOp::softmax, RowsOp::log_softmax, RowsOp::logsumexp, RowsOp::layer_norm,
                           RowsOp::rms_norm};

TEST_P(Rows, EveryOpAndDtypeOverRowLengthsAroundTheBlock) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64}) {
    for (std::int64_t n : {1, 2, 31, 32, 33, 255, 256, 257, 1000, 1024, 4097}) {
      const std::int64_t rows = n > 1000 ? 3 : 5;
      const auto v = random_values(std::size_t(rows * n), -8, 8, unsigned(n) * 7 + unsigned(t));
      for (RowsOp op : kOps) {
        check(op, t, rows, n, v, false);
        if (op == RowsOp::layer_norm || op == RowsOp::rms_norm) check(op, t, rows, n, v, true, "affine");
      }
    }
  }
}

TEST_P(Rows, LongRowsAndManyShortRows) {
  for (RowsOp op : kOps) {
    check(op, DType::f32, 1, 32768, random_values(32768, -20, 20, 3));
    check(op, DType::f32, 4096, 3, random_values(4096 * 3, -3, 3, 4));
  }
  const std::int64_t n = (1 << 20) + 1;
  const auto v = random_values(std::size_t(n), -30, 30, 5);
  check(RowsOp::softmax, DType::f32, 1, n, v);
  check(RowsOp::layer_norm, DType::f32, 1, n, v);
}

// Rows of -inf (fully masked: softmax 0, log_softmax and logsumexp -inf, never NaN), partly -inf,
// +inf (softmax and log_softmax NaN, logsumexp +inf), NaN (NaN throughout), and values far beyond
// exp's range (max-subtracted: no overflow).
TEST_P(Rows, SpecialRows) {
  const double ninf = -kInf, nan = std::numeric_limits<double>::quiet_NaN();
  const std::int64_t n = 6;
  const std::vector<double> v = {
      ninf, ninf, ninf, ninf, ninf, ninf,   // all masked
      1.0,  ninf, 2.0,  ninf, ninf, 0.5,    // partly masked
      1.0,  kInf, 2.0,  3.0,  ninf, 0.5,    // +inf
      1.0,  2.0,  nan,  3.0,  4.0,  5.0,    // NaN
      1e30, 1e30, -1e30, 3e38, 3e38, 0.0,   // far beyond exp's range (f32: finite)
      -1e4, -1e4 + 1, -1e4 + 2, -1e4, -1e4, -1e4,  // all underflow a naive exp
  };
  for (DType t : {DType::f32, DType::f64, DType::bf16})
    for (RowsOp op : {RowsOp::softmax, RowsOp::log_softmax, RowsOp::logsumexp}) check(op, t, 6, n, v, false, "special");
  // The same rows repeated to 5003 elements: too long for registers, so the maximum and the sum
  // come from one online read (the -inf, +inf and NaN rules must hold there too).
  const std::int64_t long_n = 5003;
  std::vector<double> lv;
  for (std::int64_t r = 0; r < 6; ++r)
    for (std::int64_t j = 0; j < long_n; ++j) lv.push_back(v[std::size_t(r * n + j % n)] - (j % n == 0 ? 0 : 1e-3 * double(j % 97)));
  for (DType t : {DType::f32, DType::f64})
    for (RowsOp op : {RowsOp::softmax, RowsOp::log_softmax, RowsOp::logsumexp})
      check(op, t, 6, long_n, lv, false, "special, online");
}

// Norms over rows at the ends of each dtype's range: NaN, +-inf, sums of squares past the compute
// dtype's range (the row is 0, as PyTorch), values whose squares underflow (eps decides), the
// largest finite values, constant rows (zero variance), subnormals.
TEST_P(Rows, NormsAtTheEndsOfTheRange) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::int64_t n = 6;
  for (DType t : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
    const double big = t == DType::f64 ? 1e160 : t == DType::f16 ? 6e4 : 1e19;  // x^2 fits; 6 of them do not (f16: they do)
    const double huge = t == DType::f64 ? 1e300 : t == DType::f16 ? 65504 : 3e38;
    const double tiny = t == DType::f64 ? 1e-300 : t == DType::f16 ? 6e-8 : 1e-38;
    const std::vector<double> v = {
        1.0,   2.0,   nan,   3.0,   4.0,   5.0,    // NaN
        1.0,   kInf,  2.0,   3.0,   -1.0,  0.5,    // +inf
        -kInf, 1.0,   2.0,   3.0,   -1.0,  0.5,    // -inf
        big,   -big,  big,   big,   -big,  big,    // the sum of squares overflows f32 (not f16's 2e10)
        huge,  huge,  -huge, huge,  1.0,   -huge,  // the largest finite values
        tiny,  -tiny, tiny,  0.0,   tiny,  tiny,   // squares underflow: eps decides
        7.0,   7.0,   7.0,   7.0,   7.0,   7.0,    // constant: layer_norm's variance is 0
        -huge, -huge, -huge, -huge, -huge, -huge,  // constant and huge
    };
    for (RowsOp op : {RowsOp::layer_norm, RowsOp::rms_norm}) {
      check(op, t, 8, n, v, false, "ends of the range");
      check(op, t, 8, n, v, true, "ends of the range, affine");
    }
  }
  // Rows too long for registers (Welford's running mean, merged across threads): values near
  // f32's largest, whose merged sum leaves the range, and values whose squares do.
  const std::int64_t long_n = 5003;
  std::vector<double> lv;
  for (const double scale : {3e38, -3e38, 1e18})
    for (std::int64_t j = 0; j < long_n; ++j) lv.push_back(scale * (1 - 1e-4 * double(j % 97)));
  std::mt19937_64 rng(17);  // both signs past half the largest: a thread's own v - mean overflows
  std::uniform_real_distribution<double> u(-3e38, 3e38);
  for (std::int64_t j = 0; j < long_n; ++j) lv.push_back(u(rng));
  for (RowsOp op : {RowsOp::layer_norm, RowsOp::rms_norm}) {
    check(op, DType::f32, 4, long_n, lv, false, "long rows, ends of the range");
    check(op, DType::f32, 4, long_n, lv, true, "long rows, ends of the range, affine");
  }
}

TEST_P(Rows, NonLastAxisStridedRowsAndEmptyTensors) {
  Device& cpu = device("cpu");
  const auto v = random_values(4 * 37 * 5, -4, 4, 9);
  const Tensor x = Tensor::from_vector(v, {4, 37, 5}, cpu).to(*dev_);
  // Along axis 1: the same as the last axis of the transposed tensor, made contiguous on the host.
  const Tensor xt = Tensor::from_vector(v, {4, 37, 5}, cpu).transpose({0, 2, 1}).contiguous();
  const auto rows_t = xt.to_vector<double>();
  for (RowsOp op : kOps) {
    Tensor out;
    if (op == RowsOp::softmax) out = softmax(x, 1);
    else if (op == RowsOp::log_softmax) out = log_softmax(x, -2);
    else if (op == RowsOp::logsumexp) out = logsumexp(x, 1, true);
    else if (op == RowsOp::layer_norm) out = layer_norm(x, nullptr, nullptr, 1e-5, 1);
    else out = rms_norm(x, nullptr, 1e-6, 1);
    const double eps = op == RowsOp::rms_norm ? 1e-6 : 1e-5;
    const auto want = reference(op, rows_t, 20, 37, nullptr, nullptr, eps);
    Tensor got = out.to(cpu);
    if (op == RowsOp::logsumexp) {
      ASSERT_EQ(got.shape(), (Shape{4, 1, 5}));
    } else {
      got = got.transpose({0, 2, 1}).contiguous();
    }
    const auto g = got.to_vector<double>();
    ASSERT_EQ(g.size(), want.size());
    for (std::size_t i = 0; i < g.size(); ++i)
      EXPECT_NEAR(g[i], want[i], 1e-12 * (1 + std::fabs(want[i]))) << rows_op_info(op).name << " axis 1, element " << i;
  }
  // Non-contiguous rows: a transposed view, the rows along its last axis.
  const Tensor view = x.transpose({0, 2, 1});  // [4, 5, 37], rows of stride 5
  const auto want = reference(RowsOp::softmax, rows_t, 20, 37, nullptr, nullptr, 0);
  const auto got = softmax(view).to(cpu).to_vector<double>();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "softmax of a view, " << i;
  // Empty tensors: no rows, or rows of no elements (logsumexp of nothing is -inf).
  EXPECT_EQ(softmax(Tensor::empty({0, 7}, DType::f32, *dev_)).shape(), (Shape{0, 7}));
  EXPECT_EQ(layer_norm(Tensor::empty({3, 0}, DType::f32, *dev_)).shape(), (Shape{3, 0}));
  const auto lse = logsumexp(Tensor::empty({3, 0}, DType::f32, *dev_)).to(cpu).to_vector<float>();
  ASSERT_EQ(lse.size(), 3u);
  for (float f : lse) EXPECT_EQ(f, -std::numeric_limits<float>::infinity());
}

// The attention-score form softmax(scale * x + bias) with an additive bias broadcast from [Q, K],
// a pred mask broadcast from [K] and [B, 1, K], and the causal mask, against the reference applied
// to the masked scores; rows with everything masked give 0 (softmax) and -inf (log_softmax).
TEST_P(Rows, ScaledMaskedAndCausalSoftmax) {
  Device& cpu = device("cpu");
  const std::int64_t B = 3, Q = 5, K = 37;
  const auto xv = random_values(std::size_t(B * Q * K), -6, 6, 21);
  const auto bv = random_values(std::size_t(Q * K), -2, 2, 22);
  std::vector<std::uint8_t> mk(static_cast<std::size_t>(K)), mbk(static_cast<std::size_t>(B * K));
  for (std::int64_t j = 0; j < K; ++j) mk[std::size_t(j)] = j % 3 != 1;
  for (std::int64_t i = 0; i < B * K; ++i) mbk[std::size_t(i)] = i / K == 1 ? 0 : (i * 7) % 5 != 0;  // batch 1 fully masked
  const Tensor x = Tensor::from_vector(xv, {B, Q, K}, cpu).to(*dev_);
  const Tensor bias = Tensor::from_vector(bv, {Q, K}, cpu).to(*dev_);
  const Tensor mask_k = as_type(Tensor::from_vector(mk, {K}, cpu), DType::pred).to(*dev_);
  const Tensor mask_bk = as_type(Tensor::from_vector(mbk, {B, 1, K}, cpu), DType::pred).to(*dev_);
  const double scale = 0.125;
  struct Form {
    const char* name;
    SoftmaxOptions o;
    std::function<double(std::int64_t, std::int64_t, std::int64_t)> score;  // b, q, k -> the masked score
  };
  const double ninf = -kInf;
  auto at = [&](std::int64_t b, std::int64_t q, std::int64_t k) { return xv[std::size_t((b * Q + q) * K + k)]; };
  const std::vector<Form> forms = {
      {"scale + bias", {scale, &bias, false},
       [&](std::int64_t b, std::int64_t q, std::int64_t k) { return scale * at(b, q, k) + bv[std::size_t(q * K + k)]; }},
      {"mask [K]", {1, &mask_k, false},
       [&](std::int64_t b, std::int64_t q, std::int64_t k) { return mk[std::size_t(k)] ? at(b, q, k) : ninf; }},
      {"mask [B,1,K] + causal", {scale, &mask_bk, true},
       [&](std::int64_t b, std::int64_t q, std::int64_t k) {
         return mbk[std::size_t(b * K + k)] && k <= q ? scale * at(b, q, k) : ninf;
       }},
      {"causal", {1, nullptr, true},
       [&](std::int64_t b, std::int64_t q, std::int64_t k) { return k <= q ? at(b, q, k) : ninf; }},
  };
  for (const Form& f : forms) {
    std::vector<double> scores;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t q = 0; q < Q; ++q)
        for (std::int64_t k = 0; k < K; ++k) scores.push_back(f.score(b, q, k));
    for (RowsOp op : {RowsOp::softmax, RowsOp::log_softmax}) {
      const Tensor out = op == RowsOp::softmax ? softmax(x, -1, f.o) : log_softmax(x, -1, f.o);
      const auto got = out.to(cpu).to_vector<double>();
      const auto want = reference(op, scores, B * Q, K, nullptr, nullptr, 0);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (std::isinf(want[i])) EXPECT_EQ(got[i], want[i]) << f.name << " " << rows_op_info(op).name << " " << i;
        else EXPECT_NEAR(got[i], want[i], 1e-12 * (1 + std::fabs(want[i]))) << f.name << " " << rows_op_info(op).name << " " << i;
      }
    }
  }
  // f16 scores with an f16 bias: computed in f32, rounded once.
  const Tensor x16 = as_type(x, DType::f16), b16 = as_type(bias, DType::f16);
  const auto x16v = as_type(x16, DType::f64).to(cpu).to_vector<double>(), b16v = as_type(b16, DType::f64).to(cpu).to_vector<double>();
  std::vector<double> scores;
  for (std::size_t i = 0; i < x16v.size(); ++i) scores.push_back(0.5 * x16v[i] + b16v[i % std::size_t(Q * K)]);
  const auto want = reference(RowsOp::softmax, scores, B * Q, K, nullptr, nullptr, 0);
  const auto got = as_type(softmax(x16, -1, SoftmaxOptions{0.5, &b16, false}), DType::f64).to(cpu).to_vector<double>();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-3 * std::fabs(want[i]) + 0x1p-24) << "f16 " << i;
}

// The fused forms against the same computed op by op on the same device: the pre-norm residual
// stream (h = x + r and rms_norm(h) * gamma from one kernel: h bit-identical to add(x, r), the norm
// bit-identical to rms_norm(h)), a dequantizing prologue before layer_norm, a gating epilogue, an
// output cast, a scaled and masked softmax with a prologue, and logsumexp with an epilogue.
TEST_P(Rows, FusedFormsMatchOpByOp) {
  Device& cpu = device("cpu");
  auto near = [&](const Tensor& got, const Tensor& want, double rel, const std::string& what) {
    const auto g = as_type(got.to(cpu), DType::f64).to_vector<double>(), w = as_type(want.to(cpu), DType::f64).to_vector<double>();
    ASSERT_EQ(g.size(), w.size()) << what;
    ASSERT_EQ(got.shape(), want.shape()) << what;
    int bad = 0;
    for (std::size_t i = 0; i < g.size() && bad < 5; ++i)
      if (!(std::fabs(g[i] - w[i]) <= rel * std::fabs(w[i]) + 1e-30) && !(std::isnan(g[i]) && std::isnan(w[i])))
        ADD_FAILURE() << what << ": element " << i << " got " << g[i] << ", want " << w[i] << " (" << ++bad << ")";
  };
  const std::int64_t rows = 6, n = 1000;
  auto tensor = [&](DType t, const Shape& shape, double lo, double hi, unsigned seed) {
    std::int64_t count = 1;
    for (std::int64_t d : shape) count *= d;
    return as_type(Tensor::from_vector(random_values(std::size_t(count), lo, hi, seed), shape, cpu), t).to(*dev_);
  };
  // Residual + RMS norm in bf16: two outputs.
  const Tensor x = tensor(DType::bf16, {rows, n}, -4, 4, 31), r = tensor(DType::bf16, {rows, n}, -4, 4, 32);
  const Tensor gamma = tensor(DType::bf16, {n}, 0.5, 1.5, 33);
  RowsFusion res;
  res.prologue = parse_expr("x + y", {DType::bf16, DType::bf16});
  res.residual = true;
  const std::vector<Tensor> yh = fused_rows(RowsOp::rms_norm, {x, r}, {gamma}, res, {}, {-1, false, 1e-6, 1});
  ASSERT_EQ(yh.size(), 2u);
  const Tensor h = add(x, r);
  EXPECT_EQ(yh[1].dtype(), DType::bf16);
  EXPECT_EQ(yh[1].to(cpu).to_host(), h.to(cpu).to_host()) << "h = x + r";
  EXPECT_EQ(yh[0].to(cpu).to_host(), rms_norm(h, &gamma, 1e-6).to(cpu).to_host()) << "rms_norm(h) * gamma";
  // A dequantizing prologue (s8 * scale) before layer_norm with gamma and beta.
  std::vector<std::int8_t> qv(std::size_t(rows * n));
  for (std::size_t i = 0; i < qv.size(); ++i) qv[i] = std::int8_t(int(i * 37 % 255) - 127);
  const Tensor q = Tensor::from_vector(qv, {rows, n}, cpu).to(*dev_);
  const Tensor g32 = tensor(DType::f32, {n}, 0.5, 1.5, 34), b32 = tensor(DType::f32, {n}, -1, 1, 35);
  RowsFusion deq;
  deq.prologue = parse_expr("as_type(x, f32) * 0.05", {DType::s8});
  const Tensor deq_ref = layer_norm(map(deq.prologue, {q}), &g32, &b32);
  near(fused_rows(RowsOp::layer_norm, {q}, {g32, b32}, deq)[0], deq_ref, 1e-6, "layer_norm(dequant(q))");
  // A gating epilogue: rms_norm(x32) * sigmoid(g), g of x's shape; and an output cast to bf16.
  const Tensor x32 = tensor(DType::f32, {rows, n}, -3, 3, 36), gate = tensor(DType::f32, {rows, n}, -3, 3, 37);
  RowsFusion gated;
  gated.epilogue = parse_expr_named("y * sigmoid(g)", {DType::f32, DType::f32}, {"y", "g"});
  const Tensor gate_ref = multiply(rms_norm(x32, nullptr, 1e-5), map(parse_expr("sigmoid(x)", {DType::f32}), {gate}));
  near(fused_rows(RowsOp::rms_norm, {x32}, {}, gated, {gate})[0], gate_ref, 1e-6, "rms_norm(x) * sigmoid(g)");
  RowsFusion cast;
  cast.output = DType::bf16;
  EXPECT_EQ(fused_rows(RowsOp::layer_norm, {x32}, {}, cast)[0].to(cpu).to_host(),
            as_type(layer_norm(x32), DType::bf16).to(cpu).to_host()) << "layer_norm -> bf16";
  // softmax(0.5 * (x + y)) with a pred mask, and logsumexp with an epilogue over y alone.
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < n; ++j) keep[std::size_t(j)] = j % 4 != 1;
  const Tensor mask = as_type(Tensor::from_vector(keep, {n}, cpu), DType::pred).to(*dev_);
  RowsFusion sm;
  sm.prologue = parse_expr("x + y", {DType::f32, DType::f32});
  const Tensor sum = add(x32, gate);
  near(fused_rows(RowsOp::softmax, {x32, gate}, {mask}, sm, {}, {-1, false, 0, 0.5})[0],
       softmax(sum, -1, SoftmaxOptions{0.5, &mask, false}), 1e-6, "masked softmax(0.5 (x + y))");
  RowsFusion lse;
  lse.epilogue = parse_expr_named("y * 2", {DType::f32}, {"y"});
  near(fused_rows(RowsOp::logsumexp, {x32}, {}, lse)[0], multiply(logsumexp(x32), full({}, 2.0, DType::f32, *dev_)), 1e-6,
       "2 * logsumexp(x)");
  // Misuse: a residual on softmax, epilogue operands with logsumexp, too many inputs, the prologue's
  // operand count.
  RowsFusion bad = res;
  EXPECT_THROW(fused_rows(RowsOp::softmax, {x, r}, {}, bad), Error);
  EXPECT_THROW(fused_rows(RowsOp::logsumexp, {x32}, {}, gated, {gate}), Error);
  RowsFusion wide;
  wide.prologue = parse_expr("x + y + z", {DType::f32, DType::f32, DType::f32});
  wide.epilogue = gated.epilogue;
  try {
    fused_rows(RowsOp::layer_norm, {x32, x32, x32}, {g32}, wide, {gate});
    ADD_FAILURE() << "five inputs accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("5 inputs in all"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fused_rows(RowsOp::rms_norm, {x32}, {}, sm), Error);
}

TEST_P(Rows, BadInputNamesOpShapesAxisAndDtypes) {
  const Tensor x = Tensor::empty({2, 3}, DType::f32, *dev_);
  auto message = [](auto&& f) { return conformance::error_message(f); };
  const std::string axis = message([&] { softmax(x, 2); });
  EXPECT_NE(axis.find("kiln::softmax"), std::string::npos) << axis;
  EXPECT_NE(axis.find("axis 2 is out of range for rank 2"), std::string::npos) << axis;
  EXPECT_NE(axis.find("[2,3]"), std::string::npos) << axis;
  const Tensor ints = Tensor::empty({2, 3}, DType::s32, *dev_);
  const std::string dtype = message([&] { log_softmax(ints); });
  EXPECT_NE(dtype.find("needs a float tensor"), std::string::npos) << dtype;
  EXPECT_NE(dtype.find("s32"), std::string::npos) << dtype;
  const Tensor g4 = Tensor::empty({4}, DType::f32, *dev_);
  const std::string gamma = message([&] { layer_norm(x, &g4); });
  EXPECT_NE(gamma.find("gamma must be 1-D of the length of axis -1 (3), got [4]"), std::string::npos) << gamma;
  const Tensor g3 = Tensor::empty({3}, DType::f16, *dev_);
  EXPECT_NE(message([&] { rms_norm(x, &g3); }).find("operand 1 is f16"), std::string::npos);
  EXPECT_NE(message([&] { rms_norm(x, nullptr, 0.0); }).find("eps must be finite and > 0, got 0"), std::string::npos);
  // f32 compute: an eps that rounds to 0 (or a subnormal), a scale that rounds to inf; f64 takes them.
  EXPECT_NE(message([&] { rms_norm(x, nullptr, 1e-50); }).find("eps 1e-50 is below the smallest normal f32"),
            std::string::npos);
  EXPECT_NE(message([&] { layer_norm(x, nullptr, nullptr, 1e-40); }).find("below the smallest normal f32"), std::string::npos);
  EXPECT_NE(message([&] { rms_norm(x, nullptr, 1e39); }).find("eps 1e+39 is beyond the range of f32"), std::string::npos);
  EXPECT_NE(message([&] { softmax(x, -1, SoftmaxOptions{1e39, nullptr, false}); }).find("scale 1e+39 is beyond the range of f32"),
            std::string::npos);
  const Tensor x64 = as_type(full({2, 3}, 0.0, DType::f32, *dev_), DType::f64);
  EXPECT_EQ(rms_norm(x64, nullptr, 1e-50).to(device("cpu")).to_vector<double>()[0], 0.0);  // 0 * rsqrt(0 + 1e-50)
  EXPECT_NE(message([&] { layer_norm(x, nullptr, &g4); }).find("beta without gamma"), std::string::npos);
  const Tensor b16 = Tensor::empty({3}, DType::f16, *dev_), b4 = Tensor::empty({4}, DType::f32, *dev_);
  EXPECT_NE(message([&] { softmax(x, -1, SoftmaxOptions{1, &b16, false}); }).find("the bias is f16"), std::string::npos);
  EXPECT_NE(message([&] { softmax(x, -1, SoftmaxOptions{1, &b4, false}); }).find("bias [4] does not broadcast to x's shape [2,3]"),
            std::string::npos);
  EXPECT_NE(message([&] { log_softmax(x, 0, SoftmaxOptions{1, nullptr, true}); }).find("causal mask works along the last axis"),
            std::string::npos);
  const Tensor wrong_into = Tensor::empty({2}, DType::f32, *dev_);
  EXPECT_NE(message([&] { softmax(x, -1, &wrong_into); }).find("must be a contiguous [2,3] f32"), std::string::npos);
}

// Vulkan rows and scan kernels combine with subgroup arithmetic; a device without it (ctest
// conformance-vulkan-shared-memory: KILN_VK_NO_SUBGROUP_ARITHMETIC=1) runs the built-in ones
// recompiled just in time with shared memory only (the Rows and Scan suites pass both ways),
// while kernels that use no subgroup operations (map) stay as built.
TEST_P(Rows, BuiltKernelsNeedingSubgroupArithmeticAreRebuiltWithout) {
  if (dev_->backend() == Backend::cpu) GTEST_SKIP() << "no kernels on the CPU backend";
  int subgroup = 0, maps = 0;
  for (const KernelEntry& e : builtin_registry().kernels) {
    const std::string family = e.family ? e.family : "";
    if (dev_->backend() == Backend::cuda || (family != "rows" && family != "scan" && family != "map")) continue;
    if (e.num_functions == 0 || e.functions[0].spirv.empty()) continue;  // not built for Vulkan
    // Scans of 64-bit integers keep shared memory (subgroup arithmetic on them needs more features).
    const DType x = spec_from_canonical(e.spec).inputs.at(0);
    const bool int64_scan = family == "scan" && (x == DType::s64 || x == DType::u64);
    if (family != "map" && !int64_scan) {
      ++subgroup;
      EXPECT_EQ(built_for(e, *dev_), dev_->info().subgroup_arithmetic) << e.name;
    } else {
      ++maps;
      EXPECT_TRUE(built_for(e, *dev_)) << e.name;
    }
  }
  if (dev_->backend() == Backend::vulkan) {
    EXPECT_GT(subgroup, 0);
    EXPECT_GT(maps, 0);
  }
  // Short rows (a subgroup each) and long ones (a workgroup each) either way.
  check(RowsOp::softmax, DType::f32, 77, 5, random_values(77 * 5, -4, 4, 11));
  check(RowsOp::layer_norm, DType::f32, 9, 3000, random_values(9 * 3000, -4, 4, 12));
  std::printf("%s: subgroup arithmetic %s, subgroup size %u; %d kernels use it, %d map kernels do not\n",
              dev_->id().c_str(), dev_->info().subgroup_arithmetic ? "on" : "off", dev_->info().subgroup_size, subgroup,
              maps);
}

INSTANTIATE_TEST_SUITE_P(Cpu, Rows, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Rows, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Rows, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
