// The typed C++ header of a manifest (kilnc build --header): one inline launch function per
// manifest kernel, named after its aliases (`name = ...`), or after its spec name when it has none.
// Each name gets two overloads, a tensor one and a raw-buffer one, both forwarding to
// kiln::AotKernel (runtime/aot_kernel.hpp) over the registry that kilnc pack writes.
#pragma once

#include <string>

#include "codegen/manifest.hpp"

namespace kiln {

struct ApiHeaderOptions {
  std::string ns;        // C++ namespace of the functions, e.g. "app" or "app::kernels"
  std::string registry;  // the registry function, e.g. "app::registry" (declared by the header)
  std::string manifest;  // the manifest's file name, for the header's comment
};

// Throws kiln::Error(invalid_argument) when a function name is not a usable C++ identifier or
// names two kernels, and internal when a kernel's readable expression does not rebuild its spec.
std::string emit_api_header(const Manifest& manifest, const ApiHeaderOptions& options);

}  // namespace kiln
