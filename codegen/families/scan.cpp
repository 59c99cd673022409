// The scan family: the inclusive running sum, product, max or min of each row (the elements along
// one axis): Nx's cumulative_sum, cumulative_product, cumulative_max and cumulative_min, forward or
// reverse. Templates: templates/cuda/scan.cuh, templates/glsl/scan.glsl.
//
// Algorithm: reduce-then-scan on both targets, chosen over a single-pass decoupled look-back for
// two reasons. (1) Determinism: with look-back, a tile adds either its predecessor's inclusive
// prefix or a chain of aggregates depending on which flags it happens to see, so float results
// would change run to run; here every association is fixed by the shape. (2) Vulkan gives no
// forward-progress guarantee between workgroups, which look-back needs. A row that a few
// workgroups cannot cover (few, long rows) is split into segments: "reduce" writes each segment's
// total to scratch, "spine" turns each row's totals into exclusive prefixes (in order), and "scan"
// rescans each segment from its prefix. Otherwise "scan" alone runs a workgroup per row — or, for
// rows of up to kScanItems elements (what one thread scans in its registers anyway), a thread per
// row: the same combines in the same order, without a workgroup's barriers per row (a cumulative
// sum over an axis of 2 of a [2, 4M] tensor was 4M workgroup scans of one busy thread each). The
// input is read twice when split, once otherwise; the output is written once.
#include "codegen/families/scan.hpp"
#include "codegen/families/loop_count.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/emit_parts.hpp"
#include "codegen/eval.hpp"
#include "codegen/family.hpp"
#include "codegen/ops.hpp"
#include "core/error.hpp"
#include "core/suggest.hpp"

