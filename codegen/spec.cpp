#include "codegen/spec.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <xxhash.h>

#include "core/error.hpp"

namespace kiln {

std::string_view KernelSpec::attribute(std::string_view key) const {
  for (const auto& [k, v] : attributes)
    if (k == key) return v;
  return {};
}

void KernelSpec::set_attribute(std::string key, std::string value) {
  for (auto& [k, v] : attributes)
    if (k == key) {
      v = std::move(value);
      return;
    }
  attributes.emplace_back(std::move(key), std::move(value));
  std::sort(attributes.begin(), attributes.end());
}

// family|in=a,b|out=t|block=n|[key=value|...]<expr>[|epilogue=<expr>]. A spec without attributes
// and epilogue (every map kernel) has exactly the text it had before families had slots, so the
// names of existing kernels did not change.
std::string KernelSpec::canonical() const {
  std::string s = family + "|in=";
  for (std::size_t i = 0; i < inputs.size(); ++i) s.append(i ? "," : "").append(dtype_name(inputs[i]));
  s += fmt::format("|out={}|block={}|", dtype_name(output), block_size);
  for (const auto& [k, v] : attributes) s += fmt::format("{}={}|", k, v);
  s += expr.canonical();
  if (!epilogue.nodes().empty()) s += "|epilogue=" + epilogue.canonical();
  return s;
}

std::uint64_t KernelSpec::hash() const {
  const std::string c = canonical();
  return XXH64(c.data(), c.size(), 0);
}

std::string KernelSpec::name() const { return name(canonical()); }

std::string KernelSpec::name(const std::string& canonical) const {
  std::string s = family + "_";
  for (DType t : inputs) s += dtype_name(t);
  const std::uint64_t h = XXH64(canonical.data(), canonical.size(), 0);
  return s + fmt::format("_{}_{:08x}", dtype_name(output), std::uint32_t(h >> 32));
}

namespace {

[[noreturn]] void bad_canonical(std::string_view text, std::string_view why) {
  fail(ErrorCode::parse_error, fmt::format("not a canonical kernel spec ({}): {}", why, text));
}

// The whole of |digits| as a number in |base| that fits T, else a parse_error naming |what|.
template <class T>
T canonical_number(std::string_view text, std::string_view digits, int base, std::string_view what) {
  T v{};
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size())
    bad_canonical(text, fmt::format("bad {} '{}'", what, digits));
  return v;
}

DType canonical_dtype(std::string_view text, std::string_view n) {
  auto t = parse_dtype(n);
  if (!t) bad_canonical(text, fmt::format("unknown dtype '{}'", n));
  return *t;
}

// %0=t:in0;%1=t:const(0x..);%2=t:op(%0,%1);...
Expr expr_from_canonical(std::string_view text, std::string_view body) {
  Expr e;
  std::vector<NodeId> ids;
  std::vector<NodeId> roots;  // ">%r0,%r1,...;" after the nodes: an expression with several results
  while (!body.empty()) {
    if (body.front() == '>') {
      const std::size_t semi = body.find(';');
      if (semi == std::string_view::npos || semi + 1 != body.size()) bad_canonical(text, "bad roots");
      for (std::string_view r = body.substr(1, semi - 1); !r.empty();) {
        const std::size_t comma = r.find(',');
        const std::string_view one = r.substr(0, comma);
        if (one.size() < 2 || one[0] != '%' || one.substr(1).find_first_not_of("0123456789") != std::string_view::npos)
          bad_canonical(text, "bad root");
        const auto i = canonical_number<std::size_t>(text, one.substr(1), 10, "root");
        if (i >= ids.size()) bad_canonical(text, "root out of range");
        roots.push_back(ids[i]);
        r = comma == std::string_view::npos ? std::string_view() : r.substr(comma + 1);
      }
      if (roots.size() < 2) bad_canonical(text, "fewer than two roots");
      break;
    }
    const std::size_t semi = body.find(';'), eq = body.find('='), colon = body.find(':');
    if (semi == std::string_view::npos || eq > colon || colon > semi) bad_canonical(text, "bad node");
    const DType t = canonical_dtype(text, body.substr(eq + 1, colon - eq - 1));
    std::string_view node = body.substr(colon + 1, semi - colon - 1);
    body = body.substr(semi + 1);
    const std::size_t paren = node.find('(');
    const std::string_view head = node.substr(0, paren);
    std::vector<NodeId> args;
    std::uint64_t bits = 0;
    if (paren != std::string_view::npos) {
      std::string_view inner = node.substr(paren + 1, node.size() - paren - 2);
      if (head == "const") {
        bits = canonical_number<std::uint64_t>(text, inner.substr(inner.starts_with("0x") ? 2 : 0), 16, "constant");
      } else {
        for (std::size_t p; (p = inner.find('%')) != std::string_view::npos;) {
          inner = inner.substr(p + 1);
          const auto i = canonical_number<std::size_t>(text, inner.substr(0, inner.find(',')), 10, "argument");
          if (i >= ids.size()) bad_canonical(text, "forward reference");
          args.push_back(ids[i]);
        }
      }
    }
    NodeId id = 0;
    if (head.starts_with("in") && paren == std::string_view::npos) {
      const auto k = canonical_number<unsigned>(text, head.substr(2), 10, "input");
      if (k > 63) bad_canonical(text, fmt::format("input {} is out of range (at most 64 inputs)", k));
      id = e.input(int(k), t);
    } else if (head == "const") {
      Scalar v = Scalar::from_u(bits);
      id = is_float(t) ? e.constant(v.f, t) : e.constant_int(v.i, t);
    } else if (head == "as_type" && args.size() == 1) {
      id = e.cast(args[0], t);
    } else {
      const auto op = find_op(head);
      if (!op) bad_canonical(text, fmt::format("unknown op '{}'", head));
      id = args.size() == 1 ? e.apply(*op, {args[0]})
         : args.size() == 2 ? e.apply(*op, {args[0], args[1]})
         : args.size() == 3 ? e.apply(*op, {args[0], args[1], args[2]})
                            : (bad_canonical(text, "bad arity"), 0);
    }
    ids.push_back(id);
  }
  if (ids.empty()) bad_canonical(text, "no nodes");
  if (roots.empty()) {
    e.set_root(ids.back());
  } else {
    e.set_root(roots.front());
    e.set_more_roots({roots.begin() + 1, roots.end()});
  }
  return e;
}

}  // namespace

