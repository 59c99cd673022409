// The reduce family: out[o] = epilogue(combine over r of prologue(in0[o, r], in1[o, r], ...), n),
// over any set of axes. Templates: templates/cuda/reduce.cuh, templates/glsl/reduce.glsl.
// Entry points: "rows" (one block per output: threads stride over the reduced elements, then a
// tree in shared memory and warp shuffles; for reductions over the inner, contiguous axes and for
// few outputs), "cols" (one thread per output, each reading its reduced elements in order: for
// reductions over outer axes, where neighbouring outputs are neighbouring in memory) and "final"
// (the second launch of a split reduction: combines each output's segment accumulators in order).
// Float results are deterministic: every kernel combines in a fixed order (no atomics).
#include "codegen/families/reduce.hpp"

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

constexpr CombinerInfo kCombiners[] = {
    {Combiner::sum, "sum", "sum", kAll, Op::add,
     "the sum of the elements (0 when there are none)"},
    {Combiner::product, "product", "product", kAll, Op::multiply,
     "the product of the elements (1 when there are none)"},
    {Combiner::max, "max", "reduce_max", kNumbers, Op::max,
     "the largest element; NaN if any is NaN (-inf or the lowest integer when there are none)"},
    {Combiner::min, "min", "reduce_min", kNumbers, Op::min,
     "the smallest element; NaN if any is NaN (+inf or the highest integer when there are none)"},
    {Combiner::all, "all", "all", kAll, Op::logical_and,
     "1 if every element is non-zero (NaN counts as non-zero), else 0 (1 when there are none)"},
    {Combiner::any, "any", "any", kAll, Op::logical_or,
     "1 if any element is non-zero, else 0 (0 when there are none)"},
    {Combiner::argmax, "argmax", "argmax", kNumbers, Op::greater,
     "the index of the largest element, NaN the largest; ties: the first (tie_break low) or last"},
    {Combiner::argmin, "argmin", "argmin", kNumbers, Op::less,
     "the index of the smallest element, NaN the smallest; ties: the first (tie_break low) or last"},
};

constexpr FamilyEntryPoint kEntryPoints[] = {
    {"rows", sizeof(KilnReduceParams)},
    {"cols", sizeof(KilnReduceParams)},
    {"final", sizeof(KilnReduceParams)},
};
constexpr std::string_view kSlots[] = {"prologue", "epilogue"};
constexpr std::string_view kManifestKeys[] = {"name",   "family",  "reduce",  "expr",      "epilogue", "inputs",
                                              "output", "targets", "block_size", "tie_break"};

// Elements a thread combines in order before folding them into its total: bounds the rounding of
// long sequential runs (error grows with 256 + n / 256 instead of n).
constexpr int kChunk = 256;

// ---- the three scalar functions of a spec (prologue, combine, finish) ----------------------------

DType prologue_dtype(const KernelSpec& spec) { return spec.expr.dtype(spec.expr.root()); }  // the accumulator's

// Bytes of one accumulator in scratch memory: a compute type, or (value, index) padded to 16.
std::uint64_t accumulator_bytes(const KernelSpec& spec) {
  if (is_arg_combiner(spec_combiner(spec))) return 16;
  return dtype_size(compute_dtype(prologue_dtype(spec)));
}

// combine(a, b) over two accumulators: the combiner's elementwise op, with its semantics (NaN in
// max/min, integer wrap-around) from the op table (not for argmax/argmin).
Expr combine_expr(Combiner c, DType acc) {
  Expr e;
  e.set_root(e.apply(kCombiners[int(c)].combine, {e.input(0, acc), e.input(1, acc)}));
  return e;
}

// finish(acc, n) -> output: the accumulator (argmax/argmin: its index) as the result dtype, through
// the epilogue, converted to the output dtype.
Expr finish_expr(const KernelSpec& spec) {
  const Combiner c = spec_combiner(spec);
  const DType acc = is_arg_combiner(c) ? DType::s64 : prologue_dtype(spec);
  // The values' dtype (before accumulation) decides the result: reconstructed from the attribute.
  const DType result = parse_dtype(spec.attribute("result")).value_or(spec.output);
  Expr e;
  const NodeId a = e.input(0, acc), n = e.input(1, DType::s64);
  NodeId r = e.cast(a, result);
  if (!spec.epilogue.nodes().empty()) r = inline_expr(e, spec.epilogue, {r, n});
  e.set_root(e.cast(r, spec.output));
  return e;
}

