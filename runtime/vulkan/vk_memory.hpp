// Internal: device memory. Buffers are 256-byte-aligned sub-ranges of big pooled blocks (one
// VkBuffer per block, bound to one VkDeviceMemory), or dedicated allocations for large requests.
// Host-visible chunks serve as staging memory and as the params arena of large kernel params.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/buffer.hpp"
#include "runtime/device_state.hpp"
#include "runtime/vulkan/vk_common.hpp"

namespace kiln::vk {

class VulkanDevice;
class VulkanStream;

inline constexpr std::size_t kBufferAlignment = 256;
inline constexpr std::size_t kBlockSize = std::size_t(64) << 20;   // pooled block
inline constexpr std::size_t kDedicatedThreshold = kBlockSize / 4;  // larger requests: own memory

// A VkBuffer bound to its own VkDeviceMemory, usable by address (RAII, move-only).
struct RawBuffer {
  VkDevice device = VK_NULL_HANDLE;
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  VkDeviceAddress address = 0;
  std::size_t size = 0;
  std::byte* mapped = nullptr;  // when host visible and mapped

  RawBuffer() = default;
  RawBuffer(RawBuffer&& o) noexcept { *this = std::move(o); }
  RawBuffer& operator=(RawBuffer&& o) noexcept;
  RawBuffer(const RawBuffer&) = delete;
  RawBuffer& operator=(const RawBuffer&) = delete;
  ~RawBuffer() { reset(); }
  void reset();
};

enum class MemoryKind { device, host };
// Creates a storage + transfer + device-address buffer of |size| bytes in device-local memory
// (kind device) or host-visible coherent mapped memory (kind host). Throws out_of_memory.
RawBuffer create_raw_buffer(VulkanDevice& device, std::size_t size, MemoryKind kind);

struct Block {
  RawBuffer raw;
  std::size_t begin = 0;                     // first usable offset (address 256-aligned)
  std::map<std::size_t, std::size_t> free;   // offset -> size, coalesced
  std::size_t used = 0;                      // bytes allocated
  bool dedicated = false;
  detail::DeviceState* state = nullptr;      // |charged| bytes are held under its memory cap
  std::size_t charged = 0;

  Block() = default;
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  ~Block() {
    if (state) state->unreserve(charged);
  }
};

class Allocator;

class VulkanBuffer final : public Buffer {
 public:
  VulkanBuffer(Device* device, Allocator* allocator, Block* block, std::size_t offset,
               std::size_t reserved, std::size_t size);
  ~VulkanBuffer() override;
  VkBuffer vk_buffer() const { return block_->raw.buffer; }
  std::size_t vk_offset() const { return offset_; }  // of this range inside vk_buffer()

 private:
  Allocator* allocator_;
  Block* block_;
  std::size_t offset_;
  std::size_t reserved_;
};

class Allocator {
 public:
  explicit Allocator(VulkanDevice& device);
  ~Allocator();
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  std::shared_ptr<Buffer> allocate(std::size_t bytes);
  void release(Block* block, std::size_t offset, std::size_t reserved);

  std::size_t block_count();      // pooled blocks plus dedicated allocations alive
  std::size_t bytes_reserved();   // sum of the sizes of the blocks alive

 private:
  struct Retired {
    std::unique_ptr<Block> block;
    std::vector<StreamMark> waits;
  };
  // A pooled range freed while several streams exist and one has unfinished work: reused once
  // every stream has reached the point it was at (another stream's recorded work may still use it).
  struct RetiredRange {
    Block* block;
    std::size_t offset, reserved;
    std::vector<StreamMark> waits;
  };
  // One attempt of allocate() (|reserved|: bytes rounded up to the alignment; |limit|: the
  // device's largest buffer).
  std::shared_ptr<Buffer> allocate_once(std::size_t bytes, std::size_t reserved, std::uint64_t limit);
  void retire_locked(std::unique_ptr<Block> block);
  // Puts a pooled range back on its block's free list (coalesced); an emptied block beyond the
  // one kept for reuse is retired.
  void free_range_locked(Block* block, std::size_t offset, std::size_t reserved);
  bool reached_locked(const std::vector<StreamMark>& waits);
  void collect_locked();
  // Device memory of |size| bytes for |block| (charged under the memory cap). On out-of-memory
  // (the cap or the driver) releases the cached blocks and retries once; then throws
  // out_of_memory naming |request| and what is free.
  void create_block_memory_locked(Block& block, std::size_t size, std::size_t request);
  // Gives the empty pooled blocks back (once no stream can still use them).
  void release_cached_locked();

  VulkanDevice& device_;
  detail::DeviceState& state_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Block>> blocks_;  // pooled and dedicated
  std::vector<Retired> retired_;
  std::vector<RetiredRange> retired_ranges_;
};

// The VulkanBuffer behind |b|, checked to belong to |device|; |what| names the operation.
const VulkanBuffer& vulkan_buffer(const Buffer& b, const VulkanDevice& device, const char* what);

}  // namespace kiln::vk
