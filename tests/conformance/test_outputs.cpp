// Outputs given by the caller (|into|), on every device: ops whose every element is read and
// written by the same thread (elementwise maps, scans, row ops over x's shape) run in place — the
// output exactly an operand — and refuse any other overlap (a shifted, transposed or broadcast
// view of the output: other workgroups would read what one already overwrote), before anything
// is written; reductions take no overlap at all. In place equals the same op into a new tensor.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "codegen/families/rows.hpp"
#include "runtime/kiln.hpp"
#include "runtime/rows.hpp"
#include "tests/conformance/device_suite.hpp"

namespace kiln {
namespace {

class Outputs : public conformance::DeviceSuite {
 protected:
  // A fresh [4, 8] f32 tensor on the device: 1, 2, ..., 32 (or |v|).
  Tensor make(std::vector<float> v = {}) {
    if (v.empty()) {
      v.resize(32);
      std::iota(v.begin(), v.end(), 1.0f);
    }
    return Tensor::from_host(v.data(), v.size() * 4, {4, 8}, DType::f32, device("cpu")).to(*dev_);
  }
  static std::vector<std::byte> bytes(const Tensor& t) { return t.to(device("cpu")).contiguous().to_host(); }

  // |f| writes into |into| (a view of |base|) over an operand it overlaps: refused naming |op|
  // and "overlaps an operand", |base| unchanged.
  template <class F>
  void expect_refused(const char* what, const char* op, const Tensor& base, F&& f) {
    const auto before = bytes(base);
    const std::string e = conformance::error_message(f);
    EXPECT_NE(e.find("overlaps an operand"), std::string::npos) << what << ": " << e;
    EXPECT_NE(e.find(op), std::string::npos) << what << ": " << e;
    EXPECT_EQ(bytes(base), before) << what << ": the refused call wrote its output";
  }
};

TEST_P(Outputs, InPlaceWhereEveryElementIsItsOwnAndNoOtherOverlap) {
  // In place: the same values as into a new tensor.
  {
    const Tensor x = make(), want = add(make(), make());
    add(x, x, &x);
    EXPECT_EQ(bytes(x), bytes(want)) << "add in place";
    const Tensor y = make(), want_s = cumulative_sum(make(), {1, false});
    cumulative_sum(y, {1, false}, &y);
    EXPECT_EQ(bytes(y), bytes(want_s)) << "cumulative_sum in place";
    const Tensor z = make(), want_r = softmax(make() * 0.25, -1);
    const Tensor zs = z * 0.25;
    softmax(zs, -1, &zs);
    EXPECT_EQ(bytes(zs), bytes(want_r)) << "softmax in place";
  }
  // Elementwise: a shifted view, a transposed one, a broadcast row of the output.
  {
    const Tensor flat = make().reshape({32});
    const Tensor a = flat.slice(0, 0, 31), b = flat.slice(0, 1, 32);
    expect_refused("add into its operand shifted by one", "add", flat, [&] { add(a, a, &b); });
    const Tensor sq = make().slice(1, 0, 4);  // [4, 4]
    const Tensor c = sq.contiguous();
    expect_refused("negate of the output transposed", "negate", c, [&] { negate(c.transpose({1, 0}), &c); });
    const Tensor x = make();
    expect_refused("add of the output's first row", "add", x, [&] { add(x, x.slice(0, 0, 1), &x); });
    expect_refused("a copy into itself shifted", "as_type", flat, [&] { as_type(a, DType::f32, &b); });
  }
  // Scans and row ops: the output shifted along the axis; logsumexp into x's first row.
  {
    const Tensor flat = make().reshape({32});
    const Tensor a = flat.slice(0, 0, 31), b = flat.slice(0, 1, 32);
    expect_refused("cumulative_sum shifted", "cumulative_sum", flat, [&] { cumulative_sum(a, {0, false}, &b); });
    expect_refused("softmax shifted", "softmax", flat, [&] { softmax(a, -1, &b); });
    const Tensor x = make();
    const Tensor row0 = x.slice(0, 0, 1).reshape({8}).slice(0, 0, 4);
    expect_refused("logsumexp into x's first row", "logsumexp", x, [&] { logsumexp(x, -1, false, &row0); });
    // A row op whose result drops the axis, into a prologue operand of the result's shape that
    // every row reads (broadcast): not in place, however equal the shapes.
    RowsFusion fusion;
    fusion.prologue = parse_expr("x + y", {DType::f32, DType::f32});
    const KernelSpec lse = make_rows_spec(RowsOp::logsumexp, DType::f32, 0, RowsBias::none, false, &fusion);
    const Tensor sq = make().slice(1, 0, 4).contiguous(), v = make().reshape({32}).slice(0, 0, 4).contiguous();
    expect_refused("logsumexp of x + b into b", "logsumexp", v,
                   [&] { run_rows_kernel("logsumexp", lse, nullptr, {sq, v}, {-1, false}, &v, nullptr, nullptr, nullptr); });
  }
  // Reductions: no overlap, not even the operand's first elements.
  {
    const Tensor x = make();
    const Tensor head = x.reshape({32}).slice(0, 0, 4);
    expect_refused("sum into x's first elements", "sum", x, [&] { sum(x, {1}, false, &head); });
    expect_refused("reduce_max into x's first elements", "reduce_max", x, [&] { reduce_max(x, {1}, false, &head); });
  }
}

INSTANTIATE_TEST_SUITE_P(Cpu, Outputs, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Outputs, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Outputs, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
