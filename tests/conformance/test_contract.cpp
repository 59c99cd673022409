// Contractions (kiln::dot, kiln::matmul) on every device against an independent reference written
// here from docs/semantics.md ("Contractions"): each output summed over its products in long
// double (integers wrapping in 64 bits, then to the output dtype), from the operands' logical
// elements. Shapes around the 64 x 64 x 16 tile, batched and broadcast batch axes, transposed and
// sliced operands (read through strides: no copy), several contract and batch axes, Nx's dot/2
// rules, every dtype with the whole range of the integers, NaN/Inf, empty operands, guard bytes
// around the output, and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "codegen/eval.hpp"
#include "codegen/families/contract.hpp"
#include "runtime/kiln.hpp"
#include "tests/conformance/cases.hpp"
#include "tests/conformance/contraction_check.hpp"
#include "tests/conformance/device_suite.hpp"

namespace kiln {
namespace {

using conformance::error_message;
using conformance::expect_contraction_matches;
using conformance::numel;
using conformance::random_tensor;
using conformance::Ref;
using conformance::scalars;
using conformance::unit_roundoff;

// Nx.dot/6 over the logical (row-major) elements of a and b; axes already non-negative.
Ref reference(const Tensor& a, const Tensor& b, const DotAxes& ax, DType out) {
  const std::vector<Scalar> va = scalars(a), vb = scalars(b);
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  auto strides = [](const Shape& s) {
    std::vector<std::int64_t> st(s.size());
    std::int64_t m = 1;
    for (std::size_t d = s.size(); d-- > 0;) {
      st[d] = m;
      m *= s[d];
    }
    return st;
  };
  const auto sta = strides(sa), stb = strides(sb);
  auto free_of = [](int rank, const std::vector<int>& c, const std::vector<int>& bt) {
    std::vector<int> f;
    for (int d = 0; d < rank; ++d)
      if (std::find(c.begin(), c.end(), d) == c.end() && std::find(bt.begin(), bt.end(), d) == bt.end()) f.push_back(d);
    return f;
  };
  const auto fa = free_of(a.rank(), ax.contract_a, ax.batch_a), fb = free_of(b.rank(), ax.contract_b, ax.batch_b);
  // Output dims: (batch pair), (a free), (b free); contraction dims: pairs.
  struct Dim {
    std::int64_t size, st_a, st_b;
  };
  std::vector<Dim> od, kd;
  for (std::size_t i = 0; i < ax.batch_a.size(); ++i)
    od.push_back({sa[std::size_t(ax.batch_a[i])], sta[std::size_t(ax.batch_a[i])], stb[std::size_t(ax.batch_b[i])]});
  for (int d : fa) od.push_back({sa[std::size_t(d)], sta[std::size_t(d)], 0});
  for (int d : fb) od.push_back({sb[std::size_t(d)], 0, stb[std::size_t(d)]});
  for (std::size_t i = 0; i < ax.contract_a.size(); ++i)
    kd.push_back({sa[std::size_t(ax.contract_a[i])], sta[std::size_t(ax.contract_a[i])], stb[std::size_t(ax.contract_b[i])]});
  std::int64_t n_out = 1, n_k = 1;
  for (const Dim& d : od) n_out *= d.size;
  for (const Dim& d : kd) n_k *= d.size;
  const DType acc = contract_accumulator_dtype(a.dtype(), b.dtype(), out);
  Ref r;
  r.k = n_k;
  for (std::int64_t o = 0; o < n_out; ++o) {
    std::int64_t ba = 0, bb = 0, rem = o;
    for (std::size_t d = od.size(); d-- > 0;) {
      const std::int64_t idx = rem % od[d].size;
      rem /= od[d].size;
      ba += idx * od[d].st_a;
      bb += idx * od[d].st_b;
    }
    long double f = 0, mag = 0;
    std::uint64_t u = 0;
    for (std::int64_t k = 0; k < n_k; ++k) {
      std::int64_t ia = ba, ib = bb, kr = k;
      for (std::size_t d = kd.size(); d-- > 0;) {
        const std::int64_t idx = kr % kd[d].size;
        kr /= kd[d].size;
        ia += idx * kd[d].st_a;
        ib += idx * kd[d].st_b;
      }
      const Scalar x = va[std::size_t(ia)], y = vb[std::size_t(ib)];
      if (is_float(acc)) {
        auto value = [](DType t, Scalar v) -> long double {
          if (is_float(t)) return v.f;
          return is_signed_int(t) ? static_cast<long double>(v.i) : static_cast<long double>(v.u);
        };
        const long double xf = value(a.dtype(), x), yf = value(b.dtype(), y);
        f += xf * yf;
        mag += std::fabs(xf * yf);
      } else {
        u += x.u * y.u;  // sign-extended loads: two's complement products wrap alike
      }
    }
    r.f.push_back(f);
    r.mag.push_back(mag);
    r.u.push_back(u);
  }
  return r;
}

class Contract : public conformance::DeviceSuite {
 protected:
  void expect_matches(const Tensor& got, const Ref& ref, DType a, DType b, const std::string& what) {
    expect_contraction_matches(got, ref, a, b, what);
  }

  // dot(a, b, axes) on the device (into a guarded output) against the reference.
  void check_dot(const Tensor& a, const Tensor& b, const DotAxes& axes, const std::string& what,
                 std::optional<DType> out = {}) {
    const Tensor ad = a.to(*dev_), bd = b.to(*dev_);
    DotOptions o;
    o.output = out;
    const Tensor plain = dot(ad, bd, axes, o);
    conformance::GuardedOutput guarded(*dev_, plain.shape(), plain.dtype());
    dot(ad, bd, axes, o, &guarded.view());
    EXPECT_EQ(guarded.touched_guards(), "") << what;
    DotAxes n = axes;
    auto norm = [](std::vector<int>& v, int rank) {
      for (int& d : v) d = d < 0 ? d + rank : d;
    };
    norm(n.contract_a, a.rank());
    norm(n.batch_a, a.rank());
    norm(n.contract_b, b.rank());
    norm(n.batch_b, b.rank());
    const Ref ref = reference(a, b, n, plain.dtype());
    expect_matches(plain, ref, a.dtype(), b.dtype(), what);
    expect_matches(guarded.view(), ref, a.dtype(), b.dtype(), what + " (into)");
  }

