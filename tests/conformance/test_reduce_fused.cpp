// Fused reductions (prologue over several inputs, epilogue on the reduced value) against the same
// computation op by op on the same device; determinism; and the errors users see. On cpu, vulkan:0
// (lavapipe in CI) and cuda:0 where a GPU exists.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <random>

#include "runtime/kiln.hpp"
#include "tests/conformance/validation_scope.hpp"

namespace kiln {
namespace {

Device* device_or_skip(const std::string& id, std::string* why) {
  try {
    return &device(id);
  } catch (const Error& e) {
    *why = e.what();
    return nullptr;
  }
}

Tensor random_tensor(const Shape& shape, DType t, Device& dev, std::uint64_t seed, double lo = -2, double hi = 2) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(std::size_t(shape_numel(shape)));
  for (double& x : v) x = u(rng);
  return as_type(Tensor::from_vector(v, shape, device("cpu")), t).to(dev);
}

std::vector<double> as_doubles(const Tensor& t) {
  return as_type(t.to(device("cpu")), DType::f64).to_vector<double>();
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  const auto g = as_doubles(got), w = as_doubles(want);
  int bad = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    const bool ok = std::isnan(w[i]) ? std::isnan(g[i]) : std::fabs(g[i] - w[i]) <= rtol * std::fabs(w[i]) + 1e-30;
    if (!ok && bad++ < 3) ADD_FAILURE() << what << ": output " << i << " got " << g[i] << " want " << w[i];
  }
}

class ReduceFused : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    dev_ = device_or_skip(GetParam(), &why);
    if (!dev_) GTEST_SKIP() << why;
    validation_.emplace(*dev_);  // any Vulkan validation message while the test runs fails it
  }
  void TearDown() override { validation_.reset(); }
  Device* dev_ = nullptr;
  std::optional<conformance::ValidationScope> validation_;
};

Tensor count_of(const Tensor& like, std::int64_t n) {
  return Tensor::from_vector(std::vector<double>{double(n)}, {}, device("cpu")).to(like.device());
}

TEST_P(ReduceFused, CorpusMatchesOpByOp) {
  Device& d = *dev_;
  const Tensor x = random_tensor({37, 129}, DType::f32, d, 1), y = random_tensor({37, 129}, DType::f32, d, 2);
  const Tensor n = as_type(count_of(x, 129), DType::f32);
  ReduceOptions rows;
  rows.axes = {1};

  {  // L2 norm of each row: sqrt(sum(x * x))
    const Expr epi = parse_expr_named("sqrt(acc)", {DType::f32, DType::s64}, {"acc", "n"});
    ReduceOptions o = rows;
    o.epilogue = &epi;
    expect_close(reduce(Combiner::sum, parse_expr("x * x", {DType::f32}), {x}, o), sqrt(sum(multiply(x, x), {1})), 1e-6,
                 "l2 norm");
  }
  {  // mean and mean of squares (variance pieces): acc / n with the count from the kernel
    const Expr epi = parse_expr_named("acc / n", {DType::f32, DType::s64}, {"acc", "n"});
    ReduceOptions o = rows;
    o.epilogue = &epi;
    expect_close(reduce(Combiner::sum, parse_expr("x", {DType::f32}), {x}, o), divide(sum(x, {1}), n), 1e-6, "mean");
    expect_close(reduce(Combiner::sum, parse_expr("x * x", {DType::f32}), {x}, o), divide(sum(multiply(x, x), {1}), n),
                 1e-6, "mean of squares");
  }
  {  // max-abs difference over two inputs, all axes
    expect_close(reduce(Combiner::max, parse_expr("abs(x - y)", {DType::f32, DType::f32}), {x, y}),
                 reduce_max(abs(subtract(x, y))), 0, "max abs diff");
  }
  {  // logsumexp: m = max per row (kept), log(sum(exp(x - m))) + m, the max broadcast into the prologue
    const Tensor m = reduce_max(x, {1}, true);
    const Expr epi = parse_expr_named("log(acc)", {DType::f32, DType::s64}, {"acc", "n"});
    ReduceOptions o = rows;
    o.keep_axes = true;
    o.epilogue = &epi;
    const Tensor fused = add(reduce(Combiner::sum, parse_expr("exp(x - y)", {DType::f32, DType::f32}), {x, m}, o), m);
    const Tensor ops = add(log(sum(exp(subtract(x, m)), {1}, true)), m);
    expect_close(fused, ops, 1e-6, "logsumexp");
  }
  {  // mixed dtypes in the prologue (f16 * f32 promotes to f32), and an output cast (bf16)
    const Tensor h = as_type(x, DType::f16);
    expect_close(reduce(Combiner::sum, parse_expr("x * y", {DType::f16, DType::f32}), {h, y}, rows),
                 sum(multiply(h, y), {1}), 1e-6, "mixed dtypes");
    const Expr epi = parse_expr_named("rsqrt(acc / n + 1e-6)", {DType::f32, DType::s64}, {"acc", "n"});
    ReduceOptions o = rows;
    o.epilogue = &epi;
    o.out = DType::bf16;
    const Tensor rms = reduce(Combiner::sum, parse_expr("x * x", {DType::f32}), {x}, o);
    EXPECT_EQ(rms.dtype(), DType::bf16);
    expect_close(rms, as_type(rsqrt(add(divide(sum(multiply(x, x), {1}), n), scalar(1e-6, DType::f32, d))), DType::bf16), 0,
                 "rms factor");
  }
  {  // a count of pred values: sum over a comparison gives u64
    const Tensor c = reduce(Combiner::sum, parse_expr("x > y", {DType::f32, DType::f32}), {x, y}, rows);
    EXPECT_EQ(c.dtype(), DType::u64);
    expect_close(c, sum(greater(x, y), {1}), 0, "count");
  }
}

