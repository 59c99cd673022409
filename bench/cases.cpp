// The benchmark cases, their random inputs and the correctness check before timing.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "codegen/emit.hpp"
#include "codegen/family.hpp"
#include "codegen/eval.hpp"
#include "core/half.hpp"
#include "codegen/manifest.hpp"
#include "codegen/spec.hpp"
#include "core/error.hpp"
#include "runtime/contract.hpp"
#include "runtime/ops.hpp"
#include "runtime/reduce.hpp"
#include "runtime/rows.hpp"
#include "runtime/scan.hpp"

namespace kiln::bench {

const char* kind_name(CaseKind k) {
  switch (k) {
    case CaseKind::copy: return "copy";
    case CaseKind::op: return "op";
    case CaseKind::fused: return "fused";
    case CaseKind::peak: return "peak";
    case CaseKind::reduce: return "reduce";
    case CaseKind::rows: return "rows";
    case CaseKind::scan: return "scan";
    case CaseKind::contract: return "contract";
    case CaseKind::jit: return "jit";
  }
  return "?";
}

const char* check_state_name(CheckResult::State s) {
  switch (s) {
    case CheckResult::State::pass: return "pass";
    case CheckResult::State::fail: return "FAIL";
    case CheckResult::State::skipped: return "skipped";
    case CheckResult::State::error: return "ERROR";
  }
  return "?";
}

KernelSpec BenchCase::spec() const {
  if (shaped) return shaped->spec();
  if (manifest_spec) return *manifest_spec;
  if (combiner) return make_reduce_spec(*combiner, expr);
  if (axis_spec) return *axis_spec;
  return make_map_spec(expr, expr.dtype(expr.root()));
}

DType BenchCase::output_dtype() const {
  return combiner || axis_spec || shaped ? spec().output : expr.dtype(expr.root());
}

Shape BenchCase::operand_shape(std::size_t k, std::uint64_t n) const {
  return shaped ? shaped->operand_shape(k, n) : input_shape(n);
}

std::uint64_t BenchCase::elements(std::uint64_t n) const {
  return shaped ? std::uint64_t(shape_numel(shaped->output_shape(n))) : n;
}

double BenchCase::flops(std::uint64_t n) const {
  return shaped ? shaped->flops(n) : flops_per_element() * double(n);
}

Shape BenchCase::input_shape(std::uint64_t n) const {
  const std::int64_t m = std::int64_t(n);
  if (axis_spec) return m % row_len == 0 ? Shape{m / row_len, row_len} : Shape{1, m};
  if (!combiner || reduce_axes == ReduceAxes::all || m % kReduceRow != 0) return {m};
  return reduce_axes == ReduceAxes::last ? Shape{m / kReduceRow, kReduceRow} : Shape{kReduceRow, m / kReduceRow};
}

Shape BenchCase::output_shape(std::uint64_t n) const {
  if (shaped) return shaped->output_shape(n);
  if (axis_spec) {  // logsumexp drops the axis; the other row ops and the scans keep it
    const Shape in = input_shape(n);
    const bool drops = axis_spec->family == "rows" && !rows_op_info(spec_rows_op(*axis_spec)).keeps_axis;
    return drops ? Shape{in[0]} : in;
  }
  if (!combiner) return {std::int64_t(n)};
  const Shape in = input_shape(n);
  if (in.size() == 1) return {};
  return {reduce_axes == ReduceAxes::last ? in[0] : in[1]};
}

Tensor BenchCase::run(const std::vector<Tensor>& inputs, const Tensor* out) const {
  if (shaped) return shaped->run(inputs, out);
  if (axis_spec && axis_spec->family == "scan")
    return run_scan_kernel(axis_spec->attribute("op"), *axis_spec, nullptr, inputs, {-1, false}, out, nullptr);
  if (axis_spec) return run_rows_kernel(axis_spec->attribute("op"), *axis_spec, nullptr, inputs, {}, out, nullptr);
  if (!combiner) return map(expr, inputs, std::nullopt, out);
  const Shape in = inputs.empty() ? Shape{} : inputs[0].shape();
  std::vector<int> axes;
  if (in.size() == 2) axes = {reduce_axes == ReduceAxes::last ? 1 : 0};
  if (manifest_spec)  // the manifest's kernel as it is (epilogue, output and tie break included)
    return run_reduce_kernel("reduce", *manifest_spec, nullptr, inputs, axes, false, out, nullptr);
  ReduceOptions o;
  o.axes = axes;
  return reduce(*combiner, expr, inputs, o, out);
}

// Bytes and FLOPs come from the family's cost model (codegen/family.hpp).
std::uint64_t BenchCase::bytes(std::uint64_t n) const {
  const KernelSpec k = spec();
  if (shaped) {  // each operand read once, the output written once (the ideal)
    std::uint64_t b = std::uint64_t(shape_numel(output_shape(n))) * dtype_size(k.output) * std::uint64_t(shaped->results());
    for (std::size_t i = 0; i < k.inputs.size(); ++i)
      b += std::uint64_t(shape_numel(operand_shape(i, n))) * dtype_size(k.inputs[i]);
    return b;
  }
  return std::uint64_t(family_of(k).cost(k).bytes_per_element * double(n));
}

std::vector<DType> BenchCase::match_dtypes() const {
  if (conf) {
    std::vector<DType> d{conf->dtype};
    if (conf->op == Op::as_type) d.push_back(conf->cast_to);
    return d;
  }
  std::vector<DType> d = input_dtypes();
  d.push_back(output_dtype());
  return d;
}

double BenchCase::flops_per_element() const {
  const KernelSpec k = spec();
  return family_of(k).cost(k).flops_per_element;
}

namespace {

struct OpPick {
  Op op;
  DType dtype;
  DType cast_to;
};

// The single-op kernels timed by default (picked from the conformance cases).
constexpr OpPick kOpPicks[] = {
    {Op::add, DType::f32, DType::f32},         {Op::multiply, DType::f16, DType::f16},
    {Op::exp, DType::f32, DType::f32},         {Op::divide, DType::f32, DType::f32},
    {Op::as_type, DType::f32, DType::f16},     {Op::select, DType::f32, DType::f32},
    {Op::bitwise_xor, DType::s32, DType::s32}, {Op::less, DType::f32, DType::f32},
};

struct FusedPick {
  const char* name;
  const char* text;
  int inputs;  // all f32
};

constexpr FusedPick kFusedPicks[] = {
    {"fused.mix.f32", "x * sigmoid(x) + y * 0.5 - abs(x) / (1 + y * y)", 2},
    {"fused.gelu_tanh.f32", "0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))", 1},
};

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Reductions timed by default (issue 9's list): sum and reduce_max over the last axis, the first
// axis and all elements in f32 and bf16; argmax; a fused sum of squares.
struct ReducePick {
  Combiner combiner;
  const char* prologue;
  DType dtype;
  ReduceAxes axes;
};
constexpr ReducePick kReducePicks[] = {
    {Combiner::sum, "x", DType::f32, ReduceAxes::last},   {Combiner::sum, "x", DType::f32, ReduceAxes::first},
    {Combiner::sum, "x", DType::f32, ReduceAxes::all},    {Combiner::sum, "x", DType::bf16, ReduceAxes::last},
    {Combiner::sum, "x", DType::bf16, ReduceAxes::first}, {Combiner::sum, "x", DType::bf16, ReduceAxes::all},
    {Combiner::max, "x", DType::f32, ReduceAxes::last},   {Combiner::max, "x", DType::f32, ReduceAxes::first},
    {Combiner::max, "x", DType::f32, ReduceAxes::all},    {Combiner::max, "x", DType::bf16, ReduceAxes::last},
    {Combiner::max, "x", DType::bf16, ReduceAxes::all},   {Combiner::argmax, "x", DType::f32, ReduceAxes::last},
    {Combiner::sum, "x * x", DType::f32, ReduceAxes::last},
};

// Row ops and scans timed by default (issue 12's list): over rows of 4096 in f32 and bf16, softmax
// and cumulative_sum also over rows of 1k, 8k, 32k and 128k.
struct RowsPick {
  RowsOp op;
  DType dtype;
  std::int64_t row;
};
constexpr RowsPick kRowsPicks[] = {
    {RowsOp::softmax, DType::f32, 4096},    {RowsOp::softmax, DType::bf16, 4096},  {RowsOp::softmax, DType::f32, 1024},
    {RowsOp::softmax, DType::f32, 8192},    {RowsOp::softmax, DType::f32, 32768},  {RowsOp::softmax, DType::f32, 131072},
    {RowsOp::log_softmax, DType::f32, 4096}, {RowsOp::layer_norm, DType::f32, 4096}, {RowsOp::layer_norm, DType::bf16, 4096},
    {RowsOp::rms_norm, DType::f32, 4096},   {RowsOp::rms_norm, DType::bf16, 4096},
    // Short rows: a warp (subgroup) each.
    {RowsOp::softmax, DType::f32, 128},     {RowsOp::layer_norm, DType::bf16, 512},
};
// PyTorch's row ops, by RowsOp: the peer's body over x0 reshaped to [rows, n] ({0}), n ({1}) and
// x1 reshaped ({2}).
constexpr const char* kTorchRows[] = {
    "return torch.softmax({0}, dim=-1)", "return torch.log_softmax({0}, dim=-1)", "return torch.logsumexp({0}, dim=-1)",
    "return torch.nn.functional.layer_norm({0}, ({1},), eps=1e-5)", "return torch.nn.functional.rms_norm({0}, ({1},), eps=1e-5)"};
// The fused row kernels timed by default: the pre-norm residual stream (h = x + r and rms_norm(h),
// two outputs) and a masked softmax (a pred mask of x's shape).
struct FusedRowsPick {
  const char* name;
  RowsOp op;
  DType dtype;
  bool residual;  // else a masked softmax
  const char* torch;
};
constexpr FusedRowsPick kFusedRowsPicks[] = {
    {"add_rms_norm", RowsOp::rms_norm, DType::f32, true,
     "h = {0} + {2}\nreturn torch.nn.functional.rms_norm(h, ({1},), eps=1e-5), h"},
    {"add_rms_norm", RowsOp::rms_norm, DType::bf16, true,
     "h = {0} + {2}\nreturn torch.nn.functional.rms_norm(h, ({1},), eps=1e-5), h"},
    {"masked_softmax", RowsOp::softmax, DType::f32, false,
     "return torch.softmax({0}.masked_fill({2} == 0, float('-inf')), dim=-1)"},
};
struct ScanPick {
  Combiner combiner;
  DType dtype;
  std::int64_t row;
};
constexpr ScanPick kScanPicks[] = {
    {Combiner::sum, DType::f32, 1024},  {Combiner::sum, DType::f32, 4096},   {Combiner::sum, DType::f32, 8192},
    {Combiner::sum, DType::f32, 32768}, {Combiner::sum, DType::f32, 131072}, {Combiner::sum, DType::bf16, 4096},
    {Combiner::max, DType::f32, 4096},
};

const char* axes_name(ReduceAxes a) { return a == ReduceAxes::last ? "last" : a == ReduceAxes::first ? "first" : "all"; }

// Whether |dev| can run |c| (its dtypes and the emitter's target), with the reason if not.
bool device_supports(const BenchCase& c, Device& dev, std::string* why) {
  if (dev.backend() == Backend::cpu) return true;
  const Expr& expr = c.expr;
  std::vector<DType> used = expr.input_dtypes();
  used.push_back(c.output_dtype());
  const auto& ds = dev.info().dtypes;
  for (DType t : used)
    if (std::find(ds.begin(), ds.end(), t) == ds.end()) {
      *why = fmt::format("{} does not support dtype {}", dev.id(), dtype_name(t));
      return false;
    }
  return target_supports(c.spec(), dev.backend() == Backend::cuda ? Target::cuda : Target::glsl, why);
}

}  // namespace

// Element-wise comparison with an explicit tolerance (copy and fused cases).
CheckResult compare_outputs(const BenchCase& c, const Tensor& got, const Tensor& want,
                            const std::vector<Tensor>& cpu_inputs) {
  CheckResult r;
  const DType t = got.dtype();
  const auto g = got.to_host(), w = want.to_host();
  const std::size_t es = dtype_size(t);
  std::int64_t bad = 0;
  std::string first;
  std::vector<std::vector<std::byte>> ins;
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    const double x = scalar_to_double(load_scalar(t, g.data() + i * es), t);
    const double y = scalar_to_double(load_scalar(t, w.data() + i * es), t);
    bool same;
    if (std::isnan(x) || std::isnan(y)) same = std::isnan(x) && std::isnan(y);
    else if (std::isinf(x) || std::isinf(y)) same = x == y;
    else same = std::fabs(x - y) <= c.atol + c.rtol * std::fabs(y);
    if (same) continue;
    if (++bad > 3) continue;
    if (ins.empty())
      for (const Tensor& in : cpu_inputs) ins.push_back(in.to_host());
    std::string args;
    for (std::size_t k = 0; k < ins.size(); ++k) {
      const DType it = cpu_inputs[k].dtype();
      args += fmt::format("{}{}", k ? ", " : "", scalar_to_double(load_scalar(it, ins[k].data() + i * dtype_size(it)), it));
    }
    first += fmt::format("  [{}] f({}) = {:.9g}, want {:.9g}\n", i, args, x, y);
  }
  if (bad) {
    r.state = CheckResult::State::fail;
    r.message = fmt::format("{}: {} of {} elements differ (atol {}, rtol {})\n{}", c.name, bad, got.numel(),
                            c.atol, c.rtol, first);
  }
  return r;
}

std::vector<std::byte> random_input(DType t, InputRange range, std::uint64_t n, std::uint64_t seed) {
  std::vector<std::byte> out(n * dtype_size(t));
  std::uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
  const double span = range.hi - range.lo;
  const double tiny = std::max(1e-3, 1e-4 * std::fabs(span));
  std::byte* p = out.data();
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t bits = splitmix(s);
    if (t == DType::pred) {
      p[i] = std::byte(bits & 1);
      continue;
    }
    if (!is_float(t)) {
      const std::uint64_t v = bits ? bits : 1;  // non-zero in every width below
      const std::uint64_t w = (v & 0xFF) ? v : (v | 1);
      std::memcpy(p + i * dtype_size(t), &w, dtype_size(t));  // little endian: the low bytes
      continue;
    }
    double v = range.lo + span * (double(bits >> 11) * 0x1.0p-53);
    if (std::fabs(v) < tiny) v = v < 0 ? -1 : 1;
    switch (t) {
      case DType::f16: { const std::uint16_t h = f32_to_f16_bits(float(v)); std::memcpy(p + 2 * i, &h, 2); break; }
      case DType::bf16: { const std::uint16_t h = f32_to_bf16_bits(float(v)); std::memcpy(p + 2 * i, &h, 2); break; }
      case DType::f32: { const float f = float(v); std::memcpy(p + 4 * i, &f, 4); break; }
      default: std::memcpy(p + 8 * i, &v, 8); break;
    }
  }
  return out;
}

