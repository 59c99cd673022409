// Devices whose driver ends a shader invocation's loops early: lavapipe (llvmpipe's loop limiter)
// stops every loop of an invocation once it has run 65535 iterations in all, without an error, so
// a softmax over a row of 2^23 elements or a contraction over a K of 2^20 would return wrong values.
// Launches whose kernels may loop longer than DeviceInfo::loop_limit are refused before anything
// runs, naming the limit, the op, the shapes and the device; those within it compute the right
// values (checked exactly: sums of ones, a uniform softmax). Devices without a limit skip.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/kiln.hpp"
#include "tests/conformance/contraction_check.hpp"
#include "tests/conformance/device_suite.hpp"

namespace kiln {
namespace {

class Limits : public conformance::DeviceSuite {
 protected:
  Tensor filled(const Shape& shape, DType t, double v) { return full(shape, v, t, *dev_); }
  void expect_refused(const std::string& e, const char* op, const char* shape) {
    EXPECT_NE(e.find(std::to_string(dev_->info().loop_limit) + " iterations"), std::string::npos) << e;
    EXPECT_NE(e.find(op), std::string::npos) << e;
    EXPECT_NE(e.find(shape), std::string::npos) << e;
    EXPECT_NE(e.find(dev_->id()), std::string::npos) << e;
  }
};

TEST_P(Limits, LongRowsAndLongSumsStayWithinTheDriversLoopLimit) {
  const std::uint64_t limit = dev_->info().loop_limit;
  if (dev_->info().name.find("llvmpipe") != std::string::npos) {
    EXPECT_EQ(limit, 65535u);
  }
  if (limit == 0) GTEST_SKIP() << dev_->id() << " has no loop limit";
  // Rows: two passes over a row held in memory by 256 lanes.
  const std::vector<float> uniform = softmax(filled({1, 1 << 22}, DType::f32, 0.0)).to(device("cpu")).to_vector<float>();
  std::size_t wrong = 0;
  for (float v : uniform) wrong += v != 0x1p-22f;
  EXPECT_EQ(wrong, 0u);
  expect_refused(conformance::error_message([&] { softmax(filled({1, 1 << 23}, DType::f32, 0.0)); }), "softmax",
                 "[1,8388608]");
  // Contractions and convolutions: a K step (16) per loop iteration.
  const std::int64_t k = std::int64_t(1) << 19, past = (std::int64_t(1) << 20) + 64;
  EXPECT_EQ(matmul(filled({1, k}, DType::f32, 1.0), filled({k, 1}, DType::f32, 1.0)).to(device("cpu")).to_vector<float>(),
            std::vector<float>{float(k)});
  expect_refused(conformance::error_message([&] { matmul(filled({1, past}, DType::f32, 1.0), filled({past, 1}, DType::f32, 1.0)); }),
                 "matmul", "[1,1048640]");
  expect_refused(conformance::error_message([&] { conv(filled({1, past, 1}, DType::f32, 1.0), filled({1, past, 1}, DType::f32, 1.0)); }),
                 "conv", "[1,1048640,1]");
  // The cooperative-matrix kernel as lavapipe runs it (emulated): about 94 iterations per K step of 32.
  const conformance::ScopedCoopmat emulated("emulate");
  DotOptions f32;
  f32.output = DType::f32;
  const std::uint64_t before = contraction_coopmat_runs();
  EXPECT_EQ(matmul(filled({1, 16000}, DType::f16, 1.0), filled({16000, 1}, DType::f16, 1.0), f32)
                .to(device("cpu")).to_vector<float>(),
            std::vector<float>{16000.0f});
  EXPECT_EQ(contraction_coopmat_runs() - before, 1u);
  expect_refused(conformance::error_message([&] { matmul(filled({1, 40000}, DType::f16, 1.0), filled({40000, 1}, DType::f16, 1.0)); }),
                 "matmul", "[1,40000]");
}

INSTANTIATE_TEST_SUITE_P(Cpu, Limits, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Limits, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Limits, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
