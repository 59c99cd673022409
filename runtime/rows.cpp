// Row-wise ops: the axis, the affine inputs and the output checked (errors name the op, shapes,
// axis, dtypes and device), then the rows family's kernel through the one dispatch path
// (runtime/dispatch.cpp).
#include "runtime/rows.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "core/error.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/ops.hpp"

namespace kiln {

Tensor run_rows_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                       const std::vector<Tensor>& inputs, const RowsCall& call, const Tensor* into,
                       const Registry* first, const KernelEntry* entry, Tensor* residual) {
  const int axis = call.axis;
  const double eps = call.eps;
  check_operands(op, inputs);
  if (inputs.size() != spec.inputs.size())
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("the kernel takes {} operands, got {}", spec.inputs.size(), inputs.size()));
  const RowsLayout lay = rows_layout(spec);
  for (std::size_t k = 0; k < inputs.size(); ++k)
    if (inputs[k].dtype() != spec.inputs[k])
      fail_op(ErrorCode::dtype_mismatch, op, inputs,
              fmt::format("operand {} is {}; {} of {} takes {} operands", k, dtype_name(inputs[k].dtype()),
                          spec.attribute("op"), dtype_name(lay.x), dtype_name(spec.inputs[k])));
  // x's shape: the prologue's operands broadcast together (x itself without a prologue).
  std::vector<Shape> pro_shapes;
  for (int k = 0; k < lay.prologue; ++k) pro_shapes.push_back(inputs[std::size_t(k)].shape());
  const std::optional<Shape> xs = broadcast_shapes(pro_shapes);
  if (!xs) fail_op(ErrorCode::invalid_argument, op, inputs, "the prologue's operands do not broadcast together");
  const Shape& x_shape = *xs;
  const int rank = int(x_shape.size());
  if (rank == 0) fail_op(ErrorCode::invalid_argument, op, inputs, "a scalar has no axis to work along");
  if (axis < -rank || axis >= rank)
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("axis {} is out of range for rank {} (valid: {}..{})", axis, rank, -rank, rank - 1));
  const int a = axis < 0 ? axis + rank : axis;
  const std::int64_t n = x_shape[std::size_t(a)];
  const RowsBias bias = spec_rows_bias(spec);
  const bool causal = spec.attribute("causal") == "true";
  if (causal && (a != rank - 1 || rank < 2))
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("a causal mask works along the last axis of a tensor of rank 2 or more, not axis {} of rank {}",
                        axis, rank));
  if (!std::isfinite(call.scale))
    fail_op(ErrorCode::invalid_argument, op, inputs, fmt::format("scale must be finite, got {}", call.scale));
  const std::size_t p0 = std::size_t(lay.prologue), e0 = p0 + std::size_t(lay.params);
  if (bias != RowsBias::none && broadcast_shapes({inputs[p0].shape(), x_shape}) != std::optional<Shape>(x_shape))
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("the {} {} does not broadcast to x's shape {}", bias == RowsBias::add ? "bias" : "mask",
                        shape_text(inputs[p0].shape()), shape_text(x_shape)));
  for (std::size_t k = p0; k < e0 && bias == RowsBias::none; ++k)
    if (inputs[k].rank() != 1 || inputs[k].shape()[0] != n)
      fail_op(ErrorCode::invalid_argument, op, inputs,
              fmt::format("{} must be 1-D of the length of axis {} ({}), got {}", k == p0 ? "gamma" : "beta", axis, n,
                          shape_text(inputs[k].shape())));
  for (std::size_t k = e0; k < inputs.size(); ++k)
    if (broadcast_shapes({inputs[k].shape(), x_shape}) != std::optional<Shape>(x_shape))
      fail_op(ErrorCode::invalid_argument, op, inputs,
              fmt::format("the epilogue's operand {} {} does not broadcast to x's shape {}", k,
                          shape_text(inputs[k].shape()), shape_text(x_shape)));
  const bool norm = spec_rows_op(spec) == RowsOp::layer_norm || spec_rows_op(spec) == RowsOp::rms_norm;
  if (norm && !(eps > 0 && std::isfinite(eps)))
    fail_op(ErrorCode::invalid_argument, op, inputs, fmt::format("eps must be finite and > 0, got {}", eps));
  // The kernels compute in f32 unless x is f64, eps and scale included: eps must not round to 0 (or
  // a subnormal a device may flush: rsqrt(0) of a constant row), scale not to inf.
  if (lay.x != DType::f64) {
    if (norm && (eps < double(std::numeric_limits<float>::min()) || eps > double(std::numeric_limits<float>::max())))
      fail_op(ErrorCode::invalid_argument, op, inputs,
              fmt::format("eps {} is {}: the kernel computes in f32 for {} x", eps,
                          eps < 1 ? fmt::format("below the smallest normal f32 ({})", std::numeric_limits<float>::min())
                                  : "beyond the range of f32",
                          dtype_name(lay.x)));
    if (std::fabs(call.scale) > double(std::numeric_limits<float>::max()))
      fail_op(ErrorCode::invalid_argument, op, inputs,
              fmt::format("scale {} is beyond the range of f32: the kernel computes in f32 for {} x", call.scale,
                          dtype_name(lay.x)));
  }
  Shape out_shape = x_shape;
  if (!rows_op_info(spec_rows_op(spec)).keeps_axis) {
    if (call.keep_axis) out_shape[std::size_t(a)] = 1;
    else out_shape.erase(out_shape.begin() + a);
  }
  Device& device = inputs[0].device();
  // In place only where the result has x's shape: an operand of the output's shape is then not
  // broadcast (logsumexp's [n] output may equal a prologue operand broadcast over every row).
  const bool keeps_shape = out_shape == x_shape;
  Tensor out = result_tensor(op, inputs, into, out_shape, spec.output, device,
                             keeps_shape ? Overlap::in_place : Overlap::none, fmt::format("along axis {}", axis));
  Tensor h;
  if (lay.residual) h = Tensor::empty(x_shape, lay.x, device);
  if (residual) *residual = h;
  if (shape_numel(x_shape) == 0 && out.numel() == 0) return out;
  // Past rank 7 on a GPU the dimensions beside the axis may not merge into the kernels' 6: the
  // operands read over x's shape are copied dense first (one extra pass each), after which they do.
  std::vector<Tensor> ins = inputs;
  if (device.backend() != Backend::cpu && rank > kMaxMapRank + 1)
    for (std::size_t k = 0; k < ins.size(); ++k)
      if (!(k >= p0 && k < e0 && bias == RowsBias::none))
        if (const Tensor v = ins[k].broadcast_to(x_shape); !v.is_contiguous()) ins[k] = v.contiguous();
  // The prologue's and epilogue's operands broadcast to x's shape; gamma and beta along the axis
  // (stride 0 elsewhere); a bias broadcast.
  std::vector<Shape> strides(ins.size(), Shape(std::size_t(rank), 0));
  std::vector<PlanOperand> ops;
  for (std::size_t k = 0; k < ins.size(); ++k) {
    if (k >= p0 && k < e0 && bias == RowsBias::none) strides[k][std::size_t(a)] = ins[k].strides()[0];
    else strides[k] = ins[k].broadcast_to(x_shape).strides();
    ops.push_back({ins[k].address(), std::span<const std::int64_t>(strides[k])});
  }
  const int axes[1] = {a};
  PlanRequest request{x_shape, ops, out.address(), axes, spec.block_size};
  const LaunchOption options[] = {{"eps", eps}, {"scale", call.scale}};
  request.options = options;
  const std::uint64_t more[1] = {lay.residual ? h.address() : 0};
  if (lay.residual) request.more_outputs = more;
  run_plan(op, spec, name, ins, device, request, first, entry);
  return out;
}

