// kiln::jit on every device: a traced, fused and replayed function gives what the same function
// gives run op by op (eager) on the same device — exactly for integers, to a few rounding units
// for floats (a fused kernel rounds every node to its dtype as the eager kernels do, so most
// cases are exact too) — over a corpus (gelu, silu, softplus, softmax and rms_norm written op by
// op, an attention-score scale + mask + softmax, an Adam update with three outputs, mixed dtypes
// with casts, size-1 and scalar broadcasting, transposed and sliced inputs) and hundreds of random
// expression DAGs with reductions; the launch counts show what fused; misuse gives clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "codegen/eval.hpp"
#include "runtime/kiln.hpp"
#include "tests/conformance/contraction_check.hpp"
#include "tests/conformance/device_suite.hpp"

namespace kiln {
namespace {

using conformance::error_message;
using conformance::scalars;

class Jit : public conformance::DeviceSuite {
 protected:
  Tensor rand(const Shape& shape, DType t, unsigned seed, double lo = -2, double hi = 2) {
    std::mt19937_64 rng(seed);
    std::vector<std::byte> bytes(std::size_t(shape_numel(shape)) * dtype_size(t));
    for (std::size_t i = 0; i < bytes.size() / dtype_size(t); ++i) {
      Scalar s;
      if (is_float(t)) s.f = std::uniform_real_distribution<double>(lo, hi)(rng);
      else s.i = std::int64_t(rng() % 200) - 100;
      store_scalar(t, bytes.data() + i * dtype_size(t), cast_scalar(s, is_float(t) ? DType::f64 : DType::s64, t));
    }
    return Tensor::from_host(bytes.data(), bytes.size(), shape, t, *dev_);
  }
};

// |got| equals |want| elementwise: same shape and dtype; integers exactly; floats within |ulps|
// rounding units of the dtype relative to |want|, or |abs| (results that cancel: a + b near 0),
// NaN matching NaN.
void expect_same(const Tensor& got, const Tensor& want, const std::string& what, double ulps = 4, double abs = 0) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  const std::vector<Scalar> g = scalars(got), w = scalars(want);
  const DType t = got.dtype();
  int bad = 0;
  for (std::size_t i = 0; i < g.size() && bad < 5; ++i) {
    if (!is_float(t)) {
      if (g[i].u != w[i].u) {
        ++bad;
        ADD_FAILURE() << what << ": element " << i << " is " << g[i].i << ", op by op " << w[i].i;
      }
      continue;
    }
    const double a = scalar_to_double(g[i], t), b = scalar_to_double(w[i], t);
    if (std::isnan(a) && std::isnan(b)) continue;
    if (a == b) continue;
    const double tol = std::max(ulps * 2 * conformance::unit_roundoff(t) * std::max(std::abs(b), 0x1p-60), abs);
    if (!(std::abs(a - b) <= tol)) {
      ++bad;
      ADD_FAILURE() << what << ": element " << i << " is " << a << ", op by op " << b;
    }
  }
}

Tensor gelu_ops(const Tensor& x) { return x * 0.5 * (erf(x * M_SQRT1_2) + 1.0); }
Tensor silu_ops(const Tensor& x) { return x / (exp(-x) + 1.0); }
Tensor softplus_ops(const Tensor& x) { return log1p(exp(x)); }
Tensor softmax_ops(const Tensor& x) {
  const Tensor e = exp(x - reduce_max(x, {-1}, true));
  return e / sum(e, {-1}, true);
}
// An Adam update (three results).
std::tuple<Tensor, Tensor, Tensor> adam_ops(const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v) {
  const Tensor m2 = m * 0.9 + g * 0.1;
  const Tensor v2 = v * 0.999 + g * g * 0.001;
  const Tensor p2 = p - (m2 / 0.1) * 1e-3 / (sqrt(v2 / 0.001) + 1e-8);
  return std::tuple{p2, m2, v2};
}
Tensor rms_norm_ops(const Tensor& x, const Tensor& g) {
  const Tensor ms = sum(x * x, {-1}, true) / double(x.shape().back());
  return x * rsqrt(ms + 1e-6) * g;
}

TEST_P(Jit, ElementwiseChainsFuseIntoOneKernel) {
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64}) {
    const Tensor x = rand({33, 65}, t, 1, -6, 6);
    for (auto [name, f] : {std::pair{"gelu", &gelu_ops}, std::pair{"silu", &silu_ops},
                           std::pair{"softplus", &softplus_ops}}) {
      auto fused = jit(f, {name});
      const std::string what = fmt::format("{} {}", name, dtype_name(t));
      expect_same(fused(x), f(x), what, 16);
      EXPECT_EQ(fused.stats().launches_per_call, 1) << what << "\n" << fused.plan(x);
      EXPECT_GE(fused.stats().launches_traced, 2) << what;
      expect_same(fused(x), f(x), what + " (replayed)", 16);
      EXPECT_EQ(fused.stats().traces, 1u) << what;
      EXPECT_EQ(fused.stats().cache_hits, 1u) << what;
    }
  }
}

