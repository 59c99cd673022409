// Tensor ops: Nx typing and promotion of each op, then the map family's kernel through the one
// dispatch path (runtime/dispatch.cpp: CPU reference, or registry -> built-in -> JIT and launch).
#include "runtime/ops.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "codegen/spec.hpp"
#include "runtime/dispatch.hpp"
#include "core/error.hpp"

namespace kiln {

namespace {

Tensor run_map(std::string_view op, const Expr& expr, const std::vector<Tensor>& operands,
               std::optional<DType> out_dtype, const Tensor* into, const Registry* registry = nullptr) {
  check_operands(op, operands);
  if (int(operands.size()) != expr.num_inputs())
    fail_op(ErrorCode::invalid_argument, op, operands,
            fmt::format("the expression takes {} inputs, got {}", expr.num_inputs(), operands.size()));
  const KernelSpec spec = make_map_spec(expr, out_dtype.value_or(expr.dtype(expr.root())));
  return run_map_kernel(op, spec, nullptr, operands, into, registry);
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

Tensor apply_op(Op op, const std::vector<Tensor>& operands, const Tensor* into) {
  const OpInfo& info = op_info(op);
  check_operands(info.name, operands);
  if (int(operands.size()) != info.arity)
    fail_op(ErrorCode::invalid_argument, info.name, operands,
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
    fail_op(e.code(), info.name, operands, e.what());
  }
  typed.set_root(root);
  // Operands of one dtype (a pred condition for select) run the op's kernel directly: it is the
  // built-in kernel single_op_spec(op, dtype), conversions included.
  bool uniform = true;
  for (std::size_t k = (op == Op::select ? 2 : 1); k < operands.size(); ++k)
    uniform = uniform && operands[k].dtype() == operands[k - 1].dtype();
  if (op == Op::select) uniform = uniform && operands[0].dtype() == DType::pred;
  if (uniform) return run_map(info.name, typed.pruned(), operands, std::nullopt, into);
  // Mixed dtypes: convert the operands to the dtypes the op computes in, then run the kernel.
  const Node& node = typed.node(root);
  std::vector<Tensor> converted = operands;
  for (int k = 0; k < node.num_args; ++k)
    if (converted[k].dtype() != typed.dtype(node.args[k]))
      converted[k] = as_type(converted[k], typed.dtype(node.args[k]));
  const DType operand = typed.dtype(node.args[op == Op::select ? 1 : 0]);
  return run_map(info.name, single_op_expr(op, operand), converted, std::nullopt, into);
}

Tensor as_type(const Tensor& x, DType dtype, const Tensor* into) {
  check_operands("as_type", {x});
  if (x.dtype() != dtype) return run_map("as_type", single_op_expr(Op::as_type, x.dtype(), dtype), {x}, std::nullopt, into);
  if (!into) return x;
  Expr copy;  // the same dtype into another tensor: a copy
  copy.set_root(copy.input(0, dtype));
  return run_map("as_type", copy, {x}, std::nullopt, into);
}

Tensor select(const Tensor& cond, const Tensor& on_true, const Tensor& on_false, const Tensor* into) {
  return apply_op(Op::select, {cond, on_true, on_false}, into);
}

#define KILN_DEFINE_UNARY(name) \
  Tensor name(const Tensor& x, const Tensor* into) { return apply_op(Op::name, {x}, into); }
#define KILN_DEFINE_BINARY(name) \
  Tensor name(const Tensor& x, const Tensor& y, const Tensor* into) { return apply_op(Op::name, {x, y}, into); }
KILN_UNARY_OPS(KILN_DEFINE_UNARY)
KILN_BINARY_OPS(KILN_DEFINE_BINARY)
#undef KILN_DEFINE_UNARY
#undef KILN_DEFINE_BINARY

}  // namespace kiln
