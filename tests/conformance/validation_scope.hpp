// Every family's conformance suite on Vulkan runs with the validation layer on
// (KILN_VK_VALIDATION=1): a ValidationScope in a test fails it on any message reported while it ran.
#pragma once

#include <gtest/gtest.h>

#include "runtime/device.hpp"
#include "runtime/vulkan/vk_validation.hpp"

namespace kiln::conformance {

// Fails the running test on any validation message reported while it ran, also when the test body
// throws (a pipeline the driver refuses): the messages are charged to the case that caused them,
// not left over for the next one.
class ValidationScope {
 public:
  explicit ValidationScope(const Device& dev) : on_(dev.backend() == Backend::vulkan && vk::validation_enabled()) {
    if (on_) vk::take_validation_messages();
  }
  ~ValidationScope() {
    if (!on_) return;
    const auto messages = vk::take_validation_messages();
    if (!messages.empty())
      ADD_FAILURE() << "validation (" << messages.size() << " message(s)): " << messages.front();
  }
  ValidationScope(const ValidationScope&) = delete;
  ValidationScope& operator=(const ValidationScope&) = delete;

 private:
  bool on_;
};

}  // namespace kiln::conformance
