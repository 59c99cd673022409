// The rows family's vocabulary, shared by its descriptor (rows.cpp), manifests and the tensor API
// (runtime/rows.cpp): the row-wise ops with Nx's names and the spec builder.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "codegen/expr.hpp"
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

// The fused forms of a rows kernel (all optional): a |prologue| computing x elementwise from the
// kernel's first inputs (the residual add h = x + r before a norm, a dequantizing cast), an
// |epilogue| on the op's result y (input 0, in the compute dtype: f32, f64 for f64) and further
// inputs of x's shape (1, 2, ...: gating y * sigmoid(g)), converted to |output| (default: x's
// dtype), and |residual|: layer_norm and rms_norm also write h = x (the prologue's value, in its
// dtype) as a second output, so the residual stream is read once.
struct RowsFusion {
  Expr prologue;
  Expr epilogue;
  std::optional<DType> output;
  bool residual = false;
  // softmax, log_softmax: a fully masked row (every element -inf) gives NaN, as the op written op
  // by op does (-inf - -inf), instead of 0 (-inf for log_softmax). kiln::jit's recognised softmax.
  bool masked_nan = false;
};

// A rows kernel: |op| over rows of |x| (f16, bf16, f32, f64; computed in f32, f64 for f64), with
// |affine| optional inputs of x's dtype along the row (layer_norm: gamma, beta; rms_norm: gamma;
// 0 for the others). softmax and log_softmax may take a |bias| input (add: x's dtype; mask: pred)
// and a |causal| mask (row r of Q rows along the axis before: elements j > r mod Q are masked);
// their scale is a launch value. The output has x's dtype unless |fusion| says otherwise. Inputs,
// in order: the prologue's (x alone without one), gamma/beta or the bias, the epilogue's. Throws
// dtype_mismatch for a non-float x, invalid_argument for too many affine inputs, a bias/causal on
// another op, more than 4 inputs, a prologue whose dtype is not |x|, an epilogue not over
// (y, ...), epilogue inputs or a residual on an op without a per-element output.
KernelSpec make_rows_spec(RowsOp op, DType x, int affine = 0, RowsBias bias = RowsBias::none, bool causal = false,
                          const RowsFusion* fusion = nullptr);
RowsBias spec_rows_bias(const KernelSpec& spec);
// The op of a rows spec.
RowsOp spec_rows_op(const KernelSpec& spec);

// Where a rows spec's inputs are: [0, prologue) feed the prologue (x itself: 1 input, no prologue),
// then |params| (gamma[, beta] or the bias), then |epilogue| inputs; x's dtype; the second output.
struct RowsLayout {
  int prologue = 1;
  int params = 0;
  int epilogue = 0;
  DType x = DType::f32;
  bool residual = false;
};
RowsLayout rows_layout(const KernelSpec& spec);

}  // namespace kiln
