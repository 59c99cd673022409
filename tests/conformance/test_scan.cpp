// The scan family (cumulative_sum, cumulative_product, cumulative_max, cumulative_min) on every
// device against an independent reference written here from docs/semantics.md ("Cumulative ops"):
// integers in 64-bit arithmetic cut to the dtype's width (wrap-around), floats in long double; every
// integer and float dtype, full-range integer bits, row lengths around the block and the chunk
// (256 threads x 8) and up to 2^20 + 1 (split in segments), forward and reverse, every axis of a
// 3-D tensor, transposed and step-sliced views, NaN/Inf/subnormal rows, empty tensors, outputs
// between guard bytes, bit-identical reruns, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "codegen/eval.hpp"
#include "core/scalar.hpp"
#include "runtime/kiln.hpp"
#include "tests/conformance/cases.hpp"
#include "tests/conformance/device_suite.hpp"

namespace kiln {
namespace {

using conformance::smallest_subnormal;
using conformance::unit_roundoff;

using L = long double;

constexpr Combiner kOps[] = {Combiner::sum, Combiner::product, Combiner::max, Combiner::min};
constexpr DType kDtypes[] = {DType::s8,  DType::s16, DType::s32, DType::s64, DType::u8,  DType::u16,
                             DType::u32, DType::u64, DType::f16, DType::bf16, DType::f32, DType::f64};

Tensor scan_op(Combiner c, const Tensor& x, const ScanCall& call, const Tensor* into = nullptr) {
  switch (c) {
    case Combiner::sum: return cumulative_sum(x, call, into);
    case Combiner::product: return cumulative_product(x, call, into);
    case Combiner::max: return cumulative_max(x, call, into);
    default: return cumulative_min(x, call, into);
  }
}

// |u| cut to |t|'s width, sign-extended for signed dtypes (the Scalar representation).
std::uint64_t wrap(std::uint64_t u, DType t) {
  const int bits = dtype_bits(t);
  if (bits == 64) return u;
  u &= (std::uint64_t(1) << bits) - 1;
  if (is_signed_int(t) && (u >> (bits - 1)) & 1) u |= ~std::uint64_t(0) << bits;
  return u;
}

// The scan of one row of |n| values (Scalars of |t|) in the documented semantics; floats as long
// double (rounded by the caller's comparison), integers exactly.
struct RefValue {
  L f = 0;              // floats
  std::uint64_t u = 0;  // integers (the Scalar representation)
  L abs_sum = 0;        // floats: the sum of |x| so far (sum) or |running product| (product), for tolerances
};

std::vector<RefValue> reference_row(Combiner c, DType t, const std::vector<Scalar>& x) {
  std::vector<RefValue> out;
  RefValue acc;
  const bool f = is_float(t);
  for (std::size_t j = 0; j < x.size(); ++j) {
    const Scalar v = x[j];
    if (f) {
      const L a = L(v.f);
      if (j == 0) {
        acc.f = a;
      } else if (c == Combiner::sum) {
        acc.f += a;
      } else if (c == Combiner::product) {
        acc.f *= a;
      } else if (!std::isnan(acc.f)) {
        // NaN wins; -0 orders below +0 (docs/semantics.md, max and min).
        if (std::isnan(a) || (c == Combiner::max ? a > acc.f || (a == acc.f && !std::signbit(a))
                                                 : a < acc.f || (a == acc.f && std::signbit(a))))
          acc.f = a;
      }
      acc.abs_sum = c == Combiner::sum ? acc.abs_sum + std::fabs(a) : std::fabs(acc.f);
    } else if (j == 0) {
      acc.u = v.u;
    } else if (c == Combiner::sum) {
      acc.u = wrap(acc.u + v.u, t);
    } else if (c == Combiner::product) {
      acc.u = wrap(acc.u * v.u, t);
    } else {
      const bool less = is_signed_int(t) ? std::int64_t(v.u) < std::int64_t(acc.u) : v.u < acc.u;
      const bool greater = is_signed_int(t) ? std::int64_t(v.u) > std::int64_t(acc.u) : v.u > acc.u;
      if (c == Combiner::max ? greater : less) acc.u = v.u;
    }
    out.push_back(acc);
  }
  return out;
}

// Random inputs: integers as full-range random bits (sums and products wrap); floats in ranges
// where the running value stays finite (products: magnitudes near 1), with NaN in max/min rows
// when |nan|.
std::vector<std::byte> random_input(Combiner c, DType t, std::int64_t count, std::uint64_t seed, bool nan = false) {
  std::mt19937_64 rng(seed);
  const std::size_t es = dtype_size(t);
  std::vector<std::byte> bytes(std::size_t(count) * es);
  for (std::int64_t i = 0; i < count; ++i) {
    Scalar s;
    if (!is_float(t)) {
      s = Scalar::from_u(wrap(rng(), t));
    } else {
      const double u = std::uniform_real_distribution<double>(0, 1)(rng);
      double v = c == Combiner::product ? (0.9 + 0.2 * u) * (rng() % 2 ? 1 : -1) : 16 * u - 8;
      if (nan && rng() % 97 == 0) v = std::numeric_limits<double>::quiet_NaN();
      s = Scalar::from_f(v);
    }
    store_scalar(t, bytes.data() + std::size_t(i) * es, s);
  }
  return bytes;
}

std::vector<Scalar> scalars(DType t, const std::vector<std::byte>& bytes) {
  std::vector<Scalar> v;
  const std::size_t es = dtype_size(t);
  for (std::size_t i = 0; i * es < bytes.size(); ++i) v.push_back(load_scalar(t, bytes.data() + i * es));
  return v;
}

class Scan : public conformance::DeviceSuite {
 protected:

