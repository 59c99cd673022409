// Row-wise ops (docs/semantics.md, "Row ops"): softmax, log_softmax, logsumexp, layer_norm and
// rms_norm over one axis (the last by default; negative axes count from the back, as in Nx), on
// float tensors (f16 and bf16 computed in f32, rounded once). layer_norm's gamma and beta and
// rms_norm's gamma are optional 1-D tensors of the axis' length and x's dtype; eps must be > 0.
// Errors (invalid_argument, dtype_mismatch) name the op, the shapes, the axis, the dtypes and the
// device. Every function takes an optional |into| (a contiguous tensor of the result's shape and
// dtype on x's device).
#pragma once

#include "codegen/families/rows.hpp"
#include "runtime/registry.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

Tensor softmax(const Tensor& x, int axis = -1, const Tensor* into = nullptr);
Tensor log_softmax(const Tensor& x, int axis = -1, const Tensor* into = nullptr);

// The attention-score form: softmax(scale * x + bias) where |bias| is x's dtype and broadcasts to
// x's shape (Nx rules), or a pred mask that broadcasts to it (0: the element is -inf, whatever x
// holds); |causal| masks the elements j > q of row q along the last axis (q counted along the axis
// before it: a [.., Q, K] score matrix, top-left aligned). A row with nothing left is 0 (softmax)
// or -inf (log_softmax), never NaN.
struct SoftmaxOptions {
  double scale = 1;
  const Tensor* bias = nullptr;
  bool causal = false;
};
Tensor softmax(const Tensor& x, int axis, const SoftmaxOptions& options, const Tensor* into = nullptr);
Tensor log_softmax(const Tensor& x, int axis, const SoftmaxOptions& options, const Tensor* into = nullptr);
// log(sum(exp(x))) along |axis|, without overflow; the axis is removed (kept with size 1 when
// |keep_axis|).
Tensor logsumexp(const Tensor& x, int axis = -1, bool keep_axis = false, const Tensor* into = nullptr);
Tensor layer_norm(const Tensor& x, const Tensor* gamma = nullptr, const Tensor* beta = nullptr, double eps = 1e-5,
                  int axis = -1, const Tensor* into = nullptr);
Tensor rms_norm(const Tensor& x, const Tensor* gamma = nullptr, double eps = 1e-6, int axis = -1,
                const Tensor* into = nullptr);

// The launch values of a rows kernel.
struct RowsCall {
  int axis = -1;
  bool keep_axis = false;  // logsumexp
  double eps = 1e-5;       // layer_norm, rms_norm
  double scale = 1;        // softmax, log_softmax
};
// The fused form (codegen/families/rows.hpp, RowsFusion): x = fusion.prologue over |operands|
// (broadcast together; x = operands[0] without a prologue), the op with |params| (gamma[, beta] or
// the bias / pred mask), then fusion.epilogue over y (the op's result in f32, f64 for f64) and
// |epilogue_operands| (broadcast to x's shape), converted to fusion.output (default x's dtype).
// Returns the output, then h (x as the prologue computed it, in x's dtype) when fusion.residual:
// the pre-norm residual stream h = x + r and norm(h) from one read of x and r, e.g.
//   auto out = kiln::fused_rows(kiln::RowsOp::rms_norm, {x, r}, {gamma},
//                               {kiln::parse_expr("x + y", {bf16, bf16}), {}, {}, true});
std::vector<Tensor> fused_rows(RowsOp op, const std::vector<Tensor>& operands, const std::vector<Tensor>& params,
                               const RowsFusion& fusion, const std::vector<Tensor>& epilogue_operands = {},
                               const RowsCall& call = {});

// Runs rows kernel |spec| over |inputs| (the prologue's, gamma/beta or the bias, the epilogue's)
// as |call| says: the tensor ops and the generated functions of manifests share it. |entry| of
// |first| is used when given. A kernel with a residual output puts h in |residual| when given.
Tensor run_rows_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                       const std::vector<Tensor>& inputs, const RowsCall& call, const Tensor* into,
                       const Registry* first, const KernelEntry* entry = nullptr, Tensor* residual = nullptr);

}  // namespace kiln
