#include "codegen/ops.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace kiln {

namespace {

using R = ResultRule;
constexpr Tolerance kExact{0, 0};
constexpr Tolerance kFn{1e-5, 1e-5};  // transcendental functions
constexpr double kBig = 1e4;          // default random range [-kBig, kBig]

// clang-format off
constexpr std::array<OpInfo, 60> kOps = {{
  // op                   name                   n  accepts   result         formula                                               tol             lo      hi     specials math_fn
  {Op::exp,               "exp",                 1, kNumbers, R::floating,   "e^x",                                                {0, 4e-6},      -10,    10,    false, true},
  {Op::expm1,             "expm1",               1, kNumbers, R::floating,   "e^x - 1, accurate near 0",                           kFn,            -5,     5,     false, true},
  {Op::log,               "log",                 1, kNumbers, R::floating,   "natural logarithm",                                  kFn,            0.01,   100,   false, true},
  {Op::log1p,             "log1p",               1, kNumbers, R::floating,   "log(1 + x), accurate near 0",                        kFn,            -0.9,   100,   false, true},
  {Op::sigmoid,           "sigmoid",             1, kNumbers, R::floating,   "1 / (1 + e^-x)",                                     kFn,            -10,    10,    false, true},
  {Op::cos,               "cos",                 1, kNumbers, R::floating,   "cosine (radians)",                                   kFn,            -3.14,  3.14,  false, true},
  {Op::sin,               "sin",                 1, kNumbers, R::floating,   "sine (radians)",                                     kFn,            -3.14,  3.14,  false, true},
  {Op::tan,               "tan",                 1, kNumbers, R::floating,   "tangent (radians)",                                  {1e-5, 1e-4},   -1.4,   1.4,   false, true},
  {Op::cosh,              "cosh",                1, kNumbers, R::floating,   "hyperbolic cosine",                                  kFn,            -5,     5,     false, true},
  {Op::sinh,              "sinh",                1, kNumbers, R::floating,   "hyperbolic sine",                                    kFn,            -5,     5,     false, true},
  {Op::tanh,              "tanh",                1, kNumbers, R::floating,   "hyperbolic tangent",                                 kFn,            -5,     5,     false, true},
  {Op::acos,              "acos",                1, kNumbers, R::floating,   "arc cosine",                                         kFn,            -0.99,  0.99,  false, true},
  {Op::asin,              "asin",                1, kNumbers, R::floating,   "arc sine",                                           kFn,            -0.99,  0.99,  false, true},
  {Op::atan,              "atan",                1, kNumbers, R::floating,   "arc tangent",                                        kFn,            -10,    10,    false, true},
  {Op::acosh,             "acosh",               1, kNumbers, R::floating,   "inverse hyperbolic cosine",                          kFn,            1.01,   100,   false, true},
  {Op::asinh,             "asinh",               1, kNumbers, R::floating,   "inverse hyperbolic sine",                            kFn,            -100,   100,   false, true},
  {Op::atanh,             "atanh",               1, kNumbers, R::floating,   "inverse hyperbolic tangent",                         kFn,            -0.95,  0.95,  false, true},
  {Op::sqrt,              "sqrt",                1, kNumbers, R::floating,   "square root",                                        {0, 4e-7},      0,      100,   false, false},
  {Op::rsqrt,             "rsqrt",               1, kNumbers, R::floating,   "1 / sqrt(x)",                                        {0, 4e-6},      0.01,   100,   false, true},
  {Op::cbrt,              "cbrt",                1, kNumbers, R::floating,   "cube root, odd: cbrt(-x) = -cbrt(x)",                kFn,            -100,   100,   false, true},
  {Op::erf,               "erf",                 1, kNumbers, R::floating,   "error function",                                     kFn,            -3,     3,     false, true},
  {Op::erfc,              "erfc",                1, kNumbers, R::floating,   "1 - erf(x)",                                         kFn,            -3,     3,     false, true},
  {Op::erf_inv,           "erf_inv",             1, kNumbers, R::floating,   "inverse error function on (-1, 1)",                  {1e-5, 1e-4},   -0.99,  0.99,  false, true},
  {Op::abs,               "abs",                 1, kNumbers, R::same,       "|x|; abs(INT_MIN) wraps to INT_MIN",                 kExact,         -kBig,  kBig,  true,  false},
  {Op::bitwise_not,       "bitwise_not",         1, kInts|kPred, R::same,    "~x (pred: logical not)",                             kExact,         0,      0,     false, false},
  {Op::ceil,              "ceil",                1, kNumbers, R::same,       "smallest integer >= x (identity on integers)",       kExact,         -kBig,  kBig,  true,  false},
  {Op::floor,             "floor",               1, kNumbers, R::same,       "largest integer <= x (identity on integers)",        kExact,         -kBig,  kBig,  true,  false},
  {Op::negate,            "negate",              1, kNumbers, R::same,       "-x; wraps for unsigned and INT_MIN",                 kExact,         -kBig,  kBig,  true,  false},
  {Op::round,             "round",               1, kNumbers, R::same,       "nearest integer, halves away from zero",             kExact,         -kBig,  kBig,  true,  false},
  {Op::sign,              "sign",                1, kNumbers, R::same,       "-1, 0 or 1; NaN stays NaN, zeros keep their sign",   kExact,         -kBig,  kBig,  true,  false},
  {Op::count_leading_zeros, "count_leading_zeros", 1, kInts,  R::same,       "leading zero bits in the dtype's width",             kExact,         0,      0,     false, false},
  {Op::population_count,  "population_count",    1, kInts,    R::same,       "number of set bits",                                 kExact,         0,      0,     false, false},
  {Op::is_nan,            "is_nan",              1, kNumbers, R::pred,       "x is NaN (never for integers)",                      kExact,         -kBig,  kBig,  true,  false},
  {Op::is_infinity,       "is_infinity",         1, kNumbers, R::pred,       "x is +Inf or -Inf (never for integers)",             kExact,         -kBig,  kBig,  true,  false},
  {Op::add,               "add",                 2, kNumbers, R::same,       "x + y; integers wrap",                               kExact,         -kBig,  kBig,  true,  false},
  {Op::subtract,          "subtract",            2, kNumbers, R::same,       "x - y; integers wrap",                               kExact,         -kBig,  kBig,  true,  false},
  {Op::multiply,          "multiply",            2, kNumbers, R::same,       "x * y; integers wrap",                               kExact,         -100,   100,   true,  false},
  {Op::pow,               "pow",                 2, kNumbers, R::same,       "x^y; integers by repeated squaring (wrapping), y < 0 gives 0 unless |x| = 1", {1e-5, 1e-4}, 0.1, 4, false, true},
  {Op::remainder,         "remainder",           2, kNumbers, R::same,       "x - trunc(x / y) * y (sign of x); x % 0 = x for integers", kExact,   -kBig,  kBig,  false, false},
  {Op::divide,            "divide",              2, kNumbers, R::floating,   "x / y in floating point",                            {0, 4e-7},      -kBig,  kBig,  true,  false},
  {Op::atan2,             "atan2",               2, kNumbers, R::floating,   "angle of (y=x0, x=x1)",                              kFn,            -10,    10,    false, true},
  {Op::min,               "min",                 2, kNumbers, R::same,       "smaller operand; NaN if either is NaN",              kExact,         -kBig,  kBig,  true,  false},
  {Op::max,               "max",                 2, kNumbers, R::same,       "larger operand; NaN if either is NaN",               kExact,         -kBig,  kBig,  true,  false},
  {Op::quotient,          "quotient",            2, kInts,    R::same,       "integer division truncating toward 0; x / 0 = -1 (all bits set)", kExact, 0,  0,     false, false},
  {Op::bitwise_and,       "bitwise_and",         2, kInts|kPred, R::same,    "x & y",                                              kExact,         0,      0,     false, false},
  {Op::bitwise_or,        "bitwise_or",          2, kInts|kPred, R::same,    "x | y",                                              kExact,         0,      0,     false, false},
  {Op::bitwise_xor,       "bitwise_xor",         2, kInts|kPred, R::same,    "x ^ y",                                              kExact,         0,      0,     false, false},
  {Op::left_shift,        "left_shift",          2, kInts,    R::same,       "x << y; 0 when y < 0 or y >= width",                 kExact,         0,      0,     false, false},
  {Op::right_shift,       "right_shift",         2, kInts,    R::same,       "x >> y, arithmetic for signed; y < 0 or y >= width fills with the sign", kExact, 0, 0, false, false},
  {Op::equal,             "equal",               2, kAll,     R::pred,       "x == y (NaN equals nothing)",                        kExact,         -4,     4,     true,  false},
  {Op::not_equal,         "not_equal",           2, kAll,     R::pred,       "x != y (true when either is NaN)",                   kExact,         -4,     4,     true,  false},
  {Op::greater,           "greater",             2, kAll,     R::pred,       "x > y",                                              kExact,         -4,     4,     true,  false},
  {Op::less,              "less",                2, kAll,     R::pred,       "x < y",                                              kExact,         -4,     4,     true,  false},
  {Op::greater_equal,     "greater_equal",       2, kAll,     R::pred,       "x >= y",                                             kExact,         -4,     4,     true,  false},
  {Op::less_equal,        "less_equal",          2, kAll,     R::pred,       "x <= y",                                             kExact,         -4,     4,     true,  false},
  {Op::logical_and,       "logical_and",         2, kAll,     R::pred,       "x != 0 and y != 0",                                  kExact,         -2,     2,     true,  false},
  {Op::logical_or,        "logical_or",          2, kAll,     R::pred,       "x != 0 or y != 0",                                   kExact,         -2,     2,     true,  false},
  {Op::logical_xor,       "logical_xor",         2, kAll,     R::pred,       "(x != 0) != (y != 0)",                               kExact,         -2,     2,     true,  false},
  {Op::select,            "select",              3, kAll,     R::same,       "c != 0 ? x : y",                                     kExact,         -kBig,  kBig,  true,  false},
  {Op::as_type,           "as_type",             1, kAll,     R::cast,       "conversion: see docs/semantics.md",                  kExact,         -1e3,   1e3,   true,  false},
}};
// clang-format on

constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < kOps.size(); ++i)
    if (static_cast<std::size_t>(kOps[i].op) != i) return false;
  return true;
}
static_assert(table_in_enum_order(), "op table rows must follow the order of enum Op");
static_assert(kOps.size() == static_cast<std::size_t>(Op::as_type) + 1, "one row per op");

}  // namespace

