// The CUDA contraction, conv, rows and scan templates (templates/cuda/contract.cuh, conv.cuh, rows.cuh,
// scan.cuh) compiled for the
// host and run block by block with one host thread per CUDA thread: __syncthreads is a barrier of
// the block's threads, __shfl_xor_sync an exchange through memory between barriers of the warp's
// threads, __shared__ a static shared by the block. So the code a GPU runs — tile staging and
// bounds, batch and epilogue offsets, a warp per short row, shuffles then the warps' totals, scans
// in chunks and split rows (reduce, spine, scan) — is executed in CI, which has no GPU, on plans
// from the real planners, against independent results: the contraction bit for bit (each output's
// fused multiply-adds in k order), the row ops within f32 rounding of a long double reference, the
// scans against sequential ones.
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "codegen/families/contract.hpp"
#include "codegen/families/conv.hpp"
#include "codegen/families/rows.hpp"
#include "codegen/families/scan.hpp"
#include "codegen/family.hpp"
#include "core/half.hpp"
#include "tests/conv_host_case.hpp"
#include "tests/tensor_core_sums.hpp"

namespace cuda_blocks {

#include "tests/cuda_host_blocks.hpp"

#include "tests/cuda_host_templates_begin.hpp"
#include "templates/cuda/contract.cuh"
#include "templates/cuda/contract_mma.cuh"
#include "templates/cuda/conv.cuh"
#include "templates/cuda/conv_mma.cuh"
#include "templates/cuda/rows.cuh"
#include "templates/cuda/scan.cuh"
#include "tests/cuda_host_templates_end.hpp"

// mma.sync.aligned.m16n8k16 (f32 += f16/bf16 products) as the PTX ISA defines it, the warp's
// fragments exchanged through memory: lane 4 g + t holds A (m, k) = (g + 8 v1, 2 t + v0 + 8 v2)
// as element v0 + 2 v1 + 4 v2, B (k, n) = (2 t + v0 + 8 v1, g), D (m, n) = (g + 8 v1, 2 t + v0);
// each D element is C plus the 16 products, summed in double and rounded once.
inline unsigned mma_a_slots[1024][4], mma_b_slots[1024][2];
void kiln::contract_mma_16816_on_host(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], bool bf16) {
  const unsigned lane = threadIdx.x % 32, base = threadIdx.x - lane;
  std::memcpy(mma_a_slots[threadIdx.x], a, sizeof a);
  std::memcpy(mma_b_slots[threadIdx.x], b, sizeof b);
  warp_barriers[threadIdx.x / 32]->arrive_and_wait();
  auto value = [bf16](unsigned reg, unsigned half) {
    const auto bits = std::uint16_t(half ? reg >> 16 : reg & 0xFFFFu);
    return double(bf16 ? ::kiln::bf16_bits_to_f32(bits) : ::kiln::f16_bits_to_f32(bits));
  };
  double A[16][16], B[16][8];
  for (unsigned l = 0; l < 32; ++l) {
    const unsigned g = l / 4, t = l % 4;
    for (unsigned i = 0; i < 8; ++i)
      A[g + 8 * ((i / 2) % 2)][2 * t + i % 2 + 8 * (i / 4)] = value(mma_a_slots[base + l][i / 2], i % 2);
    for (unsigned i = 0; i < 4; ++i) B[2 * t + i % 2 + 8 * (i / 2)][g] = value(mma_b_slots[base + l][i / 2], i % 2);
  }
  const unsigned g = lane / 4, t = lane % 4;
  for (unsigned i = 0; i < 4; ++i) {
    const unsigned m = g + 8 * (i / 2), n = 2 * t + i % 2;
    double s = d[i];
    for (unsigned k = 0; k < 16; ++k) s += A[m][k] * B[k][n];
    d[i] = float(s);
  }
  warp_barriers[threadIdx.x / 32]->arrive_and_wait();
}


