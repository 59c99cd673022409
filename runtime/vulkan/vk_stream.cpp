// Vulkan streams: batched command buffers, barriers, staging, timeline semaphores; events.
#include "runtime/vulkan/vk_stream.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "runtime/vulkan/vk_device.hpp"
#include "runtime/vulkan/vk_kernel.hpp"

namespace kiln::vk {
namespace {

constexpr std::size_t kChunkSize = std::size_t(4) << 20;          // staging chunk
constexpr std::size_t kMaxFreeChunks = 8;                          // kept for reuse
constexpr std::size_t kPiece = std::size_t(32) << 20;              // largest staged transfer piece
constexpr std::size_t kMaxBatchStaging = std::size_t(64) << 20;    // submit beyond this
constexpr std::size_t kMaxInFlightStaging = std::size_t(256) << 20;  // wait beyond this
constexpr std::size_t kMaxBatchCommands = 512;
constexpr std::size_t kMaxPending = 128;

bool overlaps(VkBuffer b, std::size_t off, std::size_t size, VkBuffer b2, std::size_t off2, std::size_t size2) {
  return b == b2 && off < off2 + size2 && off2 < off + size;
}

void check_range(const VulkanDevice& d, const Buffer& b, std::size_t offset, std::size_t bytes,
                 const char* what) {
  if (offset > b.size_bytes() || bytes > b.size_bytes() - offset)
    fail(ErrorCode::invalid_argument, d.label() + " stream " + what + ": range [" +
                                          std::to_string(offset) + ", +" + std::to_string(bytes) +
                                          ") is outside a buffer of " +
                                          std::to_string(b.size_bytes()) + " bytes");
}

}  // namespace

// ---- timeline --------------------------------------------------------------------------------

Timeline::Timeline(VkDevice d, detail::DeviceState* s) : device(d), state(s) {
  VkSemaphoreTypeCreateInfo type{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO};
  type.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE;
  type.initialValue = 0;
  VkSemaphoreCreateInfo ci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
  ci.pNext = &type;
  KILN_VK_CHECK(vkCreateSemaphore(device, &ci, nullptr, &semaphore));
}

Timeline::~Timeline() {
  if (semaphore) vkDestroySemaphore(device, semaphore, nullptr);
}

std::uint64_t Timeline::completed() const {
  std::uint64_t v = 0;
  const VkResult r = vkGetSemaphoreCounterValue(device, semaphore, &v);
  if (r == VK_ERROR_DEVICE_LOST) {
    state->mark_lost("vkGetSemaphoreCounterValue returned VK_ERROR_DEVICE_LOST");
    return UINT64_MAX;  // nothing runs any more: everything may be reclaimed
  }
  if (r < 0) throw_vk_error("vkGetSemaphoreCounterValue(device, semaphore, &v)", r, __FILE__, __LINE__);
  return v;
}

void Timeline::wait(std::uint64_t value, bool checked) const {
  if (value == 0) return;
  if (checked) state->check("wait");
  VkSemaphoreWaitInfo wi{VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO};
  wi.semaphoreCount = 1;
  wi.pSemaphores = &semaphore;
  wi.pValues = &value;
  const VkResult r = vkWaitSemaphores(device, &wi, UINT64_MAX);
  if (r == VK_ERROR_DEVICE_LOST) state->mark_lost("vkWaitSemaphores returned VK_ERROR_DEVICE_LOST");
  if (r < 0 && checked) throw_vk_error("vkWaitSemaphores(device, &wi, UINT64_MAX)", r, __FILE__, __LINE__);
}

// ---- stream ----------------------------------------------------------------------------------

VulkanStream::VulkanStream(VulkanDevice& device)
    : device_(device),
      queue_(device.next_queue()),
      timeline_(std::make_shared<Timeline>(device.handle(), &detail::device_state(device))) {
  timeline_->state->check("create_stream");
  VkCommandPoolCreateInfo ci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  ci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT | VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
  ci.queueFamilyIndex = device.queue_family();
  KILN_VK_CHECK(vkCreateCommandPool(device.handle(), &ci, nullptr, &pool_));
  device_.register_stream(this);
}

VulkanStream::~VulkanStream() {
  try {
    synchronize();
  } catch (...) {
    // A lost device: wait (unchecked; at once when really lost) for what was submitted.
    timeline_->wait(submitted_value_.load(), /*checked=*/false);
  }
  device_.unregister_stream(this);
  in_flight_.clear();
  current_.chunks.clear();
  free_chunks_.clear();
  vkDestroyCommandPool(device_.handle(), pool_, nullptr);  // frees its command buffers
}

Device& VulkanStream::device() const { return device_; }

void VulkanStream::alive_locked(const char* what) {
  detail::DeviceState& state = *timeline_->state;
  if (state.take_lost_fault()) {
    // Simulated VK_ERROR_DEVICE_LOST: the work already submitted still runs on the real device;
    // let it finish so that nothing is in use when memory and command buffers are released.
    timeline_->wait(submitted_value_.load(), /*checked=*/false);
    state.mark_lost("VK_ERROR_DEVICE_LOST injected by kiln::inject_fault", /*injected=*/true);
  }
  state.check(what);
  if (failed_flag_.load()) fail(failed_code_, fmt::format("{} ({}): {}", device_.label(), what, failed_));
}

VkResult VulkanStream::queue_submit_locked(const Batch& batch) {
  if (timeline_->state->take_submit_fault()) return VK_ERROR_OUT_OF_DEVICE_MEMORY;
  VkTimelineSemaphoreSubmitInfo ts{VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO};
  ts.signalSemaphoreValueCount = 1;
  ts.pSignalSemaphoreValues = &batch.value;
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.pNext = &ts;
  si.commandBufferCount = 1;
  si.pCommandBuffers = &batch.cmd;
  si.signalSemaphoreCount = 1;
  si.pSignalSemaphores = &timeline_->semaphore;
  std::lock_guard lock(queue_.mutex);
  return vkQueueSubmit(queue_.queue, 1, &si, VK_NULL_HANDLE);
}

VkCommandBuffer VulkanStream::begin_locked() {
  alive_locked("recording a command");
  if (recording_) return current_.cmd;
  VkCommandBuffer cmd;
  if (!free_cmds_.empty()) {
    cmd = free_cmds_.back();
    free_cmds_.pop_back();
  } else {
    VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = pool_;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    KILN_VK_CHECK(vkAllocateCommandBuffers(device_.handle(), &ai, &cmd));
  }
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  VkResult r = vkBeginCommandBuffer(cmd, &bi);
  if (r != VK_SUCCESS) {
    free_cmds_.push_back(cmd);
    throw_vk_error("vkBeginCommandBuffer(cmd, &bi)", r, __FILE__, __LINE__);
  }
  current_.cmd = cmd;
  current_.value = submitted_value_.load() + 1;
  recording_ = true;
  horizon_ = current_.value;
  return cmd;
}

void VulkanStream::barrier_locked() {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  const VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(current_.cmd, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
  pending_dispatch_ = false;
  pending_reads_.clear();
  pending_writes_.clear();
}

void VulkanStream::hazard_locked(const std::vector<Range>& reads, const std::vector<Range>& writes,
                                 bool dispatch) {
  bool need = pending_dispatch_;
  if (dispatch) {
    need = need || !pending_reads_.empty() || !pending_writes_.empty();
  } else {
    for (const Range& w : writes) {
      for (const Range& p : pending_writes_)
        need = need || overlaps(w.buffer, w.offset, w.size, p.buffer, p.offset, p.size);
      for (const Range& p : pending_reads_)
        need = need || overlaps(w.buffer, w.offset, w.size, p.buffer, p.offset, p.size);
    }
    for (const Range& r : reads)
      for (const Range& p : pending_writes_)
        need = need || overlaps(r.buffer, r.offset, r.size, p.buffer, p.offset, p.size);
  }
  if (need || pending_reads_.size() + pending_writes_.size() > kMaxPending) barrier_locked();
  if (dispatch) {
    pending_dispatch_ = true;
  } else {
    pending_reads_.insert(pending_reads_.end(), reads.begin(), reads.end());
    pending_writes_.insert(pending_writes_.end(), writes.begin(), writes.end());
  }
}

VulkanStream::Staging VulkanStream::stage_locked(std::size_t bytes, std::size_t align) {
  alive_locked("staging");  // before taking memory: a failed stream takes none
  if (recording_ && current_.staging_bytes + bytes > kMaxBatchStaging && current_.commands > 0)
    submit_locked();
  while (in_flight_staging_ > kMaxInFlightStaging && !in_flight_.empty()) {
    timeline_->wait(in_flight_.front().value);
    reclaim_locked();
  }
  RawBuffer* chunk = current_.chunks.empty() ? nullptr : current_.chunks.back().get();
  std::size_t offset = chunk ? align_up(chunk_used_, align) : 0;
  if (!chunk || offset + bytes > chunk->size) {
    std::unique_ptr<RawBuffer> fresh;
    for (auto it = free_chunks_.begin(); it != free_chunks_.end(); ++it)
      if ((*it)->size >= bytes) {
        fresh = std::move(*it);
        free_chunks_.erase(it);
        break;
      }
    if (!fresh)
      fresh = std::make_unique<RawBuffer>(create_raw_buffer(
          device_, std::max(kChunkSize, align_up(bytes, std::size_t(64) << 10)), MemoryKind::host));
    chunk = fresh.get();
    current_.chunks.push_back(std::move(fresh));
    offset = 0;
  }
  chunk_used_ = offset + bytes;
  current_.staging_bytes += bytes;
  return {chunk->buffer, offset, chunk->mapped + offset, chunk->address + offset};
}

void VulkanStream::after_command_locked() { ++current_.commands; }

void VulkanStream::end_op_locked() {
  // Only between operations: staging memory of an operation must stay in its batch.
  if (current_.commands >= kMaxBatchCommands) submit_locked();
}

void VulkanStream::copy_locked(VkBuffer src, std::size_t so, VkBuffer dst, std::size_t doff,
                               std::size_t bytes) {
  VkCommandBuffer cmd = begin_locked();
  hazard_locked({{src, so, bytes}}, {{dst, doff, bytes}}, false);
  VkBufferCopy region{so, doff, bytes};
  vkCmdCopyBuffer(cmd, src, dst, 1, &region);
  after_command_locked();
}

void VulkanStream::upload_locked(VkBuffer dst, std::size_t dst_offset, const void* src, std::size_t bytes) {
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t piece = std::min(kPiece, bytes - done);
    Staging s = stage_locked(piece, 16);
    std::memcpy(s.host, static_cast<const std::byte*>(src) + done, piece);
    copy_locked(s.buffer, s.offset, dst, dst_offset + done, piece);
    done += piece;
  }
}

void VulkanStream::submit_locked(bool reclaim) {
  alive_locked("submit");
  if (!recording_) return;
  Batch batch = std::move(current_);
  current_ = Batch{};
  recording_ = false;
  // Make device writes of this batch visible to the host (downloads read staging memory).
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(batch.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  VkResult r = vkEndCommandBuffer(batch.cmd);
  const char* step = "vkEndCommandBuffer";
  bool retried = false;
  if (r == VK_SUCCESS) {
    step = "vkQueueSubmit";
    r = queue_submit_locked(batch);
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY) {
      // The driver is short of memory: let the work this stream submitted finish and give back
      // what it held (command buffers, staging), then try once more. Nothing here throws: a
      // batch that is not submitted must reach the failure below.
      timeline_->wait(submitted_value_.load(), /*checked=*/false);
      try {
        reclaim_locked();
      } catch (...) {  // the semaphore's value unreadable (out of memory too): keep what is held
      }
      r = queue_submit_locked(batch);
      retried = true;
    }
  }
  if (r != VK_SUCCESS) {
    // The batch never runs: its value is never signalled, so let later batches reuse it. The
    // state is settled before anything that can throw.
    horizon_ = submitted_value_.load();
    if (r == VK_ERROR_DEVICE_LOST) {
      timeline_->state->mark_lost(std::string(step) + " returned VK_ERROR_DEVICE_LOST");
      throw_vk_error(step, r, __FILE__, __LINE__);
    }
    // It held the work of calls that have returned (launches, copies, uploads recorded since the
    // last submission): that work is lost, so nothing recorded after it may run either.
    failed_code_ = r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? ErrorCode::out_of_memory
                                                                                      : ErrorCode::internal;
    failed_flag_ = true;
    try {
      free_cmds_.push_back(batch.cmd);
      const bool is_default = device_.default_stream_if_created() == this;
      failed_ = fmt::format("{} failed with {} for a batch of {} commands recorded by earlier calls on this stream{}, "
                            "so their work never ran; the stream takes no more work: {}",
                            step, result_name(r), batch.commands,
                            retried ? " (again, after its submitted work had finished)" : "",
                            is_default ? "it is the device's default stream, so the tensor ops on this device fail "
                                         "from now on (their results may hold the lost work); streams made with "
                                         "create_stream() still run, and a new process starts afresh"
                                       : "use another stream");
    } catch (...) {  // out of host memory: the flag stands, with a message that needs nothing
      failed_ = "a batch of commands recorded by earlier calls on this stream could not be submitted, so their "
                "work never ran; the stream takes no more work";
    }
    fail(failed_code_, device_.label() + ": " + failed_);
  }
  submitted_value_ = batch.value;
  in_flight_staging_ += batch.staging_bytes;
  in_flight_.push_back(std::move(batch));
  if (reclaim) reclaim_locked();
}

void VulkanStream::wait_locked(std::uint64_t value) {
  alive_locked("wait");
  timeline_->wait(value);
  reclaim_locked();
}

void VulkanStream::reclaim_locked() {
  if (in_flight_.empty()) return;
  const std::uint64_t done = timeline_->completed();
  while (!in_flight_.empty() && in_flight_.front().value <= done) {
    Batch& b = in_flight_.front();
    free_cmds_.push_back(b.cmd);
    for (auto& chunk : b.chunks)
      if (chunk->size == kChunkSize && free_chunks_.size() < kMaxFreeChunks)
        free_chunks_.push_back(std::move(chunk));
    in_flight_staging_ -= b.staging_bytes;
    in_flight_.pop_front();
  }
}

// ---- the Stream interface --------------------------------------------------------------------

void VulkanStream::upload(Buffer& dst, std::size_t offset, const void* src, std::size_t bytes) {
  const VulkanBuffer& vb = vulkan_buffer(dst, device_, "upload");
  check_range(device_, dst, offset, bytes, "upload");
  if (!bytes) return;
  if (!src) fail(ErrorCode::invalid_argument, device_.label() + " stream upload: null source pointer");
  std::lock_guard lock(mutex_);
  upload_locked(vb.vk_buffer(), vb.vk_offset() + offset, src, bytes);
  end_op_locked();
}

void VulkanStream::download(const Buffer& src, std::size_t offset, void* dst, std::size_t bytes) {
  const VulkanBuffer& vb = vulkan_buffer(src, device_, "download");
  check_range(device_, src, offset, bytes, "download");
  if (bytes && !dst) fail(ErrorCode::invalid_argument, device_.label() + " stream download: null destination");
  std::lock_guard lock(mutex_);
  if (!bytes) {
    submit_locked();
    wait_locked(submitted_value_.load());
    return;
  }
  for (std::size_t done = 0; done < bytes;) {
    const std::size_t piece = std::min(kPiece, bytes - done);
    Staging s = stage_locked(piece, 64);
    copy_locked(vb.vk_buffer(), vb.vk_offset() + offset + done, s.buffer, s.offset, piece);
    submit_locked(/*reclaim=*/false);
    timeline_->wait(submitted_value_.load());
    std::memcpy(static_cast<std::byte*>(dst) + done, s.host, piece);  // before the chunk is recycled
    reclaim_locked();
    done += piece;
  }
}

void VulkanStream::copy(const Buffer& src, std::size_t src_offset, Buffer& dst, std::size_t dst_offset,
                        std::size_t bytes) {
  const VulkanBuffer& vs = vulkan_buffer(src, device_, "copy");
  const VulkanBuffer& vd = vulkan_buffer(dst, device_, "copy");
  check_range(device_, src, src_offset, bytes, "copy (source)");
  check_range(device_, dst, dst_offset, bytes, "copy (destination)");
  if (!bytes) return;
  std::lock_guard lock(mutex_);
  const std::size_t so = vs.vk_offset() + src_offset, doff = vd.vk_offset() + dst_offset;
  if (so == doff && vs.vk_buffer() == vd.vk_buffer()) return;
  if (!overlaps(vs.vk_buffer(), so, bytes, vd.vk_buffer(), doff, bytes)) {
    copy_locked(vs.vk_buffer(), so, vd.vk_buffer(), doff, bytes);
    end_op_locked();
    return;
  }
  // Overlapping ranges (vkCmdCopyBuffer forbids them): each piece goes through staging memory,
  // pieces in the order that reads every source byte before it is overwritten (like memmove).
  const std::size_t count = (bytes + kPiece - 1) / kPiece;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t k = doff > so ? count - 1 - i : i;
    const std::size_t at = k * kPiece, piece = std::min(kPiece, bytes - at);
    Staging st = stage_locked(piece, 16);
    copy_locked(vs.vk_buffer(), so + at, st.buffer, st.offset, piece);
    copy_locked(st.buffer, st.offset, vd.vk_buffer(), doff + at, piece);
  }
  end_op_locked();
}

