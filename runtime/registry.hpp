// The kernel registry: kernels compiled at build time (AOT) and embedded in the binary.
// kilnc writes the registry source for a manifest; the runtime looks kernels up by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace kiln {

struct EmbeddedBlob {
  const unsigned char* data = nullptr;
  std::size_t size = 0;
  bool empty() const { return size == 0; }
};

// One entry point of a kernel. For CUDA, |symbol| is the extern "C" function inside the kernel's
// fatbin image; for Vulkan, |spirv| is a module whose entry point is "main".
struct KernelFunction {
  const char* symbol;
  EmbeddedBlob spirv;
  std::uint32_t params_bytes = 0;  // the size of the params block it takes (0: not recorded)
};

// Map kernels have two functions: kMapContiguous and kMapStrided.
inline constexpr int kMapContiguous = 0;
inline constexpr int kMapStrided = 1;

struct KernelEntry {
  const char* name;    // e.g. map_f32f32_f32_3a9c1e07
  const char* spec;    // canonical spec text, see codegen/spec.hpp
  int cuda_image;      // index into Registry::cuda_images, or -1 when not built for CUDA
  int num_functions;
  const KernelFunction* functions;
  int block_size;      // threads per CUDA block = Vulkan workgroup size (specialization constant 0)
  const char* family = nullptr;  // the spec's family ("map"); null in registries from before it was recorded
};

struct Registry {
  std::span<const KernelEntry> kernels;      // sorted by name
  std::span<const EmbeddedBlob> cuda_images;  // fatbins
  // nullptr when |name| is absent.
  const KernelEntry* find(std::string_view name) const;
};

// The registry of the built-in kernel library (kernels/builtin.toml), generated at build time.
const Registry& builtin_registry();

}  // namespace kiln
