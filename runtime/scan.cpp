// Cumulative ops: the axis and the output checked (errors name the op, shape, axis, dtype and
// device), then the scan family's kernel through the one dispatch path (runtime/dispatch.cpp).
#include "runtime/scan.hpp"

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "core/error.hpp"
#include "runtime/dispatch.hpp"

namespace kiln {

Tensor run_scan_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                       const std::vector<Tensor>& inputs, const ScanCall& call, const Tensor* into,
                       const Registry* first, const KernelEntry* entry) {
  check_operands(op, inputs);
  if (inputs.size() != 1)
    fail_op(ErrorCode::invalid_argument, op, inputs, fmt::format("a scan takes one operand, got {}", inputs.size()));
  const Tensor& x = inputs[0];
  if (x.dtype() != spec.inputs[0])
    fail_op(ErrorCode::dtype_mismatch, op, inputs,
            fmt::format("x is {}; the kernel takes {}", dtype_name(x.dtype()), dtype_name(spec.inputs[0])));
  const int rank = x.rank(), axis = call.axis;
  if (rank == 0) fail_op(ErrorCode::invalid_argument, op, inputs, "a scalar has no axis to scan along");
  if (axis < -rank || axis >= rank)
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("axis {} is out of range for rank {} (valid: {}..{})", axis, rank, -rank, rank - 1));
  const int a = axis < 0 ? axis + rank : axis;
  Device& device = x.device();
  Tensor out = result_tensor(op, inputs, into, x.shape(), spec.output, device, Overlap::in_place,
                             fmt::format("along axis {}", axis));
  if (x.numel() == 0) return out;
  // Past rank 7 on a GPU the dimensions beside the axis may not merge into the kernels' 6: x is
  // copied dense first (one extra pass), after which they do.
  std::vector<Tensor> ins = inputs;
  if (device.backend() != Backend::cpu && rank > kMaxMapRank + 1 && !x.is_contiguous()) ins[0] = x.contiguous();
  const std::vector<PlanOperand> ops = plan_operands(ins);
  const int axes[1] = {a};
  PlanRequest request{x.shape(), ops, out.address(), axes, spec.block_size};
  const LaunchOption options[] = {{"reverse", call.reverse ? 1.0 : 0.0}};
  request.options = options;
  run_plan(op, spec, name, ins, device, request, first, entry);
  return out;
}

namespace {

Tensor scan(Combiner c, const Tensor& x, const ScanCall& call, const Tensor* into) {
  const std::string_view name = scan_op_info(c).name;
  check_operands(name, {x});
  KernelSpec spec;
  try {
    spec = make_scan_spec(c, x.dtype());
  } catch (const Error& err) {
    fail_op(err.code(), name, {x}, err.what());
  }
  return run_scan_kernel(name, spec, nullptr, {x}, call, into, nullptr);
}

}  // namespace

Tensor cumulative_sum(const Tensor& x, const ScanCall& call, const Tensor* into) {
  return scan(Combiner::sum, x, call, into);
}
Tensor cumulative_product(const Tensor& x, const ScanCall& call, const Tensor* into) {
  return scan(Combiner::product, x, call, into);
}
Tensor cumulative_max(const Tensor& x, const ScanCall& call, const Tensor* into) {
  return scan(Combiner::max, x, call, into);
}
Tensor cumulative_min(const Tensor& x, const ScanCall& call, const Tensor* into) {
  return scan(Combiner::min, x, call, into);
}

}  // namespace kiln
