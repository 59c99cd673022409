// Internal: per-device reliability state shared by the backends: the memory cap and the bytes held
// under it, injected faults, and the lost latch. One per Device, created on first use, never
// destroyed (devices live for the process). Thread-safe (atomics; a mutex for the lost reason).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace kiln {
class Device;
}

namespace kiln::detail {

class DeviceState {
 public:
  // |label| names the device in errors ("vulkan:0", "cpu").
  explicit DeviceState(std::string label);

  // Memory under the cap. try_reserve adds |bytes| to the held count when that stays within the
  // cap (or there is none); else it changes nothing and returns false. unreserve gives bytes back.
  bool try_reserve(std::uint64_t bytes);
  void unreserve(std::uint64_t bytes);
  std::uint64_t reserved() const { return reserved_.load(); }
  std::uint64_t limit() const { return limit_.load(); }
  void set_limit(std::uint64_t bytes) { limit_.store(bytes); }
  // " (memory cap N bytes, M held, K free under it)" or "" without a cap; for OOM messages.
  std::string cap_text() const;
  // Consumes an armed out-of-memory fault (true once per injection); allocate() calls it first.
  bool take_oom_fault() { return oom_fault_.exchange(false); }
  void arm_oom_fault() { oom_fault_.store(true); }
  // Injected submission failures (Vulkan): each arm fails one more submission; take consumes one.
  void arm_submit_fault() { submit_faults_.fetch_add(1); }
  bool take_submit_fault() {
    int n = submit_faults_.load();
    while (n > 0 && !submit_faults_.compare_exchange_weak(n, n - 1)) {
    }
    return n > 0;
  }
  void clear_submit_faults() { submit_faults_.store(0); }

  // Device loss. take_lost_fault consumes an armed device_lost fault: the backend then acts as if
  // the driver had reported the loss and calls mark_lost.
  void arm_lost_fault() { lost_fault_.store(true); }
  bool take_lost_fault() { return lost_fault_.exchange(false); }
  void mark_lost(const std::string& why, bool injected = false);
  // Clears a loss that was injected (tests); a real loss stays.
  void clear_injected();
  bool lost() const { return lost_.load(std::memory_order_acquire); }
  // Throws device_lost naming the device, |what| was attempted and why it was lost.
  void check(const char* what) const;

 private:
  std::string label_;
  std::atomic<std::uint64_t> limit_{0};
  std::atomic<std::uint64_t> reserved_{0};
  std::atomic<bool> oom_fault_{false};
  std::atomic<bool> lost_fault_{false};
  std::atomic<int> submit_faults_{0};
  std::atomic<bool> lost_{false};
  mutable std::mutex mu_;
  std::string why_;
  bool injected_ = false;
};

// The state of |device|; the reference stays valid until the device is destroyed.
DeviceState& device_state(const Device& device);
// Drops |device|'s state (Device's destructor).
void forget_device_state(const Device& device);

}  // namespace kiln::detail