TEST_P(ReduceFused, SameInputGivesBitIdenticalResults) {
  Device& d = *dev_;
  for (const Shape& shape : {Shape{1, (1 << 20) + 3}, Shape{1000, 1000}}) {
    const Tensor x = random_tensor(shape, DType::f32, d, 7);
    for (const std::vector<int>& axes : {std::vector<int>{}, std::vector<int>{0}, std::vector<int>{1}}) {
      const auto a = sum(x, axes).to_host(), b = sum(x, axes).to_host();
      EXPECT_EQ(a, b) << shape_text(shape);
      const Tensor h = as_type(x, DType::bf16);
      EXPECT_EQ(sum(h, axes).to_host(), sum(h, axes).to_host()) << shape_text(shape);
    }
  }
}

// What the user sees: the op, the shape, the axes, the dtypes and the device.
TEST_P(ReduceFused, ErrorsNameOpShapesAxesAndDevice) {
  Device& d = *dev_;
  const Tensor x = random_tensor({3, 4}, DType::f32, d, 3);
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto expect_has = [](const std::string& m, std::initializer_list<const char*> words) {
    for (const char* w : words) EXPECT_NE(m.find(w), std::string::npos) << "'" << w << "' not in: " << m;
  };
  const std::string dev = d.id();
  expect_has(message([&] { sum(x, {2}); }), {"kiln::sum", "axis 2 is out of range for rank 2", "[3,4]", "f32", dev.c_str()});
  expect_has(message([&] { reduce_max(x, {-3}); }), {"kiln::reduce_max", "axis -3 is out of range"});
  expect_has(message([&] { sum(x, {0, -2}); }), {"axis -2 is repeated in axes [0,-2]"});
  const Tensor empty = Tensor::empty({3, 0}, DType::f32, d);
  expect_has(message([&] { argmax(empty, 1); }), {"kiln::argmax", "over an empty axis", "[3,0]"});
  EXPECT_EQ(argmax(empty, 0).shape(), (Shape{0}));  // no outputs: nothing to index
  const Tensor p = Tensor::empty({2}, DType::pred, d);
  expect_has(message([&] { reduce_max(p); }), {"kiln::reduce_max", "does not accept pred"});
  expect_has(message([&] { sum(Tensor()); }), {"kiln::sum", "undefined"});
  const Tensor wrong = Tensor::empty({4}, DType::f32, d);
  expect_has(message([&] { sum(x, {1}, false, &wrong); }), {"must be a contiguous [3] f32", "got [4] f32"});
  const Expr bad_epi = parse_expr("x", {DType::f64});
  ReduceOptions o;
  o.epilogue = &bad_epi;
  expect_has(message([&] { reduce(Combiner::sum, parse_expr("x", {DType::f32}), {x}, o); }),
             {"kiln::reduce", "epilogue", "(acc: f32, n: s64)"});
  expect_has(message([&] { reduce(Combiner::sum, parse_expr("x * y", {DType::f32, DType::f32}), {x}); }),
             {"takes 2 inputs, got 1"});
  const Tensor s = random_tensor({3, 5}, DType::f32, d, 4);
  expect_has(message([&] { reduce(Combiner::sum, parse_expr("x * y", {DType::f32, DType::f32}), {x, s}); }),
             {"do not broadcast"});
  // Broadcast operands whose common shape has 2^80 elements (the output has one): refused by name.
  const Tensor one = random_tensor({1, 1}, DType::f32, d, 5);
  const std::int64_t big = std::int64_t(1) << 40;
  expect_has(message([&] {
               reduce(Combiner::sum, parse_expr("x * y", {DType::f32, DType::f32}),
                      {one.broadcast_to({big, 1}), one.broadcast_to({1, big})});
             }),
             {"kiln::reduce", "has more than 2^63 elements", "[1099511627776,1099511627776]"});
}

