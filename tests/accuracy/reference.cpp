#include "tests/accuracy/reference.hpp"

#include <mpfr.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace kiln::accuracy {
namespace {

constexpr mpfr_prec_t kPrec = 256;

// One MPFR number at kPrec bits, cleared on scope exit.
struct Num {
  mpfr_t v;
  Num() { mpfr_init2(v, kPrec); }
  explicit Num(double d) {
    mpfr_init2(v, kPrec);
    mpfr_set_d(v, d, MPFR_RNDN);  // exact: 256 bits hold any double
  }
  ~Num() { mpfr_clear(v); }
  Num(const Num&) = delete;
  Num& operator=(const Num&) = delete;
};

struct Format {
  int p;     // significand bits, the implicit one included
  int emin;  // exponent of the smallest normal
  int emax;  // exponent of the largest finite
  double max;
};

Format format_of(DType t) {
  switch (t) {
    case DType::f16: return {11, -14, 15, 65504.0};
    case DType::bf16: return {8, -126, 127, 3.3895313892515355e38};
    case DType::f32: return {24, -126, 127, double(std::numeric_limits<float>::max())};
    default: return {53, -1022, 1023, std::numeric_limits<double>::max()};
  }
}

// erf_inv(y): a double start (bisection on erf, or on erfc next to +-1 where 1 - |y| is exact),
// then Newton steps in MPFR on erf(x) = y or erfc(x) = 1 - y.
void erf_inv(mpfr_t out, double y) {
  if (std::isnan(y) || std::fabs(y) > 1) return mpfr_set_nan(out);
  if (std::fabs(y) == 1) return mpfr_set_inf(out, y > 0 ? 1 : -1);
  if (y == 0) return void(mpfr_set_d(out, y, MPFR_RNDN));
  const double a = std::fabs(y);
  const bool tail = a >= 0.5;
  const double target = tail ? 1 - a : a;  // exact (Sterbenz) in the tail
  double lo = 0, hi = 28;
  for (int i = 0; i < 200 && lo < hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    const double f = tail ? std::erfc(mid) : std::erf(mid);
    if (tail ? f > target : f < target) lo = mid;
    else hi = mid;
  }
  Num x(0.5 * (lo + hi)), t(target), f, d, two_over_sqrt_pi;
  mpfr_const_pi(two_over_sqrt_pi.v, MPFR_RNDN);
  mpfr_rec_sqrt(two_over_sqrt_pi.v, two_over_sqrt_pi.v, MPFR_RNDN);
  mpfr_mul_2si(two_over_sqrt_pi.v, two_over_sqrt_pi.v, 1, MPFR_RNDN);
  for (int i = 0; i < 6; ++i) {
    if (tail) mpfr_erfc(f.v, x.v, MPFR_RNDN);
    else mpfr_erf(f.v, x.v, MPFR_RNDN);
    mpfr_sub(f.v, f.v, t.v, MPFR_RNDN);                           // f(x) - target
    mpfr_sqr(d.v, x.v, MPFR_RNDN);
    mpfr_neg(d.v, d.v, MPFR_RNDN);
    mpfr_exp(d.v, d.v, MPFR_RNDN);
    mpfr_mul(d.v, d.v, two_over_sqrt_pi.v, MPFR_RNDN);            // |f'(x)|
    mpfr_div(f.v, f.v, d.v, MPFR_RNDN);
    if (tail) mpfr_add(x.v, x.v, f.v, MPFR_RNDN);                 // erfc decreases
    else mpfr_sub(x.v, x.v, f.v, MPFR_RNDN);
  }
  mpfr_set(out, x.v, MPFR_RNDN);
  if (y < 0) mpfr_neg(out, out, MPFR_RNDN);
}

// out = op(args), exactly enough (256 bits; MPFR's own functions are correctly rounded).
void evaluate(Op op, std::span<const double> args, mpfr_t out) {
  Num x(args[0]);
  Num y(args.size() > 1 ? args[1] : 0.0);
  const mpfr_rnd_t r = MPFR_RNDN;
  switch (op) {
    case Op::exp: mpfr_exp(out, x.v, r); break;
    case Op::expm1: mpfr_expm1(out, x.v, r); break;
    case Op::log: mpfr_log(out, x.v, r); break;
    case Op::log1p: mpfr_log1p(out, x.v, r); break;
    case Op::sigmoid: {  // 1 / (1 + exp(-x))
      Num e;
      mpfr_neg(e.v, x.v, r);
      mpfr_exp(e.v, e.v, r);
      mpfr_add_ui(e.v, e.v, 1, r);
      mpfr_ui_div(out, 1, e.v, r);
      break;
    }
    case Op::cos: mpfr_cos(out, x.v, r); break;
    case Op::sin: mpfr_sin(out, x.v, r); break;
    case Op::tan: mpfr_tan(out, x.v, r); break;
    case Op::cosh: mpfr_cosh(out, x.v, r); break;
    case Op::sinh: mpfr_sinh(out, x.v, r); break;
    case Op::tanh: mpfr_tanh(out, x.v, r); break;
    case Op::acos: mpfr_acos(out, x.v, r); break;
    case Op::asin: mpfr_asin(out, x.v, r); break;
    case Op::atan: mpfr_atan(out, x.v, r); break;
    case Op::acosh: mpfr_acosh(out, x.v, r); break;
    case Op::asinh: mpfr_asinh(out, x.v, r); break;
    case Op::atanh: mpfr_atanh(out, x.v, r); break;
    case Op::sqrt: mpfr_sqrt(out, x.v, r); break;
    case Op::rsqrt:  // IEEE 754 rSqrt(-0) = -inf (MPFR's rec_sqrt gives +inf)
      if (mpfr_zero_p(x.v) && mpfr_signbit(x.v)) mpfr_set_inf(out, -1);
      else mpfr_rec_sqrt(out, x.v, r);
      break;
    case Op::cbrt: mpfr_cbrt(out, x.v, r); break;
    case Op::erf: mpfr_erf(out, x.v, r); break;
    case Op::erfc: mpfr_erfc(out, x.v, r); break;
    case Op::erf_inv: erf_inv(out, args[0]); break;
    case Op::add: mpfr_add(out, x.v, y.v, r); break;
    case Op::subtract: mpfr_sub(out, x.v, y.v, r); break;
    case Op::multiply: mpfr_mul(out, x.v, y.v, r); break;
    case Op::divide: mpfr_div(out, x.v, y.v, r); break;
    case Op::pow: mpfr_pow(out, x.v, y.v, r); break;
    case Op::atan2: mpfr_atan2(out, x.v, y.v, r); break;
    case Op::remainder: mpfr_fmod(out, x.v, y.v, r); break;  // x - trunc(x / y) * y
    default: mpfr_set_nan(out); break;
  }
}

constexpr std::array kMeasured = {
    Op::exp,  Op::expm1, Op::log,   Op::log1p, Op::sigmoid, Op::cos,   Op::sin,      Op::tan,
    Op::cosh, Op::sinh,  Op::tanh,  Op::acos,  Op::asin,    Op::atan,  Op::acosh,    Op::asinh,
    Op::atanh, Op::sqrt, Op::rsqrt, Op::cbrt,  Op::erf,     Op::erfc,  Op::erf_inv,  Op::add,
    Op::subtract, Op::multiply, Op::divide, Op::pow, Op::atan2, Op::remainder};

}  // namespace