Scalar identity_value(Combiner c, DType acc) {
  const bool f = is_float(acc);
  switch (c) {
    case Combiner::sum: case Combiner::any: return f ? Scalar::from_f(0) : Scalar::from_u(0);
    case Combiner::product: case Combiner::all: return f ? Scalar::from_f(1) : Scalar::from_u(1);
    case Combiner::max:
      if (f) return Scalar::from_f(-INFINITY);
      if (is_unsigned_int(acc) || acc == DType::pred) return Scalar::from_u(0);
      return Scalar::from_u(~0ull << (dtype_bits(acc) - 1));  // the lowest value, sign-extended
    case Combiner::min:
      if (f) return Scalar::from_f(INFINITY);
      if (is_unsigned_int(acc)) return Scalar::from_u(dtype_bits(acc) == 64 ? ~0ull : (1ull << dtype_bits(acc)) - 1);
      return Scalar::from_u(~(~0ull << (dtype_bits(acc) - 1)));
    default: return Scalar::from_u(0);
  }
}

Expr constant_expr(Scalar v, DType t) {
  Expr e;
  e.set_root(is_float(t) ? e.constant(v.f, t) : e.constant_int(v.i, t));
  return e;
}

// ---- descriptor functions ------------------------------------------------------------------------

bool reduce_supports(const KernelSpec& spec, Target target, std::string* why) {
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  if (spec.inputs.size() > std::size_t(kMaxMapInputs))
    return no(fmt::format("{} inputs; reduce kernels take at most {}", spec.inputs.size(), kMaxMapInputs));
  if (!find_combiner(spec.attribute("combiner"))) return no(fmt::format("unknown combiner '{}'", spec.attribute("combiner")));
  if (!parse_dtype(spec.attribute("result"))) return no(fmt::format("bad result dtype '{}'", spec.attribute("result")));
  (void)target;  // both targets run every op on every dtype
  return true;
}

std::string params_list(const KernelSpec& spec, bool cuda) {
  std::string s;
  for (std::size_t k = 0; k < spec.inputs.size(); ++k)
    s += fmt::format(", {} a{}", cuda ? cuda_storage(spec.inputs[k]) : glsl_compute(spec.inputs[k]), k);
  return s;
}

// Loads each thread issues before combining them (the combining order does not change): 16 for
// 1- and 2-byte inputs, else 8. The same for CUDA (R::kUnroll) and GLSL (KILN_UNROLL).
int reduce_unroll(const KernelSpec& spec) {
  std::size_t widest = spec.inputs.empty() ? 4 : 0;
  for (DType t : spec.inputs) widest = std::max(widest, dtype_size(t));
  return widest <= 2 ? 16 : 8;
}

struct ReduceRuns {
  int vec;    // elements per run
  int group;  // runs per group
};

// Rows: a run is kVec consecutive elements, 16 bytes of the widest input (one vector load per
// input); a thread combines kGroup runs at a time in a pairwise tree: up to 64 bytes of the widest
// input in flight, at most 32 elements (16 for argmax/argmin's 16-byte accumulators). The same for
// CUDA (R::kVec, R::kGroup) and GLSL (KILN_VEC, KILN_GROUP): they fix the combining order.
ReduceRuns reduce_runs(const KernelSpec& spec) {
  int widest = spec.inputs.empty() ? 4 : 0;
  for (DType t : spec.inputs) widest = std::max(widest, int(dtype_size(t)));
  const int vec = 16 / widest, most = accumulator_bytes(spec) > 8 ? 16 : 32;
  return {vec, std::clamp(most / vec, 1, 4)};
}