// ---- functors as codegen/families/contract.cpp and rows.cpp emit them (f32, no conversions) -----
// (Templates over the params, as emitted: the conv template calls the same functor.)
struct MatmulF32 {
  typedef float C;
  template <class P> C load_a(const P& p, long long i) const { return reinterpret_cast<const float*>(p.a)[i]; }
  template <class P> C load_b(const P& p, long long i) const { return reinterpret_cast<const float*>(p.b)[i]; }
  template <class P> void put(const P& p, long long i, const long long*, C y) const {
    reinterpret_cast<float*>(p.out)[i] = y;
  }
};
// y * 0.5 + bias (the epilogue's operand 0) - residual (operand 1).
struct MatmulEpilogueF32 : MatmulF32 {
  template <class P> void put(const P& p, long long i, const long long* ei, C y) const {
    const float bias = reinterpret_cast<const float*>(p.ext[0])[ei[0]];
    const float res = reinterpret_cast<const float*>(p.ext[1])[ei[1]];
    reinterpret_cast<float*>(p.out)[i] = y * 0.5f + bias - res;
  }
};

template <int OP> struct RowsF32 {
  typedef float C;
  static constexpr int kOp = OP, kParams = 0, kBias = 0, kCausal = 0, kResidual = 0, kMaskedNan = 0;
  C x(const kiln::KilnRowsParams& p, const unsigned long long* off, long long j) const {
    return (reinterpret_cast<const float*>(p.in[0]) + off[0])[j * p.axis_stride[0]];
  }
  C param0(const kiln::KilnRowsParams&, const unsigned long long*, long long) const { return 0; }
  C param1(const kiln::KilnRowsParams&, const unsigned long long*, long long) const { return 0; }
  void put(const kiln::KilnRowsParams& p, const unsigned long long* off, long long j, C y) const {
    (reinterpret_cast<float*>(p.out) + off[4])[j * p.axis_stride[4]] = y;
  }
  void put_h(const kiln::KilnRowsParams&, const unsigned long long*, long long, C) const {}
  C f_exp(C a) const { return std::exp(a); }
  C f_log(C a) const { return std::log(a); }
  C f_rsqrt(C a) const { return 1 / std::sqrt(a); }
  C f_div(C a, C b) const { return a / b; }
};

// cumulative_sum over f32 and cumulative_max over s32 (the combiners the emitter gives them).
struct SumF32 {
  typedef float C;
  typedef float T;
  C load(T v) const { return v; }
  T store(C v) const { return v; }
  C identity() const { return -0.0f; }
  C combine(C a, C b) const { return a + b; }
};
struct MaxS32 {
  typedef int C;
  typedef int T;
  C load(T v) const { return v; }
  T store(C v) const { return v; }
  C identity() const { return -2147483647 - 1; }
  C combine(C a, C b) const { return a > b ? a : b; }
};

}  // namespace cuda_blocks

namespace kiln {
namespace {

template <class P> P params_from(const LaunchPlan& plan) {
  P p;
  EXPECT_EQ(plan.params.size(), sizeof p);
  std::memcpy(&p, plan.params.data(), sizeof p);
  return p;
}

// A batched matmul [batch, m, k] x [k, n] (b shared by the batch: stride 0), optionally with the
// epilogue y * 0.5 + bias[n] - residual[batch, m, n], run on the host threads with a grid smaller
// than the plan's (so blocks grid-stride), against each output's fmaf chain in k order.
void check_contract(std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k, bool epilogue) {
  SCOPED_TRACE(testing::Message() << batch << "x" << m << "x" << n << "x" << k << (epilogue ? " epilogue" : ""));
  const std::vector<float> a = random_floats(std::size_t(batch * m * k), 1), b = random_floats(std::size_t(k * n), 2);
  const std::vector<float> bias = random_floats(std::size_t(n), 3), res = random_floats(std::size_t(batch * m * n), 4);
  std::vector<float> out(std::size_t(batch * m * n), -777.0f);
  const Expr epi = parse_expr("x * 0.5 + y - z", {DType::f32, DType::f32, DType::f32});
  const KernelSpec spec = make_contract_spec(DType::f32, DType::f32, DType::f32, epilogue ? &epi : nullptr);
  const std::vector<std::int64_t> shape{batch, m, n, k};
  const std::vector<std::int64_t> sa{m * k, k, 0, 1}, sb{0, 0, 1, n}, sbias{0, 0, 1, 0}, sres{m * n, n, 1, 0};
  std::vector<PlanOperand> ops{{reinterpret_cast<std::uint64_t>(a.data()), sa}, {reinterpret_cast<std::uint64_t>(b.data()), sb}};
  if (epilogue) {
    ops.push_back({reinterpret_cast<std::uint64_t>(bias.data()), sbias});
    ops.push_back({reinterpret_cast<std::uint64_t>(res.data()), sres});
  }
  std::string why;
  const LaunchPlan plan = family_of(spec).plan(spec, {shape, ops, reinterpret_cast<std::uint64_t>(out.data()), {}, 256}, &why);
  ASSERT_EQ(plan.function, 0) << why;
  const auto p = params_from<cuda_blocks::kiln::KilnContractParams>(plan);
  const unsigned blocks = std::min(plan.groups_x, 3u);
  if (epilogue)
    cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::contract_run(p, cuda_blocks::MatmulEpilogueF32()); });
  else
    cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::contract_run(p, cuda_blocks::MatmulF32()); });
  int bad = 0;
  for (std::int64_t bi = 0; bi < batch; ++bi)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n && bad < 5; ++j) {
        float acc = 0;
        for (std::int64_t kk = 0; kk < k; ++kk) acc = std::fma(a[std::size_t((bi * m + i) * k + kk)], b[std::size_t(kk * n + j)], acc);
        const std::size_t o = std::size_t((bi * m + i) * n + j);
        const float want = epilogue ? acc * 0.5f + bias[std::size_t(j)] - res[o] : acc;
        if (out[o] != want) {
          ++bad;
          ADD_FAILURE() << "out[" << bi << "," << i << "," << j << "] = " << out[o] << ", want " << want;
        }
      }
}

