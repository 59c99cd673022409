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
// log(sum(exp(x))) along |axis|, without overflow; the axis is removed (kept with size 1 when
// |keep_axis|).
Tensor logsumexp(const Tensor& x, int axis = -1, bool keep_axis = false, const Tensor* into = nullptr);
Tensor layer_norm(const Tensor& x, const Tensor* gamma = nullptr, const Tensor* beta = nullptr, double eps = 1e-5,
                  int axis = -1, const Tensor* into = nullptr);
Tensor rms_norm(const Tensor& x, const Tensor* gamma = nullptr, double eps = 1e-6, int axis = -1,
                const Tensor* into = nullptr);

// Runs rows kernel |spec| over |inputs| (x, then the affine inputs) along |axis|: the tensor ops and
// the generated functions of manifests share it. |entry| of |first| is used when given.
Tensor run_rows_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                       const std::vector<Tensor>& inputs, int axis, bool keep_axis, double eps, const Tensor* into,
                       const Registry* first, const KernelEntry* entry = nullptr);

}  // namespace kiln
