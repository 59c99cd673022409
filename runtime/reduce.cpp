// Reductions: the axes and the result shape (Nx rules), then the reduce family's kernel through the
// one dispatch path (runtime/dispatch.cpp).
#include "runtime/reduce.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"
#include "runtime/dispatch.hpp"

namespace kiln {

namespace {

std::string axes_text(const std::vector<int>& axes) {
  if (axes.empty()) return "all axes";
  std::string s = "axes [";
  for (std::size_t i = 0; i < axes.size(); ++i) s += fmt::format("{}{}", i ? "," : "", axes[i]);
  return s + "]";
}

// The reduced axes of a rank-|rank| shape, normalized (negative from the back), sorted; errors
// for out-of-range and repeated axes name the op, the axes and the operands.
std::vector<int> normalize_axes(std::string_view op, const std::vector<int>& axes, int rank,
                                const std::vector<Tensor>& operands) {
  std::vector<int> out;
  if (axes.empty()) {
    for (int d = 0; d < rank; ++d) out.push_back(d);
    return out;
  }
  for (int a : axes) {
    if (a < -rank || a >= rank)
      fail_op(ErrorCode::invalid_argument, op, operands,
              fmt::format("axis {} is out of range for rank {} (valid: {}..{}) in {}", a, rank, -rank, rank - 1,
                          axes_text(axes)));
    const int n = a < 0 ? a + rank : a;
    if (std::find(out.begin(), out.end(), n) != out.end())
      fail_op(ErrorCode::invalid_argument, op, operands, fmt::format("axis {} is repeated in {}", a, axes_text(axes)));
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Tensor simple(Combiner c, const Tensor& x, const std::vector<int>& axes, bool keep_axes, TieBreak tie,
              const Tensor* into) {
  const std::string_view op = combiner_info(c).op;
  check_operands(op, {x});
  Expr e;
  e.set_root(e.input(0, x.dtype()));
  KernelSpec spec;
  try {
    spec = make_reduce_spec(c, e, nullptr, std::nullopt, tie == TieBreak::high);
  } catch (const Error& err) {
    fail_op(err.code(), op, {x}, err.what());
  }
  return run_reduce_kernel(op, spec, nullptr, {x}, axes, keep_axes, into, nullptr);
}

}  // namespace

Tensor run_reduce_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                         const std::vector<Tensor>& inputs, const std::vector<int>& axes, bool keep_axes,
                         const Tensor* into, const Registry* first, const KernelEntry* entry) {
  const Shape shape = check_spec_operands(op, spec, inputs);
  const int rank = int(shape.size());
  const std::vector<int> reduced = normalize_axes(op, axes, rank, inputs);
  Shape out_shape;
  std::int64_t n_red = 1, n_out = 1;
  for (int d = 0; d < rank; ++d) {
    const bool red = std::binary_search(reduced.begin(), reduced.end(), d);
    (red ? n_red : n_out) *= shape[std::size_t(d)];
    if (!red) out_shape.push_back(shape[std::size_t(d)]);
    else if (keep_axes) out_shape.push_back(1);
  }
  if (is_arg_combiner(spec_combiner(spec)) && n_red == 0 && n_out > 0)
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("{} over an empty axis ({} of shape {}) has no index to return", op, axes_text(axes),
                        shape_text(shape)));
  Device& device = inputs.empty() ? default_device() : inputs[0].device();
  Tensor out = result_tensor(op, inputs, into, out_shape, spec.output, device, Overlap::none,
                             fmt::format("of the reduction over {}", axes_text(axes)));
  if (out.numel() == 0) return out;
  std::vector<Tensor> views;
  for (const Tensor& t : inputs) views.push_back(t.broadcast_to(shape));
  const auto ops = plan_operands(views);
  run_plan(op, spec, name, inputs, device, {shape, ops, out.address(), reduced, spec.block_size}, first, entry);
  return out;
}

Tensor reduce(Combiner c, const Expr& prologue, const std::vector<Tensor>& inputs, const ReduceOptions& o,
              const Tensor* into) {
  const std::string_view op = "reduce";
  check_operands(op, inputs);
  if (int(inputs.size()) != prologue.num_inputs())
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("the prologue takes {} inputs, got {}", prologue.num_inputs(), inputs.size()));
  KernelSpec spec;
  try {
    spec = make_reduce_spec(c, prologue, o.epilogue, o.out, o.tie == TieBreak::high);
  } catch (const Error& err) {
    fail_op(err.code(), op, inputs, fmt::format("{}: {}", combiner_info(c).op, err.what()));
  }
  return run_reduce_kernel(op, spec, nullptr, inputs, o.axes, o.keep_axes, into, o.registry);
}

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keep_axes, const Tensor* into) {
  return simple(Combiner::sum, x, axes, keep_axes, TieBreak::low, into);
}
Tensor product(const Tensor& x, const std::vector<int>& axes, bool keep_axes, const Tensor* into) {
  return simple(Combiner::product, x, axes, keep_axes, TieBreak::low, into);
}
Tensor reduce_max(const Tensor& x, const std::vector<int>& axes, bool keep_axes, const Tensor* into) {
  return simple(Combiner::max, x, axes, keep_axes, TieBreak::low, into);
}
Tensor reduce_min(const Tensor& x, const std::vector<int>& axes, bool keep_axes, const Tensor* into) {
  return simple(Combiner::min, x, axes, keep_axes, TieBreak::low, into);
}
Tensor all(const Tensor& x, const std::vector<int>& axes, bool keep_axes, const Tensor* into) {
  return simple(Combiner::all, x, axes, keep_axes, TieBreak::low, into);
}
Tensor any(const Tensor& x, const std::vector<int>& axes, bool keep_axes, const Tensor* into) {
  return simple(Combiner::any, x, axes, keep_axes, TieBreak::low, into);
}
Tensor argmax(const Tensor& x, std::optional<int> axis, bool keep_axis, TieBreak tie, const Tensor* into) {
  return simple(Combiner::argmax, x, axis ? std::vector<int>{*axis} : std::vector<int>{}, keep_axis, tie, into);
}
Tensor argmin(const Tensor& x, std::optional<int> axis, bool keep_axis, TieBreak tie, const Tensor* into) {
  return simple(Combiner::argmin, x, axis ? std::vector<int>{*axis} : std::vector<int>{}, keep_axis, tie, into);
}

}  // namespace kiln
