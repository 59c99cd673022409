// The expression IR: a hash-consed DAG of typed scalar operations. Fusion is building a bigger
// expression; the CPU reference evaluates it (eval.hpp) and the emitters render it to CUDA C++ and
// GLSL. Nodes are stored in topological order (operands before users), and equal subexpressions
// are one node.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "codegen/ops.hpp"
#include "core/dtype.hpp"
#include "core/scalar.hpp"

namespace kiln {

using NodeId = std::uint32_t;

enum class NodeKind : std::uint8_t { input, constant, op };

struct Node {
  NodeKind kind;
  Op op = Op::add;      // when kind == op
  DType dtype = DType::f32;  // result dtype
  int input = -1;       // when kind == input
  Scalar value;         // when kind == constant
  std::array<NodeId, 3> args{};
  int num_args = 0;
};

class Expr {
 public:
  Expr() = default;

  // Input |index| of dtype |t|. Each index has one dtype.
  NodeId input(int index, DType t);
  // A constant of dtype |t| from a double (floats are rounded to |t|; integers must be integral
  // and are wrapped to |t|'s width).
  NodeId constant(double value, DType t);
  NodeId constant_int(std::int64_t value, DType t);
  // Applies |op| with Nx's rules: operands are promoted (casts are inserted), logical operands and
  // select conditions become pred, and the result dtype follows the op table. Throws
  // kiln::Error(dtype_mismatch) naming the op and dtypes when the op does not accept them.
  NodeId apply(Op op, std::initializer_list<NodeId> args);
  NodeId cast(NodeId x, DType t);

  void set_root(NodeId root) { root_ = root; }
  NodeId root() const { return root_; }
  // More results of the same expression (a map kernel with several outputs): roots after the
  // first, kept by pruned(), canonical() and the copies below. Empty for one result.
  void set_more_roots(std::vector<NodeId> roots) { more_roots_ = std::move(roots); }
  const std::vector<NodeId>& more_roots() const { return more_roots_; }
  // root() then more_roots().
  std::vector<NodeId> roots() const;
  const Node& node(NodeId id) const { return nodes_[id]; }
  const std::vector<Node>& nodes() const { return nodes_; }
  DType dtype(NodeId id) const { return nodes_[id].dtype; }
  // Dtypes of the inputs by index (inputs never referenced are s32 placeholders).
  const std::vector<DType>& input_dtypes() const { return inputs_; }
  int num_inputs() const { return int(inputs_.size()); }

  // A copy holding only the nodes reachable from the roots, renumbered in topological order.
  Expr pruned() const;
  // Canonical text: the same expression always gives the same text, on every machine. With more
  // roots, the nodes are followed by ">%r0,%r1,...;" (every root, the first first).
  std::string canonical() const;
  // Readable infix text (parsable by parse_expr); with more roots, each root's text joined by "; ".
  std::string to_string() const;

 private:
  NodeId intern(const Node& n);
  NodeId raw_op(Op op, DType result, std::initializer_list<NodeId> args);

  std::vector<Node> nodes_;
  std::unordered_map<std::string, NodeId> index_;
  std::vector<DType> inputs_;
  NodeId root_ = 0;
  std::vector<NodeId> more_roots_;
};

// Copies the nodes of |src| reachable from its root into |dst|, src's input k replaced by node
// |inputs|[k] of |dst| (converted to the input's dtype); returns the copy's root. Fused slots use
// it to splice one expression into another (a reduction's epilogue, a row op's epilogue).
NodeId inline_expr(Expr& dst, const Expr& src, const std::vector<NodeId>& inputs);
// As inline_expr, returning the copies of every root of |src| (root() first).
std::vector<NodeId> inline_roots(Expr& dst, const Expr& src, const std::vector<NodeId>& inputs);
// Op node |n| applied again in |dst| to |args| (n.num_args of them): how copies of expressions
// rebuild their op nodes (with Nx's typing, which gives the same result for typed operands).
NodeId apply_like(Expr& dst, const Node& n, const NodeId* args);
// |src| with input i renumbered to |map|[i] (dtypes kept; unused inputs dropped).
Expr renumber_inputs(const Expr& src, const std::vector<int>& map);
// Which of the first |count| inputs |e| uses.
std::vector<bool> used_inputs(const Expr& e, std::size_t count);

// |src| simplified as kiln::jit does after fusing (codegen/simplify.cpp): operations on constants
// folded (with the CPU reference's semantics), x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1 and
// -(-x) removed where the result keeps x's dtype, casts to a value's own dtype dropped. Inputs
// keep their indices and dtypes; equal subexpressions are one node (hash-consing). As Nx's
// Defn.Expr, x + 0 becomes x for floats too (so -0.0 + 0 stays -0.0).
Expr simplified(const Expr& src);

// Parses the infix form, e.g. "0.5 * x * (1 + tanh(0.79788456 * (x + 0.044715 * x * x * x)))".
// Inputs are x, y, z, w (inputs 0-3) or in0, in1, ...; |input_dtypes| gives their dtypes.
// Operators, weakest first: ?: || && | ^ & (== !=) (< <= > >=) (<< >>) (+ -) (* / %) unary(- ! ~) **.
// Calls: any op name, e.g. pow(x, 2), select(c, a, b), as_type(x, f16), and dtype names: f16(x).
// Constants: numbers, pi, e, inf, nan. A number takes the dtype of what it meets (Nx's weak
// scalars): an integer literal meets an f16 as f16, a fractional one meets an s32 as f32.
// Every input of |input_dtypes| is the expression's, used or not (input_dtypes() returns them all).
// Errors throw kiln::Error(parse_error) with "<origin>:line:col: message".
Expr parse_expr(std::string_view text, const std::vector<DType>& input_dtypes,
                std::string_view origin = "expr", int first_line = 1, int first_col = 1);
// As parse_expr, where input k may also be written |names[k]| (a reduction's epilogue: acc, n),
// and only the first |positional| inputs by x, y, z, w or in<k> (the others by their names only).
Expr parse_expr_named(std::string_view text, const std::vector<DType>& input_dtypes,
                      const std::vector<std::string_view>& names, std::string_view origin = "expr",
                      int first_line = 1, int first_col = 1, std::size_t positional = ~std::size_t(0));

}  // namespace kiln
