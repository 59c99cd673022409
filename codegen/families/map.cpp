// The map family: out[i] = f(in0[i], in1[i], ...), one fused elementwise expression over up to
// kMaxMapInputs broadcast inputs. Templates: templates/cuda/map.cuh, templates/glsl/map.glsl.
// Entry points: "contig" (every operand dense and of the output's shape: 16-byte vector accesses)
// and "strided" (any strides, after merging dimensions that are contiguous in every operand).
// An expression with more roots (Expr::more_roots, kiln::jit's sibling maps) is a map with several
// results, up to kMaxMapOutputs: result k > 0, of its root's dtype, goes to the request's
// more_outputs[k - 1] (dense, as out).
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/emit_parts.hpp"
#include "codegen/eval.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"

namespace kiln {

namespace {

using namespace emit_parts;

constexpr int kContiguous = 0, kStrided = 1;  // the entry points (runtime/registry.hpp: kMapContiguous, kMapStrided)
constexpr FamilyEntryPoint kEntryPoints[] = {
    {"contig", sizeof(KilnMapParams)},
    {"strided", sizeof(KilnStridedParams)},
};
constexpr std::string_view kSlots[] = {"expr"};
constexpr std::string_view kManifestKeys[] = {"name", "family", "expr", "inputs", "output", "targets", "block_size"};

bool map_supports(const KernelSpec& spec, Target target, std::string* why) {
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  if (spec.inputs.size() > std::size_t(kMaxMapInputs))
    return no(fmt::format("{} inputs; map kernels take at most {}", spec.inputs.size(), kMaxMapInputs));
  if (spec.expr.more_roots().size() >= std::size_t(kMaxMapOutputs))
    return no(fmt::format("{} results; map kernels have at most {}", spec.expr.more_roots().size() + 1,
                          kMaxMapOutputs));
  if (!spec.expr.more_roots().empty() && spec.expr.dtype(spec.expr.root()) != spec.output)
    return no(fmt::format("the first result is {}, the spec's output {}", dtype_name(spec.expr.dtype(spec.expr.root())),
                          dtype_name(spec.output)));
  (void)target;  // both targets run every op on every dtype (f64 functions: glsl/math_f64.glsl)
  return true;
}

// The entry points in |functions|, calling kiln::map_contiguous<suffix> and
// kiln::map_strided<suffix> with NAME_fn and |types| (the template's type arguments after the functor).
std::string cuda_entry_points(const KernelSpec& spec, std::string_view suffix, const std::string& types,
                              FunctionSet functions) {
  const std::string name = spec.name();
  std::string s;
  if (functions >> kContiguous & 1) {
    s += fmt::format("extern \"C\" __global__ void __launch_bounds__({}) {}_{}(kiln::KilnMapParams p) {{\n",
                     spec.block_size, name, kEntryPoints[kContiguous].suffix);
    s += fmt::format("  kiln::map_contiguous{}<{}_fn, {}>(p, {}_fn());\n}}\n", suffix, name, types, name);
  }
  // __grid_constant__: the strided loop indexes the params at run time; without it the 320-byte
  // block would be copied to local memory. The ABI is unchanged (a by-value parameter).
  if (functions >> kStrided & 1) {
    s += fmt::format("extern \"C\" __global__ void __launch_bounds__({}) {}_{}(const __grid_constant__ kiln::KilnStridedParams p) {{\n",
                     spec.block_size, name, kEntryPoints[kStrided].suffix);
    s += fmt::format("  kiln::map_strided{}<{}_fn, {}>(p, {}_fn());\n}}\n", suffix, name, types, name);
  }
  return s;
}

// The result types of a map with several results: storage types, then kiln::NoResult up to 4.
std::string cuda_result_types(const Expr& e) {
  const std::vector<NodeId> roots = e.roots();
  std::string s;
  for (std::size_t k = 0; k < std::size_t(kMaxMapOutputs); ++k)
    s += fmt::format("{}{}", k ? ", " : "", k < roots.size() ? cuda_storage(e.dtype(roots[k])) : "kiln::NoResult");
  return s;
}

// CUDA, several results: a functor storing each (as storage types) through references.
std::string map_multi_cuda(const KernelSpec& spec, const Expr& e, FunctionSet functions) {
  const std::string name = spec.name();
  const std::vector<NodeId> roots = e.roots();
  std::string params, inputs;
  for (std::size_t k = 0; k < std::size_t(kMaxMapOutputs); ++k)
    params += k < roots.size() ? fmt::format("{}& r{}, ", cuda_storage(e.dtype(roots[k])), k) : "kiln::NoResult&, ";
  for (std::size_t k = 0; k < spec.inputs.size(); ++k) {
    params += fmt::format("{}{} a{}", k ? ", " : "", cuda_storage(spec.inputs[k]), k);
    inputs += fmt::format(", {}", cuda_storage(spec.inputs[k]));
  }
  if (spec.inputs.empty()) params.resize(params.size() - 2);
  const std::string types = cuda_result_types(e) + inputs;
  std::string s = fmt::format("struct {}_fn {{\n", name);
  s += fmt::format("  __device__ __forceinline__ void operator()({}) const {{\n", params);
  s += cuda_locals(e, "    ");
  for (std::size_t k = 0; k < roots.size(); ++k)
    s += fmt::format("    r{} = kiln_store_{}(v{});\n", k, dtype_name(e.dtype(roots[k])), roots[k]);
  s += "  }\n};\n\n";
  return s + cuda_entry_points(spec, "_multi", types, functions);
}

// CUDA: a functor on storage types (it converts to compute types itself) and the two entry points.
std::string map_emit_cuda(const KernelSpec& spec, FunctionSet functions) {
  const Expr e = spec.expr.pruned();
  const std::string name = spec.name();
  std::string s;
  s += fmt::format("// ---- {}: {} ----\n", name, e.to_string());
  s += "// Generated by Kiln (codegen/emit.cpp). Compile with --fmad=false (see cuda/ops.cuh).\n";
  s += "#include \"cuda/map.cuh\"\n\n";
  if (!e.more_roots().empty()) return s + map_multi_cuda(spec, e, functions);
  std::string params, types = std::string(cuda_storage(spec.output));
  for (std::size_t k = 0; k < spec.inputs.size(); ++k) {
    params += fmt::format("{}{} a{}", k ? ", " : "", cuda_storage(spec.inputs[k]), k);
    types += fmt::format(", {}", cuda_storage(spec.inputs[k]));
  }
  s += fmt::format("struct {}_fn {{\n", name);
  s += fmt::format("  __device__ __forceinline__ {} operator()({}) const {{\n", cuda_storage(spec.output), params);
  s += cuda_locals(e, "    ");
  s += fmt::format("    return kiln_store_{}(v{});\n  }}\n}};\n\n", dtype_name(spec.output), e.root());
  return s + cuda_entry_points(spec, "", types, functions);
}

// GLSL: #version, the hooks, the prelude, kiln_expr, the map template. Self-contained.
std::string map_emit_glsl(const KernelSpec& spec, int function) {
  const Expr e = spec.expr.pruned();
  const int num_inputs = int(spec.inputs.size());
  const std::vector<NodeId> roots = e.roots();
  std::size_t max_size = dtype_size(spec.output);
  for (DType t : spec.inputs) max_size = std::max(max_size, dtype_size(t));
  std::vector<DType> storage = spec.inputs;
  storage.push_back(spec.output);
  for (std::size_t k = 1; k < roots.size(); ++k) {
    storage.push_back(e.dtype(roots[k]));
    max_size = std::max(max_size, dtype_size(e.dtype(roots[k])));
  }

  std::string s = "#version 450\n";
  s += "#extension GL_GOOGLE_cpp_style_line_directive : require\n";
  s += fmt::format("// ---- {} ({}): {} ----\n", spec.name(), function == 0 ? "contiguous" : "strided", e.to_string());
  s += "// Generated by Kiln (codegen/emit.cpp). Compile with glslc --target-env=vulkan1.3.\n";
  s += glsl_prelude(storage, {&e}, function == 1 ? std::vector<std::string>{"#define KILN_STRIDED 1"}
                                                 : std::vector<std::string>{});

  s += fmt::format("// ---- instantiation: {} ----\n#line {} \"{}\"\n", spec.name(), 1, spec.name());
  s += fmt::format("#define KILN_NUM_INPUTS {}\n#define KILN_VEC {}\n", num_inputs, 16 / max_size);
  for (int k = 0; k < num_inputs; ++k) {
    const DType t = spec.inputs[k];
    s += fmt::format("#define KILN_T{} {}\n#define KILN_S{} {}\n", k, glsl_storage(t), k, dtype_size(t));
    s += fmt::format("#define KILN_LOAD{}(v) {}\n#define KILN_UNPACK{}(b) {}\n", k, glsl_load_hook(t), k,
                     glsl_unpack_hook(t));
  }
  s += fmt::format("#define KILN_TOUT {}\n#define KILN_SOUT {}\n#define KILN_COUT {}\n", glsl_storage(spec.output),
                   dtype_size(spec.output), glsl_compute(spec.output));
  s += fmt::format("#define KILN_STORE(c) {}\n#define KILN_PACK(c) {}\n", glsl_store_hook(spec.output),
                   glsl_pack_hook(spec.output));
  std::string args, fparams;
  for (int k = 0; k < num_inputs; ++k) {
    args += fmt::format("{}a{}", k ? ", " : "", k);
    fparams += fmt::format("{}{} a{}", k ? ", " : "", glsl_compute(spec.inputs[k]), k);
  }
  if (roots.size() > 1) {  // several results: kiln_exprs sets each through an out parameter
    s += fmt::format("#define KILN_NUM_OUTPUTS {}\n", roots.size());
    std::string outs, oparams;
    for (std::size_t k = 0; k < roots.size(); ++k) {
      const DType t = e.dtype(roots[k]);
      if (k > 0) {
        s += fmt::format("#define KILN_TOUT{} {}\n#define KILN_SOUT{} {}\n#define KILN_COUT{} {}\n", k, glsl_storage(t),
                         k, dtype_size(t), k, glsl_compute(t));
        s += fmt::format("#define KILN_STORE{}(c) {}\n#define KILN_PACK{}(c) {}\n", k, glsl_store_hook(t), k,
                         glsl_pack_hook(t));
      }
      outs += fmt::format("{}r{}", num_inputs || k ? ", " : "", k);
      oparams += fmt::format("{}out {} r{}", num_inputs || k ? ", " : "", glsl_compute(t), k);
    }
    s += fmt::format("#define KILN_EXPRS(a0, a1, a2, a3, r0, r1, r2, r3) kiln_exprs({}{})\n", args, outs);
    s += fmt::format("void kiln_exprs({}{}) {{\n", fparams, oparams);
    s += glsl_locals(e, "  ");
    for (std::size_t k = 0; k < roots.size(); ++k) s += fmt::format("  r{} = v{};\n", k, roots[k]);
    s += "}\n";
  } else {
    s += fmt::format("#define KILN_EXPR(a0, a1, a2, a3) kiln_expr({})\n", args);
    s += fmt::format("{} kiln_expr({}) {{\n", glsl_compute(spec.output), fparams);
    s += glsl_locals(e, "  ") + fmt::format("  return v{};\n}}\n", e.root());
  }
  s += glsl_inline("glsl/operands.glsl") + glsl_inline("glsl/map.glsl");
  return s;
}

std::uint32_t map_groups(std::uint64_t n, int block_size, bool contiguous) {
  const std::uint64_t per_group = std::uint64_t(block_size) * (contiguous ? 4 : 1);
  return std::uint32_t(std::clamp<std::uint64_t>((n + per_group - 1) / per_group, 1, 65535));
}

LaunchPlan map_plan(const KernelSpec& spec, const PlanRequest& r, std::string* why) {
  const std::span<const std::int64_t> shape = r.shape;
  const std::span<const PlanOperand> inputs = r.inputs;
  const std::uint64_t out = r.out;
  const int block_size = r.block_size;
  LaunchPlan plan;
  if (inputs.size() > std::size_t(kMaxMapInputs)) {
    *why = fmt::format("{} inputs; map kernels take at most {}", inputs.size(), kMaxMapInputs);
    return plan;
  }
  if (r.more_outputs.size() != spec.expr.more_roots().size()) {
    *why = fmt::format("the kernel has {} results; the request gives {} arrays", spec.expr.more_roots().size() + 1,
                       r.more_outputs.size() + 1);
    return plan;
  }
  std::uint64_t more_out[kMaxMapOutputs - 1] = {};
  for (std::size_t k = 0; k < r.more_outputs.size(); ++k) more_out[k] = r.more_outputs[k];
  std::uint64_t n = 1;
  for (std::int64_t d : shape) n *= std::uint64_t(d);
  // Dense row-major strides of the output's shape: operands with them take the contiguous path.
  std::vector<std::int64_t> dense(shape.size());
  for (std::int64_t d = std::int64_t(shape.size()) - 1, s = 1; d >= 0; --d) {
    dense[std::size_t(d)] = s;
    s *= std::max<std::int64_t>(shape[std::size_t(d)], 1);
  }
  bool contiguous = true;
  for (const PlanOperand& op : inputs)
    for (std::size_t d = 0; d < shape.size() && contiguous; ++d)
      contiguous = shape[d] == 1 || op.strides[d] == dense[d];
  if (contiguous) {
    KilnMapParams p{};
    p.out = out;
    for (std::size_t k = 0; k < inputs.size(); ++k) p.in[k] = inputs[k].address;
    p.n = n;
    std::copy(std::begin(more_out), std::end(more_out), p.more_out);
    plan.function = kContiguous;
    plan.groups_x = map_groups(n, block_size, true);
    plan.params = params_of(p);
    return plan;
  }
  // Drop size-1 dims and merge dims that are contiguous with each other in every operand.
  std::vector<std::int64_t> cshape;
  std::vector<std::vector<std::int64_t>> cstrides(inputs.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !cshape.empty();
    for (std::size_t k = 0; k < inputs.size() && merge; ++k)
      merge = cstrides[k].back() == inputs[k].strides[d] * shape[d];
    if (merge) {
      cshape.back() *= shape[d];
      for (std::size_t k = 0; k < inputs.size(); ++k) cstrides[k].back() = inputs[k].strides[d];
    } else {
      cshape.push_back(shape[d]);
      for (std::size_t k = 0; k < inputs.size(); ++k) cstrides[k].push_back(inputs[k].strides[d]);
    }
  }
  if (cshape.empty()) {
    cshape.push_back(1);
    for (auto& s : cstrides) s.push_back(0);
  }
  if (cshape.size() > std::size_t(kMaxMapRank)) {
    *why = fmt::format("the broadcast has {} non-mergeable dimensions; kernels take at most {} "
                       "(make an operand contiguous first)", cshape.size(), kMaxMapRank);
    return plan;
  }
  KilnStridedParams p{};
  p.out = out;
  p.n = n;
  p.rank = std::int64_t(cshape.size());
  std::copy(std::begin(more_out), std::end(more_out), p.more_out);
  for (std::size_t d = 0; d < cshape.size(); ++d) p.shape[d] = cshape[d];
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    p.in[k] = inputs[k].address;
    for (std::size_t d = 0; d < cshape.size(); ++d) p.strides[k][d] = cstrides[k][d];
  }
  plan.function = kStrided;
  plan.groups_x = map_groups(n, block_size, false);
  plan.params = params_of(p);
  return plan;
}

void map_run_cpu(const KernelSpec& spec, const PlanRequest& r) {
  const std::span<const std::int64_t> shape = r.shape;
  const std::span<const PlanOperand> inputs = r.inputs;
  const std::uint64_t out = r.out;
  if (r.more_outputs.size() != spec.expr.more_roots().size())
    fail(ErrorCode::invalid_argument, fmt::format("{}: the kernel has {} results; the request gives {} arrays",
                                                  spec.name(), spec.expr.more_roots().size() + 1, r.more_outputs.size() + 1));
  Evaluator ev(spec.expr);
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  const std::size_t k = inputs.size();
  std::vector<const std::byte*> base(k);
  std::vector<std::size_t> esize(k);
  for (std::size_t i = 0; i < k; ++i) {
    base[i] = reinterpret_cast<const std::byte*>(inputs[i].address);
    esize[i] = dtype_size(spec.inputs[i]);
  }
  auto* dst = reinterpret_cast<std::byte*>(out);
  const std::size_t osize = dtype_size(spec.output);
  std::vector<std::byte*> more(r.more_outputs.size());
  for (std::size_t m = 0; m < more.size(); ++m) more[m] = reinterpret_cast<std::byte*>(r.more_outputs[m]);
  std::vector<std::int64_t> idx(shape.size(), 0), off(k, 0);
  std::vector<Scalar> in(k);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j) in[j] = load_scalar(spec.inputs[j], base[j] + off[j] * std::int64_t(esize[j]));
    store_scalar(spec.output, dst + i * std::int64_t(osize), ev.eval(in.data()));
    for (std::size_t m = 0; m < more.size(); ++m) {
      const DType t = ev.root_dtype(m + 1);
      store_scalar(t, more[m] + i * std::int64_t(dtype_size(t)), ev.root_value(m + 1));
    }
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) {
        for (std::size_t j = 0; j < k; ++j) off[j] += inputs[j].strides[d];
        break;
      }
      for (std::size_t j = 0; j < k; ++j) off[j] -= inputs[j].strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

