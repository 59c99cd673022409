#include "runtime/cuda/cuda_driver.hpp"

#include <dlfcn.h>

#include "runtime/cuda/cuda_interop.hpp"
#include "core/error.hpp"

namespace kiln::cuda {
namespace {

// Symbols are requested with the ABI of CUDA 12.0: cuGetProcAddress returns, for each name, the
// latest version of the entry point that existed in 12.0 (cuMemAlloc -> cuMemAlloc_v2, ...).
constexpr int kRequestedCudaVersion = 12000;

using GetProcAddressV2 = CUresult (*)(const char*, void**, int, cuuint64_t,
                                      CUdriverProcAddressQueryResult*);
using GetProcAddressV1 = CUresult (*)(const char*, void**, int, cuuint64_t);
using DriverGetVersionFn = CUresult (*)(int*);

struct LoadResult {
  Driver driver;
  bool ok = false;
  std::string reason;
};

std::string version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

void load(LoadResult& out) {
  ::dlerror();
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = ::dlerror();
    out.reason = std::string("libcuda.so.1 not found (no NVIDIA driver): ") + (e ? e : "dlopen failed");
    return;
  }
  // The handle is never closed: function pointers stay valid for the life of the process.

  auto get_version = reinterpret_cast<DriverGetVersionFn>(::dlsym(lib, "cuDriverGetVersion"));
  if (!get_version) {
    out.reason = "libcuda.so.1 does not export cuDriverGetVersion";
    return;
  }
  int version = 0;
  if (get_version(&version) != CUDA_SUCCESS || version <= 0) {
    out.reason = "cuDriverGetVersion failed";
    return;
  }
  if (version < kRequestedCudaVersion) {
    out.reason = "the NVIDIA driver supports CUDA " + version_text(version) +
                 ", Kiln needs a driver for CUDA 12.0 or later";
    return;
  }
  out.driver.version = version;

