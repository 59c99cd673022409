// Interop: sharing memory, streams and devices with code that is not Kiln.
//
//   DLPack (<dlpack/dlpack.h>, v0.6+ ABI: DLManagedTensor), both ways without copies:
//     to_dlpack(t)         a DLManagedTensor viewing t's storage; its deleter drops the reference
//     from_dlpack(m)       a Tensor viewing m's memory; m's deleter runs when the last view dies
//   Supported devices: kDLCPU <-> the CPU device; kDLCUDA <-> cuda:N (device_id N; memory of the
//   primary context, which the CUDA runtime uses). kDLVulkan is not supported either way: DLPack
//   gives no VkBuffer or VkDeviceMemory convention to import from, and Kiln's Vulkan memory is only
//   reachable through a VkBuffer; use vulkan_buffer() to hand Kiln memory to your own Vulkan code.
//   dtypes: bool (code 6, 8 bits) <-> pred, int/uint 8..64, float 16/32/64, bfloat 16; lanes 1.
//
//   wrap_memory(device, address, bytes, keep_alive)   a non-owning Buffer over a host pointer (CPU)
//                                                     or a CUdeviceptr (CUDA)
//   vulkan_buffer(buffer)      the VkBuffer, offset and device address of Kiln Vulkan memory
//   wrap_vulkan_device(...)    a Kiln Device over the caller's VkInstance/VkPhysicalDevice/VkDevice
//                              and compute queue(s), not owned
//   CUDA streams: kiln::cuda::wrap_stream in runtime/cuda/cuda_interop.hpp (included here).
//
// Lifetimes: Kiln never frees what it wraps. A wrapped object must outlive every Kiln object made
// from it (buffers outlive tensors viewing them; a wrapped device outlives its buffers, tensors and
// streams, and must be destroyed before the caller destroys the VkDevice).
// Thread-safety: as for the objects they return (see device.hpp, buffer.hpp, stream.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/cuda/cuda_interop.hpp"
#include "runtime/tensor.hpp"

#if __has_include(<dlpack/dlpack.h>)
#include <dlpack/dlpack.h>
#define KILN_HAS_DLPACK_HEADER 1
#else
struct DLManagedTensor;  // include <dlpack/dlpack.h> (package libdlpack-dev) to use it
#endif

// The Vulkan handles of the interface, declared as vulkan_core.h declares them (64-bit platforms),
// so this header does not need the Vulkan headers.
typedef struct VkInstance_T* VkInstance;
typedef struct VkPhysicalDevice_T* VkPhysicalDevice;
typedef struct VkDevice_T* VkDevice;
typedef struct VkQueue_T* VkQueue;
typedef struct VkBuffer_T* VkBuffer;

