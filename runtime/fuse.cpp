#include "runtime/fuse.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/eval.hpp"
#include "codegen/family.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/families/rows.hpp"
#include "core/error.hpp"
#include "runtime/fuse_operands.hpp"

namespace kiln {

namespace {

// Whether a consumer over |cshape| reading with |cstrides| reads a row-major |vshape| value
// element for element, or broadcast (right-aligned, as Nx broadcasts).
bool reads_as_broadcast(const Shape& cshape, const Shape& cstrides, const Shape& vshape) {
  if (vshape.size() > cshape.size()) return false;
  const Shape vst = row_major_strides(vshape);
  const std::size_t lead = cshape.size() - vshape.size();
  for (std::size_t d = 0; d < cshape.size(); ++d) {
    if (cshape[d] == 1) continue;  // any stride reads the one element
    if (d < lead) {
      if (cstrides[d] != 0) return false;
      continue;
    }
    const std::size_t e = d - lead;
    if (vshape[e] == 1) {
      if (cstrides[d] != 0) return false;
    } else if (vshape[e] != cshape[d] || cstrides[d] != vst[e]) {
      return false;
    }
  }
  return true;
}

// A producer operand's strides over |vshape| as seen from the consumer's |cshape|.
Shape carry_strides(const Shape& cshape, const Shape& vshape, const Shape& pstrides) {
  Shape out(cshape.size(), 0);
  const std::size_t lead = cshape.size() - vshape.size();
  for (std::size_t e = 0; e < vshape.size(); ++e) out[lead + e] = vshape[e] == 1 ? 0 : pstrides[e];
  return out;
}

NodeId literal(Expr& e, Scalar v, DType t) { return is_float(t) ? e.constant(v.f, t) : e.constant_int(v.i, t); }


class Fuser {
 public:
  Fuser(TraceProgram& p, const std::vector<int>& outputs) : p_(p), outputs_(outputs.begin(), outputs.end()) {
    removed_.assign(p.launches.size(), false);
    for (std::size_t i = 0; i < p.launches.size(); ++i) {
      const TracedLaunch& l = p.launches[i];
      for (std::uint64_t a : l.more_outputs) note_write(a, int(i));
      note_write(l.out, int(i));
    }
  }

  FusionReport run() {
    report_.launches_before = int(p_.launches.size());
    merge_repeated();
    for (std::size_t c = 0; c < p_.launches.size(); ++c) {
      if (!family_of(p_.launches[c].spec).pointwise_inputs || p_.launches[c].library) continue;
      while (absorb_one(int(c))) {
      }
    }
    remove_dead();  // the producers inlined above no longer read anything
    for (std::size_t i = 0; i < p_.launches.size(); ++i)
      if (!removed_[i]) recognize_softmax(int(i));
    for (std::size_t i = 0; i < p_.launches.size(); ++i)
      if (!removed_[i]) recognize_rms_norm(int(i));
    for (std::size_t i = 0; i < p_.launches.size(); ++i)
      if (!removed_[i]) recognize_layer_norm(int(i));
    for (std::size_t i = 0; i < p_.launches.size(); ++i)
      if (!removed_[i] && family_of(p_.launches[i].spec).fuse_epilogue) fuse_consumer(int(i));
    remove_dead();
    std::vector<TracedLaunch> kept;
    for (std::size_t i = 0; i < p_.launches.size(); ++i)
      if (!removed_[i]) kept.push_back(std::move(p_.launches[i]));
    p_.launches = std::move(kept);
    report_.siblings = merge_sibling_maps(p_);
    report_.launches_after = int(p_.launches.size());
    return report_;
  }

 private:
  void note_write(std::uint64_t address, int launch) {
    if (auto loc = TraceBuffer::locate(address)) writers_[loc->first].push_back(launch);
    else writes_real_ = true;
  }

  // Whether the value |address| holds when launch |at| runs is the one it held before launch |from|
  // ran (nothing writes it in between). Real buffers: only when no launch writes a real buffer.
  bool stable(std::uint64_t address, int from, int at) const {
    auto loc = TraceBuffer::locate(address);
    if (!loc) return !writes_real_;
    auto w = writers_.find(loc->first);
    if (w == writers_.end()) return true;
    for (int i : w->second)
      if (i >= from && i < at) return false;
    return true;
  }

