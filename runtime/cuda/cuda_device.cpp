#include "runtime/cuda/cuda_device.hpp"

#include <algorithm>

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
  auto k = std::make_unique<CudaKernel>(kname + ":" + symbol, entry.block_size, this, fn);
  const Kernel& ref = *k;
  kernels_.emplace(std::move(key), std::move(k));
  return ref;
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
