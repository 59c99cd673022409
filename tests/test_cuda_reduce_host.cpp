// The CUDA reduce template (templates/cuda/reduce.cuh) compiled for the host and run thread by
// thread on plans from the real planner, so the code paths a GPU takes are checked in CI too: rows
// as vector loads (aligned), element by element (misaligned) and through the reduced shape; columns
// with kVec outputs per thread and one; split columns through the final kernel. Every load is
// checked to lie inside the inputs and to be aligned to its size (a misaligned vector load is a
// launch failure on a GPU), and the sums are compared bit for bit with the documented order
// (tests/conformance/reduce_order.hpp). The block-level tree (shared memory, warp shuffles) is not
// run here: the host reproduces it from the threads' values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "codegen/abi.hpp"
#include "codegen/emit.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/family.hpp"
#include "core/half.hpp"
#include "tests/conformance/reduce_order.hpp"
#include "tests/narrowing_cases.hpp"

namespace cuda_host {

// ---- what the template needs from CUDA --------------------------------------------------------
struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline Dim3 threadIdx, blockIdx, gridDim;
struct uint2 {
  unsigned x, y;
};
struct uint4 {
  unsigned x, y, z, w;
};

// The inputs' bytes: every __ldg must fall inside one, aligned to its size.
struct Loads {
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> inputs;
  std::string error;
  long vector = 0, scalar = 0;
};
inline Loads loads;

template <class T> T __ldg(const T* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  for (const auto& [lo, hi] : loads.inputs) inside = inside || (a >= lo && a + sizeof(T) <= hi);
  if (loads.error.empty() && !inside) loads.error = "a " + std::to_string(sizeof(T)) + "-byte load outside the inputs";
  if (loads.error.empty() && a % sizeof(T) != 0)
    loads.error = "a " + std::to_string(sizeof(T)) + "-byte load at an address that is not a multiple of its size";
  if (std::is_same_v<T, uint2> || std::is_same_v<T, uint4>) ++loads.vector;
  else ++loads.scalar;
  T t;
  std::memcpy(&t, p, sizeof(T));
  return t;
}
[[noreturn]] inline void block_level(const char* what) { throw std::logic_error(std::string(what) + " is not run on the host"); }
inline void __syncthreads() { block_level("__syncthreads"); }
inline int __shfl_down_sync(unsigned, int, int) { block_level("__shfl_down_sync"); }
[[noreturn]] inline void cuda_host_unsupported(const char* what) { block_level(what); }
#include "tests/cuda_host_shims.hpp"
#include "tests/cuda_host_ops_shims.hpp"

#define __device__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#include "templates/cuda/reduce.cuh"
#undef __device__
#undef __forceinline__
#undef __noinline__
#undef __shared__

// ---- functors as codegen/families/reduce.cpp emits them (the constants are checked below) -------
template <class T, int kRun> struct Sum {
  static constexpr int kUnroll = 8, kVec = kRun, kGroup = 4;
  typedef T Acc;
  Acc identity() const { return 0; }
  Acc prologue(long long, T a) const { return a; }
  Acc combine(Acc a, Acc b) const { return a + b; }
  T finish(Acc a, long long) const { return a; }
};
typedef Sum<float, 4> SumF32;
typedef Sum<double, 2> SumF64;
// bf16(x) * y over a bf16 and an f32 input: runs of 4 (8 and 16 bytes).
struct DotBf16F32 {
  static constexpr int kUnroll = 8, kVec = 4, kGroup = 4;
  typedef float Acc;
  Acc identity() const { return 0; }
  Acc prologue(long long, unsigned short a, float b) const { return kiln_bf16_bits_to_f32(a) * b; }
  Acc combine(Acc a, Acc b) const { return a + b; }
  float finish(Acc a, long long) const { return a; }
};
struct ArgmaxF32 {
  static constexpr int kUnroll = 8, kVec = 4, kGroup = 4;
  typedef kiln::ArgAcc<float> Acc;
  Acc identity() const { Acc a; a.v = 0; a.i = -1; return a; }
  Acc prologue(long long i, float x) const { Acc a; a.v = x; a.i = i; return a; }
  Acc combine(Acc a, Acc b) const { return kiln::arg_combine<true, false>(a, b); }
  long long finish(Acc a, long long) const { return a.i; }
};

}  // namespace cuda_host