  // Common subexpressions across launches: a launch that repeats an earlier one (the same kernel
  // over the same shape, operands, strides, axes and options, its operands unchanged in between)
  // is dropped, and what read its result reads the earlier one's. (Inside a fused kernel the
  // expression builder merges repeated nodes itself.)
  void merge_repeated() {
    for (std::size_t j = 0; j < p_.launches.size(); ++j) {
      const TracedLaunch& J = p_.launches[j];
      const std::optional<int> jb = sole_result(J, int(j));
      if (!jb) continue;
      for (std::size_t i = 0; i < j; ++i) {
        const TracedLaunch& I = p_.launches[i];
        if (removed_[i] || !same_launch(I, J)) continue;
        const std::optional<int> ib = sole_result(I, int(i));
        if (!ib || p_.buffers[std::size_t(*ib)]->size_bytes() != p_.buffers[std::size_t(*jb)]->size_bytes()) continue;
        bool ok = true;
        for (std::uint64_t a : I.inputs) ok = ok && stable(a, int(i), int(j));
        if (!ok) continue;
        auto redirect = [&](std::uint64_t& a) {
          if (auto loc = TraceBuffer::locate(a); loc && loc->first == *jb) a = TraceBuffer::base(*ib) + loc->second;
        };
        for (std::size_t k = j + 1; k < p_.launches.size(); ++k) {
          TracedLaunch& K = p_.launches[k];
          for (std::uint64_t& a : K.inputs) redirect(a);
          if (K.library) {
            redirect(K.library->a);
            redirect(K.library->b);
          }
        }
        removed_[j] = true;
        ++report_.merged;
        break;
      }
    }
  }

  // The trace buffer launch |l| (index |at|) fills as its one result: a whole intermediate, not a
  // result of the function, that no other launch writes.
  std::optional<int> sole_result(const TracedLaunch& l, int at) const {
    auto loc = TraceBuffer::locate(l.out);
    if (!loc || loc->second != 0 || !l.more_outputs.empty() || outputs_.count(loc->first)) return std::nullopt;
    if (p_.buffers[std::size_t(loc->first)]->kind() != TraceBuffer::Kind::intermediate) return std::nullopt;
    auto w = writers_.find(loc->first);
    if (w == writers_.end() || w->second != std::vector<int>{at}) return std::nullopt;
    return loc->first;
  }

  static bool same_library(const std::optional<LibraryGemm>& x, const std::optional<LibraryGemm>& y) {
    if (!x || !y) return !x && !y;
    return std::tie(x->dtype, x->out_dtype, x->tf32, x->m, x->n, x->k, x->batch, x->a_m, x->a_k, x->b_k, x->b_n,
                    x->a_batch, x->b_batch, x->out_batch, x->a, x->b) ==
           std::tie(y->dtype, y->out_dtype, y->tf32, y->m, y->n, y->k, y->batch, y->a_m, y->a_k, y->b_k, y->b_n,
                    y->a_batch, y->b_batch, y->out_batch, y->a, y->b);
  }

  static bool same_launch(const TracedLaunch& x, const TracedLaunch& y) {
    return x.name == y.name && x.op == y.op && x.shape == y.shape && x.inputs == y.inputs && x.strides == y.strides &&
           x.axes == y.axes && x.options == y.options && x.block_size == y.block_size && x.registry == y.registry &&
           x.entry == y.entry && same_library(x.library, y.library) && x.spec.canonical() == y.spec.canonical();
  }

  // Inlines one producer or folds one constant into launch |c|; false when nothing applies.
  bool absorb_one(int c) {
    TracedLaunch& C = p_.launches[std::size_t(c)];
    for (std::size_t k = 0; k < C.inputs.size(); ++k) {
      auto loc = TraceBuffer::locate(C.inputs[k]);
      if (!loc) continue;
      const TraceBuffer& buf = *p_.buffers[std::size_t(loc->first)];
      if (buf.kind() == TraceBuffer::Kind::constant) {
        if (!writers_.count(loc->first) && fold_constant(C, k, buf, loc->second)) return true;
        continue;
      }
      if (buf.kind() != TraceBuffer::Kind::intermediate) continue;
      auto w = writers_.find(loc->first);
      if (w == writers_.end() || w->second.size() != 1) continue;
      const int pi = w->second[0];
      if (pi >= c || removed_[std::size_t(pi)]) continue;
      const TracedLaunch& P = p_.launches[std::size_t(pi)];
      if (!family_of(P.spec).elementwise || P.library || !P.more_outputs.empty() || P.registry) continue;
      if (loc->second != 0 || P.out != C.inputs[k] || P.spec.output != C.spec.inputs[k]) continue;
      if (!reads_as_broadcast(C.shape, C.strides[k], P.shape)) continue;
      bool ok = true;
      for (std::uint64_t a : P.inputs) ok = ok && stable(a, pi + 1, c);
      if (ok && inline_producer(C, k, P)) return true;
    }
    return false;
  }

