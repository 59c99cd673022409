// Internal: the Vulkan Device. One per usable physical device; owns the VkDevice, its queues, the
// buffer allocator, the default stream and the kernel (pipeline) cache.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "runtime/device.hpp"
#include "runtime/vulkan/vk_common.hpp"
#include "runtime/vulkan/vk_spirv.hpp"
#include "runtime/vulkan/vk_instance.hpp"

namespace kiln::vk {

class Allocator;
class KernelCache;
class VulkanStream;

// A VkQueue with the lock that vkQueueSubmit needs (several streams may share one queue).
struct Queue {
  VkQueue queue = VK_NULL_HANDLE;
  std::mutex mutex;
};

// Which optional features the device was created with.
struct EnabledFeatures {
  bool int8 = false, int16 = false, int64 = false, float16 = false, float64 = false;
  bool storage8 = false, storage16 = false, push_constant8 = false, push_constant16 = false;
  bool maintenance4 = false, memory_model = false, host_query_reset = false;
  bool subgroup_size_control = false, full_subgroups = false, scalar_block_layout = false, atomic_float = false;
  bool int64_atomics = false;
  bool cooperative_matrix = false;  // VK_NV_cooperative_matrix's cooperativeMatrix
};

// A caller's VkDevice that a VulkanDevice uses without owning it (runtime/interop.hpp).
struct AdoptedDevice {
  VkDevice device = VK_NULL_HANDLE;
  std::vector<VkQueue> queues;   // of |queue_family|, at least one
  std::uint32_t queue_family = 0;
  EnabledFeatures features;      // what the caller enabled at vkCreateDevice
};

// The cooperative-matrix fragment Kiln's kernels use (templates/glsl/coopmat.glsl) among
// the shapes a device reports (VK_NV_cooperative_matrix): the largest subgroup-scope
// f16 x f16 + f32 -> f32 shape the kernel takes (more n on a tie); none unless |usable|. |listed|
// gets every shape reported ("16x8x16 f16*f16+f32->f32, ...").
DeviceInfo::MatrixShape choose_matrix_shape(std::span<const VkCooperativeMatrixPropertiesNV> shapes, bool usable,
                                            std::string* listed);

class VulkanDevice final : public Device {
 public:
  // Throws kiln::Error when the device cannot be created; returns through |why| (and a null
  // pointer from create_device) when it lacks what Kiln needs. With |adopt|, no VkDevice is
  // created: the caller's is used (and not destroyed), with the features the caller enabled.
  VulkanDevice(const InstanceState& instance, VkPhysicalDevice physical, int index,
               const AdoptedDevice* adopt = nullptr);
  ~VulkanDevice() override;

  const DeviceInfo& info() const override { return info_; }
  std::shared_ptr<Buffer> allocate(std::size_t bytes) override;
  Stream& default_stream() override;
  std::unique_ptr<Stream> create_stream() override;
  const Kernel& kernel(const Registry& registry, const KernelEntry& entry, int function) override;
  bool runs_as_built(const KernelEntry& entry, std::string* why) const override;

  VkDevice handle() const { return device_; }
  bool owns_device() const { return owns_device_; }  // false for a caller's VkDevice
  VkPhysicalDevice physical() const { return physical_; }
  const VkPhysicalDeviceLimits& limits() const { return properties_.limits; }
  const VkPhysicalDeviceProperties& properties() const { return properties_; }
  const VkPhysicalDeviceMemoryProperties& memory_properties() const { return memory_; }
  const EnabledFeatures& features() const { return features_; }
  // The float widths whose subnormals shaders can ask to keep (VkPhysicalDeviceVulkan12Properties
  // shaderDenormPreserveFloat16/32/64); kernels get DenormPreserve for them (vk_spirv.hpp).
  const DenormWidths& denorm_preserve() const { return denorm_preserve_; }
  // Whether a pipeline of |block_size| invocations with subgroup operations can require
  // info().subgroup_size, full: the device lets pipelines choose, |block_size| is whole subgroups of
  // that size and at most maxComputeWorkgroupSubgroups of them (lavapipe at 4-wide: 32 x 4 = 128).
  bool pin_subgroup_size(std::uint32_t block_size) const {
    const std::uint32_t size = info().subgroup_size;
    return pin_subgroup_size_ && block_size % size == 0 && block_size / size <= max_workgroup_subgroups_;
  }
  std::uint64_t max_buffer_size() const { return max_buffer_size_; }
  std::uint32_t queue_family() const { return queue_family_; }
  std::uint32_t timestamp_valid_bits() const { return timestamp_valid_bits_; }
  // "vulkan:0 (llvmpipe (LLVM 15.0.6, 256 bits))", for error messages.
  const std::string& label() const { return label_; }
  // The queue for a new stream (round robin over the queues created).
  Queue& next_queue();
  // The one pipeline layout of every kernel: a 128-byte push-constant range, no descriptor sets.
  VkPipelineLayout pipeline_layout() const { return pipeline_layout_; }
  Allocator& allocator() { return *allocator_; }

  // Streams register themselves so that memory released while work may be in flight is destroyed
  // only once every stream has passed the point of release.
  void register_stream(VulkanStream* s);
  void unregister_stream(VulkanStream* s);
  // The timeline values each live stream must reach before memory released now is unused.
  std::vector<StreamMark> stream_horizons();
  // True when the mark's stream is gone (a stream made later at its address has another serial)
  // or has reached the mark's value.
  bool stream_reached(const StreamMark& mark);
  // The default stream once it exists, else nullptr (never creates it: the allocator asks).
  const VulkanStream* default_stream_if_created() const { return default_stream_ptr_.load(); }

 private:
  VkPhysicalDevice physical_;
  VkDevice device_ = VK_NULL_HANDLE;
  bool owns_device_ = true;
  VkPhysicalDeviceProperties properties_{};
  VkPhysicalDeviceMemoryProperties memory_{};
  EnabledFeatures features_;
  DenormWidths denorm_preserve_;
  bool pin_subgroup_size_ = false;
  std::uint32_t max_workgroup_subgroups_ = 0;
  std::uint64_t max_buffer_size_ = 0;
  std::uint32_t queue_family_ = 0;
  std::uint32_t timestamp_valid_bits_ = 0;
  DeviceInfo info_;
  std::string label_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::atomic<std::size_t> next_queue_{0};
  VkPipelineLayout pipeline_layout_ = VK_NULL_HANDLE;

  std::mutex streams_mutex_;
  std::vector<std::pair<VulkanStream*, std::uint64_t>> streams_;  // with the serial each registered under
  std::uint64_t next_stream_serial_ = 1;

  std::unique_ptr<Allocator> allocator_;
  std::unique_ptr<KernelCache> kernels_;
  std::once_flag default_stream_once_;
  std::unique_ptr<VulkanStream> default_stream_;
  std::atomic<const VulkanStream*> default_stream_ptr_{nullptr};
};

// Creates the device for |physical|, or returns null and says why through |why| when it lacks
// Vulkan 1.2, bufferDeviceAddress or timelineSemaphore.
std::unique_ptr<Device> create_device(const InstanceState& instance, VkPhysicalDevice physical,
                                      int index, std::string* why);

// The VulkanDevice behind |d|, or throws invalid_argument naming |what| when |d| is another kind.
VulkanDevice& vulkan_device(Device& d, const char* what);

}  // namespace kiln::vk
