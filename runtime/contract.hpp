// Contractions (docs/semantics.md, "Contractions"): Nx's dot (dot/2 and dot/6, with contraction and
// batch axes) and NumPy's matmul (batched, broadcasting batch dimensions), through the contraction
// family's batched matrix product. Operands given as views (transposed, sliced, broadcast) are read
// through their strides; an operand is copied only when its free or contracted axes cannot be
// merged into one strided dimension (kiln::contraction_copies says so). The output dtype is Nx's
// promotion of a's and b's (s8 x s8 is s8, wrapping) unless DotOptions::output asks for another
// (s8 x s8 -> s32); floats sum in f32 (f64 when any operand is f64), f16/bf16 round once at the
// store, integers wrap. Each output sums its products in k order: deterministic run to run.
// Errors (invalid_argument, dtype_mismatch) name the op, both shapes, the axes, the dtypes and the
// device. |into|: a contiguous tensor of the result's shape and dtype on the operands' device.
#pragma once

#include <optional>
#include <vector>

#include "codegen/families/contract.hpp"
#include "runtime/registry.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

// Nx.dot/6: a's axes contract_a are summed against b's contract_b (pairwise, equal sizes);
// batch_a and batch_b pair batch axes (equal sizes). The result's axes: the batch axes, then a's
// free axes, then b's, each in order. Negative axes count from the back.
struct DotAxes {
  std::vector<int> contract_a, batch_a, contract_b, batch_b;
};

enum class DotPrecision {
  highest,  // products of f32 operands in f32 (the default)
  tf32,     // f32 operands rounded to TF32 (10 mantissa bits) first: the tensor-core format, opt-in
};

struct DotOptions {
  std::optional<DType> output;  // default: promote(a, b)
  DotPrecision precision = DotPrecision::highest;
  // Fused into the kernel: an expression over y (the sum, in the accumulator dtype: f32, f64 or
  // the integer output's compute type) and |epilogue_operands| (up to two, broadcast to the
  // result's shape), applied to each output before its conversion to the output dtype:
  // parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476))", {f32, f32}) with {bias}
  // is GEMM + bias + GELU in one kernel (Kiln has no gelu op: GELU is written out).
  std::optional<Expr> epilogue;
  std::vector<Tensor> epilogue_operands;
  // CUDA: contractions without an epilogue (or with exactly y + bias, a bias along N of the output's
  // dtype: cuBLASLt's BIAS epilogue) whose a, b and output share a dtype (f16, bf16, f32,
  // f64), or s8 x s8 -> s32 with K < 2^17 (exact), and whose operands have unit stride along one
  // axis run through cuBLASLt when it is
  // installed (its summation order, not k order; no TF32); false always launches Kiln's kernel.
  bool vendor_library = true;
  // CUDA sm_80 and later: Kiln's kernel for two f16 or two bf16 operands summed in f32 runs on the
  // tensor cores (mma.sync; their summation order and rounding per 16 products, deterministic on a
  // GPU model), epilogues included; on sm_90 the Hopper kernel (wgmma with TMA loads) where the TMA
  // can load the operands (KILN_WGMMA=0: mma.sync); false (or KILN_MMA=0) keeps the k-order fma kernel.
  // Vulkan: two f16 operands summed in f32 run on cooperative matrices where the device has them
  // (DeviceInfo::cooperative_matrix; their order and rounding); false (or KILN_COOPMAT=0) does not.
  bool tensor_cores = true;
};