  bool fold_constant(TracedLaunch& C, std::size_t k, const TraceBuffer& buf, std::uint64_t offset) {
    for (std::size_t d = 0; d < C.shape.size(); ++d)
      if (C.shape[d] != 1 && C.strides[k][d] != 0) return false;  // more than one element read
    const DType t = C.spec.inputs[k];
    if (offset + dtype_size(t) > buf.constant().size()) return false;
    const Scalar v = load_scalar(t, buf.constant().data() + offset);
    Rebuild r;
    std::vector<NodeId> in(C.inputs.size());
    for (std::size_t j = 0; j < C.inputs.size(); ++j)
      in[j] = j == k ? literal(r.e, v, t) : r.slot({C.inputs[j], C.strides[j], C.spec.inputs[j]});
    if (!r.finish(C, inline_expr(r.e, C.spec.expr, in))) return false;
    ++report_.constants_folded;
    return true;
  }

  bool inline_producer(TracedLaunch& C, std::size_t k, const TracedLaunch& P) {
    Rebuild r;
    std::vector<NodeId> in(C.inputs.size());
    for (std::size_t j = 0; j < C.inputs.size(); ++j)
      if (j != k) in[j] = r.slot({C.inputs[j], C.strides[j], C.spec.inputs[j]});
    std::vector<NodeId> pin;
    for (std::size_t j = 0; j < P.inputs.size(); ++j)
      pin.push_back(r.slot({P.inputs[j], carry_strides(C.shape, P.shape, P.strides[j]), P.spec.inputs[j]}));
    in[k] = r.e.cast(inline_expr(r.e, P.spec.expr, pin), P.spec.output);
    if (!r.finish(C, inline_expr(r.e, C.spec.expr, in))) return false;
    ++report_.inlined;
    return true;
  }

  // A consumer's new expression and operands, built up, then simplified and installed.
  struct Rebuild : OperandExpr {
    bool finish(TracedLaunch& C, NodeId root) {
      e.set_root(root);
      Expr s = simplified(e);
      const std::vector<bool> used = used_inputs(s, ops.size());
      std::vector<int> renumber(ops.size(), -1);
      std::vector<FusedOperand> kept;
      for (std::size_t i = 0; i < ops.size(); ++i)
        if (used[i]) {
          renumber[i] = int(kept.size());
          kept.push_back(ops[i]);
        }
      if (kept.size() > std::size_t(kMaxMapInputs)) return false;
      s = renumber_inputs(s, renumber);
      KernelSpec spec = C.spec;
      spec.expr = s;
      spec.inputs = s.input_dtypes();
      spec.inputs.resize(kept.size());
      C.spec = std::move(spec);
      C.canonical = C.spec.canonical();
      C.name = C.spec.name(C.canonical);
      C.entry = nullptr;  // a generated header's kernel computes the old expression: found by name
      C.inputs.clear();
      C.strides.clear();
      for (FusedOperand& o : kept) {
        C.inputs.push_back(o.address);
        C.strides.push_back(std::move(o.strides));
      }
      return true;
    }
  };

  // ---- softmax written op by op -> the rows family ---------------------------------------------
  // After the passes above, x - max, exp, sum and the division are three launches: A = max over
  // axis a of X (A's prologue), B = sum over a of exp(X - M) (M: A's result), C = a map whose
  // expression holds exp(X - M) / S (S: B's result). They become one rows kernel: X its prologue,
  // the rest of C its epilogue.

  // The live launches reading trace buffer |id|.
  std::vector<int> readers_of(int id) const {
    std::vector<int> r;
    for (std::size_t i = 0; i < p_.launches.size(); ++i) {
      if (removed_[i]) continue;
      for (std::uint64_t a : p_.launches[i].inputs)
        if (auto l = TraceBuffer::locate(a); l && l->first == id) {
          r.push_back(int(i));
          break;
        }
    }
    return r;
  }

  // Whether launch |l| (over the shape reduction |red| reduces) reads operand |k| as |red|'s result
  // broadcast back along the reduced axes: stride 0 there, the result's row-major strides elsewhere
  // (not, say, through a reshape that would hand a row another row's value).
  static bool reads_reduced(const TracedLaunch& l, int k, const TracedLaunch& red) {
    if (k < 0 || l.shape != red.shape) return false;
    const Shape& st = l.strides[std::size_t(k)];
    std::int64_t stride = 1;
    for (std::size_t d = l.shape.size(); d-- > 0;) {
      if (l.shape[d] == 1) continue;
      if (std::find(red.axes.begin(), red.axes.end(), int(d)) != red.axes.end()) {
        if (st[d] != 0) return false;
        continue;
      }
      if (st[d] != stride) return false;
      stride *= l.shape[d];
    }
    return true;
  }

  // The input index of |address| (with |strides|) among launch |l|'s operands, or -1.
  static int operand_index(const TracedLaunch& l, std::uint64_t address, const Shape* strides = nullptr) {
    for (std::size_t k = 0; k < l.inputs.size(); ++k)
      if (l.inputs[k] == address && (!strides || l.strides[k] == *strides)) return int(k);
    return -1;
  }