std::vector<std::vector<std::byte>> case_inputs(const BenchCase& c, std::uint64_t n) {
  std::vector<std::vector<std::byte>> out;
  const auto dtypes = c.input_dtypes();
  if (!c.conf) {
    for (std::size_t k = 0; k < dtypes.size(); ++k)
      out.push_back(random_input(dtypes[k], c.ranges[k], std::uint64_t(shape_numel(c.operand_shape(k, n))), 17 + k));
    return out;
  }
  // The conformance operands (2^20 + 7 values where the op is well defined), tiled to |n|.
  conformance::Case cc = *c.conf;
  cc.shape = conformance::ShapeClass::large;
  const std::vector<Tensor> ops = conformance::make_operands(cc, 17);
  for (std::size_t k = 0; k < ops.size(); ++k) {
    const DType t = ops[k].dtype();
    const std::size_t es = dtype_size(t);
    std::vector<std::byte> src = ops[k].to_host();
    if (t != DType::pred) {
      // No exact zeros (a zero page flatters some memory systems): take the previous non-zero value.
      const std::size_t m = src.size() / es;
      std::vector<std::byte> last(es, std::byte{0});
      for (int pass = 0; pass < 2; ++pass)
        for (std::size_t i = 0; i < m; ++i) {
          std::byte* v = src.data() + i * es;
          if (std::any_of(v, v + es, [](std::byte b) { return b != std::byte{0}; })) std::copy(v, v + es, last.begin());
          else if (std::any_of(last.begin(), last.end(), [](std::byte b) { return b != std::byte{0}; }))
            std::copy(last.begin(), last.end(), v);
        }
    }
    std::vector<std::byte> data(n * es);
    for (std::size_t off = 0; off < data.size(); off += src.size())
      std::memcpy(data.data() + off, src.data(), std::min(src.size(), data.size() - off));
    out.push_back(std::move(data));
  }
  return out;
}