std::span<const Op> measured_ops() { return kMeasured; }

double ulp_errors(Op op, DType dtype, std::span<const double> args, std::span<const double> got,
                  std::span<double> errors) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  Num ref;
  evaluate(op, args, ref.v);
  const double value = mpfr_get_d(ref.v, MPFR_RNDN);
  const Format f = format_of(dtype);
  const int sign = mpfr_sgn(ref.v);
  // Rounded to the format, the exact value is an infinity from max + ulp(max) / 2 on.
  Num limit(f.max), half_ulp, diff;
  mpfr_set_ui_2exp(half_ulp.v, 1, f.emax - f.p, MPFR_RNDN);
  mpfr_add(limit.v, limit.v, half_ulp.v, MPFR_RNDN);
  const bool nan = mpfr_nan_p(ref.v), inf = !nan && (mpfr_inf_p(ref.v) || mpfr_cmpabs(ref.v, limit.v) >= 0);
  const long e = nan || inf || mpfr_zero_p(ref.v) ? f.emin : std::max<long>(mpfr_get_exp(ref.v) - 1, f.emin);
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = got[i];
    if (nan) errors[i] = std::isnan(g) ? 0 : kInf;
    else if (std::isnan(g)) errors[i] = kInf;
    else if (inf) errors[i] = std::isinf(g) && (g > 0) == (sign > 0) ? 0 : kInf;
    else if (std::isinf(g)) errors[i] = kInf;
    else {
      mpfr_set_d(diff.v, g, MPFR_RNDN);
      mpfr_sub(diff.v, diff.v, ref.v, MPFR_RNDN);
      mpfr_abs(diff.v, diff.v, MPFR_RNDN);
      mpfr_mul_2si(diff.v, diff.v, -(e - f.p + 1), MPFR_RNDN);
      errors[i] = mpfr_get_d(diff.v, MPFR_RNDU);
    }
  }
  return value;
}

}  // namespace kiln::accuracy