  // |x| (an expression over A's operands) built in |e| over |l|'s operands; -1 when one of A's
  // operands is not among them.
  static std::int64_t graft(Expr& e, const Expr& x, const TracedLaunch& A, const TracedLaunch& l) {
    std::vector<NodeId> in;
    for (std::size_t k = 0; k < A.inputs.size(); ++k) {
      const int j = operand_index(l, A.inputs[k], &A.strides[k]);
      if (j < 0) return -1;
      in.push_back(e.input(j, l.spec.inputs[std::size_t(j)]));
    }
    return inline_expr(e, x, in);
  }
  // X, A's prologue value (before any cast to the accumulator), built in |e| over |l|'s operands.
  static std::int64_t graft_prologue(Expr& e, const TracedLaunch& A, const TracedLaunch& l) {
    return graft(e, prologue_value(A.spec), A, l);
  }
  // The value reduction |a| combines, without the cast to its accumulator (f16/bf16 -> f32) the
  // reduce op adds; a cast the user wrote (f32 -> f64: the rows kernel must then compute in f64)
  // stays.
  static Expr prologue_value(const KernelSpec& a) {
    const Expr& prologue = a.expr;
    const Node& root = prologue.node(prologue.root());
    if (root.kind != NodeKind::op || root.op != Op::as_type) return prologue;
    const DType from = prologue.dtype(root.args[0]);
    if (!(from == DType::f16 || from == DType::bf16) || reduce_accumulator_dtype(spec_combiner(a), from) != root.dtype)
      return prologue;
    Expr v = prologue;
    v.set_root(root.args[0]);
    return v.pruned();
  }
  static Expr copy_of(const TracedLaunch& l, std::vector<NodeId>* inputs) {
    Expr e;
    for (std::size_t k = 0; k < l.inputs.size(); ++k) inputs->push_back(e.input(int(k), l.spec.inputs[k]));
    e.set_root(inline_expr(e, l.spec.expr, *inputs));
    return e;
  }

  void recognize_softmax(int ai) {
    const TracedLaunch& A = p_.launches[std::size_t(ai)];
    if (A.spec.family != "reduce" || spec_combiner(A.spec) != Combiner::max || A.axes.size() != 1 || A.registry ||
        !A.spec.epilogue.nodes().empty())
      return;
    auto m = TraceBuffer::locate(A.out);
    if (!m || m->second || outputs_.count(m->first) || writers_[m->first].size() != 1) return;
    const std::vector<int> mr = readers_of(m->first);
    if (mr.size() != 2 || mr[0] <= ai) return;
    const TracedLaunch& B = p_.launches[std::size_t(mr[0])];
    TracedLaunch& C = p_.launches[std::size_t(mr[1])];
    if (B.spec.family != "reduce" || spec_combiner(B.spec) != Combiner::sum || B.axes != A.axes || B.shape != A.shape ||
        !B.spec.epilogue.nodes().empty() || B.registry || !family_of(C.spec).elementwise || C.shape != A.shape ||
        C.registry)
      return;
    auto sl = TraceBuffer::locate(B.out);
    if (!sl || sl->second || outputs_.count(sl->first) || writers_[sl->first].size() != 1) return;
    if (readers_of(sl->first) != std::vector<int>{mr[1]}) return;
    for (std::uint64_t a : A.inputs)
      if (!stable(a, ai + 1, mr[1])) return;
    // B's prologue must be exp(X - M).
    Expr eb;
    for (std::size_t k = 0; k < B.inputs.size(); ++k) eb.input(int(k), B.spec.inputs[k]);
    const std::int64_t xb = graft_prologue(eb, A, B);
    const int mb = operand_index(B, A.out);
    if (xb < 0 || !reads_reduced(B, mb, A)) return;
    const NodeId eb_root = eb.apply(Op::exp, {eb.apply(Op::subtract, {NodeId(xb), eb.input(mb, B.spec.inputs[std::size_t(mb)])})});
    eb.set_root(eb.cast(eb_root, B.spec.expr.dtype(B.spec.expr.root())));
    if (simplified(eb).canonical() != simplified(B.spec.expr).canonical()) return;
    // C must hold exp(X - M) / S, and use M and S nowhere else.
    std::vector<NodeId> cin;
    Expr ec = copy_of(C, &cin);
    const std::size_t before = ec.nodes().size();
    const std::int64_t xc = graft_prologue(ec, A, C);
    const int mc = operand_index(C, A.out), sc = operand_index(C, B.out);
    if (xc < 0 || !reads_reduced(C, mc, A) || !reads_reduced(C, sc, B) || ec.nodes().size() != before) return;
    const NodeId d = ec.apply(Op::divide, {ec.apply(Op::exp, {ec.apply(Op::subtract, {NodeId(xc), cin[std::size_t(mc)]})}),
                                           cin[std::size_t(sc)]});
    if (ec.nodes().size() != before) return;  // exp(X - M) / S is not in C
    to_rows(RowsOp::softmax, ai, mr[0], mr[1], ec, d, NodeId(xc), {mc, sc}, 1e-5, prologue_value(A.spec));
  }