// Nx's identities and NaN rules on hand-computed values.
TEST_P(ReduceFused, HandComputedValues) {
  Device& d = *dev_;
  const float nan = NAN, inf = INFINITY;
  const Tensor v = Tensor::from_vector(std::vector<float>{1, nan, 3, -inf, 3, 2}, {2, 3}, device("cpu")).to(d);
  auto f32 = [](const Tensor& t) { return t.to(device("cpu")).to_vector<float>(); };
  auto s64 = [](const Tensor& t) { return t.to(device("cpu")).to_vector<std::int64_t>(); };
  EXPECT_TRUE(std::isnan(f32(reduce_max(v, {1}))[0]));
  EXPECT_EQ(f32(reduce_max(v, {1}))[1], 3.f);
  EXPECT_EQ(f32(reduce_min(v, {1}))[1], -inf);
  EXPECT_EQ(s64(argmax(v, 1)), (std::vector<std::int64_t>{1, 1}));      // NaN wins; then the first 3
  EXPECT_EQ(s64(argmax(v, 1, false, TieBreak::high))[1], 1);            // one 3 in row 1
  EXPECT_EQ(s64(argmax(v)), (std::vector<std::int64_t>{1}));            // flattened
  EXPECT_EQ(s64(argmin(v, 0)), (std::vector<std::int64_t>{1, 0, 1}));   // NaN is also the smallest
  const Tensor ties = Tensor::from_vector(std::vector<std::int32_t>{5, 7, 7, 5}, {4}, device("cpu")).to(d);
  EXPECT_EQ(s64(argmax(ties)), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(s64(argmax(ties, 0, false, TieBreak::high)), (std::vector<std::int64_t>{2}));
  EXPECT_EQ(s64(argmin(ties, 0, false, TieBreak::high)), (std::vector<std::int64_t>{3}));
  const Tensor i8 = Tensor::from_vector(std::vector<std::int8_t>{127, 127, 127}, {3}, device("cpu")).to(d);
  EXPECT_EQ(s64(sum(i8)), (std::vector<std::int64_t>{381}));  // s64: no wrap at 8 bits
  const Tensor big = Tensor::from_vector(std::vector<std::int64_t>{INT64_MAX, 1}, {2}, device("cpu")).to(d);
  EXPECT_EQ(s64(sum(big)), (std::vector<std::int64_t>{INT64_MIN}));  // wraps at 64 bits, as XLA
  const Tensor e = Tensor::empty({2, 0}, DType::f32, d);
  EXPECT_EQ(f32(sum(e, {1})), (std::vector<float>{0, 0}));
  EXPECT_EQ(f32(product(e, {1})), (std::vector<float>{1, 1}));
  EXPECT_EQ(f32(reduce_max(e, {1})), (std::vector<float>{-inf, -inf}));
  EXPECT_EQ(all(e, {1}).to(device("cpu")).to_vector<bool>(), (std::vector<bool>{true, true}));
  EXPECT_EQ(sum(e, {1}, true).shape(), (Shape{2, 1}));
  // Signed zeros: -0 orders below +0 (XLA), in both operand orders, elementwise and reduced.
  for (DType t : {DType::f32, DType::f64, DType::f16}) {
    const Tensor zs = as_type(Tensor::from_vector(std::vector<float>{0.0f, -0.0f, -0.0f, 0.0f}, {2, 2}, device("cpu")), t).to(d);
    const Tensor a = zs.slice(1, 0, 1), b = zs.slice(1, 1, 2);  // [+0, -0] and [-0, +0]
    for (const Tensor& r : {reduce_max(zs, {1}), max(a, b), max(b, a)})
      for (float v : f32(as_type(r, DType::f32))) EXPECT_FALSE(std::signbit(v)) << dtype_name(t) << " max gave -0";
    for (const Tensor& r : {reduce_min(zs, {1}), min(a, b), min(b, a)})
      for (float v : f32(as_type(r, DType::f32))) EXPECT_TRUE(std::signbit(v)) << dtype_name(t) << " min gave +0";
  }
  const Tensor z = Tensor::from_vector(std::vector<float>{-0.0f, nan}, {2}, device("cpu")).to(d);
  EXPECT_EQ(any(z.slice(0, 0, 1)).to(device("cpu")).to_vector<bool>(), std::vector<bool>{false});  // -0 is zero
  EXPECT_EQ(all(z.slice(0, 1, 2)).to(device("cpu")).to_vector<bool>(), std::vector<bool>{true});  // NaN is not
}

INSTANTIATE_TEST_SUITE_P(Cpu, ReduceFused, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, ReduceFused, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, ReduceFused, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
