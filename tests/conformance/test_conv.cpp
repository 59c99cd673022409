// Convolutions (kiln::conv) on every device against an independent reference written here from
// Nx's definition (docs/semantics.md, "Convolutions"): the input padded (edges) and dilated
// (holes) explicitly, the kernel dilated, the window slid by the strides; feature groups split the
// input channels, batch groups the input batch, each with its share of the output channels; the
// permutations applied as transposes. Sums in long double (integers wrapping). Hand-computed 1-D
// cases pin the definition itself. Options over their space (strides, paddings, dilations,
// groups, 1-D/2-D/3-D), layouts (NHWC, HWIO, views), shapes across the 64 x 64 x 16 tile, every
// dtype, special values, empty operands, fused epilogues, guard bytes, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "codegen/eval.hpp"
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

long double value_of(DType t, Scalar v) {
  if (is_float(t)) return v.f;
  return is_signed_int(t) ? static_cast<long double>(v.i) : static_cast<long double>(v.u);
}

std::vector<std::int64_t> row_major(const Shape& s) {
  std::vector<std::int64_t> st(s.size());
  std::int64_t m = 1;
  for (std::size_t d = s.size(); d-- > 0;) {
    st[d] = m;
    m *= s[d];
  }
  return st;
}

// Nx.conv, literally: returns the reference over the output's logical (row-major) elements.
Ref reference(const Tensor& input, const Tensor& kernel, const ConvGeometry& g, DType out_dtype, Shape* out_shape) {
  const int rank = input.rank(), d = rank - 2;
  auto perm_or_id = [&](const std::vector<int>& p) {
    std::vector<int> v(static_cast<std::size_t>(rank));
    for (int i = 0; i < rank; ++i) v[std::size_t(i)] = p.empty() ? i : p[std::size_t(i)];
    return v;
  };
  const Tensor x = input.transpose(perm_or_id(g.input_permutation)).contiguous();
  const Tensor w = kernel.transpose(perm_or_id(g.kernel_permutation)).contiguous();
  const std::vector<Scalar> vx = scalars(x), vw = scalars(w);
  auto per_dim = [&](const std::vector<std::int64_t>& v) {
    std::vector<std::int64_t> o(std::size_t(d), 1);
    for (int j = 0; j < d; ++j) o[std::size_t(j)] = v.empty() ? 1 : v.size() == 1 ? v[0] : v[std::size_t(j)];
    return o;
  };
  const auto strides = per_dim(g.strides), idil = per_dim(g.input_dilation), kdil = per_dim(g.kernel_dilation);
  const std::int64_t N = x.shape()[0], C = x.shape()[1], O = w.shape()[0], I = w.shape()[1];
  const std::int64_t fg = g.feature_group_size, bg = g.batch_group_size;
  // The padded, dilated input [N, C, P...] and the dilated kernel [O, I, K...], zeros in the holes.
  Shape ps{N, C}, ks{O, I};
  std::vector<std::int64_t> lo(static_cast<std::size_t>(d));
  for (int j = 0; j < d; ++j) {
    const std::size_t u = std::size_t(j);
    const std::int64_t in = x.shape()[2 + u], k = w.shape()[2 + u];
    const std::int64_t din = in == 0 ? 0 : (in - 1) * idil[u] + 1, dk = (k - 1) * kdil[u] + 1;
    std::int64_t l = 0, h = 0;
    if (g.padding == ConvPadding::same) {
      l = (dk - 1) / 2;
      h = dk - 1 - l;
    } else if (g.padding == ConvPadding::explicit_) {
      l = g.padding_config[u].first;
      h = g.padding_config[u].second;
    }
    lo[u] = l;
    ps.push_back(din + l + h);
    ks.push_back(dk);
  }
  std::vector<Scalar> padded(std::size_t(numel(ps))), dk(std::size_t(numel(ks)));
  std::vector<bool> present(padded.size(), false), kpresent(dk.size(), false);
  const auto pst = row_major(ps), kst = row_major(ks), xst = row_major(x.shape()), wst = row_major(w.shape());
  for (std::int64_t e = 0; e < x.numel(); ++e) {
    std::int64_t rem = e, at = 0;
    bool inside = true;
    for (int a = rank; a-- > 0;) {
      const std::int64_t i = rem % x.shape()[std::size_t(a)];
      rem /= x.shape()[std::size_t(a)];
      std::int64_t p = i;
      if (a >= 2) p = lo[std::size_t(a - 2)] + i * idil[std::size_t(a - 2)];
      if (p < 0 || p >= ps[std::size_t(a)]) inside = false;
      at += p * pst[std::size_t(a)];
    }
    if (inside) {
      padded[std::size_t(at)] = vx[std::size_t(e)];
      present[std::size_t(at)] = true;
    }
  }
  for (std::int64_t e = 0; e < w.numel(); ++e) {
    std::int64_t rem = e, at = 0;
    for (int a = rank; a-- > 0;) {
      const std::int64_t i = rem % w.shape()[std::size_t(a)];
      rem /= w.shape()[std::size_t(a)];
      at += (a >= 2 ? i * kdil[std::size_t(a - 2)] : i) * kst[std::size_t(a)];
    }
    dk[std::size_t(at)] = vw[std::size_t(e)];
    kpresent[std::size_t(at)] = true;
  }
  // The canonical output [N / bg, O, out...].
  Shape os{N / bg, O};
  for (int j = 0; j < d; ++j)
    os.push_back((ps[2 + std::size_t(j)] - ks[2 + std::size_t(j)]) / strides[std::size_t(j)] + 1);
  const auto ost = row_major(os);
  const DType acc = contract_accumulator_dtype(input.dtype(), kernel.dtype(), out_dtype);
  Ref canonical;
  const std::int64_t window = numel(Shape(ks.begin() + 2, ks.end()));
  canonical.k = I * numel(Shape(w.shape().begin() + 2, w.shape().end()));
  for (std::int64_t e = 0; e < numel(os); ++e) {
    std::vector<std::int64_t> idx(static_cast<std::size_t>(rank));
    std::int64_t rem = e;
    for (int a = rank; a-- > 0;) {
      idx[std::size_t(a)] = rem % os[std::size_t(a)];
      rem /= os[std::size_t(a)];
    }
    const std::int64_t n = idx[0], o = idx[1];
    // Feature group of o: its input channels; batch group of o: its input image.
    const std::int64_t fgroup = o / (O / fg), bgroup = o / (O / bg);
    const std::int64_t image = n + bgroup * (N / bg);
    long double f = 0, mag = 0;
    std::uint64_t u = 0;
    for (std::int64_t c = 0; c < I; ++c) {
      const std::int64_t channel = fgroup * I + c;
      for (std::int64_t q = 0; q < window; ++q) {
        std::int64_t r = q, pat = image * pst[0] + channel * pst[1], kat = o * kst[0] + c * kst[1];
        for (int j = d; j-- > 0;) {
          const std::size_t uj = std::size_t(j);
          const std::int64_t kq = r % ks[2 + uj];
          r /= ks[2 + uj];
          pat += (idx[2 + uj] * strides[uj] + kq) * pst[2 + uj];
          kat += kq * kst[2 + uj];
        }
        // A position of the padding or between dilated input elements is 0 times the kernel's
        // element (0 x inf is NaN, as XLA has it); a hole of the dilated kernel is no product.
        if (!kpresent[std::size_t(kat)]) continue;
        const Scalar xa = present[std::size_t(pat)] ? padded[std::size_t(pat)] : Scalar::from_u(0), xb = dk[std::size_t(kat)];
        if (is_float(acc)) {
          const long double p = value_of(input.dtype(), xa) * value_of(kernel.dtype(), xb);
          f += p;
          mag += std::fabs(p);
        } else {
          u += xa.u * xb.u;
        }
      }
    }
    (void)C;
    canonical.f.push_back(f);
    canonical.mag.push_back(mag);
    canonical.u.push_back(u);
  }
  // The output permutation, as Nx: the result is the canonical one transposed by its inverse.
  const std::vector<int> given = perm_or_id(g.output_permutation);
  std::vector<int> op(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) op[std::size_t(given[std::size_t(i)])] = i;
  Shape us(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) us[std::size_t(i)] = os[std::size_t(op[std::size_t(i)])];
  *out_shape = us;
  Ref r;
  r.k = canonical.k;
  const auto ust = row_major(us);
  r.f.resize(canonical.f.size());
  r.mag.resize(canonical.f.size());
  r.u.resize(canonical.f.size());
  for (std::int64_t e = 0; e < numel(os); ++e) {
    std::int64_t rem = e, at = 0;
    for (int a = rank; a-- > 0;) {
      const std::int64_t i = rem % os[std::size_t(a)];
      rem /= os[std::size_t(a)];
      for (int b = 0; b < rank; ++b)
        if (op[std::size_t(b)] == a) at += i * ust[std::size_t(b)];
    }
    r.f[std::size_t(at)] = canonical.f[std::size_t(e)];
    r.mag[std::size_t(at)] = canonical.mag[std::size_t(e)];
    r.u[std::size_t(at)] = canonical.u[std::size_t(e)];
  }
  return r;
}

