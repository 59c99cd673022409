// The registry of a runtime built without the built-in kernel library (KILN_BUILD_KERNELS=OFF).
#include "runtime/registry.hpp"

namespace kiln {
const Registry& builtin_registry() {
  static const Registry registry{};
  return registry;
}
}  // namespace kiln
