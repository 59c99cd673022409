// Internal: the process-wide VkInstance (created once, never destroyed) and the validation layer.
#pragma once

#include <string>

#include "runtime/vulkan/vk_common.hpp"

namespace kiln::vk {

struct InstanceState {
  VkInstance instance = VK_NULL_HANDLE;
  std::uint32_t api_version = 0;  // the version the instance was created with
  bool validation = false;
  VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
  std::string error;  // why there is no instance, when |instance| is null
};

// Opens the loader and creates the instance on first use (thread-safe). Never throws: on failure
// the returned state has a null instance and an |error| saying why.
const InstanceState& instance_state();

// "1.3.230"
std::string version_text(std::uint32_t v);

}  // namespace kiln::vk
