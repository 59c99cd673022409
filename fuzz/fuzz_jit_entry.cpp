// libFuzzer entry point of the jit_entry target (body in fuzz/targets.hpp).
#include "fuzz/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::jit_entry_target(data, size);
  return 0;
}