  // rms_norm written op by op: A = sum over axis a of X * X, C = a map holding
  // X * rsqrt(S / n + eps) (n: the axis's length, eps a constant).
  void recognize_rms_norm(int ai) {
    const TracedLaunch& A = p_.launches[std::size_t(ai)];
    if (A.spec.family != "reduce" || spec_combiner(A.spec) != Combiner::sum || A.axes.size() != 1 || A.registry ||
        !A.spec.epilogue.nodes().empty())
      return;
    const Expr sq = prologue_value(A.spec);
    const Node& r = sq.node(sq.root());
    if (r.kind != NodeKind::op || r.op != Op::multiply || r.args[0] != r.args[1]) return;
    Expr xe = sq;
    xe.set_root(r.args[0]);
    xe = xe.pruned();
    auto sl = TraceBuffer::locate(A.out);
    if (!sl || sl->second || outputs_.count(sl->first) || writers_[sl->first].size() != 1) return;
    const std::vector<int> readers = readers_of(sl->first);
    if (readers.size() != 1 || readers[0] <= ai) return;
    const int ci = readers[0];
    const TracedLaunch& C = p_.launches[std::size_t(ci)];
    if (!family_of(C.spec).elementwise || C.shape != A.shape || C.registry) return;
    for (std::uint64_t a : A.inputs)
      if (!stable(a, ai + 1, ci)) return;
    std::vector<NodeId> cin;
    Expr ec = copy_of(C, &cin);
    const std::size_t before = ec.nodes().size();
    const std::int64_t xc = graft(ec, xe, A, C);
    const int sc = operand_index(C, A.out);
    if (xc < 0 || !reads_reduced(C, sc, A) || ec.nodes().size() != before) return;
    // add(divide(S, n), eps), either order of the add.
    const double n = double(A.shape[std::size_t(A.axes[0])]);
    auto is_const = [&](NodeId id, double* v) {
      const Node& c = ec.node(id);
      if (c.kind != NodeKind::constant) return false;
      *v = scalar_to_double(c.value, c.dtype);
      return true;
    };
    for (NodeId i = 0; i < before; ++i) {
      const Node& add = ec.node(i);
      if (add.kind != NodeKind::op || add.op != Op::add) continue;
      for (int side = 0; side < 2; ++side) {
        const Node& div = ec.node(add.args[std::size_t(side)]);
        double n_value = 0, eps = 0;
        if (div.kind != NodeKind::op || div.op != Op::divide || div.args[0] != cin[std::size_t(sc)] ||
            !is_const(div.args[1], &n_value) || n_value != n || !is_const(add.args[std::size_t(1 - side)], &eps) ||
            !(eps > 0 && std::isfinite(eps)))
          continue;
        const NodeId d = ec.apply(Op::multiply, {NodeId(xc), ec.apply(Op::rsqrt, {i})});
        if (ec.nodes().size() != before) return;  // X * rsqrt(...) is not in C
        to_rows(RowsOp::rms_norm, ai, -1, ci, ec, d, NodeId(xc), {sc}, eps, xe);
        return;
      }
    }
  }

