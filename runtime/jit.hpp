// Just-in-time kernels: specs that are not in the built-in registry are emitted and compiled at run
// time (Vulkan: shaderc to SPIR-V; CUDA: NVRTC to a cubin for the device's arch), then cached for
// the life of the process, keyed by device and spec name.
// Thread-safety: jit_kernel may be called from any thread; concurrent calls for one spec compile once.
#pragma once

#include <string>

#include "codegen/spec.hpp"
#include "runtime/device.hpp"

namespace kiln {

struct JitKernel {
  const Registry* registry = nullptr;  // a one-kernel registry owned by the JIT cache
  const KernelEntry* entry = nullptr;  // nullptr when the spec cannot be compiled; see |why|
};

JitKernel jit_kernel(Device& device, const KernelSpec& spec, std::string* why);

}  // namespace kiln