TEST(CudaBlocksOnHost, ContractTilesBoundsBatchesAndEpilogue) {
  check_contract(1, 1, 1, 1, false);
  check_contract(1, 70, 65, 33, false);   // two tiles each way, K across the step of 16
  check_contract(3, 17, 9, 40, false);    // a batch with b broadcast (stride 0)
  check_contract(2, 64, 64, 16, true);    // exact tiles, the epilogue's operands
  check_contract(1, 5, 130, 0, false);    // K = 0: zeros
}

// The tensor-core kernels' functor: f32 out, optionally y * 0.5 + bias - residual.
struct MmaF32Out {
  typedef float C;
  template <class P> void put(const P& p, long long i, const long long* ei, C y) const {
    float v = y;
    if (p.ext[0]) v = y * 0.5f + reinterpret_cast<const float*>(p.ext[0])[ei[0]] - reinterpret_cast<const float*>(p.ext[1])[ei[1]];
    reinterpret_cast<float*>(p.out)[i] = v;
  }
};


// run_conv_case with the kernels on the host threads: the fma kernel, or mma.sync's for the
// tensor-core cases, on a grid of at most 3 blocks (so they grid-stride).
void check_conv(const ConvCase& c) {
  run_conv_case(c, [&](const KernelSpec& spec, const LaunchPlan& plan) {
    const auto p = params_from<cuda_blocks::kiln::KilnConvParams>(plan);
    const unsigned blocks = std::min(plan.groups_x, 3u);
    ASSERT_EQ(spec.block_size, 256);
    if (c.cores) {
      EXPECT_EQ(p.tiles_m, (p.m + 127) / 128);
      if (c.cores == 1)
        cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::conv_mma_run_bf16(p, MmaF32Out()); });
      else
        cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::conv_mma_run_f16(p, MmaF32Out()); });
    } else if (c.epilogue) {
      cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::conv_run(p, cuda_blocks::MatmulEpilogueF32()); });
    } else {
      cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::conv_run(p, cuda_blocks::MatmulF32()); });
    }
  });
}