  // Launches |ai| (and |bi| when >= 0) and |ci| become one rows kernel of |op|: |x_expr| (X over A's
  // operands, node |x_node| of |ec|) its prologue; C's expression |ec| with node |d| the op's result (y, in f32/f64, cast to d's
  // dtype) its epilogue, over C's operands other than |hidden| (which may appear only under d).
  // ---- layer norm: the rms_norm of x - mean(x) -> layer_norm ----------------------------------
  // After rms_norm's recognition a layer norm written op by op is S = sum over axis a of X, then
  // R = rms_norm over a with prologue X - S / n (n the axis's length, S broadcast along a). When S
  // is read by R alone, R becomes layer_norm with prologue X, its epilogue unchanged, and S goes.
  void recognize_layer_norm(int ri) {
    const TracedLaunch& R = p_.launches[std::size_t(ri)];
    if (R.spec.family != "rows" || R.registry || spec_rows_op(R.spec) != RowsOp::rms_norm) return;
    const RowsLayout lay = rows_layout(R.spec);
    if (lay.params != 0 || lay.residual || R.spec.attribute("prologue_inputs").empty() || R.axes.size() != 1) return;
    Expr e;
    std::vector<NodeId> in;
    for (int k = 0; k < lay.prologue; ++k) in.push_back(e.input(k, R.spec.inputs[std::size_t(k)]));
    const NodeId root = inline_expr(e, R.spec.expr, in);
    const Node sub = e.node(root);  // copies: grafting below may grow the node list
    if (sub.kind != NodeKind::op || sub.op != Op::subtract) return;
    const Node div = e.node(sub.args[1]);
    if (div.kind != NodeKind::op || div.op != Op::divide) return;
    const Node s_in = e.node(div.args[0]);
    const Node n_node = e.node(div.args[1]);
    const double n = double(R.shape[std::size_t(R.axes[0])]);
    if (s_in.kind != NodeKind::input || n_node.kind != NodeKind::constant ||
        scalar_to_double(n_node.value, n_node.dtype) != n)
      return;
    const int k = s_in.input;
    auto sl = TraceBuffer::locate(R.inputs[std::size_t(k)]);
    if (!sl || sl->second || outputs_.count(sl->first) || writers_[sl->first].size() != 1) return;
    const int si = writers_[sl->first][0];
    if (si >= ri || removed_[std::size_t(si)]) return;
    const TracedLaunch& S = p_.launches[std::size_t(si)];
    if (S.spec.family != "reduce" || spec_combiner(S.spec) != Combiner::sum || S.registry || S.library ||
        !S.spec.epilogue.nodes().empty() || S.axes != R.axes || S.shape != R.shape || S.out != R.inputs[std::size_t(k)] ||
        !reads_reduced(R, k, S))
      return;
    if (readers_of(sl->first) != std::vector<int>{ri}) return;
    for (int j = lay.prologue; j < int(R.inputs.size()); ++j)  // S read by R's epilogue too: S must stay
      if (auto b = TraceBuffer::locate(R.inputs[std::size_t(j)]); b && b->first == sl->first) return;
    for (std::uint64_t a : S.inputs)
      if (!stable(a, si + 1, ri)) return;
    // S sums X itself: its prologue grafted onto R's operands is the node the subtraction reads.
    const std::size_t before = e.nodes().size();
    const std::int64_t x = graft(e, prologue_value(S.spec), S, R);
    if (x < 0 || e.nodes().size() != before || NodeId(x) != sub.args[0]) return;
    for (std::uint64_t a : S.inputs)
      if (operand_index(R, a) >= lay.prologue) return;  // X must read prologue operands only
    // The prologue X over R's prologue operands without S.
    Expr xe = e;
    xe.set_root(NodeId(x));
    xe = xe.pruned();
    std::vector<int> renumber(std::size_t(lay.prologue), -1);
    std::vector<std::uint64_t> inputs;
    std::vector<Shape> strides;
    const std::vector<bool> used = used_inputs(xe, std::size_t(lay.prologue));
    for (int j = 0; j < lay.prologue; ++j)
      if (used[std::size_t(j)]) {
        renumber[std::size_t(j)] = int(inputs.size());
        inputs.push_back(R.inputs[std::size_t(j)]);
        strides.push_back(R.strides[std::size_t(j)]);
      }
    if (used[std::size_t(k)]) return;
    RowsFusion fusion;
    fusion.prologue = renumber_inputs(xe, renumber);
    fusion.epilogue = R.spec.epilogue;
    fusion.output = R.spec.output;
    if (const Node xr = fusion.prologue.node(fusion.prologue.root()); xr.kind == NodeKind::input && inputs.size() == 1)
      fusion.prologue = Expr();
    TracedLaunch L = R;
    try {
      L.spec = make_rows_spec(RowsOp::layer_norm, lay.x, 0, RowsBias::none, false, &fusion);
    } catch (const Error& err) {
      report_.notes.push_back(fmt::format("#{}, #{} (a layer norm written op by op) stay apart: {}", si, ri, err.what()));
      return;
    }
    for (int j = lay.prologue; j < int(R.inputs.size()); ++j) {  // the epilogue's operands, as they were
      inputs.push_back(R.inputs[std::size_t(j)]);
      strides.push_back(R.strides[std::size_t(j)]);
    }
    L.canonical = L.spec.canonical();
    L.name = L.spec.name(L.canonical);
    L.op = "layer_norm (" + S.op + ", " + R.op + ")";
    L.inputs = std::move(inputs);
    L.strides = std::move(strides);
    p_.launches[std::size_t(ri)] = std::move(L);
    removed_[std::size_t(si)] = true;
    ++report_.rows;
  }