namespace kiln {
namespace {

// The spec each functor mirrors: its emitted CUDA must carry the same constants.
KernelSpec spec_for(Combiner c, const char* expr, std::vector<DType> inputs) {
  return make_reduce_spec(c, parse_expr(expr, inputs));
}
void expect_constants(const KernelSpec& spec, int unroll, int vec, int group) {
  const std::string src = emit_cuda(spec);
  const std::string want = "kUnroll = " + std::to_string(unroll) + ", kVec = " + std::to_string(vec) +
                           ", kGroup = " + std::to_string(group) + ";";
  EXPECT_NE(src.find(want), std::string::npos) << spec.name() << " no longer emits " << want;
}

cuda_host::kiln::KilnReduceParams host_params(const LaunchStep& step) {
  cuda_host::kiln::KilnReduceParams p;
  static_assert(sizeof p == sizeof(KilnReduceParams));
  EXPECT_EQ(step.params.size(), sizeof p);
  std::memcpy(&p, step.params.data(), sizeof p);
  return p;
}

// Values over 40 binades: another order gives another sum.
template <class T> std::vector<T> spread_values(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> mant(1, 2);
  std::uniform_int_distribution<int> expo(-20, 20), sign(0, 1);
  std::vector<T> v(n);
  for (T& x : v) x = T((sign(rng) ? -1 : 1) * std::ldexp(mant(rng), expo(rng)));
  return v;
}

struct Operand {
  const void* data;
  std::vector<std::int64_t> strides;  // elements, over the iteration shape
  std::size_t bytes;                  // of the whole buffer (the loads' bounds)
};

// The planner's view of |ops|; their bytes become the only places loads may read (a new launch).
std::vector<PlanOperand> plan_operands(const std::vector<Operand>& ops) {
  std::vector<PlanOperand> po;
  cuda_host::loads = {};
  for (const Operand& o : ops) {
    po.push_back({reinterpret_cast<std::uint64_t>(o.data), o.strides});
    const auto lo = reinterpret_cast<std::uintptr_t>(o.data);
    cuda_host::loads.inputs.push_back({lo, lo + o.bytes});
  }
  return po;
}

// Plans |spec| over |shape| reducing |axes|, then runs every (work item, thread) of the rows kernel
// on the host: each work item's thread values, combined by the block tree, into |out| (n_split 1).
template <class R, class Out, class... In>
void run_rows(const KernelSpec& spec, const std::vector<std::int64_t>& shape, const std::vector<int>& axes,
              const std::vector<Operand>& ops, std::vector<Out>& out) {
  const std::vector<PlanOperand> po = plan_operands(ops);
  std::string why;
  const LaunchPlan plan = family_of(spec).plan(spec, {shape, po, reinterpret_cast<std::uint64_t>(out.data()), axes, 256}, &why);
  ASSERT_EQ(plan.function, 0) << why;
  const auto p = host_params(plan);
  ASSERT_EQ(p.n_split, 1);
  ASSERT_EQ(std::size_t(p.n_out), out.size());
  using namespace cuda_host::kiln::reduce_detail;
  const R r;
  for (long long o = 0; o < p.n_out; ++o) {
    long long oo, first, end;
    work_item(p, o, &oo, &first, &end);
    unsigned long long base[4] = {0, 0, 0, 0};
    out_offsets(p, int(sizeof...(In)), oo, base);
    std::vector<typename R::Acc> threads(256);
    for (int tid = 0; tid < 256; ++tid)
      threads[std::size_t(tid)] = run_rows<256, R, In...>(p, r, first, end, base, tid,
                                                           typename MakeSeq<int(sizeof...(In))>::type());
    for (std::size_t h = 128; h > 0; h /= 2)
      for (std::size_t t = 0; t < h; ++t) threads[t] = r.combine(threads[t], threads[t + h]);
    out[std::size_t(oo)] = r.finish(threads[0], p.n_red);
  }
}

// Every thread of the cols kernel, then (split) of the final kernel, on the host.
template <class R, class Out, class... In>
void run_cols(const KernelSpec& spec, const std::vector<std::int64_t>& shape, const std::vector<int>& axes,
              const std::vector<Operand>& ops, std::vector<Out>& out, std::int64_t* split, bool* grouped) {
  const std::vector<PlanOperand> po = plan_operands(ops);
  std::string why;
  const PlanRequest req{shape, po, reinterpret_cast<std::uint64_t>(out.data()), axes, 256};
  LaunchPlan plan = family_of(spec).plan(spec, req, &why);
  ASSERT_EQ(plan.function, 1) << why;
  std::vector<typename R::Acc> scratch(plan.scratch_bytes / sizeof(typename R::Acc) + 1);
  if (plan.scratch_bytes) {
    PlanRequest with = req;
    with.scratch = reinterpret_cast<std::uint64_t>(scratch.data());
    plan = family_of(spec).plan(spec, with, &why);
  }
  const auto p = host_params(plan);
  *split = p.n_split;
  *grouped = cuda_host::kiln::reduce_detail::cols_grouped<R::kVec, In...>(
      p, typename cuda_host::kiln::reduce_detail::MakeSeq<int(sizeof...(In))>::type());
  auto launch = [&](const LaunchStep& step, auto kernel) {
    const auto q = host_params(step);
    cuda_host::gridDim.x = step.groups_x;
    for (unsigned b = 0; b < step.groups_x; ++b)
      for (unsigned t = 0; t < 256; ++t) {
        cuda_host::blockIdx.x = b;
        cuda_host::threadIdx.x = t;
        kernel(q);
      }
  };
  const R r;
  launch(plan, [&](const auto& q) { cuda_host::kiln::reduce_cols<256, R, Out, In...>(q, r); });
  if (p.n_split > 1) {
    ASSERT_EQ(plan.then.size(), 1u);
    ASSERT_LT(p.n_split, 64) << "the final kernel's block mode is not run on the host";
    launch(plan.then[0], [&](const auto& q) { cuda_host::kiln::reduce_final<256, R, Out, In...>(q, r); });
  }
}

TEST(CudaReduceOnHost, EmittedConstantsMatchTheseFunctors) {
  expect_constants(spec_for(Combiner::sum, "x", {DType::f32}), 8, 4, 4);
  expect_constants(spec_for(Combiner::sum, "x", {DType::f64}), 8, 2, 4);
  expect_constants(spec_for(Combiner::sum, "x * y", {DType::bf16, DType::f32}), 8, 4, 4);
  expect_constants(spec_for(Combiner::argmax, "x", {DType::f32}), 8, 4, 4);
}

// Rows from every start (aligned runs take vector loads, the rest element by element) and through
// a non-collapsible reduced shape: bit for bit the documented order, every load inside and aligned.
TEST(CudaReduceOnHost, RowsInTheDocumentedOrderWithAlignedLoads) {
  const KernelSpec sum32 = spec_for(Combiner::sum, "x", {DType::f32});
  const KernelSpec sum64 = spec_for(Combiner::sum, "x", {DType::f64});
  for (const std::int64_t n : {std::int64_t(1), std::int64_t(5), std::int64_t(37), std::int64_t(1000), std::int64_t(4096)}) {
    const std::int64_t rows = 3, wide = n + 7;
    const auto f = spread_values<float>(std::size_t(rows * wide), unsigned(n));
    const auto d = spread_values<double>(std::size_t(rows * wide), unsigned(n) + 1);
    for (const std::int64_t start : {0, 1, 2, 3, 4, 6}) {
      SCOPED_TRACE("rows of " + std::to_string(n) + " from column " + std::to_string(start));
      std::vector<float> got(rows);
      run_rows<cuda_host::SumF32, float, float>(sum32, {rows, n}, {1}, {{f.data() + start, {wide, 1}, f.size() * 4 - std::size_t(start) * 4}}, got);
      EXPECT_EQ(cuda_host::loads.error, "");
      for (std::int64_t r = 0; r < rows; ++r) {
        const float want = conformance::emulated_row_sum(f.data() + r * wide + start, n, 256, 4, 4);
        EXPECT_EQ(std::memcmp(&got[std::size_t(r)], &want, 4), 0) << "f32 row " << r << ": " << got[std::size_t(r)] << " vs " << want;
      }
      if (start == 0 && n >= 4 && wide % 4 == 0) {
        EXPECT_GT(cuda_host::loads.vector, 0);
      }
      std::vector<double> got64(rows);
      run_rows<cuda_host::SumF64, double, double>(sum64, {rows, n}, {1}, {{d.data() + start, {wide, 1}, d.size() * 8 - std::size_t(start) * 8}}, got64);
      EXPECT_EQ(cuda_host::loads.error, "");
      for (std::int64_t r = 0; r < rows; ++r) {
        const double want = conformance::emulated_row_sum(d.data() + r * wide + start, n, 256, 2, 4);
        EXPECT_EQ(std::memcmp(&got64[std::size_t(r)], &want, 8), 0) << "f64 row " << r;
      }
    }
  }
  // Rows of 1000 = 8 x 125 taken over axes {1, 3} of {3, 8, 2, 125}: no collapse, kMode 2.
  const std::vector<std::int64_t> shape = {3, 8, 2, 125};
  const auto x = spread_values<float>(6000, 5);
  std::vector<float> got(6);
  run_rows<cuda_host::SumF32, float, float>(sum32, shape, {1, 3}, {{x.data(), {2000, 250, 125, 1}, x.size() * 4}}, got);
  EXPECT_EQ(cuda_host::loads.error, "");
  EXPECT_EQ(cuda_host::loads.vector, 0);
  for (std::int64_t a = 0; a < 3; ++a)
    for (std::int64_t c = 0; c < 2; ++c) {
      std::vector<float> row;
      for (std::int64_t b = 0; b < 8; ++b)
        for (std::int64_t e = 0; e < 125; ++e) row.push_back(x[std::size_t(a * 2000 + b * 250 + c * 125 + e)]);
      const float want = conformance::emulated_row_sum(row.data(), 1000, 256, 4, 4);
      EXPECT_EQ(std::memcmp(&got[std::size_t(a * 2 + c)], &want, 4), 0) << "output " << a * 2 + c;
    }
}

// Two inputs of different widths (bf16 runs of 8 bytes, f32 runs of 16) and argmax's 16-byte
// accumulators (ties and NaN: the first index, NaN wins).
TEST(CudaReduceOnHost, MixedWidthRunsAndArgmax) {
  const KernelSpec dot = spec_for(Combiner::sum, "x * y", {DType::bf16, DType::f32});
  const std::int64_t rows = 4, n = 999, wide = 1004;
  std::mt19937 rng(3);
  std::vector<std::uint16_t> a(std::size_t(rows * wide));
  for (auto& v : a) v = std::uint16_t(0x3F80 + rng() % 0x400);  // bf16 in [1, 8)
  const auto b = spread_values<float>(std::size_t(rows * wide), 9);
  for (const std::int64_t start : {0, 2, 4}) {
    SCOPED_TRACE("from column " + std::to_string(start));
    std::vector<float> got(rows);
    run_rows<cuda_host::DotBf16F32, float, unsigned short, float>(
        dot, {rows, n}, {1},
        {{a.data() + start, {wide, 1}, a.size() * 2 - std::size_t(start) * 2}, {b.data() + start, {wide, 1}, b.size() * 4 - std::size_t(start) * 4}}, got);
    EXPECT_EQ(cuda_host::loads.error, "");
    if (start % 4 == 0) {
      EXPECT_GT(cuda_host::loads.vector, 0);
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      std::vector<float> prod(static_cast<std::size_t>(n));
      for (std::int64_t j = 0; j < n; ++j) {
        const std::size_t i = std::size_t(r * wide + start + j);
        prod[std::size_t(j)] = cuda_host::kiln_bf16_bits_to_f32(a[i]) * b[i];
      }
      const float want = conformance::emulated_row_sum(prod.data(), n, 256, 4, 4);
      EXPECT_EQ(std::memcmp(&got[std::size_t(r)], &want, 4), 0) << "row " << r << ": " << got[std::size_t(r)] << " vs " << want;
    }
  }
  const KernelSpec am = spec_for(Combiner::argmax, "x", {DType::f32});
  std::vector<float> x(3 * 1000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 7919 % 1000) % 97);  // ties at 96
  x[1000 + 613] = NAN;
  x[1000 + 900] = NAN;
  std::vector<long long> idx(3);
  run_rows<cuda_host::ArgmaxF32, long long, float>(am, {3, 1000}, {1}, {{x.data(), {1000, 1}, x.size() * 4}}, idx);
  EXPECT_EQ(cuda_host::loads.error, "");
  for (std::int64_t r = 0; r < 3; ++r) {
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < 1000; ++j) {
      const float v = x[std::size_t(r * 1000 + j)], w = x[std::size_t(r * 1000 + best)];
      if (!std::isnan(w) && (std::isnan(v) || v > w)) best = j;
    }
    EXPECT_EQ(idx[std::size_t(r)], best) << "row " << r;
  }
}