namespace kiln {

// ---- DLPack ---------------------------------------------------------------------------------------

// A DLManagedTensor viewing |t| (any strides; byte_offset holds the view's offset). Its deleter
// releases the storage reference and frees the struct; call it exactly once. Throws unsupported
// for Vulkan tensors. CUDA: the device's default stream is synchronized first, so the memory holds
// what Kiln wrote there (work on streams of your own: synchronize them yourself).
DLManagedTensor* to_dlpack(const Tensor& t);

// A Tensor viewing |managed|'s memory, taking ownership of |managed|: its deleter is called when the
// last tensor sharing the memory is destroyed (CUDA: after the default stream's work has finished),
// or before from_dlpack throws. Throws unsupported for
// devices other than kDLCPU / kDLCUDA and for dtypes Kiln lacks, invalid_argument for a malformed
// tensor (negative shape, lanes != 1, misaligned element offset). Null strides mean row-major.
// CUDA: the legacy default stream (where PyTorch and CuPy work by default) is synchronized first,
// so Kiln reads what the producer wrote there; finish work on the producer's other streams yourself.
Tensor from_dlpack(DLManagedTensor* managed);

#ifdef KILN_HAS_DLPACK_HEADER
// A Tensor viewing a DLTensor the caller keeps alive (no deleter); |keep_alive| is held by the
// tensor's storage and released with it.
Tensor from_dlpack(const DLTensor& tensor, std::shared_ptr<void> keep_alive = {});
#endif

// ---- Raw memory ----------------------------------------------------------------------------------

// Kiln's own buffers used by address on a stream Kiln does not know: while the device's default
// stream is its only stream, a new buffer may be memory whose previous owner's kernels are still
// queued there (reused in stream order, as PyTorch's allocator does). Before touching it from
// another stream, wrap that stream (cuda::wrap_stream waits for the default stream once) or call
// default_stream().synchronize(); to_dlpack does the latter for you.

// A Buffer of |bytes| at |address| on |device| that does not own the memory: CPU: a host pointer;
// CUDA: a CUdeviceptr valid in |device|'s primary context. |keep_alive| is released when the
// buffer is destroyed. Throws unsupported for Vulkan (Kiln's Vulkan streams need a VkBuffer).
// Kernels may read addresses that are not 256-byte aligned: they are handled, but slower. Each
// element must still be aligned to its size: Tensor::view (and AotKernel::launch's byte offsets)
// refuse an address that is not a multiple of the dtype's size.
std::shared_ptr<Buffer> wrap_memory(Device& device, std::uint64_t address, std::size_t bytes,
                                    std::shared_ptr<void> keep_alive = {});

// ---- Vulkan --------------------------------------------------------------------------------------

// Where a Kiln Vulkan buffer lives, for the caller's own pipelines: bind |buffer| at |offset| for
// |size| bytes, or use |device_address| (bufferDeviceAddress). The VkBuffer is shared with other
// Kiln buffers: use only the range given. Order your work after Kiln's with stream.synchronize()
// (or submit to the same queue after stream.flush()).
struct VulkanBufferRange {
  VkBuffer buffer = nullptr;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t device_address = 0;
};
// Throws invalid_argument when |buffer| is not Kiln Vulkan memory.
VulkanBufferRange vulkan_buffer(const Buffer& buffer);

// The caller's Vulkan objects for wrap_vulkan_device. The device must have been created from
// |physical_device| with Vulkan 1.3 or later (Kiln's kernels are SPIR-V 1.6) and the features Kiln
// needs enabled:
//   required: bufferDeviceAddress and timelineSemaphore (VkPhysicalDeviceVulkan12Features, or the
//             VkPhysicalDeviceBufferDeviceAddressFeatures / TimelineSemaphoreFeatures structs),
//             maintenance4 (VkPhysicalDeviceVulkan13Features: the kernels' LocalSizeId) and
//             shaderInt64 (VkPhysicalDeviceFeatures2: 64-bit indices);
//   per dtype (else the dtype is left out of DeviceInfo::dtypes): shaderInt8 + storageBuffer8BitAccess
//             (pred, s8, u8), shaderInt16 + storageBuffer16BitAccess (s16, u16, bf16), shaderFloat16
//             + storageBuffer16BitAccess (f16), shaderFloat64 (f64);
//   optional: subgroupSizeControl with computeFullSubgroups (kernels then pin the subgroup size).
// |enabled_features| is the VkPhysicalDeviceFeatures2 chain passed as VkDeviceCreateInfo::pNext
// (Vulkan has no query for what a device enabled). Kiln submits to |queues| under its own lock: the
// caller must not submit to them concurrently with Kiln calls (give Kiln a queue of its own when
// the family has several).
struct VulkanDeviceHandles {
  VkInstance instance = nullptr;
  VkPhysicalDevice physical_device = nullptr;
  VkDevice device = nullptr;
  std::uint32_t queue_family = 0;  // must support compute
  std::vector<VkQueue> queues;     // of |queue_family|, at least one
  std::uint32_t api_version = 0;   // VkApplicationInfo::apiVersion of the instance (0: 1.3)
  const void* enabled_features = nullptr;
};
// A Kiln device over the caller's VkDevice (not owned; destroyed with the returned object, which
// waits for the device to be idle). Not listed by devices(); its id is "vulkan:<n>" with n past the
// enumerated Vulkan devices. Throws device_unavailable when the Vulkan loader is missing,
// invalid_argument for null handles, unsupported naming each missing feature.
std::unique_ptr<Device> wrap_vulkan_device(const VulkanDeviceHandles& handles);

// The Vulkan objects of a Kiln Vulkan device (its own or wrapped), for the caller's own work.
// enabled_features is null. Throws invalid_argument for other devices.
VulkanDeviceHandles vulkan_handles(Device& device);

}  // namespace kiln
