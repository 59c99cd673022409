// The kernel ABI shared by the runtime and the templates (templates/cuda/map.cuh and
// templates/glsl/map.glsl declare the same layouts). Kernels take raw device addresses and one
// params block by value: CUDA kernel parameter; Vulkan push constants, or the block's device address
// when it is over 128 bytes (see Stream::launch).
#pragma once

#include <cstdint>

namespace kiln {

inline constexpr int kMaxMapInputs = 4;
inline constexpr int kMaxMapRank = 6;
inline constexpr std::uint32_t kPushConstantLimit = 128;

// Contiguous map: out[i] = f(in0[i], in1[i], ...) for i < n.
struct KilnMapParams {
  std::uint64_t out;
  std::uint64_t in[kMaxMapInputs];
  std::uint64_t n;
};
static_assert(sizeof(KilnMapParams) == 48);

// Strided/broadcast map: the output is contiguous row-major over shape[0..rank); input k's
// element at index (i0, ..., i{rank-1}) is at in[k] + sum(i_d * strides[k][d]) elements
// (stride 0 broadcasts). Dimensions are collapsed before launch.
struct KilnStridedParams {
  std::uint64_t out;
  std::uint64_t in[kMaxMapInputs];
  std::uint64_t n;
  std::int64_t rank;
  std::int64_t shape[kMaxMapRank];
  std::int64_t strides[kMaxMapInputs][kMaxMapRank];
};
static_assert(sizeof(KilnStridedParams) == 296);

}  // namespace kiln