// Columns: kVec outputs per thread where aligned, one otherwise; long columns split into segments
// and combined by the final kernel; each output's elements in order either way.
TEST(CudaReduceOnHost, ColumnsGroupedOrNotInTheDocumentedOrder) {
  const KernelSpec sum32 = spec_for(Combiner::sum, "x", {DType::f32});
  struct Case {
    std::int64_t rows, cols, start;
    bool grouped;
  };
  for (const Case c : {Case{60, 2048, 0, true}, Case{60, 2048, 1, false}, Case{60, 2048, 4, true}, Case{60, 2046, 0, false},
                       Case{1000, 1024, 0, true}, Case{1000, 1024, 3, false}}) {
    SCOPED_TRACE(std::to_string(c.rows) + " x " + std::to_string(c.cols) + " from column " + std::to_string(c.start));
    const std::int64_t wide = c.cols + 8;
    const auto x = spread_values<float>(std::size_t(c.rows * wide), unsigned(c.rows + c.start));
    std::vector<float> got(std::size_t(c.cols));
    std::int64_t split = 0;
    bool grouped = false;
    run_cols<cuda_host::SumF32, float, float>(sum32, {c.rows, c.cols}, {0},
                                              {{x.data() + c.start, {wide, 1}, x.size() * 4 - std::size_t(c.start) * 4}}, got,
                                              &split, &grouped);
    EXPECT_EQ(grouped, c.grouped);
    EXPECT_EQ(cuda_host::loads.error, "");
    EXPECT_EQ(cuda_host::loads.vector > 0, c.grouped);
    const std::int64_t seg = (c.rows + split - 1) / split;
    int bad = 0;
    for (std::int64_t col = 0; col < c.cols; ++col) {
      float want = 0;  // the final kernel: the segments' values in order
      for (std::int64_t s = 0; s < split; ++s) {
        std::vector<float> part;
        for (std::int64_t r = s * seg; r < std::min(c.rows, (s + 1) * seg); ++r)
          part.push_back(x[std::size_t(r * wide + c.start + col)]);
        const float v = conformance::emulated_col_segment(part);
        want = split == 1 ? v : want + v;
      }
      if (std::memcmp(&got[std::size_t(col)], &want, 4) != 0 && bad++ < 3)
        ADD_FAILURE() << "column " << col << " (split " << split << "): " << got[std::size_t(col)] << " vs " << want;
    }
  }
}

