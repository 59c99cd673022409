// The on-disk format of the persisted pipeline cache (see vk_cache_file.hpp).
#include "runtime/vulkan/vk_cache_file.hpp"

#include <cstring>

#include <xxhash.h>

#include "core/bytes.hpp"

namespace kiln::vk {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'V', 'K', 'P', 'C'};
constexpr std::uint32_t kVkHeaderVersionOne = 1;  // VK_PIPELINE_CACHE_HEADER_VERSION_ONE
constexpr std::size_t kVkHeaderBytes = 16 + 16;   // VkPipelineCacheHeaderVersionOne

// Appends |n| bytes (resize + memcpy: GCC 12 reports a false -Wstringop-overflow for
// vector::insert after reserve, GCC PR 105651).
void put_bytes(std::vector<char>& out, const void* p, std::size_t n) {
  const std::size_t at = out.size();
  out.resize(at + n);
  if (n) std::memcpy(out.data() + at, p, n);
}

template <class T>
void put(std::vector<char>& out, const T& v) {
  put_bytes(out, &v, sizeof v);
}

template <class T>
T get(const char* p) {
  return load_unaligned<T>(p);
}

}  // namespace

std::vector<char> wrap_pipeline_cache(std::span<const char> payload, const PipelineCacheIdentity& id) {
  std::vector<char> out;
  out.reserve(kPipelineCacheHeaderBytes + payload.size());
  put_bytes(out, kMagic, sizeof kMagic);
  put(out, kPipelineCacheFormat);
  put(out, id.vendor_id);
  put(out, id.device_id);
  put_bytes(out, id.uuid, 16);
  put(out, std::uint64_t(payload.size()));
  put(out, std::uint64_t(XXH64(payload.data(), payload.size(), 0)));
  put_bytes(out, payload.data(), payload.size());
  return out;
}

std::optional<std::span<const char>> unwrap_pipeline_cache(std::span<const char> file,
                                                           const PipelineCacheIdentity& id,
                                                           std::string* why) {
  auto bad = [&](std::string text) -> std::optional<std::span<const char>> {
    if (why) *why = std::move(text);
    return std::nullopt;
  };
  if (file.size() < kPipelineCacheHeaderBytes)
    return bad("the file is truncated (" + std::to_string(file.size()) + " bytes, the header alone is " +
               std::to_string(kPipelineCacheHeaderBytes) + ")");
  const char* p = file.data();
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) return bad("it is not a Kiln pipeline cache (bad magic)");
  if (get<std::uint32_t>(p + 8) != kPipelineCacheFormat)
    return bad("format version " + std::to_string(get<std::uint32_t>(p + 8)) + ", expected " +
               std::to_string(kPipelineCacheFormat));
  if (get<std::uint32_t>(p + 12) != id.vendor_id || get<std::uint32_t>(p + 16) != id.device_id ||
      std::memcmp(p + 20, id.uuid, 16) != 0)
    return bad("it was written for another device or driver");
  const auto size = get<std::uint64_t>(p + 36);
  const std::uint64_t have = file.size() - kPipelineCacheHeaderBytes;
  if (size != have)
    return bad("the header announces " + std::to_string(size) + " bytes of data, the file holds " +
               std::to_string(have) + (size > have ? " (truncated)" : ""));
  const std::span<const char> payload = file.subspan(kPipelineCacheHeaderBytes);
  if (get<std::uint64_t>(p + 44) != XXH64(payload.data(), payload.size(), 0))
    return bad("the checksum does not match (the file is corrupt)");
  // The driver's own header (VkPipelineCacheHeaderVersionOne) must describe this device too.
  if (payload.size() < kVkHeaderBytes) return bad("the driver data is shorter than its header");
  const char* h = payload.data();
  if (get<std::uint32_t>(h) < kVkHeaderBytes || get<std::uint32_t>(h) > payload.size() ||
      get<std::uint32_t>(h + 4) != kVkHeaderVersionOne || get<std::uint32_t>(h + 8) != id.vendor_id ||
      get<std::uint32_t>(h + 12) != id.device_id || std::memcmp(h + 16, id.uuid, 16) != 0)
    return bad("the driver data's header does not match this device");
  return payload;
}

}  // namespace kiln::vk