class Conv : public conformance::DeviceSuite {
 protected:
  // conv on the device (plain and into a guarded output) against the reference.
  void check(const Tensor& input, const Tensor& kernel, const ConvOptions& o, const std::string& what) {
    const Tensor x = input.to(*dev_), w = kernel.to(*dev_);
    const Tensor got = conv(x, w, o);
    Shape want;
    const Ref ref = reference(input, kernel, o, got.dtype(), &want);
    ASSERT_EQ(got.shape(), want) << what;
    expect_contraction_matches(got, ref, input.dtype(), kernel.dtype(), what);
    conformance::GuardedOutput guarded(*dev_, got.shape(), got.dtype());
    conv(x, w, o, &guarded.view());
    EXPECT_EQ(guarded.touched_guards(), "") << what;
    expect_contraction_matches(guarded.view(), ref, input.dtype(), kernel.dtype(), what + " (into)");
  }
};

std::string describe(const Shape& x, const Shape& w, const ConvGeometry& g) {
  const char* pad = g.padding == ConvPadding::valid ? "valid" : g.padding == ConvPadding::same ? "same" : "explicit";
  return fmt::format("{} * {} strides [{}] {} idil [{}] kdil [{}] fg {} bg {}", shape_text(x), shape_text(w),
                     fmt::join(g.strides, ","), pad, fmt::join(g.input_dilation, ","), fmt::join(g.kernel_dilation, ","),
                     g.feature_group_size, g.batch_group_size);
}

