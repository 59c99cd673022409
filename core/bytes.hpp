// Unaligned loads of plain values from byte buffers (file formats: runtime/jit_cache_file.cpp,
// runtime/vulkan/vk_cache_file.cpp).
#pragma once

#include <cstring>

namespace kiln {

template <class T>
T load_unaligned(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace kiln