std::vector<BenchCase> bench_cases() {
  std::vector<BenchCase> cases;
  {
    BenchCase copy;
    copy.name = "copy.f32";
    copy.kind = CaseKind::copy;
    copy.op = "copy";
    copy.in_default = true;
    copy.expr_text = "x";
    copy.expr = parse_expr(copy.expr_text, {DType::f32}, "copy");
    copy.ranges = {{-1e4, 1e4}};
    cases.push_back(std::move(copy));
  }
  auto is_pick = [](const conformance::Case& c) {
    return std::any_of(std::begin(kOpPicks), std::end(kOpPicks), [&](const OpPick& p) {
      return p.op == c.op && p.dtype == c.dtype && p.cast_to == c.cast_to;
    });
  };
  // Every op x dtype (x target dtype for as_type) of the conformance suite; the picks first.
  std::vector<BenchCase> rest;
  for (const conformance::Case& cc : conformance::all_cases()) {
    if (cc.shape != conformance::ShapeClass::large) continue;
    BenchCase b;
    b.kind = CaseKind::op;
    b.op = std::string(op_info(cc.op).name);
    b.conf = cc;
    b.name = cc.name();
    b.name = b.name.substr(0, b.name.rfind('.'));  // "add.f32.large" -> "add.f32"
    b.expr = single_op_expr(cc.op, cc.dtype, cc.cast_to);
    b.expr_text = b.expr.to_string();
    b.in_default = is_pick(cc);
    (b.in_default ? cases : rest).push_back(std::move(b));
  }
  for (const OpPick& pick : kOpPicks) {
    const bool found = std::any_of(cases.begin(), cases.end(), [&](const BenchCase& b) {
      return b.conf && b.conf->op == pick.op && b.conf->dtype == pick.dtype && b.conf->cast_to == pick.cast_to;
    });
    if (!found)
      fail(ErrorCode::internal, fmt::format("kiln-bench: no conformance case for {} {}", op_info(pick.op).name,
                                            dtype_name(pick.dtype)));
  }
  for (const FusedPick& pick : kFusedPicks) {
    BenchCase b;
    b.kind = CaseKind::fused;
    b.op = "fused";
    b.in_default = true;
    b.name = pick.name;
    b.expr_text = pick.text;
    b.expr = parse_expr(pick.text, std::vector<DType>(std::size_t(pick.inputs), DType::f32), pick.name);
    b.ranges.assign(std::size_t(pick.inputs), InputRange{-3, 3});
    b.atol = 1e-5;  // several rounded ops in a row: looser than any single op
    b.rtol = 1e-4;
    cases.push_back(std::move(b));
  }
  for (const ReducePick& pick : kReducePicks) {
    BenchCase b;
    b.kind = CaseKind::reduce;
    b.combiner = pick.combiner;
    b.reduce_axes = pick.axes;
    b.op = std::string(combiner_info(pick.combiner).op);
    b.in_default = true;
    const bool fused = std::string_view(pick.prologue) != "x";
    b.name = fmt::format("{}{}.{}.{}", fused ? "fused_" : "", b.op, axes_name(pick.axes), dtype_name(pick.dtype));
    b.expr = parse_expr(pick.prologue, {pick.dtype}, b.name);
    b.expr_text = fmt::format("{}({}) over {}", b.op, pick.prologue,
                              pick.axes == ReduceAxes::all ? "all elements" : pick.axes == ReduceAxes::last ? "rows of 4096"
                                                                                                         : "columns of 4096");
    // Sums of positive values (no cancellation): relative error of the order of the tree depth;
    // bf16 results round to 8 bits. max and argmax are exact.
    const bool sums = pick.combiner == Combiner::sum;
    b.ranges = {sums ? InputRange{0.5, 1.5} : InputRange{-1e3, 1e3}};
    b.rtol = !sums ? 0 : pick.dtype == DType::bf16 ? 1e-2 : 2e-4;
    cases.push_back(std::move(b));
  }
  for (const RowsPick& pick : kRowsPicks) {
    BenchCase b;
    b.kind = CaseKind::rows;
    b.axis_spec = make_rows_spec(pick.op, pick.dtype);
    b.torch_fn = kTorchRows[int(pick.op)];
    b.row_len = pick.row;
    b.op = std::string(rows_op_info(pick.op).name);
    b.in_default = true;
    b.name = fmt::format("{}.{}.{}", b.op, pick.row, dtype_name(pick.dtype));
    b.expr = parse_expr("x", {pick.dtype}, b.name);
    b.expr_text = fmt::format("{} over rows of {}", b.op, pick.row);
    b.ranges = {InputRange{-8, 8}};
    // Sums over the row in another order than the CPU's long double: relative error of the order
    // of the row's length times f32's rounding; bf16 results round to 8 bits.
    b.atol = pick.dtype == DType::bf16 ? 1e-2 : 1e-6;
    b.rtol = pick.dtype == DType::bf16 ? 2e-2 : 1e-4;
    cases.push_back(std::move(b));
  }
  for (const FusedRowsPick& pick : kFusedRowsPicks) {
    BenchCase b;
    b.kind = CaseKind::rows;
    RowsFusion f;
    if (pick.residual) f.prologue = parse_expr("x + y", {pick.dtype, pick.dtype});
    f.residual = pick.residual;
    b.axis_spec = make_rows_spec(pick.op, pick.dtype, 0, pick.residual ? RowsBias::none : RowsBias::mask, false, &f);
    b.torch_fn = pick.torch;
    b.row_len = 4096;
    b.op = pick.name;
    b.in_default = true;
    b.name = fmt::format("{}.4096.{}", b.op, dtype_name(pick.dtype));
    b.expr = parse_expr("x", {pick.dtype}, b.name);
    b.expr_text = pick.residual ? "h = x + r, rms_norm(h): two outputs, rows of 4096" : "softmax(x) with a pred mask, rows of 4096";
    b.ranges = {InputRange{-8, 8}, InputRange{-8, 8}};
    b.atol = pick.dtype == DType::bf16 ? 1e-2 : 1e-6;
    b.rtol = pick.dtype == DType::bf16 ? 2e-2 : 1e-4;
    cases.push_back(std::move(b));
  }
  for (const ScanPick& pick : kScanPicks) {
    BenchCase b;
    b.kind = CaseKind::scan;
    b.axis_spec = make_scan_spec(pick.combiner, pick.dtype);
    b.torch_fn = pick.combiner == Combiner::sum ? "return torch.cumsum({0}, dim=-1)" : "return torch.cummax({0}, dim=-1).values";
    b.row_len = pick.row;
    b.op = std::string(scan_op_info(pick.combiner).name);
    b.in_default = true;
    b.name = fmt::format("{}.{}.{}", b.op, pick.row, dtype_name(pick.dtype));
    b.expr = parse_expr("x", {pick.dtype}, b.name);
    b.expr_text = fmt::format("{} along rows of {}", b.op, pick.row);
    // Positive values: running sums grow, no cancellation; the blocked order's error is a few
    // dozen units of f32 relative to the sum (bf16 outputs round to 8 bits).
    b.ranges = {InputRange{0.5, 1.5}};
    b.rtol = pick.dtype == DType::bf16 ? 1e-2 : 1e-5;
    cases.push_back(std::move(b));
  }
  for (BenchCase& b : gemm_cases()) cases.push_back(std::move(b));
  for (BenchCase& b : conv_cases()) cases.push_back(std::move(b));
  for (BenchCase& b : jit_cases()) cases.push_back(std::move(b));
  for (BenchCase& b : rest) cases.push_back(std::move(b));
  return cases;
}

