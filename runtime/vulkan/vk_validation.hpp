// Vulkan validation-layer hooks, for tests and debugging.
// Setting KILN_VK_VALIDATION=1 in the environment before the first device enumeration enables
// VK_LAYER_KHRONOS_validation (with synchronization validation) and a VK_EXT_debug_utils
// messenger. Every warning or error message it reports is counted and kept here until taken.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace kiln::vk {

// True when the Vulkan instance was created with the validation layer.
bool validation_enabled();
// Warning and error messages reported since the last take_validation_messages().
std::size_t validation_message_count();
// Returns the stored messages and clears them (the count goes back to 0).
std::vector<std::string> take_validation_messages();

}  // namespace kiln::vk
