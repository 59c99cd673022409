#include "runtime/jit_cache_file.hpp"

#include <cstring>

#include <xxhash.h>

#include "core/bytes.hpp"

namespace kiln {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'J', 'I', 'T', '1'};
constexpr std::size_t kHeaderBytes = 32;

template <class T>
void put(std::vector<char>& out, std::size_t at, const T& v) {
  std::memcpy(out.data() + at, &v, sizeof v);
}

template <class T>
T get(const char* p) {
  return load_unaligned<T>(p);
}

}  // namespace

std::vector<char> pack_jit_entry(std::uint64_t key, const JitBlobs& blobs) {
  std::size_t total = kHeaderBytes + 8 * blobs.size();
  for (const auto& b : blobs) total += b.size();
  std::vector<char> out(total);
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  put(out, 8, kJitEntryFormat);
  put(out, 12, std::uint32_t(blobs.size()));
  put(out, 16, key);
  std::size_t at = kHeaderBytes;
  for (const auto& b : blobs) {
    put(out, at, std::uint64_t(b.size()));
    at += 8;
  }
  for (const auto& b : blobs) {
    if (!b.empty()) std::memcpy(out.data() + at, b.data(), b.size());
    at += b.size();
  }
  put(out, 24, std::uint64_t(XXH64(out.data() + kHeaderBytes, total - kHeaderBytes, key)));
  return out;
}

std::optional<JitBlobs> unpack_jit_entry(std::span<const char> file, std::uint64_t key, std::string* why) {
  auto bad = [&](const char* what) -> std::optional<JitBlobs> {
    if (why) *why = what;
    return std::nullopt;
  };
  if (file.size() < kHeaderBytes) return bad("shorter than its header (truncated)");
  if (std::memcmp(file.data(), kMagic, sizeof kMagic) != 0) return bad("not a Kiln JIT cache entry (bad magic)");
  if (get<std::uint32_t>(file.data() + 8) != kJitEntryFormat) return bad("written in another format version");
  const std::uint32_t count = get<std::uint32_t>(file.data() + 12);
  if (count > kJitEntryMaxBlobs) return bad("claims too many blobs");
  if (get<std::uint64_t>(file.data() + 16) != key) return bad("written for another kernel, device or compiler (key)");
  const std::size_t sizes_end = kHeaderBytes + 8 * std::size_t(count);
  if (file.size() < sizes_end) return bad("truncated in its blob sizes");
  std::uint64_t body = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t n = get<std::uint64_t>(file.data() + kHeaderBytes + 8 * i);
    if (n > file.size() || body + n > file.size()) return bad("blob sizes past the end of the file (truncated)");
    body += n;
  }
  if (sizes_end + body != file.size()) return bad("its size does not match its blob sizes (truncated or extended)");
  if (get<std::uint64_t>(file.data() + 24) != XXH64(file.data() + kHeaderBytes, file.size() - kHeaderBytes, key))
    return bad("checksum mismatch (corrupt)");
  JitBlobs blobs(count);
  std::size_t at = sizes_end;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t n = get<std::uint64_t>(file.data() + kHeaderBytes + 8 * i);
    blobs[i].assign(reinterpret_cast<const unsigned char*>(file.data() + at),
                    reinterpret_cast<const unsigned char*>(file.data() + at + n));
    at += n;
  }
  return blobs;
}

}  // namespace kiln
