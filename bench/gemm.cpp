// Contraction cases: square matmuls [s, s] x [s, s] (s from the elements of --size: 64M elements
// give 8192^3 on GPUs, lavapipe's 4M give 2048^3), per dtype and with a fused bias + GELU
// epilogue, against torch.matmul (+ gelu) with --peer torch. FLOPs are 2 s^3; bytes the operands
// read once and the output written once. On CUDA "matmul" is cuBLASLt where it applies (Kiln's
// library path) and "matmul_kernel" Kiln's generated kernel, so both are measured against the
// cuBLAS peaks and torch; "matmul_llm" has fixed LLM decode shapes. Not in the default run (a
// matmul of the CPU backend's default size is minutes of long double): kiln-bench --op
// matmul,matmul_kernel,matmul_gelu,matmul_llm.
#include <cmath>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "codegen/families/contract.hpp"
#include "core/error.hpp"
#include "runtime/contract.hpp"
#include "runtime/ops.hpp"

namespace kiln::bench {

namespace {

struct GemmPick {
  DType dtype;
  DType out;
  bool gelu;    // bias + GELU (tanh approximation) fused into the epilogue
  bool vendor;  // CUDA: cuBLASLt where it applies ("matmul"); false: Kiln's kernel ("matmul_kernel")
};
constexpr GemmPick kGemmPicks[] = {
    {DType::f32, DType::f32, false, true},   {DType::bf16, DType::bf16, false, true},
    {DType::f16, DType::f16, false, true},   {DType::s8, DType::s32, false, true},
    {DType::bf16, DType::bf16, true, true},  {DType::f32, DType::f32, false, false},
    {DType::bf16, DType::bf16, false, false},
};
constexpr const char* kGelu =
    "0.5 * (x + y) * (1 + tanh(0.7978845608 * ((x + y) + 0.044715 * (x + y) * (x + y) * (x + y))))";

}  // namespace

GemmDims gemm_dims(const BenchCase& c, std::uint64_t n) {
  if (c.gemm_m > 0) return {c.gemm_m, c.gemm_n, c.gemm_k};
  const std::int64_t s = gemm_side(n);
  return {s, s, s};
}

std::int64_t gemm_side(std::uint64_t n) {
  std::int64_t s = std::int64_t(std::sqrt(double(n)));
  while (s > 1 && std::uint64_t(s) * std::uint64_t(s) > n) --s;
  return std::max<std::int64_t>(s, 1);
}

std::vector<BenchCase> gemm_cases() {
  std::vector<BenchCase> out;
  for (const GemmPick& pick : kGemmPicks) {
    BenchCase b;
    b.kind = CaseKind::contract;
    const Expr epi = parse_expr(kGelu, {DType::f32, DType::f32});
    b.contract_spec = make_contract_spec(pick.dtype, pick.dtype, pick.out, pick.gelu ? &epi : nullptr);
    b.contract_vendor = pick.vendor;
    b.op = pick.gelu ? "matmul_gelu" : pick.vendor ? "matmul" : "matmul_kernel";
    b.name = pick.out == pick.dtype ? fmt::format("{}.{}", b.op, dtype_name(pick.dtype))
                                    : fmt::format("{}.{}_{}", b.op, dtype_name(pick.dtype), dtype_name(pick.out));
    b.expr = parse_expr("x", {pick.dtype}, b.name);
    b.expr_text = pick.gelu ? "gelu(a @ b + bias): [s,s] x [s,s], the epilogue fused" : "a @ b: [s,s] x [s,s], s = sqrt(elements)";
    b.torch_fn = pick.gelu ? "return torch.nn.functional.gelu(torch.matmul({0}, {1}) + {2}, approximate='tanh')"
                           : "return torch.matmul({0}, {1})";
    // Inputs in [-1, 1] (integers: random bits); sums of s products in f32: relative error of
    // the order of s units against the CPU's long double, bf16/f16 outputs round to 8/11 bits.
    b.ranges = {InputRange{-1, 1}, InputRange{-1, 1}, InputRange{-1, 1}};
    const bool narrow = pick.out == DType::bf16 || pick.out == DType::f16;
    b.atol = narrow ? 5e-2 : 1e-3;
    b.rtol = narrow ? 2e-2 : 1e-4;
    out.push_back(std::move(b));
  }
  // LLM decode shapes (the size does not change them): a batch of 16 tokens through a 4096 x 4096
  // projection, one token through a 4096 -> 14336 MLP.
  struct Llm {
    const char* name;
    std::int64_t m, n, k;
  };
  for (const Llm& l : {Llm{"decode16", 16, 4096, 4096}, Llm{"decode1_mlp", 1, 14336, 4096}}) {
    BenchCase b;
    b.kind = CaseKind::contract;
    b.contract_spec = make_contract_spec(DType::bf16, DType::bf16, DType::bf16);
    b.gemm_m = l.m, b.gemm_n = l.n, b.gemm_k = l.k;
    b.op = "matmul_llm";
    b.name = fmt::format("matmul.{}.bf16", l.name);
    b.expr = parse_expr("x", {DType::bf16}, b.name);
    b.expr_text = fmt::format("a @ b: [{},{}] x [{},{}] (LLM decode)", l.m, l.k, l.k, l.n);
    b.torch_fn = "return torch.matmul({0}, {1})";
    b.ranges = {InputRange{-1, 1}, InputRange{-1, 1}};
    b.atol = 5e-2;
    b.rtol = 2e-2;
    out.push_back(std::move(b));
  }
  return out;
}

CheckResult check_gemm_case(const BenchCase& c, Device& dev) {
  // A 70 x 70 x 70 problem (two tiles each way, K across the K step; a fixed problem as it is),
  // every output against the CPU backend.
  const std::uint64_t n = 70 * 70;
  Device& cpu = device("cpu");
  std::vector<Tensor> cpu_ins, dev_ins;
  const auto dtypes = c.input_dtypes();
  for (std::size_t k = 0; k < dtypes.size(); ++k) {
    const Shape shape = c.operand_shape(k, n);
    const auto data = random_input(dtypes[k], c.ranges[k], std::uint64_t(shape_numel(shape)), 1000 + k);
    cpu_ins.push_back(Tensor::from_host(data.data(), data.size(), shape, dtypes[k], cpu));
    dev_ins.push_back(cpu_ins.back().to(dev));
  }
  const Tensor want = c.run(cpu_ins);
  const Tensor out = Tensor::empty(want.shape(), want.dtype(), dev);
  return compare_outputs(c, c.run(dev_ins, &out), want, {});
}

CheckResult verify_gemm_sample(const BenchCase& c, const std::vector<std::vector<std::byte>>& inputs, const Tensor& out) {
  // The first 4 rows of the timed output against the CPU backend: a[0:4] @ b (+ the epilogue).
  CheckResult r;
  try {
    const std::int64_t rows = std::min<std::int64_t>(4, out.shape()[0]);
    const std::uint64_t n = std::uint64_t(out.numel());  // square cases: s * s elements, s from it again
    Device& cpu = device("cpu");
    const auto dtypes = c.input_dtypes();
    std::vector<Tensor> ins;
    for (std::size_t k = 0; k < dtypes.size(); ++k)
      ins.push_back(Tensor::from_host(inputs[k].data(), inputs[k].size(), c.operand_shape(k, n), dtypes[k], cpu));
    ins[0] = ins[0].slice(0, 0, rows);
    const Tensor want = c.run(ins);
    r = compare_outputs(c, out.to(cpu).slice(0, 0, rows).contiguous(), want, {});
    if (r.state == CheckResult::State::fail) r.message = "timed output, first rows: " + r.message;
  } catch (const Error& e) {
    r.state = CheckResult::State::error;
    r.message = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  }
  return r;
}

}  // namespace kiln::bench