  // Rows of a contiguous [rows, n] |input| scanned along axis 1 (or of its transpose along axis 0
  // when |axis0|), forward or reverse, into a guarded output; checked against the reference.
  // Returns the output's bytes.
  std::vector<std::byte> check(Combiner c, DType t, std::int64_t rows, std::int64_t n, const std::vector<std::byte>& input,
                               bool reverse, const std::string& what = "") {
    Device& cpu = device("cpu");
    const Tensor x = Tensor::from_host(input.data(), input.size(), {rows, n}, t, cpu).to(*dev_);
    const conformance::GuardedOutput out(*dev_, {rows, n}, t);
    const Tensor& y = out.view();
    scan_op(c, x, {1, reverse}, &y);
    EXPECT_EQ(out.touched_guards(), "") << what;
    const std::vector<std::byte> got_bytes = y.to_host();
    const std::vector<Scalar> xs = scalars(t, input), got = scalars(t, got_bytes);
    const double uc = t == DType::f64 ? unit_roundoff(DType::f64) : unit_roundoff(DType::f32);
    // The blocked order adds at most 8 (a thread's run) + the threads' totals (CUDA: 2 x 5 shuffle
    // steps; Vulkan: a subgroup scan, at most 64 deep, then up to 32 subgroups in order, or 8
    // Hillis-Steele steps) + the chunks and segments before an element: the error grows with
    // that depth, not with j.
    const double depth = 104 + double(n) / 1024;
    int bad = 0;
    for (std::int64_t r = 0; r < rows && bad < 5; ++r) {
      std::vector<Scalar> row(xs.begin() + r * n, xs.begin() + (r + 1) * n);
      if (reverse) std::reverse(row.begin(), row.end());
      std::vector<RefValue> want = reference_row(c, t, row);
      if (reverse) std::reverse(want.begin(), want.end());
      for (std::int64_t j = 0; j < n && bad < 5; ++j) {
        const Scalar g = got[std::size_t(r * n + j)];
        const RefValue& w = want[std::size_t(j)];
        bool ok;
        std::string want_text;
        if (!is_float(t)) {
          ok = g.u == w.u;
          want_text = fmt::format("{} (bits {:#x})", is_signed_int(t) ? std::to_string(std::int64_t(w.u)) : std::to_string(w.u), w.u);
        } else {
          // The reference rounded to t (as the kernel's single store rounds).
          std::byte buf[8];
          store_scalar(t, buf, Scalar::from_f(double(w.f)));
          const double wr = load_scalar(t, buf).f;
          want_text = fmt::format("{}", wr);
          if (std::isnan(wr) || std::isinf(wr)) {
            ok = std::isnan(wr) ? std::isnan(g.f) : g.f == wr;
          } else if (c == Combiner::max || c == Combiner::min) {
            ok = g.f == wr && std::signbit(g.f) == std::signbit(wr);  // the zero's sign too
          } else {
            // Sums: the blocked order's depth times the sum of |x| so far. Products: every one of
            // the j multiplications rounds once whatever the order (j units, relative).
            const double scale = double(w.abs_sum), units = c == Combiner::sum ? depth : double(reverse ? n - j : j + 1);
            // Then one rounding to t, which the accumulated error may tip to the other side: 1 ulp.
            ok = std::fabs(g.f - wr) <= units * uc * scale + 2 * unit_roundoff(t) * std::fabs(wr) + smallest_subnormal(t);
          }
        }
        if (!ok) {
          ++bad;
          ADD_FAILURE() << scan_op_info(c).name << " " << dtype_name(t) << (reverse ? " reverse" : "") << " " << what
                        << " rows " << rows << " n " << n << ": row " << r << " element " << j << " got "
                        << (is_float(t) ? fmt::format("{}", g.f) : fmt::format("bits {:#x}", g.u)) << ", want " << want_text;
        }
      }
    }
    return got_bytes;
  }
};

TEST_P(Scan, EveryOpAndDtypeOverRowLengthsAroundTheBlockAndChunk) {
  for (DType t : kDtypes)
    for (Combiner c : kOps)
      for (std::int64_t n : {1, 2, 31, 32, 33, 255, 257, 2047, 2048, 2049, 4097}) {
        const std::int64_t rows = n > 1000 ? 2 : 3;
        const auto input = random_input(c, t, rows * n, std::uint64_t(n) * 131 + std::uint64_t(t) * 7 + std::uint64_t(c),
                                        c == Combiner::max || c == Combiner::min);
        for (bool reverse : {false, true}) check(c, t, rows, n, input, reverse);
      }
}

// One long row (split in segments: reduce, spine, scan), many short rows, and a long integer row
// (exact whatever the order).
TEST_P(Scan, LongRowsSplitInSegmentsAndManyShortRows) {
  const std::int64_t n = (1 << 20) + 1;
  for (bool reverse : {false, true}) {
    check(Combiner::sum, DType::f32, 1, n, random_input(Combiner::sum, DType::f32, n, 1), reverse, "long");
    check(Combiner::max, DType::s32, 1, n, random_input(Combiner::max, DType::s32, n, 2), reverse, "long");
    check(Combiner::sum, DType::s64, 1, n, random_input(Combiner::sum, DType::s64, n, 3), reverse, "long");
    check(Combiner::product, DType::f64, 3, 40000, random_input(Combiner::product, DType::f64, 120000, 4), reverse,
          "three long rows");
    check(Combiner::sum, DType::bf16, 4096, 3, random_input(Combiner::sum, DType::bf16, 4096 * 3, 5), reverse, "short");
    // Rows of up to 8 elements go a thread each (the same combines as a workgroup's first thread,
    // CudaBlocksOnHost.ScansInChunksAndSplitRows compares the bits); 9 a workgroup each.
    check(Combiner::sum, DType::f32, 20000, 8, random_input(Combiner::sum, DType::f32, 20000 * 8, 6), reverse,
          "a thread per row");
    check(Combiner::product, DType::f16, 5000, 2, random_input(Combiner::product, DType::f16, 5000 * 2, 7), reverse,
          "a thread per row");
    check(Combiner::max, DType::s32, 3000, 9, random_input(Combiner::max, DType::s32, 3000 * 9, 8), reverse, "nine");
  }
}

// The same scan twice: the same bits (no atomics, a shape-fixed order), split or not.
TEST_P(Scan, BitIdenticalReruns) {
  for (std::int64_t n : {std::int64_t(5000), std::int64_t(1) << 20}) {
    const auto input = random_input(Combiner::sum, DType::f32, n, 11);
    const auto a = check(Combiner::sum, DType::f32, 1, n, input, false, "rerun");
    const auto b = check(Combiner::sum, DType::f32, 1, n, input, false, "rerun");
    EXPECT_TRUE(a == b) << "n " << n << ": two runs of the same scan differ";
  }
}

// NaN from the first NaN on (max/min; sum and product through IEEE arithmetic), infinities, an
// f16 sum that overflows to inf, subnormals summed exactly.
TEST_P(Scan, SpecialValues) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v = {1, nan, 3, -inf, 2, inf, 0.5, -0.0, 0x1p-1074, 7};
  const std::int64_t n = std::int64_t(v.size());
  for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16})
    for (Combiner c : kOps) {
      std::vector<std::byte> bytes(v.size() * dtype_size(t));
      for (std::size_t i = 0; i < v.size(); ++i) store_scalar(t, bytes.data() + i * dtype_size(t), Scalar::from_f(v[i]));
      for (bool reverse : {false, true}) check(c, t, 1, n, bytes, reverse, "specials");
    }
  // Signed zeros over a row of 300 (several subgroups and warps): max turns +0 at the first +0,
  // min turns -0 at the first -0; negatives (max) and positives (min) around them.
  for (DType t : {DType::f32, DType::f64}) {
    std::vector<std::byte> mx(300 * dtype_size(t)), mn(300 * dtype_size(t));
    for (int i = 0; i < 300; ++i) {
      const double zmax = i == 170 ? 0.0 : i % 7 == 0 ? -1.0 : -0.0, zmin = i == 170 ? -0.0 : i % 7 == 0 ? 1.0 : 0.0;
      store_scalar(t, mx.data() + std::size_t(i) * dtype_size(t), Scalar::from_f(zmax));
      store_scalar(t, mn.data() + std::size_t(i) * dtype_size(t), Scalar::from_f(zmin));
    }
    for (bool reverse : {false, true}) {
      check(Combiner::max, t, 1, 300, mx, reverse, "signed zeros");
      check(Combiner::min, t, 1, 300, mn, reverse, "signed zeros");
    }
  }
  // f16: 40 x 60000 overflows to inf; subnormal f32 values sum exactly.
  std::vector<std::byte> big(40 * 2), tiny(64 * 4);
  for (int i = 0; i < 40; ++i) store_scalar(DType::f16, big.data() + i * 2, Scalar::from_f(60000));
  for (int i = 0; i < 64; ++i) store_scalar(DType::f32, tiny.data() + i * 4, Scalar::from_f(0x1p-149 * (i + 1)));
  const auto got = scalars(DType::f16, check(Combiner::sum, DType::f16, 1, 40, big, false, "overflow"));
  EXPECT_EQ(got.back().f, inf);
  const auto sub = scalars(DType::f32, check(Combiner::sum, DType::f32, 1, 64, tiny, false, "subnormals"));
  EXPECT_EQ(sub.back().f, 0x1p-149 * (64 * 65 / 2));
}

