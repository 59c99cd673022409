// The scalar semantics of every op: the CPU reference. docs/semantics.md describes the same rules
// in words; the CUDA and GLSL preludes implement them for the GPU.
#pragma once

#include <vector>

#include "codegen/expr.hpp"

namespace kiln {

// Brings a value computed in |t|'s compute representation back into |t|: integers wrap to the
// width of |t|, floats round to |t| (f32: to float; f16/bf16: to float, then to the 16-bit format).
Scalar round_to_dtype(Scalar v, DType t);
// as_type: converts a value of dtype |from| into dtype |to|.
Scalar cast_scalar(Scalar v, DType from, DType to);
// One op on operands of dtype |operand| (already promoted), giving a value of dtype |result|.
Scalar eval_op(Op op, DType operand, DType result, const Scalar* args);

Scalar load_scalar(DType t, const void* p);
void store_scalar(DType t, void* p, Scalar v);
// The value as a double (for comparisons with tolerances and for printing).
double scalar_to_double(Scalar v, DType t);

// Evaluates an expression element by element.
class Evaluator {
 public:
  explicit Evaluator(const Expr& expr);
  // |inputs| holds one value per expression input, in that input's dtype.
  Scalar eval(const Scalar* inputs);
  DType result_dtype() const { return expr_.dtype(expr_.root()); }
  // After eval: the value of root |k| of the expression (0: the one eval returned; k > 0: more
  // roots, Expr::more_roots) and its dtype.
  Scalar root_value(std::size_t k) const { return values_[k ? expr_.more_roots()[k - 1] : expr_.root()]; }
  DType root_dtype(std::size_t k) const { return expr_.dtype(k ? expr_.more_roots()[k - 1] : expr_.root()); }

 private:
  Expr expr_;
  std::vector<Scalar> values_;
};

}  // namespace kiln
