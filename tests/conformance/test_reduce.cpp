// The reduce family's conformance suite: every reduce op x every dtype it accepts x shape classes x
// backend (cpu, vulkan:0 on lavapipe with validation, cuda:0 where a GPU exists), against a
// reference computed here (long double sums, 64-bit wrapping integer arithmetic, in-order scans for
// max/min/argmax) — independent of Kiln's CPU backend, which is checked like the GPUs. Outputs are
// written between guard bytes. Floats: exact where the result is exact (max, min, products of
// powers of two, argmax), else within a bound that grows with the reduced length.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <fmt/format.h>

#include "codegen/eval.hpp"
#include "runtime/kiln.hpp"
#include "tests/conformance/reduce_order.hpp"
#include "tests/conformance/validation_scope.hpp"
#include "tests/conformance/cases.hpp"

namespace kiln {
namespace {

enum class View { dense, transposed, sliced };

struct ShapeCase {
  std::string name;
  Shape shape;  // the shape the op sees
  std::vector<int> axes;
  bool keep = false;
  View view = View::dense;
  bool large = false;  // only for a few dtypes (time)
};

std::vector<ShapeCase> shape_cases() {
  std::vector<ShapeCase> s = {
      {"scalar", {}, {}},
      {"empty_axis", {3, 0}, {1}},
      {"empty_all", {0}, {}},
      {"size1_axes", {1, 5, 1}, {0, 2}},
      {"row1", {4, 1}, {1}},
      {"row7", {3, 7}, {1}},
      {"row31", {5, 31}, {1}},
      {"row32", {5, 32}, {-1}},
      {"row33", {5, 33}, {1}},
      {"row1000", {3, 1000}, {1}},
      {"row4097", {2, 4097}, {1}},
      {"col1000x7", {1000, 7}, {0}},
      {"cols33x2048", {33, 2048}, {0}},
      {"odd_all", {17, 13}, {}},
      {"several_0_2", {3, 4, 5, 6}, {0, 2}},
      {"several_neg", {3, 4, 5, 6}, {-1, -3}},
      {"inner3", {3, 4, 5, 6}, {1, 2, 3}},
      {"keep_axes", {3, 4, 5}, {1}, true},
      {"keep_all", {3, 4}, {}, true},
      {"transposed", {9, 6}, {1}, false, View::transposed},
      {"transposed_cols", {9, 1500}, {0}, false, View::transposed},
      {"sliced", {10, 13}, {1}, false, View::sliced},
      {"sliced_axis0", {10, 13}, {0}, false, View::sliced},
      {"row_2p20_3", {1, (1 << 20) + 3}, {1}, false, View::dense, true},
      {"all_2p24", {4096, 4096}, {}, false, View::dense, true},
  };
  for (int a = 0; a < 4; ++a) s.push_back({fmt::format("axis{}_of_4d", a), {3, 4, 5, 6}, {a}});
  return s;
}

struct Param {
  std::string device;
  Combiner combiner;
  DType dtype;
  ShapeCase shape;
};

void PrintTo(const Param& p, std::ostream* os) {
  *os << combiner_info(p.combiner).op << " " << dtype_name(p.dtype) << " " << p.shape.name << " on " << p.device;
}

// ---- inputs --------------------------------------------------------------------------------------

Scalar random_bits(DType t, std::mt19937_64& rng) {
  const std::uint64_t b = rng();
  switch (t) {
    case DType::f16: case DType::bf16: {
      std::uint16_t h = std::uint16_t(b);
      if (t == DType::f16 && (h & 0x7C00) == 0x7C00 && (h & 0x3FF)) h &= 0xFC00;  // no NaN: inf
      if (t == DType::bf16 && (h & 0x7F80) == 0x7F80 && (h & 0x7F)) h &= 0xFF80;
      return load_scalar(t, &h);
    }
    case DType::f32: {
      float f;
      std::uint32_t u = std::uint32_t(b);
      std::memcpy(&f, &u, 4);
      return Scalar::from_f(std::isnan(f) ? double(INFINITY) : double(f));
    }
    case DType::f64: {
      double f;
      std::memcpy(&f, &b, 8);
      return Scalar::from_f(std::isnan(f) ? -INFINITY : f);
    }
    default: {
      std::uint64_t raw = b;
      return load_scalar(t, &raw);
    }
  }
}

Scalar from_double(DType t, double v) {
  if (is_float(t)) return round_to_dtype(Scalar::from_f(v), t);
  if (t == DType::pred) return Scalar::from_u(v != 0);
  return is_signed_int(t) ? Scalar::from_i(std::int64_t(v)) : Scalar::from_u(std::uint64_t(v));
}

// Values that exercise each combiner: full-range bits where the result stays exact, values that
// keep float sums meaningful, many ties for argmax, NaN in about one row in four.
std::vector<std::byte> make_input(Combiner c, DType t, std::int64_t n, std::int64_t row, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> bytes(std::size_t(n) * dtype_size(t));
  const double p_rare = 1.0 / double(4 * std::max<std::int64_t>(row, 1));
  std::uniform_real_distribution<double> u(0, 1);
  for (std::int64_t i = 0; i < n; ++i) {
    Scalar v;
    const double r = u(rng);
    switch (c) {
      case Combiner::sum:
        v = is_float(t) ? from_double(t, u(rng) * 2 - 1) : random_bits(t, rng);
        break;
      case Combiner::product:
        if (!is_float(t)) v = random_bits(t, rng);
        else v = from_double(t, row <= 4097 && r < 0.05 ? (r < 0.025 ? 2.0 : 0.5) : (rng() & 1 ? 1.0 : -1.0));
        break;
      case Combiner::max: case Combiner::min:
        v = is_float(t) && r < p_rare ? Scalar::from_f(NAN) : random_bits(t, rng);
        break;
      case Combiner::argmax: case Combiner::argmin:
        if (is_float(t) && r < p_rare) v = Scalar::from_f(NAN);
        else v = (rng() & 3) ? from_double(t, double(int(rng() % 9) - (is_unsigned_int(t) ? 0 : 4))) : random_bits(t, rng);
        break;
      case Combiner::all: case Combiner::any: {
        const bool rare = r < p_rare * 2;
        const bool nonzero = c == Combiner::all ? !rare : rare;
        if (!nonzero) v = is_float(t) && (rng() & 1) ? Scalar::from_f(-0.0) : Scalar();
        else v = is_float(t) && (rng() & 1) ? Scalar::from_f(NAN) : from_double(t, 1 + double(rng() % 5));
        break;
      }
    }
    store_scalar(t, bytes.data() + std::size_t(i) * dtype_size(t), v);
  }
  return bytes;
}

// ---- the reference -------------------------------------------------------------------------------

DType expected_dtype(Combiner c, DType t) {
  switch (c) {
    case Combiner::sum: case Combiner::product:
      return is_signed_int(t) ? DType::s64 : is_float(t) ? t : DType::u64;
    case Combiner::all: case Combiner::any: return DType::pred;
    case Combiner::argmax: case Combiner::argmin: return DType::s64;
    default: return t;
  }
}

struct Expected {
  Scalar value;  // in the result dtype
  double tol = 0;  // floats: allowed |got - value|
};

// Reference for one output over |v| (the reduced elements in flattened order, as Scalars of t).
Expected reference(Combiner c, DType t, const std::vector<Scalar>& v, bool tie_high) {
  const bool f = is_float(t);
  auto val = [&](const Scalar& s) -> long double { return f ? s.f : is_signed_int(t) ? (long double)s.i : (long double)s.u; };
  auto nonzero = [&](const Scalar& s) { return f ? (s.f != 0 || std::isnan(s.f)) : s.u != 0; };
  const double n = double(v.size());
  switch (c) {
    case Combiner::sum: case Combiner::product: {
      if (!f) {
        std::uint64_t acc = c == Combiner::sum ? 0 : 1;
        for (const Scalar& s : v) {
          const std::uint64_t x = is_signed_int(t) ? std::uint64_t(s.i) : s.u;
          acc = c == Combiner::sum ? acc + x : acc * x;
        }
        return {Scalar::from_u(acc), 0};
      }
      long double acc = c == Combiner::sum ? 0 : 1, mag = 0;
      for (const Scalar& s : v) {
        acc = c == Combiner::sum ? acc + s.f : acc * s.f;
        mag += std::fabs((long double)s.f);
      }
      const double eps_acc = t == DType::f64 ? 0x1p-52 : 0x1p-23;
      const double eps_out = t == DType::f16 ? 0x1p-10 : t == DType::bf16 ? 0x1p-7 : eps_acc;
      // The kernels' summation orders (docs/semantics.md): runs of 256 in order, at most 64 runs
      // per thread, a tree of 8 levels, at most 2048 segments in order; the CPU: runs of 256 and a
      // pairwise tree. Each bounds the error by (terms in a chain) * eps * sum |x|.
      const double chain = std::min(n, 256 + 64 + 8 + std::min(n / 4096 + 1, 2048.0) + 2 * std::log2(n + 1));
      const double bound = c == Combiner::product ? 0  // powers of two: exact
                                                  : eps_acc * double(mag) * chain;
      return {Scalar::from_f(double(acc)), bound + eps_out * std::fabs(double(acc)) + 1e-300};
    }
    case Combiner::max: case Combiner::min: {
      if (v.empty()) {
        if (f) return {Scalar::from_f(c == Combiner::max ? -INFINITY : INFINITY)};
        const std::uint64_t lowest = is_signed_int(t) ? std::uint64_t(1) << (dtype_bits(t) - 1) : 0;
        const std::uint64_t b = c == Combiner::max ? lowest : ~lowest;
        return {load_scalar(t, &b)};
      }
      Scalar best = v[0];
      for (const Scalar& s : v) {
        if (f && std::isnan(s.f)) return {Scalar::from_f(NAN)};
        if (c == Combiner::max ? val(s) > val(best) : val(s) < val(best)) best = s;
      }
      return {best};
    }
    case Combiner::all: case Combiner::any: {
      bool r = c == Combiner::all;
      for (const Scalar& s : v) r = c == Combiner::all ? r && nonzero(s) : r || nonzero(s);
      return {Scalar::from_u(r)};
    }
    case Combiner::argmax: case Combiner::argmin: {
      std::int64_t best = 0;
      for (std::int64_t i = 1; i < std::int64_t(v.size()); ++i) {
        const bool bn = f && std::isnan(v[std::size_t(i)].f), an = f && std::isnan(v[std::size_t(best)].f);
        bool take;
        if (an != bn) take = bn;
        else if (!an && val(v[std::size_t(i)]) != val(v[std::size_t(best)]))
          take = c == Combiner::argmax ? val(v[std::size_t(i)]) > val(v[std::size_t(best)])
                                       : val(v[std::size_t(i)]) < val(v[std::size_t(best)]);
        else take = tie_high;
        if (take) best = i;
      }
      return {Scalar::from_i(best)};
    }
  }
  return {};
}

// The expected result of reducing |x| (row-major values of |shape|) over |axes|.
std::vector<Expected> reference_all(Combiner c, DType t, const std::vector<std::byte>& x, const Shape& shape,
                                    std::vector<int> axes, bool tie_high) {
  const int rank = int(shape.size());
  if (axes.empty())
    for (int d = 0; d < rank; ++d) axes.push_back(d);
  for (int& a : axes) a = a < 0 ? a + rank : a;
  std::vector<int> kept, red;
  for (int d = 0; d < rank; ++d) (std::find(axes.begin(), axes.end(), d) != axes.end() ? red : kept).push_back(d);
  Shape stride(std::size_t(rank), 1);
  for (int d = rank - 2; d >= 0; --d) stride[std::size_t(d)] = stride[std::size_t(d) + 1] * shape[std::size_t(d) + 1];
  auto count = [&](const std::vector<int>& ds) {
    std::int64_t n = 1;
    for (int d : ds) n *= shape[std::size_t(d)];
    return n;
  };
  auto offset = [&](std::int64_t lin, const std::vector<int>& ds) {
    std::int64_t off = 0;
    for (std::size_t k = ds.size(); k-- > 0;) {
      const std::int64_t n = shape[std::size_t(ds[k])];
      off += (lin % n) * stride[std::size_t(ds[k])];
      lin /= n;
    }
    return off;
  };
  const std::int64_t n_out = count(kept), n_red = count(red);
  std::vector<Expected> out;
  std::vector<Scalar> vals(static_cast<std::size_t>(n_red));
  for (std::int64_t o = 0; o < n_out; ++o) {
    const std::int64_t base = offset(o, kept);
    for (std::int64_t r = 0; r < n_red; ++r)
      vals[std::size_t(r)] = load_scalar(t, x.data() + std::size_t(base + offset(r, red)) * dtype_size(t));
    out.push_back(reference(c, t, vals, tie_high));
  }
  return out;
}

bool matches(const Expected& e, Scalar got, DType t, std::string* why) {
  if (is_float(t)) {
    const double w = e.value.f, g = got.f;
    if (std::isnan(w) ? std::isnan(g) : (std::isinf(w) ? g == w : std::fabs(g - w) <= e.tol)) return true;
    *why = fmt::format("got {} want {} (tolerance {:.3g})", g, w, e.tol);
    return false;
  }
  if (got.u == e.value.u) return true;
  *why = fmt::format("got {} want {}", is_signed_int(t) ? got.i : std::int64_t(got.u), is_signed_int(t) ? e.value.i : std::int64_t(e.value.u));
  return false;
}

// The operand: a dense tensor of the case's shape, or a transposed / step-sliced view of one.
Tensor make_operand(const ShapeCase& s, DType t, const std::vector<std::byte>& logical, Device& dev) {
  const Tensor dense = Tensor::from_host(logical.data(), logical.size(), s.shape, t, device("cpu"));
  if (s.view == View::dense) return dense.to(dev);
  if (s.view == View::transposed)  // the same logical values, stored transposed
    return dense.transpose({1, 0}).contiguous().to(dev).transpose({1, 0});
  // A step-3 slice of a wider tensor holding the values at columns 1, 4, 7, ...
  const std::int64_t rows = s.shape[0], cols = s.shape[1], wide = cols * 3 + 1;
  std::vector<std::byte> big(std::size_t(rows * wide) * dtype_size(t), std::byte{0x7F});
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c)
      std::memcpy(big.data() + std::size_t(r * wide + 1 + 3 * c) * dtype_size(t),
                  logical.data() + std::size_t(r * cols + c) * dtype_size(t), dtype_size(t));
  return Tensor::from_host(big.data(), big.size(), {rows, wide}, t, dev).slice(1, 1, wide, 3);
}

Tensor run_op(Combiner c, const Tensor& x, const std::vector<int>& axes, bool keep, const Tensor* into) {
  switch (c) {
    case Combiner::sum: return sum(x, axes, keep, into);
    case Combiner::product: return product(x, axes, keep, into);
    case Combiner::max: return reduce_max(x, axes, keep, into);
    case Combiner::min: return reduce_min(x, axes, keep, into);
    case Combiner::all: return all(x, axes, keep, into);
    case Combiner::any: return any(x, axes, keep, into);
    default: {  // arg ops take one axis; several go through kiln::reduce (flattened index)
      ReduceOptions o;
      o.axes = axes;
      o.keep_axes = keep;
      Expr e;
      e.set_root(e.input(0, x.dtype()));
      return reduce(c, e, {x}, o, into);
    }
  }
}

class Reduce : public ::testing::TestWithParam<Param> {};

TEST_P(Reduce, MatchesReference) {
  const Param& p = GetParam();
  Device* dev = nullptr;
  try {
    dev = &device(p.device);
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  const auto& ds = dev->info().dtypes;
  if (dev->backend() != Backend::cpu && std::find(ds.begin(), ds.end(), p.dtype) == ds.end())
    GTEST_SKIP() << p.device << " does not support dtype " << dtype_name(p.dtype);
  const conformance::ValidationScope validation(*dev);
  const ShapeCase& s = p.shape;
  const std::int64_t n = shape_numel(s.shape);
  std::int64_t row = 1;
  for (int a : s.axes) row *= s.shape[std::size_t(a < 0 ? a + int(s.shape.size()) : a)];
  if (s.axes.empty()) row = n;
  const auto data = make_input(p.combiner, p.dtype, n, row, std::hash<std::string>()(s.name) + int(p.dtype) * 31 + int(p.combiner));
  const Tensor x = make_operand(s, p.dtype, data, *dev);
  const auto want = reference_all(p.combiner, p.dtype, data, s.shape, s.axes, false);

  if (is_arg_combiner(p.combiner) && row == 0 && !want.empty()) {
    EXPECT_THROW(run_op(p.combiner, x, s.axes, s.keep, nullptr), Error);
    return;
  }
  const Tensor plain = run_op(p.combiner, x, s.axes, s.keep, nullptr);
  const DType rt = expected_dtype(p.combiner, p.dtype);
  ASSERT_EQ(plain.dtype(), rt);
  ASSERT_EQ(std::size_t(plain.numel()), want.size());
  // Into a view between guard bytes: nothing outside the output is written.
  const std::size_t es = dtype_size(rt);
  const conformance::GuardedOutput out(*dev, plain.shape(), rt);
  run_op(p.combiner, x, s.axes, s.keep, &out.view());
  const auto got = out.view().to_host();
  int bad = 0;
  std::string first;
  for (std::size_t i = 0; i < want.size(); ++i) {
    std::string why;
    if (!matches(want[i], load_scalar(rt, got.data() + i * es), rt, &why) && bad++ == 0)
      first = fmt::format("output {}: {}", i, why);
  }
  EXPECT_EQ(bad, 0) << bad << " of " << want.size() << " outputs differ; first " << first;
  EXPECT_EQ(plain.to_host(), got) << "the plain call and the call into a view differ";
  EXPECT_EQ(out.touched_guards(), "");
}

// Every GPU sums rows in exactly that order, bit for bit, whatever the alignment of the rows (CUDA
// loads aligned runs as vectors and the others element by element). Values over 40 binades, so
// another order gives another sum. The CPU backend sums pairwise (not checked here).
template <class T> void check_row_order(Device& dev) {
  const conformance::ValidationScope validation(dev);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> mant(1, 2);
  std::uniform_int_distribution<int> expo(-20, 20), sign(0, 1);
  const std::int64_t vec = 16 / std::int64_t(sizeof(T)), group = 4;
  for (const std::int64_t n : {std::int64_t(5), std::int64_t(37), std::int64_t(1000), std::int64_t(4093)}) {
    const std::int64_t rows = 6, wide = n + 3;
    std::vector<T> big(std::size_t(rows * wide));
    for (T& v : big) v = T((sign(rng) ? -1 : 1) * std::ldexp(mant(rng), expo(rng)));
    const Tensor whole = Tensor::from_vector(big, {rows, wide}, dev);
    for (const std::int64_t start : {std::int64_t(0), std::int64_t(1), std::int64_t(3)}) {
      const Tensor x = whole.slice(1, start, start + n, 1);  // rows start start, start + wide, ...
      const auto got = sum(x, {1}, false, nullptr).to(device("cpu")).template to_vector<T>();
      for (std::int64_t r = 0; r < rows; ++r) {
        const T want = conformance::emulated_row_sum(big.data() + r * wide + start, n, 256, vec, group);
        EXPECT_EQ(std::memcmp(&got[std::size_t(r)], &want, sizeof(T)), 0)
            << dtype_name(dtype_of<T>()) << " row " << r << " of " << n << " elements from column " << start
            << ": got " << got[std::size_t(r)] << ", the documented order gives " << want;
      }
    }
  }
}

// Columns (a thread per output, or kVec neighbouring outputs per thread where they are aligned):
// each output's elements in order. 60 rows: one segment, one chunk.
template <class T> void check_col_order(Device& dev) {
  const conformance::ValidationScope validation(dev);
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> mant(1, 2);
  std::uniform_int_distribution<int> expo(-20, 20), sign(0, 1);
  const std::int64_t rows = 60, cols = 2048, wide = cols + 4;
  std::vector<T> big(std::size_t(rows * wide));
  for (T& v : big) v = T((sign(rng) ? -1 : 1) * std::ldexp(mant(rng), expo(rng)));
  const Tensor whole = Tensor::from_vector(big, {rows, wide}, dev);
  for (const std::int64_t start : {std::int64_t(0), std::int64_t(1), std::int64_t(4)}) {
    const auto got = sum(whole.slice(1, start, start + cols, 1), {0}, false, nullptr).to(device("cpu")).template to_vector<T>();
    int bad = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      std::vector<T> column;
      for (std::int64_t r = 0; r < rows; ++r) column.push_back(big[std::size_t(r * wide + start + c)]);
      const T want = conformance::emulated_col_segment(column);
      if (std::memcmp(&got[std::size_t(c)], &want, sizeof(T)) != 0 && bad++ < 3)
        ADD_FAILURE() << dtype_name(dtype_of<T>()) << " column " << c << " from column " << start << ": got "
                      << got[std::size_t(c)] << ", in order " << want;
    }
  }
}

TEST(ReduceOrder, SumsInTheDocumentedOrderOnEveryGpu) {
  int ran = 0;
  for (const char* name : {"vulkan:0", "cuda:0"}) {
    Device* dev = nullptr;
    try {
      dev = &device(name);
    } catch (const Error&) {
      continue;
    }
    SCOPED_TRACE(name);
    check_row_order<float>(*dev);
    check_col_order<float>(*dev);
    const auto& ds = dev->info().dtypes;
    if (std::find(ds.begin(), ds.end(), DType::f64) != ds.end()) {
      check_row_order<double>(*dev);
      check_col_order<double>(*dev);
    }
    ++ran;
  }
  if (ran == 0) GTEST_SKIP() << "no GPU device (vulkan:0, cuda:0)";
}

std::vector<Param> params(const std::string& device) {
  std::vector<Param> out;
  for (const CombinerInfo& c : combiner_table())
    for (int ti = 0; ti < kNumDTypes; ++ti) {
      const DType t = DType(ti);
      if (!(c.accepts & dtype_bit(t))) continue;
      for (const ShapeCase& s : shape_cases()) {
        // The large shapes for the headline dtypes only (each costs about a second here).
        if (s.large && !((t == DType::f32 || t == DType::bf16 || t == DType::s32) &&
                         (c.combiner == Combiner::sum || c.combiner == Combiner::max || c.combiner == Combiner::argmax)))
          continue;
        out.push_back({device, c.combiner, t, s});
      }
    }
  return out;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  return fmt::format("{}_{}_{}", combiner_info(info.param.combiner).op, dtype_name(info.param.dtype), info.param.shape.name);
}

INSTANTIATE_TEST_SUITE_P(Cpu, Reduce, ::testing::ValuesIn(params("cpu")), param_name);
INSTANTIATE_TEST_SUITE_P(Vulkan, Reduce, ::testing::ValuesIn(params("vulkan:0")), param_name);
INSTANTIATE_TEST_SUITE_P(Cuda, Reduce, ::testing::ValuesIn(params("cuda:0")), param_name);

}  // namespace
}  // namespace kiln
