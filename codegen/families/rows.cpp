// The rows family: one op over each row of a tensor (the elements along one axis): softmax,
// log_softmax, logsumexp, layer_norm and rms_norm. Templates: templates/cuda/rows.cuh,
// templates/glsl/rows.glsl. One entry point, "row": a warp (subgroup) per row of up to 16 elements
// per lane, else a block (workgroup) per row, its threads striding over the row, the row's
// statistics combined by warp shuffles (subgroup arithmetic; shared memory on a Vulkan device
// without it) in an order fixed for the device (deterministic: no atomics), then the row written. f16/bf16 compute in f32, rounded once at the
// store. The formulas, the handling of -inf/+inf/NaN rows and eps: docs/semantics.md, "Row ops".
#include "codegen/families/rows.hpp"
#include "codegen/families/loop_count.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/emit_parts.hpp"
#include "codegen/eval.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"
#include "core/suggest.hpp"

namespace kiln {

namespace {

using namespace emit_parts;

constexpr RowsOpInfo kRowsOps[] = {
    {RowsOp::softmax, "softmax", 1, true,
     "exp(x - m) / sum(exp(x - m)), m the row's max (0 for an all -inf row, which gives 0)"},
    {RowsOp::log_softmax, "log_softmax", 1, true, "(x - m) - log(sum(exp(x - m))) (-inf for an all -inf row)"},
    {RowsOp::logsumexp, "logsumexp", 1, false,
     "m + log(sum(exp(x - m))) over the axis (-inf for an empty or all -inf row, +inf with a +inf)"},
    {RowsOp::layer_norm, "layer_norm", 3, true,
     "(x - mean) / sqrt(var + eps) * gamma + beta, var the biased variance (two-pass; Welford for long rows)"},
    {RowsOp::rms_norm, "rms_norm", 2, true, "x / sqrt(mean(x^2) + eps) * gamma"},
};

constexpr std::int64_t kRowsCache = 16;  // elements per thread held in registers (the templates' kRowsCache)
constexpr FamilyEntryPoint kEntryPoints[] = {{"row", sizeof(KilnRowsParams)}};
constexpr std::string_view kSlots[] = {"prologue", "epilogue"};
constexpr std::string_view kManifestKeys[] = {"name",    "family",   "op",       "inputs",  "output",
                                              "targets", "block_size", "prologue", "epilogue", "residual"};

DType compute_of(const KernelSpec& spec) { return rows_layout(spec).x == DType::f64 ? DType::f64 : DType::f32; }

// The scalar functions the templates call, from the op table (the same exp, log, rsqrt and divide
// as the map kernels: Kiln's accurate GLSL library on Vulkan, CUDA's on CUDA).
struct Helper {
  std::string_view name;
  Op op;
  int args;
};
constexpr Helper kHelpers[] = {
    {"exp", Op::exp, 1}, {"log", Op::log, 1}, {"rsqrt", Op::rsqrt, 1}, {"div", Op::divide, 2}};

Expr helper_expr(const Helper& h, DType c) {
  Expr e;
  e.set_root(h.args == 1 ? e.apply(h.op, {e.input(0, c)}) : e.apply(h.op, {e.input(0, c), e.input(1, c)}));
  return e;
}

// The prologue over the kernel's first inputs (x itself without one).
Expr prologue_of(const KernelSpec& spec) { return spec.expr.pruned(); }

// The epilogue over (y in the compute dtype, the epilogue inputs), converted to the output dtype
// (y itself, converted, without one). Its inputs are numbered from 0 (y) as in the spec.
Expr finish_of(const KernelSpec& spec) {
  const DType c = compute_of(spec);
  const RowsLayout l = rows_layout(spec);
  Expr e;
  NodeId r = e.input(0, c);
  if (!spec.epilogue.nodes().empty()) {
    std::vector<NodeId> inputs{r};
    for (int i = 1; i <= l.epilogue; ++i) inputs.push_back(e.input(i, spec.inputs[std::size_t(l.prologue + l.params + i - 1)]));
    r = inline_expr(e, spec.epilogue, inputs);
  }
  e.set_root(e.cast(r, spec.output));
  return e.pruned();
}

bool rows_supports(const KernelSpec& spec, Target, std::string* why) {
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  const auto op = find_rows_op(spec.attribute("op"));
  if (!op) return no(fmt::format("unknown row op '{}'", spec.attribute("op")));
  if (spec.inputs.empty() || spec.inputs.size() > std::size_t(kMaxMapInputs))
    return no(fmt::format("{} takes 1 to {} inputs, not {}", rows_op_info(*op).name, kMaxMapInputs, spec.inputs.size()));
  const RowsLayout l = rows_layout(spec);
  if (l.prologue < 1 || l.params < 0 || l.epilogue < 0) return no("inconsistent prologue/epilogue input counts");
  return true;
}

// ---- CUDA: the functor the template calls (templates/cuda/rows.cuh) ----------------------------

// "(reinterpret_cast<const T*>(p.in[k]) + off[k])[j * p.axis_stride[k]]"
std::string cuda_element(const KernelSpec& spec, int k) {
  return fmt::format("(reinterpret_cast<const {0}*>(p.in[{1}]) + off[{1}])[j * p.axis_stride[{1}]]",
                     cuda_storage(spec.inputs[std::size_t(k)]), k);
}

std::string rows_emit_cuda(const KernelSpec& spec, FunctionSet) {
  const std::string name = spec.name();
  const RowsLayout l = rows_layout(spec);
  const DType c = compute_of(spec);
  const std::string_view ct = cuda_storage(c);
  const Expr pro = prologue_of(spec), fin = finish_of(spec);
  std::string s = fmt::format("// ---- {}: {} over rows of {} ----\n", name, spec.attribute("op"), dtype_name(l.x));
  s += "// Generated by Kiln (codegen/families/rows.cpp). Compile with --fmad=false (see cuda/ops.cuh).\n";
  s += "#include \"cuda/rows.cuh\"\n\n";
  s += fmt::format("struct {}_fn {{\n  typedef {} C;\n", name, ct);
  const RowsBias bias = spec_rows_bias(spec);
  s += fmt::format("  static constexpr int kOp = {}, kParams = {}, kBias = {}, kCausal = {}, kResidual = {}, kMaskedNan = {};\n",
                   int(spec_rows_op(spec)), l.params, int(bias), spec.attribute("causal") == "true" ? 1 : 0,
                   l.residual ? 1 : 0, spec.attribute("masked") == "nan" ? 1 : 0);
  const char* args = "const kiln::KilnRowsParams& p, const unsigned long long* off, long long j";
  // x at element j: the prologue over inputs 0 .. prologue - 1.
  s += fmt::format("  __device__ __forceinline__ C x({}) const {{\n", args);
  for (int k = 0; k < l.prologue; ++k)
    s += fmt::format("    const {} a{} = {};\n", cuda_storage(spec.inputs[std::size_t(k)]), k, cuda_element(spec, k));
  s += cuda_locals(pro, "    ") + fmt::format("    return C(v{});\n  }}\n", pro.root());
  // The parameters (gamma, beta or the bias) at element j, in the compute type.
  for (int i = 0; i < 2; ++i) {
    s += fmt::format("  __device__ __forceinline__ C param{}({}) const {{\n", i, args);
    if (i < l.params) {
      const int k = l.prologue + i;
      const DType t = spec.inputs[std::size_t(k)];
      s += fmt::format("    return C(kiln_load_{}({}));\n  }}\n", dtype_name(t), cuda_element(spec, k));
    } else {
      s += "    return C(0);\n  }\n";
    }
  }
  // The output at element j: the epilogue over y and its inputs, converted and stored.
  s += fmt::format("  __device__ __forceinline__ void put({}, const C y) const {{\n    const C a0 = y;\n", args);
  for (int i = 1; i <= l.epilogue; ++i) {
    const int k = l.prologue + l.params + i - 1;
    s += fmt::format("    const {} a{} = {};\n", cuda_storage(spec.inputs[std::size_t(k)]), i, cuda_element(spec, k));
  }
  s += cuda_locals(fin, "    ");
  s += fmt::format("    (reinterpret_cast<{}*>(p.out) + off[4])[j * p.axis_stride[4]] = kiln_store_{}(v{});\n  }}\n",
                   cuda_storage(spec.output), dtype_name(spec.output), fin.root());
  // The residual output h at element j: x's value in x's dtype.
  s += fmt::format("  __device__ __forceinline__ void put_h({}, const C v) const {{\n", args);
  if (l.residual)
    s += fmt::format("    (reinterpret_cast<{}*>(p.h) + off[4])[j * p.axis_stride[4]] = kiln_store_{}(v);\n",
                     cuda_storage(l.x), dtype_name(l.x));
  s += "  }\n";
  for (const Helper& h : kHelpers) {
    const Expr e = helper_expr(h, c).pruned();
    s += fmt::format("  __device__ __forceinline__ C f_{}(const C a0{}) const {{\n", h.name, h.args == 2 ? ", const C a1" : "");
    s += cuda_locals(e, "    ") + fmt::format("    return v{};\n  }}\n", e.root());
  }
  s += "};\n\n";
  s += fmt::format("extern \"C\" __global__ void __launch_bounds__({0}) {1}_row(const __grid_constant__ "
                   "kiln::KilnRowsParams p) {{\n  kiln::rows_run<{0}, {1}_fn>(p, {1}_fn());\n}}\n",
                   spec.block_size, name);
  return s;
}

// ---- GLSL: the hooks the template calls (templates/glsl/rows.glsl) ------------------------------

// "KILN_LOAD<k>(KilnIn<k>Ref(kiln_base[k] + uint64_t(j * kiln_step[k]) * KILN_S<k>).v)"
std::string glsl_element(int k) {
  return fmt::format("KILN_LOAD{0}(KilnIn{0}Ref(kiln_base[{0}] + uint64_t(j * kiln_step[{0}]) * uint64_t(KILN_S{0})).v)", k);
}

std::string rows_emit_glsl(const KernelSpec& spec, int) {
  const RowsLayout l = rows_layout(spec);
  const DType c = compute_of(spec);
  const Expr pro = prologue_of(spec), fin = finish_of(spec);
  std::vector<Expr> helpers;
  for (const Helper& h : kHelpers) helpers.push_back(helper_expr(h, c).pruned());
  std::vector<const Expr*> exprs{&pro, &fin};
  for (const Expr& e : helpers) exprs.push_back(&e);
  std::vector<DType> storage = spec.inputs;
  storage.push_back(spec.output);
  storage.push_back(l.x);
  std::string s = "#version 450\n#extension GL_GOOGLE_cpp_style_line_directive : require\n";
  s += glsl_subgroup_extensions();
  s += fmt::format("// ---- {} (row): {} over rows of {} ----\n", spec.name(), spec.attribute("op"), dtype_name(l.x));
  s += "// Generated by Kiln (codegen/families/rows.cpp). Compile with glslc --target-env=vulkan1.3.\n";
  s += glsl_prelude(storage, exprs, {});
  s += fmt::format("// ---- instantiation: {} ----\n#line 1 \"{}\"\n", spec.name(), spec.name());
  s += fmt::format("#define KILN_NUM_INPUTS {}\n#define KILN_ROWS_OP {}\n#define KILN_C {}\n#define KILN_C_F64 {}\n",
                   spec.inputs.size(), int(spec_rows_op(spec)), glsl_compute(c), c == DType::f64 ? 1 : 0);
  s += fmt::format("#define KILN_PARAMS {}\n#define KILN_BIAS {}\n#define KILN_CAUSAL {}\n#define KILN_RESIDUAL {}\n"
                   "#define KILN_MASKED_NAN {}\n",
                   l.params, int(spec_rows_bias(spec)), spec.attribute("causal") == "true" ? 1 : 0, l.residual ? 1 : 0,
                   spec.attribute("masked") == "nan" ? 1 : 0);
  for (std::size_t k = 0; k < std::size_t(kMaxMapInputs); ++k) {
    const bool has = k < spec.inputs.size();
    if (has)
      s += fmt::format("#define KILN_T{0} {1}\n#define KILN_LOAD{0}(v) {2}\n", k, glsl_storage(spec.inputs[k]),
                       glsl_load_hook(spec.inputs[k]));
    s += fmt::format("#define KILN_S{} {}\n", k, has ? dtype_size(spec.inputs[k]) : 1);
  }
  s += fmt::format("#define KILN_TOUT {}\n#define KILN_SOUT {}\n#define KILN_STORE(c) {}\n", glsl_storage(spec.output),
                   dtype_size(spec.output), glsl_store_hook(spec.output));
  s += fmt::format("#define KILN_SX {}\n#define KILN_STORE_X(c) {}\n", dtype_size(l.x), glsl_store_hook(l.x));
  s += glsl_inline("glsl/operands.glsl");
  s += fmt::format("layout(buffer_reference, std430, buffer_reference_align = {0}) buffer KilnHRef {{ {1} v; }};\n",
                   dtype_size(l.x), glsl_storage(l.x));
  s += "uint64_t kiln_base[5];  // the operands' addresses in this row: inputs 0..3, the output at 4\n"
       "int64_t kiln_step[5];\nuint64_t kiln_h;          // the residual output's address in this row\n";
  // x at element j: the prologue over inputs 0 .. prologue - 1.
  s += "KILN_C kiln_x(int64_t j) {\n";
  for (int k = 0; k < l.prologue; ++k) s += fmt::format("  {} a{} = {};\n", glsl_compute(spec.inputs[std::size_t(k)]), k, glsl_element(k));
  s += glsl_locals(pro, "  ") + fmt::format("  return KILN_C(v{});\n}}\n", pro.root());
  for (int i = 0; i < 2; ++i) {
    s += fmt::format("KILN_C kiln_param{}(int64_t j) {{\n", i);
    s += i < l.params ? fmt::format("  return KILN_C({});\n}}\n", glsl_element(l.prologue + i)) : "  return KILN_C(0);\n}\n";
  }
  s += "void kiln_put(int64_t j, KILN_C y) {\n  KILN_C a0 = y;\n";
  for (int i = 1; i <= l.epilogue; ++i) {
    const int k = l.prologue + l.params + i - 1;
    s += fmt::format("  {} a{} = {};\n", glsl_compute(spec.inputs[std::size_t(k)]), i, glsl_element(k));
  }
  s += glsl_locals(fin, "  ");
  s += fmt::format("  KilnOutRef(kiln_base[4] + uint64_t(j * kiln_step[4]) * uint64_t(KILN_SOUT)).v = KILN_STORE(v{});\n}}\n",
                   fin.root());
  s += "void kiln_put_h(int64_t j, KILN_C v) {\n";
  if (l.residual) s += "  KilnHRef(kiln_h + uint64_t(j * kiln_step[4]) * uint64_t(KILN_SX)).v = KILN_STORE_X(v);\n";
  s += "}\n";
  for (std::size_t i = 0; i < helpers.size(); ++i) {
    const Helper& h = kHelpers[i];
    s += fmt::format("KILN_C kiln_rows_{}(KILN_C a0{}) {{\n", h.name, h.args == 2 ? ", KILN_C a1" : "");
    s += glsl_locals(helpers[i], "  ") + fmt::format("  return v{};\n}}\n", helpers[i].root());
  }
  s += glsl_inline("glsl/rows.glsl");
  return s;
}

// ---- geometry ------------------------------------------------------------------------------------

// The output's strides over the request's shape: contiguous row-major over the shape (logsumexp:
// over the shape without the axis, stride 0 along it).
std::vector<std::int64_t> output_strides(const KernelSpec& spec, const PlanRequest& r) {
  const int axis = r.axes.empty() ? int(r.shape.size()) - 1 : r.axes[0];
  const bool keeps = rows_op_info(spec_rows_op(spec)).keeps_axis;
  std::vector<std::int64_t> st(r.shape.size());
  std::int64_t s = 1;
  for (std::size_t d = r.shape.size(); d-- > 0;) {
    if (!keeps && int(d) == axis) {
      st[d] = 0;
      continue;
    }
    st[d] = s;
    s *= std::max<std::int64_t>(r.shape[d], 1);
  }
  return st;
}

LaunchPlan rows_plan(const KernelSpec& spec, const PlanRequest& r, std::string* why) {
  LaunchPlan plan;
  if (r.inputs.size() != spec.inputs.size() || r.axes.size() > 1) {
    *why = fmt::format("{} operands over {} axes; the kernel takes {} over one axis", r.inputs.size(), r.axes.size(),
                       spec.inputs.size());
    return plan;
  }
  const std::vector<std::int64_t> ost = output_strides(spec, r);
  const AxisGeometry g = axis_geometry(r, ost);
  if (g.shape.size() > std::size_t(kMaxMapRank)) {
    *why = fmt::format("{} non-mergeable row dimensions; kernels take at most {} (make the operand contiguous first)",
                       g.shape.size(), kMaxMapRank);
    return plan;
  }
  KilnRowsParams p{};
  p.out = r.out;
  p.n_rows = g.n_rows;
  p.n = g.n;
  p.rank = std::int64_t(g.shape.size());
  for (std::size_t d = 0; d < g.shape.size(); ++d) p.shape[d] = g.shape[d];
  for (std::size_t op = 0; op < g.strides.size(); ++op) {
    const std::size_t slot = op + 1 == g.strides.size() ? std::size_t(kMaxMapInputs) : op;
    if (slot < std::size_t(kMaxMapInputs)) p.in[slot] = r.inputs[op].address;
    p.axis_stride[slot] = g.axis_stride[op];
    for (std::size_t d = 0; d < g.shape.size(); ++d) p.strides[slot][d] = g.strides[op][d];
  }
  const RowsOp op = spec_rows_op(spec);
  const double value = op == RowsOp::layer_norm || op == RowsOp::rms_norm ? r.option("eps", 0) : r.option("scale", 1);
  const float value32 = float(value);
  std::memcpy(&p.value64, &value, 8);
  std::memcpy(&p.value32, &value32, 4);
  if (rows_layout(spec).residual) {
    if (r.more_outputs.empty()) {
      *why = "the kernel also writes the residual h; the request has no address for it";
      return plan;
    }
    p.h = r.more_outputs[0];
  }
  if (spec.attribute("causal") == "true") {  // the extent of the dimension before the (last) axis
    if (r.shape.size() < 2 || (!r.axes.empty() && r.axes[0] != int(r.shape.size()) - 1)) {
      *why = "a causal softmax works along the last axis of a tensor of rank 2 or more";
      return plan;
    }
    p.causal_q = std::uint32_t(r.shape[r.shape.size() - 2]);
  }
  plan.function = 0;
  // Rows of up to kRowsCache elements per lane go a subgroup (warp) each (templates' rows_run).
  const std::int64_t sub = r.subgroup_size;
  const bool by_subgroup = sub > 0 && r.block_size > sub && g.n <= sub * kRowsCache;
  const std::int64_t per = by_subgroup ? r.block_size / sub : 1;
  plan.groups_x = std::uint32_t(std::clamp<std::int64_t>((g.n_rows + per - 1) / per, 1, 65535));
  // Per row: two passes over a row held in memory (longer than a lane's 16 registers) by the
  // workgroup's lanes, and the group sums' loops.
  const double lanes = double(by_subgroup ? sub : std::max(r.block_size, 1));
  const double rows_each = std::ceil(double(g.n_rows) / (double(plan.groups_x) * double(per)));
  const double loops = rows_each * (2 * std::ceil(double(g.n) / lanes) + 128);
  plan.loop_iterations = loop_count(loops);
  plan.params = params_of(p);
  return plan;
}

// ---- the CPU reference: every row in long double, rounded once --------------------------------

void rows_run_cpu(const KernelSpec& spec, const PlanRequest& r) {
  const std::vector<std::int64_t> ost = output_strides(spec, r);
  const AxisGeometry g = axis_geometry(r, ost);
  const RowsOp op = spec_rows_op(spec);
  const RowsLayout lay = rows_layout(spec);
  const DType c = compute_of(spec);
  const std::size_t k = r.inputs.size();
  Evaluator pro(prologue_of(spec)), fin(finish_of(spec));
  using L = long double;
  std::vector<L> row(std::size_t(std::max<std::int64_t>(g.n, 0)));
  std::vector<Scalar> args(k + 1);
  for (std::int64_t o = 0; o < g.n_rows; ++o) {
    std::vector<std::int64_t> base(k + 1, 0);
    std::int64_t rem = o;
    for (std::size_t d = g.shape.size(); d-- > 0;) {
      const std::int64_t idx = rem % g.shape[d];
      rem /= g.shape[d];
      for (std::size_t op_i = 0; op_i <= k; ++op_i) base[op_i] += idx * g.strides[op_i][d];
    }
    auto load = [&](std::size_t op_i, std::int64_t j) -> Scalar {
      const auto* p = reinterpret_cast<const std::byte*>(r.inputs[op_i].address);
      const DType ti = spec.inputs[op_i];
      return load_scalar(ti, p + (base[op_i] + j * g.axis_stride[op_i]) * std::int64_t(dtype_size(ti)));
    };
    auto param = [&](int i, std::int64_t j) -> L {
      const Scalar v = load(std::size_t(lay.prologue + i), j);
      return spec.inputs[std::size_t(lay.prologue + i)] == DType::pred ? L(v.u != 0) : L(v.f);
    };
    // The output at j: the epilogue over y (in the compute dtype) and its inputs, converted.
    auto put = [&](std::int64_t j, L v) {
      args[0] = Scalar::from_f(double(v));
      if (c == DType::f32 && lay.epilogue + !spec.epilogue.nodes().empty() > 0) args[0] = Scalar::from_f(double(float(v)));
      for (int i = 1; i <= lay.epilogue; ++i) args[std::size_t(i)] = load(std::size_t(lay.prologue + lay.params + i - 1), j);
      auto* p = reinterpret_cast<std::byte*>(r.out);
      const std::int64_t at = base[k] + j * g.axis_stride[k];
      store_scalar(spec.output, p + at * std::int64_t(dtype_size(spec.output)), fin.eval(args.data()));
    };
    const bool causal = spec.attribute("causal") == "true";
    const std::int64_t q = causal ? o % r.shape[r.shape.size() - 2] : 0;
    const RowsBias bias = spec_rows_bias(spec);
    for (std::int64_t j = 0; j < g.n; ++j) {
      for (int i = 0; i < lay.prologue; ++i) args[std::size_t(i)] = load(std::size_t(i), j);
      const Scalar x = pro.eval(args.data());  // x's dtype: rounded as the prologue's ops round
      if (lay.residual) {
        auto* h = reinterpret_cast<std::byte*>(r.more_outputs[0]);
        store_scalar(lay.x, h + (base[k] + j * g.axis_stride[k]) * std::int64_t(dtype_size(lay.x)), x);
      }
      L v = L(x.f);
      if (op == RowsOp::softmax || op == RowsOp::log_softmax) {
        v *= c == DType::f32 ? L(float(r.option("scale", 1))) : L(r.option("scale", 1));  // f32: as the kernels get it
        if (c == DType::f32) v = L(float(v));  // the kernels scale, then add, each rounded to f32
        if (bias == RowsBias::add) v += param(0, j);
        if (bias == RowsBias::mask && param(0, j) == 0) v = -INFINITY;
        if (causal && j > q) v = -INFINITY;
        if (c == DType::f32) v = L(float(v));  // 3e38 * 2 is inf
      }
      row[std::size_t(j)] = v;
    }
    const L n = L(g.n);
    if (op == RowsOp::softmax || op == RowsOp::log_softmax || op == RowsOp::logsumexp) {
      L m = -INFINITY;
      bool nan = false;
      for (L v : row) {
        nan |= std::isnan(v);
        m = std::max(m, v);
      }
      if (nan) m = NAN;
      if (op == RowsOp::logsumexp && m == INFINITY) {
        put(0, INFINITY);
        continue;
      }
      const L me = m == -INFINITY ? 0 : m;
      L s = 0;
      for (L v : row) s += std::exp(v - me);
      if (op == RowsOp::logsumexp) {
        put(0, me + std::log(s));
        continue;
      }
      const bool masked_nan = spec.attribute("masked") == "nan";  // a fully masked row: NaN
      for (std::int64_t j = 0; j < g.n; ++j) {
        const L v = row[std::size_t(j)];
        if (op == RowsOp::softmax) put(j, s == 0 && !masked_nan ? 0 : std::exp(v - me) / s);
        else put(j, s == 0 && !masked_nan ? -INFINITY : (v - me) - std::log(s));
      }
      continue;
    }
    L mean = 0, var = 0;
    if (op == RowsOp::layer_norm) {
      for (L v : row) mean += v;
      mean /= n;
      for (L v : row) var += (v - mean) * (v - mean);
    } else {
      for (L v : row) var += v * v;
    }
    // The kernels sum the squares in the compute dtype: past its range the sum is inf and the row
    // 0 (x * rsqrt(inf)), as in PyTorch; long double alone would give the true, finite norm.
    if (var > (c == DType::f32 ? L(std::numeric_limits<float>::max()) : L(std::numeric_limits<double>::max())))
      var = INFINITY;
    var /= n;
    const L inv = 1 / std::sqrt(var + L(r.option("eps", 0)));
    for (std::int64_t j = 0; j < g.n; ++j) {
      L y = (row[std::size_t(j)] - mean) * inv;
      if (lay.params > 0) y *= param(0, j);
      if (lay.params > 1) y += param(1, j);
      put(j, y);
    }
  }
}

FamilyCost rows_cost(const KernelSpec& spec) {
  FamilyCost c;  // per row element: the prologue's and epilogue's inputs read, the outputs written
  const RowsLayout l = rows_layout(spec);
  for (int k = 0; k < l.prologue; ++k) c.bytes_per_element += double(dtype_size(spec.inputs[std::size_t(k)]));
  for (int i = 0; i < l.epilogue; ++i)
    c.bytes_per_element += double(dtype_size(spec.inputs[std::size_t(l.prologue + l.params + i)]));
  if (spec_rows_bias(spec) != RowsBias::none) c.bytes_per_element += double(dtype_size(spec.inputs[std::size_t(l.prologue)]));
  if (rows_op_info(spec_rows_op(spec)).keeps_axis) c.bytes_per_element += double(dtype_size(spec.output));
  if (l.residual) c.bytes_per_element += double(dtype_size(l.x));
  c.flops_per_element = 5;
  return c;
}

// `op` names the row op; `inputs` are, in order: the prologue's (x alone without a `prologue`),
// gamma and beta (norms) or the bias (softmax, log_softmax: x's dtype to add, pred to mask), the
// epilogue's. `prologue` is an expression over the first inputs (by name), `epilogue` one over y
// (the op's result) and the last inputs; `residual = true` also returns h (the prologue's value).
KernelSpec rows_from_manifest(const ManifestTable& t, const Expr&, std::optional<DType> output) {
  const std::optional<std::string> s = t.string("op");
  if (!s) t.error("", "a [[kernel]] of the rows family needs an 'op' key");
  const auto op = find_rows_op(*s);
  if (!op) {
    std::vector<std::string_view> names;
    for (const RowsOpInfo& i : kRowsOps) names.push_back(i.name);
    t.error("op", fmt::format("unknown row op '{}'{} (expected one of: softmax, log_softmax, logsumexp, layer_norm, "
                              "rms_norm)", *s, did_you_mean(*s, names)));
  }
  const std::vector<DType>& in = t.inputs();
  std::vector<std::string_view> names;
  for (std::size_t k = 0; k < in.size(); ++k)
    names.push_back(k < t.input_names().size() ? std::string_view(t.input_names()[k]) : std::string_view());
  RowsFusion f;
  std::size_t kp = 1;
  if (std::optional<Expr> pro = t.expr("prologue", in, names)) {
    const std::vector<bool> used = used_inputs(*pro, in.size());
    kp = std::size_t(std::find(used.rbegin(), used.rend(), true).base() - used.begin());
    for (std::size_t k = 0; k < kp; ++k)
      if (!used[k]) t.error("prologue", fmt::format("the prologue uses the first {} inputs but not input {}; the "
                                                    "prologue's inputs come first in 'inputs'", kp, k));
    f.prologue = *pro;
  }
  const DType x = f.prologue.nodes().empty() ? in[0] : f.prologue.dtype(f.prologue.root());
  const DType c = x == DType::f64 ? DType::f64 : DType::f32;
  std::size_t ke = 0;
  {
    // Over y (the op's result) and the last inputs, by their names or as the kernel's inputs are
    // named anywhere (z, w, in2, ...): the result is parsed as one more input after them, named y.
    std::vector<DType> edt(in.begin(), in.end());
    std::vector<std::string_view> enames(names.begin(), names.end());
    edt.push_back(c);
    enames.push_back("y");
    if (std::optional<Expr> epi = t.expr("epilogue", edt, enames, in.size())) {  // the result: by its name, y
      const std::vector<bool> used = used_inputs(*epi, edt.size());
      if (!used[in.size()]) t.error("epilogue", "the epilogue must use y (the op's result)");
      std::size_t first = in.size();
      for (std::size_t k = 0; k < in.size(); ++k)
        if (used[k]) first = std::min(first, k);
      ke = in.size() - first;
      for (std::size_t k = first; k < in.size(); ++k)
        if (!used[k])
          t.error("epilogue", fmt::format("the epilogue uses input {} ({}) but not input {} ({}); the epilogue's inputs "
                                          "come last in 'inputs'", first, t.input_label(first), k, t.input_label(k)));
      if (first < kp) t.error("epilogue", "the epilogue's inputs must follow the prologue's");
      std::vector<int> map(edt.size(), 0);  // y first, then the epilogue's inputs
      for (std::size_t k = first; k < in.size(); ++k) map[k] = int(k - first) + 1;
      f.epilogue = renumber_inputs(*epi, map);
    }
  }
  f.output = output;
  f.residual = t.boolean("residual").value_or(false);
  const std::vector<DType> params(in.begin() + std::ptrdiff_t(kp), in.end() - std::ptrdiff_t(ke));
  const bool masks = *op == RowsOp::softmax || *op == RowsOp::log_softmax;
  RowsBias bias = RowsBias::none;
  if (masks && params.size() == 1) bias = params[0] == DType::pred ? RowsBias::mask : RowsBias::add;
  for (std::size_t k = 0; k < params.size(); ++k)
    if (params[k] != x && bias != RowsBias::mask)
      t.error("inputs", fmt::format("input {} is {}; {} takes inputs of x's dtype ({}){}", kp + k, dtype_name(params[k]),
                                    *s, dtype_name(x), masks ? " or a pred mask" : ""));
  try {
    return make_rows_spec(*op, x, bias == RowsBias::none ? int(params.size()) : 0, bias, false, &f);
  } catch (const Error& e) {
    t.error(f.residual ? "residual" : "inputs", e.what());
  }
}

std::span<const std::string_view> rows_op_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const RowsOpInfo& i : kRowsOps) v.push_back(i.name);
    return v;
  }();
  return names;
}

