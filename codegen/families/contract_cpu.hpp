// The CPU references' arithmetic of the contraction and conv families (contract.cpp, conv.cpp):
// one output at a time, each operand element converted to the accumulator as the kernels convert
// it (Kiln's as_type; rounded to TF32 with precision tf32), the products summed in long double
// (floats; a running sum past the accumulator's range becomes +-inf, one below it 0, where the
// kernels' k-order sum does) or in wrapping 64-bit integers, the sum rounded to the accumulator as
// the kernels hold it, then the epilogue and the conversion to the output dtype in Kiln's semantics
// (codegen/eval).
#pragma once

#include <cstddef>

#include "codegen/eval.hpp"
#include "codegen/families/contract.hpp"

namespace kiln {

class ContractCpuSum {
 public:
  explicit ContractCpuSum(const KernelSpec& spec);
  // Starts an output's sum.
  void begin() {
    f_ = 0;
    u_ = 0;
  }
  // Adds the product of the elements at |a| and |b| (storage of the spec's input dtypes 0 and 1).
  void add(const std::byte* a, const std::byte* b);
  // Stores the output at |out|: the epilogue over the sum and the elements at ext[e] (the spec's
  // input 2 + e), converted to the output dtype.
  void store(std::byte* out, const std::byte* const* ext);

 private:
  const KernelSpec& spec_;
  DType acc_;
  bool tf32_;
  Evaluator conv_a_, conv_b_, finish_;
  long double f_ = 0;
  std::uint64_t u_ = 0;
};

}  // namespace kiln
