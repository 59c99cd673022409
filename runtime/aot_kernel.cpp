#include "runtime/aot_kernel.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "codegen/api_header.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/reduce.hpp"
#include "runtime/rows.hpp"
#include "core/error.hpp"

namespace kiln {

AotKernel::AotKernel(const Registry& registry, const char* name, const char* canonical, const char* label)
    : registry_(registry), name_(name), label_(label ? label : name), spec_(spec_from_canonical(canonical)),
      entry_(registry.find(name_)) {
  if (spec_.name() != name_)
    fail(ErrorCode::internal, fmt::format("kernel {}: the spec text rebuilds {}; the generated header does not "
                                          "match its registry (rebuild it)", name_, spec_.name()));
}

Tensor AotKernel::run(const std::vector<Tensor>& operands, const Tensor* into) const {
  // Its own registry entry, never a rebuilt spec: the entry carries the manifest's block size and
  // binaries (a rebuilt spec with the default block size missed it and was compiled just in time).
  if (spec_.family != "map")
    fail(ErrorCode::invalid_argument, fmt::format("{}: a {} kernel; call it with its axes (AotKernel::reduce)", label_,
                                                  spec_.family));
  return run_map_kernel(label_, spec_, &name_, operands, into, &registry_, entry_);
}

Tensor AotKernel::reduce(const std::vector<Tensor>& operands, const std::vector<int>& axes, bool keep_axes,
                         const Tensor* into) const {
  if (spec_.family != "reduce")
    fail(ErrorCode::invalid_argument, fmt::format("{}: a {} kernel, not a reduction", label_, spec_.family));
  return run_reduce_kernel(label_, spec_, &name_, operands, axes, keep_axes, into, &registry_, entry_);
}

Tensor AotKernel::rows(const std::vector<Tensor>& operands, const RowsCall& call, const Tensor* into) const {
  if (spec_.family != "rows")
    fail(ErrorCode::invalid_argument, fmt::format("{}: a {} kernel, not a row op", label_, spec_.family));
  return run_rows_kernel(label_, spec_, &name_, operands, call, into, &registry_, entry_);
}

void AotKernel::launch(Stream& stream, const std::vector<const Buffer*>& inputs, Buffer& out, std::uint64_t n,
                       const std::vector<std::size_t>& offsets) const {
  if (spec_.family != "map")
    fail(ErrorCode::invalid_argument, fmt::format("{}: {} kernels have no raw-buffer form", label_, spec_.family));
  const std::size_t k = spec_.inputs.size();
  if (inputs.size() != k)
    fail(ErrorCode::invalid_argument, fmt::format("{}: takes {} input buffers, got {}", label_, k, inputs.size()));
  if (!offsets.empty() && offsets.size() != k + 1)
    fail(ErrorCode::invalid_argument,
         fmt::format("{}: {} byte offsets given; give one per input and one for the output ({})", label_,
                     offsets.size(), k + 1));
  Device& device = stream.device();
  std::vector<std::uint64_t> address(k + 1);
  auto check = [&](const Buffer* b, std::size_t i, DType t, bool output) {
    const std::string which = output ? std::string("the output") : fmt::format("input {}", i);
    if (!b) fail(ErrorCode::invalid_argument, fmt::format("{}: {} is null", label_, which));
    if (&b->device() != &device)
      fail(ErrorCode::invalid_argument, fmt::format("{}: {} is on {}, the stream on {}", label_, which, b->device().id(), device.id()));
    const std::size_t off = offsets.empty() ? 0 : offsets[i];
    const std::size_t es = dtype_size(t);
    // A misaligned element is a fault on a GPU (CUDA: sticky, the context is lost).
    if ((b->device_address() + off) % es != 0)
      fail(ErrorCode::invalid_argument,
           fmt::format("{}: {} at byte offset {} (address {:#x}) is not aligned to {}'s {} bytes", label_, which, off,
                       b->device_address() + off, dtype_name(t), es));
    const std::uint64_t need = n > ~std::uint64_t(0) / es ? ~std::uint64_t(0) : n * es;
    if (off > b->size_bytes() || need > b->size_bytes() - off)
      fail(ErrorCode::invalid_argument,
           fmt::format("{}: {} holds {} bytes; {} elements of {} at offset {} need {}", label_, which, b->size_bytes(), n,
                       dtype_name(t), off, need));
    address[i] = b->device_address() + off;
  };
  for (std::size_t i = 0; i < k; ++i) check(inputs[i], i, spec_.inputs[i], false);
  check(&out, k, spec_.output, true);
  if (n == 0) return;

  // One dimension of n elements, every operand dense: the family's contiguous plan.
  const std::array<std::int64_t, 1> shape{std::int64_t(n)}, unit{1};
  std::vector<PlanOperand> ops;
  for (std::size_t i = 0; i < k; ++i) ops.push_back({address[i], unit});
  const Family& family = family_of(spec_);
  if (device.backend() == Backend::cpu) {  // in order on the calling thread, like the CPU stream
    family.run_cpu(spec_, {shape, ops, address[k], {}, spec_.block_size});
    return;
  }
  if (!entry_) fail(ErrorCode::internal, fmt::format("{}: {} is not in its registry (rebuild the kernels)", label_, name_));
  std::string why;
  const LaunchPlan plan = family.plan(spec_, {shape, ops, address[k], {}, entry_->block_size}, &why);
  if (plan.function < 0) fail(ErrorCode::unsupported, fmt::format("{}: {}", label_, why));
  const KernelRef ref = resolve_entry(device, spec_, registry_, *entry_, &why, functions_of(plan));
  if (!ref)
    fail(ErrorCode::unsupported, fmt::format("{}: {} was not built for {} and cannot be compiled just in time: {}", label_, name_,
                                             device.id(), why));
  kiln::launch(stream, ref, plan);
}

}  // namespace kiln
