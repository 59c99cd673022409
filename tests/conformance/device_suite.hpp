// What the families' conformance suites share: a test suite parameterized by device id ("cpu",
// "vulkan:0", "cuda:0") that skips with the reason when the device is absent and fails a test on
// any Vulkan validation message it caused, and the float dtypes' rounding units for tolerances.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "runtime/device.hpp"
#include "tests/conformance/validation_scope.hpp"

namespace kiln::conformance {

class DeviceSuite : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    try {
      dev_ = &device(GetParam());
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
    validation_.emplace(*dev_);
  }
  void TearDown() override { validation_.reset(); }

  std::optional<ValidationScope> validation_;
  Device* dev_ = nullptr;
};

// The message of the kiln::Error that |f|() throws, "no error" when it throws none.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Unit roundoff (half an ulp at 1) of a float dtype.
inline double unit_roundoff(DType t) {
  switch (t) {
    case DType::f16: return 0x1p-11;
    case DType::bf16: return 0x1p-8;
    case DType::f64: return 0x1p-53;
    default: return 0x1p-24;
  }
}

// The smallest subnormal of a float dtype (one ulp of results in the subnormal range).
inline double smallest_subnormal(DType t) {
  switch (t) {
    case DType::f16: return 0x1p-24;
    case DType::bf16: return 0x1p-133;
    case DType::f64: return 0x1p-1074;
    default: return 0x1p-149;
  }
}

}  // namespace kiln::conformance
