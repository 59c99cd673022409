// The one error type of Kiln. Every failure a user can cause or observe is a kiln::Error with a
// code and a message that names what was wrong and where (op, shapes, dtypes, device, native call).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace kiln {

enum class ErrorCode {
  invalid_argument,
  shape_mismatch,
  dtype_mismatch,
  unsupported,
  out_of_memory,
  device_unavailable,
  compile_error,
  device_lost,
  parse_error,
  io_error,
  internal,
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] void fail(ErrorCode code, const std::string& message);

}  // namespace kiln

// Checks a native call (CUDA driver, NVRTC, Vulkan) and throws kiln::Error naming the call, the
// source location and the native error. |failed| tells failure from the result, |name| gives the
// native error name; both are small lambdas or functions supplied by the backend.
#define KILN_NATIVE_CHECK(call, failed, name, code)                                              \
  do {                                                                                           \
    auto kiln_native_result_ = (call);                                                           \
    if (failed(kiln_native_result_))                                                             \
      ::kiln::fail((code), std::string(#call) + " failed with " + name(kiln_native_result_) +     \
                               " at " + __FILE__ + ":" + std::to_string(__LINE__));              \
  } while (0)