// The running value lives in the accumulator's dtype (f16/bf16 in f32, f32 in f32, f64 in f64),
// on every device the cpu reference included: it overflows where that dtype does, and inf - inf
// or inf * 0 after an overflow is NaN (hand-computed).
TEST_P(Scan, RunningValuesOverflowWhereTheAccumulatorDoes) {
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    Combiner c;
    DType t;
    std::vector<double> x, want;  // want: NaN compared as NaN
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Case cases[] = {
      {Combiner::sum, DType::f32, {3e38, 3e38, -inf}, {double(3e38f), inf, nan}},
      {Combiner::sum, DType::f32, {3e38, 3e38, -3e38}, {double(3e38f), inf, inf}},
      {Combiner::product, DType::f32, {1e30, 1e30, 0}, {double(1e30f), inf, nan}},
      {Combiner::product, DType::f64, {1e308, 10, 0.1}, {1e308, inf, inf}},
      // f16 in f32: 131008 does not fit f16 (stored inf) but the running value does.
      {Combiner::sum, DType::f16, {65504, 65504, -65504}, {65504, inf, 65504}},
      // bf16 in f32: 257 is stored as 256 (ties to even), the running value keeps it: 258.
      {Combiner::sum, DType::bf16, {256, 1, 1}, {256, 256, 258}},
  };
  for (const Case& k : cases) {
    const std::size_t es = dtype_size(k.t);
    std::vector<std::byte> bytes(k.x.size() * es);
    for (std::size_t i = 0; i < k.x.size(); ++i) store_scalar(k.t, bytes.data() + i * es, Scalar::from_f(k.x[i]));
    const Tensor x = Tensor::from_host(bytes.data(), bytes.size(), {std::int64_t(k.x.size())}, k.t, device("cpu")).to(*dev_);
    const auto got = scalars(k.t, scan_op(k.c, x, {0, false}).to_host());
    for (std::size_t i = 0; i < k.want.size(); ++i)
      EXPECT_TRUE(std::isnan(k.want[i]) ? std::isnan(got[i].f) : got[i].f == k.want[i])
          << scan_op_info(k.c).name << " " << dtype_name(k.t) << " element " << i << ": got " << got[i].f << ", want "
          << k.want[i];
  }
}

