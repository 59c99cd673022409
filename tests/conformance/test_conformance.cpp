// The conformance suite: every case of cases.hpp on every GPU backend, against the CPU reference,
// with guard bytes around the output. Vulkan runs on lavapipe in CI with the validation layer on
// (KILN_VK_VALIDATION=1) and any validation message fails the case.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "core/error.hpp"
#include "tests/conformance/validation_scope.hpp"
#include "tests/conformance/cases.hpp"

namespace kiln::conformance {
namespace {

struct Param {
  std::string device;
  Case c;
};

void PrintTo(const Param& p, std::ostream* os) { *os << p.c.name() << " on " << p.device; }

class Conformance : public ::testing::TestWithParam<Param> {};

TEST_P(Conformance, MatchesCpuReference) {
  const Param& p = GetParam();
  Device* dev = nullptr;
  try {
    dev = &device(p.device);
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  std::string why;
  if (!supported(p.c, *dev, &why)) GTEST_SKIP() << "unsupported on " << p.device << ": " << why;
  const ValidationScope validation(*dev);
  const auto cpu_operands = make_operands(p.c);
  const Tensor want = run(p.c, cpu_operands);
  const auto operands = operands_on(p.c, cpu_operands, *dev);

  // The output lives between two guard regions that must stay untouched.
  const GuardedOutput out(*dev, want.shape(), want.dtype());
  const Tensor got = run(p.c, operands, &out.view());
  const Verdict v = compare(p.c, got, want, cpu_operands);
  EXPECT_TRUE(v.ok) << v.message;
  EXPECT_EQ(out.touched_guards(), "");
}

std::vector<Param> params(const std::string& device) {
  std::vector<Param> out;
  for (const Case& c : all_cases()) out.push_back({device, c});
  return out;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  std::string n = info.param.c.name();
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Vulkan, Conformance, ::testing::ValuesIn(params("vulkan:0")), param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, Conformance, ::testing::ValuesIn(params("cuda:0")), param_name);

// The CPU backend itself is checked against hand-computed values in test_semantics.cpp; here the
// strided and broadcast paths of the CPU evaluator must agree with the contiguous path.
TEST(ConformanceCpu, ViewsMatchContiguousCopies) {
  for (const Case& c : all_cases()) {
    if (c.shape != ShapeClass::strided && c.shape != ShapeClass::broadcast) continue;
    if (c.op != Op::add && c.op != Op::select && c.op != Op::exp) continue;
    auto ops = make_operands(c);
    const Tensor a = run(c, ops);
    std::vector<Tensor> dense;
    const auto shape = a.shape();
    for (const Tensor& t : ops) dense.push_back(t.broadcast_to(shape).contiguous());
    const Tensor b = run(c, dense);
    EXPECT_EQ(a.to_host(), b.to_host()) << c.name();
  }
}

}  // namespace
}  // namespace kiln::conformance
