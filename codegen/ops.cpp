#include "codegen/ops.hpp"

#include <algorithm>
#include <cmath>
#include <array>
#include <vector>

namespace kiln {

namespace {

using R = ResultRule;
constexpr double kBig = 1e4;          // default random range [-kBig, kBig]

// clang-format off
constexpr std::array<OpInfo, 60> kOps = {{
  // op                   name                   n  accepts   result         formula                                               ulps f32/f64    lo      hi     specials math_fn
  {Op::exp,               "exp",                 1, kNumbers, R::floating,   "e^x",                                                {2, 1},         -10,    10,    false, true},
  {Op::expm1,             "expm1",               1, kNumbers, R::floating,   "e^x - 1, accurate near 0",                           {1, 1},         -5,     5,     false, true},
  {Op::log,               "log",                 1, kNumbers, R::floating,   "natural logarithm",                                  {1, 1},         0.01,   100,   false, true},
  {Op::log1p,             "log1p",               1, kNumbers, R::floating,   "log(1 + x), accurate near 0",                        {1, 1},         -0.9,   100,   false, true},
  {Op::sigmoid,           "sigmoid",             1, kNumbers, R::floating,   "1 / (1 + e^-x)",                                     {3, 2},         -10,    10,    false, true},
  {Op::cos,               "cos",                 1, kNumbers, R::floating,   "cosine (radians)",                                   {2, 2},         -3.14,  3.14,  false, true},
  {Op::sin,               "sin",                 1, kNumbers, R::floating,   "sine (radians)",                                     {2, 2},         -3.14,  3.14,  false, true},
  {Op::tan,               "tan",                 1, kNumbers, R::floating,   "tangent (radians)",                                  {4, 2},         -1.4,   1.4,   false, true},
  {Op::cosh,              "cosh",                1, kNumbers, R::floating,   "hyperbolic cosine",                                  {2, 1},         -5,     5,     false, true},
  {Op::sinh,              "sinh",                1, kNumbers, R::floating,   "hyperbolic sine",                                    {3, 2},         -5,     5,     false, true},
  {Op::tanh,              "tanh",                1, kNumbers, R::floating,   "hyperbolic tangent",                                 {2, 1},         -5,     5,     false, true},
  {Op::acos,              "acos",                1, kNumbers, R::floating,   "arc cosine",                                         {2, 2},         -0.99,  0.99,  false, true},
  {Op::asin,              "asin",                1, kNumbers, R::floating,   "arc sine",                                           {2, 2},         -0.99,  0.99,  false, true},
  {Op::atan,              "atan",                1, kNumbers, R::floating,   "arc tangent",                                        {2, 2},         -10,    10,    false, true},
  {Op::acosh,             "acosh",               1, kNumbers, R::floating,   "inverse hyperbolic cosine",                          {4, 3},         1.01,   100,   false, true},
  {Op::asinh,             "asinh",               1, kNumbers, R::floating,   "inverse hyperbolic sine",                            {3, 3},         -100,   100,   false, true},
  {Op::atanh,             "atanh",               1, kNumbers, R::floating,   "inverse hyperbolic tangent",                         {3, 2},         -0.95,  0.95,  false, true},
  {Op::sqrt,              "sqrt",                1, kNumbers, R::floating,   "square root",                                        {0.5, 0.5},     0,      100,   false, false},
  {Op::rsqrt,             "rsqrt",               1, kNumbers, R::floating,   "1 / sqrt(x)",                                        {2, 1},         0.01,   100,   false, true},
  {Op::cbrt,              "cbrt",                1, kNumbers, R::floating,   "cube root, odd: cbrt(-x) = -cbrt(x)",                {1, 1},         -100,   100,   false, true},
  {Op::erf,               "erf",                 1, kNumbers, R::floating,   "error function",                                     {2, 2},         -3,     3,     false, true},
  {Op::erfc,              "erfc",                1, kNumbers, R::floating,   "1 - erf(x)",                                         {4, 5},         -3,     3,     false, true},
  {Op::erf_inv,           "erf_inv",             1, kNumbers, R::floating,   "inverse error function on (-1, 1)",                  {2, 5},         -0.99,  0.99,  false, true},
  {Op::abs,               "abs",                 1, kNumbers, R::same,       "|x|; abs(INT_MIN) wraps to INT_MIN",                 {0, 0},         -kBig,  kBig,  true,  false},
  {Op::bitwise_not,       "bitwise_not",         1, kInts|kPred, R::same,    "~x (pred: logical not)",                             {0, 0},         0,      0,     false, false},
  {Op::ceil,              "ceil",                1, kNumbers, R::same,       "smallest integer >= x (identity on integers)",       {0, 0},         -kBig,  kBig,  true,  false},
  {Op::floor,             "floor",               1, kNumbers, R::same,       "largest integer <= x (identity on integers)",        {0, 0},         -kBig,  kBig,  true,  false},
  {Op::negate,            "negate",              1, kNumbers, R::same,       "-x; wraps for unsigned and INT_MIN",                 {0, 0},         -kBig,  kBig,  true,  false},
  {Op::round,             "round",               1, kNumbers, R::same,       "nearest integer, halves away from zero",             {0, 0},         -kBig,  kBig,  true,  false},
  {Op::sign,              "sign",                1, kNumbers, R::same,       "-1, 0 or 1; NaN stays NaN, zeros keep their sign",   {0, 0},         -kBig,  kBig,  true,  false},
  {Op::count_leading_zeros, "count_leading_zeros", 1, kInts,  R::same,       "leading zero bits in the dtype's width",             {0, 0},         0,      0,     false, false},
  {Op::population_count,  "population_count",    1, kInts,    R::same,       "number of set bits",                                 {0, 0},         0,      0,     false, false},
  {Op::is_nan,            "is_nan",              1, kNumbers, R::pred,       "x is NaN (never for integers)",                      {0, 0},         -kBig,  kBig,  true,  false},
  {Op::is_infinity,       "is_infinity",         1, kNumbers, R::pred,       "x is +Inf or -Inf (never for integers)",             {0, 0},         -kBig,  kBig,  true,  false},
  {Op::add,               "add",                 2, kNumbers, R::same,       "x + y; integers wrap",                               {0.5, 0.5},     -kBig,  kBig,  true,  false},
  {Op::subtract,          "subtract",            2, kNumbers, R::same,       "x - y; integers wrap",                               {0.5, 0.5},     -kBig,  kBig,  true,  false},
  {Op::multiply,          "multiply",            2, kNumbers, R::same,       "x * y; integers wrap",                               {0.5, 0.5},     -100,   100,   true,  false},
  {Op::pow,               "pow",                 2, kNumbers, R::same,       "x^y; integers by repeated squaring (wrapping), y < 0 gives 0 unless |x| = 1", {4, 2},         0.1, 4, false, true},
  {Op::remainder,         "remainder",           2, kNumbers, R::same,       "x - trunc(x / y) * y (sign of x); x % 0 = x for integers", {0.5, 0.5},     -kBig,  kBig,  false, false},
  {Op::divide,            "divide",              2, kNumbers, R::floating,   "x / y in floating point",                            {0.5, 0.5},     -kBig,  kBig,  true,  false},
  {Op::atan2,             "atan2",               2, kNumbers, R::floating,   "angle of (y=x0, x=x1)",                              {3, 2},         -10,    10,    false, true},
  {Op::min,               "min",                 2, kNumbers, R::same,       "smaller operand; NaN if either is NaN",              {0, 0},         -kBig,  kBig,  true,  false},
  {Op::max,               "max",                 2, kNumbers, R::same,       "larger operand; NaN if either is NaN",               {0, 0},         -kBig,  kBig,  true,  false},
  {Op::quotient,          "quotient",            2, kInts,    R::same,       "integer division truncating toward 0; x / 0 = -1 (all bits set)", {0, 0},         0,  0,     false, false},
  {Op::bitwise_and,       "bitwise_and",         2, kInts|kPred, R::same,    "x & y",                                              {0, 0},         0,      0,     false, false},
  {Op::bitwise_or,        "bitwise_or",          2, kInts|kPred, R::same,    "x | y",                                              {0, 0},         0,      0,     false, false},
  {Op::bitwise_xor,       "bitwise_xor",         2, kInts|kPred, R::same,    "x ^ y",                                              {0, 0},         0,      0,     false, false},
  {Op::left_shift,        "left_shift",          2, kInts,    R::same,       "x << y; 0 when y < 0 or y >= width",                 {0, 0},         0,      0,     false, false},
  {Op::right_shift,       "right_shift",         2, kInts,    R::same,       "x >> y, arithmetic for signed; y < 0 or y >= width fills with the sign", {0, 0},         0, 0, false, false},
  {Op::equal,             "equal",               2, kAll,     R::pred,       "x == y (NaN equals nothing)",                        {0, 0},         -4,     4,     true,  false},
  {Op::not_equal,         "not_equal",           2, kAll,     R::pred,       "x != y (true when either is NaN)",                   {0, 0},         -4,     4,     true,  false},
  {Op::greater,           "greater",             2, kAll,     R::pred,       "x > y",                                              {0, 0},         -4,     4,     true,  false},
  {Op::less,              "less",                2, kAll,     R::pred,       "x < y",                                              {0, 0},         -4,     4,     true,  false},
  {Op::greater_equal,     "greater_equal",       2, kAll,     R::pred,       "x >= y",                                             {0, 0},         -4,     4,     true,  false},
  {Op::less_equal,        "less_equal",          2, kAll,     R::pred,       "x <= y",                                             {0, 0},         -4,     4,     true,  false},
  {Op::logical_and,       "logical_and",         2, kAll,     R::pred,       "x != 0 and y != 0",                                  {0, 0},         -2,     2,     true,  false},
  {Op::logical_or,        "logical_or",          2, kAll,     R::pred,       "x != 0 or y != 0",                                   {0, 0},         -2,     2,     true,  false},
  {Op::logical_xor,       "logical_xor",         2, kAll,     R::pred,       "(x != 0) != (y != 0)",                               {0, 0},         -2,     2,     true,  false},
  {Op::select,            "select",              3, kAll,     R::same,       "c != 0 ? x : y",                                     {0, 0},         -kBig,  kBig,  true,  false},
  {Op::as_type,           "as_type",             1, kAll,     R::cast,       "conversion: see docs/semantics.md",                  {0, 0},         -1e3,   1e3,   true,  false},
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

double ulp_bound(Op op, DType dtype) {
  if (dtype == DType::f16 || dtype == DType::bf16) return 1;
  const UlpBound& b = op_info(op).ulps;
  return dtype == DType::f64 ? b.f64 : b.f32;
}

double conformance_ulps(Op op, DType result) {
  if (!is_float(result)) return 0;
  const UlpBound& b = op_info(op).ulps;
  if (b.f32 == 0 && b.f64 == 0) return 0;  // exact ops
  const double bound = ulp_bound(op, result);
  // Correctly rounded ops are exact everywhere, f16 and bf16 included: computed in f32 and rounded
  // again, the second rounding is innocuous (24 >= 2 x 11 + 2 bits for +, -, *, / and sqrt).
  if (bound <= 0.5) return 0;
  return result == DType::f16 || result == DType::bf16 ? 1 : bound + 1;
}

bool within_ulps(double got, double want, double ulps, DType dtype) {
  if (got == want) return true;
  int p = 53, emin = -1022;
  switch (dtype) {
    case DType::f16: p = 11, emin = -14; break;
    case DType::bf16: p = 8, emin = -126; break;
    case DType::f32: p = 24, emin = -126; break;
    default: break;
  }
  const int e = want == 0 || !std::isfinite(want) ? emin : std::max(std::ilogb(want), emin);
  return std::fabs(got - want) <= ulps * std::ldexp(1.0, e - p + 1);
}

}  // namespace kiln
