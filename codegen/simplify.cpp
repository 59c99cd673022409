// Expression simplification for kiln::jit (declared in codegen/expr.hpp): constant folding with the
// reference semantics (codegen/eval.cpp) and the algebraic identities Nx's Defn.Expr applies.
#include <cmath>
#include <vector>

#include "codegen/eval.hpp"
#include "codegen/expr.hpp"

namespace kiln {

namespace {

NodeId add_constant(Expr& e, Scalar v, DType t) {
  return is_float(t) ? e.constant(v.f, t) : e.constant_int(v.i, t);
}

bool is_constant(const Expr& e, NodeId id, double value) {
  const Node& n = e.node(id);
  return n.kind == NodeKind::constant && scalar_to_double(n.value, n.dtype) == value;
}

}  // namespace

Expr simplified(const Expr& src) {
  const Expr p = src.pruned();
  Expr e;
  for (int i = 0; i < p.num_inputs(); ++i) e.input(i, p.input_dtypes()[std::size_t(i)]);
  std::vector<NodeId> map(p.nodes().size());
  for (NodeId id = 0; id < p.nodes().size(); ++id) {
    const Node& n = p.node(id);
    if (n.kind == NodeKind::input) {
      map[id] = e.input(n.input, n.dtype);
      continue;
    }
    if (n.kind == NodeKind::constant) {
      map[id] = add_constant(e, n.value, n.dtype);
      continue;
    }
    if (n.op == Op::as_type) {  // Expr::cast folds constants and drops same-dtype casts
      map[id] = e.cast(map[n.args[0]], n.dtype);
      continue;
    }
    NodeId a[3] = {};
    bool all_constant = true;
    for (int k = 0; k < n.num_args; ++k) {
      a[k] = map[n.args[k]];
      all_constant = all_constant && e.node(a[k]).kind == NodeKind::constant;
    }
    if (all_constant) {
      Scalar v[3];
      for (int k = 0; k < n.num_args; ++k) v[k] = e.node(a[k]).value;
      const DType operand = e.dtype(a[n.op == Op::select ? 1 : 0]);
      map[id] = add_constant(e, eval_op(n.op, operand, n.dtype, v), n.dtype);
      continue;
    }
    // x op identity -> x, where x already has the result's dtype.
    auto keeps = [&](NodeId x) { return e.dtype(x) == n.dtype; };
    NodeId same = 0;
    bool found = false;
    auto take = [&](NodeId x) {
      if (!found && keeps(x)) {
        same = x;
        found = true;
      }
    };
    if (n.num_args == 2) {
      switch (n.op) {
        case Op::add:
          if (is_constant(e, a[1], 0)) take(a[0]);
          if (is_constant(e, a[0], 0)) take(a[1]);
          break;
        case Op::subtract:  // x - (+0) is x for every x; x - (-0) is not (-0 - -0 = +0)
          if (is_constant(e, a[1], 0) && !std::signbit(scalar_to_double(e.node(a[1]).value, e.node(a[1]).dtype)))
            take(a[0]);
          break;
        case Op::multiply:
          if (is_constant(e, a[1], 1)) take(a[0]);
          if (is_constant(e, a[0], 1)) take(a[1]);
          break;
        case Op::divide:
          if (is_constant(e, a[1], 1)) take(a[0]);
          break;
        default:
          break;
      }
    } else if (n.num_args == 1 && n.op == Op::negate) {
      const Node& inner = e.node(a[0]);
      if (inner.kind == NodeKind::op && inner.op == Op::negate) take(inner.args[0]);
    }
    if (found) {
      map[id] = same;
      continue;
    }
    map[id] = apply_like(e, n, a);
  }
  if (!p.nodes().empty()) {
    e.set_root(map[p.root()]);
    std::vector<NodeId> more;
    for (NodeId r : p.more_roots()) more.push_back(map[r]);
    e.set_more_roots(std::move(more));
  }
  return e.pruned();
}

}  // namespace kiln
