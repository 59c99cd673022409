// CUDA interop (runtime/cuda/cuda_interop.hpp): Kiln streams over a caller's CUstream.
#include "runtime/cuda/cuda_interop.hpp"

#include "runtime/cuda/cuda_device.hpp"
#include "runtime/cuda/cuda_stream.hpp"
#include "core/error.hpp"

namespace kiln::cuda {

std::unique_ptr<Stream> wrap_stream(Device& device, void* stream) {
  auto* d = dynamic_cast<CudaDevice*>(&device);
  if (!d) kiln::fail(kiln::ErrorCode::invalid_argument, "cuda::wrap_stream: " + device.id() + " is not a CUDA device");
  auto wrapped = std::make_unique<CudaStream>(*d, static_cast<CUstream>(stream));
  d->settle_default_stream();  // as CudaDevice::create_stream
  return wrapped;
}

void synchronize_legacy_stream(Device& device) {
  auto* d = dynamic_cast<CudaDevice*>(&device);
  if (!d)
    kiln::fail(kiln::ErrorCode::invalid_argument,
               "cuda::synchronize_legacy_stream: " + device.id() + " is not a CUDA device");
  d->bind();
  KILN_CU(d->health(), cuStreamSynchronize, CU_STREAM_LEGACY);
}

}  // namespace kiln::cuda
