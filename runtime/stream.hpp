// Streams are in-order queues of transfers and launches on one device; events mark points in them.
//   CUDA: a CUstream and CUevents. Vulkan: a queue plus a recording command buffer that batches
//   dispatches with barriers and submits on flush; events are timeline-semaphore values plus a
//   timestamp query. CPU: work runs at once on the calling thread.
// Thread-safety: a Stream may be used from several threads; calls are serialized internally and
// the order between threads is the order in which the calls happen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/kernel.hpp"

namespace kiln {

class Buffer;
class Device;

class Event {
 public:
  virtual ~Event() = default;
  // Blocks until the work before the event has finished.
  virtual void synchronize() = 0;
  // Milliseconds of device time between two events of the same stream (device timers).
  virtual double elapsed_ms_since(const Event& start) const = 0;
};

// One launch of a recorded sequence (Stream::record_graph): |params| as Stream::launch takes them.
struct GraphLaunch {
  const Kernel* kernel = nullptr;
  Dim3 groups;
  std::vector<std::byte> params;
};

// Launches recorded once and replayed as a whole by Stream::replay (CUDA: an instantiated CUDA
// graph; Vulkan: a secondary command buffer). The kernels must outlive it (device-owned kernels
// do); the addresses in the params are fixed at recording.
class StreamGraph {
 public:
  virtual ~StreamGraph() = default;
  virtual std::string_view kind() const = 0;  // "CUDA graph", "Vulkan command buffer"
};

class Stream {
 public:
  virtual ~Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  virtual Device& device() const = 0;

  // Host to device: copies |bytes| from |src| into |dst| at |offset|. |src| may be reused as soon
  // as the call returns.
  virtual void upload(Buffer& dst, std::size_t offset, const void* src, std::size_t bytes) = 0;
  // Device to host: waits for earlier work, then copies into |dst|. Returns when |dst| is written.
  virtual void download(const Buffer& src, std::size_t offset, void* dst, std::size_t bytes) = 0;
  virtual void copy(const Buffer& src, std::size_t src_offset, Buffer& dst, std::size_t dst_offset,
                    std::size_t bytes) = 0;
  // Sets every byte of the range to |value|.
  virtual void fill(Buffer& dst, std::size_t offset, std::size_t bytes, std::uint8_t value) = 0;

  // Launches |kernel| over |groups| blocks/workgroups of kernel.block_size() threads.
  // |params| is the kernel's params block: CUDA passes it as the kernel's one by-value parameter;
  // Vulkan pushes it as push constants when it is at most 128 bytes, and otherwise copies it into
  // device memory and pushes its 8-byte device address.
  virtual void launch(const Kernel& kernel, Dim3 groups, const void* params,
                      std::size_t params_size) = 0;

  // Records |launches| (each after the previous one has finished, as on a stream) into a graph
  // that replay() runs on this stream, or on another stream of the same device. Nothing runs at
  // recording. nullptr, with the reason in |why|, where the backend has no such thing (CPU): the
  // caller launches one by one.
  virtual std::unique_ptr<StreamGraph> record_graph(std::span<const GraphLaunch> launches, std::string* why);
  // Enqueues |graph|'s launches after the work already on this stream.
  virtual void replay(const StreamGraph& graph);

  virtual std::unique_ptr<Event> record() = 0;
  // Submits batched work without waiting (Vulkan); a no-op elsewhere.
  virtual void flush() {}
  virtual void synchronize() = 0;

 protected:
  Stream() = default;
};

}  // namespace kiln