TEST_P(Conv, HandComputedOneDimensionalCases) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {1, 1, 4}, device("cpu")).to(*dev_);
  const Tensor w = Tensor::from_vector(std::vector<float>{2, 3}, {1, 1, 2}, device("cpu")).to(*dev_);
  auto run = [&](const ConvOptions& o) { return conv(x, w, o).to(device("cpu")).to_vector<float>(); };
  ConvOptions o;
  EXPECT_EQ(run(o), (std::vector<float>{8, 13, 18}));  // cross-correlation: 1*2 + 2*3, ...
  o.strides = {2};
  o.padding = ConvPadding::same;  // one element of padding after: [1 2 3 4 0]
  EXPECT_EQ(run(o), (std::vector<float>{8, 18}));
  o = {};
  o.input_dilation = {2};  // [1 0 2 0 3 0 4]
  EXPECT_EQ(run(o), (std::vector<float>{2, 6, 4, 9, 6, 12}));
  o = {};
  o.kernel_dilation = {3};  // [2 0 0 3]: x0 * 2 + x3 * 3
  EXPECT_EQ(run(o), (std::vector<float>{14}));
  o = {};
  o.padding = ConvPadding::explicit_;
  o.padding_config = {{2, -1}};  // [0 0 1 2 3]
  EXPECT_EQ(run(o), (std::vector<float>{0, 3, 8, 13}));
}

TEST_P(Conv, OptionSpaceOneTwoAndThreeDimensions) {
  unsigned seed = 100;
  auto vary = [&](const Shape& xs, const Shape& ws, std::vector<ConvGeometry> geos) {
    for (const ConvGeometry& g : geos) {
      ConvOptions o;
      static_cast<ConvGeometry&>(o) = g;
      seed += 2;
      check(random_tensor(xs, DType::f32, seed), random_tensor(ws, DType::f32, seed + 1), o, describe(xs, ws, g));
    }
  };
  auto geo = [](std::vector<std::int64_t> s, ConvPadding p, std::vector<std::pair<std::int64_t, std::int64_t>> cfg,
                std::vector<std::int64_t> id, std::vector<std::int64_t> kd) {
    ConvGeometry g;
    g.strides = std::move(s);
    g.padding = p;
    g.padding_config = std::move(cfg);
    g.input_dilation = std::move(id);
    g.kernel_dilation = std::move(kd);
    return g;
  };
  const auto V = ConvPadding::valid, S = ConvPadding::same, E = ConvPadding::explicit_;
  vary({2, 3, 11}, {4, 3, 3},
       {geo({}, V, {}, {}, {}), geo({2}, V, {}, {}, {}), geo({3}, S, {}, {}, {}), geo({1}, E, {{2, 1}}, {}, {}),
        geo({2}, E, {{-1, 3}}, {}, {2}), geo({1}, S, {}, {3}, {}), geo({2}, S, {}, {2}, {2})});
  vary({2, 4, 7, 6}, {5, 4, 3, 2},
       {geo({}, V, {}, {}, {}), geo({2, 1}, S, {}, {}, {}), geo({1, 2}, E, {{1, 0}, {0, 2}}, {1, 2}, {2, 1}),
        geo({3}, S, {}, {2}, {1, 2})});
  vary({1, 2, 5, 4, 3}, {3, 2, 2, 2, 2}, {geo({}, V, {}, {}, {}), geo({2, 1, 1}, S, {}, {1, 1, 2}, {2, 1, 1})});
  // Groups: two feature groups, depthwise (a group per channel, two outputs each), batch groups.
  ConvGeometry g;
  g.feature_group_size = 2;
  vary({2, 4, 6, 6}, {6, 2, 3, 3}, {g});
  g.feature_group_size = 4;
  g.padding = S;
  vary({1, 4, 5, 5}, {8, 1, 3, 3}, {g});
  g = {};
  g.batch_group_size = 2;
  vary({4, 3, 5, 5}, {4, 3, 2, 2}, {g});
  g.strides = {2};
  vary({6, 2, 9}, {6, 2, 3}, {g});
}

TEST_P(Conv, LayoutsThroughPermutationsAndViews) {
  // NHWC input, HWIO kernel, NHWC output: permutations, no copies of the operands.
  ConvOptions o;
  o.input_permutation = {0, 3, 1, 2};
  o.kernel_permutation = {3, 2, 0, 1};
  o.output_permutation = {0, 3, 1, 2};
  o.padding = ConvPadding::same;
  check(random_tensor({2, 6, 5, 3}, DType::f32, 1), random_tensor({3, 3, 3, 7}, DType::f32, 2), o, "NHWC x HWIO -> NHWC");
  {  // Nx's own example: NHWC in, OIHW kernel, output_permutation {0, 3, 1, 2} -> NHWC [1, 3, 3, 2].
    ConvOptions n;
    n.input_permutation = {0, 3, 1, 2};
    n.output_permutation = {0, 3, 1, 2};
    EXPECT_EQ(conv(random_tensor({1, 3, 3, 6}, DType::f32, 9).to(*dev_), random_tensor({2, 6, 1, 1}, DType::f32, 10).to(*dev_), n)
                  .shape(),
              (Shape{1, 3, 3, 2}));
    n.output_permutation = {0, 2, 3, 1};  // [N, C, H, W] read as N, H, W, C: C lands last but one
    EXPECT_EQ(conv(random_tensor({1, 3, 4, 6}, DType::f32, 9).to(*dev_), random_tensor({2, 6, 1, 1}, DType::f32, 10).to(*dev_), n)
                  .shape(),
              (Shape{1, 4, 2, 3}));
  }
  o.strides = {2};
  check(random_tensor({1, 9, 8, 4}, DType::f32, 3), random_tensor({1, 1, 4, 5}, DType::f32, 4), o, "1x1, stride 2");
  // Views: a transposed and a step-sliced input.
  const Tensor base = random_tensor({2, 8, 3, 9}, DType::f32, 5);
  ConvOptions p;
  p.padding = ConvPadding::same;
  check(base.transpose({0, 2, 3, 1}), random_tensor({4, 3, 2, 2}, DType::f32, 6), p, "transposed input");
  check(base.slice(1, 0, 8, 3).slice(3, 0, 9, 2), random_tensor({2, 3, 3, 1}, DType::f32, 7), p,
        "step-sliced input");
}

