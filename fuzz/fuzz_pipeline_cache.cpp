// libFuzzer entry point of the pipeline_cache target (body in fuzz/targets.hpp).
#include "fuzz/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  kiln::fuzz::pipeline_cache_target(data, size);
  return 0;
}
