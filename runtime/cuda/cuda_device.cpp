#include "runtime/cuda/cuda_device.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "codegen/family.hpp"
#include "runtime/backends.hpp"
#include "runtime/cuda/cuda_interop.hpp"
#include "runtime/cuda/cuda_stream.hpp"
#include "core/error.hpp"

namespace kiln::cuda {

// ---- buffers --------------------------------------------------------------------------------

CudaBuffer::CudaBuffer(CudaDevice* device, CachingAllocator* allocator, std::size_t size,
                       CUdeviceptr ptr, std::size_t size_class)
    : Buffer(device, size, std::uint64_t(ptr)), allocator_(allocator), size_class_(size_class) {}

CudaBuffer::~CudaBuffer() { allocator_->release(CUdeviceptr(device_address()), size_class_); }

// ---- the device -----------------------------------------------------------------------------

CudaDevice::CudaDevice(CUdevice device, DeviceInfo info, Dim3 max_grid)
    : cu_device_(device),
      info_(std::move(info)),
      max_grid_(max_grid),
      health_("cuda:" + std::to_string(info_.index)),
      allocator_(*this) {}

CudaDevice::~CudaDevice() {
  // Devices live in a never-destroyed list; this runs only for devices destroyed explicitly, after
  // every buffer, stream, event and kernel of the device is gone.
  default_stream_.reset();
  if (!try_bind()) return;  // never used (no context) or lost: nothing to release safely
  {
    std::lock_guard lock(kernels_mu_);
    kernels_.clear();
    for (auto& [key, module] : modules_) driver().cuModuleUnload(module);
    modules_.clear();
  }
  allocator_.shutdown();
  driver().cuDevicePrimaryCtxRelease(cu_device_);
  context_ = nullptr;
}

CUcontext CudaDevice::context() {
  health_.check();
  std::call_once(context_once_, [this] {
    CUcontext ctx = nullptr;
    KILN_CU(&health_, cuDevicePrimaryCtxRetain, &ctx, cu_device_);
    context_ = ctx;
  });
  return context_;
}

void CudaDevice::bind() {
  CUcontext ctx = context();
  KILN_CU(&health_, cuCtxSetCurrent, ctx);
}

bool CudaDevice::try_bind() noexcept {
  if (health_.lost() || !context_) return false;
  return driver().cuCtxSetCurrent(context_) == CUDA_SUCCESS;
}

bool CudaDevice::bind_injected_loss() noexcept {
  if (!health_.injected() || !context_) return false;
  return driver().cuCtxSetCurrent(context_) == CUDA_SUCCESS;
}

void CudaDevice::register_stream(CUstream s) {
  std::lock_guard lock(streams_mu_);
  streams_.push_back(s);
}

void CudaDevice::unregister_stream(CUstream s) {
  std::lock_guard lock(streams_mu_);
  // One registration: a wrapped stream (cuda::wrap_stream) may share its CUstream with another.
  if (auto it = std::find(streams_.begin(), streams_.end(), s); it != streams_.end()) streams_.erase(it);
}

std::shared_ptr<Buffer> CudaDevice::allocate(std::size_t bytes) {
  return allocator_.allocate(bytes);
}

Stream& CudaDevice::default_stream() {
  health_.check();
  std::call_once(default_stream_once_, [this] {
    default_stream_ = std::make_unique<CudaStream>(*this);
    std::lock_guard lock(streams_mu_);
    default_cu_ = default_stream_->native();
  });
  return *default_stream_;
}

bool CudaDevice::only_default_stream() {
  std::lock_guard lock(streams_mu_);
  return streams_.size() == 1 && default_cu_ && streams_[0] == default_cu_;
}

void CudaDevice::settle_default_stream() {
  CUstream s = nullptr;
  {
    std::lock_guard lock(streams_mu_);
    s = default_cu_;
  }
  if (s) default_stream().synchronize();
}

std::unique_ptr<Stream> CudaDevice::create_stream() {
  // Registered first (blocks freed from now on are fenced on it), then the default stream's work
  // finishes: memory it still used may be in new buffers already (only_default_stream).
  auto stream = std::make_unique<CudaStream>(*this);
  settle_default_stream();
  return stream;
}

const Kernel& CudaDevice::kernel(const Registry& registry, const KernelEntry& entry, int function) {
  const std::string kname = entry.name ? entry.name : "<unnamed>";
  if (entry.cuda_image < 0)
    fail(ErrorCode::unsupported, "kernel " + kname + " was not built for CUDA (" + id() + ")");
  if (std::size_t(entry.cuda_image) >= registry.cuda_images.size())
    fail(ErrorCode::invalid_argument,
         "kernel " + kname + ": CUDA image " + std::to_string(entry.cuda_image) +
             " is out of range (the registry has " + std::to_string(registry.cuda_images.size()) + ")");
  if (function < 0 || function >= entry.num_functions || !entry.functions)
    fail(ErrorCode::invalid_argument, "kernel " + kname + " has no function " +
                                          std::to_string(function) + " (it has " +
                                          std::to_string(entry.num_functions) + ")");
  const char* symbol = entry.functions[function].symbol;
  if (!symbol || !*symbol)
    fail(ErrorCode::invalid_argument,
         "kernel " + kname + ": function " + std::to_string(function) + " has no CUDA symbol");
  const EmbeddedBlob& blob = registry.cuda_images[std::size_t(entry.cuda_image)];
  if (blob.empty() || !blob.data)
    fail(ErrorCode::unsupported, "kernel " + kname + " was not built for CUDA: its image is empty");
  if (entry.block_size <= 0 || entry.block_size > 1024)
    fail(ErrorCode::invalid_argument, "kernel " + kname + ": block size " +
                                          std::to_string(entry.block_size) +
                                          " is outside 1..1024");

  std::lock_guard lock(kernels_mu_);
  auto key = std::make_tuple(blob.data, std::string(symbol), entry.block_size);
  if (auto it = kernels_.find(key); it != kernels_.end()) {
    health_.check();
    return *it->second;
  }
  bind();

  CUmodule module = nullptr;
  const auto mkey = std::make_pair(blob.data, blob.size);
  if (auto it = modules_.find(mkey); it != modules_.end()) {
    module = it->second;
  } else {
    char log[4096] = {};
    CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void* values[] = {log, reinterpret_cast<void*>(std::uintptr_t(sizeof(log)))};
    CUresult r = driver().cuModuleLoadDataEx(&module, blob.data, 2, options, values);
    if (r == CUDA_ERROR_OUT_OF_MEMORY && allocator_.release_cache() > 0) {  // freed tensors held in the cache
      log[0] = '\0';
      r = driver().cuModuleLoadDataEx(&module, blob.data, 2, options, values);
    }
    if (r != CUDA_SUCCESS) {
      if (is_sticky(r)) raise(r, "cuModuleLoadDataEx(&module, image)", __FILE__, __LINE__, &health_);
      log[sizeof(log) - 1] = '\0';
      std::string text = log;
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      fail(r == CUDA_ERROR_OUT_OF_MEMORY ? ErrorCode::out_of_memory : ErrorCode::compile_error,
           id() + ": cannot load the CUDA image of kernel " + kname + " (" +
               std::to_string(blob.size) + " bytes) for " + info_.arch + ": cuModuleLoadDataEx failed with " +
               result_name(r) + (r == CUDA_ERROR_NO_BINARY_FOR_GPU
                                     ? " (the image has no code for this architecture)"
                                     : "") +
               (text.empty() ? "" : "; JIT log: " + text));
    }
    modules_.emplace(mkey, module);
  }

  CUfunction fn = nullptr;
  const CUresult r = driver().cuModuleGetFunction(&fn, module, symbol);
  if (r != CUDA_SUCCESS) {
    if (is_sticky(r)) raise(r, "cuModuleGetFunction(&fn, module, symbol)", __FILE__, __LINE__, &health_);
    fail(ErrorCode::compile_error, id() + ": the CUDA image of kernel " + kname +
                                       " has no function '" + symbol + "' (cuModuleGetFunction: " +
                                       result_name(r) + ")");
  }
  int max_threads = 0;
  KILN_CU(&health_, cuFuncGetAttribute, &max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn);
  if (entry.block_size > max_threads)
    fail(ErrorCode::compile_error,
         id() + ": kernel " + kname + " (" + symbol + ") needs blocks of " +
             std::to_string(entry.block_size) + " threads but its code allows at most " +
             std::to_string(max_threads) + " on " + info_.arch);
  // A kernel that needs dynamic shared memory says how much in a global of its module,
  // <symbol>_shared_bytes (templates/cuda/contract_wgmma.cuh); above 48 KiB the function must be
  // allowed it first.
  unsigned shared_bytes = 0;
  CUdeviceptr global = 0;
  std::size_t global_size = 0;
  const std::string global_name = std::string(symbol) + "_shared_bytes";
  if (const CUresult g = driver().cuModuleGetGlobal(&global, &global_size, module, global_name.c_str());
      g == CUDA_SUCCESS && global_size == sizeof shared_bytes) {
    KILN_CU(&health_, cuMemcpyDtoH, &shared_bytes, global, sizeof shared_bytes);
    int static_bytes = 0, optin = 0;
    KILN_CU(&health_, cuFuncGetAttribute, &static_bytes, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, fn);
    KILN_CU(&health_, cuDeviceGetAttribute, &optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, cu_device_);
    if (std::int64_t(shared_bytes) + static_bytes > optin)
      fail(ErrorCode::unsupported, id() + ": kernel " + kname + " (" + symbol + ") needs " +
                                       std::to_string(shared_bytes + unsigned(static_bytes)) +
                                       " bytes of shared memory per block; " + info_.name + " allows " +
                                       std::to_string(optin));
    KILN_CU(&health_, cuFuncSetAttribute, fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, int(shared_bytes));
  } else if (g != CUDA_SUCCESS && g != CUDA_ERROR_NOT_FOUND && is_sticky(g)) {
    raise(g, "cuModuleGetGlobal(&global, &size, module, name)", __FILE__, __LINE__, &health_);
  }
  auto k = std::make_unique<CudaKernel>(kname + ":" + symbol, entry.block_size, this, fn, shared_bytes);
  const Kernel& ref = *k;
  kernels_.emplace(std::move(key), std::move(k));
  return ref;
}

void CudaDevice::encode_tensor_map(const TensorMapRequest& r, void* out) {
  CUtensorMapDataType type;
  switch (r.element_bytes) {
    case 1: type = CU_TENSOR_MAP_DATA_TYPE_UINT8; break;
    case 2: type = CU_TENSOR_MAP_DATA_TYPE_UINT16; break;
    case 4: type = CU_TENSOR_MAP_DATA_TYPE_UINT32; break;
    case 8: type = CU_TENSOR_MAP_DATA_TYPE_UINT64; break;
    default: fail(ErrorCode::internal, fmt::format("{}: a tensor map of {}-byte elements", id(), r.element_bytes));
  }
  CUtensorMapSwizzle swizzle = CU_TENSOR_MAP_SWIZZLE_NONE;
  if (r.swizzle_bytes == 32) swizzle = CU_TENSOR_MAP_SWIZZLE_32B;
  if (r.swizzle_bytes == 64) swizzle = CU_TENSOR_MAP_SWIZZLE_64B;
  if (r.swizzle_bytes == 128) swizzle = CU_TENSOR_MAP_SWIZZLE_128B;
  if (r.rank < 1 || r.rank > 5 || (r.swizzle_bytes && swizzle == CU_TENSOR_MAP_SWIZZLE_NONE))
    fail(ErrorCode::internal, fmt::format("{}: a tensor map of rank {}, swizzle {}", id(), r.rank, r.swizzle_bytes));
  if (std::atoi(info_.arch.c_str() + 3) < 90)
    fail(ErrorCode::unsupported, fmt::format("{}: TMA tensor maps need compute capability 9.0 or later ({} is {})", id(),
                                             info_.name, info_.arch));
  const cuuint32_t element_strides[5] = {1, 1, 1, 1, 1};
  bind();
  const CUresult res = driver().cuTensorMapEncodeTiled(
      static_cast<CUtensorMap*>(out), type, r.rank, reinterpret_cast<void*>(std::uintptr_t(r.address)), r.dims, r.strides,
      r.box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (res != CUDA_SUCCESS) {
    if (is_sticky(res)) raise(res, "cuTensorMapEncodeTiled", __FILE__, __LINE__, &health_);
    std::string dims, strides, box;
    for (std::uint32_t d = 0; d < r.rank; ++d) {
      dims += fmt::format("{}{}", d ? ", " : "", r.dims[d]);
      box += fmt::format("{}{}", d ? ", " : "", r.box[d]);
      if (d + 1 < r.rank) strides += fmt::format("{}{}", d ? ", " : "", r.strides[d]);
    }
    fail(ErrorCode::invalid_argument,
         fmt::format("{}: cuTensorMapEncodeTiled refused a tensor map ({}): address {:#x}, dims [{}], byte strides [{}], "
                     "box [{}], {}-byte elements, swizzle {}", id(), result_name(res), r.address, dims, strides, box,
                     r.element_bytes, r.swizzle_bytes));
  }
}

// ---- interop ---------------------------------------------------------------------------------

void* native_stream(Stream& stream) {
  auto* s = dynamic_cast<CudaStream*>(&stream);
  if (!s)
    fail(ErrorCode::invalid_argument,
         "native_stream: the stream belongs to " + stream.device().id() + ", not a CUDA device");
  return s->native();
}

void* make_context_current(Device& device) {
  auto* d = dynamic_cast<CudaDevice*>(&device);
  if (!d) fail(ErrorCode::invalid_argument, "make_context_current: " + device.id() + " is not a CUDA device");
  d->bind();
  return d->context();
}

namespace {

std::unique_ptr<CudaDevice> make_device(int ordinal) {
  Health probe_health("cuda:" + std::to_string(ordinal));
  Health* h = &probe_health;
  const Driver& drv = driver();
  CUdevice dev = 0;
  KILN_CU(h, cuDeviceGet, &dev, ordinal);
  char name[256] = {};
  KILN_CU(h, cuDeviceGetName, name, int(sizeof(name) - 1), dev);
  std::size_t total = 0;
  KILN_CU(h, cuDeviceTotalMem, &total, dev);
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    KILN_CU(h, cuDeviceGetAttribute, &v, a, dev);
    return v;
  };
  const int major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  const int minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  Dim3 grid;
  grid.x = std::uint32_t(std::max(1, attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X)));
  grid.y = std::uint32_t(std::max(1, attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y)));
  grid.z = std::uint32_t(std::max(1, attr(CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z)));
  const int warp = attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE);

  DeviceInfo info;
  info.backend = Backend::cuda;
  info.index = ordinal;
  info.name = name;
  info.memory_bytes = total;
  info.arch = "sm_" + std::to_string(major * 10 + minor);
  info.driver = "CUDA driver " + std::to_string(drv.version / 1000) + "." +
                std::to_string((drv.version % 1000) / 10);
  info.subgroup_size = std::uint32_t(warp > 0 ? warp : 32);
  info.subgroup_arithmetic = true;
  info.dtypes.assign(kAllDTypes.begin(), kAllDTypes.end());
  info.max_allocation_bytes = total;
  return std::make_unique<CudaDevice>(dev, std::move(info), grid);
}

}  // namespace
}  // namespace kiln::cuda

namespace kiln::detail {

BackendProbe probe_cuda() {
  BackendProbe p;
  std::string reason;
  if (!cuda::load_driver(&reason)) {
    p.unavailable_reason = reason;
    return p;
  }
  int count = 0;
  const CUresult r = cuda::driver().cuDeviceGetCount(&count);
  if (r != CUDA_SUCCESS) {
    p.unavailable_reason = "cuDeviceGetCount failed: " + cuda::result_name(r);
    return p;
  }
  if (count <= 0) {
    p.unavailable_reason = "the NVIDIA driver reports no CUDA devices";
    return p;
  }
  std::string errors;
  for (int i = 0; i < count; ++i) {
    try {
      p.devices.push_back(cuda::make_device(i));
    } catch (const std::exception& e) {
      errors.append(errors.empty() ? "" : "; ").append(e.what());
    }
  }
  if (p.devices.empty()) p.unavailable_reason = "no usable CUDA device: " + errors;
  return p;
}

}  // namespace kiln::detail
