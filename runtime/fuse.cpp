#include "runtime/fuse.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/eval.hpp"
#include "codegen/family.hpp"

namespace kiln {

namespace {

Shape row_major(const Shape& shape) {
  Shape st(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return st;
}

// Whether a consumer over |cshape| reading with |cstrides| reads a row-major |vshape| value
// element for element, or broadcast (right-aligned, as Nx broadcasts).
bool reads_as_broadcast(const Shape& cshape, const Shape& cstrides, const Shape& vshape) {
  if (vshape.size() > cshape.size()) return false;
  const Shape vst = row_major(vshape);
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

struct Operand {
  std::uint64_t address;
  Shape strides;
  DType dtype;
};

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
    for (std::size_t c = 0; c < p_.launches.size(); ++c) {
      if (!family_of(p_.launches[c].spec).pointwise_inputs || p_.launches[c].library) continue;
      while (absorb_one(int(c))) {
      }
    }
    remove_dead();
    std::vector<TracedLaunch> kept;
    for (std::size_t i = 0; i < p_.launches.size(); ++i)
      if (!removed_[i]) kept.push_back(std::move(p_.launches[i]));
    p_.launches = std::move(kept);
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
  struct Rebuild {
    Expr e;
    std::vector<Operand> ops;
    NodeId slot(const Operand& o) {
      for (std::size_t i = 0; i < ops.size(); ++i)
        if (ops[i].address == o.address && ops[i].strides == o.strides && ops[i].dtype == o.dtype)
          return e.input(int(i), o.dtype);
      ops.push_back(o);
      return e.input(int(ops.size() - 1), o.dtype);
    }
    bool finish(TracedLaunch& C, NodeId root) {
      e.set_root(root);
      Expr s = simplified(e);
      const std::vector<bool> used = used_inputs(s, ops.size());
      std::vector<int> renumber(ops.size(), -1);
      std::vector<Operand> kept;
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
      C.name = C.spec.name();
      C.inputs.clear();
      C.strides.clear();
      for (Operand& o : kept) {
        C.inputs.push_back(o.address);
        C.strides.push_back(std::move(o.strides));
      }
      return true;
    }
  };

  void remove_dead() {
    std::map<int, int> readers;
    auto count = [&](const TracedLaunch& l, int delta) {
      for (std::uint64_t a : l.inputs)
        if (auto loc = TraceBuffer::locate(a)) readers[loc->first] += delta;
    };
    for (std::size_t i = 0; i < p_.launches.size(); ++i) count(p_.launches[i], +1);
    for (std::size_t i = p_.launches.size(); i-- > 0;) {
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
    s += fmt::format("#{} {} ({}{}): shape {} <- {} -> {}\n", i, l.name, l.op, l.library ? ", vendor library first" : "",
                     shape_text(l.shape), ins.empty() ? "nothing" : ins, address_text(l.out));
    s += fmt::format("    {}\n", l.spec.canonical());
  }
  return s;
}

}  // namespace kiln
