// The op table: every elementwise op of Kiln, defined once. It drives the CPU reference
// (codegen/eval.cpp), both emitters, the built-in manifest, the conformance suite and the bench.
// Adding an elementwise op means one row here, one case in eval.cpp and one function in each
// prelude (templates/cuda/ops.cuh, templates/glsl/ops.glsl) — the spelling is always kiln_<name>.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "core/dtype.hpp"

namespace kiln {

#define KILN_UNARY_OPS(X)                                                                        \
  X(exp) X(expm1) X(log) X(log1p) X(sigmoid) X(cos) X(sin) X(tan) X(cosh) X(sinh) X(tanh)        \
  X(acos) X(asin) X(atan) X(acosh) X(asinh) X(atanh) X(sqrt) X(rsqrt) X(cbrt) X(erf) X(erfc)     \
  X(erf_inv) X(abs) X(bitwise_not) X(ceil) X(floor) X(negate) X(round) X(sign)                   \
  X(count_leading_zeros) X(population_count) X(is_nan) X(is_infinity)
#define KILN_BINARY_OPS(X)                                                                       \
  X(add) X(subtract) X(multiply) X(pow) X(remainder) X(divide) X(atan2) X(min) X(max)            \
  X(quotient) X(bitwise_and) X(bitwise_or) X(bitwise_xor) X(left_shift) X(right_shift) X(equal)  \
  X(not_equal) X(greater) X(less) X(greater_equal) X(less_equal) X(logical_and) X(logical_or)    \
  X(logical_xor)
#define KILN_OTHER_OPS(X) X(select) X(as_type)

enum class Op : std::uint8_t {
#define KILN_OP_ENUM(name) name,
  KILN_UNARY_OPS(KILN_OP_ENUM) KILN_BINARY_OPS(KILN_OP_ENUM) KILN_OTHER_OPS(KILN_OP_ENUM)
#undef KILN_OP_ENUM
};

// Which dtypes an op accepts (a bit per DType).
using DTypeSet = std::uint16_t;
constexpr DTypeSet dtype_bit(DType t) { return DTypeSet(1u << static_cast<int>(t)); }
inline constexpr DTypeSet kFloats = dtype_bit(DType::f16) | dtype_bit(DType::bf16) |
                                    dtype_bit(DType::f32) | dtype_bit(DType::f64);
inline constexpr DTypeSet kInts = 0x1FE;  // s8..u64
inline constexpr DTypeSet kPred = dtype_bit(DType::pred);
inline constexpr DTypeSet kNumbers = kInts | kFloats;
inline constexpr DTypeSet kAll = kNumbers | kPred;

enum class ResultRule : std::uint8_t {
  same,              // result dtype = operand dtype (after promotion)
  floating,          // to_floating(operand dtype): integers compute and return f32
  pred,              // comparisons, tests and logical ops
  cast,              // as_type: the requested dtype
};

// The accuracy a float op promises, in ulps of its result: CUDA's documented maximum error for the
// f32 and the f64 function (CUDA C++ Programming Guide, mathematical functions), which every backend
// meets over the whole input range (kiln-accuracy measures it against MPFR); 0.5 for correctly
// rounded IEEE ops; 0 for exact ones. f16 and bf16 results: 1 ulp (computed in f32, rounded once).
struct UlpBound {
  double f32 = 0;
  double f64 = 0;
};

struct OpInfo {
  Op op;
  std::string_view name;
  int arity;
  DTypeSet accepts;       // operand dtypes (for select: of the two values; the condition is any)
  ResultRule result;
  std::string_view formula;  // the scalar meaning, in words/maths (docs, kilnc ops)
  UlpBound ulps;          // accuracy of float results (docs/semantics.md "Accuracy")
  double lo, hi;          // range of random float test inputs where the op is well conditioned
  // Whether NaN/Inf operands give the same result on every backend (tested with special values).
  bool specials;
  // A transcendental function that GLSL lacks or does not compute accurately enough: Vulkan runs
  // Kiln's own (templates/glsl/math_f32.glsl, erf_f32.glsl, math_f64.glsl, trig_f64.glsl and
  // erf_f64.glsl).
  bool math_fn;
};

std::span<const OpInfo> op_table();
const OpInfo& op_info(Op op);
std::optional<Op> find_op(std::string_view name);
// Every op's name, in table order (for "did you mean" suggestions).
std::span<const std::string_view> op_names();

// The result dtype of |op| for operands already promoted to |operand|, or nullopt when the op
// does not accept |operand|. as_type is not handled here (its result is the requested dtype).
std::optional<DType> result_dtype(Op op, DType operand);

// |op|'s bound in ulps of |dtype| (a float dtype): ulps.f32 / ulps.f64, 1 for f16 and bf16.
double ulp_bound(Op op, DType dtype);
// How far a device's result may be from the CPU reference's, in ulps of the result dtype: 0 for
// exact and correctly rounded ops (both backends round the exact value once; for f16/bf16 the f32
// step before is innocuous), 1 for other f16/bf16 ops (each rounds its own f32/f64 value), else
// the bound plus one (the reference's own error is below 1 ulp).
double conformance_ulps(Op op, DType result);
// |got| within |ulps| units in the last place of |want| (of |dtype|'s format, in |want|'s binade,
// the subnormal ulp below the normal range; so at want = 0, within ulps subnormal ulps of 0).
bool within_ulps(double got, double want, double ulps, DType dtype);

}  // namespace kiln
