// The contraction family: a batched matrix product out[b, m, n] = sum_k a[b, m, k] * b[b, k, n]
// over strided operands (transposed and sliced views are strides, not copies; a broadcast batch
// dimension is stride 0). kiln::dot, kiln::matmul (runtime/contract.cpp) reduce to it. Templates:
// templates/cuda/contract.cuh, templates/glsl/contract.glsl.
//
// Kernel: a workgroup (block) of 256 threads per 64 x 64 output tile (grid-stride over batch x
// tiles); K in steps of 16: the a and b tiles are staged in shared memory (converted to the
// accumulator type on load, zero outside the operands), each thread keeps a 4 x 4 block of outputs
// in registers (rows ty + 16 i, columns tx + 16 j: conflict-free shared reads). Every output sums its
// products in k order, each a fused multiply-add for floats (rounded once: the same on CUDA, every
// Vulkan driver and compiler; docs/semantics.md, "Reproducibility"): deterministic. The portable path (lavapipe
// too); the variants (tensor cores on CUDA, cooperative matrices on Vulkan) are in contract_variants.cpp.
#include "codegen/families/contract.hpp"
#include "codegen/families/contract_cpu.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "codegen/emit_parts.hpp"
#include "codegen/eval.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"

namespace kiln {

using namespace emit_parts;

namespace {

// The kernel ABI (templates/cuda/contract.cuh and templates/glsl/contract.glsl declare the same
// layout). Element strides; batch index b (row-major over batch_shape[0..batch_rank)) is at
// sum(b_d * batch_strides[operand][d]) for operands a, b, out.
struct KilnContractParams {
  std::uint64_t out;
  std::uint64_t a;
  std::uint64_t b;
  std::int64_t m, n, k;
  std::int64_t batch;
  std::int64_t batch_rank;
  std::int64_t batch_shape[kMaxContractBatch];
  std::int64_t batch_strides[3][kMaxContractBatch];
  std::int64_t a_m, a_k, b_k, b_n;
  std::int64_t tiles_m, tiles_n;
  // The epilogue's operands (0: none), laid out over the result: batch strides, then along M and N.
  std::uint64_t ext[kMaxContractEpilogueInputs];
  std::int64_t ext_batch_strides[kMaxContractEpilogueInputs][kMaxContractBatch];
  std::int64_t ext_m[kMaxContractEpilogueInputs], ext_n[kMaxContractEpilogueInputs];
  std::int64_t reserved[2];
};
static_assert(sizeof(KilnContractParams) == 368);

// The wgmma kernel's params (contract_wgmma.cuh): + layouts, tensor maps (written at launch).
struct KilnWgmmaParams {
  KilnContractParams c;
  std::int64_t layout;  // bit 0: a is M-major, bit 1: b is N-major
  std::int64_t reserved;
  alignas(64) std::byte a_map[128];
  alignas(64) std::byte b_map[128];
};
static_assert(sizeof(KilnWgmmaParams) == 640 && offsetof(KilnWgmmaParams, a_map) == 384 &&
              offsetof(KilnWgmmaParams, b_map) == 512);
constexpr int kWgmmaTileK = 64;  // the k extent of a stage's boxes

constexpr FamilyEntryPoint kEntryPoints[] = {{"gemm", sizeof(KilnContractParams)}};
constexpr std::string_view kSlots[] = {"expr", "epilogue"};
constexpr std::string_view kManifestKeys[] = {"name",    "family",   "op",       "inputs",
                                              "output",  "targets",  "epilogue", "precision"};

DType acc_of(const KernelSpec& spec) {
  return contract_accumulator_dtype(spec.inputs.at(0), spec.inputs.at(1), spec.output);
}

}  // namespace

// Input k (storage) converted to the accumulator, and the accumulator converted to the output:
// Kiln's as_type (codegen/eval.cpp), so every target converts alike.
Expr contract_load_expr(DType in, DType acc) {
  Expr e;
  e.set_root(e.cast(e.input(0, in), acc));
  return e.pruned();
}
// The output's value: the epilogue over (y, its operands), or y, converted to the output dtype.
// Inputs: 0 is y (the accumulator), k >= 1 the kernel's input k + 1.
Expr contract_store_expr(const KernelSpec& spec) {
  const DType acc = acc_of(spec);
  Expr e;
  NodeId r = e.input(0, acc);
  if (!spec.epilogue.nodes().empty()) {
    std::vector<NodeId> inputs{r};
    for (std::size_t k = 2; k < spec.inputs.size(); ++k) inputs.push_back(e.input(int(k) - 1, spec.inputs[k]));
    r = inline_expr(e, spec.epilogue, inputs);
  }
  e.set_root(e.cast(r, spec.output));
  return e.pruned();
}

bool contract_spec_supported(const KernelSpec& spec, std::string* why) {
  auto no = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return false;
  };
  const std::size_t extra = spec.epilogue.nodes().empty() ? 0 : std::size_t(spec.epilogue.num_inputs() - 1);
  if (spec.inputs.size() != 2 + extra)
    return no(fmt::format("a contraction takes a, b and its epilogue's {} operands, not {} inputs", extra,
                          spec.inputs.size()));
  if (const std::string_view tile = spec.attribute("tile");
      spec_contract_wgmma(spec) && !tile.empty() && tile != "64x128" && tile != "128x256")
    return no(fmt::format("wgmma kernels have tiles of 128x128 (no tile attribute), 64x128 or 128x256, not {}", tile));
  const int threads = spec_contract_wgmma(spec) ? 128 * (1 + contract_tile(spec).m / 64) : kContractThreads;
  if (spec.block_size != threads)
    return no(fmt::format("{} kernels run {} threads per block, not {}",
                          spec_contract_wgmma(spec) ? "wgmma contraction" : "contraction", threads, spec.block_size));
  if (spec_contract_wgmma(spec) && spec.family != "contract" &&
      (spec.family != "conv" || contract_tile(spec).m != 128 || contract_tile(spec).n != 128))
    return no(fmt::format("{} kernels have no wgmma variant{}", spec.family,
                          spec.family == "conv" ? " with tiles other than 128 x 128" : ""));
  for (DType t : {spec.inputs[0], spec.inputs[1], spec.output})
    if (t == DType::pred) return no("a contraction takes no pred operands");
  if (!is_float(spec.output) && (is_float(spec.inputs[0]) || is_float(spec.inputs[1])))
    return no("an integer output needs integer inputs");
  return true;
}