std::string reduce_emit_cuda(const KernelSpec& spec, FunctionSet functions) {
  const std::string name = spec.name();
  const Combiner c = spec_combiner(spec);
  const bool arg = is_arg_combiner(c);
  const DType acc = prologue_dtype(spec);
  const std::string_view acc_t = cuda_storage(compute_dtype(acc));  // compute types are their own storage
  const Expr pro = spec.expr.pruned(), finish = finish_expr(spec).pruned();
  std::string s = fmt::format("// ---- {}: {} of {} ----\n", name, combiner_info(c).op, pro.to_string());
  s += "// Generated by Kiln (codegen/families/reduce.cpp). Compile with --fmad=false (see cuda/ops.cuh).\n";
  s += "#include \"cuda/reduce.cuh\"\n\n";
  const ReduceRuns runs = reduce_runs(spec);
  s += fmt::format("struct {}_fn {{\n  static constexpr int kUnroll = {}, kVec = {}, kGroup = {};\n", name,
                   reduce_unroll(spec), runs.vec, runs.group);
  if (arg) {
    s += fmt::format("  typedef kiln::ArgAcc<{}> Acc;\n", acc_t);
    s += "  __device__ __forceinline__ Acc identity() const { Acc a; a.v = 0; a.i = -1; return a; }\n";
    s += fmt::format("  __device__ __forceinline__ Acc prologue(long long i{}) const {{\n", params_list(spec, true));
    s += cuda_locals(pro, "    ");
    s += fmt::format("    Acc a; a.v = v{}; a.i = i; return a;\n  }}\n", pro.root());
    s += fmt::format("  __device__ __forceinline__ Acc combine(const Acc a, const Acc b) const {{\n"
                     "    return kiln::arg_combine<{}, {}>(a, b);\n  }}\n",
                     c == Combiner::argmax ? "true" : "false", spec.attribute("tie_break") == "high" ? "true" : "false");
  } else {
    const Expr id = constant_expr(identity_value(c, acc), acc), comb = combine_expr(c, acc).pruned();
    s += fmt::format("  typedef {} Acc;\n", acc_t);
    s += "  __device__ __forceinline__ Acc identity() const {\n" + cuda_locals(id, "    ") +
         fmt::format("    return v{};\n  }}\n", id.root());
    s += fmt::format("  __device__ __forceinline__ Acc prologue(long long{}) const {{\n", params_list(spec, true));
    s += cuda_locals(pro, "    ") + fmt::format("    return v{};\n  }}\n", pro.root());
    s += "  __device__ __forceinline__ Acc combine(const Acc a0, const Acc a1) const {\n" + cuda_locals(comb, "    ") +
         fmt::format("    return v{};\n  }}\n", comb.root());
  }
  s += fmt::format("  __device__ __forceinline__ {} finish(const Acc acc, const long long a1) const {{\n",
                   cuda_storage(spec.output));
  s += arg ? "    const long long a0 = acc.i;\n" : "    const Acc a0 = acc;\n";
  s += cuda_locals(finish, "    ");
  s += fmt::format("    return kiln_store_{}(v{});\n  }}\n}};\n\n", dtype_name(spec.output), finish.root());
  std::string types = std::string(cuda_storage(spec.output));
  for (DType t : spec.inputs) types += fmt::format(", {}", cuda_storage(t));
  for (int f = 0; f < 3; ++f)
    if (functions >> f & 1)
      s += fmt::format("extern \"C\" __global__ void __launch_bounds__({0}) {1}_{2}(const __grid_constant__ "
                       "kiln::KilnReduceParams p) {{\n  kiln::reduce_{2}<{0}, {1}_fn, {3}>(p, {1}_fn());\n}}\n",
                       spec.block_size, name, kEntryPoints[f].suffix, types);
  return s;
}

std::string reduce_emit_glsl(const KernelSpec& spec, int function) {
  const Combiner c = spec_combiner(spec);
  const bool arg = is_arg_combiner(c);
  const DType acc = prologue_dtype(spec);
  const Expr pro = spec.expr.pruned(), finish = finish_expr(spec).pruned();
  const Expr id = constant_expr(identity_value(c, acc), acc);
  const Expr comb = arg ? Expr() : combine_expr(c, acc).pruned();
  std::vector<DType> storage = spec.inputs;
  storage.push_back(spec.output);
  std::vector<const Expr*> exprs{&pro, &finish, &id};
  if (!arg) exprs.push_back(&comb);

  std::string s = "#version 450\n";
  s += "#extension GL_GOOGLE_cpp_style_line_directive : require\n";
  s += fmt::format("// ---- {} ({}): {} of {} ----\n", spec.name(), kEntryPoints[function].suffix,
                   combiner_info(c).op, pro.to_string());
  s += "// Generated by Kiln (codegen/families/reduce.cpp). Compile with glslc --target-env=vulkan1.3.\n";
  static constexpr std::string_view kDefines[] = {"#define KILN_REDUCE_ROWS 1", "#define KILN_REDUCE_COLS 1",
                                                  "#define KILN_REDUCE_FINAL 1"};
  s += glsl_prelude(storage, exprs, {std::string(kDefines[function])});
  s += fmt::format("// ---- instantiation: {} ----\n#line {} \"{}\"\n", spec.name(), 1, spec.name());
  const int num_inputs = int(spec.inputs.size());
  const ReduceRuns runs = reduce_runs(spec);
  s += fmt::format("#define KILN_NUM_INPUTS {}\n#define KILN_CHUNK {}\n#define KILN_UNROLL {}\n#define KILN_FINAL_BLOCK {}\n"
                   "#define KILN_ACC_SIZE {}\n#define KILN_VEC {}\n#define KILN_GROUP {}\n",
                   num_inputs, kChunk, reduce_unroll(spec), kReduceFinalBlock, accumulator_bytes(spec), runs.vec,
                   runs.group);
  for (int k = 0; k < num_inputs; ++k) {
    const DType t = spec.inputs[k];
    s += fmt::format("#define KILN_T{} {}\n#define KILN_S{} {}\n#define KILN_LOAD{}(v) {}\n#define KILN_RUN_ALIGN{} {}\n", k,
                     glsl_storage(t), k, dtype_size(t), k, glsl_load_hook(t), k, std::size_t(runs.vec) * dtype_size(t));
  }
  s += fmt::format("#define KILN_TOUT {}\n#define KILN_SOUT {}\n#define KILN_STORE(c) {}\n", glsl_storage(spec.output),
                   dtype_size(spec.output), glsl_store_hook(spec.output));
  const std::string_view v = glsl_compute(acc);
  std::string args;
  for (int k = 0; k < num_inputs; ++k) args += fmt::format(", a{}", k);
  s += fmt::format("#define KILN_PROLOGUE(i, a0, a1, a2, a3) kiln_prologue(i{})\n", args);
  if (arg) {
    s += fmt::format("struct KilnAcc {{\n  {} v;\n  int64_t i;\n}};\n#define KILN_ACC KilnAcc\n", v);
    s += fmt::format("KilnAcc kiln_identity() {{ return KilnAcc({}(0), -1l); }}\n", v);
    s += fmt::format("KilnAcc kiln_prologue(int64_t i{}) {{\n", params_list(spec, false)) + glsl_locals(pro, "  ") +
         fmt::format("  return KilnAcc(v{}, i);\n}}\n", pro.root());
    // The better of two candidates whatever their order: NaN wins, then the larger (smaller)
    // value, then the lower (higher) index; a candidate with index -1 is the identity.
    s += fmt::format(
        "KilnAcc kiln_combine(KilnAcc a, KilnAcc b) {{\n"
        "  if (a.i < 0l) return b;\n  if (b.i < 0l) return a;\n"
        "  const bool an = {0}, bn = {1};\n"
        "  bool take_b;\n"
        "  if (an != bn) take_b = bn;\n"
        "  else if (!an && a.v != b.v) take_b = b.v {2} a.v;\n"
        "  else take_b = b.i {3} a.i;\n"
        "  return take_b ? b : a;\n}}\n",
        is_float(acc) ? "isnan(a.v)" : "false", is_float(acc) ? "isnan(b.v)" : "false",
        c == Combiner::argmax ? ">" : "<", spec.attribute("tie_break") == "high" ? ">" : "<");
  } else {
    s += fmt::format("#define KILN_ACC {}\n", v);
    s += fmt::format("{} kiln_identity() {{\n", v) + glsl_locals(id, "  ") + fmt::format("  return v{};\n}}\n", id.root());
    s += fmt::format("{} kiln_prologue(int64_t i{}) {{\n", v, params_list(spec, false)) + glsl_locals(pro, "  ") +
         fmt::format("  return v{};\n}}\n", pro.root());
    s += fmt::format("{0} kiln_combine({0} a0, {0} a1) {{\n", v) + glsl_locals(comb, "  ") +
         fmt::format("  return v{};\n}}\n", comb.root());
  }
  s += fmt::format("{} kiln_finish(KILN_ACC acc, int64_t a1) {{\n  {} a0 = acc{};\n", glsl_compute(spec.output),
                   arg ? "int64_t" : std::string(v), arg ? ".i" : "");
  s += glsl_locals(finish, "  ") + fmt::format("  return v{};\n}}\n", finish.root());
  s += glsl_inline("glsl/operands.glsl") + glsl_inline("glsl/reduce.glsl");
  return s;
}

