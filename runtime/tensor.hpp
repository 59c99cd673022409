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
#include <type_traits>
#include <vector>

#include "core/dtype.hpp"
#include "core/half.hpp"
#include "runtime/device.hpp"

namespace kiln {

using Shape = std::vector<std::int64_t>;

std::string shape_text(const Shape& s);  // "[4,3]"
std::int64_t shape_numel(const Shape& s);
// The element count of |shape| for a tensor of |dtype|, checked: throws invalid_argument naming
// |what|, the shape and the dtype for a negative dimension or a count past 2^63, and out_of_memory
// when the bytes would not fit in 63 bits.
std::int64_t checked_numel(const Shape& shape, DType dtype, std::string_view what);

// The element strides of a dense row-major tensor of |shape| (a size-0 axis counts as 1).
Shape row_major_strides(const Shape& shape);

// The dtype of a host element type: bool (pred), std::int8_t ... std::int64_t, std::uint8_t ...
// std::uint64_t, kiln::half (f16), kiln::bfloat16 (bf16), float (f32), double (f64).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, bool>) return DType::pred;
  else if constexpr (std::is_same_v<T, std::int8_t>) return DType::s8;
  else if constexpr (std::is_same_v<T, std::int16_t>) return DType::s16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::s32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::s64;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return DType::u8;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return DType::u16;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return DType::u32;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return DType::u64;
  else if constexpr (std::is_same_v<T, half>) return DType::f16;
  else if constexpr (std::is_same_v<T, bfloat16>) return DType::bf16;
  else if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, double>) return DType::f64;
  else static_assert(sizeof(T) == 0, "no Kiln dtype for this host type");
}

class Tensor {
 public:
  Tensor() = default;

  // Typed host I/O. from_vector: |values| row-major, as many as |shape| has elements
  // (invalid_argument naming the counts otherwise), dtype dtype_of<T>(). to_vector: the elements
  // row-major; T must be the tensor's dtype (dtype_mismatch naming both otherwise).
  template <class T>
  static Tensor from_vector(std::span<const T> values, const Shape& shape, Device& device = default_device());
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device& device = default_device());
  template <class T>
  std::vector<T> to_vector() const;

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

namespace detail {
void check_count(const char* what, std::size_t n, const Shape& shape, DType dtype);  // invalid_argument
void check_dtype(const char* what, const Tensor& t, DType want);                    // dtype_mismatch
}  // namespace detail

template <class T>
Tensor Tensor::from_vector(std::span<const T> values, const Shape& shape, Device& device) {
  detail::check_count("Tensor::from_vector", values.size(), shape, dtype_of<T>());
  return from_host(values.data(), values.size_bytes(), shape, dtype_of<T>(), device);
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device& device) {
  if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> is packed: one byte each here
    const std::vector<std::uint8_t> bytes(values.begin(), values.end());
    detail::check_count("Tensor::from_vector", bytes.size(), shape, DType::pred);
    return from_host(bytes.data(), bytes.size(), shape, DType::pred, device);
  } else {
    return from_vector(std::span<const T>(values), shape, device);
  }
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  detail::check_dtype("Tensor::to_vector", *this, dtype_of<T>());
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(numel()));
    to_host(bytes.data(), bytes.size());
    return std::vector<bool>(bytes.begin(), bytes.end());
  } else {
    std::vector<T> out(static_cast<std::size_t>(numel()));
    to_host(out.data(), out.size() * sizeof(T));
    return out;
  }
}

}  // namespace kiln
