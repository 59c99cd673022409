// Tensor op dispatch: broadcasting, dtype promotion and the choice of kernel. The CPU backend
// evaluates expressions with the reference evaluator; GPU backends look the kernel spec up in the
// registry (built-in kernels) or compile it just in time (runtime/jit.cpp).
#include "runtime/ops.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/eval.hpp"
#include "codegen/spec.hpp"
#include "runtime/error.hpp"
#include "runtime/jit.hpp"

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

[[noreturn]] void op_fail(ErrorCode code, std::string_view op, const std::vector<Tensor>& xs,
                          const std::string& what) {
  fail(code, fmt::format("kiln::{}: {} — {}", op, what, operands_text(xs)));
}

void check_operands(std::string_view op, const std::vector<Tensor>& xs) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!xs[i].defined()) fail(ErrorCode::invalid_argument, fmt::format("kiln::{}: operand {} is an undefined tensor", op, i));
    if (&xs[i].device() != &xs[0].device())
      op_fail(ErrorCode::invalid_argument, op, xs,
              fmt::format("operands are on different devices ({} and {}); move them with to()",
                          xs[0].device().id(), xs[i].device().id()));
  }
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

void run_cpu(const KernelSpec& spec, const std::vector<Tensor>& operands, const Tensor& out) {
  Evaluator ev(spec.expr);
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

}  // namespace

bool built_for(const KernelEntry& entry, Backend backend) {
  if (backend == Backend::cuda) return entry.cuda_image >= 0;
  if (backend == Backend::vulkan) return entry.num_functions > 0 && !entry.functions[0].spirv.empty();
  return false;
}

namespace {

void run_gpu(std::string_view op, const KernelSpec& spec, const std::vector<Tensor>& operands,
             const Tensor& out, const Registry* first) {
  Device& device = out.device();
  // The caller's registry first, then the built-in one; an entry not built for this backend
  // (e.g. a build without nvcc) counts as absent, so the spec is compiled just in time instead.
  const Registry* registry = nullptr;
  const KernelEntry* entry = nullptr;
  for (const Registry* r : {first, &builtin_registry()}) {
    const KernelEntry* e = r ? r->find(spec.name()) : nullptr;
    if (e && built_for(*e, device.backend())) {
      registry = r;
      entry = e;
      break;
    }
  }
  if (!entry) {
    std::string why;
    auto jit = jit_kernel(device, spec, &why);
    if (!jit.entry)
      op_fail(ErrorCode::unsupported, op, operands,
              fmt::format("kernel {} is not in the built-in library and cannot be compiled just in time "
                          "on {}: {}", spec.name(), device.id(), why));
    registry = jit.registry;
    entry = jit.entry;
  }
  const std::uint64_t n = std::uint64_t(out.numel());
  bool contiguous = true;
  for (const Tensor& t : operands) contiguous = contiguous && t.is_contiguous() && t.shape() == out.shape();
  const int function = contiguous ? kMapContiguous : kMapStrided;
  const Kernel& kernel = device.kernel(*registry, *entry, function);
  const std::uint64_t per_group = std::uint64_t(kernel.block_size()) * (contiguous ? 4 : 1);
  Dim3 groups;
  groups.x = std::uint32_t(std::clamp<std::uint64_t>((n + per_group - 1) / per_group, 1, 65535));
  Stream& stream = device.default_stream();
  if (contiguous) {
    KilnMapParams p{};
    p.out = out.address();
    for (std::size_t k = 0; k < operands.size(); ++k) p.in[k] = operands[k].address();
    p.n = n;
    stream.launch(kernel, groups, &p, sizeof p);
    return;
  }
  Collapsed c = collapse(out.shape(), operands);
  if (c.shape.size() > std::size_t(kMaxMapRank))
    op_fail(ErrorCode::unsupported, op, operands,
            fmt::format("the broadcast has {} non-mergeable dimensions; kernels take at most {} "
                        "(make an operand contiguous first)", c.shape.size(), kMaxMapRank));
  KilnStridedParams p{};
  p.out = out.address();
  p.n = n;
  p.rank = std::int64_t(c.shape.size());
  for (std::size_t d = 0; d < c.shape.size(); ++d) p.shape[d] = c.shape[d];
  for (std::size_t k = 0; k < operands.size(); ++k) {
    p.in[k] = operands[k].address();
    for (std::size_t d = 0; d < c.shape.size(); ++d) p.strides[k][d] = c.strides[k][d];
  }
  stream.launch(kernel, groups, &p, sizeof p);
}

Tensor run_map(std::string_view op, const Expr& expr, const std::vector<Tensor>& operands,
               std::optional<DType> out_dtype, const Tensor* into, const Registry* registry = nullptr) {
  check_operands(op, operands);
  if (int(operands.size()) != expr.num_inputs())
    op_fail(ErrorCode::invalid_argument, op, operands,
            fmt::format("the expression takes {} inputs, got {}", expr.num_inputs(), operands.size()));
  if (int(operands.size()) > kMaxMapInputs)
    op_fail(ErrorCode::unsupported, op, operands, fmt::format("kernels take at most {} inputs", kMaxMapInputs));
  for (std::size_t k = 0; k < operands.size(); ++k)
    if (operands[k].dtype() != expr.input_dtypes()[k])
      op_fail(ErrorCode::dtype_mismatch, op, operands,
              fmt::format("input {} of the expression is {}, the operand is {}", k,
                          dtype_name(expr.input_dtypes()[k]), dtype_name(operands[k].dtype())));
  std::vector<Shape> shapes;
  for (const Tensor& t : operands) shapes.push_back(t.shape());
  auto shape = broadcast_shapes(shapes);
  if (!shape) op_fail(ErrorCode::shape_mismatch, op, operands, "shapes do not broadcast");
  const KernelSpec spec = make_map_spec(expr, out_dtype.value_or(expr.dtype(expr.root())));
  Device& device = operands.empty() ? default_device() : operands[0].device();
  Tensor out;
  if (into) {
    if (!into->defined() || into->shape() != *shape || into->dtype() != spec.output ||
        !into->is_contiguous() || &into->device() != &device)
      op_fail(ErrorCode::invalid_argument, op, operands,
              fmt::format("the output must be a contiguous {} {} on {}, got {}", shape_text(*shape),
                          dtype_name(spec.output), device.id(), into->describe()));
    out = *into;
  } else {
    out = Tensor::empty(*shape, spec.output, device);
  }
  if (out.numel() == 0) return out;
  std::vector<Tensor> views;
  for (const Tensor& t : operands) views.push_back(t.broadcast_to(*shape));
  if (device.backend() == Backend::cpu) run_cpu(spec, views, out);
  else run_gpu(op, spec, views, out, registry);
  return out;
}

}  // namespace

