// Convolutions (docs/semantics.md, "Convolutions"): Nx's conv — strides, padding (valid, same,
// explicit), input and kernel dilation, feature and batch groups, 1 to 3 spatial dimensions, and
// the input, kernel and output permutations that give NHWC/HWIO layouts — through the conv family's
// implicit GEMM (codegen/families/conv.hpp). Operands are read through their strides (a permuted
// or sliced view is not copied); the output is dense in its permuted order. Output dtype: Nx's,
// the promotion of input and kernel made floating (s8 x s8 -> f32), unless ConvOptions::output
// asks for another (s8 x s8 -> s32: exact, wrapping); products are summed as the contractions sum
// them (f32, f64 when an operand is f64, integers wrapping), each output in k order. Errors
// (invalid_argument, dtype_mismatch) name the op, both shapes, the options, dtypes and device.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "codegen/families/conv.hpp"
#include "runtime/contract.hpp"

namespace kiln {

enum class ConvPadding {
  valid,     // none
  same,      // Nx's :same: the dilated kernel's extent - 1 in all, the larger half after
  explicit_  // ConvGeometry::padding_config: (low, high) per spatial dimension, negative crops
};

// The options that shape a convolution (Nx.conv's). Per-dimension lists: empty means 1 (or no
// padding) in every spatial dimension, one value applies to all.
struct ConvGeometry {
  std::vector<std::int64_t> strides;
  ConvPadding padding = ConvPadding::valid;
  std::vector<std::pair<std::int64_t, std::int64_t>> padding_config;  // with ConvPadding::explicit_
  std::vector<std::int64_t> input_dilation, kernel_dilation;
  // Input channels in feature_group_size groups, each convolved with its share of the output
  // channels (depthwise: groups = channels); or the input batch in batch_group_size groups, output
  // channel group g reading batch group g. At most one of the two above 1.
  std::int64_t feature_group_size = 1, batch_group_size = 1;
  // The input as [batch, channels, spatial...] is input.transpose(input_permutation), the kernel
  // as [out channels, in channels, spatial...] kernel.transpose(kernel_permutation), and the result
  // transposed by output_permutation is [batch, channels, spatial...] (Nx: the result is the
  // canonical one transposed by the inverse). Empty: the identity. NHWC input and output:
  // {0, 3, 1, 2}; HWIO kernel: {3, 2, 0, 1}.
  std::vector<int> input_permutation, kernel_permutation, output_permutation;
};

struct ConvOptions : ConvGeometry {
  std::optional<DType> output;  // default: to_floating(promote(input, kernel))
  DotPrecision precision = DotPrecision::highest;
  // Fused into the kernel as in DotOptions: an expression over y (the sum) and up to two operands
  // broadcast to the result (a bias shaped [channels, 1, 1] for an NCHW output, a residual).
  std::optional<Expr> epilogue;
  std::vector<Tensor> epilogue_operands;
  // CUDA sm_80 and later: two f16 or two bf16 operands summed in f32 run on the tensor cores
  // (mma.sync, templates/cuda/conv_mma.cuh; as DotOptions::tensor_cores says), epilogues included;
  // false (or KILN_MMA=0) keeps the k-order fma kernel.
  bool tensor_cores = true;
};

// Nx.conv(input, kernel, opts). |into|: a contiguous tensor of the result's shape and dtype on the
// operands' device, overlapping none of them.
Tensor conv(const Tensor& input, const Tensor& kernel, const ConvOptions& options = {}, const Tensor* into = nullptr);

// Runs conv kernel |spec| over {input, kernel, the epilogue's operands...} with |geometry|: the
// tensor op and the generated functions of manifests share it. |entry| of |first| when given;
// |tensor_cores| (the tensor op's kernels only) as ConvOptions::tensor_cores.
Tensor run_conv_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                       const std::vector<Tensor>& inputs, const ConvGeometry& geometry, const Tensor* into,
                       const Registry* first, const KernelEntry* entry = nullptr, bool tensor_cores = false);

}  // namespace kiln
