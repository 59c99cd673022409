// The Vulkan loader is opened at run time through volk (no link-time dependency on libvulkan),
// plus the VkResult names and the error thrown by KILN_VK_CHECK.
#include "runtime/vulkan/vk_common.hpp"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-function-type"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include <volk.c>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace kiln::vk {

const char* result_name(VkResult r) {
  switch (r) {
#define KILN_VK_NAME(x) \
  case x: return #x;
    KILN_VK_NAME(VK_SUCCESS)
    KILN_VK_NAME(VK_NOT_READY)
    KILN_VK_NAME(VK_TIMEOUT)
    KILN_VK_NAME(VK_EVENT_SET)
    KILN_VK_NAME(VK_EVENT_RESET)
    KILN_VK_NAME(VK_INCOMPLETE)
    KILN_VK_NAME(VK_ERROR_OUT_OF_HOST_MEMORY)
    KILN_VK_NAME(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    KILN_VK_NAME(VK_ERROR_INITIALIZATION_FAILED)
    KILN_VK_NAME(VK_ERROR_DEVICE_LOST)
    KILN_VK_NAME(VK_ERROR_MEMORY_MAP_FAILED)
    KILN_VK_NAME(VK_ERROR_LAYER_NOT_PRESENT)
    KILN_VK_NAME(VK_ERROR_EXTENSION_NOT_PRESENT)
    KILN_VK_NAME(VK_ERROR_FEATURE_NOT_PRESENT)
    KILN_VK_NAME(VK_ERROR_INCOMPATIBLE_DRIVER)
    KILN_VK_NAME(VK_ERROR_TOO_MANY_OBJECTS)
    KILN_VK_NAME(VK_ERROR_FORMAT_NOT_SUPPORTED)
    KILN_VK_NAME(VK_ERROR_FRAGMENTED_POOL)
    KILN_VK_NAME(VK_ERROR_UNKNOWN)
    KILN_VK_NAME(VK_ERROR_OUT_OF_POOL_MEMORY)
    KILN_VK_NAME(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    KILN_VK_NAME(VK_ERROR_FRAGMENTATION)
    KILN_VK_NAME(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
    KILN_VK_NAME(VK_PIPELINE_COMPILE_REQUIRED)
    KILN_VK_NAME(VK_ERROR_VALIDATION_FAILED_EXT)
    KILN_VK_NAME(VK_ERROR_INVALID_SHADER_NV)
    KILN_VK_NAME(VK_ERROR_NOT_PERMITTED_KHR)
#undef KILN_VK_NAME
    default: break;
  }
  return "VkResult(unknown)";
}

ErrorCode error_code_of(VkResult r) {
  switch (r) {
    case VK_ERROR_DEVICE_LOST: return ErrorCode::device_lost;
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_POOL_MEMORY:
    case VK_ERROR_FRAGMENTATION:
    case VK_ERROR_TOO_MANY_OBJECTS: return ErrorCode::out_of_memory;
    case VK_ERROR_INITIALIZATION_FAILED:
    case VK_ERROR_LAYER_NOT_PRESENT:
    case VK_ERROR_EXTENSION_NOT_PRESENT:
    case VK_ERROR_INCOMPATIBLE_DRIVER: return ErrorCode::device_unavailable;
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_FORMAT_NOT_SUPPORTED: return ErrorCode::unsupported;
    case VK_ERROR_INVALID_SHADER_NV: return ErrorCode::compile_error;
    default: return ErrorCode::internal;
  }
}

void throw_vk_error(const char* call, VkResult r, const char* file, int line) {
  std::string code = std::to_string(static_cast<int>(r));
  fail(error_code_of(r), std::string("vulkan: ") + call + " failed with " + result_name(r) + " (" +
                             code + ") at " + file + ":" + std::to_string(line));
}

}  // namespace kiln::vk
