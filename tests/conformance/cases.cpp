#include "tests/conformance/cases.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include <fmt/format.h>

#include "codegen/emit.hpp"
#include "codegen/eval.hpp"
#include "codegen/spec.hpp"
#include "runtime/ops.hpp"

namespace kiln::conformance {

namespace {

Shape operand_shape(ShapeClass s, int operand) {
  switch (s) {
    case ShapeClass::scalar: return {};
    case ShapeClass::empty: return {4, 0};
    case ShapeClass::odd: return {3, 5, 7};
    case ShapeClass::large: return {(1 << 20) + 7};
    case ShapeClass::broadcast: {
      static const Shape shapes[] = {{3, 1, 5}, {1, 4, 5}, {5}};
      return shapes[operand % 3];
    }
    case ShapeClass::strided: return {9, 14};  // transposed, then every other column
    case ShapeClass::specials: return {};      // set by the special values
  }
  return {};
}

Tensor apply_view(ShapeClass s, int arity, const Tensor& base) {
  if (s == ShapeClass::strided) return base.transpose({1, 0}).slice(1, 1, 9, 2);
  if (s == ShapeClass::broadcast && arity == 1) return base.broadcast_to({4, 3, 1, 5});
  return base;
}

bool full_bit_ints(Op op) {
  switch (op) {
    case Op::add: case Op::subtract: case Op::multiply: case Op::min: case Op::max: case Op::abs:
    case Op::negate: case Op::sign: case Op::ceil: case Op::floor: case Op::round: case Op::select:
    case Op::remainder: case Op::quotient: case Op::as_type: case Op::bitwise_and: case Op::bitwise_or:
    case Op::bitwise_xor: case Op::bitwise_not: case Op::count_leading_zeros: case Op::population_count:
    case Op::is_nan: case Op::is_infinity:
      return true;
    default:
      return false;
  }
}

std::vector<double> float_specials(DType t) {
  const double big = t == DType::f16 ? 65504.0 : t == DType::bf16 ? 3.3895313892515355e38
                   : t == DType::f32 ? double(std::numeric_limits<float>::max()) : std::numeric_limits<double>::max();
  return {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0, big, -big, 0.5, 2.5, -2.5, 1e10, -1e10, 3.75};
}

std::vector<std::int64_t> int_specials(DType t) {
  const int bits = dtype_bits(t);
  if (is_signed_int(t)) {
    const std::int64_t mx = bits == 64 ? std::numeric_limits<std::int64_t>::max() : (std::int64_t(1) << (bits - 1)) - 1;
    return {0, 1, -1, 2, -2, mx, -mx - 1, bits, bits - 1, 7};
  }
  const std::uint64_t mx = bits == 64 ? ~0ull : (1ull << bits) - 1;
  return {0, 1, 2, std::int64_t(mx), std::int64_t(mx - 1), bits, bits - 1, 7};
}

// A value from the whole range of float dtype |t|: a random sign, a binade chosen uniformly from the
// subnormals to the largest, a random significand (so huge trig arguments, overflowing exp, log of
// subnormals... come up as often as values near 1; the op table's range covers the other half).
double full_range_value(DType t, std::mt19937_64& rng) {
  int emin = -1022, emax = 1023;
  if (t == DType::f16) emin = -14, emax = 15;
  if (t == DType::bf16 || t == DType::f32) emin = -126, emax = 127;
  const int e = std::uniform_int_distribution<int>(emin - 1, emax)(rng);  // emin - 1: the subnormals
  const double m = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  const double v = e < emin ? std::ldexp(m, emin) : std::ldexp(1 + m, e);
  return (rng() & 1) ? -v : v;
}

// Fills |n| elements of dtype |t| for operand |k| of case |c|.
std::vector<std::byte> random_data(const Case& c, int k, DType t, std::int64_t n, std::mt19937_64& rng) {
  std::vector<std::byte> out(std::size_t(n) * dtype_size(t));
  const OpInfo& info = op_info(c.op);
  auto put = [&](std::int64_t i, Scalar v) { store_scalar(t, out.data() + i * dtype_size(t), round_to_dtype(v, t)); };
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int bits = t == DType::pred ? 1 : dtype_bits(t);
  for (std::int64_t i = 0; i < n; ++i) {
    if (t == DType::pred) { put(i, Scalar::from_u(rng() & 1)); continue; }
    if (is_float(t)) {
      double lo = info.lo, hi = info.hi;
      if (c.op == Op::as_type && !is_float(c.cast_to)) { lo = -300; hi = 300; }
      if (c.op != Op::as_type && (rng() & 1)) {  // half of the inputs from the whole range
        put(i, Scalar::from_f(full_range_value(t, rng)));
        continue;
      }
      double v = lo + (hi - lo) * unit(rng);
      if (c.op == Op::divide && k == 1 && std::fabs(v) < 1e-3) v = 1;
      put(i, Scalar::from_f(v));
      continue;
    }
    // Integers.
    std::int64_t lo = 0, hi = 0;
    bool full = full_bit_ints(c.op);
    if (c.op == Op::pow) {
      if (k == 0) { lo = is_signed_int(t) ? -5 : 0; hi = 5; } else { lo = is_signed_int(t) ? -2 : 0; hi = 10; }
      full = false;
    } else if (c.op == Op::left_shift || c.op == Op::right_shift) {
      full = k == 0;
      lo = is_signed_int(t) ? -3 : 0;
      hi = bits + 3;
    } else if (!full) {
      lo = std::int64_t(std::ceil(info.lo));
      hi = std::int64_t(std::floor(info.hi));
      if (is_unsigned_int(t)) lo = std::max<std::int64_t>(lo, 0);
      if (hi < lo) hi = lo;
      if (c.op == Op::divide && k == 1 && lo <= 0 && hi >= 0) lo = 1;  // no integer division by 0 in floats
    }
    if (full) {
      put(i, Scalar::from_u(rng()));  // wrapped to the width: every bit pattern
    } else {
      std::uniform_int_distribution<std::int64_t> d(lo, hi);
      put(i, Scalar::from_i(d(rng)));
    }
  }
  return out;
}

}  // namespace

const char* shape_class_name(ShapeClass c) {
  switch (c) {
    case ShapeClass::scalar: return "scalar";
    case ShapeClass::empty: return "empty";
    case ShapeClass::odd: return "odd";
    case ShapeClass::large: return "large";
    case ShapeClass::broadcast: return "broadcast";
    case ShapeClass::strided: return "strided";
    case ShapeClass::specials: return "specials";
  }
  return "?";
}

std::string Case::name() const {
  std::string d = std::string(dtype_name(dtype));
  if (op == Op::as_type) d.append("_").append(dtype_name(cast_to));
  return fmt::format("{}.{}.{}", op_info(op).name, d, shape_class_name(shape));
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const OpInfo& info : op_table()) {
    for (DType t : kAllDTypes) {
      if (!(info.accepts & dtype_bit(t))) continue;
      for (ShapeClass s : kAllShapeClasses) {
        if (s == ShapeClass::specials) {
          // Special values where every backend must agree: floats for ops marked in the table,
          // integer edge values (0, -1, MIN, MAX, widths) for integer-valued ops.
          const bool float_ok = is_float(t) && info.specials;
          const bool int_ok = is_int(t) && info.result != ResultRule::floating && info.op != Op::as_type;
          if (!float_ok && !int_ok && !(info.op == Op::as_type && is_float(t))) continue;
        }
        if (info.op == Op::as_type) {
          for (DType to : kAllDTypes)
            if (to != t) cases.push_back({info.op, t, to, s});
        } else {
          cases.push_back({info.op, t, t, s});
        }
      }
    }
  }
  return cases;
}

