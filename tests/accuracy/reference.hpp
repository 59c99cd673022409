// Correctly rounded references for Kiln's floating-point ops (MPFR at 256 bits) and the error of a
// result in ulps of its format. Used by kiln-accuracy (tests/accuracy/main.cpp).
#pragma once

#include <optional>
#include <span>
#include <string>

#include "codegen/ops.hpp"
#include "core/dtype.hpp"

namespace kiln::accuracy {

// The ops the harness measures: float results of float operands with a mathematical definition
// (the transcendental functions, sqrt/rsqrt/cbrt and the four arithmetic ops, pow, atan2, remainder).
std::span<const Op> measured_ops();

// The bounds are the op table's (codegen/ops.hpp ulp_bound): the maximum ulp error the CUDA Math API
// documents for the function (CUDA C++ Programming Guide, "Mathematical Functions": single- and
// double-precision tables, full range), for f32 and f64; 1 for f16 and bf16 (computed in f32,
// rounded once). sigmoid has no CUDA function: Kiln's own bound (3 ulp f32, 2 f64), as exp plus a
// division.

// The errors of results |got| (values of |dtype|, as doubles; one per backend) against the exact
// value of |op| at |args| (exact doubles), computed once, in ulps of |dtype| at the exact value (the
// ulp of the smallest subnormal below the normal range). 0 when both are NaN, or the exact value
// rounds to |got|'s infinity; +inf when one is NaN or infinite and the other is not. Returns the
// exact value rounded to a double (for reports). Thread-safe.
double ulp_errors(Op op, DType dtype, std::span<const double> args, std::span<const double> got,
                  std::span<double> errors);

}  // namespace kiln::accuracy
