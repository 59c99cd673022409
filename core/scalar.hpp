// A scalar value of any dtype, in the compute representation of its dtype.
#pragma once

#include <cstdint>

namespace kiln {

// A scalar value in the compute representation of a dtype (see compute_dtype): signed integers
// in |i|, unsigned and pred in |u|, floats in |f| (already rounded to the dtype).
struct Scalar {
  union {
    std::int64_t i;
    std::uint64_t u;
    double f;
  };
  Scalar() : u(0) {}
  static Scalar from_i(std::int64_t v) { Scalar s; s.i = v; return s; }
  static Scalar from_u(std::uint64_t v) { Scalar s; s.u = v; return s; }
  static Scalar from_f(double v) { Scalar s; s.f = v; return s; }
};

}  // namespace kiln
