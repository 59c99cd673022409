// Just-in-time kernels: specs that are not in the built-in registry are emitted and compiled at run
// time (Vulkan: shaderc to SPIR-V; CUDA: NVRTC to a cubin for the device's arch), then cached in
// memory for the life of the process (by device and spec name) and on disk under
// cache_dir("jit") (core/disk_cache.hpp; by the XXH64 of the target, device arch, compiler and
// Kiln versions and the emitted sources; format in runtime/jit_cache_file.hpp), so a second process
// loads a kernel instead of compiling it. KILN_JIT_DISK_CACHE=0 keeps the cache in memory only.
// Thread-safety: jit_kernel may be called from any thread; concurrent calls for one spec compile once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "codegen/emit.hpp"
#include "codegen/spec.hpp"
#include "runtime/device.hpp"

namespace kiln {

struct JitKernel {
  const Registry* registry = nullptr;  // a one-kernel registry owned by the JIT cache
  const KernelEntry* entry = nullptr;  // nullptr when the spec cannot be compiled; see |why|
};

// |name|, when given, is spec.name() already computed by the caller (the cache key), |canonical|
// spec.canonical(): a slot whose kernel has another spec (two specs share a 32-bit name) is not
// taken; the spec gets a slot of its own. Only the
// entry points in |functions| are compiled (a launch's plan names the ones it uses: a contiguous
// map never compiles its strided loop); the entry's other functions have no symbol. A later call
// asking for another set compiles every function (under a cache slot of its own).
JitKernel jit_kernel(Device& device, const KernelSpec& spec, std::string* why, const std::string* name = nullptr,
                     FunctionSet functions = kAllFunctions, const std::string* canonical = nullptr);

// GLSL compute shader |source| to SPIR-V as the JIT compiles it (shaderc, Vulkan 1.3; KILN_SUBGROUP=0
// without |subgroup_arithmetic|), with the process's one shaderc compiler: its set-up, most of a
// small compile, is paid once (shaderc's compile may be called from several threads at once).
// Throws compile_error with shaderc's messages.
std::vector<unsigned char> compile_glsl_spirv(const std::string& source, const std::string& name,
                                              bool subgroup_arithmetic = true);

// CUDA C++ |source| (an emitted instantiation unit) to a cubin for |arch| ("sm_90") with NVRTC as
// the JIT compiles it (loaded at run time; unsupported when absent): --fmad=false -std=c++17, and
// -minimal where NVRTC has it (12.4+). |fast_compile| adds -Ofc=min (NVRTC 12.8+) unless
// KILN_JIT_FAST_COMPILE=0: the JIT asks for it for families marked jit_fast_compile. Throws
// compile_error with NVRTC's log.
std::vector<unsigned char> compile_cuda_cubin(const std::string& source, const std::string& name, const std::string& arch,
                                              bool fast_compile = false);
// The NVRTC options compile_cuda_cubin passes (part of the JIT disk cache's key); empty without NVRTC.
std::vector<std::string> nvrtc_options(const std::string& arch, bool fast_compile);

// Drops |device|'s just-in-time kernels (Device's destructor).
void forget_jit_kernels(const Device& device);

// How many kernels this process has compiled just in time (on any device), for tests and tools
// that check a kernel came from a registry.
std::uint64_t jit_compile_count();
// How many just-in-time kernels this process loaded from the disk cache instead of compiling.
std::uint64_t jit_disk_cache_hits();

}  // namespace kiln
