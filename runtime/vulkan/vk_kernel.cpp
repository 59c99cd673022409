// Vulkan kernels: SPIR-V checks, compute pipelines with the block size as specialization
// constant 0, and a VkPipelineCache persisted on disk.
#include "runtime/vulkan/vk_kernel.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <string_view>
#include <vector>

#include <spirv-tools/libspirv.hpp>

#include "core/disk_cache.hpp"
#include "runtime/device_state.hpp"
#include "runtime/vulkan/vk_cache_file.hpp"
#include "runtime/vulkan/vk_device.hpp"
#include "runtime/vulkan/vk_spirv.hpp"

namespace kiln::vk {

VulkanKernel::VulkanKernel(VulkanDevice& device, std::string name, int block_size, VkPipeline pipeline)
    : Kernel(std::move(name), block_size), device_(device), pipeline_(pipeline) {}

VulkanKernel::~VulkanKernel() { vkDestroyPipeline(device_.handle(), pipeline_, nullptr); }

void check_spirv(std::span<const unsigned char> spirv, const std::string& kernel) {
  auto bad = [&](const std::string& why) {
    fail(ErrorCode::compile_error, "vulkan: kernel '" + kernel + "' has no usable SPIR-V: " + why);
  };
  if (spirv.empty()) bad("the blob is empty (the kernel was not built for Vulkan)");
  if (spirv.size() % 4) bad("its size " + std::to_string(spirv.size()) + " is not a multiple of 4");
  const std::size_t n = spirv.size() / 4;
  std::vector<std::uint32_t> words(n);
  std::memcpy(words.data(), spirv.data(), spirv.size());
  if (n < 5 || words[0] != 0x07230203u) bad("it does not start with the SPIR-V magic number");
  bool entry = false;
  for (std::size_t i = 5; i < n;) {
    const std::uint32_t count = words[i] >> 16, opcode = words[i] & 0xffffu;
    if (count == 0 || i + count > n) bad("instruction at word " + std::to_string(i) + " is malformed");
    // OpEntryPoint GLCompute %id "main"
    if (opcode == 15 && count >= 4 && words[i + 1] == 5) {
      const char* name = reinterpret_cast<const char*>(&words[i + 3]);
      const std::size_t max = (count - 3) * 4;
      if (strnlen(name, max) < max && std::string_view(name) == "main") entry = true;
    }
    i += count;
  }
  if (!entry) bad("it has no GLCompute entry point named 'main'");
  // Drivers trust the modules they are given (a malformed one can crash them): run the validator
  // (spirv-val), as the build does for the built-in kernels. Once per kernel: loads are cached.
  spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_3);
  std::string first;
  tools.SetMessageConsumer([&](spv_message_level_t, const char*, const spv_position_t& at, const char* text) {
    if (first.empty()) first = "word " + std::to_string(at.index) + ": " + text;
  });
  if (!tools.Validate(words.data(), words.size())) bad("spirv-val rejects it: " + first);
}

// ---- pipeline cache on disk ------------------------------------------------------------------