TEST(CudaBlocksOnHost, ConvGathersWindowsPaddingDilationsAndGroups) {
  // 2-D: stride (2, 1), padding (1, 1) x (0, 1), kernel dilation (1, 2), two feature groups of 35
  // output channels (N tiles of 64 cut mid-group), an NHWC output.
  check_conv({{2, 6, 9, 7}, {70, 3, 3, 2}, {2, 1}, {1, 0}, {1, 1}, {1, 2}, {1, 1}, 2, 1, {0, 2, 3, 1}, false});
  // 1-D with input dilation 3 and negative padding, batch groups, the epilogue's operands.
  check_conv({{4, 3, 11}, {4, 3, 3}, {2}, {-1}, {2}, {1}, {3}, 1, 2, {}, true});
  // NHWC: k in (kernel position, channel) order.
  ConvCase nhwc{{2, 5, 6, 6}, {9, 5, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 1, {0, 2, 3, 1}, true};
  nhwc.nhwc = true;
  check_conv(nhwc);
  // 3-D, K = 2 x 2 x 3 x 3 = 36 across the step of 16.
  check_conv({{1, 2, 4, 5, 5}, {5, 2, 2, 3, 3}, {1, 2, 1}, {0, 1, 1}, {0, 1, 1}, {1, 1, 1}, {1, 1, 2}, 1, 1, {}, false});
}

// The conv kernel on the tensor cores (f16/bf16 operands, templates/cuda/conv_mma.cuh) on the host
// threads with the mma emulated: the same window gathers over 128 x 128 tiles and K steps of 32,
// both staging orders (rows or k neighbouring; the kernel along k or n), against long double sums
// of the 16-bit operands with the K-scaled bound of the contraction's tensor-core test.
TEST(CudaBlocksOnHost, ConvOnTheTensorCores) {
  ConvCase groups{{2, 6, 9, 7}, {70, 3, 3, 2}, {2, 1}, {1, 0}, {1, 1}, {1, 2}, {1, 1}, 2, 1, {0, 2, 3, 1}, false};
  groups.cores = 1;
  check_conv(groups);
  ConvCase dilated{{4, 3, 11}, {4, 3, 3}, {2}, {-1}, {2}, {1}, {3}, 1, 2, {}, true};
  dilated.cores = 2;
  check_conv(dilated);
  // NHWC input and HWIO kernel: M = 288 over three tiles, N = 130 over two, K = 45 across the step.
  ConvCase nhwc{{2, 5, 12, 12}, {130, 5, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 1, {0, 2, 3, 1}, true};
  nhwc.nhwc = nhwc.hwio = true;
  nhwc.cores = 1;
  check_conv(nhwc);
  ConvCase three_d{{1, 2, 4, 5, 5}, {5, 2, 2, 3, 3}, {1, 2, 1}, {0, 1, 1}, {0, 1, 1}, {1, 1, 1}, {1, 1, 2}, 1, 1, {}, false};
  three_d.cores = 2;
  check_conv(three_d);
  ConvCase hwio{{2, 5, 6, 6}, {9, 5, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 1, {}, false};
  hwio.hwio = true;  // the fma kernel reads an HWIO kernel too
  check_conv(hwio);
}

// The tensor-core kernel (f16 or bf16 operands, templates/cuda/contract_mma.cuh) on the host threads
// with the mma emulated as the PTX ISA defines it: a batched [batch, m, k] x [k, n] (b transposed
// when |bt|: its k axis contiguous), optionally y * 0.5 + bias - residual, against long double sums
// of the same 16-bit operands (the tensor cores' per-16 rounding: K-scaled tolerance). The rows
// along k (a's, and b's when |bt|) are |k| + |pad| elements apart; |chunks|: whether a and b are
// expected to be staged by 16-byte copies (bit 0: a, bit 1: b).
void check_mma(bool bf16, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k, bool bt, bool epilogue,
               std::int64_t pad = 0, int chunks = -1) {
  SCOPED_TRACE(testing::Message() << (bf16 ? "bf16 " : "f16 ") << batch << "x" << m << "x" << n << "x" << k
                                  << (bt ? " b transposed" : "") << (epilogue ? " epilogue" : "") << " pad " << pad);
  auto to_bits = [bf16](float f) { return bf16 ? f32_to_bf16_bits(f) : f32_to_f16_bits(f); };
  auto of_bits = [bf16](std::uint16_t b) { return bf16 ? bf16_bits_to_f32(b) : f16_bits_to_f32(b); };
  const std::int64_t ld = k + pad, bld = bt ? ld : n;  // a's row length; b's ([n][ld] or [k][n])
  const std::vector<float> af = random_floats(std::size_t(batch * m * ld), 11),
                           bfl = random_floats(std::size_t((bt ? n : k) * bld), 12);
  std::vector<std::uint16_t> a(af.size()), b(bfl.size());
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = to_bits(af[i]);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = to_bits(bfl[i]);  // [k, n], or [n, k] when bt
  const std::vector<float> bias = random_floats(std::size_t(n), 13), res = random_floats(std::size_t(batch * m * n), 14);
  std::vector<float> out(std::size_t(batch * m * n), -777.0f);
  const Expr epi = parse_expr("x * 0.5 + y - z", {DType::f32, DType::f32, DType::f32});
  const DType t = bf16 ? DType::bf16 : DType::f16;
  const KernelSpec spec = contract_tensor_core_spec(make_contract_spec(t, t, DType::f32, epilogue ? &epi : nullptr));
  const std::vector<std::int64_t> shape{batch, m, n, k};
  const std::vector<std::int64_t> sa{m * ld, ld, 0, 1}, sb{0, 0, bt ? ld : 1, bt ? 1 : n}, sbias{0, 0, 1, 0}, sres{m * n, n, 1, 0};
  std::vector<PlanOperand> ops{{reinterpret_cast<std::uint64_t>(a.data()), sa}, {reinterpret_cast<std::uint64_t>(b.data()), sb}};
  if (epilogue) {
    ops.push_back({reinterpret_cast<std::uint64_t>(bias.data()), sbias});
    ops.push_back({reinterpret_cast<std::uint64_t>(res.data()), sres});
  }
  std::string why;
  const LaunchPlan plan = family_of(spec).plan(spec, {shape, ops, reinterpret_cast<std::uint64_t>(out.data()), {}, 256}, &why);
  ASSERT_EQ(plan.function, 0) << why;
  const auto p = params_from<cuda_blocks::kiln::KilnContractParams>(plan);
  EXPECT_EQ(p.tiles_m, (m + 127) / 128);
  if (chunks >= 0) {
    EXPECT_EQ(cuda_blocks::kiln::contract_mma_chunks(p, 0), (chunks & 1) != 0);
    EXPECT_EQ(cuda_blocks::kiln::contract_mma_chunks(p, 1), (chunks & 2) != 0);
  }
  const unsigned blocks = std::min(plan.groups_x, 2u);
  if (bf16)
    cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::contract_mma_run_bf16(p, MmaF32Out()); });
  else
    cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::contract_mma_run_f16(p, MmaF32Out()); });
  expect_tensor_core_sums(
      batch, m, n, k,
      [&](std::int64_t bi, std::int64_t i, std::int64_t kk) { return (long double)of_bits(a[std::size_t((bi * m + i) * ld + kk)]); },
      [&](std::int64_t kk, std::int64_t j) { return (long double)of_bits(b[std::size_t(bt ? j * ld + kk : kk * n + j)]); },
      epilogue, bias, res, out);
}