  void to_rows(RowsOp op, int ai, int bi, int ci, const Expr& ec, NodeId d, NodeId x_node, const std::vector<int>& hidden,
               double eps, const Expr& x_expr) {
    const TracedLaunch& A = p_.launches[std::size_t(ai)];
    TracedLaunch& C = p_.launches[std::size_t(ci)];
    const DType x = ec.dtype(x_node);
    const DType compute = x == DType::f64 ? DType::f64 : DType::f32;
    Expr g;
    const NodeId y = g.cast(g.input(0, compute), ec.dtype(d));
    std::vector<bool> live(ec.nodes().size(), false);
    live[ec.root()] = true;
    for (std::size_t i = ec.nodes().size(); i-- > 0;)
      if (live[i] && NodeId(i) != d)
        for (int k = 0; k < ec.node(NodeId(i)).num_args; ++k) live[ec.node(NodeId(i)).args[std::size_t(k)]] = true;
    std::vector<NodeId> map(ec.nodes().size());
    std::vector<int> epilogue_operands;
    for (NodeId i = 0; i < ec.nodes().size(); ++i) {
      if (!live[i]) continue;
      const Node n = ec.node(i);
      if (i == d) {
        map[i] = y;
      } else if (n.kind == NodeKind::input) {
        if (std::find(hidden.begin(), hidden.end(), n.input) != hidden.end()) return;  // used outside d
        epilogue_operands.push_back(n.input);
        map[i] = g.input(int(epilogue_operands.size()), n.dtype);
      } else if (n.kind == NodeKind::constant) {
        map[i] = literal(g, n.value, n.dtype);
      } else if (n.op == Op::as_type) {
        map[i] = g.cast(map[n.args[0]], n.dtype);
      } else {
        NodeId a[3] = {};
        for (int k = 0; k < n.num_args; ++k) a[k] = map[n.args[std::size_t(k)]];
        map[i] = apply_like(g, n, a);
      }
    }
    g.set_root(g.cast(map[ec.root()], C.spec.output));
    RowsFusion fusion;
    const Node& xr = x_expr.node(x_expr.root());
    if (!(xr.kind == NodeKind::input && xr.input == 0 && A.inputs.size() == 1)) fusion.prologue = x_expr;
    const Node& gr = g.node(g.root());
    if (!(gr.kind == NodeKind::input && gr.dtype == C.spec.output)) fusion.epilogue = g.pruned();  // else: y as it is
    fusion.output = C.spec.output;
    fusion.masked_nan = op == RowsOp::softmax;  // a fully masked row is NaN op by op (-inf - -inf)
    TracedLaunch rows;
    const std::string name(rows_op_info(op).name);
    try {
      rows.spec = make_rows_spec(op, x, 0, RowsBias::none, false, &fusion);
    } catch (const Error& e) {
      report_.notes.push_back(fmt::format("#{}..#{} ({} written op by op) stay apart: {}", ai, ci, name, e.what()));
      return;
    }
    rows.op = name + " (" + A.op + (bi >= 0 ? ", " + p_.launches[std::size_t(bi)].op : "") + ", " + C.op + ")";
    rows.canonical = rows.spec.canonical();
    rows.name = rows.spec.name(rows.canonical);
    rows.shape = A.shape;
    rows.inputs = A.inputs;
    rows.strides = A.strides;
    for (int k : epilogue_operands) {
      rows.inputs.push_back(C.inputs[std::size_t(k)]);
      rows.strides.push_back(C.strides[std::size_t(k)]);
    }
    rows.out = C.out;
    rows.axes = A.axes;
    rows.options = {{"eps", eps}, {"scale", 1.0}};
    rows.block_size = rows.spec.block_size;
    C = std::move(rows);
    removed_[std::size_t(ai)] = true;
    if (bi >= 0) removed_[std::size_t(bi)] = true;
    ++report_.rows;
  }