// The CUDA prelude's conversions to f16 and bf16 (ops.cuh, kiln_cast_*) round f64 and integers
// once, as the CPU reference and GLSL: the cases of tests/narrowing_cases.hpp, expected bits from
// the formats alone.
TEST(CudaOpsOnHost, NarrowingConversionsRoundOnce) {
  int checked = 0;
  for (bool bf16 : {false, true}) {
    for (const auto& c : narrowing::float_cases(bf16)) {
      const float got = bf16 ? cuda_host::kiln_cast_bf16(c.x) : cuda_host::kiln_cast_f16(c.x);
      const std::uint16_t bits = bf16 ? f32_to_bf16_bits(got) : f32_to_f16_bits(got);  // exact: got is one
      ASSERT_EQ(bits, c.want) << "f64 " << std::hexfloat << c.x << (bf16 ? " -> bf16" : " -> f16");
      ++checked;
    }
  }
  for (int bits : {32, 64}) {
    for (bool is_signed : {false, true}) {
      for (const auto& c : narrowing::int_cases(bits, is_signed)) {
        const std::uint64_t m = c.magnitude;
        float got;
        const std::uint64_t v = c.negative ? 0 - m : m;  // two's complement, wrapped to |bits| below
        if (bits == 64)
          got = is_signed ? cuda_host::kiln_cast_bf16((long long)v) : cuda_host::kiln_cast_bf16((cuda_host::kiln_u64)v);
        else
          got = is_signed ? cuda_host::kiln_cast_bf16((int)v) : cuda_host::kiln_cast_bf16((unsigned)v);
        ASSERT_EQ(f32_to_bf16_bits(got), c.want) << (is_signed ? "s" : "u") << bits << " " << (c.negative ? "-" : "") << m;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 380000);
}

}  // namespace
}  // namespace kiln