TEST(CudaBlocksOnHost, TensorCoreTilesFragmentsAndEpilogue) {
  check_mma(true, 1, 1, 1, 1, false, false);
  check_mma(true, 1, 130, 70, 50, false, false);   // partial tiles each way, K across the step of 32
  check_mma(false, 2, 33, 129, 40, true, true);    // f16, a batch, b transposed (k contiguous), epilogue
  check_mma(true, 1, 128, 128, 32, true, false);   // exact tiles
}

// The staging by asynchronous 16-byte copies (cp.async, two buffers): operands along k with rows a
// multiple of 8 elements apart, a K tail inside a chunk (the copy's zero fill: K = 44 in rows of
// 48), several K steps through both buffers and tiles in turn (one block walks them), one operand
// copied and the other staged element by element, and both element by element (rows 50 apart).
TEST(CudaBlocksOnHost, TensorCoreStagingByAsynchronousCopies) {
  check_mma(true, 1, 130, 136, 44, true, false, 4, 3);    // both copied, the tail zero-filled
  check_mma(false, 3, 40, 24, 136, true, true, 0, 3);     // a batch, K over 5 steps, the epilogue
  check_mma(true, 1, 200, 72, 96, false, false, 0, 1);    // a copied, b [k][n] element by element
  check_mma(false, 1, 33, 160, 21, true, false, 11, 3);   // rows of 32: K = 21, one step, 2 tail chunks
  check_mma(true, 1, 70, 40, 50, true, false, 0, 0);      // rows of 50: element by element
}

