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

// Nx's weak literal (Nx.Type.merge_number), as expressions type their numbers: a float tensor
// takes the literal in its own dtype; an integer (or pred, as u8) tensor takes an integer literal
// in its own dtype when it holds it, else in the smallest wider integer dtype (s8 + 300 is s16,
// u8 + -1 is s16), which the op promotes to, or s64 wrapped past them all; a fraction, or an
// integer past 64 bits, is f32 (s32 * 2.5 is f32).
Tensor literal_for(const Tensor& t, double v) {
  const DType d = t.dtype();
  if (is_float(d)) return scalar(v, d, t.device());
  if (v == std::trunc(v) && std::fabs(v) < 0x1p64) {
    const bool negative = v < 0;
    const std::uint64_t magnitude = std::uint64_t(std::fabs(v));
    const DType m = merge_integer_literal(d, negative, magnitude);
    // The value's bits, wrapped to m (s64 past 2^63 - 1), as the expression parser's constant.
    const std::uint64_t bits = negative ? 0 - magnitude : magnitude;
    std::byte b[8];
    store_scalar(m, b, cast_scalar(Scalar::from_u(bits), DType::u64, m));
    return Tensor::from_host(b, dtype_size(m), {}, m, t.device());
  }
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