TEST_P(Conv, ShapesAcrossTheTile) {
  // M = images x positions, N = output channels, K = channels x window around 64, 64 and 16.
  check(random_tensor({3, 17, 9, 9}, DType::f32, 1), random_tensor({65, 17, 3, 3}, DType::f32, 2), {},
        "M 147, N 65, K 153");
  check(random_tensor({1, 1, 70}, DType::f32, 3), random_tensor({1, 1, 1}, DType::f32, 4), {}, "M 70, N 1, K 1");
  check(random_tensor({2, 16, 8}, DType::f32, 5), random_tensor({64, 16, 1}, DType::f32, 6), {}, "M 16, N 64, K 16");
}

TEST_P(Conv, EveryDtype) {
  unsigned seed = 10;
  for (DType t : {DType::f16, DType::bf16, DType::f32, DType::f64}) {
    seed += 2;
    check(random_tensor({2, 3, 6, 5}, t, seed), random_tensor({4, 3, 2, 3}, t, seed + 1), {},
          fmt::format("{}", dtype_name(t)));
  }
  // Integers: Nx's default output is floating (s8 x s8 -> f32, exact here); an integer output sums
  // exactly, wrapping, over the whole range.
  check(random_tensor({2, 3, 6}, DType::s8, 20, true), random_tensor({2, 3, 3}, DType::s8, 21, true), {}, "s8 -> f32");
  for (auto [in, out] : {std::pair{DType::s8, DType::s32}, std::pair{DType::u8, DType::u32},
                         std::pair{DType::s32, DType::s32}, std::pair{DType::s64, DType::s64}}) {
    ConvOptions o;
    o.output = out;
    o.padding = ConvPadding::same;
    seed += 2;
    check(random_tensor({2, 5, 7}, in, seed), random_tensor({3, 5, 3}, in, seed + 1), o,
          fmt::format("{} -> {}", dtype_name(in), dtype_name(out)));
  }
}

// CUDA sm_80 and later: f16/bf16 convolutions run on the tensor cores (templates/cuda/conv_mma.cuh),
// NCHW and NHWC, groups, strides and dilations, within the same K-scaled bound; tensor_cores = false
// keeps the fma kernel. Skipped elsewhere (the kernel runs on host threads with the mma emulated in
// CudaBlocksOnHost.ConvOnTheTensorCores).
TEST_P(Conv, TensorCoresTakeHalfPrecisionOperandsOnCuda) {
  const std::string& arch = dev_->info().arch;
  if (dev_->backend() != Backend::cuda || arch.rfind("sm_", 0) != 0 || std::atoi(arch.c_str() + 3) < 80)
    GTEST_SKIP() << "the tensor-core kernels need a CUDA GPU of compute capability 8.0 or later";
  unsigned seed = 700;
  for (DType t : {DType::bf16, DType::f16})
    for (bool nhwc : {false, true}) {
      ConvOptions o;
      o.strides = {2, 1};
      o.padding = ConvPadding::same;
      o.kernel_dilation = {1, 2};
      o.feature_group_size = 2;
      Tensor x = random_tensor({3, 34, 19, 23}, t, ++seed);
      const Tensor w = random_tensor({130, 17, 3, 3}, t, ++seed);
      if (nhwc) {  // an NHWC tensor, given to conv as the [N, C, H, W] view of it
        x = x.transpose({0, 2, 3, 1}).contiguous();
        o.input_permutation = {0, 3, 1, 2};
      }
      for (bool cores : {true, false}) {
        o.tensor_cores = cores;
        const std::uint64_t before = contraction_tensor_core_runs();
        check(x, w, o, fmt::format("{} {} {}", dtype_name(t), nhwc ? "NHWC" : "NCHW", cores ? "tensor cores" : "fma"));
        EXPECT_EQ(contraction_tensor_core_runs() - before, cores ? 2u : 0u);  // check() runs it twice
      }
    }
}

