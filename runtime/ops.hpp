// Tensor ops with Nx semantics: operands broadcast, dtypes promote, and the op runs on the tensors'
// device (cpu: the reference evaluator; cuda and vulkan: generated kernels). All operands must be
// on one device. Errors name the op, the shapes, the dtypes and the device.
#pragma once

#include <optional>
#include <vector>

#include "codegen/expr.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

#define KILN_DECLARE_UNARY(name) Tensor name(const Tensor& x);
#define KILN_DECLARE_BINARY(name) Tensor name(const Tensor& x, const Tensor& y);
KILN_UNARY_OPS(KILN_DECLARE_UNARY)
KILN_BINARY_OPS(KILN_DECLARE_BINARY)
#undef KILN_DECLARE_UNARY
#undef KILN_DECLARE_BINARY

Tensor select(const Tensor& cond, const Tensor& on_true, const Tensor& on_false);
Tensor as_type(const Tensor& x, DType dtype);

// Applies one op (by its table entry) to |operands|.
Tensor apply_op(Op op, const std::vector<Tensor>& operands);

// A fused elementwise kernel: |expr|'s input k is operands[k] (dtypes must match the expression's
// input dtypes); the result has the broadcast shape and dtype |out| (default: the expression's).
// If |into| is given it must be a contiguous tensor of that shape and dtype on the same device,
// and the result is written there.
Tensor map(const Expr& expr, const std::vector<Tensor>& operands, std::optional<DType> out = {},
           const Tensor* into = nullptr);

// The broadcast shape of several shapes (Nx/NumPy rules), or nullopt when they don't broadcast.
std::optional<Shape> broadcast_shapes(const std::vector<Shape>& shapes);

}  // namespace kiln
