// Reductions with Nx semantics (docs/semantics.md, "Reductions"): sum, product, reduce_max,
// reduce_min, all, any over any set of axes, argmax/argmin over one axis or all, and kiln::reduce
// with a fused elementwise prologue over several inputs and an epilogue on the reduced value.
// Axes count from the back when negative (as in Nx); an empty list reduces every axis; keep_axes
// leaves the reduced axes in the result with size 1. Result dtypes: sum/product of signed integers
// s64, of unsigned integers and pred u64, floats keep theirs; max/min keep the dtype; all/any pred;
// argmax/argmin s64. Float sums accumulate f16/bf16 in f32 and are deterministic run to run.
// Errors (invalid_argument, dtype_mismatch) name the op, the shapes, the axes, the dtypes and the
// device. Every function takes an optional |into| (a contiguous tensor of the result's shape and
// dtype on the operands' device).
#pragma once

#include <optional>
#include <vector>

#include "codegen/expr.hpp"
#include "codegen/families/reduce.hpp"
#include "runtime/registry.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

enum class TieBreak : std::uint8_t { low, high };

Tensor sum(const Tensor& x, const std::vector<int>& axes = {}, bool keep_axes = false, const Tensor* into = nullptr);
Tensor product(const Tensor& x, const std::vector<int>& axes = {}, bool keep_axes = false,
               const Tensor* into = nullptr);
Tensor reduce_max(const Tensor& x, const std::vector<int>& axes = {}, bool keep_axes = false,
                  const Tensor* into = nullptr);
Tensor reduce_min(const Tensor& x, const std::vector<int>& axes = {}, bool keep_axes = false,
                  const Tensor* into = nullptr);
Tensor all(const Tensor& x, const std::vector<int>& axes = {}, bool keep_axes = false, const Tensor* into = nullptr);
Tensor any(const Tensor& x, const std::vector<int>& axes = {}, bool keep_axes = false, const Tensor* into = nullptr);
// The index along |axis| of the largest (smallest) element, NaN counting as the largest
// (smallest); without an axis, the index into the flattened tensor. Equal candidates: the first
// (TieBreak::low, Nx's default) or the last. An empty axis is an error.
Tensor argmax(const Tensor& x, std::optional<int> axis = {}, bool keep_axis = false, TieBreak tie = TieBreak::low,
              const Tensor* into = nullptr);
Tensor argmin(const Tensor& x, std::optional<int> axis = {}, bool keep_axis = false, TieBreak tie = TieBreak::low,
              const Tensor* into = nullptr);

// A fused reduction: |prologue| (input k = inputs[k], broadcast together) reduced with |c| over
// |axes|, then |epilogue| when given (input 0: the reduced value in reduce_result_dtype, input 1:
// the number of reduced elements as s64), converted to |out| when given. For example the RMS
// factor of each row: reduce(Combiner::sum, parse_expr("x * x", {f32}), {x}, {.axes = {-1},
// .keep_axes = true, .epilogue = &rsqrt_of_mean}) with rsqrt_of_mean =
// parse_expr("rsqrt(x / y + 1e-6)", {f32, s64}).
struct ReduceOptions {
  std::vector<int> axes;            // empty: all
  bool keep_axes = false;
  const Expr* epilogue = nullptr;
  std::optional<DType> out;
  TieBreak tie = TieBreak::low;     // argmax/argmin
  const Registry* registry = nullptr;  // looked up first (a kiln_add_kernels registry)
};
Tensor reduce(Combiner c, const Expr& prologue, const std::vector<Tensor>& inputs, const ReduceOptions& options = {},
              const Tensor* into = nullptr);

// Runs reduce kernel |spec| (a reduce-family spec; |name| its name when known) over |inputs|:
// kiln::reduce and the generated functions of user manifests (AotKernel) share it. |entry| of
// |first| is used when given.
Tensor run_reduce_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                         const std::vector<Tensor>& inputs, const std::vector<int>& axes, bool keep_axes,
                         const Tensor* into, const Registry* first, const KernelEntry* entry = nullptr);

}  // namespace kiln