// ---- CUDA: the functor the template calls (templates/cuda/contract.cuh, conv.cuh) ---------------

std::string contract_cuda_source(const KernelSpec& spec, const ContractTemplate& t) {
  const std::string name = spec.name();
  const DType acc = acc_of(spec);
  std::string s = fmt::format("// ---- {} ({}): {} x {} -> {} ----\n", name, t.entry, dtype_name(spec.inputs[0]),
                              dtype_name(spec.inputs[1]), dtype_name(spec.output));
  s += "// Generated by Kiln (codegen/families/contract.cpp). Compile with --fmad=false (see cuda/ops.cuh).\n";
  s += fmt::format("#include \"{}\"\n\n", t.cuda_header);
  s += fmt::format("struct {}_fn {{\n  typedef {} C;\n", name, cuda_storage(acc));
  for (int k = 0; k < 2; ++k) {
    const DType t = spec.inputs[std::size_t(k)];
    const Expr e = contract_load_expr(t, acc);
    s += fmt::format("  template <class P>\n  __device__ __forceinline__ C {}(const P& p, long long i) const {{\n",
                     k == 0 ? "load_a" : "load_b");
    s += fmt::format("    const {} a0 = reinterpret_cast<const {}*>(p.{})[i];\n", cuda_storage(t), cuda_storage(t),
                     k == 0 ? "a" : "b");
    s += cuda_locals(e, "    ") +
         fmt::format("    return {}C(v{}){};\n  }}\n", spec_contract_tf32(spec) ? "kiln::contract_tf32(" : "", e.root(),
                     spec_contract_tf32(spec) ? ")" : "");
  }
  const Expr st = contract_store_expr(spec);
  s += "  template <class P>\n  __device__ __forceinline__ void put(const P& p, long long i, const long long* ei, "
       "const C y) const {\n    const C a0 = y;\n";
  for (std::size_t k = 2; k < spec.inputs.size(); ++k)
    s += fmt::format("    const {0} a{1} = reinterpret_cast<const {0}*>(p.ext[{2}])[ei[{2}]];\n",
                     cuda_storage(spec.inputs[k]), k - 1, k - 2);
  s += cuda_locals(st, "    ");
  s += fmt::format("    reinterpret_cast<{}*>(p.out)[i] = kiln_store_{}(v{});\n  }}\n}};\n\n", cuda_storage(spec.output),
                   dtype_name(spec.output), st.root());
  if (!t.shared_bytes.empty()) {  // read at load time (runtime/cuda/cuda_device.cpp)
    s += fmt::format("extern \"C\" __device__ unsigned {}_{}_shared_bytes = {};\n", name, t.entry, t.shared_bytes);
    s += fmt::format("extern \"C\" __global__ void __launch_bounds__({0}, 1) {1}_{2}(const __grid_constant__ "
                     "kiln::{3} p) {{\n  kiln::{4}<{1}_fn>(p, {1}_fn());\n}}\n",
                     t.threads, name, t.entry, t.cuda_params, t.cuda_run);
    return s;
  }
  s += fmt::format("extern \"C\" __global__ void __launch_bounds__({0}) {1}_{2}(const __grid_constant__ "
                   "kiln::{3} p) {{\n  kiln::{4}<{1}_fn>(p, {1}_fn());\n}}\n",
                   t.threads, name, t.entry, t.cuda_params, t.cuda_run);
  return s;
}

// ---- GLSL: the hooks the template calls (templates/glsl/contract.glsl) ----------------------------

