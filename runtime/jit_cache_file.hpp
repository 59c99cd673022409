// Internal: the on-disk format of a kernel compiled just in time (runtime/jit.cpp), one file per
// kernel under cache_dir("jit"). The key is the XXH64 of everything the blobs depend on (target,
// device arch, compiler and Kiln versions, the emitted sources), so an entry is never used for
// another kernel, device or compiler; a truncated, corrupt or foreign file is recognised, reported
// and rebuilt, never loaded. Pure C++: the fuzz target links it alone.
//
//   0  "KILNJIT1"          8 bytes
//   8  format version      u32 (kJitEntryFormat)
//   12 blob count          u32 (at most kJitEntryMaxBlobs)
//   16 key                 u64
//   24 XXH64(body, key)    u64 (the body: the sizes and the blobs)
//   32 blob sizes          u64 each
//   .. blobs               back to back
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kiln {

inline constexpr std::uint32_t kJitEntryFormat = 1;
inline constexpr std::uint32_t kJitEntryMaxBlobs = 16;

using JitBlobs = std::vector<std::vector<unsigned char>>;

std::vector<char> pack_jit_entry(std::uint64_t key, const JitBlobs& blobs);

// The blobs of |file|, or nullopt with *why saying what is wrong (too short, bad magic, another
// format, another key, sizes past the end, checksum mismatch). Never reads outside |file|.
std::optional<JitBlobs> unpack_jit_entry(std::span<const char> file, std::uint64_t key, std::string* why);

}  // namespace kiln