// Every affine form of |op| for each float dtype; softmax and log_softmax also with each bias
// (none, added, a mask), causal or not.
std::vector<KernelSpec> rows_expand_op(std::string_view name, const std::vector<DType>& dtypes) {
  std::vector<KernelSpec> out;
  const auto op = find_rows_op(name);
  if (!op) return out;
  const bool masks = *op == RowsOp::softmax || *op == RowsOp::log_softmax;
  for (DType d : dtypes) {
    if (!is_float(d)) continue;
    for (int a = 0; a < rows_op_info(*op).max_inputs; ++a) out.push_back(make_rows_spec(*op, d, a));
    if (!masks) continue;
    for (RowsBias b : {RowsBias::none, RowsBias::add, RowsBias::mask})
      for (bool causal : {false, true})
        if (b != RowsBias::none || causal) out.push_back(make_rows_spec(*op, d, 0, b, causal));
  }
  return out;
}

std::string rows_api_functions(const ApiFunction& f) {
  std::string params, args;
  for (std::size_t i = 0; i < f.params.size(); ++i) {
    params += fmt::format("const kiln::Tensor& {}, ", f.params[i]);
    args.append(i ? ", " : "").append(f.params[i]);
  }
  if (f.spec && rows_layout(*f.spec).residual)  // (the op's output, h)
    return fmt::format("{}inline std::pair<kiln::Tensor, kiln::Tensor> {}({}const kiln::RowsCall& call = {{}}) {{\n"
                       "  const kiln::AotKernel& kiln_k = detail::{}();\n  kiln::Tensor kiln_h;\n"
                       "  kiln::Tensor kiln_y = kiln::run_rows_kernel(kiln_k.label(), kiln_k.spec(), &kiln_k.name(), {{{}}}, call, "
                       "nullptr, &kiln_k.registry(), nullptr, &kiln_h);\n  return {{kiln_y, kiln_h}};\n}}\n",
                       f.comment, f.name, params, f.kernel, args);
  return fmt::format("{}inline kiln::Tensor {}({}const kiln::RowsCall& call = {{}}, const kiln::Tensor* into = nullptr) {{\n"
                     "  return detail::{}().rows({{{}}}, call, into);\n}}\n",
                     f.comment, f.name, params, f.kernel, args);
}

}  // namespace

