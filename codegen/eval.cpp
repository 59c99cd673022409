#include "codegen/eval.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/half.hpp"

namespace kiln {

namespace {

std::uint64_t width_mask(int bits) { return bits >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << bits) - 1; }

std::int64_t wrap_signed(std::uint64_t bits_value, int bits) {
  if (bits >= 64) return std::int64_t(bits_value);
  const std::uint64_t m = width_mask(bits);
  std::uint64_t v = bits_value & m;
  if (v >> (bits - 1)) v |= ~m;
  return std::int64_t(v);
}

double erfinv(double y) {
  if (y <= -1) return y == -1 ? -INFINITY : NAN;
  if (y >= 1) return y == 1 ? INFINITY : NAN;
  // Initial guess (Giles' single-precision approximation), then Newton steps on erf.
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    double p = 2.81022636e-08;
    for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                     -0.00417768164, 0.246640727, 1.50140941})
      p = c + p * w;
    x = p * y;
  } else {
    w = std::sqrt(w) - 3.0;
    double p = -0.000200214257;
    for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                     0.00943887047, 1.00167406, 2.83297682})
      p = c + p * w;
    x = p * y;
  }
  // Near +-1, erf(x) - y cancels (erf(x) is within an ulp of 1): solve log(erfc(z)) = log(1 - |y|)
  // instead (1 - |y| is exact for |y| >= 0.5, Sterbenz; the log makes Newton converge from the
  // single-precision guess even where it is far off, at 1 - 2^-53). Newton on erf was 28,000 ulp off
  // at erf_inv(0.9999999).
  if (std::fabs(y) >= 0.5) {
    const double log_t = std::log(1.0 - std::fabs(y));
    double z = std::fabs(x);
    for (int i = 0; i < 12; ++i) {
      const double e = std::erfc(z);
      const double step = (std::log(e) - log_t) * e / (1.1283791670955126 * std::exp(-z * z));
      z += step;
      if (std::fabs(step) <= 0x1p-54 * z) break;
    }
    return std::copysign(z, y);
  }
  for (int i = 0; i < 3; ++i) x -= (std::erf(x) - y) / (1.1283791670955126 * std::exp(-x * x));
  return x;
}

double round_half_away(double x) { return std::round(x); }

template <class T>
T ipow(T base, T exp, bool is_signed) {
  using U = std::make_unsigned_t<T>;
  if (is_signed && exp < 0) {
    if (base == 1) return 1;
    if (base == T(-1)) return (exp & 1) ? T(-1) : T(1);
    return 0;
  }
  U result = 1, b = U(base);
  U e = U(exp);
  while (e) {
    if (e & 1) result *= b;
    b *= b;
    e >>= 1;
  }
  return T(result);
}