std::string contract_glsl_source(const KernelSpec& spec, const ContractTemplate& t, std::string_view defines) {
  const DType acc = acc_of(spec);
  const Expr la = contract_load_expr(spec.inputs[0], acc), lb = contract_load_expr(spec.inputs[1], acc), st = contract_store_expr(spec);
  std::string s = "#version 450\n#extension GL_GOOGLE_cpp_style_line_directive : require\n";
  s += fmt::format("// ---- {} ({}): {} x {} -> {} ----\n", spec.name(), t.entry, dtype_name(spec.inputs[0]),
                   dtype_name(spec.inputs[1]), dtype_name(spec.output));
  s += "// Generated by Kiln (codegen/families/contract.cpp). Compile with glslc --target-env=vulkan1.3.\n";
  std::vector<DType> storage = spec.inputs;
  storage.push_back(spec.output);
  s += glsl_prelude(storage, {&la, &lb, &st}, defines.empty() ? std::vector<std::string>{} : std::vector{std::string(defines)});
  s += fmt::format("// ---- instantiation: {} ----\n#line 1 \"{}\"\n", spec.name(), spec.name());
  s += fmt::format("#define KILN_NUM_INPUTS {}\n#define KILN_C {}\n", spec.inputs.size(), glsl_compute(acc));
  for (int k = 0; k < int(spec.inputs.size()); ++k) {
    const DType t = spec.inputs[std::size_t(k)];
    s += fmt::format("#define KILN_T{0} {1}\n#define KILN_S{0} {2}\n#define KILN_LOAD{0}(v) {3}\n", k, glsl_storage(t),
                     dtype_size(t), glsl_load_hook(t));
  }
  for (std::size_t k = spec.inputs.size(); k < std::size_t(2 + kMaxContractEpilogueInputs); ++k)
    s += fmt::format("#define KILN_S{} 1\n", k);  // absent epilogue operands
  s += fmt::format("#define KILN_TOUT {}\n#define KILN_SOUT {}\n#define KILN_STORE(c) {}\n", glsl_storage(spec.output),
                   dtype_size(spec.output), glsl_store_hook(spec.output));
  s += fmt::format("#define KILN_TILE_M {}\n#define KILN_TILE_N {}\n#define KILN_TILE_K {}\n", kContractTileM,
                   kContractTileN, kContractTileK);
  s += is_float(acc) ? "#define KILN_FMA(a, b, c) fma(a, b, c)\n#define KILN_PRECISE precise\n"
                     : "#define KILN_FMA(a, b, c) ((c) + (a) * (b))\n#define KILN_PRECISE\n";
  s += glsl_inline("glsl/operands.glsl");
  if (spec_contract_tf32(spec))  // round to nearest even at 10 mantissa bits (inf and NaN kept)
    s += "float kiln_tf32(float v) {\n  uint u = floatBitsToUint(v);\n"
         "  if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;\n"
         "  return uintBitsToFloat(u);\n}\n";
  for (int k = 0; k < 2; ++k) {
    const Expr& e = k == 0 ? la : lb;
    s += fmt::format("KILN_C kiln_load_{}(uint64_t address) {{\n", k == 0 ? "a" : "b");
    s += fmt::format("  {} a0 = KILN_LOAD{}(KilnIn{}Ref(address).v);\n", glsl_compute(spec.inputs[std::size_t(k)]), k, k);
    s += glsl_locals(e, "  ") + fmt::format("  return {}KILN_C(v{}){};\n}}\n", spec_contract_tf32(spec) ? "kiln_tf32(" : "",
                                            e.root(), spec_contract_tf32(spec) ? ")" : "");
  }
  // The output at |address|; the epilogue's operands at e0 and e1.
  s += "void kiln_put(uint64_t address, uint64_t e0, uint64_t e1, KILN_C y) {\n  KILN_C a0 = y;\n";
  for (std::size_t k = 2; k < spec.inputs.size(); ++k)
    s += fmt::format("  {} a{} = KILN_LOAD{}(KilnIn{}Ref(e{}).v);\n", glsl_compute(spec.inputs[k]), k - 1, k, k, k - 2);
  s += glsl_locals(st, "  ") + fmt::format("  KilnOutRef(address).v = KILN_STORE(v{});\n}}\n", st.root());
  if (!t.glsl_params.empty()) s += glsl_inline(t.glsl_params);
  if (!t.glsl_core.empty()) s += glsl_inline(t.glsl_core);
  s += glsl_inline(t.glsl_template);
  return s;
}

