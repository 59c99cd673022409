// Public CUDA interop helpers of the runtime. Usable without cuda.h: native handles are void*.
#pragma once

#include <memory>
#include <string>

namespace kiln {
class Device;
class Stream;
}  // namespace kiln

namespace kiln::cuda {

// True when libcuda.so.1 was loaded, every entry point resolved and cuInit succeeded. Otherwise
// false, and *reason (when given) says why, e.g. "libcuda.so.1 not found (no NVIDIA driver): ...".
bool driver_available(std::string* reason = nullptr);

// The driver's CUDA version (cuDriverGetVersion, e.g. 13000 for 13.0), or 0 when unavailable.
int driver_version();

// The CUstream of a CUDA stream (for cuBLAS & co.); throws invalid_argument for other backends.
void* native_stream(Stream& stream);
// Makes |device|'s primary context current on the calling thread and returns it (a CUcontext).
// Throws invalid_argument for non-CUDA devices, device_lost after a sticky error.
void* make_context_current(Device& device);

// A Kiln Stream over the caller's CUstream / cudaStream_t |stream| (a stream of |device|'s primary
// context, the one the CUDA runtime uses; null means the legacy default stream). Not owned: the
// returned Stream never destroys it, and the caller destroys it only after the Stream. Kiln work
// enqueued on the returned Stream is ordered with the caller's work on |stream|. Throws
// invalid_argument for non-CUDA devices, device_unavailable without a driver.
std::unique_ptr<Stream> wrap_stream(Device& device, void* stream);

// Waits for the work queued on |device|'s legacy default stream (CU_STREAM_LEGACY: where PyTorch and
// CuPy work by default). Throws invalid_argument for non-CUDA devices, device_lost after a sticky error.
void synchronize_legacy_stream(Device& device);

}  // namespace kiln::cuda