  // matmul(a, b) against dot over a and b broadcast to the common batch shape.
  void check_matmul(const Tensor& a, const Tensor& b, const std::string& what, std::optional<DType> out = {}) {
    DotOptions o;
    o.output = out;
    const Tensor got = matmul(a.to(*dev_), b.to(*dev_), o);
    Tensor a2 = a.rank() == 1 ? a.reshape({1, a.shape()[0]}) : a;
    Tensor b2 = b.rank() == 1 ? b.reshape({b.shape()[0], 1}) : b;
    const Shape ba(a2.shape().begin(), a2.shape().end() - 2), bb(b2.shape().begin(), b2.shape().end() - 2);
    const Shape batch = *broadcast_shapes({ba, bb});
    Shape fa = batch, fb = batch;
    fa.insert(fa.end(), a2.shape().end() - 2, a2.shape().end());
    fb.insert(fb.end(), b2.shape().end() - 2, b2.shape().end());
    a2 = a2.broadcast_to(fa);
    b2 = b2.broadcast_to(fb);
    DotAxes ax;
    const int nb = int(batch.size());
    for (int i = 0; i < nb; ++i) {
      ax.batch_a.push_back(i);
      ax.batch_b.push_back(i);
    }
    ax.contract_a = {nb + 1};
    ax.contract_b = {nb};
    const Ref ref = reference(a2, b2, ax, got.dtype());
    Shape want = batch;
    if (a.rank() >= 2) want.push_back(a.shape()[std::size_t(a.rank() - 2)]);
    if (b.rank() >= 2) want.push_back(b.shape().back());
    EXPECT_EQ(got.shape(), want) << what;
    expect_matches(got, ref, a.dtype(), b.dtype(), what);
    if (dev_->backend() == Backend::cuda) {  // cuBLASLt took it where it could: Kiln's kernel too
      o.vendor_library = false;
      expect_matches(matmul(a.to(*dev_), b.to(*dev_), o), ref, a.dtype(), b.dtype(), what + " (Kiln's kernel)");
    }
  }
};

TEST_P(Contract, MatmulShapesAroundTheTile) {
  unsigned seed = 1;
  for (std::int64_t m : {1, 7, 33, 64, 127})
    for (std::int64_t n : {1, 16, 65, 127})
      for (std::int64_t k : {1, 7, 16, 33, 127}) {
        const Tensor a = random_tensor({m, k}, DType::f32, ++seed), b = random_tensor({k, n}, DType::f32, ++seed);
        check_matmul(a, b, fmt::format("f32 {}x{}x{}", m, n, k));
      }
  const Tensor a = random_tensor({1000, 33}, DType::f32, 7), b = random_tensor({33, 70}, DType::f32, 8);
  check_matmul(a, b, "f32 1000x70x33");
  const Tensor c = random_tensor({3, 1000}, DType::f32, 9), d = random_tensor({1000, 5}, DType::f32, 10);
  check_matmul(c, d, "f32 3x5x1000 (long K)");
}

TEST_P(Contract, EveryDtypeWithTheWholeIntegerRange) {
  unsigned seed = 100;
  for (DType t : {DType::f32, DType::f16, DType::bf16, DType::f64, DType::s8, DType::u8, DType::s16, DType::u16,
                  DType::s32, DType::u32, DType::s64, DType::u64}) {
    const auto& ds = dev_->info().dtypes;
    if (std::find(ds.begin(), ds.end(), t) == ds.end()) continue;
    const Tensor a = random_tensor({9, 40}, t, ++seed), b = random_tensor({40, 70}, t, ++seed);
    check_matmul(a, b, std::string(dtype_name(t)));
  }
  // Explicit outputs: s8 x s8 summed in s32 (no wrap at 8 bits), f16 x f16 -> f32.
  check_matmul(random_tensor({5, 300}, DType::s8, 1), random_tensor({300, 6}, DType::s8, 2), "s8 -> s32", DType::s32);
  check_matmul(random_tensor({5, 30}, DType::f16, 3), random_tensor({30, 6}, DType::f16, 4), "f16 -> f32", DType::f32);
  // Mixed operands promote (Nx): s8 x f32 -> f32, f16 x bf16 -> f32, u8 x s8 -> s16.
  check_matmul(random_tensor({6, 20}, DType::s8, 5, true), random_tensor({20, 7}, DType::f32, 6), "s8 x f32");
  check_matmul(random_tensor({6, 20}, DType::f16, 7), random_tensor({20, 7}, DType::bf16, 8), "f16 x bf16");
  check_matmul(random_tensor({6, 20}, DType::u8, 9), random_tensor({20, 7}, DType::s8, 10), "u8 x s8");
}

TEST_P(Contract, BatchedBroadcastAndVectorOperands) {
  check_matmul(random_tensor({2, 1, 5, 7}, DType::f32, 1), random_tensor({3, 7, 4}, DType::f32, 2), "[2,1,5,7] @ [3,7,4]");
  check_matmul(random_tensor({4, 70, 20}, DType::bf16, 3), random_tensor({20, 66}, DType::bf16, 4), "[4,70,20] @ [20,66]");
  check_matmul(random_tensor({7}, DType::f32, 5), random_tensor({7, 4}, DType::f32, 6), "[7] @ [7,4]");
  check_matmul(random_tensor({5, 7}, DType::f32, 7), random_tensor({7}, DType::f32, 8), "[5,7] @ [7]");
  check_matmul(random_tensor({7}, DType::f32, 9), random_tensor({7}, DType::f32, 10), "[7] @ [7]");
  check_matmul(random_tensor({2, 3, 2, 5, 7}, DType::f32, 11), random_tensor({3, 1, 7, 2}, DType::f32, 12),
               "[2,3,2,5,7] @ [3,1,7,2]");
  // Five batch dimensions that alternate broadcasts do not merge: both operands are broadcast and
  // copied (counted), then the batch is one dimension.
  const std::uint64_t copies = contraction_copies();
  check_matmul(random_tensor({2, 1, 2, 1, 2, 3, 4}, DType::f32, 13), random_tensor({1, 2, 1, 2, 1, 4, 5}, DType::f32, 14),
               "[2,1,2,1,2,3,4] @ [1,2,1,2,1,4,5]");
  EXPECT_GE(contraction_copies(), copies + 2);
  // ... and an epilogue operand broadcast over them: laid out as the result too.
  const Tensor a = random_tensor({2, 3, 2, 3, 2, 4, 5}, DType::f32, 15).to(*dev_), b = random_tensor({5, 6}, DType::f32, 16).to(*dev_);
  const Tensor bias = random_tensor({2, 1, 2, 1, 2, 1, 6}, DType::f32, 17).to(*dev_);
  DotOptions o;
  o.epilogue = parse_expr("x + y", {DType::f32, DType::f32});
  o.epilogue_operands = {bias};
  const std::vector<float> got = matmul(a, b, o).to(device("cpu")).to_vector<float>();
  const std::vector<float> want = add(matmul(a, b), bias).to(device("cpu")).to_vector<float>();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << "five batch dims + a broadcast bias, element " << i;
}

TEST_P(Contract, ViewsAreReadThroughTheirStrides) {
  const std::uint64_t copies = contraction_copies();
  const Tensor a = random_tensor({40, 30}, DType::f32, 1), b = random_tensor({50, 40}, DType::f32, 2);
  // a^T (30 x 40) @ b^T (40 x 50): both transposed views.
  check_matmul(a.transpose({1, 0}), b.transpose({1, 0}), "a^T @ b^T");
  // Step-sliced rows and columns.
  check_matmul(a.slice(0, 1, 40, 2).slice(1, 0, 30, 3), random_tensor({10, 9}, DType::f32, 3), "sliced a");
  // A batched operand transposed in its batch and matrix axes.
  const Tensor c = random_tensor({6, 4, 3}, DType::f32, 4);
  check_matmul(c.transpose({2, 1, 0}), random_tensor({3, 6, 5}, DType::f32, 5), "[3,4,6] view @ [3,6,5]");
  EXPECT_EQ(contraction_copies(), copies) << "no view above needs a copy";
}

TEST_P(Contract, DotAxesAndNxDotRules) {
  const Tensor a = random_tensor({3, 4, 5}, DType::f32, 1), b = random_tensor({5, 4, 6}, DType::f32, 2);
  // Two contract axes paired (a1, b1), (a2, b0): b's pair does not merge in that order, so b is copied.
  const std::uint64_t copies = contraction_copies();
  check_dot(a, b, {{1, 2}, {}, {1, 0}, {}}, "contract (1,2) x (1,0)");
  EXPECT_EQ(contraction_copies(), copies + 2) << "b's contract axes do not merge: a copy of b in each of the two calls";
  check_dot(a, b, {{-1}, {}, {0}, {}}, "contract -1 x 0 (outer product of the rest)");
  // Batch axes, also not leading, and a batch axis with contract axes around it.
  check_dot(random_tensor({2, 3, 4}, DType::f32, 3), random_tensor({2, 4, 5}, DType::f32, 4), {{2}, {0}, {1}, {0}},
            "batch 0 x 0");
  check_dot(random_tensor({3, 2, 4}, DType::f64, 5), random_tensor({4, 5, 2}, DType::f64, 6), {{2}, {1}, {0}, {2}},
            "batch 1 x 2");
  check_dot(random_tensor({6, 2, 3, 4}, DType::s32, 7), random_tensor({3, 2, 4, 5}, DType::s32, 8),
            {{2, 3}, {1}, {0, 2}, {1}}, "s32 batch 1 x 1, contract (2,3) x (0,2)");
  // Nx.dot/2: vector . vector, matrix . vector, vector . matrix, n-D . m-D (a's last, b's second to last).
  const Tensor v = random_tensor({4}, DType::f32, 9), m = random_tensor({4, 6}, DType::f32, 10);
  const Tensor got = dot(v.to(*dev_), v.to(*dev_));
  EXPECT_EQ(got.shape(), Shape{});
  const Ref r = reference(v, v, {{0}, {}, {0}, {}}, DType::f32);
  expect_matches(got, r, DType::f32, DType::f32, "vector . vector");
  EXPECT_EQ(dot(m.transpose({1, 0}).to(*dev_), v.to(*dev_)).shape(), (Shape{6}));
  EXPECT_EQ(dot(v.to(*dev_), m.to(*dev_)).shape(), (Shape{6}));
  const Tensor x = random_tensor({2, 3, 4}, DType::f32, 11), y = random_tensor({5, 4, 6}, DType::f32, 12);
  const Tensor xy = dot(x.to(*dev_), y.to(*dev_));
  EXPECT_EQ(xy.shape(), (Shape{2, 3, 5, 6}));
  expect_matches(xy, reference(x, y, {{2}, {}, {1}, {}}, DType::f32), DType::f32, DType::f32, "[2,3,4] . [5,4,6]");
  // A scalar operand multiplies.
  const Tensor s = Tensor::from_vector(std::vector<float>{2.5f}, {}, device("cpu"));
  EXPECT_EQ(dot(s.to(*dev_), m.to(*dev_)).to(device("cpu")).to_vector<float>(),
            apply_op(Op::multiply, {s, m}).to_vector<float>());
  EXPECT_EQ(dot(m.to(*dev_), s.to(*dev_)).to(device("cpu")).to_vector<float>(),
            apply_op(Op::multiply, {m, s}).to_vector<float>());
  // ... of any view: transposed, broadcast.
  EXPECT_EQ(dot(s.to(*dev_), m.to(*dev_).transpose({1, 0})).to(device("cpu")).to_vector<float>(),
            apply_op(Op::multiply, {s, m.transpose({1, 0}).contiguous()}).to_vector<float>());
  EXPECT_EQ(dot(m.to(*dev_).slice(1, 0, 6, 2), s.to(*dev_)).to(device("cpu")).to_vector<float>(),
            apply_op(Op::multiply, {m.slice(1, 0, 6, 2).contiguous(), s}).to_vector<float>());
  // ... with the contraction's rules: s8 x s8 -> s32 exactly (100 * 100, not 16 wrapped in s8),
  // f16 products in f32 (not rounded to f16), a float -> integer output refused.
  const Tensor c8 = Tensor::from_vector(std::vector<std::int8_t>{100}, {}, device("cpu")).to(*dev_);
  const Tensor v8 = Tensor::from_vector(std::vector<std::int8_t>{100, -100}, {2}, device("cpu")).to(*dev_);
  DotOptions to_s32;
  to_s32.output = DType::s32;
  EXPECT_EQ(dot(c8, v8, to_s32).to(device("cpu")).to_vector<std::int32_t>(), (std::vector<std::int32_t>{10000, -10000}));
  EXPECT_EQ(dot(v8, c8, to_s32).to(device("cpu")).to_vector<std::int32_t>(), (std::vector<std::int32_t>{10000, -10000}));
  EXPECT_EQ(dot(c8, c8, to_s32).to(device("cpu")).to_vector<std::int32_t>(), (std::vector<std::int32_t>{10000}));
  const double h = 1 + 0x1p-10;  // h * h = 1 + 2^-9 + 2^-20: exact in f32, 1 + 2^-9 in f16
  const Tensor hs = as_type(full({}, h, DType::f32, *dev_), DType::f16), hv = as_type(full({1}, h, DType::f32, *dev_), DType::f16);
  DotOptions to_f32;
  to_f32.output = DType::f32;
  EXPECT_EQ(dot(hs, hv, to_f32).to(device("cpu")).to_vector<float>(), (std::vector<float>{float(h * h)}));
  const std::string e = conformance::error_message([&] { dot(s.to(*dev_), m.to(*dev_), to_s32); });
  EXPECT_NE(e.find("needs integer inputs"), std::string::npos) << e;
}

TEST_P(Contract, SpecialValuesAndEmptyOperands) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor a = Tensor::from_vector(std::vector<float>{1, inf, 0, 2, nan, 1, 3, -inf, 1, 3e38f, 3e38f, 0}, {4, 3},
                                       device("cpu"));
  const Tensor b = Tensor::from_vector(std::vector<float>{1, 2, 0, 1, 5, 1e30f}, {3, 2}, device("cpu"));
  check_matmul(a, b, "inf * 0, NaN, overflow to inf");
  // The running sum in k order leaves f32's range (3e38 + 3e38) before the last product brings it
  // back: +inf on every backend, the CPU reference's included (it sums in long double but keeps the
  // accumulator's range, as the kernels hold it).
  DotOptions in_order;
  in_order.vendor_library = false;
  const Tensor big = Tensor::from_vector(std::vector<float>{3e38f, 3e38f, -3e38f}, {1, 3}, device("cpu"));
  const Tensor ones = Tensor::from_vector(std::vector<float>{1, 1, 1}, {3, 1}, device("cpu"));
  EXPECT_EQ(matmul(big.to(*dev_), ones.to(*dev_), in_order).to(device("cpu")).to_vector<float>(), (std::vector<float>{inf}));
  // K = 0: every output is an empty sum, 0. M = 0 or N = 0: an empty result.
  const Tensor z = matmul(Tensor::empty({3, 0}, DType::f32, *dev_), Tensor::empty({0, 4}, DType::f32, *dev_));
  EXPECT_EQ(z.shape(), (Shape{3, 4}));
  for (float f : z.to(device("cpu")).to_vector<float>()) EXPECT_EQ(f, 0.0f);
  EXPECT_EQ(matmul(Tensor::empty({0, 5}, DType::f32, *dev_), random_tensor({5, 4}, DType::f32, 1).to(*dev_)).shape(),
            (Shape{0, 4}));
  EXPECT_EQ(matmul(Tensor::empty({2, 0, 5, 3}, DType::f16, *dev_), Tensor::empty({3, 2}, DType::f16, *dev_)).shape(),
            (Shape{2, 0, 5, 2}));
}

// Fused epilogues against the same computed op by op on the device: the sum in the accumulator
// dtype (matmul with an f32/s32 output), then map(epilogue) over it and the operands, then the
// output cast — bit for bit, since both evaluate the same expression on the same values.
TEST_P(Contract, FusedEpiloguesMatchOpByOp) {
  const auto same_bits = conformance::expect_same_bits;
  const char* gelu = "0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476))";
  {  // GEMM + bias + GELU in f32; the bias broadcast along the rows.
    const Tensor a = random_tensor({70, 40}, DType::f32, 1).to(*dev_), b = random_tensor({40, 66}, DType::f32, 2).to(*dev_);
    const Tensor bias = random_tensor({66}, DType::f32, 3).to(*dev_);
    DotOptions o;
    o.epilogue = parse_expr(gelu, {DType::f32, DType::f32});
    o.epilogue_operands = {bias};
    same_bits(matmul(a, b, o), map(*o.epilogue, {matmul(a, b), bias}), "f32 gelu(y + bias)");
  }
  {  // bf16 operands: the epilogue sees the f32 sum; one rounding to bf16 at the end. A residual
     // [M, N] broadcast over the batch, a bias along M ([M, 1]).
    const Tensor a = random_tensor({2, 33, 20}, DType::bf16, 4).to(*dev_), b = random_tensor({20, 17}, DType::bf16, 5).to(*dev_);
    const Tensor res = random_tensor({33, 17}, DType::bf16, 6).to(*dev_), col = random_tensor({33, 1}, DType::f32, 7).to(*dev_);
    const std::string text = std::string(gelu) + " + z";
    DotOptions o;
    o.epilogue = parse_expr(text, {DType::f32, DType::f32, DType::bf16});
    o.epilogue_operands = {col, res};
    DotOptions f32;
    f32.output = DType::f32;
    same_bits(matmul(a, b, o), as_type(map(*o.epilogue, {matmul(a, b, f32), col, res}), DType::bf16),
              "bf16 gelu(y + bias) + residual");
  }
  {  // Integers: s8 x s8 summed in s32 plus an s32 bias, wrapping.
    const Tensor a = random_tensor({9, 300}, DType::s8, 8).to(*dev_), b = random_tensor({300, 5}, DType::s8, 9).to(*dev_);
    const Tensor bias = random_tensor({5}, DType::s32, 10).to(*dev_);
    DotOptions o;
    o.output = DType::s32;
    o.epilogue = parse_expr("x + y", {DType::s32, DType::s32});
    o.epilogue_operands = {bias};
    DotOptions s32;
    s32.output = DType::s32;
    same_bits(matmul(a, b, o), map(*o.epilogue, {matmul(a, b, s32), bias}), "s8 -> s32 + bias");
  }
  {  // dot with batch axes and an epilogue operand of the result's full shape.
    const Tensor a = random_tensor({3, 2, 4}, DType::f64, 11).to(*dev_), b = random_tensor({4, 5, 2}, DType::f64, 12).to(*dev_);
    const Tensor r = random_tensor({2, 3, 5}, DType::f64, 13).to(*dev_);
    DotOptions o;
    o.epilogue = parse_expr("x * 0.5 - y", {DType::f64, DType::f64});
    o.epilogue_operands = {r};
    const DotAxes ax{{2}, {1}, {0}, {2}};
    same_bits(dot(a, b, ax, o), map(*o.epilogue, {dot(a, b, ax), r}), "f64 dot, y * 0.5 - r");
  }
  // Misuse: operands without an epilogue, a count that does not match, a shape that does not
  // broadcast, a y of the wrong dtype.
  const Tensor a = random_tensor({4, 3}, DType::f32, 14).to(*dev_), b = random_tensor({3, 6}, DType::f32, 15).to(*dev_);
  DotOptions o;
  o.epilogue_operands = {a};
  std::string e = error_message([&] { matmul(a, b, o); });
  EXPECT_NE(e.find("epilogue operands without an epilogue"), std::string::npos) << e;
  o.epilogue = parse_expr("x + y", {DType::f32, DType::f32});
  e = error_message([&] { matmul(a, b, o); });
  EXPECT_NE(e.find("epilogue operand 0 of shape [4,3] does not broadcast to the result's [4,6]"), std::string::npos) << e;
  o.epilogue_operands = {};
  e = error_message([&] { matmul(a, b, o); });
  EXPECT_NE(e.find("the epilogue takes 2 inputs (y, then its operands); 0 operands were given"), std::string::npos) << e;
  o.epilogue = parse_expr("x", {DType::f16});
  e = error_message([&] { matmul(a, b, o); });
  EXPECT_NE(e.find("the epilogue's y (input 0) must be the sum's dtype, f32"), std::string::npos) << e;
}

// On CUDA a plain float product goes to cuBLASLt (installed with the toolkit); what it cannot take
// (an epilogue, integers, an operand without a unit stride) and every other backend use Kiln's kernel.
TEST_P(Contract, VendorLibraryTakesPlainFloatProductsOnCuda) {
  const Tensor a = random_tensor({64, 48}, DType::f32, 1).to(*dev_), b = random_tensor({48, 32}, DType::f32, 2).to(*dev_);
  const bool cuda = dev_->backend() == Backend::cuda;
  std::uint64_t before = contraction_library_runs();
  matmul(a, b);
  matmul(a.transpose({1, 0}).transpose({1, 0}), b.transpose({1, 0}).contiguous().transpose({1, 0}));
  EXPECT_EQ(contraction_library_runs(), before + (cuda ? 2 : 0)) << "plain f32 products (row- and column-major)";
  before = contraction_library_runs();
  DotOptions kernel;
  kernel.vendor_library = false;
  matmul(a, b, kernel);
  matmul(a.slice(1, 0, 48, 2), b.slice(0, 0, 48, 2));  // unit stride along neither axis of a
  DotOptions epi;
  epi.epilogue = parse_expr("x * 2", {DType::f32});
  matmul(a, b, epi);
  matmul(as_type(a, DType::s32), as_type(b, DType::s32));
  EXPECT_EQ(contraction_library_runs(), before) << "none of these is cuBLASLt's";
}

// A bias epilogue (y + bias along N, the bias in the output's dtype) goes to cuBLASLt's BIAS epilogue
// on CUDA, within the K-scaled bound of Kiln's own kernel (cuBLAS sums in its own order; both add
// the bias in f32 and round once); every other epilogue, a bias along M, or one of another dtype
// stays on Kiln's kernel. On other backends nothing goes to a library; the matcher is tested too.
TEST_P(Contract, VendorLibraryTakesABiasAlongNOnCuda) {
  const bool cuda = dev_->backend() == Backend::cuda;
  for (DType t : {DType::f32, DType::bf16}) {
    const Tensor a = random_tensor({2, 40, 96}, t, 11).to(*dev_), b = random_tensor({96, 72}, t, 12).to(*dev_);
    const Tensor bias = random_tensor({72}, t, 13).to(*dev_), col = random_tensor({40, 1}, t, 14).to(*dev_);
    DotOptions o, kernel;
    o.epilogue = parse_expr("x + y", {DType::f32, t});
    o.epilogue_operands = {bias};
    kernel = o;
    kernel.vendor_library = false;
    std::uint64_t before = contraction_library_runs();
    const Tensor got = matmul(a, b, o);
    EXPECT_EQ(contraction_library_runs(), before + (cuda ? 1 : 0)) << dtype_name(t);
    const Tensor want = matmul(a, b, kernel);
    const std::vector<double> g = as_type(got, DType::f64).to(device("cpu")).to_vector<double>(),
                              w = as_type(want, DType::f64).to(device("cpu")).to_vector<double>();
    ASSERT_EQ(g.size(), w.size());
    // Two summation orders of 96 products (each at most 4 in magnitude) in f32, then (bf16) the
    // output's rounding, which may go either way: far below a missing or doubled bias.
    const double sums = 96 * 0x1p-23 * 96 * 4, round = t == DType::bf16 ? 0x1p-7 : 0x1p-23;
    for (std::size_t i = 0; i < g.size(); ++i)
      ASSERT_LE(std::fabs(g[i] - w[i]), sums + round * std::fabs(w[i])) << dtype_name(t) << " element " << i;
    before = contraction_library_runs();
    DotOptions along_m = o, per_batch = o, strided = o, scalar = o, relu = o;
    along_m.epilogue_operands = {col};
    matmul(a, b, along_m);
    per_batch.epilogue_operands = {random_tensor({2, 1, 72}, t, 15).to(*dev_)};  // cuBLASLt's bias is one for all
    matmul(a, b, per_batch);
    strided.epilogue_operands = {random_tensor({144}, t, 16).to(*dev_).slice(0, 0, 144, 2)};  // not packed
    matmul(a, b, strided);
    scalar.epilogue_operands = {random_tensor({1}, t, 17).to(*dev_)};  // broadcast along N: stride 0
    matmul(a, b, scalar);
    relu.epilogue = parse_expr("max(x + y, 0)", {DType::f32, t});
    matmul(a, b, relu);
    EXPECT_EQ(contraction_library_runs(), before)
        << "a bias along M, per batch, strided or broadcast along N, and a ReLU stay on Kiln's kernel";
  }
  const Expr f32_bias = parse_expr("x + y", {DType::f32, DType::f32}), bf16_bias = parse_expr("y + x", {DType::f32, DType::bf16});
  const Expr scaled = parse_expr("x * 2 + y", {DType::f32, DType::f32}), minus = parse_expr("x - y", {DType::f32, DType::f32});
  EXPECT_TRUE(contract_epilogue_is_bias(make_contract_spec(DType::f32, DType::f32, DType::f32, &f32_bias)));
  EXPECT_TRUE(contract_epilogue_is_bias(make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &bf16_bias)));
  EXPECT_FALSE(contract_epilogue_is_bias(make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &f32_bias)))
      << "an f32 bias on a bf16 output: cuBLASLt's bias has D's type";
  EXPECT_FALSE(contract_epilogue_is_bias(make_contract_spec(DType::f32, DType::f32, DType::f32, &scaled)));
  EXPECT_FALSE(contract_epilogue_is_bias(make_contract_spec(DType::f32, DType::f32, DType::f32, &minus)));
  EXPECT_FALSE(contract_epilogue_is_bias(make_contract_spec(DType::f32, DType::f32, DType::f32)));
}

