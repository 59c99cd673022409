// The fuzz targets' bodies, shared by the libFuzzer binaries (fuzz/fuzz_*.cpp) and by the unit test
// that replays the corpus (tests/test_reliability.cpp). Each must return normally for any input:
// a crash, a hang, a sanitizer report, an exception other than kiln::Error, or a broken invariant
// (checked with KILN_FUZZ_CHECK, which aborts) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/expr.hpp"
#include "codegen/manifest.hpp"
#include "core/error.hpp"
#include "runtime/jit_cache_file.hpp"
#include "runtime/vulkan/vk_cache_file.hpp"

#define KILN_FUZZ_CHECK(cond)                                                       \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace kiln::fuzz {

// The expression parser. The first byte picks the input dtypes (x, y: two of the 13); the rest is
// the text. A parsed expression must print (to_string) as text that parses again, to an
// expression of the same dtype (unless the printed form nests past the parser's depth limit).
// With KILN_FUZZ_STRICT=1 the reparsed expression must also be the same canonical expression;
// that fails today for f64 constants, which to_string prints as f64(<literal>) and the parser
// reads as an f32 literal converted to f64 (reported; see docs/reliability.md).
inline void expr_target(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const DType x = kAllDTypes[data[0] % kAllDTypes.size()];
  const DType y = kAllDTypes[(data[0] / kAllDTypes.size()) % kAllDTypes.size()];
  const std::vector<DType> inputs = {x, y, DType::f32, DType::s32};
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  Expr e;
  try {
    e = parse_expr(text, inputs);
  } catch (const Error& err) {
    KILN_FUZZ_CHECK(err.code() == ErrorCode::parse_error);
    return;
  }
  const std::string printed = e.to_string();
  Expr again;
  try {
    again = parse_expr(printed, inputs);
  } catch (const Error& err) {
    if (std::string_view(err.what()).find("nests deeper") != std::string_view::npos) return;
    std::fprintf(stderr, "to_string() text does not parse: %s\n  text: %s\n", err.what(), printed.c_str());
    std::abort();
  }
  KILN_FUZZ_CHECK(again.dtype(again.root()) == e.dtype(e.root()));
  static const bool strict = std::getenv("KILN_FUZZ_STRICT") != nullptr;
  if (strict) KILN_FUZZ_CHECK(again.to_string() == printed);
}

// The manifest reader (TOML + [[ops]] expansion + [[kernel]] expressions).
inline void manifest_target(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    Manifest m = parse_manifest(text, "fuzz.toml");
    for (const auto& k : m.kernels) KILN_FUZZ_CHECK(k.name == k.spec.name());
  } catch (const Error& err) {
    KILN_FUZZ_CHECK(std::string_view(err.what()).substr(0, 9) == "fuzz.toml");
  }
}

// The pipeline-cache file loader: any bytes are rejected or accepted without reading outside
// them; an accepted payload lies inside the file; wrapping and unwrapping round-trips.
inline void pipeline_cache_target(const std::uint8_t* data, std::size_t size) {
  vk::PipelineCacheIdentity id;
  id.vendor_id = 0x10005;  // Mesa's vendor id (lavapipe)
  id.device_id = 0;
  for (int i = 0; i < 16; ++i) id.uuid[i] = std::uint8_t(i * 17);
  const std::span<const char> file(reinterpret_cast<const char*>(data), size);
  std::string why;
  if (auto payload = vk::unwrap_pipeline_cache(file, id, &why)) {
    KILN_FUZZ_CHECK(payload->data() >= file.data() &&
                    payload->data() + payload->size() <= file.data() + file.size());
  } else {
    KILN_FUZZ_CHECK(!why.empty());
  }
  // Any payload with a matching driver header must survive a round trip.
  std::vector<char> payload(file.begin(), file.end());
  if (payload.size() >= 32) {
    const std::uint32_t header[4] = {32, 1, id.vendor_id, id.device_id};
    std::memcpy(payload.data(), header, sizeof header);
    std::memcpy(payload.data() + 16, id.uuid, 16);
    const std::vector<char> wrapped = vk::wrap_pipeline_cache(payload, id);
    auto back = vk::unwrap_pipeline_cache(wrapped, id, &why);
    KILN_FUZZ_CHECK(back && std::vector<char>(back->begin(), back->end()) == payload);
    // Every truncation of a valid file is rejected.
    auto cut = vk::unwrap_pipeline_cache(std::span<const char>(wrapped).first(wrapped.size() - 1), id, &why);
    KILN_FUZZ_CHECK(!cut);
  }
}

// The JIT cache entry loader: any bytes are rejected with a reason or accepted with blobs that lie
// inside the file; packing and unpacking round-trips; a truncated or flipped entry is rejected.
inline void jit_entry_target(const std::uint8_t* data, std::size_t size) {
  constexpr std::uint64_t key = 0x4b494c4e4a495431;
  const std::span<const char> file(reinterpret_cast<const char*>(data), size);
  std::string why;
  if (auto blobs = unpack_jit_entry(file, key, &why)) {
    std::size_t total = 0;
    for (const auto& b : *blobs) total += b.size();
    KILN_FUZZ_CHECK(total <= size);
  } else {
    KILN_FUZZ_CHECK(!why.empty());
  }
  // The input cut into up to three blobs survives a round trip; any cut or flip is rejected.
  JitBlobs blobs(size ? 1 + data[0] % 3 : 0);
  for (std::size_t i = 0; i < size; ++i) blobs[i % blobs.size()].push_back(data[i]);
  const std::vector<char> packed = pack_jit_entry(key, blobs);
  auto back = unpack_jit_entry(packed, key, &why);
  KILN_FUZZ_CHECK(back && *back == blobs);
  KILN_FUZZ_CHECK(!unpack_jit_entry(std::span<const char>(packed).first(packed.size() - 1), key, &why));
  KILN_FUZZ_CHECK(!unpack_jit_entry(packed, key + 1, &why));
  if (size) {
    std::vector<char> flipped = packed;
    flipped.back() = char(flipped.back() ^ 0x20);
    KILN_FUZZ_CHECK(!unpack_jit_entry(flipped, key, &why));
  }
}

}  // namespace kiln::fuzz
