// A block of device memory. Owned through std::shared_ptr (tensors share storage); freed (returned
// to its device's pool) when the last owner lets go. Thread-safety: a Buffer is immutable; its
// contents are ordered only by the streams that use it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln {

class Device;

class Buffer {
 public:
  virtual ~Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  std::size_t size_bytes() const { return size_; }
  // The address kernels use: a CUdeviceptr on CUDA, a buffer device address on Vulkan, a host
  // pointer on the CPU. Always 256-byte aligned.
  std::uint64_t device_address() const { return address_; }
  Device& device() const { return *device_; }

 protected:
  Buffer(Device* device, std::size_t size, std::uint64_t address)
      : device_(device), size_(size), address_(address) {}

 private:
  Device* device_;
  std::size_t size_;
  std::uint64_t address_;
};

}  // namespace kiln