TEST_P(Jit, RowPatternsWrittenOpByOp) {
  const Tensor x = rand({7, 129}, DType::f32, 2, -30, 30), g = rand({129}, DType::f32, 3);
  auto softmax = jit(&softmax_ops);
  // Recognised as the rows kernel: its exp and sum order differ from op by op's (~16 ulps at 1e-17).
  expect_same(softmax(x), softmax_ops(x), "softmax", 32);
  // Recognised: one kernel of the rows family.
  EXPECT_EQ(softmax.stats().launches_per_call, 1) << softmax.plan(x);
  auto rms = jit(&rms_norm_ops);
  expect_same(rms(x, g), rms_norm_ops(x, g), "rms_norm", 32);
  // Recognised: one rows kernel (rms_norm), the gamma multiply its epilogue.
  EXPECT_EQ(rms.stats().launches_per_call, 1) << rms.plan(x, g);
  for (DType t : {DType::bf16, DType::f16, DType::f64}) {
    const Tensor xt = as_type(x, t), gt = as_type(g, t);
    const Tensor want = kiln::rms_norm(xt, &gt, 1e-6);
    expect_same(rms(xt, gt), want, fmt::format("rms_norm {}", dtype_name(t)), 4);
  }
  // The mean of squares used again: not an rms_norm.
  auto ms = jit([](const Tensor& t) {
    const Tensor m = sum(t * t, {-1}, true) / double(t.shape().back());
    return t * rsqrt(m + 1e-6) + m;
  });
  expect_same(ms(x), x * rsqrt(sum(x * x, {-1}, true) / 129.0 + 1e-6) + sum(x * x, {-1}, true) / 129.0, "ms", 32);
  EXPECT_EQ(ms.stats().launches_per_call, 2) << ms.plan(x);
  auto layer_norm = jit([](const Tensor& x, const Tensor& g, const Tensor& b) {
    const double n = double(x.shape().back());
    const Tensor d = x - sum(x, {-1}, true) / n;
    return d * rsqrt(sum(d * d, {-1}, true) / n + 1e-5) * g + b;
  });
  const Tensor b = rand({129}, DType::f32, 32);
  const Tensor want = [&] {
    const Tensor d = x - sum(x, {-1}, true) / 129.0;
    return d * rsqrt(sum(d * d, {-1}, true) / 129.0 + 1e-5) * g + b;
  }();
  // The outputs (d / sigma) * g + b cancel near 0: an absolute bound of a few units of |b| <= 2.
  expect_same(layer_norm(x, g, b), want, "layer_norm", 32, 8 * 0x1p-23);
  // The rms_norm of d = x - mean(x), then recognised as a layer_norm of x: one rows kernel (* g + b
  // its epilogue), in every float dtype.
  EXPECT_EQ(layer_norm.stats().launches_per_call, 1) << layer_norm.plan(x, g, b);
  for (DType t : {DType::bf16, DType::f16, DType::f64}) {
    const Tensor xt = as_type(x, t), gt = as_type(g, t), bt = as_type(b, t);
    // The kernel computes in f32 (f64): compared with kiln::layer_norm, not with op by op's roundings.
    expect_same(layer_norm(xt, gt, bt), kiln::layer_norm(xt, &gt, &bt, 1e-5),
                fmt::format("layer_norm {}", dtype_name(t)), 4, t == DType::f64 ? 64 * 0x1p-52 : 8 * 0x1p-8);
  }
  // A layer norm whose mean is used again (returned) keeps it: the sum, the mean (its division,
  // also inlined into the rows kernel's prologue) and the rms_norm of x - sum / n.
  auto keeps_mean = jit([](const Tensor& x) {
    const Tensor m = sum(x, {-1}, true) / double(x.shape().back());
    const Tensor d = x - m;
    return std::tuple{d * rsqrt(sum(d * d, {-1}, true) / double(x.shape().back()) + 1e-5), m};
  });
  const auto [ln, mean] = keeps_mean(x);
  expect_same(mean, sum(x, {-1}, true) / 129.0, "the mean");
  expect_same(ln, [&] {
    const Tensor d = x - sum(x, {-1}, true) / 129.0;
    return d * rsqrt(sum(d * d, {-1}, true) / 129.0 + 1e-5);
  }(), "layer norm keeping its mean", 32, 8 * 0x1p-23);
  EXPECT_EQ(keeps_mean.stats().launches_per_call, 3) << keeps_mean.plan(x);
  // The reduced values read through a reshape (row r reads column r's sum): no row op recognised,
  // the same values as op by op.
  auto reshaped = jit([](const Tensor& t) {
    const double n = double(t.shape().back());
    const Tensor d = t - (sum(t, {-1}, true) / n).reshape({1, t.shape()[0]});
    const Tensor m = reduce_max(d, {-1}, true).reshape({1, t.shape()[0]});
    return std::tuple{d * rsqrt(sum(d * d, {-1}, true) / n + 1e-5), exp(d - m) / sum(exp(d - m), {-1}, true)};
  });
  const Tensor sq = rand({24, 24}, DType::f32, 33, -4, 4);
  const auto [rn, rs] = reshaped(sq);
  {
    const Tensor d = sq - (sum(sq, {-1}, true) / 24.0).reshape({1, 24});
    const Tensor m = reduce_max(d, {-1}, true).reshape({1, 24});
    expect_same(rn, d * rsqrt(sum(d * d, {-1}, true) / 24.0 + 1e-5), "a mean read through a reshape", 32, 1e-5);
    expect_same(rs, exp(d - m) / sum(exp(d - m), {-1}, true), "a max read through a reshape", 32);
  }
  EXPECT_EQ(reshaped.plan(sq).find("layer_norm"), std::string::npos) << reshaped.plan(sq);
  EXPECT_EQ(reshaped.plan(sq).find("op=softmax"), std::string::npos) << reshaped.plan(sq);
  // Attention scores: scale, causal mask, softmax.
  auto scores = [](const Tensor& q, const Tensor& mask) {
    const Tensor s = select(mask, q * 0.125, full({}, -INFINITY, DType::f32, q.device()));
    return softmax_ops(s);
  };
  const Tensor q = rand({2, 8, 8}, DType::f32, 4, -20, 20);
  std::vector<std::uint8_t> m(64);
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) m[std::size_t(i * 8 + j)] = j <= i;
  const Tensor mask = Tensor::from_host(m.data(), m.size(), {8, 8}, DType::pred, *dev_);
  auto fused = jit(scores);
  expect_same(fused(q, mask), scores(q, mask), "attention scores", 32);
  // The scaled, masked scores are the rows kernel's prologue.
  EXPECT_EQ(fused.stats().launches_per_call, 1) << fused.plan(q, mask);
  // What follows the division is its epilogue; what uses the max elsewhere keeps it apart.
  auto after = jit([](const Tensor& t) { return softmax_ops(t) * 3.0 + t; });
  expect_same(after(x), softmax_ops(x) * 3.0 + x, "softmax * 3 + x", 32);
  EXPECT_EQ(after.stats().launches_per_call, 1) << after.plan(x);
  auto apart = jit([](const Tensor& t) {
    const Tensor m = reduce_max(t, {-1}, true);
    const Tensor e = exp(t - m);
    return e / sum(e, {-1}, true) + m;
  });
  const Tensor mx = reduce_max(x, {-1}, true);
  expect_same(apart(x), exp(x - mx) / sum(exp(x - mx), {-1}, true) + mx, "softmax + max");
  EXPECT_EQ(apart.stats().launches_per_call, 3) << apart.plan(x);
  // In f16 and bf16, op by op rounds x - max (up to 1/8 at 40 in bf16) and exp(x - max) to the dtype:
  // errors of 10 % and more. The recognised kernel computes in f32, as kiln::softmax does: it is
  // compared with that.
  for (DType t : {DType::bf16, DType::f16, DType::f64}) {
    const Tensor xt = as_type(x, t);
    expect_same(softmax(xt), kiln::softmax(xt), fmt::format("softmax {}", dtype_name(t)), 2);
  }
}

