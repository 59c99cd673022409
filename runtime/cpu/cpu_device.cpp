// The CPU backend: host memory, streams that run work at once on the calling thread. Tensor ops on
// the CPU run the reference evaluator (runtime/cpu/cpu_ops.cpp), never registry kernels.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "runtime/backends.hpp"
#include "runtime/error.hpp"

namespace kiln {
namespace {

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(Device* device, std::size_t size, void* data)
      : Buffer(device, size, reinterpret_cast<std::uint64_t>(data)), data_(data) {}
  ~CpuBuffer() override { std::free(data_); }

 private:
  void* data_;
};

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
    if (bytes) std::memcpy(host(dst, offset, bytes, "upload"), src, bytes);
  }
  void download(const Buffer& src, std::size_t offset, void* dst, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, host(src, offset, bytes, "download"), bytes);
  }
  void copy(const Buffer& src, std::size_t so, Buffer& dst, std::size_t doff, std::size_t bytes) override {
    if (bytes) std::memmove(host(dst, doff, bytes, "copy"), host(src, so, bytes, "copy"), bytes);
  }
  void fill(Buffer& dst, std::size_t offset, std::size_t bytes, std::uint8_t value) override {
    if (bytes) std::memset(host(dst, offset, bytes, "fill"), value, bytes);
  }
  void launch(const Kernel& kernel, Dim3, const void*, std::size_t) override {
    fail(ErrorCode::unsupported, "cpu stream: cannot launch '" + kernel.name() +
                                     "': the CPU backend runs the reference evaluator, not kernels");
  }
  std::unique_ptr<Event> record() override { return std::make_unique<CpuEvent>(); }
  void synchronize() override {}

 private:
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
    info_.max_allocation_bytes = std::uint64_t(1) << 46;
  }
  const DeviceInfo& info() const override { return info_; }
  std::shared_ptr<Buffer> allocate(std::size_t bytes) override {
    const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + 255) / 256 * 256;
    void* p = std::aligned_alloc(256, rounded);
    if (!p)
      fail(ErrorCode::out_of_memory,
           "cpu: allocating " + std::to_string(bytes) + " bytes of host memory failed");
    return std::make_shared<CpuBuffer>(this, bytes, p);
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
