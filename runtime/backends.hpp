// Internal: how each backend folder plugs into device enumeration. Adding a backend is one folder
// plus one line in device.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/device.hpp"

namespace kiln::detail {

struct BackendProbe {
  std::vector<std::unique_ptr<Device>> devices;
  std::string unavailable_reason;  // set when |devices| is empty
};

BackendProbe probe_cpu();
BackendProbe probe_vulkan();  // runtime/vulkan
BackendProbe probe_cuda();    // runtime/cuda

}  // namespace kiln::detail
