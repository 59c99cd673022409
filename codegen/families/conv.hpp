// The conv family's vocabulary, shared by its descriptor (conv.cpp) and the tensor API
// (runtime/conv.cpp): Nx's conv as an implicit GEMM, the contraction family's tiled product whose a
// operand is gathered from the input window by window as it is staged (no im2col in memory).
//
// Per group g (feature or batch groups), with rows m = (image, output position) and columns
// n = output channel:  out[m, n] = sum over k = (input channel, kernel position) of
// input[image, channel, window position] * kernel[n, channel, kernel position], where the window
// position along spatial dim j is o_j * stride_j - padding_low_j + k_j * kernel_dilation_j in the
// input dilated by input_dilation_j: an element exists there only where that position is a
// multiple of input_dilation_j inside the input (elsewhere: padding or the holes of the dilation, 0).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "codegen/families/contract.hpp"

namespace kiln {

// Spatial dimensions a conv kernel takes (1-D, 2-D and 3-D convolutions).
inline constexpr int kMaxConvSpatial = 3;

// Launch requests of the family (PlanRequest), for d spatial dimensions:
//   shape   [G, N, o_1..o_d, O, C, k_1..k_d]: G groups, N images (the output's batch), the output
//           positions o_j, O output and C input channels per group, the kernel's extents k_j.
//   inputs  each operand's strides (elements) over that shape:
//           [0] the input:   group, image, its spatial strides (along o_j), 0, channel, its spatial
//                            strides again (along k_j; the kernel combines o_j and k_j into one
//                            position, so the two must agree);
//           [1] the kernel:  group, 0, 0..., output channel, input channel, spatial (k_j);
//           [2], [3] the epilogue's operands, laid out over the output: group, image, spatial (o_j),
//                            output channel, then 0.
//   axes    conv_request_axes(): d, the output's permutation (the output is dense in the order
//           [N, G * O, o_1..o_d] permuted: axis i of the output is that order's axis perm[i]), then
//           per spatial dimension its stride, low padding, kernel dilation, input dilation and input
//           extent, then the order of k: 0 for (input channel, kernel position), 1 for (kernel
//           position, input channel) — channels last, for inputs whose channels are adjacent in
//           memory (NHWC), so neighbouring threads read neighbouring channels.
struct ConvDim {
  std::int64_t stride = 1, pad_lo = 0, kernel_dilation = 1, input_dilation = 1, input_size = 0;
};
// The request's axes; throws invalid_argument when a value does not fit an int.
std::vector<int> conv_request_axes(std::span<const int> output_permutation, std::span<const ConvDim> dims,
                                   bool channels_last);

// A conv kernel of input (a) and kernel (b) into |out|, with the contraction family's dtype rules,
// epilogue and precision (make_contract_spec).
KernelSpec make_conv_spec(DType a, DType b, DType out, const Expr* epilogue = nullptr, bool tf32 = false);
// Nx's output dtype of a conv: the promotion of the two, made floating (s8 x s8 -> f32).
DType conv_default_output(DType a, DType b);

// Whether the cooperative-matrix conv kernel (contract_coopmat_spec of a conv spec; Vulkan,
// templates/glsl/conv_coopmat.glsl) takes request |r|: fewer than 2^31 output rows (images x output
// positions per group) and products per output (input channels per group x kernel positions), which
// it splits in 32-bit arithmetic; false with |why| when not (the caller runs the portable kernel).
struct PlanRequest;
bool conv_coopmat_fits(const PlanRequest& r, std::string* why);

}  // namespace kiln