// A row split in segments: each segment's total groups neighbouring elements only, as the scan
// does. 2^100 and 2^-100 alternating (products) or +-3e38 (sums): every prefix is 2^100 or 1
// (3e38 or 0), and so is every total of neighbours — a total pairing every other element would
// overflow to inf on one side, 0 on the other, and carry NaN into the next segment.
TEST_P(Scan, SplitRowsTotalNeighboursOnly) {
  const std::int64_t n = std::int64_t(1) << 16;  // split on every device (rows < 256, n > 4 chunks)
  for (Combiner c : {Combiner::product, Combiner::sum})
    for (bool reverse : {false, true}) {
      const double big = c == Combiner::product ? 0x1p100 : 3e38, small = c == Combiner::product ? 0x1p-100 : -3e38;
      std::vector<float> v(static_cast<std::size_t>(n));
      for (std::int64_t j = 0; j < n; ++j) v[std::size_t(j)] = float((j % 2 == 0) != reverse ? big : small);
      const Tensor x = Tensor::from_host(v.data(), v.size() * 4, {1, n}, DType::f32, device("cpu")).to(*dev_);
      const Tensor y = scan_op(c, x, {1, reverse});
      std::vector<float> got(static_cast<std::size_t>(n));
      const auto bytes = y.to_host();
      std::memcpy(got.data(), bytes.data(), bytes.size());
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t k = reverse ? n - 1 - j : j;  // elements in the scan's order so far, minus one
        const float want = k % 2 == 0 ? float(big) : c == Combiner::product ? 1.0f : 0.0f;
        ASSERT_EQ(got[std::size_t(j)], want) << scan_op_info(c).name << (reverse ? " reverse" : "") << " element " << j;
      }
    }
}

