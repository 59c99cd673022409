#include "runtime/host.hpp"

#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "codegen/eval.hpp"
#include "core/error.hpp"

namespace kiln {

namespace detail {

void check_count(const char* what, std::size_t n, const Shape& shape, DType dtype) {
  const std::int64_t want = checked_numel(shape, dtype, what);
  if (std::uint64_t(want) != n)
    fail(ErrorCode::invalid_argument, fmt::format("{}: {} values for shape {} ({} elements of {})", what, n,
                                                  shape_text(shape), want, dtype_name(dtype)));
}

void check_dtype(const char* what, const Tensor& t, DType want) {
  if (!t.defined()) fail(ErrorCode::invalid_argument, fmt::format("{}: the tensor is undefined", what));
  if (t.dtype() != want)
    fail(ErrorCode::dtype_mismatch, fmt::format("{}: the tensor is {}, the host type is {} (convert with as_type)",
                                                what, t.describe(), dtype_name(want)));
}

}  // namespace detail

Tensor full(const Shape& shape, double value, DType dtype, Device& device) {
  const std::int64_t n = checked_numel(shape, dtype, "kiln::full");
  // One element converted as as_type converts an f64, then repeated on the device (the broadcast
  // copied by the copy kernel): no host buffer of n elements, and the device's own memory check.
  const Scalar v = cast_scalar(Scalar::from_f(value), DType::f64, dtype);
  std::byte one[8] = {};
  store_scalar(dtype, one, v);
  const Tensor single = Tensor::from_host(one, dtype_size(dtype), {}, dtype, device);
  if (n == 0) return Tensor::empty(shape, dtype, device);
  if (n == 1) return single.reshape(shape);
  return single.broadcast_to(shape).contiguous();
}

Tensor zeros(const Shape& shape, DType dtype, Device& device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device& device) { return full(shape, 1.0, dtype, device); }
Tensor scalar(double value, DType dtype, Device& device) { return full({}, value, dtype, device); }

Tensor arange(std::int64_t n, DType dtype, Device& device) {
  const std::int64_t count = checked_numel({n}, dtype, "kiln::arange");
  const std::size_t es = dtype_size(dtype);
  std::vector<std::byte> host(std::size_t(count) * es);
  for (std::int64_t i = 0; i < count; ++i)
    store_scalar(dtype, host.data() + std::size_t(i) * es, cast_scalar(Scalar::from_i(i), DType::s64, dtype));
  return Tensor::from_host(host.data(), host.size(), {count}, dtype, device);
}

namespace {

// Nx's weak literal: a float tensor takes the literal in its own dtype; an integer tensor too when
// the literal is an integer it can hold, else the literal is f32 (and the op promotes).
Tensor literal_for(const Tensor& t, double v) {
  const DType d = t.dtype();
  if (is_float(d)) return scalar(v, d, t.device());
  // In range first: 2^63 would saturate to 2^63 - 1, which reads back as 2^63 in a double.
  const int bits = dtype_bits(d);
  const bool in_range = is_signed_int(d) ? v >= -std::ldexp(1.0, bits - 1) && v < std::ldexp(1.0, bits - 1)
                                         : v >= 0 && v < std::ldexp(1.0, bits);
  const Scalar s = cast_scalar(Scalar::from_f(v), DType::f64, d);
  if (in_range && v == std::trunc(v) && scalar_to_double(s, d) == v) return scalar(v, d, t.device());
  return scalar(v, DType::f32, t.device());
}

}  // namespace

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return subtract(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return multiply(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return divide(a, b); }
Tensor operator-(const Tensor& a) { return negate(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, literal_for(a, b)); }
Tensor operator-(const Tensor& a, double b) { return subtract(a, literal_for(a, b)); }
Tensor operator*(const Tensor& a, double b) { return multiply(a, literal_for(a, b)); }
Tensor operator/(const Tensor& a, double b) { return divide(a, literal_for(a, b)); }
Tensor operator+(double a, const Tensor& b) { return add(literal_for(b, a), b); }
Tensor operator-(double a, const Tensor& b) { return subtract(literal_for(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return multiply(literal_for(b, a), b); }
Tensor operator/(double a, const Tensor& b) { return divide(literal_for(b, a), b); }
Tensor operator==(const Tensor& a, const Tensor& b) { return equal(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return not_equal(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return less(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return less_equal(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return greater(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return greater_equal(a, b); }

}  // namespace kiln