// sm_90 (H100, H200): f16/bf16 convolutions run the Hopper kernel (templates/cuda/conv_wgmma.cuh:
// wgmma, a producer warpgroup gathering the windows): an NHWC input with an OHWI kernel (both in
// 16-byte chunks: ResNet's layout), NCHW with OIHW (the kernel in chunks, the input element by
// element), NHWC with HWIO and 12 channels (element by element), input dilation and feature
// groups, a partial last tile each way and a K tail; a fused GELU + residual epilogue bit for bit
// against the same sums op by op. Skipped elsewhere (CudaWgmmaOnHost.Conv* runs the kernel on host
// threads).
TEST_P(Conv, HopperKernelOnSm90) {
  if (dev_->backend() != Backend::cuda || dev_->info().arch != "sm_90" || !wgmma_on(*dev_))
    GTEST_SKIP() << "the wgmma kernels run on sm_90 GPUs (KILN_WGMMA unset)";
  unsigned seed = 1500;
  struct Case {
    Shape x, w;  // as laid out: NHWC / NCHW, OHWI / OIHW / HWIO
    bool nhwc;
    int kernel_layout;  // 0 OIHW, 1 OHWI, 2 HWIO
    std::int64_t fg, idil;
  };
  for (DType t : {DType::bf16, DType::f16})
    for (const Case& c : {Case{{2, 14, 14, 64}, {136, 3, 3, 64}, true, 1, 1, 1}, Case{{1, 16, 15, 13}, {70, 16, 3, 3}, false, 0, 1, 1},
                          Case{{2, 9, 9, 12}, {3, 3, 12, 24}, true, 2, 1, 1}, Case{{1, 7, 7, 32}, {64, 1, 1, 16}, true, 1, 2, 2}}) {
      ConvOptions o;
      o.padding = ConvPadding::same;
      o.feature_group_size = c.fg;
      o.input_dilation = {c.idil};
      if (c.nhwc) o.input_permutation = {0, 3, 1, 2};
      o.kernel_permutation = c.kernel_layout == 1 ? std::vector<int>{0, 3, 1, 2}
                             : c.kernel_layout == 2 ? std::vector<int>{3, 2, 0, 1}
                                                    : std::vector<int>{};
      const Tensor x = random_tensor(c.x, t, ++seed), w = random_tensor(c.w, t, ++seed);
      const std::uint64_t before = contraction_wgmma_runs();
      check(x, w, o, fmt::format("{} {} x {} {}{}", dtype_name(t), shape_text(c.x), shape_text(c.w),
                                 c.nhwc ? "NHWC" : "NCHW", c.fg > 1 ? " 2 groups" : ""));
      EXPECT_EQ(contraction_wgmma_runs() - before, 2u);  // check() runs it twice
    }
  const Tensor x = random_tensor({2, 10, 10, 32}, DType::bf16, 1600).to(*dev_);
  const Tensor w = random_tensor({48, 3, 3, 32}, DType::bf16, 1601).to(*dev_);
  ConvOptions plain, epi;
  plain.input_permutation = epi.input_permutation = {0, 3, 1, 2};
  plain.kernel_permutation = epi.kernel_permutation = {0, 3, 1, 2};
  plain.output = DType::f32;
  const Tensor bias = random_tensor({1, 48, 1, 1}, DType::f32, 1602).to(*dev_);
  const Tensor res = random_tensor({2, 48, 8, 8}, DType::bf16, 1603).to(*dev_);
  epi.epilogue = parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f32, DType::bf16});
  epi.epilogue_operands = {bias, res};
  const Tensor fused = conv(x, w, epi), sums = conv(x, w, plain);
  conformance::expect_same_bits(fused, as_type(map(*epi.epilogue, {sums, bias, res}), DType::bf16), "GELU + residual");
}

