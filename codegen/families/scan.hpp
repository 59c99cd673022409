// The scan family's vocabulary, shared by its descriptor (scan.cpp), manifests and the tensor API
// (runtime/scan.cpp): the cumulative ops with Nx's names and the spec builder.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "codegen/families/reduce.hpp"
#include "codegen/spec.hpp"

namespace kiln {

struct ScanOpInfo {
  Combiner combiner;      // sum, product, max or min
  std::string_view name;  // Nx's function and the manifest's `op = ...`: cumulative_sum, ...
  std::string_view formula;
};

std::span<const ScanOpInfo> scan_op_table();
// By Nx name ("cumulative_sum") or combiner name ("sum").
std::optional<Combiner> find_scan_op(std::string_view name);
const ScanOpInfo& scan_op_info(Combiner c);  // c: sum, product, max or min

// A scan kernel: the inclusive running |c| of x along one axis, in x's dtype (as Nx: integers
// wrap around, floats keep their dtype; f16/bf16 accumulate in f32 and round each output once;
// max/min propagate NaN). pred takes cumulative_max/min only. The direction (reverse) is a launch
// option, not part of the kernel. Throws dtype_mismatch for a dtype |c| does not take.
KernelSpec make_scan_spec(Combiner c, DType x);
Combiner spec_scan_combiner(const KernelSpec& spec);
// The dtype a scan of |x| with |c| accumulates in: f32 for f16/bf16, x's otherwise.
DType scan_accumulator_dtype(Combiner c, DType x);

}  // namespace kiln