namespace {

constexpr ContractTemplate kGemm = {"gemm", "cuda/contract.cuh", "KilnContractParams", "contract_run",
                                    "glsl/contract.glsl", kContractThreads, {}, "glsl/contract_params.glsl"};
// The tensor-core kernels (CUDA only; the same entry point, another template).
constexpr ContractTemplate kMmaBf16 = {"gemm", "cuda/contract_mma.cuh", "KilnContractParams", "contract_mma_run_bf16", ""};
constexpr ContractTemplate kMmaF16 = {"gemm", "cuda/contract_mma.cuh", "KilnContractParams", "contract_mma_run_f16", ""};
constexpr ContractTemplate kWgmma[2][3] = {  // [bf16][64 x 128, 128 x 128, 128 x 256]
    {{"gemm", "cuda/contract_wgmma.cuh", "KilnWgmmaParams", "contract_wgmma_run_f16_m64", "", 256, "kiln::kWgSharedBytesM64"},
     {"gemm", "cuda/contract_wgmma.cuh", "KilnWgmmaParams", "contract_wgmma_run_f16", "", 384, "kiln::kWgSharedBytes"},
     {"gemm", "cuda/contract_wgmma.cuh", "KilnWgmmaParams", "contract_wgmma_run_f16_n256", "", 384, "kiln::kWgSharedBytesN256"}},
    {{"gemm", "cuda/contract_wgmma.cuh", "KilnWgmmaParams", "contract_wgmma_run_bf16_m64", "", 256, "kiln::kWgSharedBytesM64"},
     {"gemm", "cuda/contract_wgmma.cuh", "KilnWgmmaParams", "contract_wgmma_run_bf16", "", 384, "kiln::kWgSharedBytes"},
     {"gemm", "cuda/contract_wgmma.cuh", "KilnWgmmaParams", "contract_wgmma_run_bf16_n256", "", 384, "kiln::kWgSharedBytesN256"}}};

std::string contract_emit_cuda(const KernelSpec& spec, FunctionSet) {
  if (!spec_contract_tensor_cores(spec)) return contract_cuda_source(spec, kGemm);
  const bool bf16 = spec.inputs[0] == DType::bf16;
  if (spec_contract_wgmma(spec)) {
    const ContractTile tile = contract_tile(spec);
    return contract_cuda_source(spec, kWgmma[bf16][tile.m == 64 ? 0 : tile.n == 128 ? 1 : 2]);
  }
  return contract_cuda_source(spec, bf16 ? kMmaBf16 : kMmaF16);
}
std::uint32_t contract_params_bytes(const KernelSpec& spec, int) {
  return spec_contract_wgmma(spec) ? sizeof(KilnWgmmaParams) : sizeof(KilnContractParams);
}
std::string contract_emit_glsl(const KernelSpec& spec, int) {
  return spec_contract_coopmat(spec) ? contract_coopmat_glsl(spec) : contract_glsl_source(spec, kGemm);
}

// ---- the plan ------------------------------------------------------------------------------------

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The request's iteration space [batch..., M, N, K] as the kernel's params (addresses left 0);
// false with |why| when it cannot be expressed.
bool contract_geometry(const PlanRequest& r, KilnContractParams& p, std::string* why, std::int64_t tile_m = kContractTileM,
                       std::int64_t tile_n = kContractTileN) {
  if (r.inputs.size() < 2 || r.inputs.size() > std::size_t(2 + kMaxContractEpilogueInputs) || r.shape.size() < 3) {
    *why = fmt::format("{} operands over a space of rank {}; a contraction takes a, b and up to {} epilogue operands "
                       "over [batch..., M, N, K]", r.inputs.size(), r.shape.size(), kMaxContractEpilogueInputs);
    return false;
  }
  const std::size_t nb = r.shape.size() - 3, n_ext = r.inputs.size() - 2;
  for (const PlanOperand& o : r.inputs)
    if (o.strides.size() != r.shape.size()) {
      *why = "the operands' strides must run over the whole iteration space";
      return false;
    }
  const auto& sa = r.inputs[0].strides;
  const auto& sb = r.inputs[1].strides;
  p.m = r.shape[nb];
  p.n = r.shape[nb + 1];
  p.k = r.shape[nb + 2];
  p.a_m = sa[nb];
  p.a_k = sa[nb + 2];
  p.b_k = sb[nb + 2];
  p.b_n = sb[nb + 1];
  for (std::size_t e = 0; e < n_ext; ++e) {
    p.ext_m[e] = r.inputs[2 + e].strides[nb];
    p.ext_n[e] = r.inputs[2 + e].strides[nb + 1];
  }
  // Batch dimensions: size 1 dropped, neighbours merged where every operand allows it (a, b, the
  // output, the epilogue's).
  constexpr int kOps = 3 + kMaxContractEpilogueInputs;
  struct Dim {
    std::int64_t size, st[kOps];
  };
  std::vector<Dim> dims;
  std::int64_t out_stride = p.m * p.n, batch = 1;
  std::vector<std::int64_t> so(nb);
  for (std::size_t d = nb; d-- > 0;) {
    so[d] = out_stride;
    out_stride *= r.shape[d];
  }
  for (std::size_t d = 0; d < nb; ++d) {
    batch *= r.shape[d];
    if (r.shape[d] == 1) continue;
    Dim x{r.shape[d], {sa[d], sb[d], so[d], 0, 0}};
    for (std::size_t e = 0; e < n_ext; ++e) x.st[3 + e] = r.inputs[2 + e].strides[d];
    if (!dims.empty()) {
      Dim& last = dims.back();
      bool merge = true;
      for (int o = 0; o < kOps; ++o) merge = merge && last.st[o] == x.st[o] * x.size;
      if (merge) {
        last.size *= x.size;
        for (int o = 0; o < kOps; ++o) last.st[o] = x.st[o];
        continue;
      }
    }
    dims.push_back(x);
  }
  if (dims.size() > std::size_t(kMaxContractBatch)) {
    *why = fmt::format("{} non-mergeable batch dimensions; kernels take at most {} (make the operands contiguous first)",
                       dims.size(), kMaxContractBatch);
    return false;
  }
  p.batch = batch;
  p.batch_rank = std::int64_t(dims.size());
  for (std::size_t d = 0; d < dims.size(); ++d) {
    p.batch_shape[d] = dims[d].size;
    for (int o = 0; o < 3; ++o) p.batch_strides[o][d] = dims[d].st[o];
    for (int e = 0; e < kMaxContractEpilogueInputs; ++e) p.ext_batch_strides[e][d] = dims[d].st[3 + e];
  }
  p.tiles_m = ceil_div(p.m, tile_m);
  p.tiles_n = ceil_div(p.n, tile_n);
  return true;
}

// The TMA map of operand |o| (0: a, 1: b) of the wgmma kernel, and whether its m (n) axis is the
// contiguous one (else k is): dim 0 that axis, dim 1 the other, then the batch dimensions with a
// nonzero stride, innermost first (templates/cuda/contract_wgmma.cuh); false with |why| when the
// TMA cannot load it (cuTensorMapEncodeTiled's rules: 16-byte aligned address and strides, each
// stride at least the extent below it; at most 5 dimensions).
bool wgmma_operand_map(const KilnContractParams& p, int o, ContractTile tile, TensorMapRequest& t, bool& mn_major,
                       std::string* why) {
  const char *name = o == 0 ? "a" : "b", *axis = o == 0 ? "m" : "n";
  const std::uint64_t address = o == 0 ? p.a : p.b;
  const std::int64_t rows = o == 0 ? p.m : p.n, s_rows = o == 0 ? p.a_m : p.b_n, s_k = o == 0 ? p.a_k : p.b_k;
  auto no = [&](std::string reason) {
    *why = fmt::format("the TMA cannot load operand {}: {}", name, reason);
    return false;
  };
  if (address % 16 != 0) return no(fmt::format("its address {:#x} is not 16-byte aligned", address));
  if (rows == 0 || p.k == 0) return no("an empty dimension (a tensor map's dimensions are at least 1)");
  if (rows >= (std::int64_t(1) << 31) || p.k >= (std::int64_t(1) << 31)) return no("a dimension past 2^31 - 1");
  if (s_k == 1 || p.k == 1) mn_major = false;
  else if (s_rows == 1 || rows == 1) mn_major = true;
  else return no(fmt::format("neither k nor {} is contiguous (strides {} and {})", axis, s_k, s_rows));
  const std::int64_t inner = mn_major ? rows : p.k, outer = mn_major ? p.k : rows;
  std::int64_t outer_stride = mn_major ? s_k : s_rows;
  if (outer == 1) outer_stride = (inner + 7) / 8 * 8;  // never stepped over: any valid value
  t.element_bytes = 2;
  t.swizzle_bytes = 128;
  t.address = address;
  t.dims[0] = std::uint64_t(inner);
  t.box[0] = 64;  // 128 bytes: the swizzle's span
  t.rank = 1;
  std::int64_t below = inner;  // elements spanned by the dimensions so far
  auto add = [&](std::int64_t size, std::int64_t stride, const char* what) {
    if (stride <= 0 || stride % 8 != 0 || stride < below || stride >= (std::int64_t(1) << 39))
      return no(fmt::format("the {} stride {} (elements) is not a positive multiple of 8 past the {} elements below it",
                            what, stride, below));
    if (t.rank == 5) return no("more than 3 batch dimensions with a stride");
    t.dims[t.rank] = std::uint64_t(size);
    t.strides[t.rank - 1] = std::uint64_t(stride) * 2;
    t.box[t.rank] = 1;
    ++t.rank;
    below = stride * size;
    return true;
  };
  if (!add(outer, outer_stride, mn_major ? "k" : axis)) return false;
  t.box[1] = mn_major ? kWgmmaTileK : (o == 0 ? tile.m : tile.n);
  for (std::int64_t d = p.batch_rank - 1; d >= 0; --d)
    if (p.batch_strides[o][d] != 0 && !add(p.batch_shape[d], p.batch_strides[o][d], "batch")) return false;
  return true;
}

LaunchPlan contract_plan(const KernelSpec& spec, const PlanRequest& r, std::string* why) {
  LaunchPlan plan;
  KilnContractParams p{};
  const ContractTile tile = contract_tile(spec);
  if (!contract_geometry(r, p, why, tile.m, tile.n)) return plan;
  p.out = r.out;
  p.a = r.inputs[0].address;
  p.b = r.inputs[1].address;
  for (std::size_t e = 2; e < r.inputs.size(); ++e) p.ext[e - 2] = r.inputs[e].address;
  plan.function = 0;
  plan.groups_x = std::uint32_t(std::clamp<std::int64_t>(p.batch * p.tiles_m * p.tiles_n, 1, 65535));
  plan.loop_iterations = contract_loop_iterations(spec, p.batch * p.tiles_m * p.tiles_n, p.k, plan.groups_x);
  if (spec_contract_wgmma(spec)) {
    KilnWgmmaParams w{};
    w.c = p;
    TensorMapRequest maps[2];
    for (int o = 0; o < 2; ++o) {
      bool mn = false;
      if (!wgmma_operand_map(p, o, tile, maps[o], mn, why)) return LaunchPlan{};
      w.layout |= std::int64_t(mn) << o;
    }
    maps[0].offset = offsetof(KilnWgmmaParams, a_map);
    maps[1].offset = offsetof(KilnWgmmaParams, b_map);
    plan.params = params_of(w);
    plan.tensor_maps.assign(maps, maps + 2);
    return plan;
  }
  plan.params = params_of(p);
  return plan;
}

// ---- the CPU reference: floats summed in long double, integers wrapping in 64 bits ---------------

}  // namespace

