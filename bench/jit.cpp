// Traced-function cases: functions written op by op with Kiln's tensor ops, timed twice on the same
// device — "jit": kiln::jit's fused kernels; "jit_eager": the same trace replayed launch by launch
// without fusion (the kernels an eager call runs, minus its host-side typing) — so their ratio is
// what fusion buys. Both write the result into the harness's output (JitFunction::call's |into|).
// Bytes: every argument read once and every result written once (the fused ideal), so %bw of the
// fused cases is against the copy peak. With --peer torch, the same function in PyTorch (eager
// and torch.compile). Rows of 4096 for the row patterns. Not in the default run:
// kiln-bench --op jit,jit_eager. kiln-bench plan prints what each function fuses into.
#include <cmath>
#include <functional>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "runtime/kiln.hpp"

namespace kiln::bench {

namespace {

constexpr std::int64_t kRow = 4096;

using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct Function {
  const char* name;
  int arity;
  int results;
  bool rows;           // [n / 4096, 4096]; operands after the first of the row's size (gamma, beta)
  int row_operands;    // rows: how many leading operands are [rows, 4096] (the rest are [4096])
  const char* text;    // for the report
  const char* torch;   // the peer's body over {0}, {1}, ...
  Fn fn;
};

std::vector<Tensor> one(Tensor t) { return {std::move(t)}; }

const std::vector<Function>& functions() {
  static const std::vector<Function> f = {
      {"chain11", 2, 1, false, 0, "tanh(x * 1.5 + y) * sigmoid(x - y) + exp(-abs(x)) * 0.25 (11 ops)",
       "return torch.tanh({0} * 1.5 + {1}) * torch.sigmoid({0} - {1}) + torch.exp(-torch.abs({0})) * 0.25",
       [](const std::vector<Tensor>& a) {
         return one(tanh(a[0] * 1.5 + a[1]) * sigmoid(a[0] - a[1]) + exp(-abs(a[0])) * 0.25);
       }},
      {"gelu", 1, 1, false, 0, "x * 0.5 * (erf(x / sqrt(2)) + 1) (5 ops)",
       "return torch.nn.functional.gelu({0})",
       [](const std::vector<Tensor>& a) { return one(a[0] * 0.5 * (erf(a[0] * M_SQRT1_2) + 1.0)); }},
      {"silu", 1, 1, false, 0, "x / (exp(-x) + 1) (4 ops)", "return torch.nn.functional.silu({0})",
       [](const std::vector<Tensor>& a) { return one(a[0] / (exp(-a[0]) + 1.0)); }},
      {"layer_norm", 3, 1, true, 1, "layer norm op by op: mean, x - mean, variance, rsqrt, scale, shift",
       "return torch.nn.functional.layer_norm({0}, ({3},), {1}, {2}, 1e-5)",
       [](const std::vector<Tensor>& a) {
         const double n = double(a[0].shape().back());
         const Tensor d = a[0] - sum(a[0], {-1}, true) / n;
         return one(d * rsqrt(sum(d * d, {-1}, true) / n + 1e-5) * a[1] + a[2]);
       }},
      {"softmax", 1, 1, true, 1, "softmax op by op: exp(x - max) / sum", "return torch.softmax({0}, -1)",
       [](const std::vector<Tensor>& a) {
         const Tensor e = exp(a[0] - reduce_max(a[0], {-1}, true));
         return one(e / sum(e, {-1}, true));
       }},
      {"adam", 4, 3, false, 0, "Adam update of p, m, v from g (3 results)",
       "m2 = {2} * 0.9 + {1} * 0.1\nv2 = {3} * 0.999 + {1} * {1} * 0.001\n"
       "return {0} - (m2 / 0.1) * 1e-3 / (torch.sqrt(v2 / 0.001) + 1e-8)",
       [](const std::vector<Tensor>& a) {
         const Tensor m2 = a[2] * 0.9 + a[1] * 0.1;
         const Tensor v2 = a[3] * 0.999 + a[1] * a[1] * 0.001;
         return std::vector<Tensor>{a[0] - (m2 / 0.1) * 1e-3 / (sqrt(v2 / 0.001) + 1e-8), m2, v2};
       }},
  };
  return f;
}

struct JitCase : ShapedCase {
  const Function* f = nullptr;
  KernelSpec kernel;  // names the dtypes: a map over the arguments' dtypes
  JitFunction jit;
  mutable JitStats last;

