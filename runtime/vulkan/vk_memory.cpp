// Device memory: the pooled sub-allocator, dedicated allocations, host-visible chunks.
#include "runtime/vulkan/vk_memory.hpp"

#include <algorithm>
#include <limits>

#include "runtime/vulkan/vk_device.hpp"

namespace kiln::vk {

RawBuffer& RawBuffer::operator=(RawBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    device = o.device;
    buffer = o.buffer;
    memory = o.memory;
    address = o.address;
    size = o.size;
    mapped = o.mapped;
    o.buffer = VK_NULL_HANDLE;
    o.memory = VK_NULL_HANDLE;
    o.mapped = nullptr;
  }
  return *this;
}

void RawBuffer::reset() {
  if (buffer) vkDestroyBuffer(device, buffer, nullptr);
  if (memory) vkFreeMemory(device, memory, nullptr);  // unmaps implicitly
  buffer = VK_NULL_HANDLE;
  memory = VK_NULL_HANDLE;
  mapped = nullptr;
  address = 0;
  size = 0;
}

namespace {

std::string size_text(std::size_t bytes) {
  std::string s = std::to_string(bytes) + " bytes";
  if (bytes >= (std::size_t(1) << 20))
    s += " (" + std::to_string(bytes >> 20) + " MiB)";
  return s;
}

// Memory types allowed by |bits|, best first.
std::vector<std::uint32_t> candidate_types(const VkPhysicalDeviceMemoryProperties& mp,
                                           std::uint32_t bits, MemoryKind kind) {
  std::vector<std::pair<int, std::uint32_t>> scored;
  for (std::uint32_t i = 0; i < mp.memoryTypeCount; ++i) {
    if (!(bits & (1u << i))) continue;
    const VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
    const bool local = f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    const bool visible = f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    const bool coherent = f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    const bool cached = f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    if (f & (VK_MEMORY_PROPERTY_PROTECTED_BIT | VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT)) continue;
    int score;
    if (kind == MemoryKind::device) {
      score = local ? (visible ? 1 : 0) : 2;
    } else {
      if (!visible || !coherent) continue;
      score = (local ? 2 : 0) + (cached ? 0 : 1);
    }
    scored.push_back({score, i});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::uint32_t> out;
  for (auto& s : scored) out.push_back(s.second);
  return out;
}

}  // namespace

RawBuffer create_raw_buffer(VulkanDevice& device, std::size_t size, MemoryKind kind) {
  RawBuffer rb;
  rb.device = device.handle();
  rb.size = size;
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = size;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT |
             VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  KILN_VK_CHECK(vkCreateBuffer(rb.device, &bi, nullptr, &rb.buffer));
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(rb.device, rb.buffer, &req);

  VkMemoryAllocateFlagsInfo flags{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO};
  flags.flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT;
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.pNext = &flags;
  ai.allocationSize = req.size;
  VkResult last = VK_ERROR_OUT_OF_DEVICE_MEMORY;
  for (std::uint32_t type : candidate_types(device.memory_properties(), req.memoryTypeBits, kind)) {
    ai.memoryTypeIndex = type;
    last = vkAllocateMemory(rb.device, &ai, nullptr, &rb.memory);
    if (last == VK_SUCCESS) break;
    rb.memory = VK_NULL_HANDLE;
    if (last != VK_ERROR_OUT_OF_DEVICE_MEMORY && last != VK_ERROR_OUT_OF_HOST_MEMORY)
      throw_vk_error("vkAllocateMemory", last, __FILE__, __LINE__);
  }
  if (!rb.memory)
    fail(ErrorCode::out_of_memory,
         device.label() + ": out of memory allocating " + size_text(size) + " of " +
             (kind == MemoryKind::device ? "device" : "host-visible staging") + " memory (" +
             result_name(last) + ")");
  KILN_VK_CHECK(vkBindBufferMemory(rb.device, rb.buffer, rb.memory, 0));
  if (kind == MemoryKind::host) {
    void* p = nullptr;
    KILN_VK_CHECK(vkMapMemory(rb.device, rb.memory, 0, VK_WHOLE_SIZE, 0, &p));
    rb.mapped = static_cast<std::byte*>(p);
  }
  VkBufferDeviceAddressInfo addr{VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO};
  addr.buffer = rb.buffer;
  rb.address = vkGetBufferDeviceAddress(rb.device, &addr);
  return rb;
}

// ---- buffers ---------------------------------------------------------------------------------

VulkanBuffer::VulkanBuffer(Device* device, Allocator* allocator, Block* block, std::size_t offset,
                           std::size_t reserved, std::size_t size)
    : Buffer(device, size, block->raw.address + offset),
      allocator_(allocator),
      block_(block),
      offset_(offset),
      reserved_(reserved) {}

VulkanBuffer::~VulkanBuffer() { allocator_->release(block_, offset_, reserved_); }

const VulkanBuffer& vulkan_buffer(const Buffer& b, const VulkanDevice& device, const char* what) {
  auto* vb = dynamic_cast<const VulkanBuffer*>(&b);
  if (!vb || &b.device() != static_cast<const Device*>(&device))
    fail(ErrorCode::invalid_argument, device.label() + " " + what + ": the buffer belongs to device '" +
                                          b.device().id() + "', not to this device");
  return *vb;
}

// ---- the allocator ---------------------------------------------------------------------------

Allocator::Allocator(VulkanDevice& device) : device_(device), state_(detail::device_state(device)) {}

Allocator::~Allocator() {
  // Destroyed with the device, after every stream finished: nothing is in flight.
  retired_.clear();
  blocks_.clear();
}

void Allocator::create_block_memory_locked(Block& block, std::size_t size, std::size_t request) {
  block.raw.reset();
  block.state = &state_;
  state_.unreserve(block.charged);
  block.charged = 0;
  std::string why;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt) release_cached_locked();
    if (!state_.try_reserve(size)) {
      why = "over the memory cap";
      continue;
    }
    try {
      block.raw = create_raw_buffer(device_, size, MemoryKind::device);
      block.charged = size;
      return;
    } catch (const Error& e) {
      state_.unreserve(size);
      if (e.code() != ErrorCode::out_of_memory) throw;
      why = e.what();
    }
  }
  std::size_t held = 0;
  for (auto& b : blocks_) held += b->raw.size;
  fail(ErrorCode::out_of_memory,
       device_.label() + ": out of memory allocating " + size_text(request) + " (a block of " +
           size_text(size) + "): " + why + "; after releasing cached blocks and retrying, Kiln holds " +
           size_text(held) + " in " + std::to_string(blocks_.size()) + " blocks of the " +
           size_text(device_.info().memory_bytes) + " device heap" + state_.cap_text());
}

