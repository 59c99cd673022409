// The contraction family's kernel variants beside the portable k-order kernel (contract.cpp): the
// tensor-core kernels on CUDA (path mma: mma.sync, templates/cuda/contract_mma.cuh and
// conv_mma.cuh; path wgmma: sm_90a, contract_wgmma.cuh and conv_wgmma.cuh) and the
// cooperative-matrix kernel on Vulkan (path coopmat: templates/glsl/coopmat.glsl with
// contract_coopmat.glsl or conv_coopmat.glsl). A
// variant is a spec attribute, so it is part of the kernel's name; each takes two f16 (coopmat) or
// f16/bf16 (CUDA) operands summed in f32 and every epilogue and output the portable kernel takes.
#include "codegen/families/contract.hpp"
#include "codegen/families/loop_count.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>

#include <fmt/format.h>

#include "codegen/emit.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"

namespace kiln {

namespace {

// The tile product (glsl/coopmat.glsl) with each family's operands: [contraction, conv].
constexpr ContractTemplate kCoopmat[2] = {
    {"gemm", "", "", "", "glsl/contract_coopmat.glsl", kContractThreads, {}, "glsl/contract_params.glsl", "glsl/coopmat.glsl"},
    {"conv", "", "", "", "glsl/conv_coopmat.glsl", kContractThreads, {}, "glsl/conv_params.glsl", "glsl/coopmat.glsl"}};

bool parse_fragment(std::string_view text, CoopmatShape& s) {
  int* fields[3] = {&s.m, &s.n, &s.k};
  for (int i = 0; i < 3; ++i) {
    const std::size_t x = i < 2 ? text.find('x') : text.size();
    if (x == std::string_view::npos || x == 0 || x > 3) return false;
    int v = 0;
    for (char c : text.substr(0, x)) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *fields[i] = v;
    text.remove_prefix(std::min(text.size(), x + 1));
  }
  return true;
}

}  // namespace

bool contract_family_supports(const KernelSpec& spec, Target target, std::string* why) {
  if (!contract_spec_supported(spec, why)) return false;
  const char* kind = spec.family == "conv" ? "conv" : "contraction";
  if (spec_contract_coopmat(spec)) {
    if (target != Target::glsl) {
      if (why) *why = fmt::format("cooperative-matrix {} kernels are Vulkan-only", kind);
      return false;
    }
    return contract_coopmat_applies(spec, why);
  }
  if (!spec_contract_tensor_cores(spec)) return true;
  if (target != Target::cuda) {
    if (why) *why = spec_contract_wgmma(spec) ? fmt::format("wgmma {} kernels are CUDA-only (sm_90a)", kind)
                                              : fmt::format("tensor-core (mma.sync) {} kernels are CUDA-only", kind);
    return false;
  }
  return contract_tensor_cores_apply(spec, why);
}

bool spec_contract_tensor_cores(const KernelSpec& spec) {
  return spec.attribute("path") == "mma" || spec.attribute("path") == "wgmma";
}
bool spec_contract_wgmma(const KernelSpec& spec) { return spec.attribute("path") == "wgmma"; }
bool spec_contract_coopmat(const KernelSpec& spec) { return spec.attribute("path") == "coopmat"; }

bool contract_tensor_cores_apply(const KernelSpec& spec, std::string* why) {
  auto no = [&](const auto& reason) {  // (formatted only when asked for: this is on every contraction's path)
    if (why) *why = reason();
    return false;
  };
  if (spec.family != "contract" && spec.family != "conv")
    return no([&] { return fmt::format("{} is not a contraction or conv kernel", spec.name()); });
  const DType a = spec.inputs.at(0), b = spec.inputs.at(1);
  if (a != b || (a != DType::f16 && a != DType::bf16))
    return no([&] {
      return fmt::format("the tensor-core kernels take two f16 or two bf16 operands, not {} x {}", dtype_name(a),
                         dtype_name(b));
    });
  if (contract_accumulator_dtype(a, b, spec.output) != DType::f32)
    return no([&] {
      return fmt::format("the tensor-core kernels sum in f32, not {}",
                         dtype_name(contract_accumulator_dtype(a, b, spec.output)));
    });
  return true;
}

KernelSpec contract_tensor_core_spec(const KernelSpec& spec) {
  std::string why;
  if (!contract_tensor_cores_apply(spec, &why)) fail(ErrorCode::invalid_argument, why);
  KernelSpec t = spec;
  t.set_attribute("path", "mma");
  return t;
}

KernelSpec contract_wgmma_spec(const KernelSpec& spec, int tile_m, int tile_n) {
  std::string why;
  if (!contract_tensor_cores_apply(spec, &why)) fail(ErrorCode::invalid_argument, why);
  const bool conv = spec.family == "conv";
  const bool known = (tile_m == 128 && tile_n == 128) || (!conv && ((tile_m == 64 && tile_n == 128) || (tile_m == 128 && tile_n == 256)));
  if (!known)
    fail(ErrorCode::invalid_argument, fmt::format("the wgmma {} kernel has tiles of {}, not {} x {}", spec.family,
                                                  conv ? "128 x 128" : "128 x 128, 64 x 128 or 128 x 256", tile_m, tile_n));
  KernelSpec t = spec;
  t.set_attribute("path", "wgmma");
  t.set_attribute("arch", "sm_90a");
  std::erase_if(t.attributes, [](const auto& kv) { return kv.first == "tile"; });  // (a variant's, given back)
  if (tile_m != 128 || tile_n != 128) t.set_attribute("tile", fmt::format("{}x{}", tile_m, tile_n));  // (128 x 128: none)
  t.block_size = 128 * (1 + tile_m / 64);
  return t;
}

ContractTile contract_wgmma_tile_for(std::int64_t batch, std::int64_t m, std::int64_t n) {
  if (m <= 64) return {64, 128, 64};
  const std::int64_t wide = batch * ((m + 127) / 128) * ((n + 255) / 256);
  return n > 128 && wide >= kWgmmaWideTiles ? ContractTile{128, 256, 64} : ContractTile{128, 128, 64};
}

ContractTile contract_tile(const KernelSpec& spec) {
  if (spec_contract_wgmma(spec)) {
    const std::string_view tile = spec.attribute("tile");
    return tile == "64x128" ? ContractTile{64, 128, 64} : tile == "128x256" ? ContractTile{128, 256, 64} : ContractTile{128, 128, 64};
  }
  if (spec_contract_tensor_cores(spec) || spec_contract_coopmat(spec)) return {kContractMmaTileM, kContractMmaTileN, 32};
  return {kContractTileM, kContractTileN, kContractTileK};
}

std::uint64_t contract_loop_iterations(const KernelSpec& spec, std::int64_t tiles, std::int64_t k, std::uint32_t groups) {
  const ContractTile t = contract_tile(spec);
  const bool cm = spec_contract_coopmat(spec);
  const double per_step = !cm ? 1 : spec.family == "conv" ? 300 : 120, per_tile = cm ? 200 : 16;
  const double each = std::ceil(double(std::max<std::int64_t>(tiles, 0)) / std::max(groups, 1u));
  const double n = each * (std::ceil(double(std::max<std::int64_t>(k, 0)) / t.k) * per_step + per_tile);
  return loop_count(n);
}

// ---- Vulkan: cooperative matrices ----------------------------------------------------------------

bool coopmat_shape_fits(const CoopmatShape& s, std::string* why) {
  auto in = [](int v, std::initializer_list<int> set) { return std::find(set.begin(), set.end(), v) != set.end(); };
  if (in(s.m, {8, 16, 32}) && in(s.n, {8, 16, 32}) && in(s.k, {8, 16, 32}) && s.m * s.n <= 256) return true;
  if (why)
    *why = fmt::format("the cooperative-matrix kernel takes fragments of M, N and K in 8, 16 or 32 with M x N at most "
                       "256, not {}x{}x{}", s.m, s.n, s.k);
  return false;
}

bool contract_coopmat_applies(const KernelSpec& spec, std::string* why) {
  auto no = [&](const auto& reason) {  // (formatted only when asked for: this is on every contraction's path)
    if (why) *why = reason();
    return false;
  };
  if (spec.family != "contract" && spec.family != "conv")
    return no([&] { return fmt::format("{} kernels have no cooperative-matrix variant", spec.family); });
  const DType a = spec.inputs.at(0), b = spec.inputs.at(1);
  if (a != DType::f16 || b != DType::f16)
    return no([&] {
      return fmt::format("the cooperative-matrix kernel takes two f16 operands (VK_NV_cooperative_matrix has no "
                         "bf16), not {} x {}", dtype_name(a), dtype_name(b));
    });
  if (contract_accumulator_dtype(a, b, spec.output) != DType::f32)
    return no([&] {
      return fmt::format("the cooperative-matrix kernel sums in f32, not {}",
                         dtype_name(contract_accumulator_dtype(a, b, spec.output)));
    });
  if (spec_contract_coopmat(spec)) {
    CoopmatShape s;
    if (!parse_fragment(spec.attribute("fragment"), s))
      return no([&] { return fmt::format("fragment '{}' is not MxNxK", spec.attribute("fragment")); });
    if (!coopmat_shape_fits(s, why)) return false;
  }
  return true;
}

KernelSpec contract_coopmat_spec(const KernelSpec& spec, const CoopmatShape& shape, bool emulated) {
  std::string why;
  if (!contract_coopmat_applies(spec, &why) || !coopmat_shape_fits(shape, &why)) fail(ErrorCode::invalid_argument, why);
  KernelSpec t = spec;
  t.set_attribute("path", "coopmat");
  t.set_attribute("fragment", fmt::format("{}x{}x{}", shape.m, shape.n, shape.k));
  if (emulated) t.set_attribute("emulate", "1");
  return t;
}

KernelSpec contract_same_variant(const KernelSpec& variant, const KernelSpec& spec) {
  if (spec_contract_wgmma(variant)) {
    const ContractTile tile = contract_tile(variant);
    return contract_wgmma_spec(spec, tile.m, tile.n);
  }
  if (spec_contract_tensor_cores(variant)) return contract_tensor_core_spec(spec);
  if (spec_contract_coopmat(variant)) {
    CoopmatShape s;
    parse_fragment(variant.attribute("fragment"), s);
    return contract_coopmat_spec(spec, s, variant.attribute("emulate") == "1");
  }
  return spec;
}

std::string contract_coopmat_glsl(const KernelSpec& spec) {
  CoopmatShape s;
  parse_fragment(spec.attribute("fragment"), s);
  const bool emulated = spec.attribute("emulate") == "1";
  std::string defines = "#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require\n";
  if (!emulated)
    defines += "#extension GL_KHR_shader_subgroup_basic : require\n#extension GL_KHR_memory_scope_semantics : require\n"
               "#extension GL_NV_cooperative_matrix : require\n";
  defines += fmt::format("#define KILN_CM_M {}\n#define KILN_CM_N {}\n#define KILN_CM_K {}\n#define KILN_CM_EMULATED {}",
                         s.m, s.n, s.k, emulated ? 1 : 0);
  if (spec.family != "conv") defines += "\n#define KILN_CM_CHUNKS 1";  // (conv gathers windows element by element)
  return contract_glsl_source(spec, kCoopmat[spec.family == "conv"], defines);
}

}  // namespace kiln