std::span<const RowsOpInfo> rows_op_table() { return kRowsOps; }
const RowsOpInfo& rows_op_info(RowsOp op) { return kRowsOps[int(op)]; }

std::optional<RowsOp> find_rows_op(std::string_view name) {
  for (const RowsOpInfo& i : kRowsOps)
    if (i.name == name) return i.op;
  return std::nullopt;
}

RowsOp spec_rows_op(const KernelSpec& spec) {
  if (auto op = find_rows_op(spec.attribute("op"))) return *op;
  fail(ErrorCode::invalid_argument, fmt::format("{}: a rows spec without a known op ('{}')", spec.family,
                                                spec.attribute("op")));
}

RowsBias spec_rows_bias(const KernelSpec& spec) {
  const std::string_view b = spec.attribute("bias");
  return b == "add" ? RowsBias::add : b == "mask" ? RowsBias::mask : RowsBias::none;
}

RowsLayout rows_layout(const KernelSpec& spec) {
  RowsLayout l;
  auto count = [&](std::string_view key, int fallback) {
    const std::string_view v = spec.attribute(key);
    return v.empty() ? fallback : std::atoi(std::string(v).c_str());
  };
  l.prologue = count("prologue_inputs", 1);
  l.epilogue = count("epilogue_inputs", 0);
  l.params = int(spec.inputs.size()) - l.prologue - l.epilogue;
  l.x = spec.expr.nodes().empty() ? (spec.inputs.empty() ? DType::f32 : spec.inputs[0]) : spec.expr.dtype(spec.expr.root());
  l.residual = spec.attribute("residual") == "true";
  return l;
}