// How many contractions on this thread ran through a vendor library (cuBLASLt) instead of Kiln's
// kernel (for the bench and tests).
std::uint64_t contraction_library_runs();
// How many contractions and convolutions on this thread ran Kiln's tensor-core kernels
// (DotOptions::tensor_cores, ConvOptions::tensor_cores).
std::uint64_t contraction_tensor_core_runs();
// How many of those ran a Hopper kernel (wgmma: sm_90, KILN_WGMMA unset or not 0).
std::uint64_t contraction_wgmma_runs();
void note_tensor_core_run(bool wgmma = false);
// Whether |device| is a CUDA GPU of compute capability 8.0 or later ("sm_80"...) that may run the
// tensor-core kernels (KILN_MMA=0: never).
bool tensor_cores_on(Device& device);
// Whether |device| is an sm_90 GPU (H100, H200) whose tensor-core contractions and convolutions use
// the wgmma kernels (contractions where the TMA can load the operands; KILN_WGMMA=0 keeps them on
// mma.sync).
bool wgmma_on(Device& device);
// The wgmma GEMM's tile for |batch| products of M x N: contract_wgmma_tile_for's choice, or the
// tile KILN_WGMMA_TILE names (64x128, 128x128 or 128x256; read on each call: for timing one tile
// against another on a GPU); another value throws invalid_argument naming it.
ContractTile wgmma_tile(std::int64_t batch, std::int64_t m, std::int64_t n);
// How many contractions and convolutions on this thread ran Kiln's cooperative-matrix kernels (Vulkan).
std::uint64_t contraction_coopmat_runs();
void note_coopmat_run();
// Whether kernel |spec|'s plan for |request| keeps within |device|'s DeviceInfo::loop_limit (a
// variant that does not is passed over for the portable kernel, which loops less).
bool within_loop_limit(Device& device, const KernelSpec& spec, const PlanRequest& request);
// The tile ("MxNxK": output tile and K step, contract_tile) of the last of Kiln's contraction or conv
// kernels launched on a Vulkan or CUDA device on this thread (for the bench: which row of the tile
// table ran).
const std::string& contraction_last_tile();
void note_contraction_tile(Device& device, const KernelSpec& spec);  // (spec: the kernel launched)
// The cooperative-matrix fragment |device|'s f16 contractions use: its DeviceInfo::cooperative_matrix
// on a Vulkan device (m = 0: none); KILN_COOPMAT=emulate (read on each call) runs the kernel with
// emulated 16x16x16 fragments on any Vulkan device (|emulated| set; slow: for checking the kernel
// where no device has the extension), KILN_COOPMAT=0 never.
DeviceInfo::MatrixShape coopmat_on(Device& device, bool* emulated);

// How a contraction kernel is applied: with |axes| (dot) or, without, matmul's rules;
// |vendor_library| as in DotOptions.
struct ContractCall {
  std::optional<DotAxes> axes;
  bool vendor_library = true;
  bool tensor_cores = true;
};

// Nx.dot/2: a scalar operand multiplies (a contraction over an axis of size 1: the options and
// output rules as for any contraction); vector . vector, matrix . matrix; an n-D a with a vector b
// contracts a's last axis, a vector a with an m-D b contracts b's axis m - 2; otherwise a's last
// axis with b's second to last.
Tensor dot(const Tensor& a, const Tensor& b, const DotOptions& options = {});
Tensor dot(const Tensor& a, const Tensor& b, const DotAxes& axes, const DotOptions& options = {},
           const Tensor* into = nullptr);
// numpy.matmul: the last two axes are matrices (a vector a is a row [1, K], a vector b a column
// [K, 1], their unit axis dropped from the result); the axes before them broadcast.
Tensor matmul(const Tensor& a, const Tensor& b, const DotOptions& options = {}, const Tensor* into = nullptr);

// Runs contraction kernel |spec| over {a, b, the epilogue's operands...} as |call| says: the tensor ops and the generated
// functions of manifests share it. |entry| of |first| is used when given.
Tensor run_contract_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                           const std::vector<Tensor>& inputs, const ContractCall& call, const Tensor* into,
                           const Registry* first, const KernelEntry* entry = nullptr);

// The checks of a kernel's operands (one device, |spec|'s count and dtypes); errors name |op| and
// the operands as |names| ("a, b").
void check_kernel_operands(std::string_view op, const KernelSpec& spec, const std::vector<Tensor>& inputs,
                           std::string_view names);

// How many operands contractions on this thread have copied because their layout could not be
// expressed as strides (for the bench and tests).
std::uint64_t contraction_copies();

}  // namespace kiln
