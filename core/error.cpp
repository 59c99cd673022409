#include "core/error.hpp"

namespace kiln {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid argument";
    case ErrorCode::shape_mismatch: return "shape mismatch";
    case ErrorCode::dtype_mismatch: return "dtype mismatch";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::out_of_memory: return "out of memory";
    case ErrorCode::device_unavailable: return "device unavailable";
    case ErrorCode::compile_error: return "compile error";
    case ErrorCode::device_lost: return "device lost";
    case ErrorCode::parse_error: return "parse error";
    case ErrorCode::io_error: return "I/O error";
    case ErrorCode::internal: return "internal error";
  }
  return "error";
}

void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace kiln