// What a recognised row op must not lose: the mean read again by the normalised value's consumer
// (the layer norm's sum stays: the rows kernel's epilogue reads it), and a cast to f64 the user
// wrote before the reductions (the kernel computes in f64: exp(-200) is not flushed to 0 in f32).
TEST_P(Jit, RowPatternsKeepWhatTheUserWrote) {
  const Tensor x = rand({7, 129}, DType::f32, 41, -30, 30);
  auto plus_mean = jit([](const Tensor& t) {
    const double n = double(t.shape().back());
    const Tensor m = sum(t, {-1}, true) / n;
    const Tensor d = t - m;
    return d * rsqrt(sum(d * d, {-1}, true) / n + 1e-5) + m;
  });
  const Tensor m = sum(x, {-1}, true) / 129.0, d = x - m;
  expect_same(plus_mean(x), d * rsqrt(sum(d * d, {-1}, true) / 129.0 + 1e-5) + m, "layer norm + its mean", 32, 1e-5);
  std::vector<float> rows = {0, -200, -200, 0, 1, 2, -1000, 1000};
  const Tensor y = Tensor::from_host(rows.data(), rows.size() * 4, {4, 2}, DType::f32, device("cpu")).to(*dev_);
  auto in_f64 = jit([](const Tensor& t) { return softmax_ops(as_type(t, DType::f64)); });
  const Tensor got = in_f64(y), want = softmax_ops(as_type(y, DType::f64));
  expect_same(got, want, "softmax of f32 values cast to f64", 32);
  EXPECT_GT(scalars(got)[1].f, 0) << "exp(-200) in f64 is 1.4e-87\n" << in_f64.plan(y);
  // A fully masked row (a padded query): NaN op by op (-inf - -inf), so NaN fused too — not the
  // 0 kiln::softmax gives such a row.
  auto masked = [](const Tensor& q, const Tensor& mask) {
    return softmax_ops(select(mask, q, full({}, -INFINITY, DType::f32, q.device())));
  };
  const Tensor q = rand({3, 5}, DType::f32, 42, -4, 4);
  std::vector<std::uint8_t> keep = {1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
  const Tensor mask = Tensor::from_host(keep.data(), keep.size(), {3, 5}, DType::pred, *dev_);
  auto fused = jit(masked);
  const Tensor want_m = masked(q, mask);
  EXPECT_TRUE(std::isnan(scalars(want_m)[5].f));
  expect_same(fused(q, mask), want_m, "softmax with a fully masked row", 32);
  EXPECT_EQ(fused.stats().launches_per_call, 1) << fused.plan(q, mask);
}

TEST_P(Jit, AdamUpdateWithThreeOutputs) {
  const auto adam = &adam_ops;
  const Shape s{1000, 3};
  const Tensor p = rand(s, DType::f32, 5), g = rand(s, DType::f32, 6), m = rand(s, DType::f32, 7),
               v = rand(s, DType::f32, 8, 0, 1);
  auto fused = jit(adam, {"adam"});
  const auto [p2, m2, v2] = fused(p, g, m, v);
  const auto [ep, em, ev] = adam(p, g, m, v);
  expect_same(p2, ep, "adam p");
  expect_same(m2, em, "adam m");
  expect_same(v2, ev, "adam v");
  // One map kernel with three results: m and v computed once, p from them.
  EXPECT_EQ(fused.stats().launches_per_call, 1) << fused.plan(p, g, m, v);
  EXPECT_NE(fused.plan(p, g, m, v).find("2 joined as more results"), std::string::npos) << fused.plan(p, g, m, v);
}

// Elementwise results over the same shape become one map kernel with up to four results, of any
// dtypes, over broadcast operands too (the strided entry point) and sizes with a vector tail; a
// fifth result starts another kernel; a map that must wait for a reduction of the first one's
// result stays apart, and one that can move past it joins.
TEST_P(Jit, SiblingMapsBecomeOneKernelWithSeveralResults) {
  using Results = std::vector<Tensor>;
  for (const bool broadcast : {false, true}) {
    const Tensor x = rand({37, 129}, DType::f16, 11, -3, 3), y = rand({37, 129}, DType::s32, 12);
    const Tensor b = broadcast ? rand({129}, DType::bf16, 13) : rand({37, 129}, DType::bf16, 13);
    const auto four = [](const Tensor& x, const Tensor& y, const Tensor& b) {
      return Results{x * b, as_type(y, DType::f64) + 0.5, apply_op(Op::greater, {x, b}), bitwise_and(y, y * 3)};
    };
    auto fused = jit(four, {"four"});
    const Results got = fused(x, y, b), want = four(x, y, b);
    for (std::size_t k = 0; k < want.size(); ++k) expect_same(got[k], want[k], fmt::format("result {} broadcast {}", k, broadcast));
    EXPECT_EQ(fused.stats().launches_per_call, 1) << fused.plan(x, y, b);
    const auto five = [&](const Tensor& x, const Tensor& y, const Tensor& b) {
      Results r = four(x, y, b);
      r.push_back(as_type(x, DType::u8));
      return r;
    };
    auto fused5 = jit(five, {"five"});
    const Results got5 = fused5(x, y, b), want5 = five(x, y, b);
    for (std::size_t k = 0; k < want5.size(); ++k) expect_same(got5[k], want5[k], fmt::format("five: result {}", k));
    EXPECT_EQ(fused5.stats().launches_per_call, 2) << fused5.plan(x, y, b);  // at most 4 results a kernel
  }
  const Tensor x = rand({33, 65}, DType::f32, 14);
  // Five operands in all: more than a map kernel takes, two kernels.
  const auto wide = [](const Tensor& a, const Tensor& b, const Tensor& c, const Tensor& d, const Tensor& e) {
    return Results{a + b, c + d * e};
  };
  auto two = jit(wide, {"wide"});
  const Tensor x2 = x * 2, x3 = x * 3, x4 = x * 4, x5 = x * 5;
  const Results gw = two(x, x2, x3, x4, x5), ww = wide(x, x2, x3, x4, x5);
  for (std::size_t k = 0; k < 2; ++k) expect_same(gw[k], ww[k], fmt::format("wide {}", k));
  EXPECT_EQ(two.stats().launches_per_call, 2) << two.plan(x, x2, x3, x4, x5);
  // exp(x) may run after the reduction: it joins x * s.
  const auto after = [](const Tensor& x) { return Results{exp(x), x * sum(x * x)}; };
  auto moved = jit(after, {"moved"});
  const Results gm = moved(x), wm = after(x);
  expect_same(gm[0], wm[0], "exp");
  expect_same(gm[1], wm[1], "x * s", 8);
  EXPECT_EQ(moved.stats().launches_per_call, 2) << moved.plan(x);
  // The reduction reads exp(x) (transposed: not inlined) and x * s reads the reduction: neither map
  // can move to the other's place.
  const auto chained = [](const Tensor& x) {
    const Tensor e = exp(x);
    return Results{e, x * sum(e.transpose({1, 0}), {0}, true).transpose({1, 0})};
  };
  auto apart = jit(chained, {"apart"});
  const Results ga = apart(x), wa = chained(x);
  expect_same(ga[0], wa[0], "e");
  expect_same(ga[1], wa[1], "x * sum(e)", 8);
  EXPECT_EQ(apart.stats().launches_per_call, 3) << apart.plan(x);
}

TEST_P(Jit, MixedDtypesCastsAndIntegersExactly) {
  auto f = [](const Tensor& a, const Tensor& b) {
    const Tensor i = a * 3 + b - right_shift(a, full({}, 1, DType::s32, a.device()));
    const Tensor h = as_type(as_type(i, DType::f16), DType::f32) * 0.25;
    return std::tuple{i, h, as_type(i, DType::s32) + 0};
  };
  const Tensor a = rand({5, 6}, DType::s32, 9), b = rand({6}, DType::s16, 10);
  auto fused = jit(f);
  const auto [i, h, same] = fused(a, b);
  const auto [ei, eh, esame] = f(a, b);
  expect_same(i, ei, "integers", 0);
  expect_same(h, eh, "casts", 0);
  expect_same(same, esame, "x + 0", 0);
}

TEST_P(Jit, BroadcastsTransposesAndSlicesBecomeIndexMath) {
  auto f = [](const Tensor& x, const Tensor& row, const Tensor& col) { return tanh(x * row + col) - x; };
  const Tensor base = rand({9, 12}, DType::f32, 11);
  const Tensor xt = base.transpose({1, 0});            // [12, 9], not contiguous
  const Tensor row = rand({9}, DType::f32, 12);        // broadcast over rows
  const Tensor col = rand({12, 1}, DType::f32, 13);    // size-1 axis
  auto fused = jit(f);
  expect_same(fused(xt, row, col), f(xt, row, col), "transposed");
  EXPECT_EQ(fused.stats().launches_per_call, 1) << fused.plan(xt, row, col);
  const Tensor sl = base.slice(1, 1, 12, 2);  // [9, 6] with stride 2
  const Tensor row6 = rand({6}, DType::f32, 14), s = Tensor::from_vector<float>({3.0f}, {}, *dev_);
  expect_same(fused(sl, row6, s), f(sl, row6, s), "sliced with a scalar tensor");
  EXPECT_EQ(fused.stats().traces, 2u);  // another signature
  // A different offset into the same storage is the same signature: the addresses are rebound.
  const Tensor sl2 = base.slice(1, 0, 11, 2);
  expect_same(fused(sl2, row6, s), f(sl2, row6, s), "another offset");
  EXPECT_EQ(fused.stats().traces, 2u);
}

TEST_P(Jit, ReturnsInputsViewsConstantsAndEmptyTensors) {
  auto f = [](const Tensor& x) { return std::tuple{x, x.transpose({1, 0}), full({2}, 7, DType::s32, x.device()), exp(x)}; };
  const Tensor x = rand({3, 4}, DType::f32, 15);
  auto fused = jit(f);
  const auto [a, b, c, d] = fused(x);
  expect_same(a, x, "input");
  expect_same(b, x.transpose({1, 0}), "view of the input");
  EXPECT_EQ(c.to_vector<std::int32_t>(), (std::vector<std::int32_t>{7, 7}));
  expect_same(d, exp(x), "exp");
  const Tensor e = Tensor::empty({0, 4}, DType::f32, *dev_);
  const auto [ea, eb, ec, ed] = fused(e);
  EXPECT_EQ(ed.shape(), (Shape{0, 4}));
  EXPECT_EQ(eb.shape(), (Shape{4, 0}));
}

// A tensor from outside that the function writes (an output it was given) is kept alive by the
// function, as the tensors it reads are: the replay writes it after its owner let go.
TEST_P(Jit, OutsideTensorsTheFunctionWritesAreKeptAlive) {
  auto acc = std::make_shared<Tensor>(zeros({3, 4}, DType::f32, *dev_));
  auto f = jit([acc](const Tensor& x) {
    add(x, x, acc.get());
    return x * 2.0;
  });
  const Tensor x = rand({3, 4}, DType::f32, 16);
  f(x);
  const std::weak_ptr<Buffer> kept = acc->storage();
  *acc = Tensor();
  EXPECT_FALSE(kept.expired()) << "the function's replay writes it";
  expect_same(f(x), x * 2.0, "replayed after the output's owner let go");
}

TEST_P(Jit, ContractionsAndRowOpsReplay) {
  auto f = [](const Tensor& a, const Tensor& b, const Tensor& bias) {
    return softmax(gelu_ops(matmul(a, b) + bias)) * 2.0;
  };
  const Tensor a = rand({16, 24}, DType::f32, 16), b = rand({24, 8}, DType::f32, 17), bias = rand({8}, DType::f32, 18);
  auto fused = jit(f);
  expect_same(fused(a, b, bias), f(a, b, bias), "matmul + gelu + softmax", 16);
}

TEST_P(Jit, ElementwiseConsumersOfAMatmulMoveIntoItsEpilogue) {
  auto f = [](const Tensor& a, const Tensor& b, const Tensor& bias, const Tensor& residual) {
    return gelu_ops(matmul(a, b) + bias) + residual;
  };
  for (DType t : {DType::f32, DType::bf16}) {
    const Tensor a = rand({2, 33, 40}, t, 23), b = rand({40, 24}, t, 24), bias = rand({24}, t, 25),
                 r = rand({2, 33, 24}, t, 26);
    auto fused = jit(f);
    const std::string what = fmt::format("gelu(a @ b + bias) + r, {}", dtype_name(t));
    // bf16: the consumer sees the product rounded to bf16 as op by op does (tolerance: erf).
    expect_same(fused(a, b, bias, r), f(a, b, bias, r), what, t == DType::bf16 ? 8 : 16);
    EXPECT_EQ(fused.stats().launches_per_call, 1) << what << "\n" << fused.plan(a, b, bias, r);
    // Transposed operands and a dot over batch axes fuse the same way.
    auto g = jit([](const Tensor& x, const Tensor& y) { return tanh(dot(x, y, {.contract_a = {1}, .contract_b = {0}}) * 0.5); });
    const Tensor xt = rand({40, 17}, t, 27).transpose({1, 0});
    expect_same(g(xt, b), tanh(dot(xt, b, {.contract_a = {1}, .contract_b = {0}}) * 0.5), what + " (dot)", 16);
    EXPECT_EQ(g.stats().launches_per_call, 1) << g.plan(xt, b);
  }
  // Three operands besides the product: more than the epilogue takes, so the map stays separate.
  auto h = jit([](const Tensor& a, const Tensor& b, const Tensor& x, const Tensor& y) {
    return (matmul(a, b) + x) * y - x * y * 0.5 + a.slice(1, 0, 1);
  });
  const Tensor a = rand({8, 8}, DType::f32, 28), b = rand({8, 8}, DType::f32, 29), x = rand({8}, DType::f32, 30),
               y = rand({8, 1}, DType::f32, 31);
  expect_same(h(a, b, x, y), (matmul(a, b) + x) * y - x * y * 0.5 + a.slice(1, 0, 1), "three operands", 16);
  EXPECT_EQ(h.stats().launches_per_call, 2) << h.plan(a, b, x, y);
}

// The same for convolutions: NCHW and NHWC results (the consumer's operands then map through the
// output permutation), feature groups (channel g * O + o), strides and same padding.
TEST_P(Jit, ElementwiseConsumersOfAConvMoveIntoItsEpilogue) {
  for (DType t : {DType::f32, DType::bf16})
    for (bool nhwc : {false, true}) {
      ConvOptions o;
      o.strides = {2, 1};
      o.padding = ConvPadding::same;
      o.feature_group_size = 2;
      if (nhwc) o.output_permutation = {0, 3, 1, 2};
      auto f = [o](const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& r) {
        return tanh(conv(x, w, o) + bias) * 0.5 + r;
      };
      const Tensor x = rand({2, 4, 7, 6}, t, 40), w = rand({6, 2, 3, 3}, t, 41);
      const Tensor bias = nhwc ? rand({6}, t, 42) : rand({6, 1, 1}, t, 42);
      const Tensor r = rand(nhwc ? Shape{2, 4, 6, 6} : Shape{2, 6, 4, 6}, t, 43);
      auto fused = jit(f);
      const std::string what = fmt::format("tanh(conv + bias) * 0.5 + r, {}, {}", dtype_name(t), nhwc ? "NHWC" : "NCHW");
      expect_same(fused(x, w, bias, r), f(x, w, bias, r), what, t == DType::bf16 ? 8 : 16);
      EXPECT_EQ(fused.stats().launches_per_call, 1) << what << "\n" << fused.plan(x, w, bias, r);
      // A consumer over a reshape of the result is another shape: it stays a kernel of its own.
      auto g = jit([o](const Tensor& x, const Tensor& w) { return conv(x, w, o).reshape({2, 144}) * 2.0; });
      expect_same(g(x, w), conv(x, w, o).reshape({2, 144}) * 2.0, what + " (reshaped)", 0);
      EXPECT_EQ(g.stats().launches_per_call, 2) << what << "\n" << g.plan(x, w);
      // A comparison: no convolution writes pred, so it stays a kernel of its own too.
      auto p = jit([o](const Tensor& x, const Tensor& w, const Tensor& b) { return conv(x, w, o) > b; });
      expect_same(p(x, w, bias), conv(x, w, o) > bias, what + " (pred)", 0);
      EXPECT_EQ(p.stats().launches_per_call, 2) << what << "\n" << p.plan(x, w, bias);
    }
}

// A consumer that writes into what the convolution reads stays out of its epilogue: the fused
// kernel would read input windows it has already overwritten (eager convolves first).
TEST_P(Jit, AConsumerWritingTheConvolutionsInputStaysOut) {
  ConvOptions same;
  same.padding = ConvPadding::same;
  auto f = [same](const Tensor& x, const Tensor& w, const Tensor& b) {
    const Tensor h = x * 2.0;
    add(conv(h, w, same), b, &h);
    return h;
  };
  const Tensor x = rand({1, 4, 5, 5}, DType::f32, 44), w = rand({4, 4, 3, 3}, DType::f32, 45),
               b = rand({4, 1, 1}, DType::f32, 46);
  auto fused = jit(f);
  expect_same(fused(x, w, b), f(x, w, b), "h = x * 2; h = conv(h, w) + b", 16);
  EXPECT_EQ(fused.stats().launches_per_call, 3) << fused.plan(x, w, b);
}

// Random expression DAGs: ops, dtypes, broadcasting shapes and reductions drawn from a fixed seed;
// the jit of each equals its eager run.
TEST_P(Jit, RandomExpressionDagsMatchOpByOp) {
  const std::vector<Op> unary{Op::exp, Op::tanh, Op::sigmoid, Op::abs, Op::negate, Op::sin, Op::sqrt, Op::floor};
  const std::vector<Op> binary{Op::add, Op::subtract, Op::multiply, Op::divide, Op::max, Op::min, Op::atan2};
  const std::vector<Shape> shapes{{4, 6}, {6}, {4, 1}, {}, {1, 6}};
  const int cases = dev_->backend() == Backend::cpu ? 300 : 120;
  for (int c = 0; c < cases; ++c) {
    const unsigned seed = 1000u + unsigned(c);
    std::mt19937 rng(seed);
    const DType t = std::vector<DType>{DType::f32, DType::f16, DType::f64, DType::bf16}[rng() % 4];
    std::vector<Tensor> args;
    const int n_args = 1 + int(rng() % 4);
    for (int i = 0; i < n_args; ++i) args.push_back(rand(shapes[rng() % shapes.size()], t, seed * 7 + unsigned(i), 0.1, 3));
    const unsigned program = rng();
    auto body = [&unary, &binary, program](const std::vector<Tensor>& in) {
      std::mt19937 r(program);
      std::vector<Tensor> pool = in;
      const int steps = 3 + int(r() % 8);
      for (int s = 0; s < steps; ++s) {
        const int kind = int(r() % 10);
        const Tensor& a = pool[r() % pool.size()];
        if (kind < 4) {
          pool.push_back(apply_op(unary[r() % unary.size()], {a}));
        } else if (kind < 8) {
          pool.push_back(apply_op(binary[r() % binary.size()], {a, pool[r() % pool.size()]}));
        } else if (kind == 8) {
          pool.push_back(a * double(int(r() % 5)) + 1.0);
        } else if (a.rank() > 0) {
          pool.push_back(sum(a, {int(r() % std::size_t(a.rank()))}, true));
        }
      }
      return std::vector<Tensor>{pool.back(), pool[pool.size() / 2]};
    };
    auto fused = jit(body);
    const std::vector<Tensor> got = fused(args), want = body(args);
    for (std::size_t i = 0; i < got.size(); ++i)
      expect_same(got[i], want[i], fmt::format("seed {} ({}) output {}\n{}", seed, dtype_name(t), i, fused.plan(args)), 8);
    if (HasFailure()) break;
  }
}

TEST_P(Jit, MisuseGivesClearErrors) {
  const Tensor x = rand({3}, DType::f32, 19);
  auto reads = jit([](const Tensor& t) { return t * float(t.to_vector<float>()[0]); });
  std::string e = error_message([&] { reads(x); });
  EXPECT_NE(e.find("Tensor::to_host: the tensor is a traced value of a kiln::jit function"), std::string::npos) << e;
  auto shares = jit([](const Tensor& t) {
    DLManagedTensor* m = to_dlpack(t);
    m->deleter(m);
    return t;
  });
  e = error_message([&] { shares(x); });
  EXPECT_NE(e.find("to_dlpack: the tensor is a traced value"), std::string::npos) << e;
  Tensor leaked;
  auto leak = jit([&](const Tensor& t) {
    leaked = exp(t);
    return t;
  });
  leak(x);
  e = error_message([&] { exp(leaked); });
  EXPECT_NE(e.find("used outside its trace"), std::string::npos) << e;
  auto f = jit([](const Tensor& a, const Tensor& b) { return a + b; });
  e = error_message([&] { f(x, Tensor()); });
  EXPECT_NE(e.find("argument 1 is an undefined tensor"), std::string::npos) << e;
  e = error_message([&] { f(x, rand({4}, DType::f32, 20)); });
  EXPECT_NE(e.find("kiln::add: shapes do not broadcast"), std::string::npos) << e;
  if (dev_->backend() != Backend::cpu) {
    const Tensor c = x.to(device("cpu"));
    e = error_message([&] { f(x, c); });
    EXPECT_NE(e.find("different devices"), std::string::npos) << e;
    auto other = jit([&](const Tensor& t) { return t + exp(c); });
    e = error_message([&] { other(x); });
    EXPECT_NE(e.find("inside the trace of a kiln::jit function on " + dev_->id()), std::string::npos) << e;
  }
}

TEST_P(Jit, RepeatedLaunchesMergeAndReductionConsumersMoveIntoTheEpilogue) {
  const Tensor x = rand({9, 130}, DType::f32, 24, -3, 3);
  // The same sum written twice is one launch; the max is another; the map combining them keeps
  // both (it reads two tensors: no reduction epilogue takes it).
  auto twice = jit([](const Tensor& t) { return sum(t, {1}) * reduce_max(t, {1}) + sum(t, {1}); });
  expect_same(twice(x), sum(x, {1}) * reduce_max(x, {1}) + sum(x, {1}), "sum * max + sum");
  EXPECT_EQ(twice.stats().launches_traced, 5);
  EXPECT_EQ(twice.stats().launches_per_call, 3) << twice.plan(x);
  EXPECT_NE(twice.plan(x).find("1 repeated launches merged"), std::string::npos) << twice.plan(x);
  // Written into a buffer in between, the second sum reads other values: not merged.
  auto rewritten = jit([](const Tensor& t) {
    const Tensor c = t * 1.5;
    const Tensor a = sum(c, {1});
    exp(t, &c);  // c rewritten in place
    return a + sum(c, {1});
  });
  expect_same(rewritten(x), sum(x * 1.5, {1}) + sum(exp(x), {1}), "sum, write, sum", 8);
  EXPECT_EQ(rewritten.plan(x).find("1 repeated launches merged"), std::string::npos) << rewritten.plan(x);
  // An elementwise consumer of a reduction alone: its epilogue (a root mean square: one kernel,
  // x * x its prologue, sqrt(acc / n + eps) its epilogue), in every float dtype and exactly for
  // integers (argmax + 1, a sum cast down).
  auto rms = jit([](const Tensor& t) { return sqrt(sum(t * t, {1}) / double(t.shape()[1]) + 1e-5) * 2.0; });
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64}) {
    const Tensor xt = as_type(x, t);
    expect_same(rms(xt), sqrt(sum(xt * xt, {1}) / 130.0 + 1e-5) * 2.0, fmt::format("rms {}", dtype_name(t)), 8);
  }
  EXPECT_EQ(rms.stats().launches_per_call, 1) << rms.plan(x);
  auto ints = jit([](const Tensor& t) {
    return std::tuple{argmax(t, 1) + 1, as_type(sum(t, {0}), DType::s8), -reduce_min(t, {0, 1})};
  });
  const Tensor xi = rand({9, 130}, DType::s32, 25);
  const auto [i0, i1, i2] = ints(xi);
  expect_same(i0, argmax(xi, 1) + 1, "argmax + 1");
  expect_same(i1, as_type(sum(xi, {0}), DType::s8), "sum cast to s8 (wraps)");
  expect_same(i2, -reduce_min(xi, {0, 1}), "-min");
  EXPECT_EQ(ints.stats().launches_per_call, 3) << ints.plan(xi);
  // A consumer that broadcasts the reduced values back over x reads another layout: apart.
  auto centred = jit([](const Tensor& t) { return t - sum(t, {1}, true) / 130.0; });
  expect_same(centred(x), x - sum(x, {1}, true) / 130.0, "x - mean", 8, 1e-5);
  EXPECT_EQ(centred.stats().launches_per_call, 2) << centred.plan(x);
}

