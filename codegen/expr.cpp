#include "codegen/expr.hpp"

#include <cmath>
#include <cstdio>
#include <algorithm>

#include <fmt/format.h>

#include "codegen/eval.hpp"
#include "core/error.hpp"

namespace kiln {

namespace {

std::string node_key(const Node& n) {
  std::string k = fmt::format("{}:{}:{}:{}:{}:{}", int(n.kind), int(n.op), int(n.dtype), n.input,
                              n.value.u, n.num_args);
  for (int i = 0; i < n.num_args; ++i) k += fmt::format(",{}", n.args[i]);
  return k;
}

std::string scalar_text(Scalar v, DType t) {
  if (is_float(t)) {
    if (std::isnan(v.f)) return "nan";
    if (std::isinf(v.f)) return v.f > 0 ? "inf" : "-inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v.f);
    std::string s = buf;
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    return s;
  }
  if (is_signed_int(t)) return std::to_string(v.i);
  return std::to_string(v.u);
}

}  // namespace

NodeId Expr::intern(const Node& n) {
  std::string key = node_key(n);
  if (auto it = index_.find(key); it != index_.end()) return it->second;
  nodes_.push_back(n);
  NodeId id = NodeId(nodes_.size() - 1);
  index_.emplace(std::move(key), id);
  return id;
}

NodeId Expr::input(int index, DType t) {
  if (index < 0 || index > 63)
    fail(ErrorCode::invalid_argument,
         fmt::format("expression input index {} is out of range: an expression takes at most 64 inputs", index));
  if (index >= int(inputs_.size())) inputs_.resize(index + 1, DType::s32);
  inputs_[index] = t;
  Node n{NodeKind::input};
  n.dtype = t;
  n.input = index;
  return intern(n);
}

NodeId Expr::constant(double value, DType t) {
  Node n{NodeKind::constant};
  n.dtype = t;
  if (is_float(t)) {
    n.value = round_to_dtype(Scalar::from_f(value), t);
  } else {
    if (!std::isfinite(value) || value != std::floor(value))
      fail(ErrorCode::invalid_argument,
           fmt::format("constant {} is not a valid {} value", value, dtype_name(t)));
    n.value = cast_scalar(Scalar::from_f(value), DType::f64, t);
  }
  return intern(n);
}

NodeId Expr::constant_int(std::int64_t value, DType t) {
  Node n{NodeKind::constant};
  n.dtype = t;
  n.value = cast_scalar(Scalar::from_i(value), DType::s64, t);
  return intern(n);
}

NodeId Expr::raw_op(Op op, DType result, std::initializer_list<NodeId> args) {
  Node n{NodeKind::op};
  n.op = op;
  n.dtype = result;
  for (NodeId a : args) n.args[n.num_args++] = a;
  return intern(n);
}

NodeId Expr::cast(NodeId x, DType t) {
  const Node& src = nodes_[x];
  if (src.dtype == t) return x;
  if (src.kind == NodeKind::constant) {
    Node n{NodeKind::constant};
    n.dtype = t;
    n.value = cast_scalar(src.value, src.dtype, t);
    return intern(n);
  }
  return raw_op(Op::as_type, t, {x});
}

NodeId Expr::apply(Op op, std::initializer_list<NodeId> args) {
  const OpInfo& info = op_info(op);
  if (int(args.size()) != info.arity)
    fail(ErrorCode::invalid_argument,
         fmt::format("{} takes {} operand(s), got {}", info.name, info.arity, args.size()));
  std::vector<NodeId> a(args);
  auto reject = [&](DType t) -> void {
    std::string ts;
    for (NodeId x : a) ts.append(ts.empty() ? "" : ", ").append(dtype_name(dtype(x)));
    fail(ErrorCode::dtype_mismatch,
         fmt::format("{} does not accept {} (operands: {})", info.name, dtype_name(t), ts));
  };
  // The dtype the operands are converted to.
  auto operand_type = [&](DType t) {
    if (t == DType::pred && !(info.accepts & kPred) && (info.accepts & dtype_bit(DType::u8)))
      t = DType::u8;  // pred is u8 in arithmetic
    if (!(info.accepts & dtype_bit(t))) reject(t);
    if (info.result == ResultRule::floating) t = to_floating(t);
    return t;
  };
  switch (info.arity) {
    case 1: {
      if (op == Op::as_type) fail(ErrorCode::invalid_argument, "as_type needs a target dtype: use cast()");
      DType t = operand_type(dtype(a[0]));
      NodeId x = cast(a[0], t);
      return raw_op(op, *result_dtype(op, t), {x});
    }
    case 2: {
      if (info.result == ResultRule::pred && op >= Op::logical_and) {
        NodeId x = cast(a[0], DType::pred), y = cast(a[1], DType::pred);
        return raw_op(op, DType::pred, {x, y});
      }
      DType t = operand_type(promote(dtype(a[0]), dtype(a[1])));
      NodeId x = cast(a[0], t), y = cast(a[1], t);
      return raw_op(op, *result_dtype(op, t), {x, y});
    }
    default: {  // select
      DType t = promote(dtype(a[1]), dtype(a[2]));
      NodeId c = cast(a[0], DType::pred), x = cast(a[1], t), y = cast(a[2], t);
      return raw_op(op, t, {c, x, y});
    }
  }
}

std::vector<NodeId> Expr::roots() const {
  std::vector<NodeId> r{root_};
  r.insert(r.end(), more_roots_.begin(), more_roots_.end());
  return r;
}

Expr Expr::pruned() const {
  std::vector<bool> live(nodes_.size(), false);
  if (!nodes_.empty()) {
    live[root_] = true;
    for (NodeId r : more_roots_) live[r] = true;
  }
  for (std::size_t i = nodes_.size(); i-- > 0;)
    if (live[i])
      for (int k = 0; k < nodes_[i].num_args; ++k) live[nodes_[i].args[k]] = true;
  Expr out;
  out.inputs_ = inputs_;
  std::vector<NodeId> map(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (!live[i]) continue;
    Node n = nodes_[i];
    for (int k = 0; k < n.num_args; ++k) n.args[k] = map[n.args[k]];
    map[i] = out.intern(n);
  }
  if (!nodes_.empty()) {
    out.root_ = map[root_];
    for (NodeId r : more_roots_) out.more_roots_.push_back(map[r]);
  }
  return out;
}

std::string Expr::canonical() const {
  Expr p = pruned();
  std::string s;
  for (std::size_t i = 0; i < p.nodes_.size(); ++i) {
    const Node& n = p.nodes_[i];
    s += fmt::format("%{}={}:", i, dtype_name(n.dtype));
    switch (n.kind) {
      case NodeKind::input: s += fmt::format("in{}", n.input); break;
      case NodeKind::constant: s += fmt::format("const({:#x})", n.value.u); break;
      case NodeKind::op:
        s += op_info(n.op).name;
        s += "(";
        for (int k = 0; k < n.num_args; ++k) s += fmt::format("{}%{}", k ? "," : "", n.args[k]);
        s += ")";
        break;
    }
    s += ";";
  }
  if (!p.more_roots_.empty()) {
    s += ">";
    const std::vector<NodeId> all = p.roots();
    for (std::size_t k = 0; k < all.size(); ++k) s += fmt::format("{}%{}", k ? "," : "", all[k]);
    s += ";";
  }
  return s;
}

std::string Expr::to_string() const {
  if (nodes_.empty()) return {};
  // Shared subexpressions print once per use: the text can grow exponentially with the nodes
  // (x squared 30 times), so the lengths come first (saturating) and a text over kMax characters is
  // summarized. No recursion: a chain of 10^5 additions prints without deep stacks. Arguments
  // precede their node (hash-consed, append-only), so one pass in id order sees them first.
  constexpr std::size_t kMax = std::size_t(1) << 16;
  auto leaf = [&](const Node& n) {
    return n.kind == NodeKind::input ? fmt::format("in{}", n.input)
                                     : fmt::format("{}({})", dtype_name(n.dtype), scalar_text(n.value, n.dtype));
  };
  auto head = [&](const Node& n) {
    return n.op == Op::as_type ? std::string(dtype_name(n.dtype)) : std::string(op_info(n.op).name);
  };
  std::vector<std::size_t> len(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const Node& n = nodes_[i];
    if (n.kind != NodeKind::op) {
      len[i] = leaf(n).size();
      continue;
    }
    const int args = n.op == Op::as_type ? 1 : n.num_args;
    std::size_t l = head(n).size() + 2 + 2 * std::size_t(args - 1);
    for (int k = 0; k < args; ++k) l = std::min(l + len[n.args[std::size_t(k)]], kMax + 1);
    len[i] = l;
  }
  const std::vector<NodeId> all = roots();
  std::size_t total = 0;
  for (NodeId r : all) total = std::min(total + len[r] + 2, kMax + 1);
  if (total > kMax)
    return fmt::format("(an expression of {} nodes, over {} characters as text)", pruned().nodes().size(), kMax);
  std::string s;
  s.reserve(total);
  struct Frame {
    NodeId id;
    int next;  // the next argument to print
  };
  std::vector<Frame> stack;
  for (std::size_t r = 0; r < all.size(); ++r) {
    if (r) s += "; ";
    stack.push_back({all[r], 0});
    while (!stack.empty()) {
      Frame& f = stack.back();
      const Node& n = nodes_[f.id];
      if (n.kind != NodeKind::op) {
        s += leaf(n);
        stack.pop_back();
        continue;
      }
      const int args = n.op == Op::as_type ? 1 : n.num_args;
      if (f.next == 0) s += head(n) + "(";
      if (f.next == args) {
        s += ")";
        stack.pop_back();
        continue;
      }
      if (f.next > 0) s += ", ";
      const NodeId child = n.args[std::size_t(f.next++)];
      stack.push_back({child, 0});  // |f| may dangle from here on
    }
  }
  return s;
}

NodeId apply_like(Expr& dst, const Node& n, const NodeId* a) {
  return n.num_args == 1 ? dst.apply(n.op, {a[0]})
       : n.num_args == 2 ? dst.apply(n.op, {a[0], a[1]})
                         : dst.apply(n.op, {a[0], a[1], a[2]});
}

NodeId inline_expr(Expr& dst, const Expr& src, const std::vector<NodeId>& inputs) {
  return inline_roots(dst, src, inputs).front();
}

std::vector<NodeId> inline_roots(Expr& dst, const Expr& src, const std::vector<NodeId>& inputs) {
  const Expr p = src.pruned();
  std::vector<NodeId> map(p.nodes().size());
  for (NodeId id = 0; id < p.nodes().size(); ++id) {
    const Node& n = p.node(id);
    if (n.kind == NodeKind::input) {
      map[id] = dst.cast(inputs.at(std::size_t(n.input)), n.dtype);
    } else if (n.kind == NodeKind::constant) {
      map[id] = is_float(n.dtype) ? dst.constant(n.value.f, n.dtype) : dst.constant_int(n.value.i, n.dtype);
    } else if (n.op == Op::as_type) {
      map[id] = dst.cast(map[n.args[0]], n.dtype);
    } else {
      NodeId a[3] = {};
      for (int k = 0; k < n.num_args; ++k) a[k] = map[n.args[std::size_t(k)]];
      map[id] = apply_like(dst, n, a);
    }
  }
  std::vector<NodeId> roots;
  for (NodeId r : p.roots()) roots.push_back(map[r]);
  return roots;
}

Expr renumber_inputs(const Expr& src, const std::vector<int>& map) {
  Expr e;
  std::vector<bool> used(src.input_dtypes().size(), false);
  const Expr live = src.pruned();
  for (const Node& n : live.nodes())
    if (n.kind == NodeKind::input) used[std::size_t(n.input)] = true;
  std::vector<NodeId> inputs(used.size());
  // The inputs made in the order of their new numbers, so that the result's canonical text is the
  // one an expression written over the new numbers has, whatever the old order.
  std::vector<std::size_t> order(used.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return (used[a] ? map.at(a) : INT_MAX) < (used[b] ? map.at(b) : INT_MAX);
  });
  for (std::size_t i : order)  // unused inputs: a placeholder the copy never reaches
    inputs[i] = used[i] ? e.input(map.at(i), src.input_dtypes()[i]) : e.constant(0, DType::f32);
  const std::vector<NodeId> roots = inline_roots(e, src, inputs);
  e.set_root(roots.front());
  e.set_more_roots({roots.begin() + 1, roots.end()});
  return e.pruned();
}

std::vector<bool> used_inputs(const Expr& e, std::size_t count) {
  std::vector<bool> used(count, false);
  for (const Node& n : e.nodes())
    if (n.kind == NodeKind::input && n.input >= 0 && std::size_t(n.input) < count) used[std::size_t(n.input)] = true;
  return used;
}


}  // namespace kiln
