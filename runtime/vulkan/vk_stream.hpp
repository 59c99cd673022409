// Internal: Vulkan streams and events. A stream records transfers and dispatches into a command
// buffer (with barriers between dependent commands) and submits the batch to its queue on
// flush(), synchronize(), download(), record(), or when the batch grows large. Each submission
// signals the next value of the stream's timeline semaphore; staging memory and params arenas
// used by a submission are recycled once the semaphore reaches that value.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "runtime/stream.hpp"
#include "runtime/vulkan/vk_memory.hpp"

namespace kiln::vk {

class VulkanDevice;
class VulkanKernel;
struct Queue;

// A timeline semaphore, shared by a stream and its events (events may outlive the stream).
// Waits throw device_lost once the device is lost (VK_ERROR_DEVICE_LOST latches the device's
// state); |checked| false waits without that check (destructors) and never throws.
struct Timeline {
  VkDevice device = VK_NULL_HANDLE;
  VkSemaphore semaphore = VK_NULL_HANDLE;
  detail::DeviceState* state = nullptr;
  Timeline(VkDevice d, detail::DeviceState* s);
  ~Timeline();
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;
  // The value reached; everything (UINT64_MAX) once the device is lost.
  std::uint64_t completed() const;
  void wait(std::uint64_t value, bool checked = true) const;
};

class VulkanStream final : public Stream {
 public:
  explicit VulkanStream(VulkanDevice& device);
  ~VulkanStream() override;

  Device& device() const override;
  void upload(Buffer& dst, std::size_t offset, const void* src, std::size_t bytes) override;
  void download(const Buffer& src, std::size_t offset, void* dst, std::size_t bytes) override;
  void copy(const Buffer& src, std::size_t src_offset, Buffer& dst, std::size_t dst_offset,
            std::size_t bytes) override;
  void fill(Buffer& dst, std::size_t offset, std::size_t bytes, std::uint8_t value) override;
  void launch(const Kernel& kernel, Dim3 groups, const void* params, std::size_t params_size) override;
  std::unique_ptr<StreamGraph> record_graph(std::span<const GraphLaunch> launches, std::string* why) override;
  void replay(const StreamGraph& graph) override;
  std::unique_ptr<Event> record() override;
  void flush() override;
  void synchronize() override;
  // synchronize(), or on a failed stream a wait for the work it did submit (no throw: other streams
  // can still be made once the default stream has failed).
  void settle();

  // The timeline value that covers everything recorded so far (submitted or not).
  std::uint64_t horizon() const { return horizon_.load(); }
  // The timeline value reached; past everything once the stream failed and its submitted work is
  // done (what it dropped never runs: memory freed under it may be reused).
  std::uint64_t completed() const {
    const std::uint64_t c = timeline_->completed();
    return failed_flag_.load() && c >= submitted_value_.load() ? UINT64_MAX : c;
  }
  // Submissions made so far (for tests of batching).
  std::uint64_t submissions() const { return submitted_value_.load(); }

 private:
  struct Range {
    VkBuffer buffer;
    std::size_t offset, size;
  };
  struct Batch {
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    std::uint64_t value = 0;
    std::vector<std::unique_ptr<RawBuffer>> chunks;  // staging / params memory it uses
    std::size_t commands = 0;
    std::size_t staging_bytes = 0;
    std::vector<std::shared_ptr<const void>> holds;  // what its commands use (replayed graphs)
  };
  struct Staging {
    VkBuffer buffer;
    std::size_t offset;
    std::byte* host;
    VkDeviceAddress address;
  };

  const VulkanKernel& checked_kernel(const Kernel& kernel, Dim3 groups, const void* params,
                                     std::size_t params_size) const;
  // Throws device_lost once the device is lost; consumes an injected device_lost fault (after
  // letting the work already submitted finish). Throws failed_code_ once a batch was dropped.
  void alive_locked(const char* what);
  // vkQueueSubmit of |batch| (or an injected Fault::submit_out_of_memory).
  VkResult queue_submit_locked(const Batch& batch);
  VkCommandBuffer begin_locked();
  // Emits a barrier when a command reading |reads| and writing |writes| (or, for a dispatch, any
  // memory) depends on commands recorded since the last barrier.
  void hazard_locked(const std::vector<Range>& reads, const std::vector<Range>& writes, bool dispatch);
  void barrier_locked();
  Staging stage_locked(std::size_t bytes, std::size_t align);
  void upload_locked(VkBuffer dst, std::size_t dst_offset, const void* src, std::size_t bytes);
  void copy_locked(VkBuffer src, std::size_t so, VkBuffer dst, std::size_t doff, std::size_t bytes);
  void after_command_locked();
  void end_op_locked();
  // Submits the recording batch. |reclaim| false keeps finished batches (and their staging
  // memory) until the next reclaim: download() still reads the staging chunk after the wait.
  void submit_locked(bool reclaim = true);
  void wait_locked(std::uint64_t value);
  void reclaim_locked();

  VulkanDevice& device_;
  Queue& queue_;
  std::shared_ptr<Timeline> timeline_;
  std::mutex mutex_;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  std::vector<VkCommandBuffer> free_cmds_;
  std::vector<std::unique_ptr<RawBuffer>> free_chunks_;
  std::deque<Batch> in_flight_;
  std::size_t in_flight_staging_ = 0;
  Batch current_;
  std::size_t chunk_used_ = 0;  // bytes used in the last chunk of current_
  bool recording_ = false;
  bool pending_dispatch_ = false;  // a dispatch since the last barrier (may have touched anything)
  std::vector<Range> pending_reads_, pending_writes_;
  std::atomic<std::uint64_t> submitted_value_{0};
  std::atomic<std::uint64_t> horizon_{0};
  // Set when a batch could not be submitted even after the stream's work finished: the work of
  // calls that had returned never ran, so the stream refuses everything after it (sticky).
  std::atomic<bool> failed_flag_{false};
  std::string failed_;
  ErrorCode failed_code_ = ErrorCode::internal;
};

class VulkanEvent final : public Event {
 public:
  VulkanEvent(VulkanDevice& device, std::shared_ptr<Timeline> timeline, std::uint64_t value,
              VkQueryPool pool);
  ~VulkanEvent() override;
  void synchronize() override;
  double elapsed_ms_since(const Event& start) const override;

 private:
  std::uint64_t timestamp() const;

  VulkanDevice& device_;
  std::shared_ptr<Timeline> timeline_;
  std::uint64_t value_;
  VkQueryPool pool_;  // one timestamp query, or null when the queue has no timestamps
};

}  // namespace kiln::vk
