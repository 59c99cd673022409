// kiln::jit's last fusion pass (declared in runtime/fuse.hpp): elementwise kernels over the same
// shape that the function runs apart become one kernel with several results (an expression with
// more roots, codegen/expr.hpp), so that an Adam update's three results are one pass over p, g, m
// and v instead of three.
#include <algorithm>
#include <optional>

#include "codegen/abi.hpp"
#include "codegen/family.hpp"
#include "runtime/fuse.hpp"
#include "runtime/fuse_operands.hpp"

namespace kiln {

namespace {

class Siblings {
 public:
  explicit Siblings(TraceProgram& p) : p_(p) {}

  int run() {
    const std::size_t n = p_.launches.size();
    removed_.assign(n, false);
    int merged = 0;
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = i + 1; j < n && !removed_[i] && result_buffer(p_.launches[i]); ++j)
        if (!removed_[j] && merge(i, j)) ++merged;
    std::vector<TracedLaunch> kept;
    for (std::size_t i = 0; i < n; ++i)
      if (!removed_[i]) kept.push_back(std::move(p_.launches[i]));
    p_.launches = std::move(kept);
    return merged;
  }

 private:
  static std::optional<int> buffer_of(std::uint64_t address) {
    auto loc = TraceBuffer::locate(address);
    return loc ? std::optional<int>(loc->first) : std::nullopt;
  }

  // The trace buffer a map launch writes as a whole (the results of a merge are such buffers, each
  // written by its launch alone), or nullopt when the launch cannot take part.
  std::optional<int> result_buffer(const TracedLaunch& l) const {
    if (!family_of(l.spec).elementwise || l.library || l.registry || l.entry) return std::nullopt;
    auto loc = TraceBuffer::locate(l.out);
    if (!loc || loc->second != 0) return std::nullopt;
    if (p_.buffers[std::size_t(loc->first)]->kind() != TraceBuffer::Kind::intermediate) return std::nullopt;
    return loc->first;
  }

  bool writes(const TracedLaunch& l, int buffer) const {
    if (buffer_of(l.out) == buffer) return true;
    for (std::uint64_t a : l.more_outputs)
      if (buffer_of(a) == buffer) return true;
    return false;
  }
  static bool reads(const TracedLaunch& l, std::optional<int> buffer) {
    for (std::uint64_t a : l.inputs)
      if (buffer_of(a) == buffer) return true;
    if (l.library) return buffer_of(l.library->a) == buffer || buffer_of(l.library->b) == buffer;
    return false;
  }
  static bool writes_real(const TracedLaunch& l) {
    if (!buffer_of(l.out)) return true;
    for (std::uint64_t a : l.more_outputs)
      if (!buffer_of(a)) return true;
    return false;
  }

  // Whether every operand of |l| is dense over its shape (the kernel's contiguous path).
  static bool dense(const TracedLaunch& l) {
    const Shape st = row_major_strides(l.shape);
    for (const Shape& s : l.strides)
      for (std::size_t d = 0; d < l.shape.size(); ++d)
        if (l.shape[d] != 1 && s[d] != st[d]) return false;
    return true;
  }

  // Whether one pass serves both launches as well as two: a dense launch has vector accesses that
  // a strided one loses, which matters when the arrays are large and the two read nothing in
  // common (a shared operand read once instead of twice makes up for it).
  static bool same_pass(const TracedLaunch& x, const TracedLaunch& y) {
    if (dense(x) == dense(y) || shape_numel(x.shape) <= (std::int64_t(1) << 20)) return true;
    for (std::uint64_t a : x.inputs)
      if (std::find(y.inputs.begin(), y.inputs.end(), a) != y.inputs.end()) return true;
    return false;
  }