// ---- geometry: the reduction collapsed to kept and reduced dimensions ----------------------------

struct Geometry {
  std::vector<std::int64_t> out_shape, red_shape;
  std::vector<std::vector<std::int64_t>> out_strides, red_strides;  // [input][dim]
  std::int64_t n_out = 1, n_red = 1;
};

// Drops size-1 dimensions and merges neighbouring dimensions of one class (kept or reduced) that
// are contiguous with each other in every operand. Order is kept, so the reduced elements'
// row-major index is their flattened index over the reduced axes (argmax over several axes).
Geometry collapse(const PlanRequest& r) {
  Geometry g;
  const std::size_t k = r.inputs.size();
  g.out_strides.resize(k);
  g.red_strides.resize(k);
  int last = -1;  // class of the previous kept dimension: 0 kept, 1 reduced
  for (std::size_t d = 0; d < r.shape.size(); ++d) {
    const bool red = std::find(r.axes.begin(), r.axes.end(), int(d)) != r.axes.end();
    const std::int64_t n = r.shape[d];
    (red ? g.n_red : g.n_out) *= n;
    if (n == 1) continue;
    auto& shape = red ? g.red_shape : g.out_shape;
    auto& strides = red ? g.red_strides : g.out_strides;
    bool merge = last == int(red) && !shape.empty();
    for (std::size_t i = 0; i < k && merge; ++i) merge = strides[i].back() == r.inputs[i].strides[d] * n;
    if (merge) {
      shape.back() *= n;
      for (std::size_t i = 0; i < k; ++i) strides[i].back() = r.inputs[i].strides[d];
    } else {
      shape.push_back(n);
      for (std::size_t i = 0; i < k; ++i) strides[i].push_back(r.inputs[i].strides[d]);
    }
    last = int(red);
  }
  return g;
}

