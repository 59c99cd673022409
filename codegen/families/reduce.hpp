// The reduce family's vocabulary, shared by its descriptor (reduce.cpp), manifests and the tensor
// API (runtime/reduce.cpp): the combiners with Nx's names and result dtypes, and the spec builder.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "codegen/spec.hpp"
#include "core/scalar.hpp"

namespace kiln {

enum class Combiner : std::uint8_t { sum, product, max, min, all, any, argmax, argmin };

struct CombinerInfo {
  Combiner combiner;
  std::string_view name;  // the spec attribute and the manifest's `reduce = ...`
  std::string_view op;    // Nx's function: sum, product, reduce_max, reduce_min, all, any, argmax, argmin
  DTypeSet accepts;       // dtypes of the reduced values
  Op combine;             // the elementwise op combining two accumulators (argmax/argmin: compare)
  std::string_view formula;
};

std::span<const CombinerInfo> combiner_table();
const CombinerInfo& combiner_info(Combiner c);
// By combiner name ("max") or Nx op name ("reduce_max").
std::optional<Combiner> find_combiner(std::string_view name);
bool is_arg_combiner(Combiner c);

// Nx's result dtype of reducing values of |operand| with |c|: sum/product of signed integers s64,
// of unsigned integers and pred u64, floats keep theirs; max/min keep the dtype; all/any pred;
// argmax/argmin s64.
DType reduce_result_dtype(Combiner c, DType operand);
// The dtype the kernel accumulates in: f16/bf16 in f32, sums and products of integers in 64 bits
// (wrapping), all/any in pred; otherwise |operand|'s (max/min/argmax/argmin compare in f32 for
// f16/bf16, which is exact).
DType reduce_accumulator_dtype(Combiner c, DType operand);

// A reduce kernel: |prologue| over the inputs gives the values (dtype P), reduced with |c|
// (accumulating in reduce_accumulator_dtype(c, P)); the result (reduce_result_dtype) goes through
// |epilogue| when given (input 0: the result, input 1: the reduced count as s64), then is
// converted to |output| (default: the epilogue's dtype, else the result's). |tie_high| picks the
// last of equal argmax/argmin candidates instead of the first. Throws dtype_mismatch when |c| does
// not accept P, invalid_argument for an epilogue whose inputs are not (result, s64).
KernelSpec make_reduce_spec(Combiner c, const Expr& prologue, const Expr* epilogue = nullptr,
                            std::optional<DType> output = {}, bool tie_high = false);
// The combiner of a reduce spec.
Combiner spec_combiner(const KernelSpec& spec);

// The identity of |c| (not argmax/argmin) over accumulators of dtype |acc| (sum 0, product 1, max
// the lowest value or -inf, min the highest or +inf) and combine(a, b) over two of them, with the
// op table's semantics (max/min: NaN wins; integers wrap). Shared with the scan family.
Scalar combiner_identity(Combiner c, DType acc);
Expr combiner_expr(Combiner c, DType acc);

}  // namespace kiln