namespace {

Tensor simple(RowsOp op, const std::vector<Tensor>& inputs, const RowsCall& call, const Tensor* into,
              const SoftmaxOptions& o = {}) {
  const std::string_view name = rows_op_info(op).name;
  check_operands(name, inputs);
  RowsBias bias = RowsBias::none;
  if (o.bias) {
    if (o.bias->dtype() == DType::pred) bias = RowsBias::mask;
    else if (o.bias->dtype() == inputs[0].dtype()) bias = RowsBias::add;
    else
      fail_op(ErrorCode::dtype_mismatch, name, inputs,
              fmt::format("the bias is {}; it must be x's dtype ({}) or a pred mask", dtype_name(o.bias->dtype()),
                          dtype_name(inputs[0].dtype())));
  }
  KernelSpec spec;
  try {
    spec = make_rows_spec(op, inputs[0].dtype(), o.bias ? 0 : int(inputs.size()) - 1, bias, o.causal);
  } catch (const Error& err) {
    fail_op(err.code(), name, inputs, err.what());
  }
  return run_rows_kernel(name, spec, nullptr, inputs, call, into, nullptr);
}

Tensor softmax_like(RowsOp op, const Tensor& x, int axis, const SoftmaxOptions& o, const Tensor* into) {
  std::vector<Tensor> inputs{x};
  if (o.bias) inputs.push_back(*o.bias);
  return simple(op, inputs, {axis, false, 0, o.scale}, into, o);
}

std::vector<Tensor> affine(const Tensor& x, const Tensor* gamma, const Tensor* beta, std::string_view op) {
  std::vector<Tensor> v{x};
  if (beta && !gamma)
    fail_op(ErrorCode::invalid_argument, op, {x, *beta}, "beta without gamma (pass a gamma of ones)");
  if (gamma) v.push_back(*gamma);
  if (beta) v.push_back(*beta);
  return v;
}

}  // namespace

