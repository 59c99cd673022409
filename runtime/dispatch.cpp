#include "runtime/dispatch.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/family.hpp"
#include "runtime/jit.hpp"
#include "runtime/ops.hpp"
#include "runtime/trace.hpp"

namespace kiln {

namespace {

// "shapes [4,3] and [4,2] (f16, f16 on vulkan:0)"; when the operands are not all on one device,
// each dtype names its own: "(f32 on cpu, f32 on vulkan:0)".
std::string operands_text(const std::vector<Tensor>& xs) {
  bool one_device = !xs.empty() && xs[0].defined();
  for (const Tensor& t : xs) one_device = one_device && t.defined() && &t.device() == &xs[0].device();
  std::string shapes, dtypes;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    shapes.append(i ? (i + 1 == xs.size() ? " and " : ", ") : "").append(shape_text(xs[i].shape()));
    dtypes.append(i ? ", " : "").append(dtype_name(xs[i].dtype()));
    if (!one_device) dtypes.append(xs[i].defined() ? " on " + xs[i].device().id() : " (undefined)");
  }
  return fmt::format("shapes {} ({}{})", shapes, dtypes, one_device ? " on " + xs[0].device().id() : "");
}

}  // namespace

std::string layout_text(const Tensor& t) {
  if (!t.defined()) return t.describe();
  return fmt::format("{}, strides {}{}{}", t.describe(), shape_text(t.strides()),
                     t.offset() ? fmt::format(", offset {}", t.offset()) : "",
                     t.is_contiguous() ? " (contiguous)" : " (not contiguous)");
}

std::vector<PlanOperand> plan_operands(const std::vector<Tensor>& operands) {
  std::vector<PlanOperand> ops;
  for (const Tensor& t : operands) ops.push_back({t.address(), std::span<const std::int64_t>(t.strides())});
  return ops;
}

// Kiln's ops are kiln::<op>; a generated function names itself ("app::swiglu (kernels.toml:3:1)").
static std::string op_title(std::string_view op) {
  return op.find("::") != std::string_view::npos ? std::string(op) : "kiln::" + std::string(op);
}

void fail_op(ErrorCode code, std::string_view op, const std::vector<Tensor>& operands, const std::string& what) {
  if (operands.empty()) fail(code, fmt::format("{}: {} (no operands)", op_title(op), what));
  fail(code, fmt::format("{}: {} — {}", op_title(op), what, operands_text(operands)));
}

namespace {

// The lowest and one past the highest byte |t| can touch (same storage only).
std::pair<std::int64_t, std::int64_t> byte_span(const Tensor& t) {
  std::int64_t lo = t.offset(), hi = t.offset();
  for (std::size_t d = 0; d < t.shape().size(); ++d) {
    const std::int64_t reach = (t.shape()[d] - 1) * t.strides()[d];
    (reach < 0 ? lo : hi) += reach;
  }
  const std::int64_t es = std::int64_t(dtype_size(t.dtype()));
  return {lo * es, (hi + 1) * es};
}

// The dimensions of |shape| a map kernel sees (codegen/families/map.cpp): size-1 ones dropped,
// neighbours merged where every operand's strides continue each other.
int collapsed_rank(const Shape& shape, const std::vector<Tensor>& views) {
  int rank = 0;
  std::size_t last = 0;
  bool any = false;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = any;
    for (const Tensor& v : views) merge = merge && v.strides()[last] == v.strides()[d] * shape[d];
    rank += merge ? 0 : 1;
    last = d;
    any = true;
  }
  return rank;
}
}  // namespace

bool may_overlap(const Tensor& x, const Tensor& y) {
  if (x.storage() != y.storage() || x.numel() == 0 || y.numel() == 0) return false;
  const auto [xl, xh] = byte_span(x);
  const auto [yl, yh] = byte_span(y);
  return xl < yh && yl < xh;
}

void check_operands(std::string_view op, const std::vector<Tensor>& xs) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined())
      fail(ErrorCode::invalid_argument, fmt::format("{}: operand {} is an undefined tensor", op_title(op), i));
    if (&xs[i].device() != &xs[0].device())
      fail_op(ErrorCode::invalid_argument, op, xs,
              fmt::format("operands are on different devices ({} and {}); move them with to()",
                          xs[0].device().id(), xs[i].device().id()));
  }
}

