// Contraction cases: square matmuls [s, s] x [s, s] (s from the elements of --size: 64M elements
// give 8192^3 on GPUs, lavapipe's 4M give 2048^3), per dtype, with a fused bias + GELU epilogue and
// with a fused residual add, against torch.matmul (+ gelu, + residual) with --peer torch. FLOPs are 2 s^3; bytes the operands
// read once and the output written once. On CUDA "matmul" is cuBLASLt where it applies (Kiln's
// library path) and "matmul_kernel" Kiln's generated kernel, so both are measured against the
// cuBLAS peaks and torch; "matmul_llm" has fixed LLM decode shapes. Not in the default run (a
// matmul of the CPU backend's default size is minutes of long double): kiln-bench --op
// matmul,matmul_kernel,matmul_gelu,matmul_residual,matmul_llm. Also the shared checks of the
// shaped cases (contractions here, convolutions in conv.cpp).
#include <cmath>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "codegen/families/contract.hpp"
#include "core/error.hpp"
#include "runtime/contract.hpp"
#include "runtime/ops.hpp"

namespace kiln::bench {

namespace {

std::int64_t gemm_side(std::uint64_t n) {
  std::int64_t s = std::int64_t(std::sqrt(double(n)));
  while (s > 1 && std::uint64_t(s) * std::uint64_t(s) > n) --s;
  return std::max<std::int64_t>(s, 1);
}

// A matmul [m, k] x [k, n] (+ the epilogue's bias of n elements along the rows): square from the
// elements of --size, or a fixed problem (LLM shapes).
struct GemmCase : ShapedCase {
  KernelSpec kernel;
  bool vendor = true;  // CUDA: cuBLASLt where it applies (false: Kiln's kernel always)
  std::int64_t m = 0, n = 0, k = 0;  // 0: square from the size
  bool residual = false;             // operand 2 is [m, n] (else a bias of n elements)