  // Whether launch |l| may run at another place: no launch of [lo, hi) but itself (removed ones
  // aside) writes what it reads, or reads or writes what it writes.
  bool movable(const TracedLaunch& l, std::size_t lo, std::size_t hi) const {
    std::vector<int> outs;
    for (std::uint64_t a : l.more_outputs) {
      const std::optional<int> b = buffer_of(a);
      if (!b) return false;
      outs.push_back(*b);
    }
    outs.push_back(*buffer_of(l.out));
    const bool reads_real = std::any_of(l.inputs.begin(), l.inputs.end(), [](std::uint64_t a) { return !buffer_of(a); });
    for (std::size_t k = lo; k < hi; ++k) {
      const TracedLaunch& K = p_.launches[k];
      if (removed_[k] || &K == &l) continue;
      if (reads_real && writes_real(K)) return false;
      for (std::uint64_t a : l.inputs)
        if (const std::optional<int> b = buffer_of(a); b && writes(K, *b)) return false;
      for (int b : outs)
        if (reads(K, b) || writes(K, b)) return false;
    }
    return true;
  }

  // Launches |i| < |j| become one when either may move to the other's place (the other one
  // included in what it moves across) and the two stay within the map ABI. The merged launch takes
  // that place, i's results first.
  bool merge(std::size_t i, std::size_t j) {
    const TracedLaunch& I = p_.launches[i];
    const TracedLaunch& J = p_.launches[j];
    if (!result_buffer(J) || I.shape != J.shape || I.block_size != J.block_size || !same_pass(I, J)) return false;
    if (I.more_outputs.size() + J.more_outputs.size() + 2 > std::size_t(kMaxMapOutputs)) return false;
    std::size_t at = i, gone = j;
    if (!movable(J, i, j + 1)) {
      if (!movable(I, i, j + 1)) return false;
      std::swap(at, gone);
    }
    // One expression over the operands of both, I's results first.
    OperandExpr x;
    auto roots_of = [&x](const TracedLaunch& l) {
      std::vector<NodeId> in;
      for (std::size_t k = 0; k < l.inputs.size(); ++k) in.push_back(x.slot({l.inputs[k], l.strides[k], l.spec.inputs[k]}));
      std::vector<NodeId> r = inline_roots(x.e, l.spec.expr, in);
      r.front() = x.e.cast(r.front(), l.spec.output);
      return r;
    };
    std::vector<NodeId> roots = roots_of(I);
    const std::vector<NodeId> more = roots_of(J);
    if (x.ops.size() > std::size_t(kMaxMapInputs)) return false;
    roots.insert(roots.end(), more.begin(), more.end());
    x.e.set_root(roots.front());
    x.e.set_more_roots({roots.begin() + 1, roots.end()});
    TracedLaunch merged = I;
    merged.spec.expr = x.e.pruned();
    merged.spec.inputs = merged.spec.expr.input_dtypes();
    merged.spec.inputs.resize(x.ops.size());
    merged.canonical = merged.spec.canonical();
    merged.name = merged.spec.name(merged.canonical);
    merged.op += "+" + J.op;
    merged.inputs.clear();
    merged.strides.clear();
    for (FusedOperand& o : x.ops) {
      merged.inputs.push_back(o.address);
      merged.strides.push_back(std::move(o.strides));
    }
    merged.more_outputs.push_back(J.out);
    merged.more_outputs.insert(merged.more_outputs.end(), J.more_outputs.begin(), J.more_outputs.end());
    // More operands merge fewer dimensions: the kernel must still take the layout (kMaxMapRank).
    std::vector<PlanOperand> planned;
    for (std::size_t k = 0; k < merged.inputs.size(); ++k) planned.push_back({merged.inputs[k], merged.strides[k]});
    PlanRequest request{merged.shape, planned, merged.out, {}, merged.block_size};
    request.more_outputs = merged.more_outputs;
    std::string why;
    if (family_of(merged.spec).plan(merged.spec, request, &why).function < 0) return false;
    p_.launches[at] = std::move(merged);
    removed_[gone] = true;
    return true;
  }

  TraceProgram& p_;
  std::vector<bool> removed_;
};

}  // namespace

int merge_sibling_maps(TraceProgram& program) { return Siblings(program).run(); }

}  // namespace kiln
