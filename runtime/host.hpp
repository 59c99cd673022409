// Creation helpers and operators for kiln::Tensor (typed host I/O is Tensor::from_vector and
// Tensor::to_vector in runtime/tensor.hpp), so host code needs no byte buffers and no wrapper:
//   auto x = kiln::Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});  // default device
//   auto y = (x * 2.0 + kiln::ones({2, 2}, kiln::DType::f32)) / x;
//   std::vector<float> v = y.to_vector<float>();
#pragma once

#include <cstdint>

#include "runtime/ops.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

// Nx-style creation: |value| converted to |dtype| as as_type does (floats round to nearest even,
// integers saturate, NaN becomes 0).
Tensor full(const Shape& shape, double value, DType dtype, Device& device = default_device());
Tensor zeros(const Shape& shape, DType dtype, Device& device = default_device());
Tensor ones(const Shape& shape, DType dtype, Device& device = default_device());
Tensor scalar(double value, DType dtype, Device& device = default_device());  // rank 0
// 0, 1, ..., n-1 (Nx.iota of a 1-D shape).
Tensor arange(std::int64_t n, DType dtype, Device& device = default_device());

// Operators: the ops of the same names (broadcasting, Nx promotion). A double operand is a weak
// literal, as in Nx (Nx.Type.merge_number): a float tensor takes it in its own dtype (f16 * 0.1
// stays f16); an integer tensor too when it is an integer the dtype holds (s32 * 2 stays s32), else
// the smallest wider integer dtype that holds it (s8 + 300 is s16, u8 + -1 is s16) and the op
// promotes; a fraction is f32 (s32 * 2.5 is f32). Expressions type their numbers the same way.
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
// Comparisons give pred tensors (0/1), elementwise.
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);

}  // namespace kiln
