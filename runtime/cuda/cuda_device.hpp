// The CUDA device: one per CUDA device ordinal, using the device's primary context, which is made
// current on the calling thread at every entry.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/cuda/cuda_allocator.hpp"
#include "runtime/cuda/cuda_driver.hpp"
#include "runtime/device.hpp"

namespace kiln::cuda {

class CudaStream;
class CudaDevice;

class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(CudaDevice* device, CachingAllocator* allocator, std::size_t size, CUdeviceptr ptr,
             std::size_t size_class);
  ~CudaBuffer() override;
  CUdeviceptr ptr() const { return device_address(); }

 private:
  CachingAllocator* allocator_;
  std::size_t size_class_;
};

class CudaKernel final : public Kernel {
 public:
  CudaKernel(std::string name, int block_size, CudaDevice* device, CUfunction function, unsigned shared_bytes = 0)
      : Kernel(std::move(name), block_size), device_(device), function_(function), shared_bytes_(shared_bytes) {}
  CudaDevice* device() const { return device_; }
  CUfunction function() const { return function_; }
  // The dynamic shared memory each block gets (the module's <symbol>_shared_bytes, else 0).
  unsigned shared_bytes() const { return shared_bytes_; }

 private:
  CudaDevice* device_;
  CUfunction function_;
  unsigned shared_bytes_;
};

class CudaDevice final : public Device {
 public:
  CudaDevice(CUdevice device, DeviceInfo info, Dim3 max_grid);
  ~CudaDevice() override;

  const DeviceInfo& info() const override { return info_; }
  std::shared_ptr<Buffer> allocate(std::size_t bytes) override;
  Stream& default_stream() override;
  std::unique_ptr<Stream> create_stream() override;
  const Kernel& kernel(const Registry& registry, const KernelEntry& entry, int function) override;
  // cuBLASLt (runtime/cuda/cublaslt.cpp): f16, bf16, f32 (no TF32), f64 with unit stride along one
  // axis of each operand and at most one batch stride each; KILN_CUBLASLT=0 turns it off.
  bool library_gemm(Stream& stream, const LibraryGemm& g, std::string* why) override;
  void encode_tensor_map(const TensorMapRequest& r, void* out) override;

  // Throws device_lost after a sticky error; retains the primary context on first use and makes it
  // current on the calling thread.
  void bind();
  // Like bind() but never throws; false when the device is lost or the context unusable.
  bool try_bind() noexcept;
  // Makes the context current even while the device counts as lost by an injected fault (the real
  // context works: memory freed then is given back); false otherwise.
  bool bind_injected_loss() noexcept;
  CUcontext context();
  Health* health() { return &health_; }
  const Dim3& max_grid() const { return max_grid_; }
  CachingAllocator& allocator() { return allocator_; }

  // Streams register themselves so that freed blocks can be fenced on every live stream.
  void register_stream(CUstream s);
  void unregister_stream(CUstream s);
  // Records one event from |take| on every live stream; returns them. Requires a bound context.
  // *default_only (when given) says whether the default stream was the only live stream.
  template <class TakeEvent>
  std::vector<CUevent> fence_streams(TakeEvent take, bool* default_only = nullptr);
  // The default stream is the only live stream: work there runs in order, so memory freed under
  // its work may be handed to the next buffer at once (the next use is queued after it; a stream
  // created later first waits for the default stream: create_stream, cuda::wrap_stream).
  bool only_default_stream();
  // Waits for the default stream's work when it exists (before a second stream may run).
  void settle_default_stream();

 private:
  CUdevice cu_device_;
  DeviceInfo info_;
  Dim3 max_grid_;
  Health health_;

  std::once_flag context_once_;
  CUcontext context_ = nullptr;

  std::mutex streams_mu_;
  std::vector<CUstream> streams_;

  CachingAllocator allocator_;

  std::once_flag default_stream_once_;
  std::unique_ptr<CudaStream> default_stream_;
  CUstream default_cu_ = nullptr;  // default_stream_'s CUstream, under streams_mu_

  std::mutex kernels_mu_;
  std::map<std::pair<const unsigned char*, std::size_t>, CUmodule> modules_;
  std::map<std::tuple<const unsigned char*, std::string, int>, std::unique_ptr<CudaKernel>> kernels_;
};

template <class TakeEvent>
std::vector<CUevent> CudaDevice::fence_streams(TakeEvent take, bool* default_only) {
  std::vector<CUevent> fences;
  std::lock_guard lock(streams_mu_);
  if (default_only) *default_only = streams_.size() == 1 && default_cu_ && streams_[0] == default_cu_;
  fences.reserve(streams_.size());
  for (CUstream s : streams_) {
    CUevent e = take();
    fences.push_back(e);
    KILN_CU(&health_, cuEventRecord, e, s);
  }
  return fences;
}

}  // namespace kiln::cuda