// The kernels' cols_grouped test (cuda/reduce.cuh, glsl/reduce.glsl): a thread takes kVec
// neighbouring outputs when they are kVec contiguous, aligned elements of every input.
bool cols_grouped(const KernelSpec& spec, const PlanRequest& r, const Geometry& g) {
  const std::int64_t w = reduce_runs(spec).vec;
  if (w == 1 || g.out_shape.empty() || r.inputs.empty() || g.out_shape.back() % w != 0) return false;
  if (g.n_red > 0 && g.red_shape.size() > 1) return false;  // reduced dimensions collapsed to one
  const std::size_t last = g.out_shape.size() - 1;
  for (std::size_t k = 0; k < r.inputs.size(); ++k) {
    if (r.inputs[k].address % std::uint64_t(w * std::int64_t(dtype_size(spec.inputs[k]))) != 0 ||
        g.out_strides[k][last] != 1)
      return false;
    for (std::size_t d = 0; d < last; ++d)
      if (g.out_strides[k][d] % w != 0) return false;
    if (g.n_red > 0)
      for (std::int64_t st : g.red_strides[k])
        if (st % w != 0) return false;
  }
  return true;
}

LaunchPlan reduce_plan(const KernelSpec& spec, const PlanRequest& r, std::string* why) {
  LaunchPlan plan;
  if (r.inputs.size() > std::size_t(kMaxMapInputs)) {
    *why = fmt::format("{} inputs; reduce kernels take at most {}", r.inputs.size(), kMaxMapInputs);
    return plan;
  }
  const Geometry g = collapse(r);
  if (g.out_shape.size() > std::size_t(kMaxMapRank) || g.red_shape.size() > std::size_t(kMaxMapRank)) {
    *why = fmt::format("{} kept and {} reduced non-mergeable dimensions; kernels take at most {} of each "
                       "(make an operand contiguous first)", g.out_shape.size(), g.red_shape.size(), kMaxMapRank);
    return plan;
  }
  KilnReduceParams p{};
  p.out = r.out;
  p.n_out = g.n_out;
  p.n_red = g.n_red;
  p.out_rank = std::int64_t(g.out_shape.size());
  p.red_rank = g.n_red == 0 ? 0 : std::int64_t(g.red_shape.size());
  for (std::size_t d = 0; d < g.out_shape.size(); ++d) p.out_shape[d] = g.out_shape[d];
  for (std::size_t d = 0; d < std::size_t(p.red_rank); ++d) p.red_shape[d] = g.red_shape[d];
  for (std::size_t k = 0; k < r.inputs.size(); ++k) {
    p.in[k] = r.inputs[k].address;
    for (std::size_t d = 0; d < g.out_shape.size(); ++d) p.out_strides[k][d] = g.out_strides[k][d];
    for (std::size_t d = 0; d < std::size_t(p.red_rank); ++d) p.red_strides[k][d] = g.red_strides[k][d];
  }
  // Columns: every output has its own thread when the kept inner dimension is the contiguous one
  // (neighbouring threads read neighbouring elements) and there are enough outputs to fill a GPU
  // with threads; otherwise a block per output, its threads reading along the reduced elements.
  const bool inner_kept = !g.out_shape.empty() && !r.inputs.empty() && g.out_strides[0].back() == 1;
  const bool inner_red = !g.red_shape.empty() && !r.inputs.empty() && g.red_strides[0].back() == 1;
  const bool cols = inner_kept && !inner_red && g.n_out >= 1024;
  // Split long reductions into segments (two launches) until there is enough parallel work, and
  // so that no thread runs more than kMaxPerThread elements (lavapipe ends any loop nest after
  // 65535 iterations). The split depends on the shape only, so results are bit-identical run to
  // run, and identical on CUDA and Vulkan for the same block size.
  const std::int64_t block = r.block_size, n_red = g.n_red, n_out = g.n_out;
  auto ceil_div = [](std::int64_t a, std::int64_t b) { return (a + b - 1) / b; };
  constexpr std::int64_t kMaxPerThread = 16384;
  std::int64_t split = 1;
  if (n_red > 0) {
    if (cols) {
      split = std::max(ceil_div(n_red, 4096), std::min(ceil_div(262144, n_out), ceil_div(n_red, 64)));
    } else {
      if (n_red > block * 16 && n_out < 2048) split = std::min(ceil_div(n_red, block * 16), ceil_div(2048, n_out));
      split = std::max(split, ceil_div(n_red, block * kMaxPerThread));
    }
    split = std::clamp<std::int64_t>(split, 1, 65535);
  }
  const std::int64_t seg = n_red > 0 ? ceil_div(n_red, split) : 0;
  if (n_red > 0) split = ceil_div(n_red, seg);  // no empty segments
  p.n_split = split;
  p.seg = seg;
  plan.function = cols ? 1 : 0;
  const std::int64_t work = n_out * split;
  const std::int64_t per_thread = cols && cols_grouped(spec, r, g) ? reduce_runs(spec).vec : 1;
  plan.groups_x = std::uint32_t(std::clamp<std::int64_t>(cols ? ceil_div(work, block * per_thread) : work, 1, 65535));
  if (split > 1) {
    plan.scratch_bytes = std::uint64_t(work) * accumulator_bytes(spec);
    p.scratch = r.scratch;
    LaunchStep final_step;
    final_step.function = 2;
    const bool final_blocks = split >= kReduceFinalBlock;  // a block per output, else a thread
    final_step.groups_x = std::uint32_t(std::clamp<std::int64_t>(final_blocks ? n_out : ceil_div(n_out, block), 1, 65535));
    final_step.params = params_of(p);
    plan.then.push_back(std::move(final_step));
  }
  plan.params = params_of(p);
  return plan;
}

