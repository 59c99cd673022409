// A kernel spec names a kernel: {family, dtypes, expression, layout, tuning}. It has a canonical
// text form and a stable hash, and the kernel name is <family>_<input dtypes>_<output>_<hash>,
// e.g. map_f32f32_f32_3a9c1e07. The same spec yields the same name and source on every machine.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codegen/expr.hpp"

namespace kiln {

struct KernelSpec {
  std::string family = "map";
  std::vector<DType> inputs;
  DType output = DType::f32;
  Expr expr;             // its root has dtype |output|
  int block_size = 256;  // CUDA block / Vulkan workgroup size

  std::string canonical() const;
  std::uint64_t hash() const;
  std::string name() const;
};

// A map kernel computing |expr| over |inputs| (the expression's input dtypes), converted to
// |output| with as_type when the expression's dtype differs.
KernelSpec make_map_spec(const Expr& expr, DType output);

// The expression of a single op applied to inputs of |operand| (the built-in kernels), and its spec.
Expr single_op_expr(Op op, DType operand, DType cast_to = DType::f32);
KernelSpec single_op_spec(Op op, DType operand, DType cast_to = DType::f32);

}  // namespace kiln