TEST_P(Jit, CallIntoWritesResultsIntoTheCallersTensorsAndRefusesBadOnes) {
  auto f = [](const Tensor& x) { return std::tuple{gelu_ops(x), x, x.transpose({1, 0}) * 2.0}; };
  const Tensor x = rand({5, 7}, DType::f32, 23);
  auto fused = jit(f, {"into"});
  const auto [w0, w1, w2] = f(x);
  // Fresh outputs, every result kind: a fused kernel's result (its buffer rebound: no copy), the
  // argument itself and a kernel's result over a transposed view (copied in where not rebindable).
  Tensor o0 = Tensor::empty({5, 7}, DType::f32, *dev_), o1 = Tensor::empty({5, 7}, DType::f32, *dev_),
         o2 = Tensor::empty({7, 5}, DType::f32, *dev_);
  for (int round = 0; round < 2; ++round) {  // the second call replays into the same tensors
    const auto [r0, r1, r2] = fused.call_into({o0, o1, o2}, x);
    EXPECT_EQ(r0.storage(), o0.storage());
    EXPECT_EQ(r1.storage(), o1.storage());
    EXPECT_EQ(r2.storage(), o2.storage());
    expect_same(o0, w0, "gelu into o0", 16);
    expect_same(o1, w1, "the argument copied into o1");
    expect_same(o2, w2, "2 x^T into o2");
  }
  EXPECT_EQ(fused.stats().traces, 1u);
  // An undefined output: that result is allocated as by operator().
  const auto [u0, u1, u2] = fused.call_into({Tensor(), o1, o2}, x);
  expect_same(u0, w0, "gelu, fresh", 16);
  EXPECT_NE(u0.storage(), o0.storage());

  auto e = error_message([&] { fused.call_into({o0, o1}, x); });
  EXPECT_NE(e.find("kiln::jit(into): 2 output tensors given for 3 results"), std::string::npos) << e;
  e = error_message([&] { fused.call_into({o0, o1, Tensor::empty({5, 7}, DType::f32, *dev_)}, x); });
  EXPECT_NE(e.find("kiln::jit(into): output 2 must be a contiguous [7,5] f32 on " + dev_->id()), std::string::npos) << e;
  e = error_message([&] { fused.call_into({o0, o1, Tensor::empty({7, 5}, DType::f64, *dev_)}, x); });
  EXPECT_NE(e.find("output 2 must be a contiguous [7,5] f32"), std::string::npos) << e;
  e = error_message([&] { fused.call_into({o0, o1, o2.transpose({1, 0}).transpose({1, 0}).slice(0, 0, 7)}, x); });
  EXPECT_EQ(e, "no error") << "a contiguous view is a valid output";
  const Tensor wide = Tensor::empty({7, 10}, DType::f32, *dev_);
  e = error_message([&] { fused.call_into({o0, o1, wide.slice(1, 0, 5)}, x); });
  EXPECT_NE(e.find("output 2 must be a contiguous [7,5] f32"), std::string::npos) << e;
  EXPECT_NE(e.find("not contiguous"), std::string::npos) << e;
  e = error_message([&] { fused.call_into({o0, o0, o2}, x); });
  EXPECT_NE(e.find("kiln::jit(into): outputs 0 and 1 share memory"), std::string::npos) << e;
  e = error_message([&] { fused.call_into({x, o1, o2}, x); });
  EXPECT_NE(e.find("kiln::jit(into): output 0 shares memory with argument 0"), std::string::npos) << e;
  expect_same(x, w1, "the argument is untouched by the refused call");
  // Two results over one buffer, the first written into a view at an offset of a larger tensor: the
  // second is the same memory seen another way.
  auto two_views = jit([](const Tensor& t) {
    const Tensor y = exp(t);
    return std::tuple{y, y.transpose({1, 0})};
  });
  const Tensor big = Tensor::empty({3 * 35}, DType::f32, *dev_);
  const Tensor at = big.slice(0, 35, 70).reshape({5, 7});
  const auto [v0, v1] = two_views.call_into({at, Tensor()}, x);
  expect_same(at, exp(x), "exp into a view at an offset");
  expect_same(v1, exp(x).transpose({1, 0}), "the transposed view of that result");
  EXPECT_EQ(v1.storage(), big.storage());
  if (dev_->backend() != Backend::cpu) {
    e = error_message([&] { fused.call_into({o0.to(device("cpu")), o1, o2}, x); });
    EXPECT_NE(e.find("output 0 must be a contiguous [5,7] f32 on " + dev_->id()), std::string::npos) << e;
  }
}

