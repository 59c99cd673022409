// The conv family: Nx's conv (strides, padding, input and kernel dilation, feature and batch
// groups, 1-3 spatial dimensions, any layout through strides) as an implicit GEMM. runtime/conv.cpp
// turns the options into the request (conv.hpp); templates/cuda/conv.cuh and glsl/conv.glsl run the
// contraction family's tile product — a 64 x 64 output tile per block of 256 threads, K in steps of
// 16 through shared memory, a 4 x 4 register block per thread, each output summed in k order with
// fused multiply-adds — whose a tile is gathered from the input windows as it is staged: rows are
// (image, output position), columns output channels, k (input channel, kernel position); positions
// in the padding or between dilated input elements read 0. The emitted hooks (operand loads, the
// epilogue, the store) are the contraction family's (contract.cpp).
#include "codegen/families/conv.hpp"
#include "codegen/families/contract_cpu.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "codegen/eval.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"

namespace kiln {

namespace {

// The kernel ABI (templates/cuda/conv.cuh and templates/glsl/conv.glsl declare the same layout).
// Strides in elements; [j] per spatial dimension, the unused ones 0.
struct KilnConvParams {
  std::uint64_t out;
  std::uint64_t a;  // the input
  std::uint64_t b;  // the kernel
  std::uint64_t ext[kMaxContractEpilogueInputs];  // the epilogue's operands (0: none)
  std::int64_t groups, m, n, k;  // per group: M = images x output positions, N, K = C x kernel positions
  std::int64_t tiles_m, tiles_n;
  std::int64_t rank, batch, cg;  // spatial dimensions, images, input channels per group
  std::int64_t out_size[kMaxConvSpatial], k_size[kMaxConvSpatial], in_size[kMaxConvSpatial];
  std::int64_t stride[kMaxConvSpatial], pad_lo[kMaxConvSpatial], kdil[kMaxConvSpatial], idil[kMaxConvSpatial];
  std::int64_t in_group, in_n, in_c, in_sp[kMaxConvSpatial];
  std::int64_t kn_group, kn_o, kn_c, kn_sp[kMaxConvSpatial];
  std::int64_t out_group, out_n, out_o, out_sp[kMaxConvSpatial];
  std::int64_t ext_group[kMaxContractEpilogueInputs], ext_n[kMaxContractEpilogueInputs],
      ext_o[kMaxContractEpilogueInputs], ext_sp[kMaxContractEpilogueInputs][kMaxConvSpatial];
  std::int64_t channels_last;  // k = (kernel position, input channel) instead of (input channel, position)
};
static_assert(sizeof(KilnConvParams) == 528);

constexpr FamilyEntryPoint kEntryPoints[] = {{"conv", sizeof(KilnConvParams)}};
constexpr std::string_view kSlots[] = {"expr", "epilogue"};
constexpr std::string_view kManifestKeys[] = {"name",    "family",   "op",       "inputs",
                                              "output",  "targets",  "epilogue", "precision"};
constexpr ContractTemplate kConv = {"conv", "cuda/conv.cuh", "KilnConvParams", "conv_run", "glsl/conv.glsl",
                                    kContractThreads, {}, "glsl/conv_params.glsl"};
// On the tensor cores (CUDA sm_80+, two f16 or two bf16 operands summed in f32): the same entry
// point, another template (128 x 128 tiles).
constexpr ContractTemplate kConvMmaBf16 = {"conv", "cuda/conv_mma.cuh", "KilnConvParams", "conv_mma_run_bf16", ""};
constexpr ContractTemplate kConvMmaF16 = {"conv", "cuda/conv_mma.cuh", "KilnConvParams", "conv_mma_run_f16", ""};
// On Hopper's (sm_90a: wgmma; 384 threads, the contraction's ring of stages in dynamic shared memory).
constexpr ContractTemplate kConvWgmma[2] = {
    {"conv", "cuda/conv_wgmma.cuh", "KilnConvParams", "conv_wgmma_run_f16", "", 384, "kiln::kWgSharedBytes"},
    {"conv", "cuda/conv_wgmma.cuh", "KilnConvParams", "conv_wgmma_run_bf16", "", 384, "kiln::kWgSharedBytes"}};

constexpr int kAxesPerDim = 5;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The request as the kernel's params (addresses left 0) for tiles of |tile_m| x |tile_n|; false with
// |why| when it is malformed.
bool conv_geometry(const PlanRequest& r, KilnConvParams& p, std::string* why, std::int64_t tile_m = kContractTileM,
                   std::int64_t tile_n = kContractTileN) {
  auto no = [&](std::string reason) {
    *why = std::move(reason);
    return false;
  };
  if (r.axes.empty()) return no("a conv request needs its geometry in axes (conv_request_axes)");
  const int d = r.axes[0];
  if (d < 1 || d > kMaxConvSpatial)
    return no(fmt::format("{} spatial dimensions; conv kernels take 1 to {}", d, kMaxConvSpatial));
  const std::size_t nd = std::size_t(d);
  const std::size_t want_axes = 1 + (nd + 2) + kAxesPerDim * nd + 1;
  if (r.axes.size() != want_axes)
    return no(fmt::format("{} axes for {} spatial dimensions; expected {}", r.axes.size(), d, want_axes));
  p.channels_last = r.axes.back() != 0;
  if (r.shape.size() != 2 * nd + 4 || r.inputs.size() < 2 || r.inputs.size() > std::size_t(2 + kMaxContractEpilogueInputs))
    return no(fmt::format("{} operands over a space of rank {}; a conv takes the input, the kernel and up to {} "
                          "epilogue operands over [G, N, o..., O, C, k...]",
                          r.inputs.size(), r.shape.size(), kMaxContractEpilogueInputs));
  for (const PlanOperand& o : r.inputs)
    if (o.strides.size() != r.shape.size()) return no("the operands' strides must run over the whole iteration space");
  for (std::int64_t s : r.shape)
    if (s < 0) return no("negative extent in a conv request");
  const auto& sh = r.shape;
  const auto& si = r.inputs[0].strides;
  const auto& sk = r.inputs[1].strides;
  p.rank = d;
  p.groups = sh[0];
  p.batch = sh[1];
  p.n = sh[2 + nd];
  p.cg = sh[3 + nd];
  p.m = p.batch;
  p.k = p.cg;
  p.in_group = si[0];
  p.in_n = si[1];
  p.in_c = si[3 + nd];
  p.kn_group = sk[0];
  p.kn_o = sk[2 + nd];
  p.kn_c = sk[3 + nd];
  for (std::size_t j = 0; j < nd; ++j) {
    p.out_size[j] = sh[2 + j];
    p.k_size[j] = sh[4 + nd + j];
    p.m *= p.out_size[j];
    p.k *= p.k_size[j];
    p.in_sp[j] = si[2 + j];
    p.kn_sp[j] = sk[4 + nd + j];
    const int* g = &r.axes[1 + (nd + 2) + kAxesPerDim * j];
    p.stride[j] = g[0];
    p.pad_lo[j] = g[1];
    p.kdil[j] = g[2];
    p.idil[j] = g[3];
    p.in_size[j] = g[4];
    if (p.stride[j] < 1 || p.kdil[j] < 1 || p.idil[j] < 1 || p.in_size[j] < 0)
      return no(fmt::format("spatial dimension {}: stride {}, kernel dilation {}, input dilation {} must be >= 1 and "
                            "the input extent {} >= 0", j, p.stride[j], p.kdil[j], p.idil[j], p.in_size[j]));
  }
  // The output: dense over [N, G * O, o...] permuted.
  std::vector<std::int64_t> canonical{p.batch, p.groups * p.n};
  for (std::size_t j = 0; j < nd; ++j) canonical.push_back(p.out_size[j]);
  std::vector<std::int64_t> cs(nd + 2, 0);
  std::vector<bool> seen(nd + 2, false);
  std::int64_t dense = 1;
  for (std::size_t i = nd + 2; i-- > 0;) {
    const int a = r.axes[1 + i];
    if (a < 0 || std::size_t(a) >= nd + 2 || seen[std::size_t(a)])
      return no("the output permutation must name each of the output's axes once");
    seen[std::size_t(a)] = true;
    cs[std::size_t(a)] = dense;
    dense *= canonical[std::size_t(a)];
  }
  p.out_n = cs[0];
  p.out_o = cs[1];
  p.out_group = p.n * p.out_o;
  for (std::size_t j = 0; j < nd; ++j) p.out_sp[j] = cs[2 + j];
  for (std::size_t e = 2; e < r.inputs.size(); ++e) {
    const auto& se = r.inputs[e].strides;
    p.ext_group[e - 2] = se[0];
    p.ext_n[e - 2] = se[1];
    p.ext_o[e - 2] = se[2 + nd];
    for (std::size_t j = 0; j < nd; ++j) p.ext_sp[e - 2][j] = se[2 + j];
  }
  p.tiles_m = ceil_div(p.m, tile_m);
  p.tiles_n = ceil_div(p.n, tile_n);
  return true;
}

// Whether the cooperative-matrix kernel takes geometry |p| (conv_coopmat_fits).
bool coopmat_fits(const KilnConvParams& p, std::string* why) {
  constexpr std::int64_t kLimit = std::int64_t(1) << 31;
  if (p.m < kLimit && p.k < kLimit) return true;
  if (why)
    *why = fmt::format("the cooperative-matrix conv kernel takes fewer than 2^31 output rows and products per output "
                       "(32-bit indices); this request has {} and {}", p.m, p.k);
  return false;
}

LaunchPlan conv_plan(const KernelSpec& spec, const PlanRequest& r, std::string* why) {
  LaunchPlan plan;
  KilnConvParams p{};
  const ContractTile tile = contract_tile(spec);
  if (!conv_geometry(r, p, why, tile.m, tile.n)) return plan;
  if (spec_contract_coopmat(spec) && !coopmat_fits(p, why)) return plan;
  p.out = r.out;
  p.a = r.inputs[0].address;
  p.b = r.inputs[1].address;
  for (std::size_t e = 2; e < r.inputs.size(); ++e) p.ext[e - 2] = r.inputs[e].address;
  plan.function = 0;
  plan.groups_x = std::uint32_t(std::clamp<std::int64_t>(p.groups * p.tiles_m * p.tiles_n, 1, 65535));
  plan.loop_iterations = contract_loop_iterations(spec, p.groups * p.tiles_m * p.tiles_n, p.k, plan.groups_x);
  plan.params = params_of(p);
  return plan;
}

// ---- the CPU reference: each output's products summed in long double (integers wrapping) --------

// Output row m of group g: the input's offset of its image and window origin, the output's offset.
struct Row {
  std::int64_t in = 0, out = 0, ext[kMaxContractEpilogueInputs] = {0, 0}, origin[kMaxConvSpatial] = {0, 0, 0};
};
Row row_of(const KilnConvParams& p, std::int64_t g, std::int64_t m) {
  Row w;
  std::int64_t rem = m;
  for (std::int64_t j = p.rank; j-- > 0;) {
    const std::int64_t o = rem % p.out_size[j];
    rem /= p.out_size[j];
    w.origin[j] = o * p.stride[j] - p.pad_lo[j];
    w.out += o * p.out_sp[j];
    for (int e = 0; e < kMaxContractEpilogueInputs; ++e) w.ext[e] += o * p.ext_sp[e][j];
  }
  w.in = g * p.in_group + rem * p.in_n;
  w.out += g * p.out_group + rem * p.out_n;
  for (int e = 0; e < kMaxContractEpilogueInputs; ++e) w.ext[e] += g * p.ext_group[e] + rem * p.ext_n[e];
  return w;
}

void conv_run_cpu(const KernelSpec& spec, const PlanRequest& r) {
  KilnConvParams p{};
  std::string why;
  if (!conv_geometry(r, p, &why)) fail(ErrorCode::invalid_argument, why);
  const auto* in = reinterpret_cast<const std::byte*>(r.inputs[0].address);
  const auto* kern = reinterpret_cast<const std::byte*>(r.inputs[1].address);
  auto* out = reinterpret_cast<std::byte*>(r.out);
  const std::int64_t ea = std::int64_t(dtype_size(spec.inputs[0])), eb = std::int64_t(dtype_size(spec.inputs[1])),
                     eo = std::int64_t(dtype_size(spec.output));
  ContractCpuSum sum(spec);
  const std::size_t n_ext = spec.inputs.size() - 2;
  for (std::int64_t g = 0; g < p.groups; ++g) {
    for (std::int64_t m = 0; m < p.m; ++m) {
      const Row w = row_of(p, g, m);
      for (std::int64_t n = 0; n < p.n; ++n) {
        sum.begin();
        for (std::int64_t k = 0; k < p.k; ++k) {
          // k = (input channel, kernel position) or (position, channel): channels_last; the
          // position's last dimension fastest.
          std::int64_t rem = k, ia = w.in, ib = g * p.kn_group + n * p.kn_o, ci = 0;
          if (p.channels_last) {
            ci = rem % p.cg;
            rem /= p.cg;
          }
          bool inside = true;
          for (std::int64_t j = p.rank; j-- > 0;) {
            const std::int64_t kj = rem % p.k_size[j];
            rem /= p.k_size[j];
            ib += kj * p.kn_sp[j];
            const std::int64_t q = w.origin[j] + kj * p.kdil[j];  // in the dilated input
            if (q < 0 || q % p.idil[j] != 0 || q / p.idil[j] >= p.in_size[j]) inside = false;
            else ia += q / p.idil[j] * p.in_sp[j];
          }
          if (!p.channels_last) ci = rem;
          // Padding and the holes of a dilated input read 0, times the kernel's element, as in the
          // kernels (0 x inf is NaN there too).
          static constexpr std::byte kZero[8] = {};
          sum.add(inside ? in + (ia + ci * p.in_c) * ea : kZero, kern + (ib + ci * p.kn_c) * eb);
        }
        const std::byte* ext[kMaxContractEpilogueInputs] = {nullptr, nullptr};
        for (std::size_t e = 0; e < n_ext; ++e)
          ext[e] = reinterpret_cast<const std::byte*>(r.inputs[2 + e].address) +
                   (w.ext[e] + n * p.ext_o[e]) * std::int64_t(dtype_size(spec.inputs[2 + e]));
        sum.store(out + (w.out + n * p.out_o) * eo, ext);
      }
    }
  }
}

std::string conv_emit_cuda(const KernelSpec& spec, FunctionSet) {
  if (!spec_contract_tensor_cores(spec)) return contract_cuda_source(spec, kConv);
  const bool bf16 = spec.inputs[0] == DType::bf16;
  if (spec_contract_wgmma(spec)) return contract_cuda_source(spec, kConvWgmma[bf16]);
  return contract_cuda_source(spec, bf16 ? kConvMmaBf16 : kConvMmaF16);
}
std::string conv_emit_glsl(const KernelSpec& spec, int) {
  return spec_contract_coopmat(spec) ? contract_coopmat_glsl(spec) : contract_glsl_source(spec, kConv);
}

FamilyCost conv_cost(const KernelSpec& spec) {
  FamilyCost c;  // per output element; the products depend on the geometry (the bench counts them)
  c.bytes_per_element = double(dtype_size(spec.output));
  return c;
}

KernelSpec conv_from_manifest(const ManifestTable& t, const Expr&, std::optional<DType> output) {
  KernelSpec spec = contract_manifest_spec(t, output, "convolution", "conv", conv_default_output);
  spec.family = "conv";
  return spec;
}

std::span<const std::string_view> conv_op_names() {
  static constexpr std::string_view names[] = {"conv"};
  return names;
}

std::vector<KernelSpec> conv_expand_op(std::string_view name, const std::vector<DType>& dtypes) {
  std::vector<KernelSpec> out;
  if (name != "conv") return out;
  for (DType d : dtypes)
    if (d != DType::pred) out.push_back(make_conv_spec(d, d, conv_default_output(d, d)));
  return out;
}

std::string conv_api_functions(const ApiFunction& f) {
  return contract_api_function(f, "kiln::ConvGeometry", "kiln::run_conv_kernel");
}

// kiln::jit: an elementwise consumer of the convolution fused into its epilogue. The consumer runs
// over the result's logical shape ([N, G * O, o...] in the request's output permutation); each
// of its other operands' strides over it become strides over the request [G, N, o..., O, C, k...]
// (channel g * O + o; none over C and k), as run_conv_kernel makes the epilogue operands'.
std::optional<EpilogueFusion> conv_fuse_epilogue(const KernelSpec& spec, std::span<const std::int64_t> request,
                                                 std::span<const int> axes, const Expr& consumer, int slot,
                                                 const std::vector<std::int64_t>& out_shape,
                                                 const std::vector<std::vector<std::int64_t>>& strides,
                                                 std::string* why) {
  auto no = [&](std::string reason) -> std::optional<EpilogueFusion> {
    if (why) *why = std::move(reason);
    return std::nullopt;
  };
  const std::size_t nd = axes.empty() ? 0 : std::size_t(std::max(axes[0], 0));
  if (nd < 1 || request.size() != 2 * nd + 4 || axes.size() < 3 + nd) return no("not a conv request");
  std::vector<std::int64_t> canonical{request[1], request[0] * request[2 + nd]};
  for (std::size_t j = 0; j < nd; ++j) canonical.push_back(request[2 + j]);
  const std::span<const int> perm = axes.subspan(1, nd + 2);
  std::vector<std::int64_t> result(nd + 2);
  for (std::size_t i = 0; i < nd + 2; ++i) result[i] = canonical[std::size_t(perm[i])];
  if (out_shape != result)
    return no(fmt::format("the consumer runs over [{}], the convolution's result is [{}]", fmt::join(out_shape, ","),
                          fmt::join(result, ",")));
  const std::optional<Expr> e = contract_fused_epilogue(spec, consumer, slot, strides.size(), why);
  if (!e) return std::nullopt;
  EpilogueFusion f;
  for (const std::vector<std::int64_t>& st : strides) {
    std::vector<std::int64_t> cs(nd + 2, 0);  // over the canonical result
    for (std::size_t i = 0; i < nd + 2; ++i) cs[std::size_t(perm[i])] = out_shape[i] == 1 ? 0 : st[i];
    std::vector<std::int64_t> s{request[2 + nd] * cs[1], cs[0]};
    for (std::size_t j = 0; j < nd; ++j) s.push_back(cs[2 + j]);
    s.insert(s.end(), {cs[1], 0});
    s.insert(s.end(), nd, 0);
    f.strides.push_back(std::move(s));
  }
  try {
    f.spec = make_conv_spec(spec.inputs[0], spec.inputs[1], e->dtype(e->root()), &*e, spec_contract_tf32(spec));
    f.spec = contract_same_variant(spec, f.spec);  // (a tensor-core or cooperative-matrix kernel stays on it)
  } catch (const Error& err) {
    return no(err.what());
  }
  if (!contract_spec_supported(f.spec, why)) return std::nullopt;  // e.g. a pred result: the consumer stays out
  return f;
}

}  // namespace

std::vector<int> conv_request_axes(std::span<const int> output_permutation, std::span<const ConvDim> dims,
                                   bool channels_last) {
  std::vector<int> axes{int(dims.size())};
  axes.insert(axes.end(), output_permutation.begin(), output_permutation.end());
  for (const ConvDim& d : dims)
    for (std::int64_t v : {d.stride, d.pad_lo, d.kernel_dilation, d.input_dilation, d.input_size}) {
      if (v < INT_MIN || v > INT_MAX)
        fail(ErrorCode::invalid_argument, fmt::format("conv: {} does not fit the kernel's 32-bit geometry", v));
      axes.push_back(int(v));
    }
  axes.push_back(channels_last ? 1 : 0);
  return axes;
}

DType conv_default_output(DType a, DType b) { return to_floating(promote(a, b)); }

bool conv_coopmat_fits(const PlanRequest& r, std::string* why) {
  KilnConvParams p{};
  std::string ignored;
  return conv_geometry(r, p, why ? why : &ignored) && coopmat_fits(p, why);
}

KernelSpec make_conv_spec(DType a, DType b, DType out, const Expr* epilogue, bool tf32) {
  KernelSpec spec = make_contract_spec(a, b, out, epilogue, tf32);
  spec.family = "conv";
  return spec;
}

const Family kConvFamily = {
    "conv", kEntryPoints, kSlots, kManifestKeys, contract_family_supports, conv_emit_cuda, conv_emit_glsl, conv_plan,
    conv_run_cpu, conv_cost,
    "Nx's conv as an implicit GEMM: out[image, o, position] = sum over (channel, kernel position) of input windows x kernel",
    conv_from_manifest, conv_op_names, conv_expand_op, conv_api_functions, "runtime/conv.hpp",
    /*elementwise=*/false, /*pointwise_inputs=*/false, conv_fuse_epilogue,
};

}  // namespace kiln