FamilyCost map_cost(const KernelSpec& spec) {
  FamilyCost c;
  const Expr pruned = spec.expr.pruned();  // alive for the loop: nodes() refers into it
  for (NodeId root : pruned.roots()) c.bytes_per_element += double(dtype_size(pruned.dtype(root)));
  for (DType t : spec.inputs) c.bytes_per_element += double(dtype_size(t));
  for (const Node& n : pruned.nodes())
    if (n.kind == NodeKind::op && n.op != Op::as_type && n.op != Op::select) c.flops_per_element += 1;
  return c;
}

KernelSpec map_from_manifest(const ManifestTable&, const Expr& e, std::optional<DType> output) {
  return make_map_spec(e, output.value_or(e.dtype(e.root())));
}

std::span<const std::string_view> map_op_names() { return op_names(); }

std::vector<KernelSpec> map_expand_op(std::string_view name, const std::vector<DType>& dtypes) {
  const auto op = find_op(name);
  return op ? expand_op(*op, dtypes) : std::vector<KernelSpec>{};
}

// A tensor overload (broadcasting) and a raw-buffer overload (n contiguous elements on a stream).
std::string map_api_functions(const ApiFunction& f) {
  std::string tensor_params, tensor_args, buffer_params, buffer_args;
  for (std::size_t i = 0; i < f.params.size(); ++i) {
    tensor_params += fmt::format("const kiln::Tensor& {}, ", f.params[i]);
    tensor_args.append(i ? ", " : "").append(f.params[i]);
    buffer_params += fmt::format("const kiln::Buffer& {}, ", f.params[i]);
    buffer_args.append(i ? ", &" : "&").append(f.params[i]);  // append, not "..." + string: GCC 12 -Wrestrict
  }
  return fmt::format(
      "{}inline kiln::Tensor {}({}const kiln::Tensor* into = nullptr) {{\n"
      "  return detail::{}().run({{{}}}, into);\n}}\n"
      "inline void {}(kiln::Stream& stream, {}kiln::Buffer& out, std::uint64_t n) {{\n"
      "  detail::{}().launch(stream, {{{}}}, out, n);\n}}\n",
      f.comment, f.name, tensor_params, f.kernel, tensor_args, f.name, buffer_params, f.kernel, buffer_args);
}

}  // namespace

const Family kMapFamily = {
    "map", kEntryPoints, kSlots, kManifestKeys, map_supports, map_emit_cuda, map_emit_glsl, map_plan, map_run_cpu,
    map_cost, "out[i] = expr(in0[i], in1[i], ...): one fused elementwise expression over broadcast inputs",
    map_from_manifest, map_op_names, map_expand_op, map_api_functions, {},
    /*elementwise=*/true, /*pointwise_inputs=*/true, /*fuse_epilogue=*/nullptr, /*jit_fast_compile=*/true,
};

}  // namespace kiln