// Every axis of a [4, 37, 5] tensor (negative too), a transposed view and a step-sliced view,
// against the same rows scanned contiguously on the host.
TEST_P(Scan, EveryAxisAndViews) {
  Device& cpu = device("cpu");
  const Shape shape{4, 37, 5};
  const auto input = random_input(Combiner::sum, DType::s32, 4 * 37 * 5, 21);
  const Tensor hx = Tensor::from_host(input.data(), input.size(), shape, DType::s32, cpu);
  const Tensor x = hx.to(*dev_);
  for (int axis : {0, 1, 2, -1, -3})
    for (bool reverse : {false, true})
      for (Combiner c : kOps) {
        const int a = axis < 0 ? axis + 3 : axis;
        // The rows along |a| made contiguous on the host: move the axis last.
        std::vector<int> perm;
        for (int d = 0; d < 3; ++d)
          if (d != a) perm.push_back(d);
        perm.push_back(a);
        const Tensor moved = hx.transpose(perm).contiguous();
        const std::int64_t n = shape[std::size_t(a)], rows = 4 * 37 * 5 / n;
        const auto rows_in = scalars(DType::s32, moved.to_host());
        const Tensor got = scan_op(c, x, {axis, reverse}).to(cpu).transpose(perm).contiguous();
        const auto g = scalars(DType::s32, got.to_host());
        for (std::int64_t r = 0; r < rows; ++r) {
          std::vector<Scalar> row(rows_in.begin() + r * n, rows_in.begin() + (r + 1) * n);
          if (reverse) std::reverse(row.begin(), row.end());
          auto want = reference_row(c, DType::s32, row);
          if (reverse) std::reverse(want.begin(), want.end());
          for (std::int64_t j = 0; j < n; ++j)
            ASSERT_EQ(g[std::size_t(r * n + j)].u, want[std::size_t(j)].u)
                << scan_op_info(c).name << " axis " << axis << (reverse ? " reverse" : "") << " row " << r << " j " << j;
        }
      }
  // A transposed view ([5, 37, 4], strides (1, 5, 185)) and a step-sliced one, along axis 1.
  for (const Tensor& view : {x.transpose({2, 1, 0}), x.slice(1, 1, 37, 3)}) {
    const Tensor want = cumulative_sum(view.to(cpu).contiguous(), {1, false});
    EXPECT_EQ(cumulative_sum(view, {1, false}).to(cpu).to_host(), want.to_host());
    const Tensor want_r = cumulative_max(view.to(cpu).contiguous(), {1, true});
    EXPECT_EQ(cumulative_max(view, {1, true}).to(cpu).to_host(), want_r.to_host());
  }
}

