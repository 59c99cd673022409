// Internal: the on-disk format of the persisted VkPipelineCache. The driver's cache data is
// wrapped in a Kiln header with the payload size and an XXH64 checksum, so a truncated, corrupt or
// foreign file is recognised and ignored (with a warning) instead of being handed to the driver,
// which trusts it. Pure C++ (no Vulkan headers): the fuzz target links it alone.
//
//   0  "KILNVKPC"          8 bytes
//   8  format version      u32 (kPipelineCacheFormat)
//   12 vendorID, deviceID  u32, u32
//   20 pipelineCacheUUID   16 bytes
//   36 payload size        u64
//   44 XXH64(payload, 0)   u64
//   52 payload             a VkPipelineCacheHeaderVersionOne followed by the driver's data
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kiln::vk {

inline constexpr std::uint32_t kPipelineCacheFormat = 1;
inline constexpr std::size_t kPipelineCacheHeaderBytes = 52;

// What a cache file must match: the device's VkPhysicalDeviceProperties fields.
struct PipelineCacheIdentity {
  std::uint32_t vendor_id = 0;
  std::uint32_t device_id = 0;
  std::uint8_t uuid[16] = {};
};

// The file contents for the driver's cache data |payload|.
std::vector<char> wrap_pipeline_cache(std::span<const char> payload, const PipelineCacheIdentity& id);

// The driver's cache data inside |file| (a view into it), or nullopt with *why saying what is wrong
// (too short, bad magic, another format version or device, size or checksum mismatch, a payload
// whose VkPipelineCacheHeaderVersionOne does not match the device). Never reads outside |file|.
std::optional<std::span<const char>> unwrap_pipeline_cache(std::span<const char> file,
                                                           const PipelineCacheIdentity& id,
                                                           std::string* why);

}  // namespace kiln::vk