// A row op over [rows, n] run on the host threads against long double.
template <int OP>
void check_rows(RowsOp op, std::int64_t rows, std::int64_t n) {
  SCOPED_TRACE(testing::Message() << rows_op_info(op).name << " rows " << rows << " n " << n);
  const std::vector<float> x = random_floats(std::size_t(rows * n), unsigned(n), -8, 8);
  const bool keeps = rows_op_info(op).keeps_axis;
  std::vector<float> out(std::size_t(keeps ? rows * n : rows), -777.0f);
  const KernelSpec spec = make_rows_spec(op, DType::f32);
  const std::vector<std::int64_t> shape{rows, n}, xs{n, 1};
  const std::vector<PlanOperand> ops{{reinterpret_cast<std::uint64_t>(x.data()), xs}};
  const LaunchOption eps[] = {{"eps", 1e-5}};
  PlanRequest r{shape, ops, reinterpret_cast<std::uint64_t>(out.data()), {}, 256};
  r.options = eps;
  std::string why;
  const LaunchPlan plan = family_of(spec).plan(spec, r, &why);
  ASSERT_EQ(plan.function, 0) << why;
  const auto p = params_from<cuda_blocks::kiln::KilnRowsParams>(plan);
  cuda_blocks::launch(std::min(plan.groups_x, 2u), 256,
                      [&] { cuda_blocks::kiln::rows_run<256>(p, cuda_blocks::RowsF32<OP>()); });
  int bad = 0;
  for (std::int64_t i = 0; i < rows && bad < 5; ++i) {
    const float* v = x.data() + i * n;
    long double mx = -INFINITY, s = 0, mean = 0, q = 0;
    for (std::int64_t j = 0; j < n; ++j) mx = std::max<long double>(mx, v[j]);
    for (std::int64_t j = 0; j < n; ++j) s += std::exp((long double)v[j] - mx);
    for (std::int64_t j = 0; j < n; ++j) mean += v[j];
    mean /= n;
    for (std::int64_t j = 0; j < n; ++j) q += (v[j] - mean) * (v[j] - mean);
    for (std::int64_t j = 0; j < (keeps ? n : 1); ++j) {
      long double want;
      if (op == RowsOp::softmax) want = std::exp((long double)v[j] - mx) / s;
      else if (op == RowsOp::logsumexp) want = mx + std::log(s);
      else want = (v[j] - mean) / std::sqrt(q / n + 1e-5L);
      const float got = out[std::size_t(keeps ? i * n + j : i)];
      const double tol = 1e-6 * double(n) * (op == RowsOp::softmax ? double(want) : 1.0) + 2e-6 * std::fabs(double(want));
      if (!(std::fabs(double(got) - double(want)) <= tol)) {
        ++bad;
        ADD_FAILURE() << "row " << i << " element " << j << ": got " << got << ", want " << double(want);
      }
    }
  }
}

TEST(CudaBlocksOnHost, RowsWarpPerShortRowAndBlockPerLongRow) {
  // Warp per row (n <= 512): 8 rows per block, rows grid-striding over 2 blocks.
  check_rows<0>(RowsOp::softmax, 37, 5);
  check_rows<0>(RowsOp::softmax, 9, 512);
  check_rows<3>(RowsOp::layer_norm, 20, 100);
  check_rows<2>(RowsOp::logsumexp, 11, 33);
  // Block per row: registers (n <= 4096), then the online / Welford passes over memory.
  check_rows<0>(RowsOp::softmax, 3, 513);
  check_rows<3>(RowsOp::layer_norm, 3, 3000);
  check_rows<0>(RowsOp::softmax, 2, 5000);
  check_rows<3>(RowsOp::layer_norm, 2, 5000);
}