void VulkanStream::fill(Buffer& dst, std::size_t offset, std::size_t bytes, std::uint8_t value) {
  const VulkanBuffer& vb = vulkan_buffer(dst, device_, "fill");
  check_range(device_, dst, offset, bytes, "fill");
  if (!bytes) return;
  std::lock_guard lock(mutex_);
  const std::size_t at = vb.vk_offset() + offset;
  // vkCmdFillBuffer works on 4-byte-aligned whole words; the unaligned ends are uploaded.
  const std::size_t head = std::min(bytes, (4 - at % 4) % 4);
  const std::size_t middle = (bytes - head) / 4 * 4;
  const std::size_t tail = bytes - head - middle;
  const std::array<std::uint8_t, 4> pattern = {value, value, value, value};
  if (head) upload_locked(vb.vk_buffer(), at, pattern.data(), head);
  if (middle) {
    VkCommandBuffer cmd = begin_locked();
    hazard_locked({}, {{vb.vk_buffer(), at + head, middle}}, false);
    vkCmdFillBuffer(cmd, vb.vk_buffer(), at + head, middle, std::uint32_t(value) * 0x01010101u);
    after_command_locked();
  }
  if (tail) upload_locked(vb.vk_buffer(), at + head + middle, pattern.data(), tail);
  end_op_locked();
}

