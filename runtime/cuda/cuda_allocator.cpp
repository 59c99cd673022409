#include "runtime/cuda/cuda_allocator.hpp"

#include "runtime/cuda/cuda_device.hpp"
#include "runtime/device_state.hpp"
#include "core/error.hpp"

namespace kiln::cuda {
namespace {

constexpr std::size_t kSmallLimit = std::size_t(1) << 20;  // 1 MiB
constexpr std::size_t kSmallRound = 512;
constexpr std::size_t kLargeRound = std::size_t(2) << 20;  // 2 MiB

std::string mib(std::size_t bytes) {
  return std::to_string(bytes) + " bytes (" + std::to_string(bytes >> 20) + " MiB)";
}

}  // namespace

std::size_t CachingAllocator::size_class(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  const std::size_t round = bytes < kSmallLimit ? kSmallRound : kLargeRound;
  if (bytes > ~std::size_t(0) - round) return 0;  // overflow: no class; cuMemAlloc of 0 fails
  return (bytes + round - 1) / round * round;
}

CachingAllocator::~CachingAllocator() = default;  // no driver calls: see shutdown()

void CachingAllocator::shutdown() noexcept {
  // Only reached when a CudaDevice is destroyed explicitly (never at exit), with its context bound.
  std::lock_guard lock(mu_);
  try {
    release_cache_locked();
  } catch (...) {
  }
  for (CUevent e : event_pool_) driver().cuEventDestroy(e);
  event_pool_.clear();
}

bool CachingAllocator::fences_done(const Block& b) {
  for (CUevent e : b.fences) {
    const CUresult r = driver().cuEventQuery(e);
    if (r == CUDA_ERROR_NOT_READY) return false;
    if (r != CUDA_SUCCESS) raise(r, "cuEventQuery(fence)", __FILE__, __LINE__, device_.health());
  }
  return true;
}

void CachingAllocator::recycle_fences(Block& b) {
  for (CUevent e : b.fences) event_pool_.push_back(e);
  b.fences.clear();
}

CUevent CachingAllocator::take_event() {
  if (!event_pool_.empty()) {
    CUevent e = event_pool_.back();
    event_pool_.pop_back();
    return e;
  }
  CUevent e = nullptr;
  KILN_CU(device_.health(), cuEventCreate, &e, CU_EVENT_DISABLE_TIMING);
  return e;
}

std::size_t CachingAllocator::release_cache_locked() {
  std::size_t released = 0;
  for (auto& [cls, blocks] : cache_) {
    for (Block& b : blocks) {
      // cuMemFree waits for outstanding work on the memory; the fences are no longer needed.
      recycle_fences(b);
      const CUresult r = driver().cuMemFree(b.ptr);
      if (r != CUDA_SUCCESS && is_sticky(r))
        raise(r, "cuMemFree(cached block)", __FILE__, __LINE__, device_.health());
      released += cls;
      allocated_bytes_ -= cls;
      detail::device_state(device_).unreserve(cls);
    }
  }
  cache_.clear();
  cached_bytes_ -= released;
  return released;
}

std::size_t CachingAllocator::release_cache() {
  device_.bind();
  std::lock_guard lock(mu_);
  return release_cache_locked();
}

std::size_t CachingAllocator::cached_bytes() const {
  std::lock_guard lock(mu_);
  return cached_bytes_;
}

std::size_t CachingAllocator::allocated_bytes() const {
  std::lock_guard lock(mu_);
  return allocated_bytes_;
}

std::shared_ptr<Buffer> CachingAllocator::allocate(std::size_t bytes) {
  const std::size_t cls = size_class(bytes);
  const std::string& id = device_.health()->id();
  if (cls == 0)
    fail(ErrorCode::out_of_memory, id + ": cannot allocate " + std::to_string(bytes) + " bytes");
  device_.bind();
  detail::DeviceState& state = detail::device_state(device_);
  if (state.take_oom_fault())
    fail(ErrorCode::out_of_memory, id + ": out of memory allocating " + std::to_string(bytes) +
                                       " bytes (injected fault)");

  // 1. A cached block of the same class, preferring one whose fences have completed. A block
  // freed while the default stream was the only stream, and still so, is ready at once: its next
  // use is queued on that stream after the work that used it (stream order, as PyTorch's
  // allocator), so eager chains keep the host ahead of the device.
  std::optional<Block> reuse;
  const bool ordered = device_.only_default_stream();
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(cls);
    if (it != cache_.end() && !it->second.empty()) {
      auto& blocks = it->second;
      std::size_t pick = blocks.size() - 1;  // most recently freed if none is ready
      for (std::size_t i = 0; i < blocks.size(); ++i)
        if ((ordered && blocks[i].default_only) || fences_done(blocks[i])) {
          pick = i;
          break;
        }
      reuse = std::move(blocks[pick]);
      blocks.erase(blocks.begin() + std::ptrdiff_t(pick));
      cached_bytes_ -= cls;
    }
  }
  if (reuse) {
    try {
      if (!(ordered && reuse->default_only))
        for (CUevent e : reuse->fences) KILN_CU(device_.health(), cuEventSynchronize, e);
    } catch (...) {
      std::lock_guard lock(mu_);
      recycle_fences(*reuse);
      allocated_bytes_ -= cls;  // the block is dropped (the device is lost)
      state.unreserve(cls);
      throw;
    }
    CUdeviceptr ptr = reuse->ptr;
    {
      std::lock_guard lock(mu_);
      recycle_fences(*reuse);
    }
    return std::make_shared<CudaBuffer>(&device_, this, bytes, ptr, cls);
  }

