// kiln::Tensor: a typed, shaped, strided view of device memory. Storage is shared between views
// (transpose, slice, broadcast_to and reshape of contiguous tensors are zero-copy). Transfers are
// explicit: from_host, to_host, to(device).
// Thread-safety: a Tensor value may be copied and read from several threads; operations that write
// a tensor's storage must be ordered by the caller.
// An undefined tensor (default-constructed or moved-from) has defined() false and describe()
// "undefined tensor"; every other member that needs storage throws invalid_argument naming itself.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.hpp"
#include "runtime/device.hpp"

namespace kiln {

using Shape = std::vector<std::int64_t>;

std::string shape_text(const Shape& s);  // "[4,3]"
std::int64_t shape_numel(const Shape& s);
// The element count of |shape| for a tensor of |dtype|, checked: throws invalid_argument naming
// |what|, the shape and the dtype for a negative dimension or a count past 2^63, and out_of_memory
// when the bytes would not fit in 63 bits.
std::int64_t checked_numel(const Shape& shape, DType dtype, std::string_view what);

class Tensor {
 public:
  Tensor() = default;

  // Uninitialized contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype, Device& device = default_device());
  // Copies |bytes| (row-major, shape_numel(shape) elements of dtype) from host memory.
  static Tensor from_host(const void* data, std::size_t bytes, const Shape& shape, DType dtype,
                          Device& device = default_device());
  // A view over existing storage (|offset| and |strides| in elements).
  static Tensor view(std::shared_ptr<Buffer> storage, const Shape& shape, const Shape& strides,
                     std::int64_t offset, DType dtype);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  std::int64_t offset() const { return offset_; }
  DType dtype() const { return dtype_; }
  int rank() const { return int(shape_.size()); }
  std::int64_t numel() const { return shape_numel(shape_); }
  std::size_t size_bytes() const { return std::size_t(numel()) * dtype_size(dtype_); }
  Device& device() const { return storage("Tensor::device").device(); }
  const std::shared_ptr<Buffer>& storage() const { return storage_; }
  // The device address of element 0.
  std::uint64_t address() const {
    return storage("Tensor::address").device_address() + std::uint64_t(offset_) * dtype_size(dtype_);
  }
  bool is_contiguous() const;
  // "[4,3] f32 on vulkan:0"
  std::string describe() const;

  // Row-major dense copy of the elements into host memory (|bytes| must be size_bytes()).
  void to_host(void* dst, std::size_t bytes) const;
  std::vector<std::byte> to_host() const;
  // A copy on |device| (the same tensor when already there).
  Tensor to(Device& device) const;
  // A contiguous copy (or this tensor when already contiguous).
  Tensor contiguous() const;

  // Zero-copy views.
  Tensor transpose(std::vector<int> perm) const;  // empty perm reverses the axes
  Tensor slice(int axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1) const;
  Tensor broadcast_to(const Shape& shape) const;
  Tensor reshape(const Shape& shape) const;  // contiguous tensors only

 private:
  // The storage, or invalid_argument "<call>: the tensor is undefined ..." when there is none.
  Buffer& storage(const char* call) const;

  std::shared_ptr<Buffer> storage_;
  Shape shape_, strides_;
  std::int64_t offset_ = 0;
  DType dtype_ = DType::f32;
};

}  // namespace kiln