// Vulkan: f16 convolutions run the cooperative-matrix kernel (templates/glsl/coopmat.glsl with
// conv_coopmat.glsl) where the device has VK_NV_cooperative_matrix. KILN_COOPMAT=emulate runs it on
// any Vulkan device with its fragments summed in k order by fused multiply-adds, the portable
// kernel's order and rounding: there its results equal tensor_cores = false bit for bit, so
// lavapipe checks its gathering (NCHW and NHWC inputs, OIHW and HWIO kernels: both staging orders
// of each operand), padding, strides, dilations, groups, partial tiles and epilogue exactly.
TEST_P(Conv, CooperativeMatrixKernelOnVulkan) {
  if (dev_->backend() != Backend::vulkan) GTEST_SKIP() << "cooperative matrices are a Vulkan kernel";
  const bool device_has = dev_->info().cooperative_matrix.m != 0;
  const auto same_bits = conformance::expect_same_bits;
  struct Case {
    Shape x, w;
    ConvOptions o;
    bool nhwc;  // x given as the [N, C, spatial...] view of an NHWC tensor
    const char* what;
  };
  std::vector<Case> cases(6);
  cases[0] = {{3, 34, 19, 23}, {130, 17, 3, 3}, {}, false, "NCHW x OIHW, 2 feature groups, partial tiles"};
  cases[0].o.strides = {2, 1};
  cases[0].o.padding = ConvPadding::same;
  cases[0].o.kernel_dilation = {1, 2};
  cases[0].o.feature_group_size = 2;
  cases[1] = {{2, 9, 11, 40}, {3, 3, 9, 33}, {}, true, "NHWC x HWIO, input dilation, explicit padding"};
  cases[1].o.kernel_permutation = {3, 2, 0, 1};
  cases[1].o.output_permutation = {0, 3, 1, 2};
  cases[1].o.padding = ConvPadding::explicit_;
  cases[1].o.padding_config = {{-1, 2}, {2, 0}};
  cases[1].o.input_dilation = {2, 1};
  cases[2] = {{4, 3, 5, 4, 6}, {6, 3, 2, 3, 2}, {}, false, "3-D, 2 batch groups"};
  cases[2].o.batch_group_size = 2;
  cases[2].o.padding = ConvPadding::same;
  cases[3] = {{1, 2, 300}, {5, 2, 4}, {}, true, "1-D NWC, stride 3"};
  cases[3].o.strides = {3};
  cases[4] = {{2, 64, 7, 7}, {160, 64, 1, 1}, {}, true, "NHWC x OIHW 1x1"};
  cases[5] = {{1, 1024, 2, 2}, {256, 1, 1, 1024}, {}, true, "NHWC x OHWI 1x1, K 1024 (ResNet's res4 layout)"};
  cases[5].o.kernel_permutation = {0, 3, 1, 2};
  unsigned seed = 800;
  for (const char* mode : {"emulate", static_cast<const char*>(nullptr)}) {
    if (!mode && !device_has) continue;  // the extension: where the device reports it
    const conformance::ScopedCoopmat env(mode);
    for (Case c : cases) {
      Tensor x = random_tensor(c.x, DType::f16, ++seed);
      if (c.nhwc) {
        std::vector<int> to_nhwc{0}, back{0, int(c.x.size()) - 1};
        for (int j = 2; j < int(c.x.size()); ++j) to_nhwc.push_back(j), back.push_back(j - 1);
        to_nhwc.push_back(1);
        x = x.transpose(to_nhwc).contiguous().transpose(back);  // the same elements, channels innermost
      }
      const Tensor w = random_tensor(c.w, DType::f16, ++seed);
      const std::string what = fmt::format("{} ({})", c.what, mode ? "emulated" : "device");
      const std::uint64_t before = contraction_coopmat_runs();
      check(x, w, c.o, what);
      EXPECT_EQ(contraction_coopmat_runs() - before, 2u) << what;  // check() runs it twice
      if (mode) {
        ConvOptions portable = c.o;
        portable.tensor_cores = false;
        same_bits(conv(x.to(*dev_), w.to(*dev_), c.o), conv(x.to(*dev_), w.to(*dev_), portable), what);
        EXPECT_EQ(contraction_coopmat_runs() - before, 3u) << what;
      }
    }
    // GELU(y + bias) + residual into f16, bit for bit against op by op; no channels (K = 0) gives
    // zeros; bf16 stays on the portable kernel; a kiln::jit consumer moves into the kernel's epilogue.
    const Tensor x = random_tensor({2, 5, 9, 9}, DType::f16, 850).to(*dev_), w = random_tensor({7, 5, 3, 3}, DType::f16, 851).to(*dev_);
    const Tensor bias = random_tensor({7, 1, 1}, DType::f32, 852).to(*dev_), res = random_tensor({2, 7, 7, 7}, DType::f16, 853).to(*dev_);
    ConvOptions epi, f32;
    epi.epilogue = parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f32, DType::f16});
    epi.epilogue_operands = {bias, res};
    f32.output = DType::f32;
    const std::uint64_t before = contraction_coopmat_runs();
    same_bits(conv(x, w, epi), as_type(map(*epi.epilogue, {conv(x, w, f32), bias, res}), DType::f16), "epilogue");
    const Tensor none = conv(Tensor::empty({1, 0, 4}, DType::f16, *dev_), Tensor::empty({3, 0, 2}, DType::f16, *dev_));
    EXPECT_EQ(none.to_host(), std::vector<std::byte>(1 * 3 * 3 * 2));  // +0.0 (K = 0)
    EXPECT_EQ(contraction_coopmat_runs() - before, 3u);
    conv(as_type(x, DType::bf16), as_type(w, DType::bf16));
    EXPECT_EQ(contraction_coopmat_runs() - before, 3u);
    auto doubled = jit([](const Tensor& a, const Tensor& b) { return conv(a, b) * 2.0; });
    const Tensor once = doubled(x, w);
    const std::string plan = doubled.plan(x, w);
    EXPECT_EQ(doubled.stats().launches_per_call, 1) << plan;
    EXPECT_NE(plan.find("path=coopmat"), std::string::npos) << plan;
    const Tensor want = conv(x, w) * 2.0;
    same_bits(once, want, "jit");
    same_bits(doubled(x, w), want, "jit replay");
  }
  if (!device_has) std::printf("(%s reports no cooperative matrices: only the emulated kernel ran)\n", dev_->id().c_str());
}

