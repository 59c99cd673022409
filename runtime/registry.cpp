#include "runtime/registry.hpp"

#include <algorithm>
#include <cstring>

namespace kiln {

const KernelEntry* Registry::find(std::string_view name) const {
  auto it = std::lower_bound(kernels.begin(), kernels.end(), name,
                             [](const KernelEntry& e, std::string_view n) { return std::string_view(e.name) < n; });
  if (it == kernels.end() || std::string_view(it->name) != name) return nullptr;
  return &*it;
}

}  // namespace kiln
