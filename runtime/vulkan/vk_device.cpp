// The Vulkan Device: feature selection, queues, DeviceInfo, and the per-device factories.
#include "runtime/vulkan/vk_device.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "codegen/families/contract.hpp"
#include "runtime/vulkan/vk_kernel.hpp"
#include "runtime/vulkan/vk_memory.hpp"
#include "runtime/vulkan/vk_stream.hpp"

namespace kiln::vk {
namespace {

std::vector<std::string> device_extensions(VkPhysicalDevice p) {
  std::uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties(p, nullptr, &n, nullptr);
  std::vector<VkExtensionProperties> props(n);
  vkEnumerateDeviceExtensionProperties(p, nullptr, &n, props.data());
  std::vector<std::string> out;
  for (auto& e : props) out.emplace_back(e.extensionName);
  return out;
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual-gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

// Everything queried about a physical device before creating the VkDevice.
struct Query {
  VkPhysicalDeviceProperties props{};
  std::uint32_t api = 0;
  std::vector<std::string> extensions;
  bool has(const char* ext) const { return std::find(extensions.begin(), extensions.end(), ext) != extensions.end(); }
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceMaintenance4Features m4{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_FEATURES};
  VkPhysicalDeviceSubgroupSizeControlFeatures ssc{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
  VkPhysicalDeviceShaderAtomicFloatFeaturesEXT af{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT};
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  VkPhysicalDeviceVulkan11Properties p11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
  VkPhysicalDeviceVulkan12Properties p12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
  VkPhysicalDeviceMaintenance4Properties pm4{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
  VkPhysicalDeviceSubgroupSizeControlProperties pssc{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
  VkPhysicalDeviceCooperativeMatrixFeaturesNV cm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  VkPhysicalDeviceCooperativeMatrixPropertiesNV pcm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV};
  std::vector<VkCooperativeMatrixPropertiesNV> matrix_shapes;  // where cm.cooperativeMatrix
  bool maintenance4_ext = false, ssc_ext = false, atomic_float_ext = false, coopmat_ext = false;

  Query(VkPhysicalDevice p, std::uint32_t instance_api) {
    vkGetPhysicalDeviceProperties(p, &props);
    api = std::min(props.apiVersion, instance_api);
    extensions = device_extensions(p);
    if (api < VK_API_VERSION_1_2) return;
    // maintenance4 and subgroupSizeControl are core in 1.3, extensions before.
    maintenance4_ext = api >= VK_API_VERSION_1_3 || has(VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
    ssc_ext = api >= VK_API_VERSION_1_3 || has(VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    atomic_float_ext = has(VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME);
    coopmat_ext = has(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) && vkGetPhysicalDeviceCooperativeMatrixPropertiesNV;
    f2.pNext = &f11;
    f11.pNext = &f12;
    void** tail = &f12.pNext;
    if (maintenance4_ext) { *tail = &m4; tail = &m4.pNext; }
    if (ssc_ext) { *tail = &ssc; tail = &ssc.pNext; }
    if (atomic_float_ext) { *tail = &af; tail = &af.pNext; }
    if (coopmat_ext) { *tail = &cm; tail = &cm.pNext; }
    vkGetPhysicalDeviceFeatures2(p, &f2);
    if (coopmat_ext && cm.cooperativeMatrix) {
      std::uint32_t n = 0;
      vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(p, &n, nullptr);
      matrix_shapes.assign(n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
      vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(p, &n, matrix_shapes.data());
      matrix_shapes.resize(n);
    }
    p2.pNext = &p11;
    p11.pNext = &p12;
    void** ptail = &p12.pNext;
    if (maintenance4_ext) { *ptail = &pm4; ptail = &pm4.pNext; }
    if (ssc_ext) { *ptail = &pssc; ptail = &pssc.pNext; }
    if (coopmat_ext) { *ptail = &pcm; ptail = &pcm.pNext; }
    vkGetPhysicalDeviceProperties2(p, &p2);
  }
};

const char* component_name(VkComponentTypeNV t) {
  switch (t) {
    case VK_COMPONENT_TYPE_FLOAT16_NV: return "f16";
    case VK_COMPONENT_TYPE_FLOAT32_NV: return "f32";
    case VK_COMPONENT_TYPE_FLOAT64_NV: return "f64";
    case VK_COMPONENT_TYPE_SINT8_NV: return "s8";
    case VK_COMPONENT_TYPE_UINT8_NV: return "u8";
    case VK_COMPONENT_TYPE_SINT32_NV: return "s32";
    case VK_COMPONENT_TYPE_UINT32_NV: return "u32";
    default: return "other";
  }
}

}  // namespace

DeviceInfo::MatrixShape choose_matrix_shape(std::span<const VkCooperativeMatrixPropertiesNV> shapes, bool usable,
                                            std::string* listed) {
  DeviceInfo::MatrixShape best;
  for (const VkCooperativeMatrixPropertiesNV& p : shapes) {
    *listed += fmt::format("{}{}x{}x{} {}*{}+{}->{}{}", listed->empty() ? "" : ", ", p.MSize, p.NSize, p.KSize,
                           component_name(p.AType), component_name(p.BType), component_name(p.CType),
                           component_name(p.DType), p.scope == VK_SCOPE_SUBGROUP_NV ? "" : " (not subgroup scope)");
    const CoopmatShape s{int(p.MSize), int(p.NSize), int(p.KSize)};
    if (p.scope != VK_SCOPE_SUBGROUP_NV || p.AType != VK_COMPONENT_TYPE_FLOAT16_NV ||
        p.BType != VK_COMPONENT_TYPE_FLOAT16_NV || p.CType != VK_COMPONENT_TYPE_FLOAT32_NV ||
        p.DType != VK_COMPONENT_TYPE_FLOAT32_NV || !coopmat_shape_fits(s, nullptr))
      continue;
    if (std::tuple(s.m * s.n * s.k, s.n) > std::tuple(best.m * best.n * best.k, best.n)) best = {s.m, s.n, s.k};
  }
  return usable ? best : DeviceInfo::MatrixShape{};
}

VulkanDevice::VulkanDevice(const InstanceState& instance, VkPhysicalDevice physical, int index,
                           const AdoptedDevice* adopt)
    : physical_(physical) {
  Query q(physical, instance.api_version);
  properties_ = q.props;
  label_ = "vulkan:" + std::to_string(index) + " (" + properties_.deviceName + ")";
  vkGetPhysicalDeviceMemoryProperties(physical, &memory_);

  // The compute queue family: prefer compute-only with timestamps, then any compute with
  // timestamps, then any compute.
  std::uint32_t nf = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &nf, nullptr);
  std::vector<VkQueueFamilyProperties> families(nf);
  vkGetPhysicalDeviceQueueFamilyProperties(physical, &nf, families.data());
  int best = -1, best_score = 1 << 30;
  for (std::uint32_t i = 0; i < nf; ++i) {
    const auto& f = families[i];
    if (!(f.queueFlags & VK_QUEUE_COMPUTE_BIT) || f.queueCount == 0) continue;
    const int score = (f.timestampValidBits ? 0 : 2) + ((f.queueFlags & VK_QUEUE_GRAPHICS_BIT) ? 1 : 0);
    if (score < best_score) {
      best = int(i);
      best_score = score;
    }
  }
  if (adopt) best = int(adopt->queue_family);
  if (best < 0) fail(ErrorCode::device_unavailable, label_ + " has no compute queue");
  queue_family_ = std::uint32_t(best);
  timestamp_valid_bits_ = families[queue_family_].timestampValidBits;
  const std::uint32_t queue_count = std::min<std::uint32_t>(families[queue_family_].queueCount, 4);

  // Features to enable: the ones the kernels need, when the device has them.
  auto& f = features_;
  VkPhysicalDeviceFeatures2 e2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features e11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features e12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceMaintenance4Features em4{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_FEATURES};
  VkPhysicalDeviceSubgroupSizeControlFeatures essc{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
  VkPhysicalDeviceShaderAtomicFloatFeaturesEXT eaf{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_ATOMIC_FLOAT_FEATURES_EXT};
  e2.features.shaderInt64 = q.f2.features.shaderInt64;
  e2.features.shaderInt16 = q.f2.features.shaderInt16;
  e2.features.shaderFloat64 = q.f2.features.shaderFloat64;
  e11.storageBuffer16BitAccess = q.f11.storageBuffer16BitAccess;
  e11.uniformAndStorageBuffer16BitAccess = q.f11.uniformAndStorageBuffer16BitAccess;
  e11.storagePushConstant16 = q.f11.storagePushConstant16;
  e12.bufferDeviceAddress = VK_TRUE;
  e12.timelineSemaphore = VK_TRUE;
  e12.storageBuffer8BitAccess = q.f12.storageBuffer8BitAccess;
  e12.uniformAndStorageBuffer8BitAccess = q.f12.uniformAndStorageBuffer8BitAccess;
  e12.storagePushConstant8 = q.f12.storagePushConstant8;
  e12.shaderInt8 = q.f12.shaderInt8;
  e12.shaderFloat16 = q.f12.shaderFloat16;
  e12.shaderBufferInt64Atomics = q.f12.shaderBufferInt64Atomics;
  e12.shaderSharedInt64Atomics = q.f12.shaderSharedInt64Atomics;
  e12.scalarBlockLayout = q.f12.scalarBlockLayout;
  e12.vulkanMemoryModel = q.f12.vulkanMemoryModel;
  e12.vulkanMemoryModelDeviceScope = q.f12.vulkanMemoryModelDeviceScope;
  e12.hostQueryReset = q.f12.hostQueryReset;
  e12.subgroupBroadcastDynamicId = q.f12.subgroupBroadcastDynamicId;
  e2.pNext = &e11;
  e11.pNext = &e12;
  void** tail = &e12.pNext;
  std::vector<const char*> extensions;
  if (q.maintenance4_ext && q.m4.maintenance4) {
    em4.maintenance4 = VK_TRUE;
    *tail = &em4;
    tail = &em4.pNext;
    if (q.api < VK_API_VERSION_1_3) extensions.push_back(VK_KHR_MAINTENANCE_4_EXTENSION_NAME);
  }
  if (q.ssc_ext && (q.ssc.subgroupSizeControl || q.ssc.computeFullSubgroups)) {
    essc.subgroupSizeControl = q.ssc.subgroupSizeControl;
    essc.computeFullSubgroups = q.ssc.computeFullSubgroups;
    *tail = &essc;
    tail = &essc.pNext;
    if (q.api < VK_API_VERSION_1_3) extensions.push_back(VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
  }
  if (q.atomic_float_ext && (q.af.shaderBufferFloat32Atomics || q.af.shaderBufferFloat32AtomicAdd)) {
    eaf.shaderBufferFloat32Atomics = q.af.shaderBufferFloat32Atomics;
    eaf.shaderBufferFloat32AtomicAdd = q.af.shaderBufferFloat32AtomicAdd;
    eaf.shaderSharedFloat32Atomics = q.af.shaderSharedFloat32Atomics;
    eaf.shaderSharedFloat32AtomicAdd = q.af.shaderSharedFloat32AtomicAdd;
    *tail = &eaf;
    tail = &eaf.pNext;
    extensions.push_back(VK_EXT_SHADER_ATOMIC_FLOAT_EXTENSION_NAME);
  }
  // The cooperative-matrix kernel's SPIR-V declares f16, 16-bit storage and the Vulkan memory
  // model; it runs in compute shaders as 8 subgroups of exactly 32 invocations: the only size the
  // device has, or one its pipelines can require in whole subgroups (vk_kernel.cpp pins it).
  const char* coopmat_env = std::getenv("KILN_COOPMAT");
  const bool only_32 = q.pssc.minSubgroupSize == 32 && q.pssc.maxSubgroupSize == 32;
  const bool pin_32 = q.ssc.subgroupSizeControl && q.ssc.computeFullSubgroups &&
                      (q.pssc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                      q.pssc.minSubgroupSize <= 32 && q.pssc.maxSubgroupSize >= 32 &&
                      q.pssc.maxComputeWorkgroupSubgroups >= 8;
  const bool wanted = !(coopmat_env && std::string_view(coopmat_env) == "0");
  const bool in_compute = q.pcm.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT;
  const bool declared = q.f12.shaderFloat16 && q.f11.storageBuffer16BitAccess && q.f12.vulkanMemoryModel;
  std::string matrix_shapes;
  const DeviceInfo::MatrixShape matrix = choose_matrix_shape(
      q.matrix_shapes, wanted && in_compute && declared && q.p11.subgroupSize == 32 && (only_32 || pin_32),
      &matrix_shapes);
  VkPhysicalDeviceCooperativeMatrixFeaturesNV ecm{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  if (matrix.m) {
    ecm.cooperativeMatrix = VK_TRUE;
    *tail = &ecm;
    tail = &ecm.pNext;
    extensions.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
  }
  f.int8 = e12.shaderInt8;
  f.int16 = e2.features.shaderInt16;
  f.int64 = e2.features.shaderInt64;
  f.float16 = e12.shaderFloat16;
  f.float64 = e2.features.shaderFloat64;
  f.storage8 = e12.storageBuffer8BitAccess;
  f.storage16 = e11.storageBuffer16BitAccess;
  f.push_constant8 = e12.storagePushConstant8;
  f.push_constant16 = e11.storagePushConstant16;
  f.maintenance4 = em4.maintenance4;
  f.memory_model = e12.vulkanMemoryModel;
  f.host_query_reset = e12.hostQueryReset;
  f.subgroup_size_control = essc.subgroupSizeControl;
  f.full_subgroups = essc.computeFullSubgroups;
  f.scalar_block_layout = e12.scalarBlockLayout;
  f.atomic_float = eaf.shaderBufferFloat32AtomicAdd;
  f.int64_atomics = e12.shaderBufferInt64Atomics;
  f.cooperative_matrix = ecm.cooperativeMatrix;
  if (adopt) f = adopt->features;

  const float priorities[4] = {1, 1, 1, 1};
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = queue_family_;
  qi.queueCount = queue_count;
  qi.pQueuePriorities = priorities;
  VkDeviceCreateInfo ci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  ci.pNext = &e2;
  ci.queueCreateInfoCount = 1;
  ci.pQueueCreateInfos = &qi;
  ci.enabledExtensionCount = std::uint32_t(extensions.size());
  ci.ppEnabledExtensionNames = extensions.data();
  if (adopt) {
    device_ = adopt->device;
    owns_device_ = false;
    for (VkQueue q : adopt->queues) queues_.push_back(std::make_unique<Queue>()), queues_.back()->queue = q;
  } else {
    KILN_VK_CHECK(vkCreateDevice(physical, &ci, nullptr, &device_));
    for (std::uint32_t i = 0; i < queue_count; ++i) {
      auto queue = std::make_unique<Queue>();
      vkGetDeviceQueue(device_, queue_family_, i, &queue->queue);
      queues_.push_back(std::move(queue));
    }
  }

  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes};
  VkPipelineLayoutCreateInfo li{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  li.pushConstantRangeCount = 1;
  li.pPushConstantRanges = &range;
  if (const VkResult r = vkCreatePipelineLayout(device_, &li, nullptr, &pipeline_layout_); r != VK_SUCCESS) {
    if (owns_device_) vkDestroyDevice(device_, nullptr);
    throw_vk_error("vkCreatePipelineLayout", r, __FILE__, __LINE__);
  }

  // DeviceInfo.
  info_.backend = Backend::vulkan;
  info_.index = index;
  info_.name = properties_.deviceName;
  for (std::uint32_t i = 0; i < memory_.memoryHeapCount; ++i)
    if (memory_.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      info_.memory_bytes = std::max<std::uint64_t>(info_.memory_bytes, memory_.memoryHeaps[i].size);
  info_.arch = "vulkan " + std::to_string(VK_API_VERSION_MAJOR(q.api)) + "." +
               std::to_string(VK_API_VERSION_MINOR(q.api)) + " " + type_name(properties_.deviceType);
  info_.driver = std::string(q.p12.driverName) + " " + q.p12.driverInfo + " (driverVersion " +
                 std::to_string(properties_.driverVersion) + ", Vulkan " + version_text(properties_.apiVersion) + ")";
  info_.subgroup_size = q.p11.subgroupSize ? q.p11.subgroupSize : 1;
  // Kernels using subgroup operations are created with the reported size required (and whole
  // subgroups), where the device lets pipelines choose: the plans assume that size (a driver may
  // otherwise compile a smaller one, e.g. SIMD8/16 where 32 is reported).
  pin_subgroup_size_ = f.subgroup_size_control && f.full_subgroups &&
                       (q.pssc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                       info_.subgroup_size >= q.pssc.minSubgroupSize && info_.subgroup_size <= q.pssc.maxSubgroupSize;
  max_workgroup_subgroups_ = q.pssc.maxComputeWorkgroupSubgroups;
  const char* no_arithmetic = std::getenv("KILN_VK_NO_SUBGROUP_ARITHMETIC");
  info_.subgroup_arithmetic = (q.p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                              (q.p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                              !(no_arithmetic && *no_arithmetic && std::string_view(no_arithmetic) != "0");
  // KILN_VK_DENORMS=flush leaves the driver's default (for comparing the two).
  const char* denorms = std::getenv("KILN_VK_DENORMS");
  if (!(denorms && std::string_view(denorms) == "flush"))
    denorm_preserve_ = denorm_widths(q.p12.shaderDenormPreserveFloat16, q.p12.shaderDenormPreserveFloat32,
                                     q.p12.shaderDenormPreserveFloat64, int(q.p12.denormBehaviorIndependence));
  info_.max_allocation_bytes = q.p11.maxMemoryAllocationSize;
  if (q.p12.driverID == VK_DRIVER_ID_MESA_LLVMPIPE) info_.loop_limit = 65535;  // (LP_MAX_TGSI_LOOP_ITERATIONS)
  // (An adopted device: where its creator enabled cooperative matrices and what the kernel declares.)
  if (f.cooperative_matrix && f.memory_model && f.float16 && f.storage16) info_.cooperative_matrix = matrix;
  info_.matrix_shapes = matrix_shapes;
  max_buffer_size_ = q.maintenance4_ext && q.pm4.maxBufferSize ? q.pm4.maxBufferSize : q.p11.maxMemoryAllocationSize;
  for (DType t : kAllDTypes) {
    bool ok = true;
    switch (t) {
      case DType::pred:
      case DType::s8:
      case DType::u8: ok = f.int8 && f.storage8; break;
      case DType::s16:
      case DType::u16:
      case DType::bf16: ok = f.int16 && f.storage16; break;
      case DType::f16: ok = f.float16 && f.storage16; break;
      case DType::s64:
      case DType::u64: ok = f.int64; break;
      case DType::f64: ok = f.float64; break;
      default: break;
    }
    if (ok) info_.dtypes.push_back(t);
  }

  try {
    allocator_ = std::make_unique<Allocator>(*this);
    kernels_ = std::make_unique<KernelCache>(*this);
  } catch (...) {  // the destructor does not run for a constructor that throws
    kernels_.reset();
    allocator_.reset();
    vkDestroyPipelineLayout(device_, pipeline_layout_, nullptr);
    if (owns_device_) vkDestroyDevice(device_, nullptr);
    throw;
  }
}

VulkanDevice::~VulkanDevice() {
  if (!device_) return;
  vkDeviceWaitIdle(device_);
  default_stream_.reset();  // children first
  kernels_.reset();
  allocator_.reset();
  if (pipeline_layout_) vkDestroyPipelineLayout(device_, pipeline_layout_, nullptr);
  if (owns_device_) vkDestroyDevice(device_, nullptr);
}

std::shared_ptr<Buffer> VulkanDevice::allocate(std::size_t bytes) { return allocator_->allocate(bytes); }

Stream& VulkanDevice::default_stream() {
  std::call_once(default_stream_once_, [&] {
    default_stream_ = std::make_unique<VulkanStream>(*this);
    default_stream_ptr_ = default_stream_.get();
  });
  return *default_stream_;
}

std::unique_ptr<Stream> VulkanDevice::create_stream() {
  // Memory the default stream's unfinished work uses may have been recycled at once while it was
  // the only stream (Allocator::release): the new stream must not touch it before that work ends.
  // It is registered first, so that memory freed from now on waits for it instead.
  auto stream = std::make_unique<VulkanStream>(*this);
  if (default_stream_if_created()) static_cast<VulkanStream&>(default_stream()).settle();
  return stream;
}

bool VulkanDevice::runs_as_built(const KernelEntry& entry, std::string* why) const {
  if (info_.subgroup_arithmetic) return true;
  for (int f = 0; f < entry.num_functions; ++f) {
    const EmbeddedBlob& blob = entry.functions[f].spirv;
    if (spirv_has_capability({reinterpret_cast<const std::byte*>(blob.data), blob.size},
                             kCapabilityGroupNonUniformArithmetic)) {
      if (why) *why = "it uses subgroup arithmetic, which " + label_ + " lacks";
      return false;
    }
  }
  return true;
}

const Kernel& VulkanDevice::kernel(const Registry&, const KernelEntry& entry, int function) {
  return kernels_->get(entry, function);
}

Queue& VulkanDevice::next_queue() { return *queues_[next_queue_++ % queues_.size()]; }

void VulkanDevice::register_stream(VulkanStream* s) {
  std::lock_guard lock(streams_mutex_);
  streams_.push_back({s, next_stream_serial_++});
}

void VulkanDevice::unregister_stream(VulkanStream* s) {
  std::lock_guard lock(streams_mutex_);
  std::erase_if(streams_, [&](const auto& e) { return e.first == s; });
}

std::vector<StreamMark> VulkanDevice::stream_horizons() {
  std::lock_guard lock(streams_mutex_);
  std::vector<StreamMark> out;
  for (auto [s, serial] : streams_) out.push_back({s, serial, s->horizon()});
  return out;
}

bool VulkanDevice::stream_reached(const StreamMark& mark) {
  std::lock_guard lock(streams_mutex_);
  auto it = std::find_if(streams_.begin(), streams_.end(),
                         [&](const auto& e) { return e.first == mark.stream && e.second == mark.serial; });
  if (it == streams_.end()) return true;
  return it->first->completed() >= mark.value;
}

std::unique_ptr<Device> create_device(const InstanceState& instance, VkPhysicalDevice physical, int index,
                                      std::string* why) {
  Query q(physical, instance.api_version);
  const std::string name = q.props.deviceName;
  // The kernels are SPIR-V 1.6 (Vulkan 1.3) with LocalSizeId (maintenance4) and 64-bit indices.
  if (q.api < VK_API_VERSION_1_3) {
    *why = name + ": Vulkan " + version_text(q.props.apiVersion) + " (needs 1.3: the kernels are SPIR-V 1.6)";
    return nullptr;
  }
  if (!q.m4.maintenance4) {
    *why = name + ": no maintenance4";
    return nullptr;
  }
  if (!q.f2.features.shaderInt64) {
    *why = name + ": no shaderInt64 (the kernels index with 64-bit integers)";
    return nullptr;
  }
  if (!q.f12.bufferDeviceAddress) {
    *why = name + ": no bufferDeviceAddress";
    return nullptr;
  }
  if (!q.f12.timelineSemaphore) {
    *why = name + ": no timelineSemaphore";
    return nullptr;
  }
  return std::make_unique<VulkanDevice>(instance, physical, index);
}

VulkanDevice& vulkan_device(Device& d, const char* what) {
  auto* vd = dynamic_cast<VulkanDevice*>(&d);
  if (!vd) fail(ErrorCode::invalid_argument, std::string(what) + ": device '" + d.id() + "' is not a Vulkan device");
  return *vd;
}

}  // namespace kiln::vk
