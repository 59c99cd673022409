// Fault injection, for tests of the failure paths: compiled into every build, inert unless called.
// Thread-safety: every function may be called from any thread.
#pragma once

namespace kiln {

class Device;

enum class Fault {
  none,           // clears an injected device loss (a real one is permanent)
  device_lost,    // the device behaves as if the driver reported it lost (see below)
  out_of_memory,  // the next allocation on the device fails as if the driver were out of memory
  submit_out_of_memory,  // Vulkan: the next queue submission fails with VK_ERROR_OUT_OF_DEVICE_MEMORY
};

// Injects |fault| into |device|.
//   device_lost: Vulkan: the next queue submission or wait fails as if it returned
//     VK_ERROR_DEVICE_LOST; CUDA: the device is marked lost through the sticky-error path; CPU:
//     the next stream operation fails. From then on every call that needs the device (streams,
//     allocation, kernel loading, events) throws kiln::Error(device_lost); destructors never throw.
//     Work submitted before the fault still completes on the real hardware.
//   out_of_memory: the next allocation throws out_of_memory (after the pool's release-and-retry).
//   submit_out_of_memory: Vulkan: the next vkQueueSubmit of a stream's batch fails with
//     VK_ERROR_OUT_OF_DEVICE_MEMORY; each injection fails one more submission (the stream retries
//     once after its submitted work finishes: inject twice to fail a batch for good). No effect on
//     CUDA and the CPU, which hand each call to the driver as it is made. Fault::none clears it.
void inject_fault(Device& device, Fault fault);

// True once |device| was lost (really or by injection).
bool device_is_lost(const Device& device);

}  // namespace kiln