// On a GPU the second call with the same addresses records the launches into one graph (CUDA
// graph, Vulkan command buffer) and later calls replay it: it must read the arguments' current
// values, and fresh results must never share memory with the kept intermediates.
TEST_P(Jit, RepeatedCallsReplayOneRecordedGraph) {
  const bool gpu = dev_->backend() != Backend::cpu;
  const auto adam = &adam_ops;
  const Shape s{700, 3};
  const Tensor p = rand(s, DType::f32, 26), g = rand(s, DType::f32, 27), m = rand(s, DType::f32, 28),
               v = rand(s, DType::f32, 29, 0, 1);
  Tensor o0 = Tensor::empty(s, DType::f32, *dev_), o1 = Tensor::empty(s, DType::f32, *dev_),
         o2 = Tensor::empty(s, DType::f32, *dev_);
  auto fused = jit(adam, {"adam_graph"});
  for (int call = 0; call < 4; ++call) {
    as_type(rand(s, DType::f32, 40 + unsigned(call)), DType::f32, &g);  // new gradients, same memory
    fused.call_into({o0, o1, o2}, p, g, m, v);
    const auto [ep, em, ev] = adam(p, g, m, v);
    const std::string what = fmt::format("call {}", call);
    expect_same(o0, ep, what + ": p");
    expect_same(o1, em, what + ": m");
    expect_same(o2, ev, what + ": v");
  }
  JitStats st = fused.stats();
  EXPECT_EQ(st.graphs_recorded, gpu ? 1u : 0u);
  EXPECT_EQ(st.graph_replays, gpu ? 3u : 0u);  // calls 2, 3 and 4
  const std::string plan = fused.plan(p, g, m, v);
  EXPECT_NE(plan.find(gpu ? "replay: planned once per set of addresses"
                          : "replay: launch by launch (the CPU backend runs each kernel as it comes)"),
            std::string::npos)
      << plan;
  // Other arguments: other addresses, planned anew; then the first ones again: their graph.
  const Tensor p2 = p * 2.0;
  fused.call_into({o0, o1, o2}, p2, g, m, v);
  expect_same(o0, std::get<0>(adam(p2, g, m, v)), "other p");
  fused.call_into({o0, o1, o2}, p, g, m, v);
  expect_same(o0, std::get<0>(adam(p, g, m, v)), "p again");
  st = fused.stats();
  EXPECT_EQ(st.graphs_recorded, gpu ? 1u : 0u);
  EXPECT_EQ(st.graph_replays, gpu ? 4u : 0u);
  // Without graphs: the kept plans launched one by one, the same values.
  JitOptions no_graphs{"adam_plans"};
  no_graphs.graphs = false;
  auto planned = jit(adam, no_graphs);
  for (int call = 0; call < 3; ++call) {
    as_type(rand(s, DType::f32, 50 + unsigned(call)), DType::f32, &g);
    planned.call_into({o0, o1, o2}, p, g, m, v);
    const auto [ep, em, ev] = adam(p, g, m, v);
    expect_same(o0, ep, fmt::format("kept plans, call {}: p", call));
    expect_same(o2, ev, fmt::format("kept plans, call {}: v", call));
  }
  EXPECT_EQ(planned.stats().graph_replays, 0u);
  EXPECT_NE(planned.plan(p, g, m, v).find(gpu ? "replay: launch by launch (JitOptions::graphs is false)"
                                              : "replay: launch by launch (the CPU backend"),
            std::string::npos);

  // Fresh results each call (operator()): never the memory of another call's results.
  auto norm = jit([](const Tensor& x, const Tensor& w, const Tensor& b) {
    return std::tuple{softmax_ops(gelu_ops(matmul(x, w) + b)), sum(exp(x))};
  });
  const Tensor x = rand({64, 48}, DType::f32, 30), w = rand({48, 40}, DType::f32, 31), b = rand({40}, DType::f32, 32);
  std::vector<std::tuple<Tensor, Tensor>> kept;
  for (int call = 0; call < 5; ++call) kept.push_back(norm(x * double(call + 1), w, b));
  for (int call = 0; call < 5; ++call) {
    const Tensor xc = x * double(call + 1);
    const std::string what = fmt::format("fresh results of call {}", call);
    expect_same(std::get<0>(kept[std::size_t(call)]), softmax_ops(gelu_ops(matmul(xc, w) + b)), what, 64);
    expect_same(std::get<1>(kept[std::size_t(call)]), sum(exp(xc)), what + " (sum)", 64);
  }
  // The same arguments and outputs again and again: one graph, replayed with the values of now.
  Tensor r0 = Tensor::empty({64, 40}, DType::f32, *dev_), r1 = Tensor::empty({}, DType::f32, *dev_);
  Tensor xs = x * 1.0;
  for (int call = 0; call < 3; ++call) {
    as_type(x * double(call + 2), DType::f32, &xs);
    norm.call_into({r0, r1}, xs, w, b);
    const std::string what = fmt::format("replayed call {}", call);
    expect_same(r0, softmax_ops(gelu_ops(matmul(xs, w) + b)), what, 64);
    expect_same(r1, sum(exp(xs)), what + " (sum)", 64);
  }
  // (On CUDA the matmul may go to cuBLASLt, which a graph of kernels does not hold: then those
  // addresses replay launch by launch.)
  const std::uint64_t replays = norm.stats().graph_replays;
  if (dev_->backend() == Backend::cuda) EXPECT_TRUE(replays == 0u || replays == 2u) << replays;
  else EXPECT_EQ(replays, gpu ? 2u : 0u);
}