Shape check_spec_operands(std::string_view op, const KernelSpec& spec, const std::vector<Tensor>& operands) {
  check_operands(op, operands);
  if (operands.size() != spec.inputs.size())
    fail_op(ErrorCode::invalid_argument, op, operands,
            fmt::format("the expression takes {} inputs, got {}", spec.inputs.size(), operands.size()));
  for (std::size_t k = 0; k < operands.size(); ++k)
    if (operands[k].dtype() != spec.inputs[k])
      fail_op(ErrorCode::dtype_mismatch, op, operands,
              fmt::format("input {} of the expression is {}, the operand is {}", k, dtype_name(spec.inputs[k]),
                          dtype_name(operands[k].dtype())));
  std::vector<Shape> shapes;
  for (const Tensor& t : operands) shapes.push_back(t.shape());
  auto shape = broadcast_shapes(shapes);
  if (!shape) fail_op(ErrorCode::shape_mismatch, op, operands, "shapes do not broadcast");
  // Its count must fit: a reduction of broadcast operands allocates no tensor of this shape.
  std::int64_t n = 1;
  for (std::int64_t d : *shape)
    if (__builtin_mul_overflow(n, std::max<std::int64_t>(d, 1), &n))
      fail_op(ErrorCode::invalid_argument, op, operands,
              fmt::format("the broadcast shape {} has more than 2^63 elements", shape_text(*shape)));
  return *shape;
}

Tensor run_map_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                      const std::vector<Tensor>& operands, const Tensor* into, const Registry* first,
                      const KernelEntry* entry) {
  const Shape shape = check_spec_operands(op, spec, operands);
  Device& device = operands.empty() ? default_device() : operands[0].device();
  Tensor out = result_tensor(op, operands, into, shape, spec.output, device, Overlap::in_place);
  if (out.numel() == 0) return out;
  std::vector<Tensor> views;
  for (const Tensor& t : operands) views.push_back(t.broadcast_to(shape));
  // More dimensions that do not merge than a map kernel takes (rank 6): operands copied dense, in
  // order, until the others merge (the CPU reference takes any rank). An identity map (a copy:
  // Tensor::contiguous's, a user's) copies its operand through the host instead, since its dense
  // copy would come back here.
  const bool copy = spec.expr.nodes().size() == 1 && spec.expr.node(spec.expr.root()).kind == NodeKind::input;
  if (device.backend() != Backend::cpu && shape.size() > std::size_t(kMaxMapRank) && !(copy && active_trace()))
    for (std::size_t k = 0; k < views.size() && collapsed_rank(shape, views) > kMaxMapRank; ++k) {
      if (views[k].is_contiguous()) continue;
      if (!copy) {
        views[k] = views[k].contiguous();
        continue;
      }
      const std::vector<std::byte> host = views[k].to_host();
      views[k] = Tensor::from_host(host.data(), host.size(), views[k].shape(), views[k].dtype(), device);
    }
  const auto ops = plan_operands(views);
  run_plan(op, spec, name, operands, device, {out.shape(), ops, out.address(), {}, spec.block_size}, first, entry);
  return out;
}

Tensor result_tensor(std::string_view op, const std::vector<Tensor>& operands, const Tensor* into, const Shape& shape,
                     DType dtype, Device& device, Overlap overlap, std::string_view where) {
  if (!into) return Tensor::empty(shape, dtype, device);
  if (!into->defined() || into->shape() != shape || into->dtype() != dtype || !into->is_contiguous() ||
      &into->device() != &device)
    fail_op(ErrorCode::invalid_argument, op, operands,
            fmt::format("the output{}{} must be a contiguous {} {} on {}, got {}", where.empty() ? "" : " ", where,
                        shape_text(shape), dtype_name(dtype), device.id(), layout_text(*into)));
  for (const Tensor& t : operands) {
    if (!may_overlap(*into, t)) continue;
    const bool same = t.dtype() == into->dtype() && t.offset() == into->offset() && t.shape() == into->shape() &&
                      t.strides() == into->strides();
    if (overlap == Overlap::in_place && same) continue;
    fail_op(ErrorCode::invalid_argument, op, operands,
            fmt::format("the output {} overlaps an operand ({}): other workgroups would read what it overwrites{}",
                        layout_text(*into), layout_text(t),
                        overlap == Overlap::in_place ? " (only an operand that is exactly the output may share its memory)"
                                                     : ""));
  }
  trace_keep_output(*into);  // a kiln::jit replay writes it: the function keeps it alive
  return *into;
}