// precision tf32: f32 operands rounded to 10 mantissa bits (to nearest even) before the products,
// only when asked. 1 + 2^-20 is 1 in TF32: [1 + 2^-20, 3] . [1, 1] is 4 + 2^-20 by default, 4 in TF32.
TEST_P(Contract, Tf32PrecisionRoundsOperandsOnlyWhenAsked) {
  const Tensor a = Tensor::from_vector(std::vector<float>{1 + 0x1p-20f, 3}, {1, 2}, device("cpu")).to(*dev_);
  const Tensor b = Tensor::from_vector(std::vector<float>{1, 1}, {2, 1}, device("cpu")).to(*dev_);
  DotOptions tf32;
  tf32.precision = DotPrecision::tf32;
  EXPECT_EQ(matmul(a, b).to(device("cpu")).to_vector<float>(), std::vector<float>{4 + 0x1p-20f});
  EXPECT_EQ(matmul(a, b, tf32).to(device("cpu")).to_vector<float>(), std::vector<float>{4});
  // Random operands against the reference over the TF32-rounded values (a tensor core may round
  // differently from nearest-even: 2^-11 of each product more).
  auto round_tf32 = [](const Tensor& t) {
    std::vector<float> v = t.to_vector<float>();
    for (float& f : v) {
      std::uint32_t u;
      std::memcpy(&u, &f, 4);
      if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;
      std::memcpy(&f, &u, 4);
    }
    return Tensor::from_vector(v, t.shape(), device("cpu"));
  };
  const Tensor x = random_tensor({33, 70}, DType::f32, 1), y = random_tensor({70, 20}, DType::f32, 2);
  const Tensor got = matmul(x.to(*dev_), y.to(*dev_), tf32);
  Ref ref = reference(round_tf32(x), round_tf32(y), {{1}, {}, {0}, {}}, DType::f32);
  for (std::size_t i = 0; i < ref.mag.size(); ++i) ref.mag[i] *= 1 + 0x1p-11 / unit_roundoff(DType::f32) / double(ref.k + 2);
  expect_matches(got, ref, DType::f32, DType::f32, "tf32 33x20x70");
  const std::string e = error_message([&] { matmul(as_type(x, DType::f64).to(*dev_), as_type(y, DType::f64).to(*dev_), tf32); });
  EXPECT_NE(e.find("precision tf32 applies to products summed in f32"), std::string::npos) << e;
}

