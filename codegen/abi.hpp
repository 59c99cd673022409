// The kernel ABI shared by the runtime and the templates (templates/cuda/map.cuh and
// templates/glsl/map.glsl declare the same layouts). Kernels take raw device addresses and one
// params block by value: CUDA kernel parameter; Vulkan push constants, or the block's device address
// when it is over 128 bytes (see Stream::launch).
#pragma once

#include <cstdint>

namespace kiln {

inline constexpr int kMaxMapInputs = 4;
inline constexpr int kMaxMapOutputs = 4;  // a map kernel's results: out, then more_out
inline constexpr int kMaxMapRank = 6;
inline constexpr std::uint32_t kPushConstantLimit = 128;

// Contiguous map: out[i] = f(in0[i], in1[i], ...) for i < n. A map with several results (an
// expression with more roots) writes result k > 0 to more_out[k - 1][i]; the others ignore it.
struct KilnMapParams {
  std::uint64_t out;
  std::uint64_t in[kMaxMapInputs];
  std::uint64_t n;
  std::uint64_t more_out[kMaxMapOutputs - 1];
};
static_assert(sizeof(KilnMapParams) == 72);

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
  std::uint64_t more_out[kMaxMapOutputs - 1];  // contiguous, as out
};
static_assert(sizeof(KilnStridedParams) == 320);

// Reduction (templates/cuda/reduce.cuh, templates/glsl/reduce.glsl): output o (row-major over
// out_shape, the kept dimensions) combines the elements r < n_red of the reduced dimensions
// (row-major over red_shape); input k's element (o, r) is at in[k] + sum(o_d * out_strides[k][d]) +
// sum(r_d * red_strides[k][d]) elements. Dimensions are collapsed before launch. Long reductions
// split in two launches: "rows"/"cols" reduce segment s (elements [s * seg, (s + 1) * seg)) of
// output o into the accumulator scratch[s * n_out + o], then "final" combines the n_split
// accumulators of each output in order.
struct KilnReduceParams {
  std::uint64_t out;
  std::uint64_t in[kMaxMapInputs];
  std::int64_t n_out;
  std::int64_t n_red;
  std::int64_t out_rank;
  std::int64_t red_rank;
  std::int64_t out_shape[kMaxMapRank];
  std::int64_t red_shape[kMaxMapRank];
  std::int64_t out_strides[kMaxMapInputs][kMaxMapRank];
  std::int64_t red_strides[kMaxMapInputs][kMaxMapRank];
  std::uint64_t scratch;  // n_split > 1: n_out * n_split accumulators
  std::int64_t n_split;   // >= 1
  std::int64_t seg;       // elements per segment (n_red when n_split == 1)
};
static_assert(sizeof(KilnReduceParams) == 576);
// "final" runs a block per output (segments strided over its threads, then a fixed tree) from this
// many segments on, a thread per output below (templates/cuda/reduce.cuh, templates/glsl/reduce.glsl).
constexpr std::int64_t kReduceFinalBlock = 64;

// Row-wise kernels (templates/cuda/rows.cuh, templates/glsl/rows.glsl): row r (row-major over
// shape[0..rank), the dimensions other than the row's axis, collapsed) of n elements; operand k's
// element j of row r (inputs 0..3, the output and h at index 4) is at base + sum(r_d * strides[k][d]) +
// j * axis_stride[k] elements (logsumexp's output has one element per row: axis_stride 0). |value|:
// the norms' eps or softmax's scale, as the bits of a double (f64 kernels) and of a float (the
// others); causal softmax: the rows' query count Q (row r masks the elements j > r mod Q).
struct KilnRowsParams {
  std::uint64_t out;
  std::uint64_t in[kMaxMapInputs];
  std::int64_t n_rows;
  std::int64_t n;
  std::int64_t rank;
  std::int64_t shape[kMaxMapRank];
  std::int64_t strides[kMaxMapInputs + 1][kMaxMapRank];
  std::int64_t axis_stride[kMaxMapInputs + 1];
  std::uint64_t value64;
  std::uint32_t value32;
  std::uint32_t causal_q;
  std::uint64_t h;  // the residual output (x's dtype, laid out as the output), 0 for none
};
static_assert(sizeof(KilnRowsParams) == 416);

}  // namespace kiln