void run_plan(std::string_view op, const KernelSpec& spec, const std::string* name, const std::vector<Tensor>& operands,
              Device& device, PlanRequest request, const Registry* first, const KernelEntry* entry,
              const std::string* canonical) {
  if (trace_launch(op, spec, name, operands, device, request, first, entry)) return;  // kiln::jit is tracing
  if (device.backend() == Backend::cpu) {
    // The reference takes any kernel, but a program checked on the CPU must not break on a GPU:
    // what neither GPU target's kernels take (more inputs than they have, ...) is refused here too.
    const Family& family = family_of(spec);
    std::string why;
    if (!family.supports(spec, Target::glsl, &why) && !family.supports(spec, Target::cuda, nullptr))
      fail_op(ErrorCode::unsupported, op, operands, why + " (on every backend, the CPU's included)");
    family.run_cpu(spec, request);
    return;
  }
  const PreparedRun run = prepare_run(op, spec, name, operands, device, std::move(request), first, entry, canonical);
  Stream& stream = device.default_stream();
  launch(stream, run.kernel, run.plan);
  for (const LaunchStep& step : run.plan.then) launch(stream, run.kernel, step);
}

PreparedRun prepare_run(std::string_view op, const KernelSpec& spec, const std::string* name,
                        const std::vector<Tensor>& operands, Device& device, PlanRequest request, const Registry* first,
                        const KernelEntry* entry, const std::string* canonical_in) {
  const Family& family = family_of(spec);
  PreparedRun run;
  // Planned before the kernel is resolved, so that the JIT compiles only the functions it uses.
  auto plan = [&](int block_size) {
    std::string no_plan;
    request.block_size = block_size;
    request.scratch = 0;
    run.scratch.reset();
    run.plan = family.plan(spec, request, &no_plan);
    if (run.plan.function >= 0 && run.plan.scratch_bytes > 0) {  // freed when the stream is done with it
      run.scratch = device.allocate(run.plan.scratch_bytes);
      request.scratch = run.scratch->device_address();
      run.plan = family.plan(spec, request, &no_plan);
    }
    if (run.plan.function < 0) fail_op(ErrorCode::unsupported, op, operands, no_plan);
    const std::uint64_t limit = device.info().loop_limit;
    if (limit && run.plan.loop_iterations > limit)  // (the driver would skip the rest silently)
      fail_op(ErrorCode::unsupported, op, operands,
              fmt::format("{} ends a shader invocation's loops after {} iterations in all, and this {} kernel may "
                          "loop up to {} times in one invocation for these shapes (a long row or K): the results "
                          "would be wrong; run it on another device (cpu, a GPU)",
                          device.info().name, limit, spec.family, run.plan.loop_iterations));
  };
  request.subgroup_size = device.info().subgroup_arithmetic ? device.info().subgroup_size : 0;
  plan(spec.block_size);
  std::string why, computed, canonical;
  const std::string* canon = name && canonical_in && !canonical_in->empty() ? canonical_in : nullptr;
  if (!name && !entry) {
    canonical = spec.canonical();
    name = &(computed = spec.name(canonical));
    canon = &canonical;
  }
  const FunctionSet functions = functions_of(run.plan);
  try {
    run.kernel = entry ? resolve_entry(device, spec, *first, *entry, &why, functions)
                       : resolve_kernel(device, spec, *name, first, &why, functions, canon);
  } catch (const Error& e) {  // a JIT compile error: give it the op, the shapes and the device
    if (e.code() != ErrorCode::compile_error) throw;
    fail_op(e.code(), op, operands, e.what());
  }
  if (!run.kernel)
    fail_op(ErrorCode::unsupported, op, operands,
            fmt::format("kernel {} is not in the built-in library and cannot be compiled just in time on {}: {}",
                        entry ? entry->name : *name, device.id(), why));
  // A registry built with another block size (it has every function, so the new plan's are there).
  if (run.kernel.entry->block_size != request.block_size) plan(run.kernel.entry->block_size);
  return run;
}