  auto get_v2 = reinterpret_cast<GetProcAddressV2>(::dlsym(lib, "cuGetProcAddress_v2"));
  auto get_v1 = get_v2 ? nullptr : reinterpret_cast<GetProcAddressV1>(::dlsym(lib, "cuGetProcAddress"));
  if (!get_v2 && !get_v1) {
    out.reason = "libcuda.so.1 exports neither cuGetProcAddress_v2 nor cuGetProcAddress";
    return;
  }
  auto resolve = [&](const char* name, void** fn) -> bool {
    *fn = nullptr;
    CUresult r;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
    if (get_v2)
      r = get_v2(name, fn, kRequestedCudaVersion, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &status);
    else
      r = get_v1(name, fn, kRequestedCudaVersion, CU_GET_PROC_ADDRESS_LEGACY_STREAM);
    if (r != CUDA_SUCCESS || status != CU_GET_PROC_ADDRESS_SUCCESS || !*fn) {
      out.reason = std::string("libcuda.so.1: cuGetProcAddress(\"") + name +
                   "\") failed (CUresult " + std::to_string(int(r)) + ", query status " +
                   std::to_string(int(status)) + ")";
      *fn = nullptr;
      return false;
    }
    return true;
  };
#define KILN_CU_SYMBOL(name) \
  if (!resolve(#name, reinterpret_cast<void**>(&out.driver.name))) return;
#include "runtime/cuda/cuda_symbols.hpp"
#undef KILN_CU_SYMBOL

  const CUresult r = out.driver.cuInit(0);
  if (r != CUDA_SUCCESS) {
    const char* name = nullptr;
    if (out.driver.cuGetErrorName(r, &name) != CUDA_SUCCESS || !name) name = "unknown CUresult";
    out.reason = std::string("cuInit failed: ") + name;
    return;
  }
  out.ok = true;
}

const LoadResult& load_result() {
  // Never destroyed: no driver state is touched by static destructors at exit.
  static const LoadResult* result = [] {
    auto* r = new LoadResult;
    try {
      load(*r);
    } catch (const std::exception& e) {
      r->ok = false;
      r->reason = std::string("loading the CUDA driver failed: ") + e.what();
    }
    return r;
  }();
  return *result;
}

ErrorCode code_for(CUresult r) {
  if (is_sticky(r)) return ErrorCode::device_lost;
  switch (r) {
    case CUDA_ERROR_OUT_OF_MEMORY: return ErrorCode::out_of_memory;
    case CUDA_ERROR_NO_BINARY_FOR_GPU:
    case CUDA_ERROR_INVALID_IMAGE:
    case CUDA_ERROR_INVALID_PTX:
    case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
    case CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
    case CUDA_ERROR_JIT_COMPILATION_DISABLED:
    case CUDA_ERROR_INVALID_SOURCE:
    case CUDA_ERROR_SHARED_OBJECT_INIT_FAILED:
    case CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND:
    case CUDA_ERROR_NOT_FOUND: return ErrorCode::compile_error;
    case CUDA_ERROR_INVALID_VALUE:
    case CUDA_ERROR_INVALID_HANDLE:
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return ErrorCode::invalid_argument;
    case CUDA_ERROR_NOT_SUPPORTED: return ErrorCode::unsupported;
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_INVALID_DEVICE:
    case CUDA_ERROR_DEVICE_UNAVAILABLE:
    case CUDA_ERROR_DEINITIALIZED:
    case CUDA_ERROR_NOT_INITIALIZED: return ErrorCode::device_unavailable;
    default: return ErrorCode::internal;
  }
}

}  // namespace

const Driver* load_driver(std::string* reason) {
  const LoadResult& r = load_result();
  if (!r.ok) {
    if (reason) *reason = r.reason;
    return nullptr;
  }
  return &r.driver;
}

const Driver& driver() {
  const LoadResult& r = load_result();
  if (!r.ok) fail(ErrorCode::device_unavailable, "CUDA is not available: " + r.reason);
  return r.driver;
}

std::string result_name(CUresult r) {
  const LoadResult& lr = load_result();
  const char* name = nullptr;
  if (lr.driver.cuGetErrorName && lr.driver.cuGetErrorName(r, &name) == CUDA_SUCCESS && name)
    return name;
  return "CUresult " + std::to_string(int(r));
}

bool is_sticky(CUresult r) {
  switch (r) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_NVLINK_UNCORRECTABLE:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_CONTAINED:
    case CUDA_ERROR_TENSOR_MEMORY_LEAK:
    case CUDA_ERROR_CONTEXT_IS_DESTROYED:
    case CUDA_ERROR_EXTERNAL_DEVICE: return true;
    default: return false;
  }
}

void Health::mark_lost(const std::string& why, bool injected) {
  std::lock_guard lock(mu_);
  if (!lost_.load(std::memory_order_relaxed)) {
    why_ = why;
    injected_ = injected;
    lost_.store(true, std::memory_order_release);
  }
}

void Health::clear_injected() {
  std::lock_guard lock(mu_);
  if (lost_.load(std::memory_order_relaxed) && injected_) {
    why_.clear();
    injected_ = false;
    lost_.store(false, std::memory_order_release);
  }
}

void Health::check() const {
  if (!lost()) return;
  std::string why;
  {
    std::lock_guard lock(mu_);
    why = why_;
  }
  fail(ErrorCode::device_lost, id_ + " is lost after an earlier unrecoverable error (" + why +
                                   "); recreate the process to use it again");
}

void raise(CUresult r, const char* call, const char* file, int line, Health* health) {
  std::string what = result_name(r);
  const LoadResult& lr = load_result();
  const char* text = nullptr;
  if (lr.driver.cuGetErrorString && lr.driver.cuGetErrorString(r, &text) == CUDA_SUCCESS && text)
    what += std::string(" (") + text + ")";
  std::string message = (health ? health->id() + ": " : std::string("cuda: ")) + call +
                        " failed with " + what + " at " + file + ":" + std::to_string(line);
  if (is_sticky(r) && health) health->mark_lost(message);
  fail(code_for(r), message);
}

bool driver_available(std::string* reason) { return load_driver(reason) != nullptr; }

int driver_version() {
  const Driver* d = load_driver(nullptr);
  return d ? d->version : 0;
}

}  // namespace kiln::cuda
