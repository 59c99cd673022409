#include "runtime/tensor.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/trace.hpp"

namespace kiln {

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (std::size_t i = 0; i < s.size(); ++i) t.append(i ? "," : "").append(std::to_string(s[i]));
  return t + "]";
}

std::int64_t shape_numel(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::int64_t checked_numel(const Shape& shape, DType dtype, std::string_view what) {
  // The product of max(d, 1) must fit too: row-major strides of an empty tensor are computed from it.
  std::int64_t n = 1;
  bool empty = false;
  for (auto d : shape) {
    if (d < 0)
      fail(ErrorCode::invalid_argument,
           fmt::format("{}: negative dimension in shape {} ({})", what, shape_text(shape), dtype_name(dtype)));
    empty |= d == 0;
    if (__builtin_mul_overflow(n, std::max<std::int64_t>(d, 1), &n))
      fail(ErrorCode::invalid_argument, fmt::format("{}: shape {} ({}) has more than 2^63 elements", what,
                                                    shape_text(shape), dtype_name(dtype)));
  }
  if (empty) return 0;
  std::int64_t bytes;
  if (__builtin_mul_overflow(n, std::int64_t(dtype_size(dtype)), &bytes))
    fail(ErrorCode::out_of_memory, fmt::format("{}: shape {} of {} needs {} x {} bytes, more than 2^63", what,
                                               shape_text(shape), dtype_name(dtype), n, dtype_size(dtype)));
  return n;
}

Shape row_major_strides(const Shape& shape) {
  Shape st(shape.size());
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    st[i] = s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  return st;
}

namespace {


// Calls f(linear_index, element_offset) for every element of a strided view in row-major order.
template <class F>
void for_each_offset(const Shape& shape, const Shape& strides, std::int64_t offset, F f) {
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<std::int64_t> idx(shape.size(), 0);
  std::int64_t off = offset;
  for (std::int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (std::size_t d = shape.size(); d-- > 0;) {
      if (++idx[d] < shape[d]) { off += strides[d]; break; }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device& device) {
  const std::int64_t n = checked_numel(shape, dtype, "Tensor::empty");
  Tensor t;
  const std::size_t bytes = std::max<std::size_t>(std::size_t(n) * dtype_size(dtype), 1);
  t.storage_ = trace_allocate(device, bytes);  // a traced value while kiln::jit traces on |device|
  if (!t.storage_) t.storage_ = device.allocate(bytes);
  t.shape_ = shape;
  t.strides_ = row_major_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::from_host(const void* data, std::size_t bytes, const Shape& shape, DType dtype, Device& device) {
  const std::size_t want = std::size_t(checked_numel(shape, dtype, "Tensor::from_host")) * dtype_size(dtype);
  if (bytes != want)
    fail(ErrorCode::invalid_argument, fmt::format("Tensor::from_host: {} {} needs {} bytes, got {}",
                                                  shape_text(shape), dtype_name(dtype), want, bytes));
  Tensor t = empty(shape, dtype, device);
  if (bytes && !trace_upload(*t.storage_, data, bytes)) device.default_stream().upload(*t.storage_, 0, data, bytes);
  return t;
}

Tensor Tensor::view(std::shared_ptr<Buffer> storage, const Shape& shape, const Shape& strides,
                    std::int64_t offset, DType dtype) {
  if (!storage) fail(ErrorCode::invalid_argument, "Tensor::view: no storage");
  if (strides.size() != shape.size())
    fail(ErrorCode::invalid_argument, "Tensor::view: shape and strides differ in rank");
  const std::int64_t n = checked_numel(shape, dtype, "Tensor::view");
  // Every element must lie inside the storage (the extents computed without overflow).
  std::int64_t lo = offset, hi = offset;
  bool overflow = false;
  for (std::size_t d = 0; d < shape.size() && n > 0; ++d) {
    std::int64_t ext;
    overflow |= __builtin_mul_overflow(strides[d], shape[d] - 1, &ext);
    overflow |= __builtin_add_overflow(ext < 0 ? lo : hi, ext, ext < 0 ? &lo : &hi);
  }
  const auto cap = std::int64_t(storage->size_bytes() / dtype_size(dtype));
  // Elements at addresses that are not multiples of their size fault on a GPU (CUDA: the context
  // is lost) and are undefined behaviour on the CPU: foreign memory must be aligned.
  if (storage->device_address() % dtype_size(dtype) != 0)
    fail(ErrorCode::invalid_argument,
         fmt::format("Tensor::view: the buffer on {} starts at {:#x}, not aligned to {}'s {} bytes", storage->device().id(),
                     storage->device_address(), dtype_name(dtype), dtype_size(dtype)));
  if (n > 0 && (overflow || lo < 0 || hi >= cap))
    fail(ErrorCode::invalid_argument,
         fmt::format("Tensor::view: {} {} with strides {} at offset {} reaches outside a buffer of {} elements",
                     shape_text(shape), dtype_name(dtype), shape_text(strides), offset, cap));
  Tensor t;
  t.storage_ = std::move(storage);
  t.shape_ = shape;
  t.strides_ = strides;
  t.offset_ = offset;
  t.dtype_ = dtype;
  return t;
}

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;
  std::int64_t s = 1;
  for (std::size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != s) return false;
    s *= shape_[i];
  }
  return true;
}

Buffer& Tensor::storage(const char* call) const {
  if (!storage_)
    fail(ErrorCode::invalid_argument,
         fmt::format("{}: the tensor is undefined (default-constructed or moved-from)", call));
  return *storage_;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return fmt::format("{} {} on {}", shape_text(shape_), dtype_name(dtype_), device().id());
}

void Tensor::to_host(void* dst, std::size_t bytes) const {
  trace_check_read(storage("Tensor::to_host"), "Tensor::to_host");
  if (bytes != size_bytes())
    fail(ErrorCode::invalid_argument,
         fmt::format("Tensor::to_host: {} needs {} bytes, got {}", describe(), size_bytes(), bytes));
  if (bytes == 0) return;
  const std::size_t es = dtype_size(dtype_);
  Stream& stream = device().default_stream();
  if (is_contiguous()) {
    stream.download(*storage_, std::size_t(offset_) * es, dst, bytes);
    return;
  }
  // Download the span the view covers, then gather on the host.
  std::int64_t lo = offset_, hi = offset_;
  for (std::size_t d = 0; d < shape_.size(); ++d) {
    const std::int64_t ext = strides_[d] * (shape_[d] - 1);
    (ext < 0 ? lo : hi) += ext;
  }
  std::vector<std::byte> span(std::size_t(hi - lo + 1) * es);
  stream.download(*storage_, std::size_t(lo) * es, span.data(), span.size());
  auto* out = static_cast<std::byte*>(dst);
  for_each_offset(shape_, strides_, offset_ - lo, [&](std::int64_t i, std::int64_t off) {
    std::memcpy(out + i * es, span.data() + off * es, es);
  });
}

std::vector<std::byte> Tensor::to_host() const {
  std::vector<std::byte> v(size_bytes());
  to_host(v.data(), v.size());
  return v;
}

Tensor Tensor::to(Device& target) const {
  if (&target == &storage("Tensor::to").device()) return *this;
  trace_check_read(*storage_, "Tensor::to");
  std::vector<std::byte> host = to_host();
  return from_host(host.data(), host.size(), shape_, dtype_, target);
}

Tensor Tensor::contiguous() const {
  storage("Tensor::contiguous");
  if (is_contiguous()) return *this;
  // A copy moves bits: run the built-in copy kernel of the element size (copy_8 ... copy_64 of
  // kernels/builtin.toml) on an unsigned view of the same storage.
  const DType bits = dtype_size(dtype_) == 1 ? DType::u8 : dtype_size(dtype_) == 2 ? DType::u16
                   : dtype_size(dtype_) == 4 ? DType::u32 : DType::u64;
  Expr identity;
  identity.set_root(identity.input(0, bits));
  try {
    Tensor dense = map(identity, {view(storage_, shape_, strides_, offset_, bits)});
    dense.dtype_ = dtype_;
    return dense;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::unsupported) throw;
    std::vector<std::byte> host = to_host();  // no copy kernel for this dtype: go through the host
    return from_host(host.data(), host.size(), shape_, dtype_, device());
  }
}

Tensor Tensor::transpose(std::vector<int> perm) const {
  storage("Tensor::transpose");
  if (perm.empty())
    for (int i = rank() - 1; i >= 0; --i) perm.push_back(i);
  if (int(perm.size()) != rank())
    fail(ErrorCode::invalid_argument,
         fmt::format("Tensor::transpose: {} axes [{}] given for {}, which has {}", perm.size(), fmt::join(perm, ","),
                     describe(), rank()));
  std::vector<bool> seen(rank(), false);
  Tensor t = *this;
  for (int i = 0; i < rank(); ++i) {
    if (perm[i] < 0 || perm[i] >= rank() || seen[perm[i]])
      fail(ErrorCode::invalid_argument,
           fmt::format("Tensor::transpose: axes [{}] are not a permutation of 0..{} for {} (axis {} {})",
                       fmt::join(perm, ","), rank() - 1, describe(), perm[i],
                       perm[i] < 0 || perm[i] >= rank() ? "is out of range" : "is given twice"));
    seen[perm[i]] = true;
    t.shape_[i] = shape_[perm[i]];
    t.strides_[i] = strides_[perm[i]];
  }
  return t;
}

Tensor Tensor::slice(int axis, std::int64_t start, std::int64_t stop, std::int64_t step) const {
  storage("Tensor::slice");
  const int given = axis;
  if (axis < 0) axis += rank();
  std::string why;
  if (axis < 0 || axis >= rank()) why = fmt::format("axis {} is out of range for rank {}", given, rank());
  else if (step <= 0) why = fmt::format("the step {} must be >= 1 (no reversed slices)", step);
  else if (start < 0 || start > shape_[axis]) why = fmt::format("start {} is outside [0, {}]", start, shape_[axis]);
  else if (stop < start) why = fmt::format("stop {} is before start {}", stop, start);
  else if (stop > shape_[axis]) why = fmt::format("stop {} is past the axis's size {}", stop, shape_[axis]);
  if (!why.empty())
    fail(ErrorCode::invalid_argument, fmt::format("Tensor::slice: axis {} range [{}:{}:{}] of {}: {}", given, start,
                                                  stop, step, describe(), why));
  Tensor t = *this;
  t.offset_ += start * strides_[axis];
  t.shape_[axis] = stop == start ? 0 : (stop - start - 1) / step + 1;  // no overflow for any step
  if (t.shape_[axis] > 1) t.strides_[axis] *= step;  // then step < the axis's size: no overflow
  return t;
}

Tensor Tensor::broadcast_to(const Shape& shape) const {
  storage("Tensor::broadcast_to");
  checked_numel(shape, dtype_, "Tensor::broadcast_to");
  if (shape.size() < shape_.size())
    fail(ErrorCode::shape_mismatch, fmt::format("broadcast_to: {} cannot broadcast to {}", describe(), shape_text(shape)));
  Tensor t = *this;
  const std::size_t lead = shape.size() - shape_.size();
  t.shape_ = shape;
  t.strides_.assign(shape.size(), 0);
  for (std::size_t i = 0; i < shape_.size(); ++i) {
    if (shape_[i] == shape[lead + i]) t.strides_[lead + i] = strides_[i];
    else if (shape_[i] != 1)
      fail(ErrorCode::shape_mismatch, fmt::format("broadcast_to: {} cannot broadcast to {}", describe(), shape_text(shape)));
  }
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  storage("Tensor::reshape");
  checked_numel(shape, dtype_, "Tensor::reshape");
  if (shape_numel(shape) != numel())
    fail(ErrorCode::shape_mismatch, fmt::format("reshape: {} has {} elements, {} has {}", describe(), numel(),
                                                shape_text(shape), shape_numel(shape)));
  if (!is_contiguous())
    fail(ErrorCode::invalid_argument, fmt::format("reshape: {} is not contiguous (call contiguous() first)", describe()));
  Tensor t = *this;
  t.shape_ = shape;
  t.strides_ = row_major_strides(shape);
  return t;
}

}  // namespace kiln