Scalar float_op(Op op, const Scalar* a) {
  const double x = a[0].f, y = a[1].f;
  switch (op) {
    case Op::exp: return Scalar::from_f(std::exp(x));
    case Op::expm1: return Scalar::from_f(std::expm1(x));
    case Op::log: return Scalar::from_f(std::log(x));
    case Op::log1p: return Scalar::from_f(std::log1p(x));
    case Op::sigmoid: {  // e^x / (1 + e^x) below 0: e^-x overflows from x = -709.8, sigmoid from -745
      const double e = std::exp(x >= 0 ? -x : x);
      return Scalar::from_f(x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
    }
    // In long double too (tests/conformance/test_numerics_f64.cpp): glibc's double cos was 8 ulp off
    // at 6381956970095103 * 2^797 (the double closest to a multiple of pi/2), cosh 1.03 at 710.4.
    case Op::cos: return Scalar::from_f(double(std::cos((long double)x)));
    case Op::sin: return Scalar::from_f(double(std::sin((long double)x)));
    case Op::tan: return Scalar::from_f(double(std::tan((long double)x)));
    case Op::cosh: return Scalar::from_f(double(std::cosh((long double)x)));
    case Op::sinh: return Scalar::from_f(double(std::sinh((long double)x)));
    case Op::tanh: return Scalar::from_f(double(std::tanh((long double)x)));  // double's: 1.30 ulp
    case Op::acos: return Scalar::from_f(std::acos(x));
    case Op::asin: return Scalar::from_f(std::asin(x));
    case Op::atan: return Scalar::from_f(std::atan(x));
    case Op::acosh: return Scalar::from_f(std::acosh(x));
    case Op::asinh: return Scalar::from_f(std::asinh(x));
    case Op::atanh: return Scalar::from_f(std::atanh(x));
    case Op::sqrt: return Scalar::from_f(std::sqrt(x));
    // In long double, then rounded once: 1.0 / std::sqrt(x) rounds twice (1.44 ulp); glibc's
    // double cbrt is 2.87 ulp off (MPFR, tests/accuracy).
    case Op::rsqrt: return Scalar::from_f(double(1.0L / std::sqrt((long double)x)));
    case Op::cbrt: return Scalar::from_f(double(std::cbrt((long double)x)));
    case Op::erf: return Scalar::from_f(std::erf(x));
    case Op::erfc: return Scalar::from_f(std::erfc(x));
    case Op::erf_inv: return Scalar::from_f(erfinv(x));
    case Op::abs: return Scalar::from_f(std::fabs(x));
    case Op::ceil: return Scalar::from_f(std::ceil(x));
    case Op::floor: return Scalar::from_f(std::floor(x));
    case Op::negate: return Scalar::from_f(-x);
    case Op::round: return Scalar::from_f(round_half_away(x));
    case Op::sign:
      if (std::isnan(x) || x == 0) return Scalar::from_f(x);
      return Scalar::from_f(x > 0 ? 1.0 : -1.0);
    case Op::is_nan: return Scalar::from_u(std::isnan(x));
    case Op::is_infinity: return Scalar::from_u(std::isinf(x));
    case Op::add: return Scalar::from_f(x + y);
    case Op::subtract: return Scalar::from_f(x - y);
    case Op::multiply: return Scalar::from_f(x * y);
    case Op::pow: return Scalar::from_f(std::pow(x, y));
    case Op::remainder: return Scalar::from_f(std::fmod(x, y));
    case Op::divide: return Scalar::from_f(x / y);
    case Op::atan2: return Scalar::from_f(std::atan2(x, y));
    // NaN propagates; -0 orders below +0 (XLA): max(+0, -0) = +0 and min(+0, -0) = -0 in either order.
    case Op::min:
      return Scalar::from_f(std::isnan(x) || std::isnan(y) ? NAN : (x < y || (x == y && std::signbit(x))) ? x : y);
    case Op::max:
      return Scalar::from_f(std::isnan(x) || std::isnan(y) ? NAN : (x > y || (x == y && !std::signbit(x))) ? x : y);
    case Op::equal: return Scalar::from_u(x == y);
    case Op::not_equal: return Scalar::from_u(!(x == y));
    case Op::greater: return Scalar::from_u(x > y);
    case Op::less: return Scalar::from_u(x < y);
    case Op::greater_equal: return Scalar::from_u(x >= y);
    case Op::less_equal: return Scalar::from_u(x <= y);
    default: return Scalar::from_f(NAN);
  }
}

// Integer ops on |bits|-wide values held in 64-bit two's complement (signed: sign-extended).
template <class T>
Scalar int_op(Op op, const Scalar* a, int bits) {
  constexpr bool is_signed = std::is_signed_v<T>;
  using U = std::uint64_t;
  const T x = T(a[0].u), y = T(a[1].u);
  auto out = [](T v) { return Scalar::from_u(U(v)); };
  auto outp = [](bool v) { return Scalar::from_u(v ? 1 : 0); };
  const U ux = U(x) & width_mask(bits);
  switch (op) {
    case Op::abs: return out(is_signed && x < 0 ? T(U(0) - U(x)) : x);
    case Op::bitwise_not: return out(T(~U(x)));
    case Op::ceil: case Op::floor: case Op::round: return out(x);
    case Op::negate: return out(T(U(0) - U(x)));
    case Op::sign: return out(x > 0 ? T(1) : (x < 0 ? T(-1) : T(0)));
    case Op::count_leading_zeros:
      return out(T(ux == 0 ? bits : std::countl_zero(ux) - (64 - bits)));
    case Op::population_count: return out(T(std::popcount(ux)));
    case Op::is_nan: case Op::is_infinity: return outp(false);
    case Op::add: return out(T(U(x) + U(y)));
    case Op::subtract: return out(T(U(x) - U(y)));
    case Op::multiply: return out(T(U(x) * U(y)));
    case Op::pow: return out(ipow<T>(x, y, is_signed));
    case Op::quotient:
      if (y == 0) return out(T(-1));
      if (is_signed && y == T(-1)) return out(T(U(0) - U(x)));
      return out(T(x / y));
    case Op::remainder:
      if (y == 0) return out(x);
      if (is_signed && y == T(-1)) return out(0);
      return out(T(x % y));
    case Op::min: return out(x < y ? x : y);
    case Op::max: return out(x > y ? x : y);
    case Op::bitwise_and: return out(x & y);
    case Op::bitwise_or: return out(x | y);
    case Op::bitwise_xor: return out(x ^ y);
    case Op::left_shift:
      if (y < 0 || y >= T(bits)) return out(0);
      return out(T(U(x) << U(y)));
    case Op::right_shift:
      if (y < 0 || y >= T(bits)) return out(is_signed && x < 0 ? T(-1) : T(0));
      return out(T(x >> y));
    case Op::equal: return outp(x == y);
    case Op::not_equal: return outp(x != y);
    case Op::greater: return outp(x > y);
    case Op::less: return outp(x < y);
    case Op::greater_equal: return outp(x >= y);
    case Op::less_equal: return outp(x <= y);
    default: return out(0);
  }
}

}  // namespace