std::optional<Shape> broadcast_shapes(const std::vector<Shape>& shapes) {
  std::size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const auto& s : shapes) {
    const std::size_t lead = rank - s.size();
    for (std::size_t i = 0; i < s.size(); ++i) {
      std::int64_t& o = out[lead + i];
      if (s[i] == o || s[i] == 1) continue;
      if (o != 1) return std::nullopt;
      o = s[i];
    }
  }
  return out;
}

Tensor map(const Expr& expr, const std::vector<Tensor>& operands, std::optional<DType> out,
           const Tensor* into) {
  return run_map("map", expr, operands, out, into);
}

Tensor map(const Registry& registry, const Expr& expr, const std::vector<Tensor>& operands,
           std::optional<DType> out, const Tensor* into) {
  return run_map("map", expr, operands, out, into, &registry);
}

Tensor apply_op(Op op, const std::vector<Tensor>& operands) {
  const OpInfo& info = op_info(op);
  check_operands(info.name, operands);
  if (int(operands.size()) != info.arity)
    op_fail(ErrorCode::invalid_argument, info.name, operands,
            fmt::format("takes {} operand(s), got {}", info.arity, operands.size()));
  // Type the op with Nx's rules on the operands' dtypes.
  Expr typed;
  NodeId root = 0;
  try {
    std::vector<NodeId> in;
    for (std::size_t k = 0; k < operands.size(); ++k) in.push_back(typed.input(int(k), operands[k].dtype()));
    root = in.size() == 1 ? typed.apply(op, {in[0]})
         : in.size() == 2 ? typed.apply(op, {in[0], in[1]})
                          : typed.apply(op, {in[0], in[1], in[2]});
  } catch (const Error& e) {
    op_fail(e.code(), info.name, operands, e.what());
  }
  typed.set_root(root);
  // Operands of one dtype (a pred condition for select) run the op's kernel directly: it is the
  // built-in kernel single_op_spec(op, dtype), conversions included.
  bool uniform = true;
  for (std::size_t k = (op == Op::select ? 2 : 1); k < operands.size(); ++k)
    uniform = uniform && operands[k].dtype() == operands[k - 1].dtype();
  if (op == Op::select) uniform = uniform && operands[0].dtype() == DType::pred;
  if (uniform) return run_map(info.name, typed.pruned(), operands, std::nullopt, nullptr);
  // Mixed dtypes: convert the operands to the dtypes the op computes in, then run the kernel.
  const Node& node = typed.node(root);
  std::vector<Tensor> converted = operands;
  for (int k = 0; k < node.num_args; ++k)
    if (converted[k].dtype() != typed.dtype(node.args[k]))
      converted[k] = as_type(converted[k], typed.dtype(node.args[k]));
  const DType operand = typed.dtype(node.args[op == Op::select ? 1 : 0]);
  return run_map(info.name, single_op_expr(op, operand), converted, std::nullopt, nullptr);
}

Tensor as_type(const Tensor& x, DType dtype) {
  check_operands("as_type", {x});
  if (x.dtype() == dtype) return x;
  return run_map("as_type", single_op_expr(Op::as_type, x.dtype(), dtype), {x}, std::nullopt, nullptr);
}

Tensor select(const Tensor& cond, const Tensor& on_true, const Tensor& on_false) {
  return apply_op(Op::select, {cond, on_true, on_false});
}

#define KILN_DEFINE_UNARY(name) \
  Tensor name(const Tensor& x) { return apply_op(Op::name, {x}); }
#define KILN_DEFINE_BINARY(name) \
  Tensor name(const Tensor& x, const Tensor& y) { return apply_op(Op::name, {x, y}); }
KILN_UNARY_OPS(KILN_DEFINE_UNARY)
KILN_BINARY_OPS(KILN_DEFINE_BINARY)
#undef KILN_DEFINE_UNARY
#undef KILN_DEFINE_BINARY

}  // namespace kiln