TEST_P(Conv, SpecialValuesAndEmptyOperands) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  check(Tensor::from_vector(std::vector<float>{1, inf, 0, 2, nan, 1, 3e38f, 3e38f}, {1, 1, 8}, device("cpu")),
        Tensor::from_vector(std::vector<float>{1, 2}, {1, 1, 2}, device("cpu")), {}, "inf, NaN, overflow");
  // An infinite kernel element over the padding: 0 x inf is NaN there (as XLA), on every backend.
  {
    ConvOptions same;
    same.padding = ConvPadding::same;
    const Tensor xs = Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 1, 3}, device("cpu"));
    const Tensor ws = Tensor::from_vector(std::vector<float>{inf, 1, 1}, {1, 1, 3}, device("cpu"));
    check(xs, ws, same, "inf kernel over padding");
    const std::vector<float> got = conv(xs.to(*dev_), ws.to(*dev_), same).to(device("cpu")).to_vector<float>();
    EXPECT_TRUE(std::isnan(got[0])) << got[0];  // the window's first tap is on the padding
    EXPECT_EQ(got[1], inf);
  }
  // 3e38 + 3e38 - 3e38 in k order overflows f32 on the way: +inf on every backend, the CPU's included.
  const Tensor big = Tensor::from_vector(std::vector<float>{3e38f, 3e38f, -3e38f}, {1, 1, 3}, device("cpu"));
  const Tensor ones = Tensor::from_vector(std::vector<float>{1, 1, 1}, {1, 1, 3}, device("cpu"));
  EXPECT_EQ(conv(big.to(*dev_), ones.to(*dev_)).to(device("cpu")).to_vector<float>(), (std::vector<float>{inf}));
  // No input channels: every output an empty sum, 0; no images: an empty result.
  const Tensor z = conv(Tensor::empty({2, 0, 5}, DType::f32, *dev_), Tensor::empty({3, 0, 2}, DType::f32, *dev_));
  EXPECT_EQ(z.shape(), (Shape{2, 3, 4}));
  for (float f : z.to(device("cpu")).to_vector<float>()) EXPECT_EQ(f, 0.0f);
  EXPECT_EQ(conv(Tensor::empty({0, 2, 5}, DType::f32, *dev_), random_tensor({3, 2, 2}, DType::f32, 1).to(*dev_)).shape(),
            (Shape{0, 3, 4}));
  // An empty spatial input padded to the kernel's extent: one output of zeros.
  ConvOptions o;
  o.padding = ConvPadding::explicit_;
  o.padding_config = {{1, 1}};
  const Tensor p = conv(Tensor::empty({1, 2, 0}, DType::f32, *dev_), random_tensor({3, 2, 2}, DType::f32, 2).to(*dev_), o);
  EXPECT_EQ(p.shape(), (Shape{1, 3, 1}));
  for (float f : p.to(device("cpu")).to_vector<float>()) EXPECT_EQ(f, 0.0f);
}

TEST_P(Conv, FusedEpiloguesMatchOpByOp) {
  const auto same_bits = conformance::expect_same_bits;
  const char* gelu = "0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476))";
  {  // NCHW: bias per channel ([C, 1, 1]) + GELU, then a residual.
    const Tensor x = random_tensor({2, 3, 6, 6}, DType::f32, 1).to(*dev_), w = random_tensor({5, 3, 3, 3}, DType::f32, 2).to(*dev_);
    const Tensor bias = random_tensor({5, 1, 1}, DType::f32, 3).to(*dev_), res = random_tensor({2, 5, 4, 4}, DType::f32, 4).to(*dev_);
    ConvOptions o;
    o.epilogue = parse_expr(std::string(gelu) + " + z", {DType::f32, DType::f32, DType::f32});
    o.epilogue_operands = {bias, res};
    same_bits(conv(x, w, o), map(*o.epilogue, {conv(x, w), bias, res}), "f32 gelu(y + bias) + residual");
  }
  {  // NHWC bf16 with a bias along the last axis.
    ConvOptions o;
    o.input_permutation = {0, 3, 1, 2};
    o.kernel_permutation = {3, 2, 0, 1};
    o.output_permutation = {0, 3, 1, 2};
    o.padding = ConvPadding::same;
    const Tensor x = random_tensor({1, 5, 5, 4}, DType::bf16, 5).to(*dev_), w = random_tensor({3, 3, 4, 6}, DType::bf16, 6).to(*dev_);
    const Tensor bias = random_tensor({6}, DType::f32, 7).to(*dev_);
    ConvOptions plain = o;
    plain.output = DType::f32;
    o.epilogue = parse_expr("max(x + y, 0)", {DType::f32, DType::f32});
    o.epilogue_operands = {bias};
    same_bits(conv(x, w, o), as_type(map(*o.epilogue, {conv(x, w, plain), bias}), DType::bf16), "bf16 relu(y + bias)");
  }
}

