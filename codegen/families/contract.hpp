// The contraction family's vocabulary, shared by its descriptor (contract.cpp), manifests and the
// tensor API (runtime/contract.cpp): a batched matrix product over strided operands,
// out[b, m, n] = sum_k a[b, m, k] * b[b, k, n], which dot, matmul (and later conv) reduce to.
#pragma once

#include <cstdint>
#include <optional>

#include "codegen/spec.hpp"

namespace kiln {

// Launch requests of the family (PlanRequest) describe the iteration space [batch..., M, N, K]:
// |shape| has the batch dimensions (at most kMaxContractBatch after size-1 ones are dropped and
// neighbours merged), then M, N and K; each input's strides (in elements) run over all of it (a's
// stride along N and b's along M are 0, a broadcast batch dimension has stride 0); the output is
// dense row-major [batch..., M, N].
inline constexpr int kMaxContractBatch = 4;

// The kernel tile: each workgroup (block) of 256 threads computes kContractTileM x kContractTileN
// outputs, walking K in steps of kContractTileK (templates/glsl/contract.glsl, cuda/contract.cuh).
inline constexpr int kContractTileM = 64, kContractTileN = 64, kContractTileK = 16, kContractThreads = 256;

// Operands an epilogue may read besides the sum (bias, residual, gate): the kernel's inputs 2 and 3.
inline constexpr int kMaxContractEpilogueInputs = 2;

// A contraction kernel of inputs a and b into |out|. The products are summed in the accumulator
// dtype (contract_accumulator_dtype). |epilogue| (optional): an expression over y, the sum in the
// accumulator dtype (input 0), and up to two operands laid out as the result (inputs 1, 2: the
// kernel's inputs 2, 3, e.g. a bias broadcast along the rows, a residual), applied to each output
// before it is converted to |out| — gelu(y + bias) + residual in one kernel. Throws
// dtype_mismatch for pred operands, an integer output from float inputs or an epilogue whose y
// is not the accumulator's dtype; invalid_argument for more than two epilogue operands.
//
// |tf32|: f32 operands are rounded to TF32 (10 mantissa bits, to nearest even) before they are
// multiplied — the tensor-core format, opt-in only (`precision = "tf32"`); the sums stay f32.
// Throws invalid_argument for tf32 with f64 (TF32 is an f32 mode).
KernelSpec make_contract_spec(DType a, DType b, DType out, const Expr* epilogue = nullptr, bool tf32 = false);
bool spec_contract_tf32(const KernelSpec& spec);

// The tensor-core variant of contraction or conv kernel |spec| (CUDA sm_80 and later: mma.sync
// m16n8k16, templates/cuda/contract_mma.cuh, conv_mma.cuh): two f16 or two bf16 operands summed in f32, any epilogue and
// output. Its products are summed by the tensor cores (their order and rounding per 16 products,
// the steps of 16 in k order), deterministic on a GPU model. Throws invalid_argument where it does
// not apply (contract_tensor_cores_apply says why).
KernelSpec contract_tensor_core_spec(const KernelSpec& spec);
bool contract_tensor_cores_apply(const KernelSpec& spec, std::string* why);
bool spec_contract_tensor_cores(const KernelSpec& spec);
// The tensor-core kernels' output tile (a block of 256 threads).
inline constexpr int kContractMmaTileM = 128, kContractMmaTileN = 128;

// The Hopper variant of tensor-core contraction or conv kernel |spec| (CUDA sm_90a only, compiled
// for that target: wgmma, templates/cuda/contract_wgmma.cuh with TMA loads, conv_wgmma.cuh with the
// windows gathered by a producer warpgroup) with output tiles of |tile_m| x |tile_n|: 128 x 128
// (384 threads) or, for contractions only, 64 x 128 (256 threads: one consumer warpgroup, for
// M <= 64, e.g. LLM decode) or 128 x 256 (384 threads, each consumer thread holding 128
// accumulators: half the shared-memory reads of a's stages per product, for large GEMMs) —
// contract_wgmma_tile_for picks. The same operands, sums and epilogues as
// contract_tensor_core_spec. Throws invalid_argument where it does not apply (what
// contract_tensor_cores_apply refuses, another tile).
KernelSpec contract_wgmma_spec(const KernelSpec& spec, int tile_m = 128, int tile_n = 128);
bool spec_contract_wgmma(const KernelSpec& spec);

// The tile table: the output tile (M x N) and K step of the kernel a contraction spec runs (every
// path: the portable kernel 64 x 64 x 16; mma.sync 128 x 128 x 32; wgmma 128 x 128, 64 x 128 or
// 128 x 256 x 64; Vulkan cooperative matrices 128 x 128 x 32).
struct ContractTile {
  int m = 0, n = 0, k = 0;
};
ContractTile contract_tile(const KernelSpec& spec);
// The wgmma tile for |batch| products of M x N: 64 x 128 where M <= 64 (half the tensor-core work
// and shared memory of a 128-row tile that would be mostly zeros); 128 x 256 where N > 128 and
// there are at least kWgmmaWideTiles such tiles (about two waves of an H100's 132 SMs at one block
// each: fewer, larger tiles no longer leave SMs idle); else 128 x 128. A first guess from the
// tiles' arithmetic, for the first GPU run to tune.
inline constexpr std::int64_t kWgmmaWideTiles = 256;
ContractTile contract_wgmma_tile_for(std::int64_t batch, std::int64_t m, std::int64_t n);
// An upper bound on the loop iterations one invocation of contraction or conv kernel |spec| runs
// (LaunchPlan::loop_iterations) for |tiles| output tiles over |groups| workgroups and a K of |k|:
// per K step 1 for the portable kernels and, for the cooperative-matrix ones as lavapipe runs them
// (emulated; measured there: about 94 for a contraction before its operands were fetched in chunks,
// whose element-by-element fallback adds up to 18 a step; 190 to 246 for a conv — an NCHW input and
// an HWIO kernel split k per element for both operands), 120 and 300.
std::uint64_t contract_loop_iterations(const KernelSpec& spec, std::int64_t tiles, std::int64_t k, std::uint32_t groups);

// The cooperative-matrix variant of contraction or conv kernel |spec| (Vulkan:
// VK_NV_cooperative_matrix, templates/glsl/coopmat.glsl with the family's contract_coopmat.glsl or
// conv_coopmat.glsl; 256 invocations in subgroups of 32, 128 x 128 tiles) on
// fragments of |shape| (A: M x K, B: K x N, f16; C: M x N, f32), the shape the device reports
// (DeviceInfo::cooperative_matrix): two f16 operands summed in f32 by the matrix units (their order
// and rounding), any epilogue and output. |emulated|: the fragments are plain arrays and their
// operations loops in k order, so the kernel runs on any Vulkan device (lavapipe: the check of its
// tiling where no device has the extension; never chosen by the runtime unless KILN_COOPMAT=emulate).
// Throws invalid_argument where it does not apply (contract_coopmat_applies says why).
struct CoopmatShape {
  int m = 0, n = 0, k = 0;
};
KernelSpec contract_coopmat_spec(const KernelSpec& spec, const CoopmatShape& shape, bool emulated = false);
bool contract_coopmat_applies(const KernelSpec& spec, std::string* why);
bool coopmat_shape_fits(const CoopmatShape& shape, std::string* why);
bool spec_contract_coopmat(const KernelSpec& spec);
std::string contract_coopmat_glsl(const KernelSpec& spec);
// |spec| as the same variant (path, fragment, ...) as kernel |variant|: an epilogue fused into a
// tensor-core or cooperative-matrix kernel stays on it. Throws invalid_argument where it cannot.
KernelSpec contract_same_variant(const KernelSpec& variant, const KernelSpec& spec);

struct PlanRequest;
// Whether the TMA can load request |r|'s operands (each with a contiguous axis, 16-byte aligned
// addresses and strides, at most 3 batch dimensions with a stride); false with |why| when not
// (the caller runs the mma.sync kernel instead).
bool contract_wgmma_fits(const PlanRequest& r, std::string* why);
// The dtype the products are summed in: f64 when any of a, b, out is f64, else f32 for a float
// output; an integer output's compute dtype (s32, u32, s64, u64: wrapping, as the output wraps).
DType contract_accumulator_dtype(DType a, DType b, DType out);

// ---- shared with the conv family (codegen/families/conv.cpp): the same tiled GEMM over another
// operand loader (an implicit im2col) ----------------------------------------------------------------

// Operand |in| converted to the accumulator |acc|, and a kernel's output value (its epilogue over
// y, the sum, and its operands, converted to the output dtype): Kiln's as_type and semantics.
Expr contract_load_expr(DType in, DType acc);
Expr contract_store_expr(const KernelSpec& spec);
// kiln::jit's epilogue fusion: the epilogue of |spec| with an elementwise |consumer| of its output
// value in input |slot| — inputs y, the kernel's own operands, then the consumer's other
// |more_operands| — or nullopt with the reason when that is more operands than an epilogue reads.
std::optional<Expr> contract_fused_epilogue(const KernelSpec& spec, const Expr& consumer, int slot,
                                            std::size_t more_operands, std::string* why);
// An f32 value rounded to TF32 (to nearest even at 10 mantissa bits; inf and NaN kept).
double contract_tf32_round(double v);
// Whether |spec|'s epilogue is y + bias, nothing else, with the bias of the output's dtype (read as
// the accumulator): what a vendor library's BIAS epilogue computes (cuBLASLt: D = sum + bias in the
// compute type, one rounding), so it may run there when the bias lies along N.
bool contract_epilogue_is_bias(const KernelSpec& spec);
// The contract and conv families' supports(): what contract_spec_supported takes, the tensor-core
// variants on CUDA only (and where contract_tensor_cores_apply says they apply).
enum class Target;
bool contract_family_supports(const KernelSpec& spec, Target target, std::string* why);
// Whether |spec| (a, b, the epilogue's operands; 256 threads) is a kernel the templates can take.
bool contract_spec_supported(const KernelSpec& spec, std::string* why);

// Which template an emitted contraction kernel instantiates: its entry point's suffix, the CUDA
// header, params struct and run function, and the GLSL template (inlined after the hooks).
struct ContractTemplate {
  std::string_view entry, cuda_header, cuda_params, cuda_run, glsl_template;
  int threads = kContractThreads;       // per block (__launch_bounds__)
  std::string_view shared_bytes = {};  // the dynamic shared memory a block needs (a C++ expression), or none
  std::string_view glsl_params = {};   // a GLSL template inlined before glsl_template (its params block)
  std::string_view glsl_core = {};     // one inlined between the two (glsl/coopmat.glsl: the tile product
                                       // whose hooks glsl_template defines)
};
std::string contract_cuda_source(const KernelSpec& spec, const ContractTemplate& t);
// |defines|: lines for the top of the prelude (#extension and #define lines of a variant).
std::string contract_glsl_source(const KernelSpec& spec, const ContractTemplate& t, std::string_view defines = {});

// A manifest [[kernel]] of a contraction family: `op` (|op_name| or absent; errors call it a |what|
// op), `inputs` (a, b, the epilogue's operands), `output` (default: |default_output|(a, b)),
// `epilogue`, `precision`.
class ManifestTable;
struct ApiFunction;
// A generated header's function for kernel |f|: (operands..., const |options_type|& = {}, into)
// calling |run| (run_contract_kernel, run_conv_kernel) with the kernel's registry.
std::string contract_api_function(const ApiFunction& f, std::string_view options_type, std::string_view run);
KernelSpec contract_manifest_spec(const ManifestTable& t, std::optional<DType> output, std::string_view what,
                                  std::string_view op_name, DType default_output(DType, DType));

}  // namespace kiln