const VulkanKernel& VulkanStream::checked_kernel(const Kernel& kernel, Dim3 groups, const void* params,
                                                 std::size_t params_size) const {
  const auto* vk = dynamic_cast<const VulkanKernel*>(&kernel);
  if (!vk || &vk->owner() != &device_)
    fail(ErrorCode::invalid_argument, device_.label() + " stream launch: kernel '" + kernel.name() +
                                          "' was not loaded for this device");
  if (params_size && !params)
    fail(ErrorCode::invalid_argument, device_.label() + " stream launch of '" + kernel.name() +
                                          "': null params with a nonzero size");
  const auto& max = device_.limits().maxComputeWorkGroupCount;
  if (groups.x > max[0] || groups.y > max[1] || groups.z > max[2])
    fail(ErrorCode::invalid_argument,
         device_.label() + " stream launch of '" + kernel.name() + "': " + std::to_string(groups.x) +
             "x" + std::to_string(groups.y) + "x" + std::to_string(groups.z) +
             " workgroups exceed the device limit " + std::to_string(max[0]) + "x" +
             std::to_string(max[1]) + "x" + std::to_string(max[2]) + " (split the launch)");
  return *vk;
}

void VulkanStream::launch(const Kernel& kernel, Dim3 groups, const void* params, std::size_t params_size) {
  const VulkanKernel* vk = &checked_kernel(kernel, groups, params, params_size);
  if (!groups.x || !groups.y || !groups.z) return;
  std::array<std::byte, kPushConstantBytes> push{};
  std::lock_guard lock(mutex_);
  if (params_size <= kPushConstantBytes) {
    if (params_size) std::memcpy(push.data(), params, params_size);
  } else {
    // Too big for push constants: copy into the params arena, push its device address.
    Staging s = stage_locked(params_size, 256);
    std::memcpy(s.host, params, params_size);
    const std::uint64_t address = s.address;
    std::memcpy(push.data(), &address, sizeof address);
  }
  VkCommandBuffer cmd = begin_locked();
  hazard_locked({}, {}, true);
  vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipeline());
  vkCmdPushConstants(cmd, device_.pipeline_layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes,
                     push.data());
  vkCmdDispatch(cmd, groups.x, groups.y, groups.z);
  after_command_locked();
  end_op_locked();
}

