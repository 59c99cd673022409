// The Vulkan instance, the validation layer's message sink, and probe_vulkan().
#include "runtime/vulkan/vk_instance.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "runtime/backends.hpp"
#include "runtime/vulkan/vk_device.hpp"
#include "runtime/vulkan/vk_validation.hpp"

namespace kiln::vk {
namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

struct MessageSink {
  std::mutex mutex;
  std::vector<std::string> messages;
  std::atomic<std::size_t> count{0};
};

MessageSink& sink() {
  static MessageSink* s = new MessageSink;  // never destroyed: the layer may call late at exit
  return *s;
}

VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                          VkDebugUtilsMessageTypeFlagsEXT type,
                                          const VkDebugUtilsMessengerCallbackDataEXT* data, void*) {
  if (!(severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
    return VK_FALSE;
  std::string text = (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) ? "error" : "warning";
  text += (type & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT)    ? " [validation] "
          : (type & VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT) ? " [performance] "
                                                                     : " [general] ";
  if (data && data->pMessageIdName) text += std::string(data->pMessageIdName) + ": ";
  if (data && data->pMessage) text += data->pMessage;
  std::fprintf(stderr, "kiln vulkan validation: %s\n", text.c_str());
  auto& s = sink();
  std::lock_guard lock(s.mutex);
  s.messages.push_back(std::move(text));
  s.count = s.messages.size();
  return VK_FALSE;
}

bool validation_requested() {
  const char* env = std::getenv("KILN_VK_VALIDATION");
  return env && *env && std::strcmp(env, "0") != 0;
}

InstanceState create_instance() {
  InstanceState st;
  if (volkInitialize() != VK_SUCCESS) {
    st.error = "the Vulkan loader (libvulkan.so.1) was not found";
    return st;
  }
  std::uint32_t loader_version = VK_API_VERSION_1_0;
  if (vkEnumerateInstanceVersion) vkEnumerateInstanceVersion(&loader_version);
  if (loader_version < VK_API_VERSION_1_2) {
    st.error = "the Vulkan loader supports only Vulkan " + version_text(loader_version) +
               "; Kiln needs 1.2 or newer";
    return st;
  }
  st.api_version = std::min<std::uint32_t>(loader_version, VK_API_VERSION_1_3);

  std::vector<const char*> layers, extensions;
  VkDebugUtilsMessengerCreateInfoEXT messenger_info{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  messenger_info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                                   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  messenger_info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                               VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  messenger_info.pfnUserCallback = on_message;
  VkValidationFeatureEnableEXT enables[] = {VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT};
  VkValidationFeaturesEXT features{VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
  features.enabledValidationFeatureCount = 1;
  features.pEnabledValidationFeatures = enables;

  const void* next = nullptr;
  bool layer_found = false;
  if (validation_requested()) {
    std::uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, nullptr);
    std::vector<VkLayerProperties> props(n);
    vkEnumerateInstanceLayerProperties(&n, props.data());
    layer_found = std::any_of(props.begin(), props.end(), [](const VkLayerProperties& p) {
      return std::strcmp(p.layerName, kValidationLayer) == 0;
    });
  }
  if (validation_requested() && !layer_found) {
    // Vulkan stays the default device (falling back to the CPU silently hid the problem); say so once.
    std::fprintf(stderr,
                 "kiln: KILN_VK_VALIDATION is set but the layer %s is not installed (Debian: apt-get install "
                 "vulkan-validationlayers); Vulkan runs without validation\n",
                 kValidationLayer);
  } else if (validation_requested()) {
    std::uint32_t n = 0;
    vkEnumerateInstanceExtensionProperties(kValidationLayer, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    vkEnumerateInstanceExtensionProperties(kValidationLayer, &n, exts.data());
    bool has_features = false;
    for (const auto& e : exts)
      if (std::strcmp(e.extensionName, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME) == 0) has_features = true;
    layers.push_back(kValidationLayer);
    extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    if (has_features) {
      extensions.push_back(VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
      features.pNext = &messenger_info;
      next = &features;
    } else {
      next = &messenger_info;
    }
    st.validation = true;
  }

  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "kiln";
  app.pEngineName = "kiln";
  app.apiVersion = st.api_version;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pNext = next;
  ci.pApplicationInfo = &app;
  ci.enabledLayerCount = std::uint32_t(layers.size());
  ci.ppEnabledLayerNames = layers.data();
  ci.enabledExtensionCount = std::uint32_t(extensions.size());
  ci.ppEnabledExtensionNames = extensions.data();
  VkResult r = vkCreateInstance(&ci, nullptr, &st.instance);
  if (r != VK_SUCCESS) {
    st.instance = VK_NULL_HANDLE;
    st.error = std::string("vkCreateInstance failed with ") + result_name(r);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
      st.error = "no Vulkan driver (ICD) with Vulkan " + version_text(st.api_version) + " support was found (" +
                 st.error + ")";
    return st;
  }
  volkLoadInstance(st.instance);
  if (st.validation) {
    r = vkCreateDebugUtilsMessengerEXT(st.instance, &messenger_info, nullptr, &st.messenger);
    if (r != VK_SUCCESS) {
      st.error = std::string("vkCreateDebugUtilsMessengerEXT failed with ") + result_name(r);
      vkDestroyInstance(st.instance, nullptr);
      st.instance = VK_NULL_HANDLE;
      return st;
    }
  }
  return st;
}

}  // namespace

std::string version_text(std::uint32_t v) {
  return std::to_string(VK_API_VERSION_MAJOR(v)) + "." + std::to_string(VK_API_VERSION_MINOR(v)) +
         "." + std::to_string(VK_API_VERSION_PATCH(v));
}

const InstanceState& instance_state() {
  // Created once and never destroyed: devices (which are never destroyed either) depend on it.
  static const InstanceState* state = new InstanceState(create_instance());
  return *state;
}

bool validation_enabled() { return instance_state().validation; }

std::size_t validation_message_count() { return sink().count.load(); }

std::vector<std::string> take_validation_messages() {
  auto& s = sink();
  std::lock_guard lock(s.mutex);
  std::vector<std::string> out;
  out.swap(s.messages);
  s.count = 0;
  return out;
}

}  // namespace kiln::vk

namespace kiln::detail {

BackendProbe probe_vulkan() {
  BackendProbe probe;
  const auto& st = vk::instance_state();
  if (!st.instance) {
    probe.unavailable_reason = st.error;
    return probe;
  }
  std::uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices(st.instance, &n, nullptr);
  std::vector<VkPhysicalDevice> physical(n);
  if (r >= 0 && n) r = vkEnumeratePhysicalDevices(st.instance, &n, physical.data());
  if (r < 0) {
    probe.unavailable_reason = std::string("vkEnumeratePhysicalDevices failed with ") + vk::result_name(r);
    return probe;
  }
  if (physical.empty()) {
    probe.unavailable_reason = "no Vulkan physical device (is a Vulkan driver, e.g. mesa-vulkan-drivers, installed?)";
    return probe;
  }
  // Best devices first: discrete, integrated, virtual, then CPU implementations.
  auto rank = [](VkPhysicalDevice p) {
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(p, &props);
    switch (props.deviceType) {
      case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
      case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
      case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
      case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
      default: return 4;
    }
  };
  std::stable_sort(physical.begin(), physical.end(),
                   [&](VkPhysicalDevice a, VkPhysicalDevice b) { return rank(a) < rank(b); });
  std::string reasons;
  for (VkPhysicalDevice p : physical) {
    std::string why;
    try {
      auto d = vk::create_device(st, p, int(probe.devices.size()), &why);
      if (d) {
        probe.devices.push_back(std::move(d));
        continue;
      }
    } catch (const std::exception& e) {
      why = e.what();
    }
    reasons.append(reasons.empty() ? "" : "; ").append(why);
  }
  if (probe.devices.empty())
    probe.unavailable_reason = "no usable Vulkan 1.2+ device with bufferDeviceAddress and timelineSemaphore (" +
                               reasons + ")";
  return probe;
}

}  // namespace kiln::detail