FunctionSet functions_of(const LaunchPlan& plan) {
  FunctionSet s = FunctionSet(1) << plan.function;
  for (const LaunchStep& step : plan.then) s |= FunctionSet(1) << step.function;
  return s;
}

bool built_for(const KernelEntry& entry, const Device& device) {
  if (device.backend() == Backend::cuda) return entry.cuda_image >= 0;
  if (device.backend() != Backend::vulkan || entry.num_functions <= 0) return false;
  for (int f = 0; f < entry.num_functions; ++f)
    if (entry.functions[f].spirv.empty()) return false;
  return device.runs_as_built(entry, nullptr);
}

KernelRef resolve_kernel(Device& device, const KernelSpec& spec, const std::string& name, const Registry* first,
                         std::string* why, FunctionSet functions, const std::string* canonical) {
  std::string own;
  const std::string& text = canonical ? *canonical : (own = spec.canonical());
  for (const Registry* r : {first, &builtin_registry()}) {
    const KernelEntry* e = r ? r->find(name) : nullptr;
    if (e && built_for(*e, device) && e->spec && text == e->spec) return {r, e};
  }
  const JitKernel jit = jit_kernel(device, spec, why, &name, functions, &text);
  return {jit.registry, jit.entry};
}

KernelRef resolve_entry(Device& device, const KernelSpec& spec, const Registry& registry, const KernelEntry& entry,
                        std::string* why, FunctionSet functions) {
  if (built_for(entry, device)) return {&registry, &entry};
  const JitKernel jit = jit_kernel(device, spec, why, nullptr, functions);  // the build left this target out
  return {jit.registry, jit.entry};
}

namespace {

const Kernel& loaded_kernel(Stream& stream, const KernelRef& ref, const LaunchStep& plan) {
  const KernelEntry& e = *ref.entry;
  if (plan.function < 0 || plan.function >= e.num_functions)
    fail(ErrorCode::internal, fmt::format("{}: no function {} (the kernel has {})", e.name, plan.function, e.num_functions));
  const std::uint32_t want = e.functions[plan.function].params_bytes;
  if (want && want != plan.params.size())
    fail(ErrorCode::internal, fmt::format("{}: function {} takes {} bytes of params, the plan made {} (a registry "
                                          "built for another Kiln version?)", e.name, plan.function, want,
                                          plan.params.size()));
  return stream.device().kernel(*ref.registry, e, plan.function);
}

// The params of |plan| with its tensor maps written in (the device encodes them).
std::vector<std::byte> params_with_tensor_maps(Stream& stream, const LaunchStep& plan) {
  std::vector<std::byte> params = plan.params;
  for (const TensorMapRequest& r : plan.tensor_maps) {
    if (r.offset % 64 != 0 || std::size_t(r.offset) + 128 > params.size())
      fail(ErrorCode::internal, fmt::format("a tensor map at byte {} of a {}-byte params block", r.offset, params.size()));
    alignas(64) std::byte map[128];
    stream.device().encode_tensor_map(r, map);
    std::memcpy(params.data() + r.offset, map, sizeof map);
  }
  return params;
}

}  // namespace

void launch(Stream& stream, const KernelRef& ref, const LaunchStep& plan) {
  const Kernel& kernel = loaded_kernel(stream, ref, plan);
  Dim3 groups;
  groups.x = plan.groups_x;
  if (!plan.tensor_maps.empty()) {
    const std::vector<std::byte> params = params_with_tensor_maps(stream, plan);
    stream.launch(kernel, groups, params.data(), params.size());
    return;
  }
  stream.launch(kernel, groups, plan.params.data(), plan.params.size());
}

GraphLaunch graph_launch(Stream& stream, const KernelRef& ref, const LaunchStep& plan) {
  GraphLaunch g;
  g.kernel = &loaded_kernel(stream, ref, plan);
  g.groups.x = plan.groups_x;
  g.params = plan.tensor_maps.empty() ? plan.params : params_with_tensor_maps(stream, plan);
  return g;
}

}  // namespace kiln