std::vector<Tensor> make_operands(const Case& c, std::uint64_t seed) {
  const OpInfo& info = op_info(c.op);
  Device& cpu = device("cpu");
  std::mt19937_64 rng(seed ^ std::hash<std::string>{}(c.name()));
  std::vector<Tensor> ops;
  for (int k = 0; k < info.arity; ++k) {
    const DType t = (c.op == Op::select && k == 0) ? DType::pred : c.dtype;
    if (c.shape == ShapeClass::specials) {
      // Every combination of special values across the operands.
      std::vector<Scalar> vals;
      if (is_float(t)) for (double v : float_specials(t)) vals.push_back(round_to_dtype(Scalar::from_f(v), t));
      else if (t == DType::pred) vals = {Scalar::from_u(0), Scalar::from_u(1)};
      else for (auto v : int_specials(t)) vals.push_back(cast_scalar(Scalar::from_i(v), DType::s64, t));
      // The combinations are counted over the case dtype's values (a select condition cycles 0, 1).
      const std::int64_t m = c.dtype == DType::pred ? 2
                             : is_float(c.dtype) ? std::int64_t(float_specials(c.dtype).size())
                                                 : std::int64_t(int_specials(c.dtype).size());
      const std::int64_t n = info.arity == 1 ? m : m * m * (info.arity == 3 ? 2 : 1);
      std::vector<std::byte> data(std::size_t(n) * dtype_size(t));
      for (std::int64_t i = 0; i < n; ++i) {
        const std::int64_t j = k == 0 ? i % m : k == 1 ? (i / m) % m : (i / (m * m)) % m;
        store_scalar(t, data.data() + i * dtype_size(t), vals[std::size_t(j) % vals.size()]);
      }
      ops.push_back(Tensor::from_host(data.data(), data.size(), {n}, t, cpu));
      continue;
    }
    const Shape shape = operand_shape(c.shape, k);
    auto data = random_data(c, k, t, shape_numel(shape), rng);
    ops.push_back(apply_view(c.shape, info.arity, Tensor::from_host(data.data(), data.size(), shape, t, cpu)));
  }
  return ops;
}

