// A kernel spec names a kernel: {family, dtypes, expression slots, attributes, tuning}. It has a
// canonical text form (parsed back by spec_from_canonical) and a stable hash, and the kernel name is
// <family>_<input dtypes>_<output>_<hash>, e.g. map_f32f32_f32_3a9c1e07. The same spec yields the
// same name and source on every machine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codegen/expr.hpp"

namespace kiln {

struct KernelSpec {
  std::string family = "map";
  std::vector<DType> inputs;
  DType output = DType::f32;
  // The expression slots. map: |expr| (its root has dtype |output|). reduce: |expr| is the
  // prologue over the inputs (its root has the accumulator's dtype) and |epilogue| the function of
  // the reduced value (input 0) and the reduced count (input 1, s64), empty for none.
  Expr expr;
  Expr epilogue;
  // Family attributes (reduce: combiner, tie_break), sorted by key; part of the name.
  std::vector<std::pair<std::string, std::string>> attributes;
  int block_size = 256;  // CUDA block / Vulkan workgroup size

  // The value of attribute |key|, or "" when the spec has none.
  std::string_view attribute(std::string_view key) const;
  void set_attribute(std::string key, std::string value);

  std::string canonical() const;
  std::uint64_t hash() const;
  // family_dtypes_output_<top 32 bits of XXH64(canonical)>: short, so two specs may share one
  // (about N^2 / 2^33 for N specs of one signature); lookups by name compare the canonical text.
  std::string name() const;
  std::string name(const std::string& canonical) const;  // the same from canonical() already made
};

// Parses KernelSpec::canonical() text back (generated headers embed it); parse_error otherwise.
KernelSpec spec_from_canonical(std::string_view text);

// A map kernel computing |expr| over |inputs| (the expression's input dtypes), converted to
// |output| with as_type when the expression's dtype differs.
KernelSpec make_map_spec(const Expr& expr, DType output);

// The expression of a single op applied to inputs of |operand| (the built-in kernels), and its spec.
Expr single_op_expr(Op op, DType operand, DType cast_to = DType::f32);
KernelSpec single_op_spec(Op op, DType operand, DType cast_to = DType::f32);

// The specs an [[ops]] table expands to for one op over |dtypes| (the op table drives it):
// each dtype the op accepts gives single_op_spec(op, dtype); as_type gives every (from, to) pair
// with from != to; select gives one spec per value dtype (the condition is pred).
std::vector<KernelSpec> expand_op(Op op, const std::vector<DType>& dtypes);

}  // namespace kiln