namespace {

std::string pipeline_cache_dir() {
  if (const char* v = std::getenv("KILN_VK_PIPELINE_CACHE"); v && (!*v || !std::strcmp(v, "0")))
    return {};
  return cache_dir("vulkan");
}

std::string hex(const std::uint8_t* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

PipelineCacheIdentity identity(const VkPhysicalDeviceProperties& props) {
  PipelineCacheIdentity id;
  id.vendor_id = props.vendorID;
  id.device_id = props.deviceID;
  std::memcpy(id.uuid, props.pipelineCacheUUID, VK_UUID_SIZE);
  return id;
}

}  // namespace

KernelCache::KernelCache(VulkanDevice& device) : device_(device) {
  const auto& props = device.properties();
  std::vector<char> data;
  std::span<const char> payload;
  if (std::string dir = pipeline_cache_dir(); !dir.empty()) {
    cache_path_ = dir + "/pipelines-" + std::to_string(props.vendorID) + "-" +
                  std::to_string(props.deviceID) + "-" + hex(props.pipelineCacheUUID, VK_UUID_SIZE) + ".bin";
    // The driver trusts the data it is given: hand it only a complete file written for it, by this
    // user.
    std::string why;
    if (auto file = read_cache_entry(cache_path_, &why); file && !file->empty()) {
      data = std::move(*file);
      if (auto p = unwrap_pipeline_cache(data, identity(props), &why)) {
        payload = *p;
        touch_cache_entry(cache_path_);
      }
    }
    if (!why.empty()) {
      std::cerr << "kiln: warning: " << device.label() << ": ignoring the pipeline cache '" << cache_path_
                << "': " << why << "; starting with an empty cache (it is rewritten)\n";
    }
  }
  VkPipelineCacheCreateInfo ci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  ci.initialDataSize = payload.size();
  ci.pInitialData = payload.empty() ? nullptr : payload.data();
  if (vkCreatePipelineCache(device.handle(), &ci, nullptr, &cache_) != VK_SUCCESS) {
    ci.initialDataSize = 0;
    ci.pInitialData = nullptr;
    KILN_VK_CHECK(vkCreatePipelineCache(device.handle(), &ci, nullptr, &cache_));
  }
}

KernelCache::~KernelCache() {
  kernels_.clear();
  vkDestroyPipelineCache(device_.handle(), cache_, nullptr);
}

void KernelCache::save() {
  // Best effort: a cache that cannot be written is not an error. Written to a temporary file and
  // renamed, so a reader never sees a partial file.
  if (cache_path_.empty()) return;
  std::size_t size = 0;
  if (vkGetPipelineCacheData(device_.handle(), cache_, &size, nullptr) != VK_SUCCESS || !size) return;
  std::vector<char> raw(size);
  if (vkGetPipelineCacheData(device_.handle(), cache_, &size, raw.data()) != VK_SUCCESS) return;
  const std::vector<char> data = wrap_pipeline_cache(std::span<const char>(raw.data(), size),
                                                     identity(device_.properties()));
  if (write_file_atomically(cache_path_, data))
    note_cache_write(std::filesystem::path(cache_path_).parent_path().string(), data.size());
}

// ---- loading ---------------------------------------------------------------------------------

const Kernel& KernelCache::get(const KernelEntry& entry, int function) {
  detail::device_state(device_).check("loading a kernel");
  const std::string kernel_name = entry.name ? entry.name : "?";
  if (function < 0 || function >= entry.num_functions || !entry.functions)
    fail(ErrorCode::invalid_argument, device_.label() + ": kernel '" + kernel_name + "' has no function " +
                                          std::to_string(function) + " (it has " +
                                          std::to_string(entry.num_functions) + ")");
  const KernelFunction& fn = entry.functions[function];
  std::string name = kernel_name;
  if (fn.symbol) {
    name += ':';
    name += fn.symbol;
  } else {
    name += '#';
    name += std::to_string(function);
  }
  const std::span<const unsigned char> spirv(fn.spirv.data, fn.spirv.data ? fn.spirv.size : 0);
  if (spirv.empty())
    fail(ErrorCode::unsupported, device_.label() + ": kernel '" + name + "' was not built for Vulkan (no SPIR-V)");
  if (entry.block_size <= 0 || std::uint32_t(entry.block_size) > device_.limits().maxComputeWorkGroupSize[0] ||
      std::uint32_t(entry.block_size) > device_.limits().maxComputeWorkGroupInvocations)
    fail(ErrorCode::unsupported, device_.label() + ": kernel '" + name + "' has block size " +
                                     std::to_string(entry.block_size) + ", beyond the device limit " +
                                     std::to_string(device_.limits().maxComputeWorkGroupInvocations));

  // Keyed by content, not by address: registries built at run time may reuse addresses.
  const std::string key = name + "|" + std::to_string(entry.block_size) + "|" + std::to_string(spirv.size()) +
                          "|" + std::to_string(std::hash<std::string_view>{}(std::string_view(
                                    reinterpret_cast<const char*>(spirv.data()), spirv.size())));
  {
    std::lock_guard lock(mutex_);
    if (auto it = kernels_.find(key); it != kernels_.end()) return *it->second;
  }
  check_spirv(spirv, name);

  VkDevice dev = device_.handle();
  std::vector<std::uint32_t> code(spirv.size() / 4);
  std::memcpy(code.data(), spirv.data(), spirv.size());
  code = with_denorm_preserve(code, device_.denorm_preserve());
  VkShaderModuleCreateInfo mi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  mi.codeSize = code.size() * sizeof(std::uint32_t);
  mi.pCode = code.data();
  VkShaderModule module = VK_NULL_HANDLE;
  if (VkResult r = vkCreateShaderModule(dev, &mi, nullptr, &module); r != VK_SUCCESS)
    fail(r == VK_ERROR_DEVICE_LOST ? ErrorCode::device_lost : ErrorCode::compile_error,
         device_.label() + ": the driver rejected the SPIR-V of kernel '" + name +
             "': vkCreateShaderModule failed with " + result_name(r));

  const std::uint32_t block = std::uint32_t(entry.block_size);
  VkSpecializationMapEntry map{0, 0, sizeof(std::uint32_t)};
  VkSpecializationInfo spec{1, &map, sizeof block, &block};
  VkComputePipelineCreateInfo pi{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  pi.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  pi.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  pi.stage.module = module;
  pi.stage.pName = "main";
  pi.stage.pSpecializationInfo = &spec;
  // Subgroup and cooperative-matrix kernels at the size the plans assume, in whole subgroups (where the
  // device allows).
  VkPipelineShaderStageRequiredSubgroupSizeCreateInfo required{
      VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO};
  required.requiredSubgroupSize = device_.info().subgroup_size;
  const auto bytes = std::as_bytes(std::span<const std::uint32_t>(code));
  if (device_.pin_subgroup_size(block) && (spirv_has_capability(bytes, kCapabilityGroupNonUniformArithmetic) ||
                                           spirv_has_capability(bytes, kCapabilityCooperativeMatrixNV))) {
    pi.stage.pNext = &required;
    pi.stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
  }
  pi.layout = device_.pipeline_layout();
  VkPipeline pipeline = VK_NULL_HANDLE;
  VkResult r = vkCreateComputePipelines(dev, cache_, 1, &pi, nullptr, &pipeline);
  vkDestroyShaderModule(dev, module, nullptr);
  if (r != VK_SUCCESS)
    fail(r == VK_ERROR_DEVICE_LOST ? ErrorCode::device_lost : ErrorCode::compile_error,
         device_.label() + ": creating the compute pipeline of kernel '" + name +
             "' failed with " + result_name(r));
  auto kernel = std::make_unique<VulkanKernel>(device_, name, entry.block_size, pipeline);

  std::lock_guard lock(mutex_);
  auto [it, inserted] = kernels_.emplace(key, std::move(kernel));  // a racing thread may have won
  // Persist the pipeline cache, at most every two seconds (devices are never destroyed, so there
  // is no final save; a cache missing the last pipelines only costs a recompile).
  const auto now = std::chrono::steady_clock::now();
  if (inserted && (!saved_once_ || now - last_save_ >= std::chrono::seconds(2))) {
    save();
    saved_once_ = true;
    last_save_ = now;
  }
  return *it->second;
}

}  // namespace kiln::vk
