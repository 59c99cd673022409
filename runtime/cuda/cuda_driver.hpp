// The CUDA driver API, loaded at run time from libcuda.so.1 (never linked), and the one macro
// that checks every driver call.
#pragma once

#include <cuda.h>

#include <atomic>
#include <mutex>
#include <string>

namespace kiln::cuda {

// Function pointers of every entry point in cuda_symbols.hpp. Member names follow cuda.h's
// versioning macros (cuMemAlloc is the member cuMemAlloc_v2), so `drv.cuMemAlloc(...)` works.
struct Driver {
#define KILN_CU_SYMBOL(name) decltype(&::name) name = nullptr;
#include "runtime/cuda/cuda_symbols.hpp"
#undef KILN_CU_SYMBOL
  int version = 0;  // cuDriverGetVersion
};

// Loads and initializes the driver once per process (thread-safe; the result, success or failure,
// is kept for the life of the process and never unloaded). Returns nullptr and sets *reason when
// the driver is unusable.
const Driver* load_driver(std::string* reason);
// The loaded driver; only valid after load_driver() succeeded.
const Driver& driver();

// "CUDA_ERROR_OUT_OF_MEMORY" (or "CUresult 2" when the name is unknown).
std::string result_name(CUresult r);
// Errors after which the context is unusable (sticky errors): the device is then lost.
bool is_sticky(CUresult r);

// Per-device health: once a sticky error was seen, every later call on the device throws
// device_lost.
class Health {
 public:
  explicit Health(std::string device_id) : id_(std::move(device_id)) {}
  const std::string& id() const { return id_; }
  bool lost() const { return lost_.load(std::memory_order_acquire); }
  // |injected|: a test fault (kiln::inject_fault), which clear_injected() can undo.
  void mark_lost(const std::string& why, bool injected = false);
  void clear_injected();
  // Lost by an injected fault only: the real context still works.
  bool injected() const {
    std::lock_guard lock(mu_);
    return lost() && injected_;
  }
  // Throws device_lost when the device was lost.
  void check() const;

 private:
  std::string id_;
  std::atomic<bool> lost_{false};
  mutable std::mutex mu_;
  std::string why_;
  bool injected_ = false;
};

// Throws kiln::Error for a failed driver call: out_of_memory, device_lost (and marks |health|
// lost) for sticky errors, compile_error for image/PTX errors, invalid_argument for invalid
// values, unsupported, else internal. The message names the device, call, file, line and error.
[[noreturn]] void raise(CUresult r, const char* call, const char* file, int line, Health* health);

}  // namespace kiln::cuda

// Calls driver entry point |fn| with the given arguments and throws on failure.
//   KILN_CU(health, cuMemAlloc, &ptr, bytes);   // health: Health* or nullptr
#define KILN_CU(health, fn, ...)                                                                 \
  do {                                                                                           \
    const CUresult kiln_cu_result_ = ::kiln::cuda::driver().fn(__VA_ARGS__);                     \
    if (kiln_cu_result_ != CUDA_SUCCESS)                                                         \
      ::kiln::cuda::raise(kiln_cu_result_, #fn "(" #__VA_ARGS__ ")", __FILE__, __LINE__,         \
                          (health));                                                             \
  } while (0)
