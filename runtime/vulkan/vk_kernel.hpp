// Internal: Vulkan kernels (compute pipelines) and the device's kernel cache, backed by a
// VkPipelineCache persisted on disk.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "runtime/kernel.hpp"
#include "runtime/registry.hpp"
#include "runtime/vulkan/vk_common.hpp"

namespace kiln::vk {

class VulkanDevice;

inline constexpr std::uint32_t kPushConstantBytes = 128;

class VulkanKernel final : public Kernel {
 public:
  VulkanKernel(VulkanDevice& device, std::string name, int block_size, VkPipeline pipeline);
  ~VulkanKernel() override;
  VkPipeline pipeline() const { return pipeline_; }
  const VulkanDevice& owner() const { return device_; }

 private:
  VulkanDevice& device_;
  VkPipeline pipeline_;
};

// Checks that |spirv| looks like a SPIR-V module with a GLCompute entry point "main"; throws
// compile_error naming |kernel| otherwise.
void check_spirv(std::span<const unsigned char> spirv, const std::string& kernel);

class KernelCache {
 public:
  explicit KernelCache(VulkanDevice& device);
  ~KernelCache();
  KernelCache(const KernelCache&) = delete;
  KernelCache& operator=(const KernelCache&) = delete;

  const Kernel& get(const KernelEntry& entry, int function);

 private:
  void save();

  VulkanDevice& device_;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  std::string cache_path_;  // empty when not persisted
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<VulkanKernel>> kernels_;
  bool saved_once_ = false;
  std::chrono::steady_clock::time_point last_save_;
};

}  // namespace kiln::vk