namespace {

// Tolerances of user kernels: several rounded ops in a row (as the catalogue's fused cases), wider
// for 16-bit results and for reductions (their order differs from the CPU backend's).
void user_tolerance(BenchCase& b, DType out) {
  // Any 16-bit float on the way (an input, an intermediate, the output) rounds to 8 or 11 bits.
  bool narrow = out == DType::f16 || out == DType::bf16;
  for (const Node& n : b.expr.nodes()) narrow = narrow || n.dtype == DType::f16 || n.dtype == DType::bf16;
  b.atol = narrow ? 1e-2 : 1e-5;
  b.rtol = narrow ? 2e-2 : b.combiner ? 1e-3 : 1e-4;
}

}  // namespace

BenchCase expr_case(const std::string& text, const std::vector<DType>& dtypes) {
  BenchCase b;
  b.kind = CaseKind::fused;
  b.op = "fused";
  b.in_default = true;
  b.name = "expr";
  b.origin = "--expr";
  b.expr_text = text;
  b.expr = parse_expr(text, dtypes, "--expr");
  b.ranges.assign(dtypes.size(), InputRange{-3, 3});
  user_tolerance(b, b.output_dtype());
  return b;
}

std::vector<BenchCase> manifest_cases(const std::string& path) {
  const Manifest m = read_manifest(path);
  std::vector<BenchCase> out;
  for (const ManifestKernel& k : m.kernels) {
    BenchCase b;
    b.in_default = true;
    b.origin = k.origin;
    b.name = k.aliases.empty() ? k.name : k.aliases.front();
    b.expr = k.spec.expr;
    b.ranges.assign(k.spec.inputs.size(), InputRange{-3, 3});
    if (k.spec.family == "reduce") {
      b.kind = CaseKind::reduce;
      b.combiner = spec_combiner(k.spec);
      b.op = std::string(combiner_info(*b.combiner).op);
      b.manifest_spec = k.spec;
      b.expr_text = fmt::format("{} of {}{} over rows of {}", b.op, k.spec.expr.to_string(),
                                k.spec.epilogue.nodes().empty() ? "" : ", then " + k.spec.epilogue.to_string(),
                                kReduceRow);
    } else {
      b.kind = CaseKind::fused;
      b.op = "fused";
      b.expr_text = b.expr.to_string();
    }
    user_tolerance(b, k.spec.output);
    out.push_back(std::move(b));
  }
  return out;
}