// ---- graphs: secondary command buffers -------------------------------------------------------

namespace {

// What a recorded graph owns; shared with the batches that execute it, so that it outlives them.
struct GraphResources {
  VkDevice device = VK_NULL_HANDLE;
  VkCommandPool pool = VK_NULL_HANDLE;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  RawBuffer params;  // params blocks larger than push constants, at 256-byte steps
  GraphResources() = default;
  GraphResources(const GraphResources&) = delete;
  GraphResources& operator=(const GraphResources&) = delete;
  ~GraphResources() {
    if (pool) vkDestroyCommandPool(device, pool, nullptr);  // frees |cmd|
  }
};

class VulkanGraph final : public StreamGraph {
 public:
  VulkanGraph(const VulkanDevice& device, std::shared_ptr<const GraphResources> r)
      : device_(device), resources_(std::move(r)) {}
  std::string_view kind() const override { return "Vulkan command buffer"; }
  const VulkanDevice& device() const { return device_; }
  const std::shared_ptr<const GraphResources>& resources() const { return resources_; }

 private:
  const VulkanDevice& device_;
  std::shared_ptr<const GraphResources> resources_;
};

}  // namespace

// One secondary command buffer (simultaneous use: a batch may execute it more than once, and
// batches in flight at once may too) holding each launch's bind, push and dispatch with a barrier
// between launches, as launch() records them into a batch.
std::unique_ptr<StreamGraph> VulkanStream::record_graph(std::span<const GraphLaunch> launches, std::string*) {
  std::size_t big = 0;
  for (const GraphLaunch& l : launches) {
    if (!l.kernel) fail(ErrorCode::invalid_argument, device_.label() + " record_graph: a launch without a kernel");
    checked_kernel(*l.kernel, l.groups, l.params.data(), l.params.size());
    if (l.params.size() > kPushConstantBytes) big += align_up(l.params.size(), 256);
  }
  timeline_->state->check("record_graph");
  auto r = std::make_shared<GraphResources>();
  r->device = device_.handle();
  VkCommandPoolCreateInfo ci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  ci.queueFamilyIndex = device_.queue_family();
  KILN_VK_CHECK(vkCreateCommandPool(device_.handle(), &ci, nullptr, &r->pool));
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = r->pool;
  ai.level = VK_COMMAND_BUFFER_LEVEL_SECONDARY;
  ai.commandBufferCount = 1;
  KILN_VK_CHECK(vkAllocateCommandBuffers(device_.handle(), &ai, &r->cmd));
  if (big) r->params = create_raw_buffer(device_, big, MemoryKind::host);
  VkCommandBufferInheritanceInfo inherit{VK_STRUCTURE_TYPE_COMMAND_BUFFER_INHERITANCE_INFO};
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  bi.flags = VK_COMMAND_BUFFER_USAGE_SIMULTANEOUS_USE_BIT;
  bi.pInheritanceInfo = &inherit;
  KILN_VK_CHECK(vkBeginCommandBuffer(r->cmd, &bi));
  std::size_t used = 0;
  bool first = true;
  for (const GraphLaunch& l : launches) {
    if (!l.groups.x || !l.groups.y || !l.groups.z) continue;
    std::array<std::byte, kPushConstantBytes> push{};
    if (l.params.size() <= kPushConstantBytes) {
      if (!l.params.empty()) std::memcpy(push.data(), l.params.data(), l.params.size());
    } else {
      std::memcpy(r->params.mapped + used, l.params.data(), l.params.size());
      const std::uint64_t address = r->params.address + used;
      std::memcpy(push.data(), &address, sizeof address);
      used += align_up(l.params.size(), 256);
    }
    if (!first) {
      VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
      vkCmdPipelineBarrier(r->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1,
                           &mb, 0, nullptr, 0, nullptr);
    }
    first = false;
    vkCmdBindPipeline(r->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, static_cast<const VulkanKernel*>(l.kernel)->pipeline());
    vkCmdPushConstants(r->cmd, device_.pipeline_layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, kPushConstantBytes,
                       push.data());
    vkCmdDispatch(r->cmd, l.groups.x, l.groups.y, l.groups.z);
  }
  KILN_VK_CHECK(vkEndCommandBuffer(r->cmd));
  return std::make_unique<VulkanGraph>(device_, std::move(r));
}