  JitCase(const Function& fn, DType t, bool fused) : f(&fn), jit(JitOptions{fn.name, fused}) {
    Expr e;
    NodeId root = e.input(0, t);
    for (int k = 1; k < fn.arity; ++k) root = e.apply(Op::add, {root, e.input(k, t)});
    e.set_root(root);
    kernel = make_map_spec(e, t);
  }
  const KernelSpec& spec() const override { return kernel; }
  Shape shape(std::uint64_t n) const {
    if (!f->rows) return {std::int64_t(n)};
    return {std::max<std::int64_t>(std::int64_t(n) / kRow, 1), kRow};
  }
  Shape operand_shape(std::size_t k, std::uint64_t n) const override {
    if (f->rows && int(k) >= f->row_operands) return {kRow};
    return shape(n);
  }
  Shape output_shape(std::uint64_t n) const override { return shape(n); }
  double flops(std::uint64_t) const override { return 0; }
  Tensor run(const std::vector<Tensor>& inputs, const Tensor* out) const override {
    std::vector<Tensor> into(std::size_t(f->results));
    if (out) into[0] = *out;
    std::vector<Tensor> r = jit.call(inputs, f->fn, out ? &into : nullptr);
    last = jit.stats();
    return r[0];
  }
  std::vector<std::string> torch_operands(std::uint64_t n) const override {
    std::vector<std::string> x;
    for (int k = 0; k < f->arity; ++k) {
      const Shape s = operand_shape(std::size_t(k), n);
      x.push_back(s.size() == 2 ? fmt::format("x{}[:{}].reshape({}, {})", k, s[0] * s[1], s[0], s[1])
                                : fmt::format("x{}[:{}]", k, s[0]));
    }
    x.push_back(std::to_string(kRow));
    return x;
  }
  std::uint64_t check_size() const override { return f->rows ? 4 * kRow : 4099; }
  std::int64_t verify_leading(std::uint64_t n) const override {
    return std::min<std::int64_t>(shape(n)[0], f->rows ? 4 : 4096);
  }
  bool sliced_with_output(std::size_t k) const override { return !f->rows || int(k) < f->row_operands; }
  int results() const override { return f->results; }
  std::string note() const override {
    if (!last.launches_traced) return {};
    return fmt::format("{} launches traced, {} per call ({})", last.launches_traced, last.launches_per_call,
                       last.fused ? "fused" : "op by op");
  }
};

}  // namespace

std::vector<BenchCase> jit_cases() {
  std::vector<BenchCase> out;
  for (bool fused : {true, false})
    for (const Function& f : functions())
      for (DType t : {DType::f32, DType::bf16}) {
        if (t == DType::bf16 && f.results > 1) continue;  // Adam's state stays f32
        BenchCase b;
        b.kind = CaseKind::jit;
        b.shaped = std::make_shared<JitCase>(f, t, fused);
        b.op = fused ? "jit" : "jit_eager";
        b.name = fmt::format("{}.{}.{}", b.op, f.name, dtype_name(t));
        b.expr = parse_expr("x", {t}, b.name);
        b.expr_text = f.text;
        b.torch_fn = f.torch;
        b.ranges.assign(std::size_t(f.arity), InputRange{-3, 3});
        if (f.results > 1) b.ranges[3] = InputRange{0.01, 1};  // v >= 0
        // Fused and op by op round alike except where a fused kernel keeps a value in registers the
        // eager path stores (bf16 intermediates are stored and reloaded as bf16 both ways).
        b.atol = t == DType::bf16 ? 2e-2 : 1e-5;
        b.rtol = t == DType::bf16 ? 2e-2 : 1e-5;
        out.push_back(std::move(b));
      }
  return out;
}

int print_jit_plans(Device& dev, const std::string& filter, std::uint64_t elements) {
  for (const Function& f : functions()) {
    if (std::string(f.name).find(filter) == std::string::npos) continue;
    JitCase c(f, DType::f32, true);
    std::vector<Tensor> args;
    for (int k = 0; k < f.arity; ++k) args.push_back(Tensor::empty(c.operand_shape(std::size_t(k), elements), DType::f32, dev));
    fmt::print("== {}: {}\n{}\n", f.name, f.text, c.jit.plan(args, f.fn));
  }
  return 0;
}

}  // namespace kiln::bench
