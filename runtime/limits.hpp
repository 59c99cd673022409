// Memory limits of a device: a cap on the bytes Kiln holds from the driver, so that out-of-memory
// paths can be exercised on any machine (lavapipe, the CPU) and a process can share a GPU.
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstdint>

namespace kiln {

class Device;

// Caps the memory |device| may hold from its driver at |bytes| (0: no cap). Counted are the
// device-memory blocks of the Vulkan pool (live buffers, the cached empty block, blocks still in
// flight), the live and cached blocks of the CUDA caching allocator, and the live buffers of the
// CPU backend; staging and pinned host memory are not. An allocation that would pass the cap
// releases the pool's cached memory, retries once, and then throws out_of_memory naming the
// request, the cap and what is free under it. Lowering the cap never frees live buffers.
// The environment variable KILN_MEMORY_LIMIT=<bytes> sets the initial cap of every device.
void set_memory_limit(Device& device, std::uint64_t bytes);
std::uint64_t memory_limit(const Device& device);

// Bytes |device| holds from its driver now (the quantity the cap applies to).
std::uint64_t memory_reserved(const Device& device);

}  // namespace kiln