// CUDA sm_80 and later: Kiln's kernel for f16/bf16 operands runs on the tensor cores (mma.sync),
// within the same K-scaled bound; tensor_cores = false keeps the fma kernel. Skipped elsewhere (the
// kernel runs on host threads with the mma emulated in CudaBlocksOnHost.TensorCore*).
TEST_P(Contract, TensorCoresTakeHalfPrecisionOperandsOnCuda) {
  const std::string& arch = dev_->info().arch;
  if (dev_->backend() != Backend::cuda || arch.rfind("sm_", 0) != 0 || std::atoi(arch.c_str() + 3) < 80)
    GTEST_SKIP() << "the tensor-core kernels need a CUDA GPU of compute capability 8.0 or later";
  unsigned seed = 500;
  for (DType t : {DType::bf16, DType::f16})
    for (auto [m, n, k] : {std::tuple{1, 1, 1}, std::tuple{130, 70, 50}, std::tuple{256, 256, 1000}, std::tuple{7, 300, 33}}) {
      const Tensor a = random_tensor({m, k}, t, ++seed), b = random_tensor({n, k}, t, ++seed);
      for (bool cores : {true, false}) {
        DotOptions o;
        o.vendor_library = false;
        o.tensor_cores = cores;
        const std::uint64_t before = contraction_tensor_core_runs();
        const Tensor got = matmul(a.to(*dev_), b.to(*dev_).transpose({1, 0}), o);
        EXPECT_EQ(contraction_tensor_core_runs() - before, cores ? 1u : 0u);
        const Ref ref = reference(a, b, {{1}, {}, {1}, {}}, t);
        expect_matches(got, ref, t, t, fmt::format("{} {}x{}x{} (b transposed){}", dtype_name(t), m, n, k,
                                                    cores ? " tensor cores" : ""));
      }
    }
  // a along k in rows of 48 cut to K = 44 (the kernel's asynchronous copies, the K tail inside a
  // chunk zero-filled by the copy) with b [k][n] in rows of 137 (element by element; no TMA on
  // sm_90 either: rows 274 bytes apart), and both along k in rows of 40 (whole chunks; the Hopper
  // kernel's on sm_90).
  for (DType t : {DType::bf16, DType::f16})
    for (bool tail : {true, false}) {
      const Tensor a = tail ? random_tensor({150, 48}, t, ++seed).to(*dev_).slice(1, 0, 44)
                            : random_tensor({150, 40}, t, ++seed).to(*dev_);
      const Tensor b = tail ? random_tensor({44, 137}, t, ++seed).to(*dev_).slice(1, 0, 136)
                            : random_tensor({136, 40}, t, ++seed).to(*dev_).transpose({1, 0});
      DotOptions o;
      o.vendor_library = false;
      const std::uint64_t before = contraction_tensor_core_runs();
      const Tensor got = matmul(a, b, o);
      EXPECT_EQ(contraction_tensor_core_runs() - before, 1u);
      const Ref ref = reference(a.to(device("cpu")), b.to(device("cpu")), {{1}, {}, {0}, {}}, t);
      expect_matches(got, ref, t, t,
                     fmt::format("{} 150x136x{}{}", dtype_name(t), tail ? 44 : 40, tail ? " a in rows of 48" : ""));
    }
}

