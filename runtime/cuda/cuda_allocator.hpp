// The caching allocator of a CUDA device. Blocks are rounded to size classes (512 B below 1 MiB,
// 2 MiB above) and cached when freed; a cached block is reused for the same size class once the
// work that was queued on the device's streams before it was freed has finished (an event per live
// stream is recorded at free time). On out-of-memory the cache is released and the allocation
// retried once. Thread-safe.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/buffer.hpp"

namespace kiln::cuda {

class CudaDevice;

class CachingAllocator {
 public:
  explicit CachingAllocator(CudaDevice& device) : device_(device) {}
  ~CachingAllocator();
  // Frees the cache and the event pool; called by ~CudaDevice with the context bound.
  void shutdown() noexcept;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  static std::size_t size_class(std::size_t bytes);

  // Throws out_of_memory naming the request and the free memory.
  std::shared_ptr<Buffer> allocate(std::size_t bytes);
  // Returns a block to the cache. Never throws (called from Buffer destructors).
  void release(CUdeviceptr ptr, std::size_t size_class) noexcept;
  // cuMemFree's every cached block. Returns the bytes released.
  std::size_t release_cache();

  std::size_t cached_bytes() const;
  std::size_t allocated_bytes() const;  // in live buffers plus the cache

 private:
  struct Block {
    CUdeviceptr ptr = 0;
    std::vector<CUevent> fences;  // recorded on every live stream when the block was freed
    bool default_only = false;    // the default stream was the only live stream then
  };
  bool fences_done(const Block& b);      // requires mu_
  void recycle_fences(Block& b);         // requires mu_
  CUevent take_event();                  // requires mu_
  std::size_t release_cache_locked();    // requires mu_

  CudaDevice& device_;
  mutable std::mutex mu_;
  std::map<std::size_t, std::vector<Block>> cache_;  // size class -> free blocks
  std::vector<CUevent> event_pool_;
  std::size_t cached_bytes_ = 0;
  std::size_t allocated_bytes_ = 0;
};

}  // namespace kiln::cuda
