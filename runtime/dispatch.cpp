#include "runtime/dispatch.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/eval.hpp"
#include "runtime/jit.hpp"
#include "runtime/ops.hpp"

namespace kiln {

namespace {

std::string operands_text(const std::vector<Tensor>& xs) {
  std::string shapes, dtypes;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    shapes += (i ? (i + 1 == xs.size() ? " and " : ", ") : "") + shape_text(xs[i].shape());
    dtypes += (i ? ", " : "") + std::string(dtype_name(xs[i].dtype()));
  }
  return fmt::format("shapes {} ({}{})", shapes, dtypes,
                     xs.empty() || !xs[0].defined() ? "" : " on " + xs[0].device().id());
}

// Dimensions of a strided launch after dropping size-1 dims and merging dims that are contiguous
// with each other in every operand.
struct Collapsed {
  Shape shape;
  std::vector<Shape> strides;  // per operand
};

Collapsed collapse(const Shape& shape, const std::vector<Tensor>& operands) {
  Collapsed c;
  c.strides.resize(operands.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !c.shape.empty();
    for (std::size_t k = 0; k < operands.size() && merge; ++k)
      merge = c.strides[k].back() == operands[k].strides()[d] * shape[d];
    if (merge) {
      c.shape.back() *= shape[d];
      for (std::size_t k = 0; k < operands.size(); ++k) c.strides[k].back() = operands[k].strides()[d];
    } else {
      c.shape.push_back(shape[d]);
      for (std::size_t k = 0; k < operands.size(); ++k) c.strides[k].push_back(operands[k].strides()[d]);
    }
  }
  if (c.shape.empty()) {
    c.shape.push_back(1);
    for (auto& s : c.strides) s.push_back(0);
  }
  return c;
}

Dim3 map_groups(const Kernel& kernel, std::uint64_t n, bool contiguous) {
  const std::uint64_t per_group = std::uint64_t(kernel.block_size()) * (contiguous ? 4 : 1);
  Dim3 groups;
  groups.x = std::uint32_t(std::clamp<std::uint64_t>((n + per_group - 1) / per_group, 1, 65535));
  return groups;
}

}  // namespace

void fail_op(ErrorCode code, std::string_view op, const std::vector<Tensor>& operands, const std::string& what) {
  fail(code, fmt::format("kiln::{}: {} — {}", op, what, operands_text(operands)));
}

void check_operands(std::string_view op, const std::vector<Tensor>& xs) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined()) fail(ErrorCode::invalid_argument, fmt::format("kiln::{}: operand {} is an undefined tensor", op, i));
    if (&xs[i].device() != &xs[0].device())
      fail_op(ErrorCode::invalid_argument, op, xs,
              fmt::format("operands are on different devices ({} and {}); move them with to()",
                          xs[0].device().id(), xs[i].device().id()));
  }
}

Tensor run_map_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                      const std::vector<Tensor>& operands, const Tensor* into, const Registry* first,
                      const KernelEntry* entry) {
  check_operands(op, operands);
  if (operands.size() != spec.inputs.size())
    fail_op(ErrorCode::invalid_argument, op, operands,
            fmt::format("the expression takes {} inputs, got {}", spec.inputs.size(), operands.size()));
  if (int(operands.size()) > kMaxMapInputs)
    fail_op(ErrorCode::unsupported, op, operands, fmt::format("kernels take at most {} inputs", kMaxMapInputs));
  for (std::size_t k = 0; k < operands.size(); ++k)
    if (operands[k].dtype() != spec.inputs[k])
      fail_op(ErrorCode::dtype_mismatch, op, operands,
              fmt::format("input {} of the expression is {}, the operand is {}", k, dtype_name(spec.inputs[k]),
                          dtype_name(operands[k].dtype())));
  std::vector<Shape> shapes;
  for (const Tensor& t : operands) shapes.push_back(t.shape());
  auto shape = broadcast_shapes(shapes);
  if (!shape) fail_op(ErrorCode::shape_mismatch, op, operands, "shapes do not broadcast");
  Device& device = operands.empty() ? default_device() : operands[0].device();
  Tensor out;
  if (into) {
    if (!into->defined() || into->shape() != *shape || into->dtype() != spec.output || !into->is_contiguous() ||
        &into->device() != &device)
      fail_op(ErrorCode::invalid_argument, op, operands,
              fmt::format("the output must be a contiguous {} {} on {}, got {}", shape_text(*shape),
                          dtype_name(spec.output), device.id(), into->describe()));
    out = *into;
  } else {
    out = Tensor::empty(*shape, spec.output, device);
  }
  if (out.numel() == 0) return out;
  std::vector<Tensor> views;
  for (const Tensor& t : operands) views.push_back(t.broadcast_to(*shape));
  if (device.backend() == Backend::cpu) {
    run_map_cpu(spec.expr, views, out);
    return out;
  }
  std::string why, computed;
  if (!name && !entry) name = &(computed = spec.name());
  const KernelRef ref = entry ? resolve_entry(device, spec, *first, *entry, &why)
                              : resolve_kernel(device, spec, *name, first, &why);
  if (!ref)
    fail_op(ErrorCode::unsupported, op, operands,
            fmt::format("kernel {} is not in the built-in library and cannot be compiled just in time on {}: {}",
                        entry ? entry->name : *name, device.id(), why));
  launch_map(op, ref, views, out);
  return out;
}