// ---- the CPU reference -------------------------------------------------------------------------

struct CpuAcc {
  Scalar v;
  std::int64_t i = -1;  // argmax/argmin: the index; -1 for the identity
};

// Three-way comparison of two values of |t| (not NaN).
int compare_values(Scalar a, Scalar b, DType t) {
  if (is_float(t)) return a.f < b.f ? -1 : a.f > b.f ? 1 : 0;
  if (is_signed_int(t)) return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  return a.u < b.u ? -1 : a.u > b.u ? 1 : 0;
}

void reduce_run_cpu(const KernelSpec& spec, const PlanRequest& r) {
  const Geometry g = collapse(r);
  if (g.n_out == 0) return;
  const Combiner c = spec_combiner(spec);
  const bool arg = is_arg_combiner(c), tie_high = spec.attribute("tie_break") == "high";
  const DType acc_t = prologue_dtype(spec);
  Evaluator pro(spec.expr), fin(finish_expr(spec));
  std::optional<Evaluator> comb;
  if (!arg) comb.emplace(combine_expr(c, acc_t));
  const CpuAcc identity{identity_value(c, acc_t), -1};
  auto combine = [&](const CpuAcc& a, const CpuAcc& b) -> CpuAcc {
    if (!arg) {
      const Scalar in[2] = {a.v, b.v};
      return {comb->eval(in), -1};
    }
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    const bool an = is_float(acc_t) && std::isnan(a.v.f), bn = is_float(acc_t) && std::isnan(b.v.f);
    bool take_b;
    const int cmp = an || bn ? 0 : compare_values(b.v, a.v, acc_t);
    if (an != bn) take_b = bn;
    else if (cmp != 0) take_b = c == Combiner::argmax ? cmp > 0 : cmp < 0;
    else take_b = tie_high ? b.i > a.i : b.i < a.i;
    return take_b ? b : a;
  };
  const std::size_t k = r.inputs.size();
  std::vector<const std::byte*> base(k);
  std::vector<std::size_t> esize(k);
  for (std::size_t i = 0; i < k; ++i) {
    base[i] = reinterpret_cast<const std::byte*>(r.inputs[i].address);
    esize[i] = dtype_size(spec.inputs[i]);
  }
  std::vector<Scalar> in(k);
  std::vector<std::int64_t> obase(k), off(k);
  auto element = [&](std::int64_t j) -> CpuAcc {
    std::int64_t rem = j;
    std::copy(obase.begin(), obase.end(), off.begin());
    for (std::size_t d = g.red_shape.size(); d-- > 0;) {
      const std::int64_t idx = rem % g.red_shape[d];
      rem /= g.red_shape[d];
      for (std::size_t i = 0; i < k; ++i) off[i] += idx * g.red_strides[i][d];
    }
    for (std::size_t i = 0; i < k; ++i) in[i] = load_scalar(spec.inputs[i], base[i] + off[i] * std::int64_t(esize[i]));
    return {pro.eval(in.data()), j};
  };
  // Pairwise: runs of up to kChunk in order, halves combined (error grows with log n).
  auto range = [&](auto&& self, std::int64_t lo, std::int64_t hi) -> CpuAcc {
    if (hi - lo <= kChunk) {
      CpuAcc a = identity;
      for (std::int64_t j = lo; j < hi; ++j) a = combine(a, element(j));
      return a;
    }
    const std::int64_t mid = lo + (hi - lo) / 2;
    const CpuAcc left = self(self, lo, mid);
    return combine(left, self(self, mid, hi));
  };
  auto* dst = reinterpret_cast<std::byte*>(r.out);
  const std::size_t osize = dtype_size(spec.output);
  for (std::int64_t o = 0; o < g.n_out; ++o) {
    std::int64_t rem = o;
    std::fill(obase.begin(), obase.end(), 0);
    for (std::size_t d = g.out_shape.size(); d-- > 0;) {
      const std::int64_t idx = rem % g.out_shape[d];
      rem /= g.out_shape[d];
      for (std::size_t i = 0; i < k; ++i) obase[i] += idx * g.out_strides[i][d];
    }
    const CpuAcc a = range(range, 0, g.n_red);
    const Scalar fin_in[2] = {arg ? Scalar::from_i(a.i) : a.v, Scalar::from_i(g.n_red)};
    store_scalar(spec.output, dst + o * std::int64_t(osize), fin.eval(fin_in));
  }
}

