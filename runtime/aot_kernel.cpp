#include "runtime/aot_kernel.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/api_header.hpp"
#include "codegen/eval.hpp"
#include "runtime/error.hpp"
#include "runtime/jit.hpp"
#include "runtime/ops.hpp"

namespace kiln {

AotKernel::AotKernel(const Registry& registry, const char* name, const char* canonical)
    : registry_(registry), name_(name), spec_(spec_from_canonical(canonical)) {
  if (spec_.name() != name_)
    fail(ErrorCode::internal, fmt::format("kernel {}: the spec text rebuilds {}; the generated header does not "
                                          "match its registry (rebuild it)", name_, spec_.name()));
}

Tensor AotKernel::run(const std::vector<Tensor>& operands, const Tensor* into) const {
  return map(registry_, spec_.expr, operands, spec_.output, into);
}

void AotKernel::launch(Stream& stream, const std::vector<const Buffer*>& inputs, Buffer& out, std::uint64_t n,
                       const std::vector<std::size_t>& offsets) const {
  const std::size_t k = spec_.inputs.size();
  if (inputs.size() != k)
    fail(ErrorCode::invalid_argument, fmt::format("{}: takes {} input buffers, got {}", name_, k, inputs.size()));
  if (!offsets.empty() && offsets.size() != k + 1)
    fail(ErrorCode::invalid_argument,
         fmt::format("{}: {} byte offsets given; give one per input and one for the output ({})", name_,
                     offsets.size(), k + 1));
  Device& device = stream.device();
  std::vector<std::uint64_t> address(k + 1);
  auto check = [&](const Buffer* b, std::size_t i, DType t, const char* what) {
    if (!b) fail(ErrorCode::invalid_argument, fmt::format("{}: {} {} is null", name_, what, i));
    if (&b->device() != &device)
      fail(ErrorCode::invalid_argument, fmt::format("{}: {} {} is on {}, the stream on {}", name_, what, i,
                                                    b->device().id(), device.id()));
    const std::size_t off = offsets.empty() ? 0 : offsets[i];
    const std::uint64_t need = n * dtype_size(t);
    if (off > b->size_bytes() || need > b->size_bytes() - off)
      fail(ErrorCode::invalid_argument,
           fmt::format("{}: {} {} holds {} bytes; {} elements of {} at offset {} need {}", name_, what, i,
                       b->size_bytes(), n, dtype_name(t), off, need));
    address[i] = b->device_address() + off;
  };
  for (std::size_t i = 0; i < k; ++i) check(inputs[i], i, spec_.inputs[i], "input");
  check(&out, k, spec_.output, "output");
  if (n == 0) return;

  if (device.backend() == Backend::cpu) {  // in order on the calling thread, like the CPU stream
    Evaluator ev(spec_.expr);
    std::vector<Scalar> in(k);
    const std::size_t osize = dtype_size(spec_.output);
    for (std::uint64_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < k; ++j)
        in[j] = load_scalar(spec_.inputs[j], reinterpret_cast<const std::byte*>(address[j]) + i * dtype_size(spec_.inputs[j]));
      store_scalar(spec_.output, reinterpret_cast<std::byte*>(address[k]) + i * osize, ev.eval(in.data()));
    }
    return;
  }
  const Registry* registry = &registry_;
  const KernelEntry* entry = registry_.find(name_);
  if (!entry) fail(ErrorCode::internal, fmt::format("{}: not in its registry (rebuild the kernels)", name_));
  if (!built_for(*entry, device.backend())) {  // the build left this target out: compile it now
    std::string why;
    const JitKernel jit = jit_kernel(device, spec_, &why);
    if (!jit.entry)
      fail(ErrorCode::unsupported, fmt::format("{} was not built for {} and cannot be compiled just in time: {}",
                                               name_, device.id(), why));
    registry = jit.registry;
    entry = jit.entry;
  }
  const Kernel& kernel = device.kernel(*registry, *entry, kMapContiguous);
  const std::uint64_t per_group = std::uint64_t(kernel.block_size()) * 4;
  Dim3 groups;
  groups.x = std::uint32_t(std::clamp<std::uint64_t>((n + per_group - 1) / per_group, 1, 65535));
  KilnMapParams p{};
  p.out = address[k];
  for (std::size_t j = 0; j < k; ++j) p.in[j] = address[j];
  p.n = n;
  stream.launch(kernel, groups, &p, sizeof p);
}

}  // namespace kiln