std::span<const OpInfo> op_table() { return kOps; }
const OpInfo& op_info(Op op) { return kOps[static_cast<int>(op)]; }

std::span<const std::string_view> op_names() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const OpInfo& o : op_table()) v.push_back(o.name);
    return v;
  }();
  return names;
}

std::optional<Op> find_op(std::string_view name) {
  for (const auto& o : kOps)
    if (o.name == name) return o.op;
  return std::nullopt;
}

std::optional<DType> result_dtype(Op op, DType operand) {
  const OpInfo& info = op_info(op);
  if (!(info.accepts & dtype_bit(operand))) return std::nullopt;
  switch (info.result) {
    case R::same: return operand;
    case R::floating: return to_floating(operand);
    case R::pred: return DType::pred;
    case R::cast: return std::nullopt;
  }
  return std::nullopt;
}

Tolerance tolerance_for(const OpInfo& op, DType result) {
  Tolerance t = op.tol;
  switch (result) {
    case DType::f16: return {std::max(t.atol, 1e-3), std::max(t.rtol, 2e-3)};
    case DType::bf16: return {std::max(t.atol, 8e-3), std::max(t.rtol, 1.6e-2)};
    case DType::f64:
      // Correctly rounded ops stay exact; functions get a few double ulps.
      return {t.atol == 0 ? 0 : 1e-12, t.rtol == 0 ? 0 : 1e-12};
    case DType::f32: return t;
    default: return {0, 0};
  }
}

}  // namespace kiln