BenchCase fma_peak_case(int steps) {
  BenchCase b;
  b.kind = CaseKind::peak;
  b.op = "peak";
  b.name = fmt::format("fma{}.f32", steps);
  Expr e;
  const NodeId x = e.input(0, DType::f32);
  const NodeId half = e.constant(0.5, DType::f32);
  NodeId t = x;
  // t = t * 0.5 + x: a dependent chain the compiler cannot fold without reassociating (IEEE
  // forbids it), |t| stays below 2 |x|.
  for (int i = 0; i < steps; ++i) t = e.apply(Op::add, {e.apply(Op::multiply, {t, half}), x});
  e.set_root(t);
  b.expr = e;
  b.expr_text = fmt::format("t = x; {} times: t = t * 0.5 + x", steps);
  b.ranges = {{-1, 1}};
  b.atol = 1e-5;
  b.rtol = 1e-5;
  return b;
}

std::vector<const BenchCase*> select_cases(const std::vector<BenchCase>& all, const Selection& sel) {
  const bool any_filter = !sel.ops.empty() || !sel.dtypes.empty() || !sel.filter.empty();
  std::vector<const BenchCase*> out;
  for (const BenchCase& c : all) {
    if (!any_filter && !sel.all && !c.in_default) continue;
    if (!sel.ops.empty() && std::find(sel.ops.begin(), sel.ops.end(), c.op) == sel.ops.end()) continue;
    if (!sel.dtypes.empty()) {
      const auto ds = c.match_dtypes();
      if (std::none_of(sel.dtypes.begin(), sel.dtypes.end(),
                       [&](DType t) { return std::find(ds.begin(), ds.end(), t) != ds.end(); }))
        continue;
    }
    if (!sel.filter.empty() && c.name.find(sel.filter) == std::string::npos) continue;
    out.push_back(&c);
  }
  return out;
}