bool built_for(const KernelEntry& entry, Backend backend) {
  if (backend == Backend::cuda) return entry.cuda_image >= 0;
  if (backend == Backend::vulkan) return entry.num_functions > 0 && !entry.functions[0].spirv.empty();
  return false;
}

KernelRef resolve_kernel(Device& device, const KernelSpec& spec, const std::string& name, const Registry* first,
                         std::string* why) {
  for (const Registry* r : {first, &builtin_registry()}) {
    const KernelEntry* e = r ? r->find(name) : nullptr;
    if (e && built_for(*e, device.backend())) return {r, e};
  }
  const JitKernel jit = jit_kernel(device, spec, why, &name);
  return {jit.registry, jit.entry};
}

KernelRef resolve_entry(Device& device, const KernelSpec& spec, const Registry& registry, const KernelEntry& entry,
                        std::string* why) {
  if (built_for(entry, device.backend())) return {&registry, &entry};
  const JitKernel jit = jit_kernel(device, spec, why);  // the build left this target out
  return {jit.registry, jit.entry};
}

void launch_map(std::string_view op, const KernelRef& ref, const std::vector<Tensor>& operands, const Tensor& out) {
  Device& device = out.device();
  const std::uint64_t n = std::uint64_t(out.numel());
  bool contiguous = true;
  for (const Tensor& t : operands) contiguous = contiguous && t.is_contiguous() && t.shape() == out.shape();
  if (contiguous) {
    std::vector<std::uint64_t> in;
    for (const Tensor& t : operands) in.push_back(t.address());
    launch_map_contiguous(device.default_stream(), ref, in, out.address(), n);
    return;
  }
  Collapsed c = collapse(out.shape(), operands);
  if (c.shape.size() > std::size_t(kMaxMapRank))
    fail_op(ErrorCode::unsupported, op, operands,
            fmt::format("the broadcast has {} non-mergeable dimensions; kernels take at most {} "
                        "(make an operand contiguous first)", c.shape.size(), kMaxMapRank));
  const Kernel& kernel = device.kernel(*ref.registry, *ref.entry, kMapStrided);
  KilnStridedParams p{};
  p.out = out.address();
  p.n = n;
  p.rank = std::int64_t(c.shape.size());
  for (std::size_t d = 0; d < c.shape.size(); ++d) p.shape[d] = c.shape[d];
  for (std::size_t k = 0; k < operands.size(); ++k) {
    p.in[k] = operands[k].address();
    for (std::size_t d = 0; d < c.shape.size(); ++d) p.strides[k][d] = c.strides[k][d];
  }
  device.default_stream().launch(kernel, map_groups(kernel, n, false), &p, sizeof p);
}

void launch_map_contiguous(Stream& stream, const KernelRef& ref, const std::vector<std::uint64_t>& inputs,
                           std::uint64_t out, std::uint64_t n) {
  const Kernel& kernel = stream.device().kernel(*ref.registry, *ref.entry, kMapContiguous);
  KilnMapParams p{};
  p.out = out;
  for (std::size_t k = 0; k < inputs.size(); ++k) p.in[k] = inputs[k];
  p.n = n;
  stream.launch(kernel, map_groups(kernel, n, true), &p, sizeof p);
}

void run_map_cpu(const Expr& expr, const std::vector<Tensor>& operands, const Tensor& out) {
  Evaluator ev(expr);
  const Shape& shape = out.shape();
  const std::int64_t n = out.numel();
  const std::size_t k = operands.size();
  std::vector<const std::byte*> base(k);
  std::vector<std::size_t> esize(k);
  for (std::size_t i = 0; i < k; ++i) {
    base[i] = reinterpret_cast<const std::byte*>(operands[i].address());
    esize[i] = dtype_size(operands[i].dtype());
  }
  auto* dst = reinterpret_cast<std::byte*>(out.address());
  const std::size_t osize = dtype_size(out.dtype());
  std::vector<std::int64_t> idx(shape.size(), 0), off(k, 0);
  std::vector<Scalar> in(k);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < k; ++j) in[j] = load_scalar(operands[j].dtype(), base[j] + off[j] * esize[j]);
    store_scalar(out.dtype(), dst + i * osize, ev.eval(in.data()));
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) {
        for (std::size_t j = 0; j < k; ++j) off[j] += operands[j].strides()[d];
        break;
      }
      for (std::size_t j = 0; j < k; ++j) off[j] -= operands[j].strides()[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace kiln
