#include "codegen/spec.hpp"

#include <fmt/format.h>
#include <xxhash.h>

namespace kiln {

std::string KernelSpec::canonical() const {
  std::string s = family + "|in=";
  for (std::size_t i = 0; i < inputs.size(); ++i) s.append(i ? "," : "").append(dtype_name(inputs[i]));
  s += fmt::format("|out={}|block={}|", dtype_name(output), block_size);
  return s + expr.canonical();
}

std::uint64_t KernelSpec::hash() const {
  const std::string c = canonical();
  return XXH64(c.data(), c.size(), 0);
}

std::string KernelSpec::name() const {
  std::string s = family + "_";
  for (DType t : inputs) s += dtype_name(t);
  return s + fmt::format("_{}_{:08x}", dtype_name(output), std::uint32_t(hash() >> 32));
}

KernelSpec make_map_spec(const Expr& expr, DType output) {
  KernelSpec spec;
  spec.inputs = expr.input_dtypes();
  spec.output = output;
  spec.expr = expr;
  spec.expr.set_root(spec.expr.cast(expr.root(), output));
  spec.expr = spec.expr.pruned();
  return spec;
}

Expr single_op_expr(Op op, DType operand, DType cast_to) {
  Expr e;
  const int arity = op_info(op).arity;
  if (op == Op::as_type) {
    e.set_root(e.cast(e.input(0, operand), cast_to));
  } else if (op == Op::select) {
    e.set_root(e.apply(op, {e.input(0, DType::pred), e.input(1, operand), e.input(2, operand)}));
  } else if (arity == 1) {
    e.set_root(e.apply(op, {e.input(0, operand)}));
  } else {
    e.set_root(e.apply(op, {e.input(0, operand), e.input(1, operand)}));
  }
  return e.pruned();
}

KernelSpec single_op_spec(Op op, DType operand, DType cast_to) {
  Expr e = single_op_expr(op, operand, cast_to);
  return make_map_spec(e, e.dtype(e.root()));
}

}  // namespace kiln