bool case_supported(const BenchCase& c, Device& dev, std::string* why) {
  if (c.conf) return conformance::supported(*c.conf, dev, why);
  return device_supports(c, dev, why);
}

CheckResult verify_sample(const BenchCase& c, std::uint64_t n, const std::vector<std::vector<std::byte>>& inputs,
                          const Tensor& out) {
  if (c.shaped) return verify_shaped_sample(c, n, inputs, out);
  CheckResult r;
  const auto x_elements = [&] {
    return inputs.empty() ? std::int64_t(0) : std::int64_t(inputs[0].size() / dtype_size(c.input_dtypes()[0]));
  };
  if (c.axis_spec && c.row_len > 0 && x_elements() % c.row_len == 0) {
    // The first and last rows against the CPU backend: every row would cost it seconds per case
    // at GPU sizes (long double rows).
    try {
      const auto dtypes = c.input_dtypes();
      const std::int64_t rows = x_elements() / c.row_len;
      const auto all_out = out.to_host();
      const std::int64_t out_per_row = rows > 0 ? out.numel() / rows : 0;
      const std::size_t oes = dtype_size(out.dtype());
      constexpr std::int64_t kRows = 32;
      for (const std::int64_t r0 : {std::int64_t(0), std::max<std::int64_t>(rows - kRows, kRows)}) {
        const std::int64_t k = std::min(kRows, rows - r0);
        if (k <= 0) break;  // fewer than 2 x 32 rows: the first pass had them all
        std::vector<Tensor> cpu_ins;
        for (std::size_t i = 0; i < dtypes.size(); ++i) {
          const std::size_t es = dtype_size(dtypes[i]);
          const std::int64_t elems = std::int64_t(inputs[i].size() / es);
          const bool per_row = elems == rows * c.row_len;  // x; a gamma or a bias of one row is whole
          const std::byte* src = inputs[i].data() + (per_row ? std::size_t(r0 * c.row_len) * es : 0);
          const std::size_t bytes = per_row ? std::size_t(k * c.row_len) * es : inputs[i].size();
          cpu_ins.push_back(Tensor::from_host(src, bytes, c.input_shape(bytes / es), dtypes[i], device("cpu")));
        }
        const Tensor want = c.run(cpu_ins);
        if (want.numel() != k * out_per_row) {
          r.state = CheckResult::State::error;
          r.message = fmt::format("timed output: {} rows give {} outputs, the device's {} per row", k, want.numel(), out_per_row);
          return r;
        }
        const Tensor got = Tensor::from_host(all_out.data() + std::size_t(r0 * out_per_row) * oes,
                                             std::size_t(k * out_per_row) * oes, want.shape(), out.dtype(), device("cpu"));
        r = compare_outputs(c, got, want, {});
        if (r.state != CheckResult::State::pass) {
          r.message = fmt::format("timed output, rows {}..{}: {}", r0, r0 + k - 1, r.message);
          return r;
        }
      }
    } catch (const Error& e) {
      r.state = CheckResult::State::error;
      r.message = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
    }
    return r;
  }
  if (c.combiner || c.axis_spec) {  // every output, against the CPU backend on the same inputs
    try {
      const auto dtypes = c.input_dtypes();
      std::vector<Tensor> cpu_ins;
      for (std::size_t k = 0; k < dtypes.size(); ++k)
        cpu_ins.push_back(Tensor::from_host(inputs[k].data(), inputs[k].size(), c.input_shape(inputs[k].size() / dtype_size(dtypes[k])),
                                            dtypes[k], device("cpu")));
      r = compare_outputs(c, out.to(device("cpu")), c.run(cpu_ins), {});
      if (r.state == CheckResult::State::fail) r.message = "timed output: " + r.message;
    } catch (const Error& e) {
      r.state = CheckResult::State::error;
      r.message = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
    }
    return r;
  }
  try {
    const std::uint64_t n = std::uint64_t(out.numel());
    const std::uint64_t want_samples = 4096;
    const std::uint64_t step = std::max<std::uint64_t>(1, n / want_samples);
    std::vector<std::uint64_t> idx;
    for (std::uint64_t i = 0; i < n; i += step) idx.push_back(i);
    if (n && idx.back() != n - 1) idx.push_back(n - 1);
    const std::int64_t m = std::int64_t(idx.size());
    auto gather = [&](const std::byte* src, DType t) {
      const std::size_t es = dtype_size(t);
      std::vector<std::byte> g(idx.size() * es);
      for (std::size_t j = 0; j < idx.size(); ++j) std::memcpy(g.data() + j * es, src + idx[j] * es, es);
      return g;
    };
    Device& cpu = device("cpu");
    const auto dtypes = c.input_dtypes();
    std::vector<Tensor> cpu_ins;
    for (std::size_t k = 0; k < dtypes.size(); ++k) {
      const auto g = gather(inputs[k].data(), dtypes[k]);
      cpu_ins.push_back(Tensor::from_host(g.data(), g.size(), {m}, dtypes[k], cpu));
    }
    const auto all_out = out.to_host();
    const auto g = gather(all_out.data(), out.dtype());
    const Tensor got = Tensor::from_host(g.data(), g.size(), {m}, out.dtype(), cpu);
    const Tensor want = map(c.expr, cpu_ins);
    if (c.conf) {
      const conformance::Verdict v = conformance::compare(*c.conf, got, want, cpu_ins);
      if (!v.ok) {
        r.state = CheckResult::State::fail;
        r.message = "timed output, sampled: " + v.message;
      }
      return r;
    }
    r = compare_outputs(c, got, want, cpu_ins);
    if (r.state == CheckResult::State::fail) r.message = "timed output, sampled: " + r.message;
  } catch (const Error& e) {
    r.state = CheckResult::State::error;
    r.message = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  }
  return r;
}

