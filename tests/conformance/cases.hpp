// The conformance cases: every elementwise op x every dtype it accepts x shape classes. The test
// suite runs them on every available backend against the CPU reference; kiln-bench reuses them in
// perf mode; the support matrix (docs/ops.md) is generated from them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codegen/ops.hpp"
#include "runtime/tensor.hpp"

namespace kiln::conformance {

enum class ShapeClass {
  scalar,       // rank 0
  empty,        // a zero-sized dimension
  odd,          // 3x5x7: no vector width divides it
  large,        // 2^20 + 7 elements
  broadcast,    // [3,1,5] with [1,4,5] (and [5] for the third operand)
  strided,      // transposed and step-sliced views
  specials,     // NaN, +-Inf, +-0, extremes (ops whose results are defined for them)
};
inline constexpr ShapeClass kAllShapeClasses[] = {ShapeClass::scalar, ShapeClass::empty, ShapeClass::odd,
                                                  ShapeClass::large,  ShapeClass::broadcast,
                                                  ShapeClass::strided, ShapeClass::specials};
const char* shape_class_name(ShapeClass c);

struct Case {
  Op op;
  DType dtype;    // operand dtype (for select: of the two values)
  DType cast_to;  // as_type only
  ShapeClass shape;
  std::string name() const;  // e.g. "add.f32.broadcast", "as_type.f32_s8.odd"
};

// Every case, in a stable order.
std::vector<Case> all_cases();

// The case's operands as CPU tensors (views already applied for the strided class), generated
// from a fixed seed, with values in ranges where the op is well defined.
std::vector<Tensor> make_operands(const Case& c, std::uint64_t seed = 1);
// The same operands on |device|, with the same views.
std::vector<Tensor> operands_on(const Case& c, const std::vector<Tensor>& cpu_operands, Device& device);
// Runs the case's op.
Tensor run(const Case& c, const std::vector<Tensor>& operands, const Tensor* into = nullptr);

struct Verdict {
  bool ok = true;
  std::int64_t mismatches = 0;
  std::string message;  // the first mismatches, with index, inputs, got and want
};
// Compares |got| with the CPU reference |want| using the op's tolerance (exact for integers and
// pred, NaN and Inf positions must match).
Verdict compare(const Case& c, const Tensor& got, const Tensor& want,
                const std::vector<Tensor>& cpu_operands);

// Whether |device| can run the case; if not, why (e.g. Vulkan has no f64 exp).
bool supported(const Case& c, const Device& device, std::string* why);

// An output for every family's conformance tests: a contiguous view of |shape| and |dtype| on
// |device| between two guard regions filled with a pattern, and the check that a kernel wrote
// nothing outside it.
class GuardedOutput {
 public:
  GuardedOutput(Device& device, const Shape& shape, DType dtype);
  const Tensor& view() const { return view_; }
  // "" when the guards are intact, else how many guard bytes changed and where (the first four).
  std::string touched_guards() const;

 private:
  std::shared_ptr<Buffer> storage_;
  Tensor view_;
  std::size_t bytes_ = 0;
};

}  // namespace kiln::conformance
