// Per-device reliability state: memory caps, injected faults, the lost latch (runtime/limits.hpp,
// runtime/faults.hpp, runtime/device_state.hpp).
#include "runtime/device_state.hpp"

#include <cstdlib>
#include <map>
#include <memory>

#include "runtime/cuda/cuda_device.hpp"
#include "runtime/device.hpp"
#include "core/error.hpp"
#include "runtime/faults.hpp"
#include "runtime/limits.hpp"

namespace kiln::detail {

namespace {

std::uint64_t env_limit() {
  const char* v = std::getenv("KILN_MEMORY_LIMIT");
  if (!v || !*v) return 0;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return end && *end == '\0' ? n : 0;
}

}  // namespace

DeviceState::DeviceState(std::string label) : label_(std::move(label)), limit_(env_limit()) {}

bool DeviceState::try_reserve(std::uint64_t bytes) {
  std::uint64_t held = reserved_.load();
  for (;;) {
    const std::uint64_t cap = limit_.load();
    if (cap && (bytes > cap || held > cap - bytes)) return false;
    if (reserved_.compare_exchange_weak(held, held + bytes)) return true;
  }
}

void DeviceState::unreserve(std::uint64_t bytes) { reserved_.fetch_sub(bytes); }

std::string DeviceState::cap_text() const {
  const std::uint64_t cap = limit_.load(), held = reserved_.load();
  if (!cap) return {};
  return " (memory cap " + std::to_string(cap) + " bytes, " + std::to_string(held) + " held, " +
         std::to_string(held < cap ? cap - held : 0) + " free under it)";
}

void DeviceState::mark_lost(const std::string& why, bool injected) {
  std::lock_guard lock(mu_);
  if (lost_.load()) return;
  why_ = why;
  injected_ = injected;
  lost_.store(true, std::memory_order_release);
}

void DeviceState::clear_injected() {
  std::lock_guard lock(mu_);
  lost_fault_.store(false);
  oom_fault_.store(false);
  if (lost_.load() && injected_) {
    lost_.store(false, std::memory_order_release);
    why_.clear();
    injected_ = false;
  }
}

void DeviceState::check(const char* what) const {
  if (!lost()) return;
  std::string why;
  {
    std::lock_guard lock(mu_);
    why = why_;
  }
  fail(ErrorCode::device_lost, label_ + ": " + what + ": the device is lost (" + why +
                                   "); recreate the process to use it again");
}

namespace {
// Never freed: devices may be destroyed during static teardown.
std::mutex& states_mutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<const Device*, std::unique_ptr<DeviceState>>& states() {
  static auto* s = new std::map<const Device*, std::unique_ptr<DeviceState>>;
  return *s;
}
}  // namespace

DeviceState& device_state(const Device& device) {
  std::lock_guard lock(states_mutex());
  auto& s = states()[&device];
  if (!s) s = std::make_unique<DeviceState>(device.id());
  return *s;
}

void forget_device_state(const Device& device) {
  std::lock_guard lock(states_mutex());
  states().erase(&device);
}

}  // namespace kiln::detail

namespace kiln {

void set_memory_limit(Device& device, std::uint64_t bytes) { detail::device_state(device).set_limit(bytes); }
std::uint64_t memory_limit(const Device& device) { return detail::device_state(device).limit(); }
std::uint64_t memory_reserved(const Device& device) { return detail::device_state(device).reserved(); }

void inject_fault(Device& device, Fault fault) {
  detail::DeviceState& s = detail::device_state(device);
  auto* cuda = dynamic_cast<cuda::CudaDevice*>(&device);
  switch (fault) {
    case Fault::none:
      s.clear_injected();
      s.clear_submit_faults();
      if (cuda) cuda->health()->clear_injected();
      break;
    case Fault::out_of_memory: s.arm_oom_fault(); break;
    case Fault::submit_out_of_memory: s.arm_submit_fault(); break;
    case Fault::device_lost:
      if (cuda) {
        // The sticky-error path: from now on every call on the device throws device_lost.
        cuda->health()->mark_lost("injected fault (kiln::inject_fault)", /*injected=*/true);
        s.mark_lost("injected fault (kiln::inject_fault)", /*injected=*/true);
      } else {
        s.arm_lost_fault();  // consumed by the next submit/wait (Vulkan) or stream call (CPU)
      }
      break;
  }
}

bool device_is_lost(const Device& device) {
  if (auto* cuda = dynamic_cast<const cuda::CudaDevice*>(&device))
    if (const_cast<cuda::CudaDevice*>(cuda)->health()->lost()) return true;
  return detail::device_state(device).lost();
}

}  // namespace kiln