std::vector<Tensor> operands_on(const Case& c, const std::vector<Tensor>& cpu_operands, Device& device) {
  std::vector<Tensor> out;
  const int arity = op_info(c.op).arity;
  for (const Tensor& t : cpu_operands) {
    if (c.shape == ShapeClass::strided || (c.shape == ShapeClass::broadcast && arity == 1)) {
      // Rebuild the same view over a copy of the base storage on |device|.
      const Shape base = operand_shape(c.shape, 0);
      const Shape strides = c.shape == ShapeClass::strided ? Shape{base[1], 1} : Shape{5, 5, 1};
      const Tensor whole = Tensor::view(t.storage(), base, strides, 0, t.dtype());
      out.push_back(apply_view(c.shape, arity, whole.to(device)));
    } else {
      out.push_back(t.to(device));
    }
  }
  return out;
}

Tensor run(const Case& c, const std::vector<Tensor>& operands, const Tensor* into) {
  if (c.op == Op::as_type) {
    if (!into) return as_type(operands[0], c.cast_to);
    return map(single_op_expr(Op::as_type, c.dtype, c.cast_to), operands, std::nullopt, into);
  }
  if (!into) return apply_op(c.op, operands);
  return map(single_op_expr(c.op, c.dtype), operands, std::nullopt, into);
}

bool supported(const Case& c, const Device& device, std::string* why) {
  if (device.backend() == Backend::cpu) return true;
  for (DType t : {c.dtype, c.cast_to}) {
    const auto& ds = device.info().dtypes;
    if (std::find(ds.begin(), ds.end(), t) == ds.end()) {
      if (why) *why = fmt::format("{} does not support dtype {}", device.id(), dtype_name(t));
      return false;
    }
  }
  const KernelSpec spec = c.op == Op::as_type ? single_op_spec(c.op, c.dtype, c.cast_to) : single_op_spec(c.op, c.dtype);
  return target_supports(spec, device.backend() == Backend::cuda ? Target::cuda : Target::glsl, why);
}