  // 2. A new block under the memory cap (kiln::set_memory_limit); on out-of-memory (the cap or
  // the driver) release the cache and retry once.
  CUdeviceptr ptr = 0;
  bool over_cap = false;
  auto try_alloc = [&] {
    over_cap = !state.try_reserve(cls);
    if (over_cap) return CUDA_ERROR_OUT_OF_MEMORY;
    const CUresult res = driver().cuMemAlloc(&ptr, cls);
    if (res != CUDA_SUCCESS) state.unreserve(cls);
    return res;
  };
  CUresult r = try_alloc();
  std::size_t released = 0;
  if (r == CUDA_ERROR_OUT_OF_MEMORY) {
    {
      std::lock_guard lock(mu_);
      released = release_cache_locked();
    }
    r = try_alloc();
  }
  if (r == CUDA_ERROR_OUT_OF_MEMORY && over_cap)
    fail(ErrorCode::out_of_memory, id + ": out of memory allocating " + std::to_string(bytes) +
                                       " bytes (size class " + std::to_string(cls) + ")" +
                                       state.cap_text() + " after releasing " + std::to_string(released) +
                                       " cached bytes");
  if (r == CUDA_ERROR_OUT_OF_MEMORY) {
    std::size_t free_bytes = 0, total_bytes = 0;
    const bool have_info = driver().cuMemGetInfo(&free_bytes, &total_bytes) == CUDA_SUCCESS;
    fail(ErrorCode::out_of_memory,
         id + ": out of memory allocating " + std::to_string(bytes) + " bytes (size class " +
             std::to_string(cls) + ")" +
             (have_info ? ": " + mib(free_bytes) + " free of " + mib(total_bytes) : std::string()) +
             " after releasing " + std::to_string(released) + " cached bytes (cuMemAlloc failed with " +
             result_name(r) + ")");
  }
  if (r != CUDA_SUCCESS) raise(r, "cuMemAlloc(&ptr, size_class)", __FILE__, __LINE__, device_.health());
  {
    std::lock_guard lock(mu_);
    allocated_bytes_ += cls;
  }
  try {
    return std::make_shared<CudaBuffer>(&device_, this, bytes, ptr, cls);
  } catch (...) {
    driver().cuMemFree(ptr);
    state.unreserve(cls);
    std::lock_guard lock(mu_);
    allocated_bytes_ -= cls;
    throw;
  }
}

void CachingAllocator::release(CUdeviceptr ptr, std::size_t cls) noexcept {
  try {
    if (!device_.try_bind()) {  // lost device: the block is dropped with the context
      // An injected loss leaves the real context working: give the memory back now (what
      // docs/reliability.md promises once the fault is cleared).
      if (device_.bind_injected_loss()) driver().cuMemFree(ptr);
      detail::device_state(device_).unreserve(cls);
      std::lock_guard lock(mu_);
      allocated_bytes_ -= cls;
      return;
    }
    Block b;
    b.ptr = ptr;
    b.fences = device_.fence_streams(
        [this] {
          std::lock_guard lock(mu_);
          return take_event();
        },
        &b.default_only);
    std::lock_guard lock(mu_);
    cache_[cls].push_back(std::move(b));
    cached_bytes_ += cls;
  } catch (...) {
    // The device failed while freeing: nothing sensible to do in a destructor; the block leaks.
  }
}

}  // namespace kiln::cuda
