// Vulkan interop (runtime/interop.hpp): Kiln buffers as VkBuffer ranges, and Kiln devices over a
// caller's VkDevice.
#include <atomic>

#include <fmt/format.h>

#include "runtime/interop.hpp"
#include "runtime/vulkan/vk_device.hpp"
#include "runtime/vulkan/vk_memory.hpp"

namespace kiln {

VulkanBufferRange vulkan_buffer(const Buffer& buffer) {
  auto* vb = dynamic_cast<const vk::VulkanBuffer*>(&buffer);
  if (!vb)
    fail(ErrorCode::invalid_argument,
         fmt::format("vulkan_buffer: the buffer is on {}, not Kiln Vulkan memory", buffer.device().id()));
  return {vb->vk_buffer(), vb->vk_offset(), vb->size_bytes(), vb->device_address()};
}

VulkanDeviceHandles vulkan_handles(Device& device) {
  vk::VulkanDevice& d = vk::vulkan_device(device, "vulkan_handles");
  VulkanDeviceHandles h;
  h.instance = d.owns_device() ? vk::instance_state().instance : nullptr;
  h.physical_device = d.physical();
  h.device = d.handle();
  h.queue_family = d.queue_family();
  VkQueue q = VK_NULL_HANDLE;
  vkGetDeviceQueue(d.handle(), d.queue_family(), 0, &q);
  h.queues.push_back(q);
  h.api_version = vk::instance_state().api_version;
  return h;
}

namespace {

// The features a VkPhysicalDeviceFeatures2 chain enables, as Kiln records them.
struct Enabled {
  vk::EnabledFeatures f;
  bool bda = false, timeline = false;
};

Enabled read_chain(const void* chain) {
  Enabled e;
  auto& f = e.f;
  for (auto* s = static_cast<const VkBaseInStructure*>(chain); s; s = s->pNext) {
    switch (s->sType) {
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2: {
        auto& x = reinterpret_cast<const VkPhysicalDeviceFeatures2*>(s)->features;
        f.int16 |= bool(x.shaderInt16), f.int64 |= bool(x.shaderInt64), f.float64 |= bool(x.shaderFloat64);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES: {
        auto* x = reinterpret_cast<const VkPhysicalDeviceVulkan11Features*>(s);
        f.storage16 |= bool(x->storageBuffer16BitAccess), f.push_constant16 |= bool(x->storagePushConstant16);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES: {
        auto* x = reinterpret_cast<const VkPhysicalDeviceVulkan12Features*>(s);
        e.bda |= bool(x->bufferDeviceAddress), e.timeline |= bool(x->timelineSemaphore);
        f.int8 |= bool(x->shaderInt8), f.float16 |= bool(x->shaderFloat16);
        f.storage8 |= bool(x->storageBuffer8BitAccess), f.push_constant8 |= bool(x->storagePushConstant8);
        f.memory_model |= bool(x->vulkanMemoryModel), f.host_query_reset |= bool(x->hostQueryReset);
        f.scalar_block_layout |= bool(x->scalarBlockLayout), f.int64_atomics |= bool(x->shaderBufferInt64Atomics);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES: {
        auto* x = reinterpret_cast<const VkPhysicalDeviceVulkan13Features*>(s);
        f.maintenance4 |= bool(x->maintenance4), f.subgroup_size_control |= bool(x->subgroupSizeControl);
        f.full_subgroups |= bool(x->computeFullSubgroups);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES:
        e.bda |= bool(reinterpret_cast<const VkPhysicalDeviceBufferDeviceAddressFeatures*>(s)->bufferDeviceAddress);
        break;
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES:
        e.timeline |= bool(reinterpret_cast<const VkPhysicalDeviceTimelineSemaphoreFeatures*>(s)->timelineSemaphore);
        break;
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES: {
        auto* x = reinterpret_cast<const VkPhysicalDevice8BitStorageFeatures*>(s);
        f.storage8 |= bool(x->storageBuffer8BitAccess), f.push_constant8 |= bool(x->storagePushConstant8);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES: {
        auto* x = reinterpret_cast<const VkPhysicalDevice16BitStorageFeatures*>(s);
        f.storage16 |= bool(x->storageBuffer16BitAccess), f.push_constant16 |= bool(x->storagePushConstant16);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES: {
        auto* x = reinterpret_cast<const VkPhysicalDeviceShaderFloat16Int8Features*>(s);
        f.int8 |= bool(x->shaderInt8), f.float16 |= bool(x->shaderFloat16);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV:
        f.cooperative_matrix |= bool(reinterpret_cast<const VkPhysicalDeviceCooperativeMatrixFeaturesNV*>(s)->cooperativeMatrix);
        break;
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_FEATURES:
        f.maintenance4 |= bool(reinterpret_cast<const VkPhysicalDeviceMaintenance4Features*>(s)->maintenance4);
        break;
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES: {
        auto* x = reinterpret_cast<const VkPhysicalDeviceSubgroupSizeControlFeatures*>(s);
        f.subgroup_size_control |= bool(x->subgroupSizeControl), f.full_subgroups |= bool(x->computeFullSubgroups);
        break;
      }
      case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT:
        f.atomic_float |=
            bool(reinterpret_cast<const VkPhysicalDeviceShaderAtomicFloatFeaturesEXT*>(s)->shaderBufferFloat32AtomicAdd);
        break;
      default: break;
    }
  }
  return e;
}

}  // namespace

std::unique_ptr<Device> wrap_vulkan_device(const VulkanDeviceHandles& h) {
  const vk::InstanceState& st = vk::instance_state();  // loads the Vulkan entry points
  if (!st.instance) fail(ErrorCode::device_unavailable, "wrap_vulkan_device: Vulkan is unavailable: " + st.error);
  if (!h.instance || !h.physical_device || !h.device || h.queues.empty())
    fail(ErrorCode::invalid_argument,
         "wrap_vulkan_device: instance, physical_device, device and at least one queue are required");
  for (VkQueue q : h.queues)
    if (!q) fail(ErrorCode::invalid_argument, "wrap_vulkan_device: a queue is null");
  VkPhysicalDeviceProperties props{};
  vkGetPhysicalDeviceProperties(h.physical_device, &props);
  const std::uint32_t api = std::min(props.apiVersion, h.api_version ? h.api_version : VK_API_VERSION_1_3);
  const std::string name = props.deviceName;
  if (api < VK_API_VERSION_1_3)
    fail(ErrorCode::unsupported, fmt::format("wrap_vulkan_device: {}: Kiln needs Vulkan 1.3 (its kernels are SPIR-V "
                                             "1.6), the instance and device give {}", name, vk::version_text(api)));
  std::uint32_t nf = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(h.physical_device, &nf, nullptr);
  std::vector<VkQueueFamilyProperties> families(nf);
  vkGetPhysicalDeviceQueueFamilyProperties(h.physical_device, &nf, families.data());
  if (h.queue_family >= nf || !(families[h.queue_family].queueFlags & VK_QUEUE_COMPUTE_BIT))
    fail(ErrorCode::invalid_argument,
         fmt::format("wrap_vulkan_device: {}: queue family {} does not exist or has no compute", name, h.queue_family));

  const Enabled e = read_chain(h.enabled_features);
  std::string missing;
  if (!e.bda) missing += " bufferDeviceAddress";
  if (!e.timeline) missing += " timelineSemaphore";
  if (!e.f.maintenance4) missing += " maintenance4";
  if (!e.f.int64) missing += " shaderInt64";
  if (!missing.empty())
    fail(ErrorCode::unsupported,
         fmt::format("wrap_vulkan_device: {}: the VkDevice was created without{} (enable them — bufferDeviceAddress "
                     "and timelineSemaphore in VkPhysicalDeviceVulkan12Features, maintenance4 in "
                     "VkPhysicalDeviceVulkan13Features, shaderInt64 in VkPhysicalDeviceFeatures2 — and pass that "
                     "chain as enabled_features)", name, missing));

  static std::atomic<int> wrapped{0};
  int index = wrapped++;
  for (Device* d : devices()) index += d->backend() == Backend::vulkan;
  vk::InstanceState as_caller = {h.instance, api, false, VK_NULL_HANDLE, {}};
  vk::AdoptedDevice adopt{h.device, h.queues, h.queue_family, e.f};
  return std::make_unique<vk::VulkanDevice>(as_caller, h.physical_device, index, &adopt);
}

}  // namespace kiln