Verdict compare(const Case& c, const Tensor& got, const Tensor& want, const std::vector<Tensor>& cpu_operands) {
  Verdict v;
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    v.ok = false;
    v.message = fmt::format("result is {} but the reference is {}", got.describe(), want.describe());
    return v;
  }
  const DType t = got.dtype();
  const auto g = got.to_host(), w = want.to_host();
  const std::size_t es = dtype_size(t);
  const double ulps = conformance_ulps(c.op, t);
  std::vector<std::vector<std::byte>> ins;
  std::vector<Tensor> inputs;  // dense copies of the operands, made at the first mismatch
  for (std::int64_t i = 0; i < got.numel(); ++i) {
    const Scalar a = load_scalar(t, g.data() + i * es), b = load_scalar(t, w.data() + i * es);
    bool same;
    if (is_float(t)) {
      const double x = a.f, y = b.f;
      if (std::isnan(y) || std::isnan(x)) same = std::isnan(x) && std::isnan(y);
      else if (std::isinf(y) || std::isinf(x)) same = x == y;
      else same = within_ulps(x, y, ulps, t);
    } else {
      same = a.u == b.u;
    }
    if (same) continue;
    ++v.mismatches;
    v.ok = false;
    if (v.mismatches <= 5) {
      if (inputs.empty())
        for (const Tensor& x : cpu_operands) {
          inputs.push_back(x.broadcast_to(got.shape()).contiguous());
          ins.push_back(inputs.back().to_host());
        }
      std::string args;
      for (std::size_t k = 0; k < inputs.size(); ++k) {
        const DType it = inputs[k].dtype();
        args += fmt::format("{}{}", k ? ", " : "",
                            scalar_to_double(load_scalar(it, ins[k].data() + i * dtype_size(it)), it));
      }
      v.message += fmt::format("  [{}] {}({}) = {}, want {}\n", i, op_info(c.op).name, args,
                               scalar_to_double(a, t), scalar_to_double(b, t));
    }
  }
  if (!v.ok) v.message = fmt::format("{}: {} of {} elements differ (by more than {} ulp)\n", c.name(), v.mismatches,
                                     got.numel(), ulps) + v.message;
  return v;
}

namespace {
constexpr std::size_t kGuardBytes = 256;
constexpr std::uint8_t kGuard = 0xA5;
}  // namespace

GuardedOutput::GuardedOutput(Device& device, const Shape& shape, DType dtype) {
  const std::size_t es = dtype_size(dtype);
  bytes_ = std::size_t(shape_numel(shape)) * es;
  storage_ = device.allocate(kGuardBytes * 2 + bytes_);
  device.default_stream().fill(*storage_, 0, storage_->size_bytes(), kGuard);
  Shape strides(shape.size(), 1);
  for (int d = int(shape.size()) - 2; d >= 0; --d)
    strides[std::size_t(d)] = strides[std::size_t(d) + 1] * std::max<std::int64_t>(shape[std::size_t(d) + 1], 1);
  view_ = Tensor::view(storage_, shape, strides, std::int64_t(kGuardBytes / es), dtype);
}

std::string GuardedOutput::touched_guards() const {
  std::vector<std::uint8_t> all(storage_->size_bytes());
  storage_->device().default_stream().download(*storage_, 0, all.data(), all.size());
  std::size_t touched = 0;
  std::string where;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i == kGuardBytes) i += bytes_;
    if (i >= all.size() || all[i] == kGuard) continue;
    if (++touched <= 4)
      where += fmt::format(" {}{}=0x{:02x}", i < kGuardBytes ? "before-" : "after+",
                           i < kGuardBytes ? kGuardBytes - i : i - kGuardBytes - bytes_, all[i]);
  }
  return touched ? fmt::format("the kernel wrote {} guard bytes outside the output:{}", touched, where) : "";
}

}  // namespace kiln::conformance