FamilyCost reduce_cost(const KernelSpec& spec) {
  FamilyCost c;  // per reduced element: the inputs are read once; the outputs are few
  for (DType t : spec.inputs) c.bytes_per_element += double(dtype_size(t));
  const Expr pruned = spec.expr.pruned();
  c.flops_per_element = 1;  // the combine
  for (const Node& n : pruned.nodes())
    if (n.kind == NodeKind::op && n.op != Op::as_type && n.op != Op::select) c.flops_per_element += 1;
  return c;
}

std::string combiner_list() {
  std::string l;
  for (const CombinerInfo& i : kCombiners) l.append(l.empty() ? "" : ", ").append(i.name);
  return l;
}

// `reduce` names the combiner, `expr` is the prologue, `epilogue` (optional) is over acc (the
// reduced value) and n (the count, s64), `tie_break` "low"/"high" for argmax/argmin.
KernelSpec reduce_from_manifest(const ManifestTable& t, const Expr& prologue, std::optional<DType> output) {
  const std::optional<std::string> rs = t.string("reduce");
  if (!rs) t.error("", "[[kernel]] needs a 'reduce' key");
  const auto c = find_combiner(*rs);
  if (!c) {
    std::vector<std::string_view> names;
    for (const CombinerInfo& i : kCombiners) names.push_back(i.name);
    t.error("reduce", fmt::format("unknown reduction '{}'{} (expected one of: {})", *rs, did_you_mean(*rs, names),
                                  combiner_list()));
  }
  bool tie_high = false;
  if (const auto v = t.string("tie_break")) {
    if (*v != "low" && *v != "high") t.error("tie_break", fmt::format("'tie_break' must be \"low\" or \"high\", not '{}'", *v));
    if (!is_arg_combiner(*c)) t.error("tie_break", fmt::format("'tie_break' applies to argmax and argmin, not {}", *rs));
    tie_high = *v == "high";
  }
  const DType values = prologue.dtype(prologue.root());
  if (!(combiner_info(*c).accepts & dtype_bit(values)))
    t.error("expr", fmt::format("{} does not accept {} values", combiner_info(*c).op, dtype_name(values)));
  const std::optional<Expr> epilogue = t.expr("epilogue", {reduce_result_dtype(*c, values), DType::s64}, {"acc", "n"});
  try {
    return make_reduce_spec(*c, prologue, epilogue ? &*epilogue : nullptr, output, tie_high);
  } catch (const Error& e) {
    t.error("", e.what());
  }
}

std::span<const std::string_view> reduce_op_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const CombinerInfo& i : kCombiners) v.push_back(i.op);
    return v;
  }();
  return names;
}

// The plain reduction of |op| ("sum", "reduce_max" or "max", ...) for each dtype it accepts.
std::vector<KernelSpec> reduce_expand_op(std::string_view op, const std::vector<DType>& dtypes) {
  std::vector<KernelSpec> out;
  const auto c = find_combiner(op);
  if (!c) return out;
  for (DType d : dtypes) {
    if (!(kCombiners[int(*c)].accepts & dtype_bit(d))) continue;
    Expr e;
    e.set_root(e.input(0, d));
    out.push_back(make_reduce_spec(*c, e));
  }
  return out;
}

// The tensor form with the axes to reduce (no raw-buffer form: a reduction needs shapes).
std::string reduce_api_functions(const ApiFunction& f) {
  std::string params, args;
  for (std::size_t i = 0; i < f.params.size(); ++i) {
    params += fmt::format("const kiln::Tensor& {}, ", f.params[i]);
    args.append(i ? ", " : "").append(f.params[i]);
  }
  return fmt::format(
      "{}inline kiln::Tensor {}({}const std::vector<int>& axes = {{}}, bool keep_axes = false,\n"
      "    const kiln::Tensor* into = nullptr) {{\n"
      "  return detail::{}().reduce({{{}}}, axes, keep_axes, into);\n}}\n",
      f.comment, f.name, params, f.kernel, args);
}

}  // namespace

std::span<const CombinerInfo> combiner_table() { return kCombiners; }
const CombinerInfo& combiner_info(Combiner c) { return kCombiners[int(c)]; }

std::optional<Combiner> find_combiner(std::string_view name) {
  for (const CombinerInfo& c : kCombiners)
    if (c.name == name || c.op == name) return c.combiner;
  return std::nullopt;
}

bool is_arg_combiner(Combiner c) { return c == Combiner::argmax || c == Combiner::argmin; }

DType reduce_result_dtype(Combiner c, DType t) {
  switch (c) {
    case Combiner::sum: case Combiner::product:
      return is_signed_int(t) ? DType::s64 : (is_unsigned_int(t) || t == DType::pred) ? DType::u64 : t;
    case Combiner::all: case Combiner::any: return DType::pred;
    case Combiner::argmax: case Combiner::argmin: return DType::s64;
    default: return t;
  }
}

