// The CPU backend: host memory, streams that run work at once on the calling thread. Tensor ops on
// the CPU run the reference evaluator (runtime/cpu/cpu_ops.cpp), never registry kernels.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include <unistd.h>

#include "runtime/backends.hpp"
#include "runtime/device_state.hpp"
#include "core/error.hpp"

namespace kiln {
namespace {

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(Device* device, std::size_t size, void* data, std::size_t reserved)
      : Buffer(device, size, reinterpret_cast<std::uint64_t>(data)), data_(data), reserved_(reserved) {}
  ~CpuBuffer() override {
    std::free(data_);
    detail::device_state(device()).unreserve(reserved_);
  }

 private:
  void* data_;
  std::size_t reserved_;
};

std::uint64_t host_memory_bytes(bool available) {
  const long pages = sysconf(available ? _SC_AVPHYS_PAGES : _SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : 0;
}

class CpuEvent final : public Event {
 public:
  CpuEvent() : time_(std::chrono::steady_clock::now()) {}
  void synchronize() override {}
  double elapsed_ms_since(const Event& start) const override {
    const auto& s = dynamic_cast<const CpuEvent&>(start);
    return std::chrono::duration<double, std::milli>(time_ - s.time_).count();
  }

 private:
  std::chrono::steady_clock::time_point time_;
};

std::byte* host(const Buffer& b, std::size_t offset, std::size_t bytes, const char* what) {
  if (offset > b.size_bytes() || bytes > b.size_bytes() - offset)
    fail(ErrorCode::invalid_argument, std::string("cpu stream ") + what + ": range [" +
                                          std::to_string(offset) + ", +" + std::to_string(bytes) +
                                          ") is outside a buffer of " +
                                          std::to_string(b.size_bytes()) + " bytes");
  return reinterpret_cast<std::byte*>(b.device_address()) + offset;
}

class CpuStream final : public Stream {
 public:
  explicit CpuStream(Device& device) : device_(device) {}
  Device& device() const override { return device_; }
  void upload(Buffer& dst, std::size_t offset, const void* src, std::size_t bytes) override {
    alive("upload");
    if (bytes) std::memcpy(host(dst, offset, bytes, "upload"), src, bytes);
  }
  void download(const Buffer& src, std::size_t offset, void* dst, std::size_t bytes) override {
    alive("download");
    if (bytes) std::memcpy(dst, host(src, offset, bytes, "download"), bytes);
  }
  void copy(const Buffer& src, std::size_t so, Buffer& dst, std::size_t doff, std::size_t bytes) override {
    alive("copy");
    if (bytes) std::memmove(host(dst, doff, bytes, "copy"), host(src, so, bytes, "copy"), bytes);
  }
  void fill(Buffer& dst, std::size_t offset, std::size_t bytes, std::uint8_t value) override {
    alive("fill");
    if (bytes) std::memset(host(dst, offset, bytes, "fill"), value, bytes);
  }
  void launch(const Kernel& kernel, Dim3, const void*, std::size_t) override {
    fail(ErrorCode::unsupported, "cpu stream: cannot launch '" + kernel.name() +
                                     "': the CPU backend runs the reference evaluator, not kernels");
  }
  std::unique_ptr<Event> record() override {
    alive("record");
    return std::make_unique<CpuEvent>();
  }
  void synchronize() override { alive("synchronize"); }

 private:
  // Simulated device loss (kiln::inject_fault): the next stream call fails, and every later one.
  void alive(const char* what) {
    detail::DeviceState& s = detail::device_state(device_);
    if (s.take_lost_fault()) s.mark_lost("injected fault (kiln::inject_fault)", /*injected=*/true);
    s.check(what);
  }

  Device& device_;
};

class CpuDevice final : public Device {
 public:
  CpuDevice() : stream_(*this) {
    info_.backend = Backend::cpu;
    info_.index = 0;
    info_.name = "host CPU (reference backend)";
    info_.arch = "x86_64";
#if defined(__aarch64__)
    info_.arch = "aarch64";
#endif
    info_.driver = "kiln reference evaluator";
    info_.dtypes.assign(kAllDTypes.begin(), kAllDTypes.end());
    info_.memory_bytes = host_memory_bytes(false);
    info_.max_allocation_bytes = info_.memory_bytes ? info_.memory_bytes : std::uint64_t(1) << 46;
  }
  const DeviceInfo& info() const override { return info_; }
  std::shared_ptr<Buffer> allocate(std::size_t bytes) override {
    detail::DeviceState& state = detail::device_state(*this);
    state.check("allocate");
    if (state.take_oom_fault())
      fail(ErrorCode::out_of_memory, "cpu: out of memory allocating " + std::to_string(bytes) +
                                         " bytes (injected fault)");
    // Requests beyond the machine's memory fail here: malloc would overcommit and the process be
    // killed on first touch.
    if (bytes > info_.max_allocation_bytes - 255)
      fail(ErrorCode::out_of_memory, "cpu: cannot allocate " + std::to_string(bytes) +
                                         " bytes: more than the host's " +
                                         std::to_string(info_.max_allocation_bytes) + " bytes of memory");
    const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256;
    if (!state.try_reserve(rounded))
      fail(ErrorCode::out_of_memory, "cpu: out of memory allocating " + std::to_string(bytes) +
                                         " bytes" + state.cap_text());
    void* p = std::aligned_alloc(256, rounded);
    if (!p) {
      state.unreserve(rounded);
      fail(ErrorCode::out_of_memory, "cpu: allocating " + std::to_string(bytes) +
                                         " bytes of host memory failed (" +
                                         std::to_string(host_memory_bytes(true)) + " bytes free)");
    }
    try {
      return std::make_shared<CpuBuffer>(this, bytes, p, rounded);
    } catch (...) {
      std::free(p);
      state.unreserve(rounded);
      throw;
    }
  }
  Stream& default_stream() override { return stream_; }
  std::unique_ptr<Stream> create_stream() override { return std::make_unique<CpuStream>(*this); }
  const Kernel& kernel(const Registry&, const KernelEntry& entry, int) override {
    fail(ErrorCode::unsupported, std::string("cpu: kernel '") + entry.name +
                                     "' is not loadable: the CPU backend evaluates ops directly");
  }

 private:
  DeviceInfo info_;
  CpuStream stream_;
};

}  // namespace

namespace detail {
BackendProbe probe_cpu() {
  BackendProbe p;
  p.devices.push_back(std::make_unique<CpuDevice>());
  return p;
}
}  // namespace detail

}  // namespace kiln