  struct Dims {
    std::int64_t m, n, k;
  };
  Dims dims(std::uint64_t size) const {
    if (m > 0) return {m, n, k};
    const std::int64_t s = gemm_side(size);
    return {s, s, s};
  }
  const KernelSpec& spec() const override { return kernel; }
  Shape operand_shape(std::size_t i, std::uint64_t size) const override {
    const Dims g = dims(size);
    return i == 0 ? Shape{g.m, g.k} : i == 1 ? Shape{g.k, g.n} : residual ? Shape{g.m, g.n} : Shape{g.n};
  }
  Shape output_shape(std::uint64_t size) const override { return {dims(size).m, dims(size).n}; }
  double flops(std::uint64_t size) const override {
    const Dims g = dims(size);
    return 2 * double(g.m) * double(g.n) * double(g.k);
  }
  Tensor run(const std::vector<Tensor>& inputs, const Tensor* out) const override {
    return run_contract_kernel("matmul", kernel, nullptr, inputs, {std::nullopt, vendor}, out, nullptr);
  }
  std::vector<std::string> torch_operands(std::uint64_t size) const override {
    const Dims g = dims(size);
    return {fmt::format("x0[:{0}].reshape({1}, {2})", g.m * g.k, g.m, g.k),
            fmt::format("x1[:{0}].reshape({1}, {2})", g.k * g.n, g.k, g.n),
            residual ? fmt::format("x2[:{0}].reshape({1}, {2})", g.m * g.n, g.m, g.n) : fmt::format("x2[:{}]", g.n)};
  }
  // A 70 x 70 x 70 problem (two tiles each way, K across the K step; a fixed problem as it is).
  std::uint64_t check_size() const override { return 70 * 70; }
  std::int64_t verify_leading(std::uint64_t) const override { return 4; }  // rows
};

enum class Epilogue { none, gelu, residual };
struct GemmPick {
  DType dtype;
  DType out;
  Epilogue epilogue;  // gelu: bias + GELU (tanh approximation); residual: + an [s, s] operand
  bool vendor;        // CUDA: cuBLASLt where it applies ("matmul"); false: Kiln's kernel ("matmul_kernel")
};
constexpr GemmPick kGemmPicks[] = {
    {DType::f32, DType::f32, Epilogue::none, true},       {DType::bf16, DType::bf16, Epilogue::none, true},
    {DType::f16, DType::f16, Epilogue::none, true},       {DType::s8, DType::s32, Epilogue::none, true},
    {DType::bf16, DType::bf16, Epilogue::gelu, true},     {DType::bf16, DType::bf16, Epilogue::residual, true},
    {DType::f32, DType::f32, Epilogue::none, false},      {DType::bf16, DType::bf16, Epilogue::none, false},
};
constexpr const char* kGelu =
    "0.5 * (x + y) * (1 + tanh(0.7978845608 * ((x + y) + 0.044715 * (x + y) * (x + y) * (x + y))))";

}  // namespace

std::vector<BenchCase> gemm_cases() {
  std::vector<BenchCase> out;
  for (const GemmPick& pick : kGemmPicks) {
    BenchCase b;
    b.kind = CaseKind::contract;
    const bool gelu = pick.epilogue == Epilogue::gelu, residual = pick.epilogue == Epilogue::residual;
    const Expr epi = parse_expr(gelu ? kGelu : "x + as_type(y, f32)", {DType::f32, gelu ? DType::f32 : pick.dtype});
    auto g = std::make_shared<GemmCase>();
    g->kernel = make_contract_spec(pick.dtype, pick.dtype, pick.out, pick.epilogue != Epilogue::none ? &epi : nullptr);
    g->vendor = pick.vendor;
    g->residual = residual;
    b.shaped = g;
    b.op = gelu ? "matmul_gelu" : residual ? "matmul_residual" : pick.vendor ? "matmul" : "matmul_kernel";
    b.name = pick.out == pick.dtype ? fmt::format("{}.{}", b.op, dtype_name(pick.dtype))
                                    : fmt::format("{}.{}_{}", b.op, dtype_name(pick.dtype), dtype_name(pick.out));
    b.expr = parse_expr("x", {pick.dtype}, b.name);
    b.expr_text = gelu       ? "gelu(a @ b + bias): [s,s] x [s,s], the epilogue fused"
                  : residual ? "a @ b + r: [s,s] x [s,s] + [s,s], the residual add fused"
                             : "a @ b: [s,s] x [s,s], s = sqrt(elements)";
    b.torch_fn = gelu       ? "return torch.nn.functional.gelu(torch.matmul({0}, {1}) + {2}, approximate='tanh')"
                 : residual ? "return torch.matmul({0}, {1}) + {2}"
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
    auto g = std::make_shared<GemmCase>();
    g->kernel = make_contract_spec(DType::bf16, DType::bf16, DType::bf16);
    g->m = l.m, g->n = l.n, g->k = l.k;
    b.shaped = g;
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

CheckResult check_shaped_case(const BenchCase& c, Device& dev) {
  // Every output of the case's small problem against the CPU backend.
  const std::uint64_t n = c.shaped->check_size();
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

CheckResult verify_shaped_sample(const BenchCase& c, std::uint64_t n, const std::vector<std::vector<std::byte>>& inputs,
                                 const Tensor& out) {
  // The leading rows (images) of the timed output against the CPU backend on the same operands.
  CheckResult r;
  try {
    const std::int64_t lead = std::min<std::int64_t>(c.shaped->verify_leading(n), out.shape()[0]);
    if (lead <= 0) {
      r.state = CheckResult::State::skipped;
      r.message = "too many products for the CPU reference; the check before timing ran every output of a small problem";
      return r;
    }
    Device& cpu = device("cpu");
    const auto dtypes = c.input_dtypes();
    std::vector<Tensor> ins;
    for (std::size_t k = 0; k < dtypes.size(); ++k)
      ins.push_back(Tensor::from_host(inputs[k].data(), inputs[k].size(), c.operand_shape(k, n), dtypes[k], cpu));
    ins[0] = ins[0].slice(0, 0, lead);
    for (std::size_t k = 1; k < ins.size(); ++k)  // operands laid out as the output (a residual)
      if (c.shaped->sliced_with_output(k) && ins[k].rank() == out.rank() && ins[k].shape()[0] == out.shape()[0])
        ins[k] = ins[k].slice(0, 0, lead);
    const Tensor want = c.run(ins);
    r = compare_outputs(c, out.to(cpu).slice(0, 0, lead).contiguous(), want, {});
    if (r.state == CheckResult::State::fail) r.message = "timed output, leading rows: " + r.message;
  } catch (const Error& e) {
    r.state = CheckResult::State::error;
    r.message = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  }
  return r;
}

}  // namespace kiln::bench