void Allocator::release_cached_locked() {
  collect_locked();  // deferred ranges whose streams moved on may empty a block: give it back too
  for (auto it = blocks_.begin(); it != blocks_.end();) {
    if (!(*it)->dedicated && (*it)->used == 0) {
      std::unique_ptr<Block> b = std::move(*it);
      it = blocks_.erase(it);
      retire_locked(std::move(b));
    } else {
      ++it;
    }
  }
  collect_locked();
}

std::shared_ptr<Buffer> Allocator::allocate(std::size_t bytes) {
  state_.check("allocate");
  if (state_.take_oom_fault())
    fail(ErrorCode::out_of_memory, device_.label() + ": out of memory allocating " + size_text(bytes) +
                                       " (injected fault)");
  const std::size_t reserved = align_up(std::max<std::size_t>(bytes, 1), kBufferAlignment);
  const std::uint64_t limit = std::min<std::uint64_t>(device_.info().max_allocation_bytes,
                                                      device_.max_buffer_size());
  if (bytes > limit || reserved > limit)
    fail(ErrorCode::out_of_memory,
         device_.label() + ": cannot allocate " + size_text(bytes) +
             ": larger than the device's largest allocation (" + size_text(limit) +
             ", maxMemoryAllocationSize); the device heap has " + size_text(device_.info().memory_bytes) +
             ", Kiln holds " + size_text(state_.reserved()) + state_.cap_text());
  try {
    return allocate_once(bytes, reserved, limit);
  } catch (const Error& e) {
    // Memory freed under the default stream's recorded work waits for it, and a batch is only
    // submitted every few hundred commands: let that work run, then try again.
    if (e.code() != ErrorCode::out_of_memory) throw;
    const VulkanStream* def = device_.default_stream_if_created();
    bool waiting = false;  // on the default stream's work, not yet reached
    if (def) {
      std::lock_guard lock(mutex_);
      auto on_default = [&](const std::vector<StreamMark>& waits) {
        return std::any_of(waits.begin(), waits.end(),
                           [&](const StreamMark& m) { return m.stream == def && !device_.stream_reached(m); });
      };
      for (const Retired& r : retired_) waiting |= on_default(r.waits);
      for (const RetiredRange& r : retired_ranges_) waiting |= on_default(r.waits);
    }
    if (!waiting) throw;
  }
  device_.default_stream().synchronize();  // outside the lock: the stream's work may free buffers
  return allocate_once(bytes, reserved, limit);
}