// sm_90 (H100, H200): f16/bf16 contractions whose operands the TMA can load run the Hopper kernel
// (wgmma, TMA, warp-specialized; templates/cuda/contract_wgmma.cuh): both operand layouts each
// (a as a transposed view is M-major), partial tiles, K tails, a broadcast batch, each row of the
// tile table (64 x 128, 128 x 128, 128 x 256) as contract_wgmma_tile_for picks it, a fused epilogue
// bit for bit against the same sums op by op; an operand the TMA cannot load (rows 50 elements
// apart) stays on mma.sync. Skipped elsewhere (CudaWgmmaOnHost runs the kernel on host threads).
TEST_P(Contract, HopperKernelOnSm90) {
  if (dev_->backend() != Backend::cuda || dev_->info().arch != "sm_90" || !wgmma_on(*dev_))
    GTEST_SKIP() << "the wgmma kernel runs on sm_90 GPUs (KILN_WGMMA unset)";
  DotOptions o;
  o.vendor_library = false;
  unsigned seed = 900;
  struct Case {
    std::int64_t batch, m, n, k;
    bool a_t, b_t, wgmma;
  };
  for (DType t : {DType::bf16, DType::f16})
    for (const Case& c : {Case{1, 128, 128, 64, false, false, true}, Case{1, 136, 136, 72, true, false, true},
                          Case{3, 96, 200, 64, false, true, true}, Case{1, 304, 264, 1000, true, true, true},
                          Case{1, 1, 8, 4096, false, false, true}, Case{1, 64, 64, 50, false, false, false},
                          // 256 and 512 tiles of 128 x 256: the wide row of the tile table
                          Case{128, 130, 264, 24, true, false, true}, Case{128, 72, 264, 136, false, true, true}}) {
      const Tensor a = c.a_t ? random_tensor({c.batch, c.k, c.m}, t, ++seed).to(*dev_).transpose({0, 2, 1})
                             : random_tensor({c.batch, c.m, c.k}, t, ++seed).to(*dev_);
      const Tensor b = c.b_t ? random_tensor({c.n, c.k}, t, ++seed).to(*dev_).transpose({1, 0})
                             : random_tensor({c.k, c.n}, t, ++seed).to(*dev_);
      const std::uint64_t before = contraction_wgmma_runs();
      const Tensor got = matmul(a, b, o);
      const std::string what = fmt::format("{} {}x{}x{}x{}{}{}", dtype_name(t), c.batch, c.m, c.n, c.k,
                                           c.a_t ? " a transposed" : "", c.b_t ? " b transposed" : "");
      EXPECT_EQ(contraction_wgmma_runs() - before, c.wgmma ? 1u : 0u) << what;
      if (c.wgmma) {
        const ContractTile tile = wgmma_tile(c.batch, c.m, c.n);  // (KILN_WGMMA_TILE may force one)
        EXPECT_EQ(contraction_last_tile(), fmt::format("{}x{}x{}", tile.m, tile.n, tile.k)) << what;
        if (!std::getenv("KILN_WGMMA_TILE")) {
          EXPECT_EQ(tile.n, c.batch == 128 ? 256 : 128) << what;
        }
      }
      expect_matches(got, reference(a.to(device("cpu")), b.to(device("cpu")), {{2}, {}, {0}, {}}, t), t, t, what);
    }
  const Tensor a = random_tensor({2, 136, 64}, DType::bf16, 950).to(*dev_), b = random_tensor({64, 72}, DType::bf16, 951).to(*dev_);
  const Tensor res = random_tensor({136, 72}, DType::bf16, 952).to(*dev_), col = random_tensor({72}, DType::f32, 953).to(*dev_);
  DotOptions epi = o, f32 = o;
  epi.epilogue = parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f32, DType::bf16});
  epi.epilogue_operands = {col, res};
  f32.output = DType::f32;
  const std::uint64_t before = contraction_wgmma_runs();
  const Tensor fused = matmul(a, b, epi), plain = matmul(a, b, f32);
  EXPECT_EQ(contraction_wgmma_runs() - before, 2u);
  conformance::expect_same_bits(fused, as_type(map(*epi.epilogue, {plain, col, res}), DType::bf16), "GELU + residual");
}