// A scan over [rows, n] (reverse: from the end) run on the host threads, every step of the plan
// (reduce, spine, scan when the rows are split), against sequential scans: f32 sums within the
// blocked order's rounding, s32 maxima exactly.
template <class R, class T>
void check_scan(Combiner c, DType t, std::int64_t rows, std::int64_t n, bool reverse) {
  SCOPED_TRACE(testing::Message() << scan_op_info(c).name << " rows " << rows << " n " << n << (reverse ? " reverse" : ""));
  std::mt19937 rng(unsigned(n + rows));
  std::vector<T> x(std::size_t(rows * n)), out(std::size_t(rows * n), T(-77));
  for (T& v : x) v = std::is_floating_point_v<T> ? T(std::uniform_real_distribution<float>(0.5f, 1.5f)(rng)) : T(rng());
  const KernelSpec spec = make_scan_spec(c, t);
  const std::vector<std::int64_t> shape{rows, n}, xs{n, 1};
  const std::vector<PlanOperand> ops{{reinterpret_cast<std::uint64_t>(x.data()), xs}};
  const int axes[1] = {1};
  const LaunchOption rev[] = {{"reverse", reverse ? 1.0 : 0.0}};
  PlanRequest r{shape, ops, reinterpret_cast<std::uint64_t>(out.data()), axes, 256};
  r.options = rev;
  std::string why;
  LaunchPlan plan = family_of(spec).plan(spec, r, &why);
  std::vector<std::byte> scratch(plan.scratch_bytes + 8);
  if (plan.scratch_bytes) {
    r.scratch = reinterpret_cast<std::uint64_t>(scratch.data());
    plan = family_of(spec).plan(spec, r, &why);
  }
  ASSERT_GE(plan.function, 0) << why;
  std::vector<LaunchStep> steps{plan};
  steps.insert(steps.end(), plan.then.begin(), plan.then.end());
  std::vector<T> by_block;
  for (const LaunchStep& s : steps) {
    const auto p = params_from<cuda_blocks::kiln::KilnScanParams>(LaunchPlan{s});
    const unsigned blocks = std::min(s.groups_x, 3u);
    if (s.function == 0 && p.by_thread) {  // a thread per short row: the bits of a block per row
      EXPECT_TRUE(n <= 8 && plan.then.empty());
      auto q = p;
      q.by_thread = 0;
      cuda_blocks::launch(std::min<unsigned>(unsigned(rows), 3u), 256, [&] { cuda_blocks::kiln::scan_scan<256>(q, R()); });
      by_block = out;
      std::fill(out.begin(), out.end(), T(-77));
    }
    if (s.function == 0) cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::scan_scan<256>(p, R()); });
    if (s.function == 1) cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::scan_reduce<256>(p, R()); });
    if (s.function == 2) cuda_blocks::launch(blocks, 256, [&] { cuda_blocks::kiln::scan_spine<256>(p, R()); });
  }
  if (!by_block.empty()) {
    EXPECT_TRUE(by_block == out) << "a thread per row and a block per row differ";
  }
  EXPECT_EQ(!by_block.empty(), n <= 8);
  int bad = 0;
  for (std::int64_t i = 0; i < rows && bad < 5; ++i) {
    long double acc = 0;
    T m = std::numeric_limits<T>::lowest();
    for (std::int64_t jj = 0; jj < n && bad < 5; ++jj) {
      const std::int64_t j = reverse ? n - 1 - jj : jj;
      const T v = x[std::size_t(i * n + j)], got = out[std::size_t(i * n + j)];
      acc += v;
      m = std::max(m, v);
      const bool ok = c == Combiner::sum ? std::fabs(double(got) - double(acc)) <= 1e-6 * double(acc) * (40 + double(n) / 1024)
                                         : got == m;
      if (!ok) {
        ++bad;
        ADD_FAILURE() << "row " << i << " element " << j << ": got " << double(got) << ", want "
                      << (c == Combiner::sum ? double(acc) : double(m));
      }
    }
  }
}

TEST(CudaBlocksOnHost, ScansInChunksAndSplitRows) {
  check_scan<cuda_blocks::SumF32, float>(Combiner::sum, DType::f32, 5, 3000, false);   // two chunks of 2048
  check_scan<cuda_blocks::SumF32, float>(Combiner::sum, DType::f32, 3, 1, true);
  check_scan<cuda_blocks::MaxS32, std::int32_t>(Combiner::max, DType::s32, 300, 37, true);
  // Many rows of up to 8 elements: a thread per row (3 blocks of 256 grid-striding over them).
  check_scan<cuda_blocks::SumF32, float>(Combiner::sum, DType::f32, 3000, 8, false);
  check_scan<cuda_blocks::MaxS32, std::int32_t>(Combiner::max, DType::s32, 1000, 5, true);
  check_scan<cuda_blocks::SumF32, float>(Combiner::sum, DType::f32, 300, 9, true);
  // Few long rows: split into segments (reduce, spine, scan).
  check_scan<cuda_blocks::SumF32, float>(Combiner::sum, DType::f32, 1, 40000, false);
  check_scan<cuda_blocks::MaxS32, std::int32_t>(Combiner::max, DType::s32, 2, 20001, true);
}

}  // namespace
}  // namespace kiln