std::shared_ptr<Buffer> Allocator::allocate_once(std::size_t bytes, std::size_t reserved, std::uint64_t limit) {
  std::lock_guard lock(mutex_);
  collect_locked();
  if (reserved > kDedicatedThreshold) {
    auto block = std::make_unique<Block>();
    block->dedicated = true;
    create_block_memory_locked(*block, reserved, bytes);
    if (block->raw.address % kBufferAlignment) {  // rare: over-allocate to align
      create_block_memory_locked(*block, reserved + kBufferAlignment, bytes);
      block->begin = (kBufferAlignment - block->raw.address % kBufferAlignment) % kBufferAlignment;
    }
    block->used = reserved;
    Block* b = block.get();
    blocks_.push_back(std::move(block));
    return std::make_shared<VulkanBuffer>(&device_, this, b, b->begin, reserved, bytes);
  }

  // Best fit over the pooled blocks.
  Block* best = nullptr;
  std::map<std::size_t, std::size_t>::iterator best_it;
  for (auto& block : blocks_) {
    if (block->dedicated) continue;
    for (auto it = block->free.begin(); it != block->free.end(); ++it)
      if (it->second >= reserved && (!best || it->second < best_it->second)) {
        best = block.get();
        best_it = it;
      }
  }
  if (!best) {
    auto block = std::make_unique<Block>();
    std::size_t size = std::min<std::uint64_t>(kBlockSize, limit);
    // Under a memory cap with less than a block free, a smaller block that still fits the request.
    if (const std::uint64_t cap = state_.limit(); cap) {
      const std::uint64_t held = state_.reserved(), room = held < cap ? cap - held : 0;
      if (room < size && room >= reserved + kBufferAlignment) size = room / kBufferAlignment * kBufferAlignment;
    }
    create_block_memory_locked(*block, size, bytes);
    block->begin = (kBufferAlignment - block->raw.address % kBufferAlignment) % kBufferAlignment;
    if (size - block->begin < reserved)
      fail(ErrorCode::out_of_memory, device_.label() + ": cannot allocate " + size_text(bytes));
    block->free[block->begin] = size - block->begin;
    best = block.get();
    best_it = best->free.begin();
    blocks_.push_back(std::move(block));
  }
  const std::size_t offset = best_it->first;
  const std::size_t left = best_it->second - reserved;
  best->free.erase(best_it);
  if (left) best->free[offset + reserved] = left;
  best->used += reserved;
  return std::make_shared<VulkanBuffer>(&device_, this, best, offset, reserved, bytes);
}

