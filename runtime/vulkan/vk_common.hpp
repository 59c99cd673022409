// Internal to the Vulkan backend: the volk-loaded API, the one checking macro and small helpers.
#pragma once

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <volk.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"

namespace kiln::vk {

// "VK_ERROR_DEVICE_LOST", "VK_SUCCESS", ...
const char* result_name(VkResult r);
// The kiln::ErrorCode a failed VkResult maps to (device_lost, out_of_memory, ...).
ErrorCode error_code_of(VkResult r);
[[noreturn]] void throw_vk_error(const char* call, VkResult r, const char* file, int line);

inline std::size_t align_up(std::size_t v, std::size_t a) { return (v + a - 1) / a * a; }

class VulkanStream;
// A point on a stream's timeline: the stream, the serial it was registered under (a stream
// created later at the same address is another stream) and the value.
struct StreamMark {
  const VulkanStream* stream = nullptr;
  std::uint64_t serial = 0, value = 0;
};

}  // namespace kiln::vk

// Checks a Vulkan call; a negative VkResult throws kiln::Error naming the call, the VkResult, the
// file and the line. VK_ERROR_DEVICE_LOST gives ErrorCode::device_lost, the out-of-memory results
// ErrorCode::out_of_memory.
#define KILN_VK_CHECK(call)                                                      \
  do {                                                                           \
    VkResult kiln_vk_result_ = (call);                                           \
    if (kiln_vk_result_ < 0)                                                     \
      ::kiln::vk::throw_vk_error(#call, kiln_vk_result_, __FILE__, __LINE__);    \
  } while (0)