void VulkanStream::replay(const StreamGraph& graph) {
  const auto* g = dynamic_cast<const VulkanGraph*>(&graph);
  if (!g || &g->device() != &device_) {
    Stream::replay(graph);  // throws: not a graph of this device
    return;
  }
  std::lock_guard lock(mutex_);
  VkCommandBuffer cmd = begin_locked();
  current_.holds.push_back(g->resources());  // first: the batch must keep what it will execute
  hazard_locked({}, {}, true);               // after what came before, as a dispatch
  vkCmdExecuteCommands(cmd, 1, &g->resources()->cmd);
  after_command_locked();
  end_op_locked();
}

std::unique_ptr<Event> VulkanStream::record() {
  std::lock_guard lock(mutex_);
  VkQueryPool pool = VK_NULL_HANDLE;
  if (device_.timestamp_valid_bits()) {
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = 1;
    KILN_VK_CHECK(vkCreateQueryPool(device_.handle(), &qi, nullptr, &pool));
  }
  try {
    VkCommandBuffer cmd = begin_locked();
    if (pool) {
      vkCmdResetQueryPool(cmd, pool, 0, 1);
      vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, pool, 0);
    }
    ++current_.commands;
    const std::uint64_t value = current_.value;
    submit_locked();
    return std::make_unique<VulkanEvent>(device_, timeline_, value, pool);
  } catch (...) {
    if (pool) vkDestroyQueryPool(device_.handle(), pool, nullptr);
    throw;
  }
}