CheckResult check_case(const BenchCase& c, Device& dev) {
  CheckResult r;
  const bool on_cpu = dev.backend() == Backend::cpu;
  try {
    std::string why;
    if (!case_supported(c, dev, &why)) {
      r.state = CheckResult::State::skipped;
      r.message = why;
      return r;
    }
    if (c.shaped) return check_shaped_case(c, dev);
    if (c.conf) {
      // The conformance case (2^20 + 7 elements: vector tails included; small on the CPU backend,
      // which is the reference itself), run through the very kernel that is timed (map into).
      conformance::Case cc = *c.conf;
      cc.shape = on_cpu ? conformance::ShapeClass::odd : conformance::ShapeClass::large;
      const auto cpu_ops = conformance::make_operands(cc);
      const auto dev_ops = conformance::operands_on(cc, cpu_ops, dev);
      const Tensor want = conformance::run(cc, cpu_ops);
      const Tensor out = Tensor::empty(want.shape(), want.dtype(), dev);
      const Tensor got = conformance::run(cc, dev_ops, &out);
      const conformance::Verdict v = conformance::compare(cc, got, want, cpu_ops);
      if (!v.ok) {
        r.state = CheckResult::State::fail;
        r.message = v.message;
      }
      return r;
    }
    // Reductions: 64 rows or columns (and all of 2^18 + ...) on every backend; row ops 16 rows;
    // maps 2^20 + 7.
    const std::int64_t n = c.combiner ? 64 * kReduceRow + (c.reduce_axes == ReduceAxes::all ? 7 : 0)
                           : c.axis_spec ? 16 * c.row_len
                           : on_cpu    ? 4099
                                       : (1 << 20) + 7;
    Device& cpu = device("cpu");
    std::vector<Tensor> cpu_ins, dev_ins;
    const auto dtypes = c.input_dtypes();
    for (std::size_t k = 0; k < dtypes.size(); ++k) {
      const auto data = random_input(dtypes[k], c.ranges[k], std::uint64_t(n), 1000 + k);
      cpu_ins.push_back(Tensor::from_host(data.data(), data.size(), c.input_shape(std::uint64_t(n)), dtypes[k], cpu));
      dev_ins.push_back(cpu_ins.back().to(dev));
    }
    const Tensor want = c.run(cpu_ins);
    const Tensor out = Tensor::empty(want.shape(), want.dtype(), dev);
    const Tensor got = c.run(dev_ins, &out);
    return compare_outputs(c, got, want, cpu_ins);
  } catch (const Error& e) {
    r.state = CheckResult::State::error;
    r.message = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  } catch (const std::exception& e) {
    r.state = CheckResult::State::error;
    r.message = e.what();
  }
  return r;
}

}  // namespace kiln::bench