KernelSpec make_rows_spec(RowsOp op, DType x, int affine, RowsBias bias, bool causal, const RowsFusion* fusion) {
  const RowsOpInfo& info = rows_op_info(op);
  if (!is_float(x))
    fail(ErrorCode::dtype_mismatch, fmt::format("{} needs a float tensor (f16, bf16, f32, f64), not {}", info.name,
                                                dtype_name(x)));
  if (affine < 0 || affine + 1 > info.max_inputs)
    fail(ErrorCode::invalid_argument, fmt::format("{} takes {} affine inputs at most, not {}", info.name,
                                                  info.max_inputs - 1, affine));
  KernelSpec spec;
  spec.family = "rows";
  spec.output = x;
  spec.set_attribute("op", std::string(info.name));
  if (fusion && !fusion->prologue.nodes().empty()) {
    const DType p = fusion->prologue.dtype(fusion->prologue.root());
    if (p != x)
      fail(ErrorCode::dtype_mismatch, fmt::format("{}: the prologue gives {}, not x's dtype {}", info.name,
                                                  dtype_name(p), dtype_name(x)));
    spec.expr = fusion->prologue.pruned();
    spec.inputs = spec.expr.input_dtypes();
    spec.set_attribute("prologue_inputs", std::to_string(spec.inputs.size()));
  } else {
    spec.inputs = {x};
    spec.expr.set_root(spec.expr.input(0, x));
  }
  spec.inputs.insert(spec.inputs.end(), std::size_t(affine), x);
  if (bias != RowsBias::none || causal) {
    if (op != RowsOp::softmax && op != RowsOp::log_softmax)
      fail(ErrorCode::invalid_argument, fmt::format("{} takes no bias, mask or causal option (softmax and log_softmax do)",
                                                    info.name));
    if (affine != 0) fail(ErrorCode::invalid_argument, fmt::format("{} has no affine inputs", info.name));
  }
  if (bias != RowsBias::none) {
    spec.inputs.push_back(bias == RowsBias::add ? x : DType::pred);
    spec.set_attribute("bias", bias == RowsBias::add ? "add" : "mask");
  }
  if (causal) spec.set_attribute("causal", "true");
  if (fusion && fusion->masked_nan) {
    if (op != RowsOp::softmax && op != RowsOp::log_softmax)
      fail(ErrorCode::invalid_argument, fmt::format("{} has no masked rows (softmax and log_softmax do)", info.name));
    spec.set_attribute("masked", "nan");
  }
  if (fusion && !fusion->epilogue.nodes().empty()) {
    const DType c = x == DType::f64 ? DType::f64 : DType::f32;
    const std::vector<DType> e = fusion->epilogue.input_dtypes();
    if (e.empty() || e[0] != c)
      fail(ErrorCode::invalid_argument, fmt::format("{}: the epilogue's first input is y, the op's result in {}{}",
                                                    info.name, dtype_name(c), e.empty() ? "" : fmt::format(", not {}", dtype_name(e[0]))));
    if (e.size() > 1 && !info.keeps_axis)
      fail(ErrorCode::invalid_argument, fmt::format("{} gives one value per row; its epilogue takes y alone", info.name));
    spec.epilogue = fusion->epilogue.pruned();
    spec.inputs.insert(spec.inputs.end(), e.begin() + 1, e.end());
    spec.set_attribute("epilogue_inputs", std::to_string(e.size() - 1));
  }
  if (fusion && fusion->output) spec.output = *fusion->output;
  if (fusion && fusion->residual) {
    if (op != RowsOp::layer_norm && op != RowsOp::rms_norm)
      fail(ErrorCode::invalid_argument, fmt::format("{} has no residual output (layer_norm and rms_norm do)", info.name));
    spec.set_attribute("residual", "true");
  }
  if (spec.inputs.size() > std::size_t(kMaxMapInputs))
    fail(ErrorCode::invalid_argument, fmt::format("{}: {} inputs in all (prologue, parameters, epilogue); kernels take at "
                                                  "most {}", info.name, spec.inputs.size(), kMaxMapInputs));
  return spec;
}