KernelSpec spec_from_canonical(std::string_view text) {
  std::vector<std::string_view> fields;
  for (std::size_t at = 0;;) {
    const std::size_t bar = text.find('|', at);
    fields.push_back(text.substr(at, bar == std::string_view::npos ? bar : bar - at));
    if (bar == std::string_view::npos) break;
    at = bar + 1;
  }
  if (fields.size() < 5) bad_canonical(text, "missing '|'");
  KernelSpec spec;
  spec.family = std::string(fields[0]);
  if (!fields[1].starts_with("in=") || !fields[2].starts_with("out=") || !fields[3].starts_with("block="))
    bad_canonical(text, "bad header fields");
  for (std::string_view in = fields[1].substr(3); !in.empty();) {
    const std::size_t comma = in.find(',');
    spec.inputs.push_back(canonical_dtype(text, in.substr(0, comma)));
    in = comma == std::string_view::npos ? std::string_view() : in.substr(comma + 1);
  }
  spec.output = canonical_dtype(text, fields[2].substr(4));
  spec.block_size = canonical_number<int>(text, fields[3].substr(6), 10, "block size");
  if (spec.block_size < 1 || spec.block_size > 1024 || (spec.block_size & (spec.block_size - 1)) != 0)
    bad_canonical(text, fmt::format("block size {} is not a power of two in [1, 1024]", spec.block_size));
  bool have_expr = false;
  for (std::size_t i = 4; i < fields.size(); ++i) {
    const std::string_view f = fields[i];
    if (f.starts_with("%")) {
      spec.expr = expr_from_canonical(text, f);
      have_expr = true;
    } else if (f.starts_with("epilogue=")) {
      spec.epilogue = expr_from_canonical(text, f.substr(9));
    } else if (const std::size_t eq = f.find('='); eq != std::string_view::npos && eq > 0) {
      spec.set_attribute(std::string(f.substr(0, eq)), std::string(f.substr(eq + 1)));
    } else {
      bad_canonical(text, fmt::format("bad field '{}'", f));
    }
  }
  if (!have_expr) bad_canonical(text, "no expression");
  if (spec.canonical() != text) bad_canonical(text, "it rebuilds as " + spec.canonical());
  return spec;
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

std::vector<KernelSpec> expand_op(Op op, const std::vector<DType>& dtypes) {
  std::vector<KernelSpec> out;
  const OpInfo& info = op_info(op);
  for (DType t : dtypes) {
    if (!(info.accepts & dtype_bit(t))) continue;
    if (op == Op::as_type) {
      for (DType to : dtypes)
        if (to != t) out.push_back(single_op_spec(op, t, to));
    } else {
      out.push_back(single_op_spec(op, t));
    }
  }
  return out;
}

}  // namespace kiln
