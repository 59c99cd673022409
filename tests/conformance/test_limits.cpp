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

#include "codegen/families/scan.hpp"
#include "codegen/family.hpp"
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
  // Rows: two passes over a row held in memory by 256 lanes. The longest row the plan takes runs
  // whole: every element of a uniform softmax the same, 1/n within 2 ulp.
  const std::int64_t longest = (65535 - 128) / 2 * 256;
  const std::vector<float> uniform = softmax(filled({1, longest}, DType::f32, 0.0)).to(device("cpu")).to_vector<float>();
  std::size_t wrong = 0;
  for (float v : uniform) wrong += v != uniform[0];
  EXPECT_EQ(wrong, 0u);
  EXPECT_NEAR(uniform[0], 1.0 / double(longest), 2 * 0x1p-24 / double(longest));
  expect_refused(conformance::error_message([&] { softmax(filled({1, 1 << 23}, DType::f32, 0.0)); }), "softmax",
                 "[1,8388608]");
  // Contractions and convolutions: a K step (16) per loop iteration (measured: a matmul of ones
  // over K = 4M returned 65535 x 16; the longest K the plan takes, 1048304, takes 8 s here, so a
  // quarter of it).
  const std::int64_t k = std::int64_t(1) << 18, past = (std::int64_t(1) << 20) + 64;
  EXPECT_EQ(matmul(filled({1, k}, DType::f32, 1.0), filled({k, 1}, DType::f32, 1.0)).to(device("cpu")).to_vector<float>(),
            std::vector<float>{float(k)});
  expect_refused(conformance::error_message([&] { matmul(filled({1, past}, DType::f32, 1.0), filled({past, 1}, DType::f32, 1.0)); }),
                 "matmul", "[1,1048640]");
  expect_refused(conformance::error_message([&] { conv(filled({1, past, 1}, DType::f32, 1.0), filled({1, past, 1}, DType::f32, 1.0)); }),
                 "conv", "[1,1048640,1]");
  // The cooperative-matrix kernels as lavapipe runs them (emulated): up to about 112 (contraction,
  // both operands fetched element by element: an odd K) and 246 (conv) loop iterations per K step
  // of 32, planned as 120 and 300. The longest K each takes sums every product; a longer one runs
  // the portable kernel instead.
  const conformance::ScopedCoopmat emulated("emulate");
  auto ones = [&](const Shape& s) { return filled(s, DType::f16, 1.0); };
  DotOptions f32;
  f32.output = DType::f32;
  std::uint64_t before = contraction_coopmat_runs();
  const std::int64_t kc = (65535 - 200) / 120 * 32 - 1;  // (odd: no 16-byte chunks)
  EXPECT_EQ(matmul(ones({1, kc}), ones({kc, 1}), f32).to(device("cpu")).to_vector<float>(), std::vector<float>{float(kc)});
  EXPECT_EQ(contraction_coopmat_runs() - before, 1u);
  EXPECT_EQ(matmul(ones({1, 40000}), ones({40000, 1}), f32).to(device("cpu")).to_vector<float>(), std::vector<float>{40000.0f});
  EXPECT_EQ(contraction_coopmat_runs() - before, 1u);  // (the portable kernel)
  // Conv: K = channels x 9 just within (65535 - 200) / 300 steps, NCHW and NHWC inputs, OIHW and
  // HWIO kernels (a per-element split of k in the staging: the most loops per step).
  ConvOptions conv_f32;
  conv_f32.output = DType::f32;
  const std::int64_t c = (65535 - 200) / 300 * 32 / 9;
  for (bool nhwc : {false, true})
    for (bool hwio : {false, true}) {
      ConvOptions o = conv_f32;
      const Tensor x = nhwc ? ones({1, 9, c}).transpose({0, 2, 1}) : ones({1, c, 9});
      const Tensor w = hwio ? ones({9, c, 1}).transpose({2, 1, 0}) : ones({1, c, 9});
      before = contraction_coopmat_runs();
      EXPECT_EQ(conv(x, w, o).to(device("cpu")).to_vector<float>(), std::vector<float>{float(9 * c)})
          << (nhwc ? "NHWC" : "NCHW") << (hwio ? " x HWIO" : " x OIHW");
      EXPECT_EQ(contraction_coopmat_runs() - before, 1u);
    }
  before = contraction_coopmat_runs();
  EXPECT_EQ(conv(ones({1, 2 * c, 9}), ones({1, 2 * c, 9}), conv_f32).to(device("cpu")).to_vector<float>(),
            std::vector<float>{float(18 * c)});
  EXPECT_EQ(contraction_coopmat_runs() - before, 0u);  // (the portable kernel)
}

// The plans' loop bounds for the scan family (whose rows are walked in chunks of 2048 by a
// workgroup each, or split over workgroups when few): what lavapipe would cut is over the limit.
TEST(LoopLimit, ScanPlansCountTheirChunks) {
  auto loops = [](std::int64_t rows, std::int64_t n, std::uint32_t subgroup) {
    const KernelSpec spec = make_scan_spec(Combiner::sum, DType::u8);
    const std::vector<std::int64_t> shape{rows, n}, st{n, 1};
    const std::vector<PlanOperand> ops{{0, st}};
    const int axes[1] = {1};
    PlanRequest r{shape, ops, 0, axes, 256};
    r.subgroup_size = subgroup;
    r.scratch = 64;  // (a split plan asks for scratch first)
    std::string why;
    const LaunchPlan plan = family_of(spec).plan(spec, r, &why);
    EXPECT_GE(plan.function, 0) << why;
    return plan.loop_iterations;
  };
  EXPECT_LT(loops(1, std::int64_t(1) << 30, 8), 65535u);   // one long row: 1024 segments of 512 chunks
  EXPECT_LT(loops(256, std::int64_t(1) << 21, 8), 65535u);  // a workgroup a row: 1024 chunks
  EXPECT_GT(loops(256, std::int64_t(1) << 22, 8), 65535u);  // 2048 chunks of 44 loop iterations
  EXPECT_LT(loops(256, std::int64_t(1) << 23, 0), 65535u);  // (shared memory: a tree, 12 a chunk)
  EXPECT_GT(loops(256, std::int64_t(1) << 24, 0), 65535u);
  EXPECT_LT(loops(std::int64_t(1) << 24, 8, 8), 100u);      // a thread per row, 2 rows a thread
}

INSTANTIATE_TEST_SUITE_P(Cpu, Limits, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Limits, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Limits, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
