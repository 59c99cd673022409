// Devices: enumeration, selection and the per-device factory of buffers, streams and kernels.
// Devices live in a process-wide list for the life of the process (children die before parents).
// Thread-safety: every Device method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.hpp"
#include "runtime/buffer.hpp"
#include "runtime/kernel.hpp"
#include "runtime/registry.hpp"
#include "runtime/stream.hpp"

namespace kiln {

enum class Backend { cpu, vulkan, cuda };
std::string_view backend_name(Backend b);

struct DeviceInfo {
  Backend backend = Backend::cpu;
  int index = 0;                 // among devices of the same backend
  std::string name;              // e.g. "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::uint64_t memory_bytes = 0;
  std::string arch;              // "sm_90", "vulkan 1.3 cpu", "x86_64"
  std::string driver;            // driver version text
  std::uint32_t subgroup_size = 1;
  // Kernels may combine values with subgroup (warp) arithmetic: always on CUDA; on Vulkan where
  // the device's compute subgroups support it (KILN_VK_NO_SUBGROUP_ARITHMETIC=1 turns it off).
  // Kernels built with it are recompiled just in time without it for a device that lacks it.
  bool subgroup_arithmetic = false;
  std::vector<DType> dtypes;     // dtypes the device's kernels can load, store and compute
  std::uint64_t max_allocation_bytes = 0;
  // The loop iterations (over every loop, in all) after which the driver ends a shader
  // invocation's loops, silently: 65535 on lavapipe (llvmpipe's loop limiter); 0 where there is no
  // such limit. A launch whose plan may loop longer (LaunchPlan::loop_iterations: a row of
  // millions of elements, a contraction over a K of millions) is refused with that reason.
  std::uint64_t loop_limit = 0;
  // Vulkan: the cooperative-matrix fragment (A: m x k and B: k x n of f16, C: m x n of f32, one
  // subgroup of 32) Kiln's f16 contractions use, chosen at device creation among the shapes the
  // device reports (VK_NV_cooperative_matrix, enabled then); m = 0 where there is none, or with
  // KILN_COOPMAT=0. |matrix_shapes|: every f16 x f16 + f32 subgroup shape reported ("16x8x16 ...").
  struct MatrixShape {
    int m = 0, n = 0, k = 0;
  } cooperative_matrix;
  std::string matrix_shapes;
};

class Stream;
struct TensorMapRequest;  // codegen/family.hpp

// A batched row-major product out[b] = a[b] x b[b] for a backend's vendor library (runtime/contract.cpp
// offers it before launching Kiln's kernel): one dtype for a, b and out; element strides; the
// output dense [batch, m, n]; a batch stride of 0 repeats the operand.
struct LibraryGemm {
  DType dtype = DType::f32;  // a's and b's
  DType out_dtype = DType::f32;  // dtype, or s32 for s8 operands (integer tensor cores: exact sums)
  bool tf32 = false;  // f32: TF32 products allowed (precision tf32)
  std::int64_t m = 0, n = 0, k = 0, batch = 1;
  std::int64_t a_m = 0, a_k = 0, b_k = 0, b_n = 0;
  std::int64_t a_batch = 0, b_batch = 0, out_batch = 0;
  std::uint64_t a = 0, b = 0, out = 0;
  // A bias along N added to each sum before its rounding to |out_dtype| (0: none): n contiguous
  // elements of |out_dtype|, the same for every row and batch (cuBLASLt's BIAS epilogue).
  std::uint64_t bias = 0;
};

class Device {
 public:
  // Forgets what the runtime keeps per device (its state, its just-in-time kernels): a device made
  // later at the same address (wrap_vulkan_device again) starts afresh.
  virtual ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  virtual const DeviceInfo& info() const = 0;
  Backend backend() const { return info().backend; }
  // "cpu", "vulkan:0", "cuda:1"
  std::string id() const;

  // Allocates |bytes| (at least 1) of device memory, 256-byte aligned. Throws out_of_memory.
  virtual std::shared_ptr<Buffer> allocate(std::size_t bytes) = 0;
  virtual Stream& default_stream() = 0;
  // A new stream. Memory freed while work still uses it is reused at once only while the default
  // stream is the only stream (its order covers the reuse); creating another stream therefore
  // waits for the default stream's work (whose freed memory may already be in new buffers).
  virtual std::unique_ptr<Stream> create_stream() = 0;
  // Loads (once, then cached) function |function| of registry kernel |entry|. Throws unsupported
  // when the kernel was not built for this backend.
  virtual const Kernel& kernel(const Registry& registry, const KernelEntry& entry, int function) = 0;
  // Whether a built registry kernel can run here as it is (Vulkan: a kernel using subgroup
  // arithmetic needs a device with it); false with |why| sends the dispatch to the JIT.
  virtual bool runs_as_built(const KernelEntry& entry, std::string* why) const {
    (void)entry, (void)why;
    return true;
  }
  // Runs |g| on |stream| with the backend's vendor library (CUDA: cuBLASLt) when it takes it;
  // false with |why| otherwise (the caller launches Kiln's kernel instead).
  virtual bool library_gemm(Stream& stream, const LibraryGemm& g, std::string* why) {
    (void)stream, (void)g;
    *why = "no vendor GEMM on this backend";
    return false;
  }
  // Writes the 128-byte TMA descriptor of |r| to |out| (64-byte aligned): CUDA sm_90 and later.
  // Throws unsupported elsewhere, invalid_argument naming the values the driver refused.
  virtual void encode_tensor_map(const TensorMapRequest& r, void* out);

 protected:
  Device() = default;
};

// Why a backend is unavailable on this machine, or empty when it is available.
struct BackendStatus {
  Backend backend;
  bool available;
  std::string reason;
};

// Every device of every available backend (CUDA first, then Vulkan, then the CPU).
const std::vector<Device*>& devices();
std::vector<BackendStatus> backend_status();
// The default device: KILN_DEVICE=cpu|vulkan:N|cuda:N when set, else the first CUDA GPU, else the
// first Vulkan device, else the CPU. Throws device_unavailable when KILN_DEVICE names a missing one.
Device& default_device();
// Looks a device up by id ("cpu", "vulkan:0", "cuda:0"); throws device_unavailable with the reason.
Device& device(std::string_view id);

}  // namespace kiln
