// The conv case of the tests that run the CUDA conv templates on host threads
// (test_cuda_blocks_host.cpp: the fma and mma.sync kernels; test_cuda_wgmma_host.cpp: the wgmma
// kernel): the request built here from Nx's definition, planned by the conv family, checked against
// an independent reference. Include after tests/tensor_core_sums.hpp's includes and the family
// headers (codegen/families/conv.hpp, codegen/family.hpp, core/half.hpp).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "codegen/families/conv.hpp"
#include "codegen/family.hpp"
#include "codegen/expr.hpp"
#include "core/half.hpp"

namespace kiln {

inline std::vector<float> random_floats(std::size_t n, unsigned seed, float lo = -2, float hi = 2) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// A convolution (an NCHW or NHWC input, an OIHW, HWIO or OHWI kernel; the output permuted by |perm|)
// planned by the conv family and run by |run| (the kernel of the spec on host threads), against
// each output's fmaf chain in k order ((input channel, kernel position), or (position, channel) for
// NHWC) over the window gathered here from Nx's definition — or, for the tensor-core kernels,
// long double sums within their K-scaled bound.
struct ConvCase {
  std::vector<std::int64_t> x, w, stride, lo, hi, kdil, idil;  // x: [N, C, spatial...] (logical)
  std::int64_t fg = 1, bg = 1;
  std::vector<int> perm;
  bool epilogue = false;
  bool nhwc = false;  // x laid out [N, spatial..., C]: k in (position, channel) order
  int cores = 0;  // 0: the fma kernel over f32; 1, 2: the tensor-core kernel over bf16, f16 operands
  bool hwio = false;  // the kernel laid out [spatial..., I, O] (output channels its unit-stride axis)
  bool ohwi = false;  // the kernel laid out [O, spatial..., I] (input channels its unit-stride axis)
  bool wgmma = false;  // with cores: the Hopper kernel (conv_wgmma.cuh) instead of mma.sync
};
inline void run_conv_case(const ConvCase& c, const std::function<void(const KernelSpec&, const LaunchPlan&)>& run) {
  SCOPED_TRACE(testing::Message() << "conv x rank " << c.x.size() << " w[0] " << c.w[0] << " fg " << c.fg << " bg "
                                  << c.bg << (c.epilogue ? " epilogue" : "") << (c.nhwc ? " nhwc" : "")
                                  << (c.hwio ? " hwio" : "") << (c.ohwi ? " ohwi" : "")
                                  << (c.wgmma ? " wgmma" : "") << (c.cores == 1 ? " bf16 tensor cores" : c.cores == 2 ? " f16 tensor cores" : ""));
  const std::size_t d = c.x.size() - 2;
  auto row_major = [](const std::vector<std::int64_t>& s) {
    std::vector<std::int64_t> st(s.size());
    std::int64_t m = 1;
    for (std::size_t i = s.size(); i-- > 0;) st[i] = m, m *= s[i];
    return st;
  };
  auto count = [](const std::vector<std::int64_t>& s) {
    std::int64_t n = 1;
    for (std::int64_t v : s) n *= v;
    return n;
  };
  const std::int64_t N = c.x[0], C = c.x[1], O = c.w[0], I = c.w[1], G = c.fg * c.bg, og = O / G,
                     cg = c.fg > 1 ? I : C, nout = N / c.bg;
  std::vector<std::int64_t> os{nout, O}, shape{G, nout};
  std::vector<ConvDim> dims;
  for (std::size_t j = 0; j < d; ++j) {
    const std::int64_t din = (c.x[2 + j] - 1) * c.idil[j] + 1, dk = (c.w[2 + j] - 1) * c.kdil[j] + 1;
    os.push_back((din + c.lo[j] + c.hi[j] - dk) / c.stride[j] + 1);
    shape.push_back(os.back());
    dims.push_back({c.stride[j], c.lo[j], c.kdil[j], c.idil[j], c.x[2 + j]});
  }
  shape.insert(shape.end(), {og, cg});
  for (std::size_t j = 0; j < d; ++j) shape.push_back(c.w[2 + j]);
  std::vector<std::int64_t> xst = row_major(c.x);
  if (c.nhwc) {  // strides of the logical [N, C, spatial...] over an [N, spatial..., C] layout
    std::vector<std::int64_t> phys{c.x[0]};
    for (std::size_t j = 0; j < d; ++j) phys.push_back(c.x[2 + j]);
    phys.push_back(C);
    const auto pst = row_major(phys);
    xst[0] = pst[0];
    xst[1] = 1;
    for (std::size_t j = 0; j < d; ++j) xst[2 + j] = pst[1 + j];
  }
  std::vector<std::int64_t> wst = row_major(c.w);
  if (c.hwio) {  // strides of the logical [O, I, spatial...] over an [spatial..., I, O] layout
    std::vector<std::int64_t> phys;
    for (std::size_t j = 0; j < d; ++j) phys.push_back(c.w[2 + j]);
    phys.insert(phys.end(), {c.w[1], c.w[0]});
    const auto pst = row_major(phys);
    wst[0] = 1;
    wst[1] = pst[d];
    for (std::size_t j = 0; j < d; ++j) wst[2 + j] = pst[j];
  }
  if (c.ohwi) {  // strides of the logical [O, I, spatial...] over an [O, spatial..., I] layout
    std::vector<std::int64_t> phys{c.w[0]};
    for (std::size_t j = 0; j < d; ++j) phys.push_back(c.w[2 + j]);
    phys.push_back(c.w[1]);
    const auto pst = row_major(phys);
    wst[0] = pst[0];
    wst[1] = 1;
    for (std::size_t j = 0; j < d; ++j) wst[2 + j] = pst[1 + j];
  }
  const auto ost = row_major(os);
  std::vector<float> x = random_floats(std::size_t(count(c.x)), 5), w = random_floats(std::size_t(count(c.w)), 6);
  // The tensor cores take 16-bit operands: the values rounded to them, and their bits.
  const bool bf16 = c.cores == 1;
  std::vector<std::uint16_t> x16(x.size()), w16(w.size());
  if (c.cores) {
    for (std::size_t i = 0; i < x.size(); ++i)
      x16[i] = bf16 ? f32_to_bf16_bits(x[i]) : f32_to_f16_bits(x[i]), x[i] = bf16 ? bf16_bits_to_f32(x16[i]) : f16_bits_to_f32(x16[i]);
    for (std::size_t i = 0; i < w.size(); ++i)
      w16[i] = bf16 ? f32_to_bf16_bits(w[i]) : f32_to_f16_bits(w[i]), w[i] = bf16 ? bf16_bits_to_f32(w16[i]) : f16_bits_to_f32(w16[i]);
  }
  const std::vector<float> bias = random_floats(std::size_t(O), 7), res = random_floats(std::size_t(count(os)), 8);
  std::vector<float> out(std::size_t(count(os)), -777.0f);
  std::vector<std::int64_t> sx{c.fg > 1 ? cg * xst[1] : c.bg > 1 ? nout * xst[0] : 0, xst[0]}, sw{og * wst[0], 0},
      sbias{og, 0}, sres{og * ost[1], ost[0]};
  for (std::size_t j = 0; j < d; ++j) sx.push_back(xst[2 + j]), sw.push_back(0), sbias.push_back(0), sres.push_back(ost[2 + j]);
  sx.insert(sx.end(), {0, xst[1]});
  sw.insert(sw.end(), {wst[0], wst[1]});
  sbias.insert(sbias.end(), {1, 0});
  sres.insert(sres.end(), {ost[1], 0});
  for (std::size_t j = 0; j < d; ++j) sx.push_back(xst[2 + j]), sw.push_back(wst[2 + j]), sbias.push_back(0), sres.push_back(0);
  std::vector<PlanOperand> ops{
      {c.cores ? reinterpret_cast<std::uint64_t>(x16.data()) : reinterpret_cast<std::uint64_t>(x.data()), sx},
      {c.cores ? reinterpret_cast<std::uint64_t>(w16.data()) : reinterpret_cast<std::uint64_t>(w.data()), sw}};
  if (c.epilogue) {
    ops.push_back({reinterpret_cast<std::uint64_t>(bias.data()), sbias});
    ops.push_back({reinterpret_cast<std::uint64_t>(res.data()), sres});
  }
  std::vector<int> perm = c.perm;
  if (perm.empty())
    for (int i = 0; i < int(d) + 2; ++i) perm.push_back(i);
  const std::vector<int> axes = conv_request_axes(perm, dims, c.nhwc);
  const DType t = c.cores == 0 ? DType::f32 : bf16 ? DType::bf16 : DType::f16;
  const Expr epi = parse_expr("x * 0.5 + y - z", {DType::f32, DType::f32, DType::f32});
  KernelSpec spec = make_conv_spec(t, t, DType::f32, c.cores && c.epilogue ? &epi : nullptr);
  if (c.cores && c.wgmma) spec = contract_wgmma_spec(spec);
  else if (c.cores) spec = contract_tensor_core_spec(spec);
  std::string why;
  const LaunchPlan plan =
      family_of(spec).plan(spec, {shape, ops, reinterpret_cast<std::uint64_t>(out.data()), axes, spec.block_size}, &why);
  ASSERT_EQ(plan.function, 0) << why;
  ASSERT_EQ(plan.params.size(), entry_params_bytes(family_of(spec), spec, 0));
  run(spec, plan);
  // The output's strides: dense over the permuted shape.
  std::vector<std::int64_t> us, cst(d + 2);
  for (int a : perm) us.push_back(os[std::size_t(a)]);
  const auto ust = row_major(us);
  for (std::size_t i = 0; i < d + 2; ++i) cst[std::size_t(perm[i])] = ust[i];
  std::int64_t window = 1;
  for (std::size_t j = 0; j < d; ++j) window *= c.w[2 + j];
  int bad = 0;
  for (std::int64_t e = 0; e < count(os) && bad < 5; ++e) {
    std::vector<std::int64_t> idx(d + 2);
    std::int64_t rem = e, at = 0;
    for (std::size_t a = d + 2; a-- > 0;) idx[a] = rem % os[a], rem /= os[a], at += idx[a] * cst[a];
    const std::int64_t o = idx[1], g = o / og, image = idx[0] + (c.bg > 1 ? g * nout : 0), base = c.fg > 1 ? g * I : 0;
    float acc = 0;
    long double sum = 0, mag = 0;  // the tensor cores' reference: exact sums, a K-scaled bound
    for (std::int64_t kk = 0; kk < cg * window; ++kk) {
      const std::int64_t ci = c.nhwc ? kk % cg : kk / window, kp = c.nhwc ? kk / cg : kk % window;
      std::int64_t r = kp, xi = image * xst[0] + (base + ci) * xst[1], wi = o * wst[0] + ci * wst[1];
      bool inside = true;
      for (std::size_t j = d; j-- > 0;) {
        const std::int64_t kj = r % c.w[2 + j];
        r /= c.w[2 + j];
        wi += kj * wst[2 + j];
        const std::int64_t q = idx[2 + j] * c.stride[j] - c.lo[j] + kj * c.kdil[j];
        if (q < 0 || q % c.idil[j] != 0 || q / c.idil[j] >= c.x[2 + j]) inside = false;
        else xi += q / c.idil[j] * xst[2 + j];
      }
      acc = std::fma(inside ? x[std::size_t(xi)] : 0.0f, w[std::size_t(wi)], acc);
      const long double prod = (long double)(inside ? x[std::size_t(xi)] : 0.0f) * w[std::size_t(wi)];
      sum += prod;
      mag += std::fabs(prod);
    }
    if (c.cores) {
      const double want = c.epilogue ? double(sum) * 0.5 + bias[std::size_t(o)] - res[std::size_t(e)] : double(sum);
      const double tol = double(cg * window / 16 + 2) * 0x1p-24 * double(mag) + 4e-6 * std::fabs(want) + 1e-6;
      if (!(std::fabs(out[std::size_t(at)] - want) <= tol)) {
        ++bad;
        ADD_FAILURE() << "canonical output " << e << " = " << out[std::size_t(at)] << ", want " << want;
      }
      continue;
    }
    const float want = c.epilogue ? acc * 0.5f + bias[std::size_t(o)] - res[std::size_t(e)] : acc;
    if (out[std::size_t(at)] != want) {
      ++bad;
      ADD_FAILURE() << "canonical output " << e << " = " << out[std::size_t(at)] << ", want " << want;
    }
  }
}

}  // namespace kiln