Scalar round_to_dtype(Scalar v, DType t) {
  switch (t) {
    case DType::pred: return Scalar::from_u(v.u != 0);
    case DType::s8: case DType::s16: case DType::s32: case DType::s64:
      return Scalar::from_i(wrap_signed(v.u, dtype_bits(t)));
    case DType::u8: case DType::u16: case DType::u32: case DType::u64:
      return Scalar::from_u(v.u & width_mask(dtype_bits(t)));
    // Rounded once (through f32 by round to odd: core/half.hpp).
    case DType::f16: return Scalar::from_f(f16_bits_to_f32(to_f16_bits(v.f)));
    case DType::bf16: return Scalar::from_f(bf16_bits_to_f32(to_bf16_bits(v.f)));
    case DType::f32: return Scalar::from_f(double(float(v.f)));
    case DType::f64: return v;
  }
  return v;
}

Scalar cast_scalar(Scalar v, DType from, DType to) {
  if (to == DType::pred) {
    if (is_float(from)) return Scalar::from_u(v.f != 0 || std::isnan(v.f));
    return Scalar::from_u(v.u != 0);
  }
  if (is_float(to)) {
    double d = is_float(from) ? v.f : is_signed_int(from) ? double(v.i) : double(v.u);
    // Integers reach f32 rounded once, and f16/bf16 rounded once through f32 by round to odd (a
    // 64-bit integer through f64 would round twice).
    if (!is_float(from) && to == DType::f32) d = is_signed_int(from) ? double(float(v.i)) : double(float(v.u));
    if (!is_float(from) && (to == DType::f16 || to == DType::bf16))
      d = is_signed_int(from) ? double(s64_to_f32_odd(v.i)) : double(u64_to_f32_odd(v.u));
    return round_to_dtype(Scalar::from_f(d), to);
  }
  if (is_float(from)) {
    const double x = std::trunc(v.f);
    const int bits = dtype_bits(to);
    if (std::isnan(x)) return Scalar::from_u(0);
    if (is_signed_int(to)) {
      const double hi = std::ldexp(1.0, bits - 1);  // 2^(bits-1), first value out of range
      if (x >= hi) return Scalar::from_i(std::int64_t(width_mask(bits - 1)));
      if (x < -hi) return Scalar::from_i(-std::int64_t(width_mask(bits - 1)) - 1);
      return Scalar::from_i(std::int64_t(x));
    }
    const double hi = std::ldexp(1.0, bits);
    if (x >= hi) return Scalar::from_u(width_mask(bits));
    if (x <= 0) return Scalar::from_u(0);
    return Scalar::from_u(std::uint64_t(x));
  }
  return round_to_dtype(v, to);  // integer to integer: wrap (sign-extended values keep their bits)
}