Tensor softmax(const Tensor& x, int axis, const Tensor* into) { return softmax_like(RowsOp::softmax, x, axis, {}, into); }
Tensor log_softmax(const Tensor& x, int axis, const Tensor* into) {
  return softmax_like(RowsOp::log_softmax, x, axis, {}, into);
}
Tensor softmax(const Tensor& x, int axis, const SoftmaxOptions& options, const Tensor* into) {
  return softmax_like(RowsOp::softmax, x, axis, options, into);
}
Tensor log_softmax(const Tensor& x, int axis, const SoftmaxOptions& options, const Tensor* into) {
  return softmax_like(RowsOp::log_softmax, x, axis, options, into);
}
Tensor logsumexp(const Tensor& x, int axis, bool keep_axis, const Tensor* into) {
  return simple(RowsOp::logsumexp, {x}, {axis, keep_axis, 0, 1}, into);
}
Tensor layer_norm(const Tensor& x, const Tensor* gamma, const Tensor* beta, double eps, int axis, const Tensor* into) {
  return simple(RowsOp::layer_norm, affine(x, gamma, beta, "layer_norm"), {axis, false, eps, 1}, into);
}
Tensor rms_norm(const Tensor& x, const Tensor* gamma, double eps, int axis, const Tensor* into) {
  return simple(RowsOp::rms_norm, affine(x, gamma, nullptr, "rms_norm"), {axis, false, eps, 1}, into);
}

std::vector<Tensor> fused_rows(RowsOp op, const std::vector<Tensor>& operands, const std::vector<Tensor>& params,
                               const RowsFusion& fusion, const std::vector<Tensor>& epilogue_operands,
                               const RowsCall& call) {
  const std::string_view name = rows_op_info(op).name;
  std::vector<Tensor> inputs = operands;
  inputs.insert(inputs.end(), params.begin(), params.end());
  inputs.insert(inputs.end(), epilogue_operands.begin(), epilogue_operands.end());
  check_operands(name, inputs);
  if (operands.empty())
    fail_op(ErrorCode::invalid_argument, name, inputs,
            "no operands for x: fused_rows needs x, or the prologue's operands, in its first argument");
  const DType x = fusion.prologue.nodes().empty() ? operands[0].dtype() : fusion.prologue.dtype(fusion.prologue.root());
  if (!fusion.prologue.nodes().empty() && fusion.prologue.input_dtypes().size() != operands.size())
    fail_op(ErrorCode::invalid_argument, name, inputs,
            fmt::format("the prologue takes {} operands, got {}", fusion.prologue.input_dtypes().size(), operands.size()));
  if (fusion.prologue.nodes().empty() && operands.size() != 1)
    fail_op(ErrorCode::invalid_argument, name, inputs, fmt::format("{} operands for x without a prologue", operands.size()));
  const bool masks = op == RowsOp::softmax || op == RowsOp::log_softmax;
  RowsBias bias = RowsBias::none;
  if (masks && params.size() == 1) bias = params[0].dtype() == DType::pred ? RowsBias::mask : RowsBias::add;
  KernelSpec spec;
  try {
    spec = make_rows_spec(op, x, bias == RowsBias::none ? int(params.size()) : 0, bias, false, &fusion);
  } catch (const Error& err) {
    fail_op(err.code(), name, inputs, err.what());
  }
  Tensor h;
  Tensor y = run_rows_kernel(name, spec, nullptr, inputs, call, nullptr, nullptr, nullptr, &h);
  if (fusion.residual) return {y, h};
  return {y};
}

}  // namespace kiln