TEST_P(Jit, RetracingWarnsNamingWhatChanged) {
  auto f = jit([](const Tensor& t) { return t + 1.0; }, {"grow", true, 2});
  ::testing::internal::CaptureStderr();
  for (int n = 1; n <= 4; ++n) f(rand({n}, DType::f32, 21));
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("kiln::jit(grow): traced 3 signatures; this call differs from the last in argument 0: "
                     "f32[2][1] -> f32[3][1]"),
            std::string::npos)
      << err;
  EXPECT_EQ(f.stats().traces, 4u);
}

TEST_P(Jit, UnfusedReplayAgreesAndNestedFunctionsTraceInline) {
  auto inner = jit(&gelu_ops);
  auto outer = jit([&](const Tensor& t) { return inner(t) * 3.0; });
  auto plain = jit([&](const Tensor& t) { return gelu_ops(t) * 3.0; }, {"plain", false});
  const Tensor x = rand({64}, DType::f32, 22);
  expect_same(outer(x), plain(x), "nested vs unfused");
  EXPECT_EQ(outer.stats().launches_per_call, 1);
  EXPECT_EQ(plain.stats().launches_per_call, plain.stats().launches_traced);
  EXPECT_EQ(inner.stats().calls, 0u);  // traced inline, never called on its own
}

INSTANTIATE_TEST_SUITE_P(Cpu, Jit, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Jit, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Jit, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