// Vulkan: f16 contractions run the cooperative-matrix kernel (templates/glsl/coopmat.glsl)
// where the device has VK_NV_cooperative_matrix, within the K-scaled bound. KILN_COOPMAT=emulate
// runs the same kernel on any Vulkan device with its fragments as plain arrays summed in k order by
// fused multiply-adds, which is the portable kernel's order and rounding: there its results equal
// tensor_cores = false bit for bit, so lavapipe checks the kernel's staging (both layouts of each
// operand, register prefetch, zero fill), tiling, grid-stride over batches and epilogue exactly.
// bf16 and tensor_cores = false stay on the portable kernel.
TEST_P(Contract, CooperativeMatrixKernelOnVulkan) {
  if (dev_->backend() != Backend::vulkan) GTEST_SKIP() << "cooperative matrices are a Vulkan kernel";
  struct Case {
    std::int64_t batch, m, n, k;
    bool a_t, b_t;
    std::int64_t k_pad = 0;  // a (b transposed) a view of the first k of rows of k + k_pad
  };
  const bool device_has = dev_->info().cooperative_matrix.m != 0;
  unsigned seed = 1200;
  for (const char* mode : {"emulate", static_cast<const char*>(nullptr)}) {
    if (!mode && !device_has) continue;  // the extension: where the device reports it
    const conformance::ScopedCoopmat env(mode);
    for (const Case& c : {Case{1, 1, 1, 1, false, false}, Case{1, 130, 70, 50, false, false},
                          Case{2, 33, 129, 64, true, false}, Case{1, 128, 128, 32, false, true},
                          Case{3, 7, 200, 33, true, true}, Case{1, 5, 20, 2000, false, true},
                          // 16-byte chunks: a along k and b along n (a batch), a along m and b along
                          // k, and views whose last chunk along k is part inside (element by element)
                          Case{2, 136, 136, 40, false, false}, Case{1, 136, 24, 48, true, true},
                          Case{1, 70, 40, 44, false, true, 4}}) {
      const Tensor a = c.a_t ? random_tensor({c.batch, c.k, c.m}, DType::f16, ++seed).to(*dev_).transpose({0, 2, 1})
                             : random_tensor({c.batch, c.m, c.k + c.k_pad}, DType::f16, ++seed).to(*dev_).slice(2, 0, c.k);
      const Tensor b = c.b_t ? random_tensor({c.n, c.k + c.k_pad}, DType::f16, ++seed).to(*dev_).slice(1, 0, c.k).transpose({1, 0})
                             : random_tensor({c.k, c.n}, DType::f16, ++seed).to(*dev_);
      const std::string what = fmt::format("{} {}x{}x{}x{}{}{}{}", mode ? "emulated" : "device", c.batch, c.m, c.n, c.k,
                                           c.a_t ? " a transposed" : "", c.b_t ? " b transposed" : "",
                                           c.k_pad ? " rows padded" : "");
      DotOptions o;
      const std::uint64_t before = contraction_coopmat_runs();
      const Tensor got = matmul(a, b, o);
      EXPECT_EQ(contraction_coopmat_runs() - before, 1u) << what;
      expect_matches(got, reference(a.to(device("cpu")), b.to(device("cpu")), {{2}, {}, {0}, {}}, DType::f16),
                     DType::f16, DType::f16, what);
      o.tensor_cores = false;
      const Tensor portable = matmul(a, b, o);
      EXPECT_EQ(contraction_coopmat_runs() - before, 1u) << what;
      if (mode) {
        EXPECT_EQ(got.to(device("cpu")).to_host(), portable.to(device("cpu")).to_host()) << what;
      }
    }
    // A fused epilogue (GELU of sum + bias, plus a residual; f16 out) bit for bit against the same
    // sums op by op; K = 0 gives zeros; bf16 stays on the portable kernel.
    const Tensor a = random_tensor({2, 136, 40}, DType::f16, 1250).to(*dev_), b = random_tensor({40, 72}, DType::f16, 1251).to(*dev_);
    const Tensor res = random_tensor({136, 72}, DType::f16, 1252).to(*dev_), col = random_tensor({72}, DType::f32, 1253).to(*dev_);
    DotOptions epi, f32;
    epi.epilogue = parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f32, DType::f16});
    epi.epilogue_operands = {col, res};
    f32.output = DType::f32;
    const std::uint64_t before = contraction_coopmat_runs();
    const Tensor fused = matmul(a, b, epi), plain = matmul(a, b, f32);
    EXPECT_EQ(fused.to(device("cpu")).to_host(),
              as_type(map(*epi.epilogue, {plain, col, res}), DType::f16).to(device("cpu")).to_host());
    const Tensor empty = matmul(random_tensor({5, 0}, DType::f16, 1254).to(*dev_), random_tensor({0, 3}, DType::f16, 1255).to(*dev_));
    EXPECT_EQ(empty.to_host(), std::vector<std::byte>(5 * 3 * 2));  // +0.0 (K = 0)
    EXPECT_EQ(contraction_coopmat_runs() - before, 3u);
    matmul(as_type(a, DType::bf16), as_type(b, DType::bf16));
    EXPECT_EQ(contraction_coopmat_runs() - before, 3u);
    // kiln::jit: the consumer (an exact doubling) moves into the kernel's epilogue, which stays on
    // cooperative matrices; the replay (a recorded command buffer) gives the same bits as op by op.
    auto doubled = jit([](const Tensor& x, const Tensor& y) { return matmul(x, y) * 2.0; });
    const Tensor once = doubled(a, b);
    const std::string plan = doubled.plan(a, b);
    EXPECT_EQ(doubled.stats().launches_per_call, 1) << plan;
    EXPECT_NE(plan.find("path=coopmat|%0"), std::string::npos) << plan;
    const Tensor want = matmul(a, b) * 2.0;
    EXPECT_EQ(once.to(device("cpu")).to_host(), want.to(device("cpu")).to_host());
    EXPECT_EQ(doubled(a, b).to(device("cpu")).to_host(), want.to(device("cpu")).to_host());
  }
  if (!device_has) std::printf("(%s reports no cooperative matrices: only the emulated kernel ran)\n", dev_->id().c_str());
}

