// A loaded kernel function, ready to launch on its device. Created and cached by Device::kernel();
// lives as long as the device. Immutable and safe to share between threads.
#pragma once

#include <cstdint>
#include <string>

namespace kiln {

struct Dim3 {
  std::uint32_t x = 1, y = 1, z = 1;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  const std::string& name() const { return name_; }  // kernel name plus function symbol
  int block_size() const { return block_size_; }     // threads per block / workgroup

 protected:
  Kernel(std::string name, int block_size) : name_(std::move(name)), block_size_(block_size) {}

 private:
  std::string name_;
  int block_size_;
};

}  // namespace kiln