void Allocator::release(Block* block, std::size_t offset, std::size_t reserved) {
  std::lock_guard lock(mutex_);
  auto owned = std::find_if(blocks_.begin(), blocks_.end(),
                            [&](const std::unique_ptr<Block>& b) { return b.get() == block; });
  if (owned == blocks_.end()) return;  // cannot happen
  if (!block->dedicated) {
    // The default stream orders its own work, and its barriers cover a reuse there: with no other
    // stream, eager ops recycle their temporaries at once (a stream created later first lets the
    // default stream finish: VulkanDevice::create_stream). While another stream exists, unfinished
    // work on any stream (maybe not even submitted) may still use the range and the next owner may
    // run on another stream: the range waits until every stream has passed this point.
    bool defer = false;
    auto waits = device_.stream_horizons();
    try {
      const VulkanStream* def = device_.default_stream_if_created();
      const bool others = std::any_of(waits.begin(), waits.end(), [&](const StreamMark& w) { return w.stream != def; });
      if (others)
        defer = std::any_of(waits.begin(), waits.end(), [&](const StreamMark& w) { return !device_.stream_reached(w); });
    } catch (...) {
      // A failing driver query (a lost device: nothing runs any more): reused at once. Buffer
      // destructors call this; nothing may escape.
    }
    if (defer) retired_ranges_.push_back({block, offset, reserved, std::move(waits)});
    else free_range_locked(block, offset, reserved);
  } else {
    block->used -= reserved;
    std::unique_ptr<Block> b = std::move(*owned);
    blocks_.erase(owned);
    retire_locked(std::move(b));
  }
  try {
    collect_locked();
  } catch (...) {
    // Called from Buffer destructors: a failing driver query must not escape; collected later.
  }
}

bool Allocator::reached_locked(const std::vector<StreamMark>& waits) {
  for (const StreamMark& w : waits)
    if (!device_.stream_reached(w)) return false;
  return true;
}

void Allocator::free_range_locked(Block* block, std::size_t offset, std::size_t reserved) {
  block->used -= reserved;
  // Insert the range and coalesce with its neighbours.
  auto it = block->free.emplace(offset, reserved).first;
  if (it != block->free.begin()) {
    auto prev = std::prev(it);
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      block->free.erase(it);
      it = prev;
    }
  }
  if (auto next = std::next(it); next != block->free.end() && it->first + it->second == next->first) {
    it->second += next->second;
    block->free.erase(next);
  }
  if (block->used == 0) {
    // Keep one empty block for reuse; give the others back to the driver.
    const bool another_empty = std::any_of(blocks_.begin(), blocks_.end(), [&](const auto& b) {
      return b.get() != block && !b->dedicated && b->used == 0;
    });
    if (another_empty) {
      auto owned = std::find_if(blocks_.begin(), blocks_.end(),
                                [&](const std::unique_ptr<Block>& b) { return b.get() == block; });
      std::unique_ptr<Block> b = std::move(*owned);
      blocks_.erase(owned);
      retire_locked(std::move(b));
    }
  }
}

void Allocator::retire_locked(std::unique_ptr<Block> block) {
  // Work already recorded on a stream may still use this memory: destroy it once every stream has
  // reached the point it is at now.
  retired_.push_back({std::move(block), device_.stream_horizons()});
}

void Allocator::collect_locked() {
  for (std::size_t i = 0; i < retired_ranges_.size();) {
    if (reached_locked(retired_ranges_[i].waits)) {
      const RetiredRange r = retired_ranges_[i];
      retired_ranges_.erase(retired_ranges_.begin() + std::ptrdiff_t(i));
      free_range_locked(r.block, r.offset, r.reserved);
    } else {
      ++i;
    }
  }
  std::erase_if(retired_, [&](const Retired& r) { return reached_locked(r.waits); });
}

std::size_t Allocator::block_count() {
  std::lock_guard lock(mutex_);
  return blocks_.size();
}

std::size_t Allocator::bytes_reserved() {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (auto& b : blocks_) n += b->raw.size;
  return n;
}

}  // namespace kiln::vk
