// LaunchPlan::loop_iterations from an estimate in double (the planners' products of extents can
// pass 2^64): the count, or UINT64_MAX past what a uint64_t holds (and for NaN) — an over-limit
// launch then stays over the limit instead of wrapping to a small count.
#pragma once

#include <cstdint>

namespace kiln {

inline std::uint64_t loop_count(double n) {
  return !(n < 1.8e19) ? UINT64_MAX : n > 0 ? std::uint64_t(n) : 0;
}

}  // namespace kiln