  // Moves the one elementwise consumer of launch |pi|'s output into its epilogue (the consumer's
  // launch becomes the fused kernel; |pi| is removed).
  void fuse_consumer(int pi) {
    const TracedLaunch& P = p_.launches[std::size_t(pi)];
    auto loc = TraceBuffer::locate(P.out);
    if (!loc || loc->second != 0 || P.registry || !P.more_outputs.empty() || outputs_.count(loc->first)) return;
    if (p_.buffers[std::size_t(loc->first)]->kind() != TraceBuffer::Kind::intermediate) return;
    if (writers_[loc->first].size() != 1) return;
    int ci = -1;
    std::size_t slot = 0;
    for (std::size_t i = 0; i < p_.launches.size(); ++i) {
      if (removed_[i] || int(i) == pi) continue;
      for (std::size_t k = 0; k < p_.launches[i].inputs.size(); ++k) {
        auto l = TraceBuffer::locate(p_.launches[i].inputs[k]);
        if (!l || l->first != loc->first) continue;
        if (ci >= 0) return;  // a second reader
        ci = int(i);
        slot = k;
      }
    }
    if (ci <= pi) return;
    TracedLaunch& C = p_.launches[std::size_t(ci)];
    if (!family_of(C.spec).elementwise || C.spec.inputs[slot] != P.spec.output || C.registry) return;
    const std::size_t bytes = std::size_t(shape_numel(C.shape)) * dtype_size(P.spec.output);
    if (bytes != p_.buffers[std::size_t(loc->first)]->size_bytes()) return;
    const Shape rm = row_major_strides(C.shape);
    for (std::size_t d = 0; d < C.shape.size(); ++d)
      if (C.shape[d] != 1 && C.strides[slot][d] != rm[d]) return;
    // Nothing up to the consumer itself writes what the producer reads: the fused kernel reads
    // windows of those operands while it writes the consumer's output (eager refuses that overlap).
    for (std::uint64_t a : P.inputs)
      if (!stable(a, pi + 1, ci + 1)) return;
    std::vector<Shape> others;
    std::vector<std::uint64_t> other_addresses;
    for (std::size_t k = 0; k < C.inputs.size(); ++k)
      if (k != slot) {
        others.push_back(C.strides[k]);
        other_addresses.push_back(C.inputs[k]);
      }
    std::string why;
    std::optional<EpilogueFusion> f =
        family_of(P.spec).fuse_epilogue(P.spec, P.shape, P.axes, C.spec.expr, int(slot), C.shape, others, &why);
    if (!f) {
      report_.notes.push_back(fmt::format("#{} ({}) stays out of the epilogue of #{} ({}): {}", ci, C.op, pi, P.op, why));
      return;
    }
    TracedLaunch merged = P;
    merged.op = P.op + "+" + C.op;
    merged.spec = std::move(f->spec);
    merged.canonical = merged.spec.canonical();
    merged.name = merged.spec.name(merged.canonical);
    merged.library.reset();  // the vendor library has no such epilogue
    for (std::size_t j = 0; j < others.size(); ++j) {
      merged.inputs.push_back(other_addresses[j]);
      merged.strides.push_back(std::move(f->strides[j]));
    }
    merged.out = C.out;
    C = std::move(merged);
    removed_[std::size_t(pi)] = true;
    ++report_.epilogues;
  }

  void remove_dead() {
    std::map<int, int> readers;
    auto count = [&](const TracedLaunch& l, int delta) {
      for (std::uint64_t a : l.inputs)
        if (auto loc = TraceBuffer::locate(a)) readers[loc->first] += delta;
    };
    for (std::size_t i = 0; i < p_.launches.size(); ++i)
      if (!removed_[i]) count(p_.launches[i], +1);
    for (std::size_t i = p_.launches.size(); i-- > 0;) {
      if (removed_[i]) continue;
      const TracedLaunch& l = p_.launches[i];
      auto loc = TraceBuffer::locate(l.out);
      if (!loc || !l.more_outputs.empty() || outputs_.count(loc->first) || readers[loc->first] > 0) continue;
      if (p_.buffers[std::size_t(loc->first)]->kind() != TraceBuffer::Kind::intermediate) continue;
      removed_[i] = true;
      count(l, -1);
    }
  }

  TraceProgram& p_;
  std::set<int> outputs_;
  std::map<int, std::vector<int>> writers_;
  bool writes_real_ = false;
  std::vector<bool> removed_;
  FusionReport report_;
};

std::string address_text(std::uint64_t a) {
  if (auto loc = TraceBuffer::locate(a))
    return loc->second ? fmt::format("%{}+{}", loc->first, loc->second) : fmt::format("%{}", loc->first);
  return fmt::format("@{:#x}", a);
}

}  // namespace

FusionReport fuse(TraceProgram& program, const std::vector<int>& outputs) { return Fuser(program, outputs).run(); }

std::string describe_program(const TraceProgram& program) {
  std::string s;
  for (std::size_t i = 0; i < program.launches.size(); ++i) {
    const TracedLaunch& l = program.launches[i];
    std::string ins;
    for (std::size_t k = 0; k < l.inputs.size(); ++k)
      ins += fmt::format("{}{} {}", k ? ", " : "", address_text(l.inputs[k]), shape_text(l.strides[k]));
    std::string outs = address_text(l.out);
    for (std::uint64_t a : l.more_outputs) outs += ", " + address_text(a);
    s += fmt::format("#{} {} ({}{}): shape {} <- {} -> {}\n", i, l.name, l.op, l.library ? ", vendor library first" : "",
                     shape_text(l.shape), ins.empty() ? "nothing" : ins, outs);
    s += fmt::format("    {}\n", l.spec.canonical());
  }
  return s;
}

}  // namespace kiln