namespace kiln {

namespace {

using namespace emit_parts;

// The kernel ABI (templates/cuda/scan.cuh and templates/glsl/scan.glsl declare the same layout):
// row r (row-major over shape[0..rank), the dimensions other than the axis, collapsed) of n
// elements; its element j is at in + sum(r_d * strides[0][d]) + j * axis_stride[0] elements (the
// output: index 1). A reverse scan is a forward scan of the reversed views (the plan moves the
// bases to the last element and negates the axis strides). Rows are split in n_split segments of
// seg elements; scratch holds n_rows * n_split accumulators when n_split > 1.
struct KilnScanParams {
  std::uint64_t out;
  std::uint64_t in;
  std::uint64_t scratch;
  std::int64_t n_rows;
  std::int64_t n;
  std::int64_t rank;
  std::int64_t shape[kMaxMapRank];
  std::int64_t strides[2][kMaxMapRank];
  std::int64_t axis_stride[2];
  std::int64_t n_split;
  std::int64_t seg;
  std::int64_t by_thread;  // 1: a thread per row (rows of at most kScanItems elements, not split)
};
static_assert(sizeof(KilnScanParams) == 232);

// Elements a thread scans in registers per pass over a chunk (the templates' kScanItems and
// KILN_SCAN_ITEMS): a workgroup covers block_size * kScanItems elements per step.
constexpr std::int64_t kScanItems = 8;

constexpr ScanOpInfo kScanOps[] = {
    {Combiner::sum, "cumulative_sum", "y[j] = x[0] + ... + x[j] (integers wrap around)"},
    {Combiner::product, "cumulative_product", "y[j] = x[0] * ... * x[j] (integers wrap around)"},
    {Combiner::max, "cumulative_max", "y[j] = max(x[0], ..., x[j]); NaN from the first NaN on"},
    {Combiner::min, "cumulative_min", "y[j] = min(x[0], ..., x[j]); NaN from the first NaN on"},
};

constexpr FamilyEntryPoint kEntryPoints[] = {
    {"scan", sizeof(KilnScanParams)}, {"reduce", sizeof(KilnScanParams)}, {"spine", sizeof(KilnScanParams)}};
constexpr std::string_view kSlots[] = {"expr"};
constexpr std::string_view kManifestKeys[] = {"name", "family", "op", "inputs", "output", "targets", "block_size"};

DType acc_of(const KernelSpec& spec) { return scan_accumulator_dtype(spec_scan_combiner(spec), spec.inputs.at(0)); }

Expr identity_expr(Combiner c, DType acc) {
  const Scalar v = combiner_identity(c, acc);
  Expr e;
  e.set_root(is_float(acc) ? e.constant(v.f, acc) : e.constant_int(v.i, acc));
  return e;
}

bool scan_supports(const KernelSpec& spec, Target, std::string* why) {
  const auto c = find_scan_op(spec.attribute("op"));
  if (!c || spec.inputs.size() != 1) {
    if (why) *why = fmt::format("a scan kernel takes one input and a known op, not {} and '{}'", spec.inputs.size(),
                                spec.attribute("op"));
    return false;
  }
  return true;
}

std::string scan_emit_cuda(const KernelSpec& spec, FunctionSet functions) {
  const std::string name = spec.name();
  const Combiner c = spec_scan_combiner(spec);
  const DType x = spec.inputs[0], acc = acc_of(spec);
  const std::string_view acc_t = cuda_storage(compute_dtype(acc));  // compute types are their own storage
  const Expr id = identity_expr(c, acc).pruned(), comb = combiner_expr(c, acc).pruned();
  std::string s = fmt::format("// ---- {}: {} of {} ----\n", name, spec.attribute("op"), dtype_name(x));
  s += "// Generated by Kiln (codegen/families/scan.cpp). Compile with --fmad=false (see cuda/ops.cuh).\n";
  s += "#include \"cuda/scan.cuh\"\n\n";
  s += fmt::format("struct {}_fn {{\n  typedef {} C;\n  typedef {} T;\n", name, acc_t, cuda_storage(x));
  s += fmt::format("  __device__ __forceinline__ C load(const T v) const {{ return C(kiln_load_{}(v)); }}\n", dtype_name(x));
  s += fmt::format("  __device__ __forceinline__ T store(const C v) const {{ return kiln_store_{}(v); }}\n", dtype_name(x));
  s += "  __device__ __forceinline__ C identity() const {\n" + cuda_locals(id, "    ") +
       fmt::format("    return v{};\n  }}\n", id.root());
  s += "  __device__ __forceinline__ C combine(const C a0, const C a1) const {\n" + cuda_locals(comb, "    ") +
       fmt::format("    return v{};\n  }}\n}};\n\n", comb.root());
  for (std::size_t f = 0; f < std::size(kEntryPoints); ++f)
    if (functions >> f & 1)
      s += fmt::format("extern \"C\" __global__ void __launch_bounds__({0}) {1}_{2}(const __grid_constant__ "
                       "kiln::KilnScanParams p) {{\n  kiln::scan_{2}<{0}, {1}_fn>(p, {1}_fn());\n}}\n",
                       spec.block_size, name, kEntryPoints[f].suffix);
  return s;
}

std::string scan_emit_glsl(const KernelSpec& spec, int function) {
  const Combiner c = spec_scan_combiner(spec);
  const DType x = spec.inputs[0], acc = acc_of(spec);
  const Expr id = identity_expr(c, acc).pruned(), comb = combiner_expr(c, acc).pruned();
  std::string s = "#version 450\n#extension GL_GOOGLE_cpp_style_line_directive : require\n";
  s += glsl_subgroup_extensions();
  s += fmt::format("// ---- {} ({}): {} of {} ----\n", spec.name(), kEntryPoints[function].suffix, spec.attribute("op"),
                   dtype_name(x));
  s += "// Generated by Kiln (codegen/families/scan.cpp). Compile with glslc --target-env=vulkan1.3.\n";
  s += glsl_prelude({x, x}, {&id, &comb}, {fmt::format("#define KILN_SCAN_FUNCTION {}", function)});
  s += fmt::format("// ---- instantiation: {} ----\n#line 1 \"{}\"\n", spec.name(), spec.name());
  const std::string_view v = glsl_compute(acc);
  s += fmt::format("#define KILN_NUM_INPUTS 1\n#define KILN_SCAN_ITEMS {}\n#define KILN_C {}\n#define KILN_C_SIZE {}\n",
                   kScanItems, v, dtype_size(compute_dtype(acc)));
  s += fmt::format("#define KILN_SCAN_COMBINER {}\n#define KILN_C_FLOAT {}\n#define KILN_C_F64 {}\n#define KILN_C_INT64 {}\n",
                   int(c), is_float(acc) ? 1 : 0, acc == DType::f64 ? 1 : 0,
                   !is_float(acc) && dtype_size(compute_dtype(acc)) == 8 ? 1 : 0);
  s += fmt::format("#define KILN_T0 {}\n#define KILN_S0 {}\n#define KILN_LOAD(v) {}({})\n", glsl_storage(x), dtype_size(x),
                   v, glsl_load_hook(x));
  s += fmt::format("#define KILN_TOUT {}\n#define KILN_SOUT {}\n#define KILN_STORE(c) {}\n", glsl_storage(x), dtype_size(x),
                   glsl_store_hook(x));
  s += fmt::format("{} kiln_identity() {{\n", v) + glsl_locals(id, "  ") + fmt::format("  return v{};\n}}\n", id.root());
  s += fmt::format("{0} kiln_combine({0} a0, {0} a1) {{\n", v) + glsl_locals(comb, "  ") +
       fmt::format("  return v{};\n}}\n", comb.root());
  s += glsl_inline("glsl/operands.glsl") + glsl_inline("glsl/scan.glsl");
  return s;
}

// ---- the plan ------------------------------------------------------------------------------------

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The output's strides over the request's shape: contiguous row-major.
std::vector<std::int64_t> dense_strides(std::span<const std::int64_t> shape) {
  std::vector<std::int64_t> st(shape.size());
  std::int64_t s = 1;
  for (std::size_t d = shape.size(); d-- > 0;) {
    st[d] = s;
    s *= std::max<std::int64_t>(shape[d], 1);
  }
  return st;
}

// The geometry with a reverse scan's views reversed: bases at the last element, strides negated.
struct ScanGeometry {
  AxisGeometry g;
  std::uint64_t in = 0, out = 0;
};

ScanGeometry scan_geometry(const KernelSpec& spec, const PlanRequest& r) {
  const std::vector<std::int64_t> ost = dense_strides(r.shape);
  ScanGeometry s{axis_geometry(r, ost), r.inputs[0].address, r.out};
  if (r.option("reverse", 0) != 0 && s.g.n > 0) {
    const std::int64_t last = s.g.n - 1;
    s.in += std::uint64_t(last * s.g.axis_stride[0] * std::int64_t(dtype_size(spec.inputs[0])));
    s.out += std::uint64_t(last * s.g.axis_stride[1] * std::int64_t(dtype_size(spec.output)));
    for (std::int64_t& st : s.g.axis_stride) st = -st;
  }
  return s;
}

LaunchPlan scan_plan(const KernelSpec& spec, const PlanRequest& r, std::string* why) {
  LaunchPlan plan;
  if (r.inputs.size() != 1 || r.axes.size() > 1) {
    *why = fmt::format("{} operands over {} axes; a scan takes one over one axis", r.inputs.size(), r.axes.size());
    return plan;
  }
  const ScanGeometry sg = scan_geometry(spec, r);
  const AxisGeometry& g = sg.g;
  if (g.shape.size() > std::size_t(kMaxMapRank)) {
    *why = fmt::format("{} non-mergeable row dimensions; kernels take at most {} (make the operand contiguous first)",
                       g.shape.size(), kMaxMapRank);
    return plan;
  }
  KilnScanParams p{};
  p.out = sg.out;
  p.in = sg.in;
  p.n_rows = g.n_rows;
  p.n = g.n;
  p.rank = std::int64_t(g.shape.size());
  for (std::size_t d = 0; d < g.shape.size(); ++d) {
    p.shape[d] = g.shape[d];
    p.strides[0][d] = g.strides[0][d];
    p.strides[1][d] = g.strides[1][d];
  }
  p.axis_stride[0] = g.axis_stride[0];
  p.axis_stride[1] = g.axis_stride[1];
  // Segments: a workgroup per row when there are enough rows or the rows are short; otherwise
  // about 1024 work items (rows x segments), each segment a whole number of chunks. The split
  // depends on the shape only, so results are bit-identical run to run.
  const std::int64_t chunk = std::int64_t(r.block_size) * kScanItems;
  std::int64_t split = 1;
  if (g.n_rows < 256 && g.n > 4 * chunk) split = std::min(ceil_div(g.n, 2 * chunk), ceil_div(1024, g.n_rows));
  split = std::clamp<std::int64_t>(split, 1, 65535);
  const std::int64_t seg = split > 1 ? ceil_div(ceil_div(g.n, split), chunk) * chunk : g.n;
  if (split > 1) split = ceil_div(g.n, seg);  // no empty segments
  p.n_split = split;
  p.seg = seg;
  const std::int64_t work = g.n_rows * split;
  const auto groups = [](std::int64_t n) { return std::uint32_t(std::clamp<std::int64_t>(n, 1, 65535)); };
  // The loop iterations of one invocation (LaunchPlan::loop_iterations): per work item its chunks,
  // each a combine of the threads' totals (the subgroups' in order, or a tree in shared memory).
  const double block = double(std::max(r.block_size, 1));
  const double per_chunk = 4 + std::log2(block) + (r.subgroup_size > 0 ? block / double(r.subgroup_size) : 0);
  const double items_each = std::ceil(double(work) / double(groups(work)));
  double loops = items_each * (std::ceil(double(seg) / double(chunk)) * per_chunk + 4);
  if (split == 1) {
    plan.function = 0;
    p.by_thread = g.n <= kScanItems;
    plan.groups_x = groups(p.by_thread ? ceil_div(g.n_rows, r.block_size) : work);
    if (p.by_thread) loops = std::ceil(double(g.n_rows) / (double(plan.groups_x) * block)) * double(g.n + 2);
    plan.loop_iterations = loop_count(loops);
    plan.params = params_of(p);
    return plan;
  }
  // (The spine: a thread per row, its segments in order.)
  loops = std::max(loops, std::ceil(double(g.n_rows) / (double(groups(ceil_div(g.n_rows, r.block_size))) * block)) *
                              double(split + 2));
  plan.loop_iterations = loop_count(loops);
  plan.scratch_bytes = std::uint64_t(work) * dtype_size(compute_dtype(acc_of(spec)));
  p.scratch = r.scratch;
  plan.function = 1;  // reduce, then spine (a thread per row), then scan
  plan.groups_x = groups(work);
  plan.params = params_of(p);
  plan.then.push_back({2, groups(ceil_div(g.n_rows, r.block_size)), params_of(p)});
  plan.then.push_back({0, groups(work), params_of(p)});
  return plan;
}

// ---- the CPU reference: floats in long double within the kernels' accumulator range (f32 for
// f16/bf16/f32, f64 for f64: a running value that leaves it becomes +-inf, one that underflows it
// 0, so overflow, inf - inf and inf * 0 happen where the kernels' do), integers in their dtype
// (wrapping) -------------------------------------------------------------------------------------

// One row's running value of floats, accurate in long double but kept to F's range.
template <class F>
void scan_row_float(Combiner c, DType t, const std::byte* src, std::int64_t src_step, std::byte* dst,
                    std::int64_t dst_step, std::int64_t n) {
  using L = long double;
  L f = c == Combiner::sum ? 0 : c == Combiner::product ? 1 : c == Combiner::max ? -L(INFINITY) : L(INFINITY);
  for (std::int64_t j = 0; j < n; ++j) {
    const L x = L(load_scalar(t, src + j * src_step).f);
    if (c == Combiner::sum) f += x;
    else if (c == Combiner::product) f *= x;
    // max/min: NaN wins; -0 orders below +0 (the op table's kiln_max/kiln_min).
    else if (!std::isnan(f) && (std::isnan(x) || (c == Combiner::max ? x > f || (x == f && !std::signbit(x))
                                                                      : x < f || (x == f && std::signbit(x)))))
      f = x;
    if (const F r = F(f); std::isinf(r) || r == 0) f = L(r);  // beyond F's range: as F holds it
    store_scalar(t, dst + j * dst_step, Scalar::from_f(double(f)));
  }
}

void scan_run_cpu(const KernelSpec& spec, const PlanRequest& r) {
  const ScanGeometry sg = scan_geometry(spec, r);
  const AxisGeometry& g = sg.g;
  const Combiner c = spec_scan_combiner(spec);
  const DType t = spec.inputs[0];
  const std::int64_t es = std::int64_t(dtype_size(t));
  Evaluator comb(combiner_expr(c, t));
  const Scalar identity = combiner_identity(c, t);
  for (std::int64_t o = 0; o < g.n_rows; ++o) {
    std::int64_t in_off = 0, out_off = 0, rem = o;
    for (std::size_t d = g.shape.size(); d-- > 0;) {
      const std::int64_t idx = rem % g.shape[d];
      rem /= g.shape[d];
      in_off += idx * g.strides[0][d];
      out_off += idx * g.strides[1][d];
    }
    const auto* src = reinterpret_cast<const std::byte*>(sg.in) + in_off * es;
    auto* dst = reinterpret_cast<std::byte*>(sg.out) + out_off * es;
    const std::int64_t src_step = g.axis_stride[0] * es, dst_step = g.axis_stride[1] * es;
    if (is_float(t)) {
      if (scan_accumulator_dtype(c, t) == DType::f64) scan_row_float<double>(c, t, src, src_step, dst, dst_step, g.n);
      else scan_row_float<float>(c, t, src, src_step, dst, dst_step, g.n);
      continue;
    }
    Scalar acc = identity;
    for (std::int64_t j = 0; j < g.n; ++j) {
      const Scalar in[2] = {acc, load_scalar(t, src + j * src_step)};
      acc = comb.eval(in);
      store_scalar(t, dst + j * dst_step, acc);
    }
  }
}

FamilyCost scan_cost(const KernelSpec& spec) {
  FamilyCost c;  // per element: x read once, y written once (a split scan reads x twice)
  c.bytes_per_element = 2.0 * double(dtype_size(spec.inputs[0]));
  c.flops_per_element = 1;
  return c;
}

// `op` names the scan; `inputs` is x's dtype; the output is x's dtype.
KernelSpec scan_from_manifest(const ManifestTable& t, const Expr&, std::optional<DType> output) {
  const std::optional<std::string> s = t.string("op");
  if (!s) t.error("", "a [[kernel]] of the scan family needs an 'op' key");
  const auto c = find_scan_op(*s);
  if (!c) {
    std::vector<std::string_view> names;
    for (const ScanOpInfo& i : kScanOps) names.push_back(i.name);
    t.error("op", fmt::format("unknown scan op '{}'{} (expected one of: cumulative_sum, cumulative_product, "
                              "cumulative_max, cumulative_min)", *s, did_you_mean(*s, names)));
  }
  const std::vector<DType>& in = t.inputs();
  if (in.size() != 1) t.error("inputs", fmt::format("a scan takes one input, not {}", in.size()));
  if (output && *output != in[0])
    t.error("output", fmt::format("a scan's output is x's dtype ({}), not {}", dtype_name(in[0]), dtype_name(*output)));
  try {
    return make_scan_spec(*c, in[0]);
  } catch (const Error& e) {
    t.error("inputs", e.what());
  }
}

std::span<const std::string_view> scan_op_names() {
  static constexpr std::string_view names[] = {"cumulative_sum", "cumulative_product", "cumulative_max",
                                               "cumulative_min"};
  return names;
}

std::vector<KernelSpec> scan_expand_op(std::string_view name, const std::vector<DType>& dtypes) {
  std::vector<KernelSpec> out;
  const auto c = find_scan_op(name);
  if (!c) return out;
  for (DType d : dtypes)
    if (kNumbers & dtype_bit(d)) out.push_back(make_scan_spec(*c, d));
  return out;
}

std::string scan_api_functions(const ApiFunction& f) {
  const std::string& x = f.params.at(0);
  return fmt::format("{}inline kiln::Tensor {}(const kiln::Tensor& {}, const kiln::ScanCall& call = {{}}, "
                     "const kiln::Tensor* into = nullptr) {{\n"
                     "  const kiln::AotKernel& kiln_k = detail::{}();\n"
                     "  return kiln::run_scan_kernel(kiln_k.label(), kiln_k.spec(), &kiln_k.name(), {{{}}}, call, into, "
                     "&kiln_k.registry());\n}}\n",
                     f.comment, f.name, x, f.kernel, x);
}

}  // namespace

std::span<const ScanOpInfo> scan_op_table() { return kScanOps; }

const ScanOpInfo& scan_op_info(Combiner c) {
  for (const ScanOpInfo& i : kScanOps)
    if (i.combiner == c) return i;
  fail(ErrorCode::invalid_argument, fmt::format("no scan of combiner {}", combiner_info(c).name));
}

std::optional<Combiner> find_scan_op(std::string_view name) {
  for (const ScanOpInfo& i : kScanOps)
    if (i.name == name || combiner_info(i.combiner).name == name) return i.combiner;
  return std::nullopt;
}

Combiner spec_scan_combiner(const KernelSpec& spec) {
  if (auto c = find_scan_op(spec.attribute("op"))) return *c;
  fail(ErrorCode::invalid_argument, fmt::format("{}: a scan spec without a known op ('{}')", spec.family,
                                                spec.attribute("op")));
}

DType scan_accumulator_dtype(Combiner, DType x) { return x == DType::f16 || x == DType::bf16 ? DType::f32 : x; }

KernelSpec make_scan_spec(Combiner c, DType x) {
  const ScanOpInfo& info = scan_op_info(c);
  if (!(kNumbers & dtype_bit(x)))
    fail(ErrorCode::dtype_mismatch, fmt::format("{} takes a numeric tensor (integers or floats), not {}{}", info.name,
                                                dtype_name(x), x == DType::pred ? " (cast it to u8 first)" : ""));
  KernelSpec spec;
  spec.family = "scan";
  spec.inputs = {x};
  spec.output = x;
  spec.expr.set_root(spec.expr.input(0, x));
  spec.set_attribute("op", std::string(info.name));
  return spec;
}

const Family kScanFamily = {
    "scan", kEntryPoints, kSlots, kManifestKeys, scan_supports, scan_emit_cuda, scan_emit_glsl, scan_plan,
    scan_run_cpu, scan_cost,
    "the running sum, product, max or min along an axis: cumulative_sum cumulative_product cumulative_max "
    "cumulative_min",
    scan_from_manifest, scan_op_names, scan_expand_op, scan_api_functions, "runtime/scan.hpp",
};

}  // namespace kiln