// An f32 value rounded to TF32: to nearest even at 10 mantissa bits, inf and NaN kept.
double contract_tf32_round(double v) {
  std::uint32_t u;
  const float f = float(v);
  std::memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

ContractCpuSum::ContractCpuSum(const KernelSpec& spec)
    : spec_(spec),
      acc_(contract_accumulator_dtype(spec.inputs.at(0), spec.inputs.at(1), spec.output)),
      tf32_(spec_contract_tf32(spec)),
      conv_a_(contract_load_expr(spec.inputs[0], acc_)),
      conv_b_(contract_load_expr(spec.inputs[1], acc_)),
      finish_(contract_store_expr(spec)) {}

void ContractCpuSum::add(const std::byte* a, const std::byte* b) {
  const Scalar xa[1] = {load_scalar(spec_.inputs[0], a)}, xb[1] = {load_scalar(spec_.inputs[1], b)};
  Scalar va = conv_a_.eval(xa), vb = conv_b_.eval(xb);
  if (tf32_) va.f = contract_tf32_round(va.f), vb.f = contract_tf32_round(vb.f);
  if (!is_float(acc_)) {
    u_ += va.u * vb.u;
    return;
  }
  // The product is exact (the kernels' fused multiply-add); the running sum stays within the
  // accumulator's range as the kernels hold it: past it +-inf (inf - inf is then NaN, as theirs),
  // below it 0. So 3e38 + 3e38 - 3e38 overflows here too, in k order.
  f_ += static_cast<long double>(va.f) * static_cast<long double>(vb.f);
  if (acc_ == DType::f32) {
    if (const float r = float(f_); std::isinf(r) || r == 0) f_ = r;
  } else if (const double r = double(f_); std::isinf(r) || r == 0) {
    f_ = r;
  }
}

void ContractCpuSum::store(std::byte* out, const std::byte* const* ext) {
  Scalar in[1 + kMaxContractEpilogueInputs];
  if (is_float(acc_)) {
    in[0] = Scalar::from_f(acc_ == DType::f32 ? double(float(f_)) : double(f_));
  } else {  // wrapped to the accumulator's width, in the evaluator's form
    std::byte w[8];
    Scalar v;
    v.u = u_;
    store_scalar(acc_, w, v);
    in[0] = load_scalar(acc_, w);
  }
  for (std::size_t e = 2; e < spec_.inputs.size(); ++e) in[e - 1] = load_scalar(spec_.inputs[e], ext[e - 2]);
  store_scalar(spec_.output, out, finish_.eval(in));
}

namespace {

void contract_run_cpu(const KernelSpec& spec, const PlanRequest& r) {
  KilnContractParams p{};
  std::string why;
  if (!contract_geometry(r, p, &why)) fail(ErrorCode::invalid_argument, why);
  const auto* a = reinterpret_cast<const std::byte*>(r.inputs[0].address);
  const auto* b = reinterpret_cast<const std::byte*>(r.inputs[1].address);
  auto* out = reinterpret_cast<std::byte*>(r.out);
  const std::int64_t ea = std::int64_t(dtype_size(spec.inputs[0])), eb = std::int64_t(dtype_size(spec.inputs[1])),
                     eo = std::int64_t(dtype_size(spec.output));
  ContractCpuSum sum(spec);
  const std::size_t n_ext = spec.inputs.size() - 2;
  for (std::int64_t bi = 0; bi < p.batch; ++bi) {
    std::int64_t off[3] = {0, 0, 0}, eoff[kMaxContractEpilogueInputs] = {0, 0}, rem = bi;
    for (std::int64_t d = p.batch_rank; d-- > 0;) {
      const std::int64_t idx = rem % p.batch_shape[d];
      rem /= p.batch_shape[d];
      for (int o = 0; o < 3; ++o) off[o] += idx * p.batch_strides[o][d];
      for (std::size_t e = 0; e < n_ext; ++e) eoff[e] += idx * p.ext_batch_strides[e][d];
    }
    for (std::int64_t m = 0; m < p.m; ++m) {
      for (std::int64_t n = 0; n < p.n; ++n) {
        sum.begin();
        for (std::int64_t k = 0; k < p.k; ++k)
          sum.add(a + (off[0] + m * p.a_m + k * p.a_k) * ea, b + (off[1] + k * p.b_k + n * p.b_n) * eb);
        const std::byte* ext[kMaxContractEpilogueInputs] = {nullptr, nullptr};
        for (std::size_t e = 0; e < n_ext; ++e)
          ext[e] = reinterpret_cast<const std::byte*>(r.inputs[2 + e].address) +
                   (eoff[e] + m * p.ext_m[e] + n * p.ext_n[e]) * std::int64_t(dtype_size(spec.inputs[2 + e]));
        sum.store(out + (off[2] + m * p.n + n) * eo, ext);
      }
    }
  }
}

FamilyCost contract_cost(const KernelSpec& spec) {
  // Per output element; the products (2K FLOP each) depend on K, which the spec does not fix:
  // the bench counts them from its shapes.
  FamilyCost c;
  c.bytes_per_element = double(dtype_size(spec.output));
  return c;
}

}  // namespace

std::string contract_api_function(const ApiFunction& f, std::string_view options_type, std::string_view run) {
  std::string params, args;
  for (const std::string& p : f.params) {
    params += fmt::format("const kiln::Tensor& {}, ", p);
    args += (args.empty() ? "" : ", ") + p;
  }
  return fmt::format("{0}inline kiln::Tensor {1}({2}const {5}& options = {{}}, const kiln::Tensor* into = nullptr) {{\n"
                     "  const kiln::AotKernel& kiln_k = detail::{3}();\n"
                     "  return {6}(kiln_k.label(), kiln_k.spec(), &kiln_k.name(), {{{4}}}, options, into, &kiln_k.registry());\n}}\n",
                     f.comment, f.name, params, f.kernel, args, options_type, run);
}

KernelSpec contract_manifest_spec(const ManifestTable& t, std::optional<DType> output, std::string_view what,
                                  std::string_view op_name, DType default_output(DType, DType)) {
  if (const std::optional<std::string> op = t.string("op"); op && *op != op_name)
    t.error("op", fmt::format("unknown {} op '{}' (expected: {})", what, *op, op_name));
  const std::vector<DType>& in = t.inputs();
  if (in.size() < 2) t.error("inputs", fmt::format("a contraction takes two inputs (a, b), not {}", in.size()));
  const DType out = output ? *output : default_output(in[0], in[1]);
  // The epilogue: over y (the sum, in the accumulator dtype) and the inputs after a and b, by their
  // names or as the kernel's inputs are named anywhere (z, w, in2, in3, ...): the sum is parsed as
  // one more input after them, named y.
  const std::size_t sum = in.size();
  std::vector<DType> edt(in.begin(), in.end());
  edt.push_back(contract_accumulator_dtype(in[0], in[1], out));
  std::vector<std::string_view> enames;
  for (std::size_t k = 0; k < in.size(); ++k)
    enames.push_back(k < t.input_names().size() ? std::string_view(t.input_names()[k]) : std::string_view());
  enames.push_back("y");
  std::optional<Expr> epi = t.expr("epilogue", edt, enames, in.size());  // the sum: by its name, y
  if (!epi && in.size() > 2)
    t.error("inputs", fmt::format("a contraction takes two inputs (a, b) and, with an 'epilogue', up to {} more; "
                                  "got {} without one", kMaxContractEpilogueInputs, in.size()));
  Expr renumbered;
  if (epi) {
    const std::vector<bool> used = used_inputs(*epi, edt.size());
    if (!used[sum]) t.error("epilogue", "the epilogue must use y (the sum)");
    if (used[0] || used[1])
      t.error("epilogue", "the epilogue reads y (the sum) and the inputs after a and b, not a or b (x and in0 name a, "
                          "in1 names b; y is the sum)");
    for (std::size_t k = 2; k < in.size(); ++k)
      if (!used[k])
        t.error("epilogue", fmt::format("the epilogue does not use input {} ({}); every input after a and b is the "
                                        "epilogue's", k, t.input_label(k)));
    std::vector<int> map(edt.size(), 0);  // y first, then the inputs after a and b
    for (std::size_t k = 2; k < in.size(); ++k) map[k] = int(k) - 1;
    renumbered = renumber_inputs(*epi, map);
  }
  const std::optional<std::string> precision = t.string("precision");
  if (precision && *precision != "tf32" && *precision != "highest")
    t.error("precision", fmt::format("unknown precision '{}' (expected: highest, tf32)", *precision));
  const bool tf32 = precision && *precision == "tf32";
  try {
    return make_contract_spec(in[0], in[1], out, epi ? &renumbered : nullptr, tf32);
  } catch (const Error& e) {
    t.error(tf32 ? "precision" : epi ? "epilogue" : output ? "output" : "inputs", e.what());
  }
}

namespace {

// `inputs` are a's and b's dtypes; `output` defaults to their promotion (Nx's rule).
KernelSpec contract_from_manifest(const ManifestTable& t, const Expr&, std::optional<DType> output) {
  return contract_manifest_spec(t, output, "contraction", "matmul", promote);
}

std::span<const std::string_view> contract_op_names() {
  static constexpr std::string_view names[] = {"matmul"};
  return names;
}

std::vector<KernelSpec> contract_expand_op(std::string_view name, const std::vector<DType>& dtypes) {
  std::vector<KernelSpec> out;
  if (name != "matmul") return out;
  for (DType d : dtypes)
    if (d != DType::pred) out.push_back(make_contract_spec(d, d, d));
  return out;
}

std::string contract_api_functions(const ApiFunction& f) {
  return contract_api_function(f, "kiln::ContractCall", "kiln::run_contract_kernel");
}

}  // namespace

DType contract_accumulator_dtype(DType a, DType b, DType out) {
  if (a == DType::f64 || b == DType::f64 || out == DType::f64) return DType::f64;
  if (is_float(out)) return DType::f32;
  return compute_dtype(out);
}

bool spec_contract_tf32(const KernelSpec& spec) { return spec.attribute("precision") == "tf32"; }
bool contract_epilogue_is_bias(const KernelSpec& spec) {
  const Expr& e = spec.epilogue;
  if (spec.inputs.size() != 3 || e.nodes().empty() || spec.inputs[2] != spec.output) return false;
  const Node& r = e.node(e.root());
  if (r.kind != NodeKind::op || r.op != Op::add) return false;
  auto is_input = [&](NodeId id, int index) {  // the bias may be converted to the accumulator first
    const Node* n = &e.node(id);
    if (n->dtype != contract_accumulator_dtype(spec.inputs[0], spec.inputs[1], spec.output)) return false;
    if (index == 1 && n->kind == NodeKind::op && n->op == Op::as_type) n = &e.node(n->args[0]);
    return n->kind == NodeKind::input && n->input == index;
  };
  return (is_input(r.args[0], 0) && is_input(r.args[1], 1)) || (is_input(r.args[0], 1) && is_input(r.args[1], 0));
}

bool contract_wgmma_fits(const PlanRequest& r, std::string* why) {
  KilnContractParams p{};
  std::string reason;
  std::string* out = why ? why : &reason;
  if (!contract_geometry(r, p, out, kContractMmaTileM, kContractMmaTileN)) return false;
  p.a = r.inputs[0].address;
  p.b = r.inputs[1].address;
  for (int o = 0; o < 2; ++o) {
    TensorMapRequest t;
    bool mn = false;
    if (!wgmma_operand_map(p, o, ContractTile{kContractMmaTileM, kContractMmaTileN, kWgmmaTileK}, t, mn, out)) return false;
  }
  return true;
}

KernelSpec make_contract_spec(DType a, DType b, DType out, const Expr* epilogue, bool tf32) {
  for (DType t : {a, b, out})
    if (t == DType::pred)
      fail(ErrorCode::dtype_mismatch, fmt::format("a contraction takes numeric operands, not pred ({} x {} -> {}; "
                                                  "cast to u8 first)", dtype_name(a), dtype_name(b), dtype_name(out)));
  if (!is_float(out) && (is_float(a) || is_float(b)))
    fail(ErrorCode::dtype_mismatch, fmt::format("an integer output ({}) needs integer inputs, not {} x {}",
                                                dtype_name(out), dtype_name(a), dtype_name(b)));
  KernelSpec spec;
  spec.family = "contract";
  spec.inputs = {a, b};
  spec.output = out;
  spec.block_size = kContractThreads;
  if (tf32) {
    if (contract_accumulator_dtype(a, b, out) != DType::f32)
      fail(ErrorCode::invalid_argument, fmt::format("precision tf32 applies to products summed in f32, not {} x {} -> {}",
                                                    dtype_name(a), dtype_name(b), dtype_name(out)));
    spec.set_attribute("precision", "tf32");
  }
  // The expression names the product the kernel sums (for the canonical text and docs).
  const DType acc = contract_accumulator_dtype(a, b, out);
  spec.expr.set_root(spec.expr.apply(Op::multiply, {spec.expr.cast(spec.expr.input(0, a), acc),
                                                     spec.expr.cast(spec.expr.input(1, b), acc)}));
  if (epilogue && !epilogue->nodes().empty()) {
    const std::vector<DType>& ins = epilogue->input_dtypes();
    if (ins.empty() || ins[0] != acc)
      fail(ErrorCode::dtype_mismatch,
           fmt::format("the epilogue's y (input 0) must be the sum's dtype, {} ({} x {} -> {}), not {}", dtype_name(acc),
                       dtype_name(a), dtype_name(b), dtype_name(out), ins.empty() ? "absent" : dtype_name(ins[0])));
    if (ins.size() > std::size_t(1 + kMaxContractEpilogueInputs))
      fail(ErrorCode::invalid_argument, fmt::format("an epilogue reads y and up to {} operands, not {}",
                                                    kMaxContractEpilogueInputs, ins.size() - 1));
    for (std::size_t k = 1; k < ins.size(); ++k) spec.inputs.push_back(ins[k]);
    spec.epilogue = epilogue->pruned();
  }
  return spec;
}

std::optional<Expr> contract_fused_epilogue(const KernelSpec& spec, const Expr& consumer, int slot,
                                            std::size_t more_operands, std::string* why) {
  const std::size_t own = spec.inputs.size() - 2;
  if (own + more_operands > std::size_t(kMaxContractEpilogueInputs)) {
    if (why) *why = fmt::format("the epilogue would read {} operands (at most {})", own + more_operands,
                                kMaxContractEpilogueInputs);
    return std::nullopt;
  }
  // y, the kernel's own operands, then the consumer's; the kernel's output value (its epilogue and
  // conversion) feeds the consumer's |slot|.
  Expr e;
  std::vector<NodeId> store_in{e.input(0, acc_of(spec))};
  for (std::size_t k = 0; k < own; ++k) store_in.push_back(e.input(int(1 + k), spec.inputs[2 + k]));
  const NodeId value = inline_expr(e, contract_store_expr(spec), store_in);
  std::vector<NodeId> in;
  int next_input = int(1 + own);
  for (int k = 0; k < consumer.num_inputs(); ++k)
    in.push_back(k == slot ? value : e.input(next_input++, consumer.input_dtypes()[std::size_t(k)]));
  e.set_root(inline_expr(e, consumer, in));
  return e;
}

// kiln::jit: an elementwise consumer of the product fused into the epilogue. The output's logical
// shape splits, from the back, into the dimensions merged into N, into M, then into each batch
// dimension of the request; an operand's strides over a group must merge into one (as a view's
// axes merge), else it cannot be read as an epilogue operand.
std::optional<EpilogueFusion> contract_fuse_epilogue(const KernelSpec& spec, std::span<const std::int64_t> request,
                                                     std::span<const int>, const Expr& consumer, int slot,
                                                     const std::vector<std::int64_t>& out_shape,
                                                     const std::vector<std::vector<std::int64_t>>& strides,
                                                     std::string* why) {
  auto no = [&](std::string reason) -> std::optional<EpilogueFusion> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  if (request.size() < 3) return no("not a contraction request");
  const std::size_t groups = request.size() - 1;  // batch..., M, N (K is not in the output)
  // group[d]: which request dimension output dimension d belongs to.
  std::vector<std::size_t> group(out_shape.size());
  std::size_t d = out_shape.size();
  for (std::size_t g = groups; g-- > 0;) {
    std::int64_t product = 1;
    while (d > 0 && (product < request[g] || out_shape[d - 1] == 1)) {
      if (product * out_shape[d - 1] > request[g]) break;
      product *= out_shape[--d];
      group[d] = g;
    }
    if (product != request[g]) return no("the consumer's shape does not split into the product's dimensions");
  }
  for (std::size_t i = 0; i < d; ++i)
    if (out_shape[i] != 1) return no("the consumer's shape has more elements than the product");
  EpilogueFusion f;
  for (const std::vector<std::int64_t>& st : strides) {
    std::vector<std::int64_t> merged(request.size(), 0);
    std::vector<bool> seen(groups, false);
    std::vector<std::int64_t> next(groups, 0);  // the stride the next (outer) dimension must have
    for (std::size_t i = out_shape.size(); i-- > d;) {
      if (out_shape[i] == 1) continue;
      const std::size_t g = group[i];
      if (!seen[g]) {
        merged[g] = st[i];
        seen[g] = true;
      } else if (st[i] != next[g]) {
        return no("an operand's strides do not merge over the product's dimensions");
      }
      next[g] = st[i] * out_shape[i];
    }
    f.strides.push_back(std::move(merged));
  }
  const std::optional<Expr> e = contract_fused_epilogue(spec, consumer, slot, strides.size(), why);
  if (!e) return std::nullopt;
  try {
    f.spec = make_contract_spec(spec.inputs[0], spec.inputs[1], e->dtype(e->root()), &*e, spec_contract_tf32(spec));
    f.spec = contract_same_variant(spec, f.spec);
  } catch (const Error& err) {
    return no(err.what());
  }
  if (!contract_spec_supported(f.spec, why)) return std::nullopt;  // e.g. a pred result: the consumer stays out
  return f;
}

const Family kContractFamily = {
    "contract", kEntryPoints, kSlots, kManifestKeys, contract_family_supports, contract_emit_cuda, contract_emit_glsl,
    contract_plan, contract_run_cpu, contract_cost,
    "a batched matrix product over strided operands (dot, matmul): out[b, m, n] = sum_k a[b, m, k] * b[b, k, n]",
    contract_from_manifest, contract_op_names, contract_expand_op, contract_api_functions, "runtime/contract.hpp",
    /*elementwise=*/false, /*pointwise_inputs=*/false, contract_fuse_epilogue, /*jit_fast_compile=*/false,
    contract_params_bytes,
};

}  // namespace kiln