void VulkanStream::flush() {
  std::lock_guard lock(mutex_);
  submit_locked();
}

void VulkanStream::synchronize() {
  std::lock_guard lock(mutex_);
  submit_locked();
  wait_locked(submitted_value_.load());
}

void VulkanStream::settle() {
  std::lock_guard lock(mutex_);
  try {
    if (!failed_flag_.load()) {
      submit_locked();
      wait_locked(submitted_value_.load());
      return;
    }
  } catch (const Error&) {
    if (!failed_flag_.load()) throw;  // a lost device; a refused batch failed the stream: go on
  }
  timeline_->wait(submitted_value_.load(), /*checked=*/false);
}

// ---- events ----------------------------------------------------------------------------------

VulkanEvent::VulkanEvent(VulkanDevice& device, std::shared_ptr<Timeline> timeline, std::uint64_t value,
                         VkQueryPool pool)
    : device_(device), timeline_(std::move(timeline)), value_(value), pool_(pool) {}

VulkanEvent::~VulkanEvent() {
  if (!pool_) return;
  timeline_->wait(value_, /*checked=*/false);  // the query must not be in use when its pool goes
  vkDestroyQueryPool(device_.handle(), pool_, nullptr);
}

void VulkanEvent::synchronize() { timeline_->wait(value_); }

std::uint64_t VulkanEvent::timestamp() const {
  timeline_->wait(value_);
  std::uint64_t t = 0;
  KILN_VK_CHECK(vkGetQueryPoolResults(device_.handle(), pool_, 0, 1, sizeof t, &t, sizeof t,
                                      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
  return t;
}

double VulkanEvent::elapsed_ms_since(const Event& start) const {
  auto* s = dynamic_cast<const VulkanEvent*>(&start);
  if (!s || &s->device_ != &device_)
    fail(ErrorCode::invalid_argument, device_.label() + ": elapsed_ms_since needs an event of the same device");
  if (!pool_ || !s->pool_)
    fail(ErrorCode::unsupported, device_.label() + ": the compute queue has no timestamp support");
  const std::uint32_t bits = device_.timestamp_valid_bits();
  const std::uint64_t mask = bits >= 64 ? ~std::uint64_t(0) : (std::uint64_t(1) << bits) - 1;
  const std::uint64_t diff = timestamp() - s->timestamp();
  const double ticks = bits >= 64 ? double(std::int64_t(diff)) : double(diff & mask);
  return ticks * double(device_.properties().limits.timestampPeriod) / 1e6;
}

}  // namespace kiln::vk
