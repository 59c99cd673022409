// Just-in-time kernels: specs that are not in the built-in registry are emitted and compiled at run
// time (Vulkan: shaderc to SPIR-V; CUDA: NVRTC to a cubin for the device's arch), then cached for
// the life of the process, keyed by device and spec name.
// Thread-safety: jit_kernel may be called from any thread; concurrent calls for one spec compile once.
#pragma once

#include <cstdint>
#include <string>

#include "codegen/spec.hpp"
#include "runtime/device.hpp"

namespace kiln {

struct JitKernel {
  const Registry* registry = nullptr;  // a one-kernel registry owned by the JIT cache
  const KernelEntry* entry = nullptr;  // nullptr when the spec cannot be compiled; see |why|
};

// |name|, when given, is spec.name() already computed by the caller (the cache key).
JitKernel jit_kernel(Device& device, const KernelSpec& spec, std::string* why, const std::string* name = nullptr);

// How many kernels this process has compiled just in time (on any device), for tests and tools
// that check a kernel came from a registry.
std::uint64_t jit_compile_count();

}  // namespace kiln
