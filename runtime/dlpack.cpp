// DLPack import/export and non-owning buffers over foreign memory (runtime/interop.hpp).
#include <dlpack/dlpack.h>

#include <optional>

#include <fmt/format.h>

#include "core/error.hpp"
#include "runtime/cuda/cuda_interop.hpp"
#include "runtime/interop.hpp"
#include "runtime/trace.hpp"

namespace kiln {
namespace {

// kDLBool of DLPack 0.8+ (the enumerator is missing from older headers; the value is the ABI).
constexpr std::uint8_t kDLBoolCode = 6;

class ForeignBuffer final : public Buffer {
 public:
  ForeignBuffer(Device* device, std::size_t size, std::uint64_t address, std::shared_ptr<void> keep_alive)
      : Buffer(device, size, address), keep_alive_(std::move(keep_alive)) {}
  // The owner (a DLPack deleter, the caller's keep-alive) may reuse the memory at once: Kiln's
  // work queued on the device's default stream finishes before it is let go.
  ~ForeignBuffer() override {
    if (!keep_alive_ || device().backend() != Backend::cuda) return;
    try {
      device().default_stream().synchronize();
    } catch (...) {  // a lost device: nothing runs any more
    }
  }

 private:
  std::shared_ptr<void> keep_alive_;
};

DLDataType dl_dtype(DType t) {
  const auto bits = std::uint8_t(dtype_size(t) * 8);
  if (t == DType::pred) return {kDLBoolCode, 8, 1};
  if (t == DType::bf16) return {kDLBfloat, 16, 1};
  if (is_float(t)) return {kDLFloat, bits, 1};
  return {std::uint8_t(is_signed_int(t) ? kDLInt : kDLUInt), bits, 1};
}

std::optional<DType> kiln_dtype(DLDataType d) {
  if (d.lanes != 1) return std::nullopt;
  for (DType t : kAllDTypes) {
    const DLDataType k = dl_dtype(t);
    if (k.code == d.code && k.bits == d.bits) return t;
  }
  return std::nullopt;
}

struct Exported {
  DLManagedTensor managed{};
  std::shared_ptr<Buffer> storage;
  std::vector<std::int64_t> shape, strides;
};

}  // namespace

std::shared_ptr<Buffer> wrap_memory(Device& device, std::uint64_t address, std::size_t bytes,
                                    std::shared_ptr<void> keep_alive) {
  if (device.backend() == Backend::vulkan)
    fail(ErrorCode::unsupported,
         fmt::format("wrap_memory: {} cannot use foreign memory by address: Kiln's Vulkan streams need a "
                     "VkBuffer (allocate with Kiln and use vulkan_buffer() in your own code instead)", device.id()));
  if (!address && bytes) fail(ErrorCode::invalid_argument, fmt::format("wrap_memory: null address on {}", device.id()));
  return std::make_shared<ForeignBuffer>(&device, bytes, address, std::move(keep_alive));
}

DLManagedTensor* to_dlpack(const Tensor& t) {
  if (!t.defined()) fail(ErrorCode::invalid_argument, "to_dlpack: undefined tensor");
  trace_check_read(*t.storage(), "to_dlpack");  // a traced value has no memory to share
  DLDevice dev{};
  switch (t.device().backend()) {
    case Backend::cpu: dev = {kDLCPU, 0}; break;
    case Backend::cuda: dev = {kDLCUDA, t.device().info().index}; break;
    case Backend::vulkan:
      fail(ErrorCode::unsupported, fmt::format("to_dlpack: {}: DLPack has no convention for Vulkan memory "
                                               "(use vulkan_buffer() or move the tensor to the CPU)", t.describe()));
  }
  // The consumer reads the memory at once (DLPack's C form carries no stream): Kiln's work on the
  // default stream that writes it finishes first.
  if (t.device().backend() == Backend::cuda) t.device().default_stream().synchronize();
  auto* e = new Exported;
  e->storage = t.storage();
  e->shape = t.shape();
  e->strides = t.strides();
  DLTensor& d = e->managed.dl_tensor;
  d.data = reinterpret_cast<void*>(t.storage()->device_address());
  d.device = dev;
  d.ndim = t.rank();
  d.dtype = dl_dtype(t.dtype());
  d.shape = e->shape.data();
  d.strides = e->strides.data();
  d.byte_offset = std::uint64_t(t.offset()) * dtype_size(t.dtype());
  e->managed.manager_ctx = e;
  e->managed.deleter = [](DLManagedTensor* self) { delete static_cast<Exported*>(self->manager_ctx); };
  return &e->managed;
}

Tensor from_dlpack(const DLTensor& d, std::shared_ptr<void> keep_alive) {
  Device* device = nullptr;
  if (d.device.device_type == kDLCPU) device = &kiln::device("cpu");
  else if (d.device.device_type == kDLCUDA) device = &kiln::device(fmt::format("cuda:{}", d.device.device_id));
  else
    fail(ErrorCode::unsupported, fmt::format("from_dlpack: device type {} is not supported (kDLCPU and kDLCUDA are; "
                                             "Kiln cannot import Vulkan memory by DLPack)", int(d.device.device_type)));
  const auto dtype = kiln_dtype(d.dtype);
  if (!dtype)
    fail(ErrorCode::unsupported, fmt::format("from_dlpack: dtype code {} bits {} lanes {} has no Kiln dtype",
                                             d.dtype.code, d.dtype.bits, d.dtype.lanes));
  if (d.ndim < 0 || (d.ndim > 0 && !d.shape))
    fail(ErrorCode::invalid_argument, fmt::format("from_dlpack: ndim {} without a shape", d.ndim));
  const Shape shape(d.shape, d.shape + d.ndim);
  checked_numel(shape, *dtype, "from_dlpack");  // no negative dimension; the counts below fit
  Shape strides(std::size_t(d.ndim));
  for (std::int64_t s = 1, i = d.ndim - 1; i >= 0; --i) {
    strides[i] = d.strides ? d.strides[i] : s;
    s *= std::max<std::int64_t>(shape[i], 1);
  }
  // The buffer spans the elements the view reaches (negative strides reach below the first).
  std::int64_t lo = 0, hi = 0, span = 0;
  const bool empty = shape_numel(shape) == 0;
  for (std::size_t i = 0; i < shape.size() && !empty; ++i) {
    std::int64_t reach;
    std::int64_t& end = strides[i] < 0 ? lo : hi;
    if (__builtin_mul_overflow(strides[i], shape[i] - 1, &reach) || __builtin_add_overflow(end, reach, &end))
      fail(ErrorCode::invalid_argument, fmt::format("from_dlpack: shape {} with strides {} reaches past 2^63 elements",
                                                    shape_text(shape), shape_text(strides)));
  }
  if (!empty && (__builtin_sub_overflow(hi, lo, &span) || __builtin_add_overflow(span, 1, &span) ||
                 __builtin_mul_overflow(span, std::int64_t(dtype_size(*dtype)), &span)))
    fail(ErrorCode::invalid_argument, fmt::format("from_dlpack: shape {} with strides {} spans more than 2^63 bytes",
                                                  shape_text(shape), shape_text(strides)));
  const std::size_t es = dtype_size(*dtype);
  const std::uint64_t first = reinterpret_cast<std::uint64_t>(d.data) + d.byte_offset;
  if (first % es)
    fail(ErrorCode::invalid_argument, fmt::format("from_dlpack: address {:#x} is not aligned to its {}-byte dtype {}",
                                                  first, es, dtype_name(*dtype)));
  const std::uint64_t base = first + std::uint64_t(lo) * es;  // wraps correctly for lo < 0
  const std::size_t bytes = empty ? 0 : std::size_t(span);
  auto buffer = wrap_memory(*device, base, bytes, std::move(keep_alive));
  Tensor t = Tensor::view(std::move(buffer), shape, strides, -lo, *dtype);
  // The producer's work on the legacy default stream (PyTorch's, CuPy's default) may still be
  // writing the memory, and Kiln's streams do not wait for that stream by themselves
  // (CU_STREAM_NON_BLOCKING): wait for it here. Work on the producer's other streams is the
  // caller's to finish (runtime/interop.hpp).
  if (device->backend() == Backend::cuda && !empty) cuda::synchronize_legacy_stream(*device);
  return t;
}

Tensor from_dlpack(DLManagedTensor* managed) {
  if (!managed) fail(ErrorCode::invalid_argument, "from_dlpack: null DLManagedTensor");
  std::shared_ptr<void> owner(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  return from_dlpack(managed->dl_tensor, std::move(owner));  // on a throw |owner| runs the deleter
}

}  // namespace kiln