DType reduce_accumulator_dtype(Combiner c, DType t) {
  if (c == Combiner::all || c == Combiner::any) return DType::pred;
  if (t == DType::f16 || t == DType::bf16) return DType::f32;
  if (c == Combiner::sum || c == Combiner::product) return reduce_result_dtype(c, t);
  return t;
}

Combiner spec_combiner(const KernelSpec& spec) {
  if (auto c = find_combiner(spec.attribute("combiner"))) return *c;
  fail(ErrorCode::invalid_argument, fmt::format("{}: a reduce spec without a known combiner ('{}')", spec.family,
                                                spec.attribute("combiner")));
}

KernelSpec make_reduce_spec(Combiner c, const Expr& prologue, const Expr* epilogue, std::optional<DType> output,
                            bool tie_high) {
  const CombinerInfo& info = combiner_info(c);
  const DType values = prologue.dtype(prologue.root());
  if (!(info.accepts & dtype_bit(values)))
    fail(ErrorCode::dtype_mismatch, fmt::format("{} does not accept {} values", info.op, dtype_name(values)));
  const DType acc = reduce_accumulator_dtype(c, values), result = reduce_result_dtype(c, values);
  KernelSpec spec;
  spec.family = "reduce";
  spec.inputs = prologue.input_dtypes();
  spec.expr = prologue;
  // all/any: a value counts when it is non-zero (as_type to pred); others convert exactly or widen.
  spec.expr.set_root(spec.expr.cast(prologue.root(), acc));
  spec.expr = spec.expr.pruned();
  spec.set_attribute("combiner", std::string(info.name));
  // The result dtype is part of the spec: max over f16 values accumulates in f32 but returns f16.
  spec.set_attribute("result", std::string(dtype_name(result)));
  if (is_arg_combiner(c)) spec.set_attribute("tie_break", tie_high ? "high" : "low");
  DType out = result;
  if (epilogue) {
    const auto& in = epilogue->input_dtypes();
    if (in.empty() || in.size() > 2 || in[0] != result || (in.size() == 2 && in[1] != DType::s64))
      fail(ErrorCode::invalid_argument,
           fmt::format("the epilogue of a {} of {} values takes (acc: {}, n: s64), not ({})", info.op,
                       dtype_name(values), dtype_name(result), [&] {
                         std::string s;
                         for (DType t : in) s.append(s.empty() ? "" : ", ").append(dtype_name(t));
                         return s;
                       }()));
    spec.epilogue = epilogue->pruned();
    out = spec.epilogue.dtype(spec.epilogue.root());
  }
  spec.output = output.value_or(out);
  return spec;
}

// kiln::jit: an elementwise consumer of the reduced values moved into the epilogue (which is over
// the reduced value and the count only, so a consumer with other tensor operands stays apart; its
// scalar operands are literals by then): the new epilogue is the consumer of (the old epilogue's
// value converted to the output dtype).
std::optional<EpilogueFusion> reduce_fuse_epilogue(const KernelSpec& spec, std::span<const std::int64_t>,
                                                   std::span<const int>, const Expr& consumer, int slot, const std::vector<std::int64_t>&,
                                                   const std::vector<std::vector<std::int64_t>>& strides,
                                                   std::string* why) {
  if (!strides.empty() || consumer.num_inputs() != 1 || slot != 0) {
    if (why)
      *why = "the consumer reads other tensors; a reduction's epilogue is over the reduced value and the count only";
    return std::nullopt;
  }
  const DType result = parse_dtype(spec.attribute("result")).value_or(spec.output);
  Expr e;
  const NodeId acc = e.input(0, result), n = e.input(1, DType::s64);
  NodeId value = spec.epilogue.nodes().empty() ? acc : inline_expr(e, spec.epilogue, {acc, n});
  value = e.cast(value, spec.output);
  e.set_root(inline_expr(e, consumer, {value}));
  EpilogueFusion out;
  out.spec = spec;
  out.spec.epilogue = e.pruned();
  out.spec.output = out.spec.epilogue.dtype(out.spec.epilogue.root());
  return out;
}

const Family kReduceFamily = {
    "reduce", kEntryPoints, kSlots, kManifestKeys, reduce_supports, reduce_emit_cuda, reduce_emit_glsl, reduce_plan,
    reduce_run_cpu, reduce_cost,
    "out[o] = epilogue(combine_r prologue(in0[o, r], ...), n): sum product max min all any argmax argmin over any axes",
    reduce_from_manifest, reduce_op_names, reduce_expand_op, reduce_api_functions, {},
    /*elementwise=*/false, /*pointwise_inputs=*/true, reduce_fuse_epilogue,
};

Scalar combiner_identity(Combiner c, DType acc) { return identity_value(c, acc); }
Expr combiner_expr(Combiner c, DType acc) { return combine_expr(c, acc); }

}  // namespace kiln
