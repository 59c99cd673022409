// The rows family's vocabulary, shared by its descriptor (rows.cpp), manifests and the tensor API
// (runtime/rows.cpp): the row-wise ops with Nx's names and the spec builder.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "codegen/spec.hpp"

namespace kiln {

enum class RowsOp : std::uint8_t { softmax, log_softmax, logsumexp, layer_norm, rms_norm };
// softmax and log_softmax: an input added to scale * x (x's dtype), or a pred mask (0: -inf).
enum class RowsBias : std::uint8_t { none, add, mask };

struct RowsOpInfo {
  RowsOp op;
  std::string_view name;  // the spec attribute, the manifest's `op = ...` and the tensor function
  int max_inputs;         // x, then the optional affine inputs (gamma, beta)
  bool keeps_axis;        // the output has the input's shape (logsumexp: the axis is reduced)
  std::string_view formula;
};

std::span<const RowsOpInfo> rows_op_table();
const RowsOpInfo& rows_op_info(RowsOp op);
std::optional<RowsOp> find_rows_op(std::string_view name);

// A rows kernel: |op| over rows of |x| (f16, bf16, f32, f64; computed in f32, f64 for f64), with
// |affine| optional inputs of x's dtype along the row (layer_norm: gamma, beta; rms_norm: gamma;
// 0 for the others). softmax and log_softmax may take a |bias| input (add: x's dtype; mask: pred)
// and a |causal| mask (row r of Q rows along the axis before: elements j > r mod Q are masked);
// their scale is a launch value. The output has x's dtype. Throws dtype_mismatch for a non-float
// x, invalid_argument for too many affine inputs or a bias/causal on another op.
KernelSpec make_rows_spec(RowsOp op, DType x, int affine = 0, RowsBias bias = RowsBias::none, bool causal = false);
RowsBias spec_rows_bias(const KernelSpec& spec);
// The op of a rows spec.
RowsOp spec_rows_op(const KernelSpec& spec);

}  // namespace kiln