// kiln::jit: an elementwise consumer of the op's result (over x's shape) moved into the epilogue:
// the new epilogue is the consumer of (the old epilogue's value converted to the output dtype),
// its other operands appended after the kernel's own.
std::optional<EpilogueFusion> rows_fuse_epilogue(const KernelSpec& spec, std::span<const std::int64_t> request,
                                                 std::span<const int>, const Expr& consumer, int slot, const std::vector<std::int64_t>& out_shape,
                                                 const std::vector<std::vector<std::int64_t>>& strides, std::string* why) {
  auto no = [&](std::string reason) -> std::optional<EpilogueFusion> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  const RowsOp op = spec_rows_op(spec);
  if (!rows_op_info(op).keeps_axis) return no(fmt::format("{} gives one value per row", rows_op_info(op).name));
  if (!std::equal(request.begin(), request.end(), out_shape.begin(), out_shape.end()))
    return no("the consumer's shape is not x's");
  const RowsLayout lay = rows_layout(spec);
  const DType compute = lay.x == DType::f64 ? DType::f64 : DType::f32;
  Expr e;
  std::vector<NodeId> old_in{e.input(0, compute)};
  const std::size_t e0 = std::size_t(lay.prologue + lay.params);
  for (int k = 0; k < lay.epilogue; ++k) old_in.push_back(e.input(1 + k, spec.inputs[e0 + std::size_t(k)]));
  NodeId value = old_in[0];
  if (!spec.epilogue.nodes().empty()) value = inline_expr(e, spec.epilogue, old_in);
  value = e.cast(value, spec.output);
  std::vector<NodeId> in;
  int next = 1 + lay.epilogue;
  for (int k = 0; k < consumer.num_inputs(); ++k)
    in.push_back(k == slot ? value : e.input(next++, consumer.input_dtypes()[std::size_t(k)]));
  e.set_root(inline_expr(e, consumer, in));
  RowsFusion f;
  if (!spec.attribute("prologue_inputs").empty()) f.prologue = spec.expr;
  f.epilogue = e.pruned();
  f.output = e.dtype(e.root());
  f.residual = lay.residual;
  f.masked_nan = spec.attribute("masked") == "nan";
  const RowsBias bias = spec_rows_bias(spec);
  EpilogueFusion out;
  try {
    out.spec = make_rows_spec(op, lay.x, bias == RowsBias::none ? lay.params : 0, bias,
                              spec.attribute("causal") == "true", &f);
  } catch (const Error& err) {
    return no(err.what());
  }
  out.strides = strides;  // over x's shape, as the kernel's own operands
  return out;
}

const Family kRowsFamily = {
    "rows", kEntryPoints, kSlots, kManifestKeys, rows_supports, rows_emit_cuda, rows_emit_glsl, rows_plan,
    rows_run_cpu, rows_cost,
    "one op over each row along an axis: softmax log_softmax logsumexp layer_norm rms_norm",
    rows_from_manifest, rows_op_names, rows_expand_op, rows_api_functions, "runtime/rows.hpp",
    /*elementwise=*/false, /*pointwise_inputs=*/false, rows_fuse_epilogue,
};

}  // namespace kiln