TEST_P(Scan, EmptyTensorsAndBadInput) {
  EXPECT_EQ(cumulative_sum(Tensor::empty({0, 5}, DType::f32, *dev_)).shape(), (Shape{0, 5}));
  EXPECT_EQ(cumulative_max(Tensor::empty({3, 0}, DType::s8, *dev_), {1, true}).shape(), (Shape{3, 0}));
  auto message = [](auto&& f) { return conformance::error_message(f); };
  const Tensor x = Tensor::empty({2, 3}, DType::f32, *dev_);
  const std::string axis = message([&] { cumulative_sum(x, {2, false}); });
  EXPECT_NE(axis.find("kiln::cumulative_sum"), std::string::npos) << axis;
  EXPECT_NE(axis.find("axis 2 is out of range for rank 2"), std::string::npos) << axis;
  EXPECT_NE(axis.find("[2,3]"), std::string::npos) << axis;
  const std::string pred = message([&] { cumulative_product(Tensor::empty({4}, DType::pred, *dev_)); });
  EXPECT_NE(pred.find("cumulative_product takes a numeric tensor"), std::string::npos) << pred;
  EXPECT_NE(pred.find("pred"), std::string::npos) << pred;
  const std::string scalar = message([&] { cumulative_min(Tensor::empty({}, DType::f32, *dev_)); });
  EXPECT_NE(scalar.find("a scalar has no axis"), std::string::npos) << scalar;
  const Tensor wrong = Tensor::empty({3, 2}, DType::f32, *dev_), wrong_t = Tensor::empty({2, 3}, DType::f64, *dev_);
  EXPECT_NE(message([&] { cumulative_sum(x, {0, false}, &wrong); }).find("must be a contiguous [2,3] f32"), std::string::npos);
  EXPECT_NE(message([&] { cumulative_sum(x, {0, false}, &wrong_t); }).find("must be a contiguous [2,3] f32"), std::string::npos);
  EXPECT_NE(message([&] { cumulative_sum(Tensor()); }).find("cumulative_sum"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Cpu, Scan, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Vulkan, Scan, ::testing::Values("vulkan:0"));
INSTANTIATE_TEST_SUITE_P(Cuda, Scan, ::testing::Values("cuda:0"));

}  // namespace
}  // namespace kiln