TEST_P(Conv, BadInputNamesOpShapesOptionsDtypesAndDevice) {
  const Tensor x = random_tensor({2, 4, 6, 6}, DType::f32, 1).to(*dev_), w = random_tensor({6, 3, 3, 3}, DType::f32, 2).to(*dev_);
  std::string e = error_message([&] { conv(x, w); });
  EXPECT_NE(e.find("kiln::conv"), std::string::npos) << e;
  EXPECT_NE(e.find("the input has 4 channels; the kernel's 3 input channels x feature_group_size 1 must equal it"),
            std::string::npos) << e;
  EXPECT_NE(e.find("[2,4,6,6]"), std::string::npos) << e;
  EXPECT_NE(e.find("[6,3,3,3]"), std::string::npos) << e;
  EXPECT_NE(e.find(dev_->id()), std::string::npos) << e;
  const Tensor w4 = random_tensor({6, 4, 3, 3}, DType::f32, 3).to(*dev_);
  ConvOptions o;
  o.strides = {0};
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("strides must be >= 1"), std::string::npos) << e;
  o = {};
  o.strides = {1, 1, 1};
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("strides has 3 values for 2 spatial dimensions"), std::string::npos) << e;
  o = {};
  o.padding = ConvPadding::explicit_;
  o.padding_config = {{-5, 0}, {0, 0}};  // 6 - 5 = 1 position for a 3-tap kernel
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("negative output size"), std::string::npos) << e;
  EXPECT_NE(e.find("padding [(-5,0),(0,0)]"), std::string::npos) << e;
  o.padding_config = {{std::numeric_limits<std::int64_t>::min(), 0}, {0, std::numeric_limits<std::int64_t>::max()}};
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("is beyond 2^31"), std::string::npos) << e;
  ConvOptions ignored;
  ignored.padding = ConvPadding::same;
  ignored.padding_config = {{1, 1}, {1, 1}};
  e = error_message([&] { conv(x, w4, ignored); });
  EXPECT_NE(e.find("padding_config is given but padding is not ConvPadding::explicit_"), std::string::npos) << e;
  // Past the end by at most a stride: 0 positions (Nx's floor((padded - kernel) / stride) + 1).
  const Tensor none = Tensor::empty({1, 2, 0}, DType::f32, *dev_), k1 = random_tensor({3, 2, 1}, DType::f32, 9).to(*dev_);
  EXPECT_EQ(conv(none, k1).shape(), (Shape{1, 3, 0}));
  ConvOptions s2;
  s2.strides = {2};
  const Tensor two = random_tensor({1, 1, 2}, DType::f32, 10).to(*dev_), k3 = random_tensor({1, 1, 3}, DType::f32, 11).to(*dev_);
  EXPECT_EQ(conv(two, k3, s2).shape(), (Shape{1, 1, 0}));
  e = error_message([&] { conv(two, random_tensor({1, 1, 5}, DType::f32, 12).to(*dev_), s2); });
  EXPECT_NE(e.find("by more than the stride 2, which would give a negative output size"), std::string::npos) << e;
  // Every option in range, the same padding of a dilation near 2^31 past 32 bits: the call named.
  o = {};
  o.padding = ConvPadding::same;
  o.kernel_dilation = {std::numeric_limits<int>::max(), 1};  // a 5-tap kernel: 4 x (2^31 - 1) padded
  const Tensor w5 = random_tensor({6, 4, 5, 1}, DType::f32, 3).to(*dev_);
  e = error_message([&] { conv(x, w5, o); });
  EXPECT_NE(e.find("does not fit the kernel's 32-bit geometry"), std::string::npos) << e;
  EXPECT_NE(e.find("kiln::conv"), std::string::npos) << e;
  EXPECT_NE(e.find("[6,4,5,1]"), std::string::npos) << e;
  o = {};
  o.feature_group_size = 2;
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("the kernel's 4 input channels x feature_group_size 2 must equal it"), std::string::npos) << e;
  o.feature_group_size = 4;
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("the kernel's 6 output channels are not divisible by the group size 4"), std::string::npos) << e;
  o.feature_group_size = std::numeric_limits<std::int64_t>::max();  // no overflow on the way to the error
  e = error_message([&] { conv(Tensor::empty({1, 4, 3, 3}, DType::f32, *dev_), Tensor::empty({0, 4, 1, 1}, DType::f32, *dev_), o); });
  EXPECT_NE(e.find("must equal it"), std::string::npos) << e;
  o.batch_group_size = 2;
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("cannot both be above 1"), std::string::npos) << e;
  o = {};
  o.batch_group_size = 4;
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("batch_group_size 4 does not divide the input batch 2"), std::string::npos) << e;
  o = {};
  o.input_permutation = {0, 1, 1, 2};
  e = error_message([&] { conv(x, w4, o); });
  EXPECT_NE(e.find("input_permutation [0,1,1,2] is not a permutation"), std::string::npos) << e;
  e = error_message([&] { conv(x.reshape({2, 4, 36}), w4); });
  EXPECT_NE(e.find("same rank"), std::string::npos) << e;
  const Tensor x5 = random_tensor({1, 1, 2, 2, 2, 2}, DType::f32, 4).to(*dev_);
  e = error_message([&] { conv(x5, x5); });
  EXPECT_NE(e.find("4 spatial dimensions; conv takes 1 to 3"), std::string::npos) << e;
  const Tensor p = Tensor::empty({2, 4, 6, 6}, DType::pred, *dev_);
  e = error_message([&] { conv(p, p); });
  EXPECT_NE(e.find("pred"), std::string::npos) << e;
  ConvOptions to_int;
  to_int.output = DType::s32;
  e = error_message([&] { conv(x, w4, to_int); });
  EXPECT_NE(e.find("an integer output (s32) needs integer inputs"), std::string::npos) << e;
  const Tensor wrong = Tensor::empty({2, 6, 4, 5}, DType::f32, *dev_);
  e = error_message([&] { conv(x, w4, {}, &wrong); });
  EXPECT_NE(e.find("the output must be a contiguous [2,6,4,4] f32"), std::string::npos) << e;
  if (dev_->backend() != Backend::cpu) {
    e = error_message([&] { conv(x, random_tensor({6, 4, 3, 3}, DType::f32, 5)); });
    EXPECT_NE(e.find("different devices"), std::string::npos) << e;
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, Conv, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Conv, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Conv, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