TEST_P(Contract, BadInputNamesOpShapesAxesDtypesAndDevice) {
  const Tensor a = random_tensor({3, 4}, DType::f32, 1).to(*dev_), b = random_tensor({5, 6}, DType::f32, 2).to(*dev_);
  std::string e = error_message([&] { matmul(a, b); });
  EXPECT_NE(e.find("kiln::matmul"), std::string::npos) << e;
  EXPECT_NE(e.find("[3,4]"), std::string::npos) << e;
  EXPECT_NE(e.find("[5,6]"), std::string::npos) << e;
  EXPECT_NE(e.find(dev_->id()), std::string::npos) << e;
  e = error_message([&] { dot(a, b, {{1}, {}, {0}, {}}); });
  EXPECT_NE(e.find("contract axis 1 of a has size 4 and axis 0 of b size 5"), std::string::npos) << e;
  e = error_message([&] { dot(a, a, {{2}, {}, {0}, {}}); });
  EXPECT_NE(e.find("contract axis 2 of a is out of range for rank 2"), std::string::npos) << e;
  e = error_message([&] { dot(a, a, {{0, 0}, {}, {0, 1}, {}}); });
  EXPECT_NE(e.find("axis 0 of a is given more than once"), std::string::npos) << e;
  e = error_message([&] { dot(a, a, {{1}, {0}, {1}, {}}); });
  EXPECT_NE(e.find("a has 1 batch axes and b 0"), std::string::npos) << e;
  e = error_message([&] { matmul(random_tensor({2, 3, 4}, DType::f32, 3).to(*dev_), random_tensor({5, 4, 2}, DType::f32, 4).to(*dev_)); });
  EXPECT_NE(e.find("do not broadcast"), std::string::npos) << e;
  const Tensor p = Tensor::empty({3, 4}, DType::pred, *dev_);
  e = error_message([&] { matmul(p, p); });
  EXPECT_NE(e.find("pred"), std::string::npos) << e;
  DotOptions to_int;
  to_int.output = DType::s32;
  e = error_message([&] { matmul(a, a.transpose({1, 0}), to_int); });
  EXPECT_NE(e.find("an integer output (s32) needs integer inputs"), std::string::npos) << e;
  const Tensor wrong = Tensor::empty({3, 5}, DType::f32, *dev_);
  e = error_message([&] { matmul(a, a.transpose({1, 0}), {}, &wrong); });
  EXPECT_NE(e.find("the output must be a contiguous [3,3] f32"), std::string::npos) << e;
  if (dev_->backend() != Backend::cpu) {
    e = error_message([&] { matmul(a, random_tensor({4, 2}, DType::f32, 5)); });
    EXPECT_NE(e.find("cpu"), std::string::npos) << e;
  }
  const Tensor sq = random_tensor({3, 3}, DType::f32, 6).to(*dev_);
  e = error_message([&] { matmul(sq, sq, {}, &sq); });
  EXPECT_NE(e.find("overlaps an operand"), std::string::npos) << e;
  e = error_message([&] { matmul(Tensor::empty({}, DType::f32, *dev_), a); });
  EXPECT_NE(e.find("rank 1 or more"), std::string::npos) << e;
}

INSTANTIATE_TEST_SUITE_P(Cpu, Contract, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Contract, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Contract, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