Scalar eval_op(Op op, DType operand, DType result, const Scalar* args) {
  Scalar r;
  if (op == Op::as_type) return cast_scalar(args[0], operand, result);
  if (op == Op::select) return args[0].u ? args[1] : args[2];
  if (op == Op::logical_and) return Scalar::from_u(args[0].u && args[1].u);
  if (op == Op::logical_or) return Scalar::from_u(args[0].u || args[1].u);
  if (op == Op::logical_xor) return Scalar::from_u((args[0].u != 0) != (args[1].u != 0));
  if (is_float(operand)) {
    r = float_op(op, args);
  } else {
    const int bits = operand == DType::pred ? 8 : dtype_bits(operand);
    r = is_signed_int(operand) ? int_op<std::int64_t>(op, args, bits)
                               : int_op<std::uint64_t>(op, args, bits);
    if (operand == DType::pred && result == DType::pred) r.u &= 1;
  }
  return round_to_dtype(r, result);
}

Scalar load_scalar(DType t, const void* p) {
  switch (t) {
    case DType::pred: case DType::u8: { std::uint8_t v; std::memcpy(&v, p, 1); return Scalar::from_u(t == DType::pred ? v != 0 : v); }
    case DType::s8: { std::int8_t v; std::memcpy(&v, p, 1); return Scalar::from_i(v); }
    case DType::s16: { std::int16_t v; std::memcpy(&v, p, 2); return Scalar::from_i(v); }
    case DType::s32: { std::int32_t v; std::memcpy(&v, p, 4); return Scalar::from_i(v); }
    case DType::s64: { std::int64_t v; std::memcpy(&v, p, 8); return Scalar::from_i(v); }
    case DType::u16: { std::uint16_t v; std::memcpy(&v, p, 2); return Scalar::from_u(v); }
    case DType::u32: { std::uint32_t v; std::memcpy(&v, p, 4); return Scalar::from_u(v); }
    case DType::u64: { std::uint64_t v; std::memcpy(&v, p, 8); return Scalar::from_u(v); }
    case DType::f16: { std::uint16_t v; std::memcpy(&v, p, 2); return Scalar::from_f(f16_bits_to_f32(v)); }
    case DType::bf16: { std::uint16_t v; std::memcpy(&v, p, 2); return Scalar::from_f(bf16_bits_to_f32(v)); }
    case DType::f32: { float v; std::memcpy(&v, p, 4); return Scalar::from_f(v); }
    case DType::f64: { double v; std::memcpy(&v, p, 8); return Scalar::from_f(v); }
  }
  return {};
}

void store_scalar(DType t, void* p, Scalar v) {
  switch (t) {
    case DType::pred: case DType::u8: case DType::s8: { std::uint8_t b = std::uint8_t(t == DType::pred ? v.u != 0 : v.u); std::memcpy(p, &b, 1); return; }
    case DType::s16: case DType::u16: { std::uint16_t b = std::uint16_t(v.u); std::memcpy(p, &b, 2); return; }
    case DType::s32: case DType::u32: { std::uint32_t b = std::uint32_t(v.u); std::memcpy(p, &b, 4); return; }
    case DType::s64: case DType::u64: std::memcpy(p, &v.u, 8); return;
    case DType::f16: { std::uint16_t b = to_f16_bits(v.f); std::memcpy(p, &b, 2); return; }
    case DType::bf16: { std::uint16_t b = to_bf16_bits(v.f); std::memcpy(p, &b, 2); return; }
    case DType::f32: { float f = float(v.f); std::memcpy(p, &f, 4); return; }
    case DType::f64: std::memcpy(p, &v.f, 8); return;
  }
}

double scalar_to_double(Scalar v, DType t) {
  if (is_float(t)) return v.f;
  if (is_signed_int(t)) return double(v.i);
  return double(v.u);
}

Evaluator::Evaluator(const Expr& expr) : expr_(expr.pruned()), values_(expr_.nodes().size()) {}

Scalar Evaluator::eval(const Scalar* inputs) {
  const auto& nodes = expr_.nodes();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    switch (n.kind) {
      case NodeKind::input: values_[i] = inputs[n.input]; break;
      case NodeKind::constant: values_[i] = n.value; break;
      case NodeKind::op: {
        Scalar a[3];
        for (int k = 0; k < n.num_args; ++k) a[k] = values_[n.args[k]];
        const DType operand = nodes[n.args[n.op == Op::select ? 1 : 0]].dtype;
        values_[i] = eval_op(n.op, operand, n.dtype, a);
        break;
      }
    }
  }
  return values_[expr_.root()];
}

}  // namespace kiln
