// Cumulative ops (docs/semantics.md, "Cumulative ops"): Nx's cumulative_sum, cumulative_product,
// cumulative_max and cumulative_min along one axis (axis 0 by default, as Nx; negative axes count
// from the back), forward or reverse (then y[j] combines x[j], ..., x[n-1]). The result has x's
// shape and dtype: integers wrap around, f16/bf16 accumulate in f32 and round each element once,
// max/min propagate NaN; pred is refused (cast it first). Deterministic: the same input gives the
// same bits run to run on one device. Errors (invalid_argument, dtype_mismatch) name the op, the
// shape, the axis, the dtype and the device. |into|: a contiguous tensor of x's shape and dtype on
// x's device.
#pragma once

#include "codegen/families/scan.hpp"
#include "runtime/registry.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

// The launch values of a scan kernel.
struct ScanCall {
  int axis = 0;
  bool reverse = false;
};

Tensor cumulative_sum(const Tensor& x, const ScanCall& call = {}, const Tensor* into = nullptr);
Tensor cumulative_product(const Tensor& x, const ScanCall& call = {}, const Tensor* into = nullptr);
Tensor cumulative_max(const Tensor& x, const ScanCall& call = {}, const Tensor* into = nullptr);
Tensor cumulative_min(const Tensor& x, const ScanCall& call = {}, const Tensor* into = nullptr);

// Runs scan kernel |spec| over |inputs| (x) as |call| says: the tensor ops and the generated
// functions of manifests share it. |entry| of |first| is used when given.
Tensor run_scan_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                       const std::vector<Tensor>& inputs, const ScanCall& call, const Tensor* into,
                       const Registry* first, const KernelEntry* entry = nullptr);

}  // namespace kiln
