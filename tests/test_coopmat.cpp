// The Vulkan cooperative-matrix contraction and conv kernels (templates/glsl/coopmat.glsl with
// contract_coopmat.glsl, conv_coopmat.glsl) where no device has the extension: their SPIR-V for
// VK_NV_cooperative_matrix compiles and validates for every fragment shape they take (as the JIT
// compiles it), the variant refuses what it cannot do, an epilogue fused into it stays on it, and
// the device's shape is chosen from what a driver reports. They run in
// Vulkan/Contract.CooperativeMatrixKernelOnVulkan and Vulkan/Conv.CooperativeMatrixKernelOnVulkan
// (emulated on lavapipe, and on the matrix units where a device has them).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <spirv-tools/libspirv.hpp>

#include "codegen/emit.hpp"
#include "codegen/families/contract.hpp"
#include "codegen/families/conv.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"
#include "runtime/jit.hpp"
#include "runtime/vulkan/vk_device.hpp"

namespace kiln {
namespace {

constexpr std::uint32_t kCapVulkanMemoryModel = 5345, kCapCooperativeMatrixNV = 5357;

std::set<std::uint32_t> capabilities_of(const std::vector<unsigned char>& bytes) {
  std::vector<std::uint32_t> w(bytes.size() / 4);
  std::memcpy(w.data(), bytes.data(), w.size() * 4);
  std::set<std::uint32_t> caps;
  for (std::size_t i = 5; i < w.size() && (w[i] >> 16) != 0; i += w[i] >> 16)
    if ((w[i] & 0xFFFF) == 17 /* OpCapability */) caps.insert(w[i + 1]);
  return caps;
}

std::string validate(const std::vector<unsigned char>& bytes) {
  spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_3);
  std::string messages;
  tools.SetMessageConsumer([&](spv_message_level_t, const char*, const spv_position_t&, const char* m) {
    messages += std::string(m) + "\n";
  });
  std::vector<std::uint32_t> w(bytes.size() / 4);
  std::memcpy(w.data(), bytes.data(), w.size() * 4);
  return tools.Validate(w) ? "" : "spirv-val: " + messages;
}

TEST(EmitCoopmat, KernelsCompileAndValidateForEveryFragmentShape) {
  const Expr gelu_res = parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z",
                                   {DType::f32, DType::f32, DType::f16});
  const std::vector<KernelSpec> plain{make_contract_spec(DType::f16, DType::f16, DType::f16),
                                      make_contract_spec(DType::f16, DType::f16, DType::f32),
                                      make_contract_spec(DType::f16, DType::f16, DType::f16, &gelu_res),
                                      make_conv_spec(DType::f16, DType::f16, DType::f16),
                                      make_conv_spec(DType::f16, DType::f16, DType::f32, &gelu_res)};
  for (const CoopmatShape s : {CoopmatShape{16, 16, 16}, CoopmatShape{16, 8, 16}, CoopmatShape{16, 8, 8},
                               CoopmatShape{8, 8, 8}, CoopmatShape{32, 8, 16}})
    for (const KernelSpec& p : plain)
      for (bool emulated : {false, true}) {
        const KernelSpec spec = contract_coopmat_spec(p, s, emulated);
        SCOPED_TRACE(spec.canonical());
        std::string why;
        ASSERT_TRUE(target_supports(spec, Target::glsl, &why)) << why;
        EXPECT_FALSE(target_supports(spec, Target::cuda, &why));
        EXPECT_NE(why.find("Vulkan-only"), std::string::npos) << why;
        EXPECT_NE(spec.name(), p.name());
        const std::vector<unsigned char> spirv = compile_glsl_spirv(emit_glsl(spec, 0), spec.name());
        EXPECT_EQ(validate(spirv), "");
        const std::set<std::uint32_t> caps = capabilities_of(spirv);
        EXPECT_EQ(caps.count(kCapCooperativeMatrixNV), emulated ? 0u : 1u);
        if (!emulated) {
          EXPECT_EQ(caps.count(kCapVulkanMemoryModel), 1u);
        }
      }
  EXPECT_NE(contract_coopmat_spec(plain[0], {16, 16, 16}).name(), contract_coopmat_spec(plain[0], {16, 8, 16}).name());
  EXPECT_NE(contract_coopmat_spec(plain[0], {16, 16, 16}).name(),
            contract_coopmat_spec(plain[0], {16, 16, 16}, true).name());
}

TEST(EmitCoopmat, RefusesWhatItCannotDoAndKeepsFusedEpilogues) {
  auto refused = [](const KernelSpec& p, CoopmatShape s, const char* says) {
    try {
      contract_coopmat_spec(p, s);
      ADD_FAILURE() << p.canonical() << " was taken";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  refused(make_contract_spec(DType::bf16, DType::bf16, DType::bf16), {16, 16, 16}, "two f16 operands");
  refused(make_contract_spec(DType::f16, DType::f32, DType::f32), {16, 16, 16}, "two f16 operands");
  refused(make_contract_spec(DType::f16, DType::f16, DType::f64), {16, 16, 16}, "sums in f32, not f64");
  refused(make_conv_spec(DType::bf16, DType::bf16, DType::f32), {16, 16, 16}, "two f16 operands");
  KernelSpec reduce = make_contract_spec(DType::f16, DType::f16, DType::f16);
  reduce.family = "reduce";
  refused(reduce, {16, 16, 16}, "reduce kernels have no cooperative-matrix variant");
  refused(make_contract_spec(DType::f16, DType::f16, DType::f16), {16, 16, 64}, "not 16x16x64");
  refused(make_contract_spec(DType::f16, DType::f16, DType::f16), {32, 32, 16}, "at most 256");
  refused(make_contract_spec(DType::f16, DType::f16, DType::f16), {12, 16, 16}, "not 12x16x16");
  // A spec whose fragment attribute is not a shape is refused by the family, with the text.
  KernelSpec bad = contract_coopmat_spec(make_contract_spec(DType::f16, DType::f16, DType::f16), {16, 16, 16});
  bad.set_attribute("fragment", "16x16");
  std::string why;
  EXPECT_FALSE(target_supports(bad, Target::glsl, &why));
  EXPECT_NE(why.find("'16x16' is not MxNxK"), std::string::npos) << why;
  // kiln::jit's epilogue fusion keeps the variant: path, fragment and emulation carried over.
  const KernelSpec cm = contract_coopmat_spec(make_contract_spec(DType::f16, DType::f16, DType::f32), {16, 8, 16}, true);
  const Expr scale = parse_expr("x * 0.5", {DType::f32});
  const KernelSpec fused = contract_same_variant(cm, make_contract_spec(DType::f16, DType::f16, DType::f16, &scale));
  EXPECT_TRUE(spec_contract_coopmat(fused));
  EXPECT_EQ(fused.attribute("fragment"), "16x8x16");
  EXPECT_EQ(fused.attribute("emulate"), "1");
  EXPECT_EQ(contract_same_variant(make_contract_spec(DType::f16, DType::f16, DType::f32), fused).name(), fused.name());
}

// The conv kernel splits rows and k in 32-bit arithmetic: requests with 2^31 or more output rows or
// products per output are refused (the runtime keeps them on the portable kernel), with the sizes.
TEST(EmitCoopmat, ConvRequestsPastThirtyTwoBitIndicesAreRefused) {
  auto fits = [](std::int64_t images, std::int64_t positions, std::int64_t channels, std::string* why) {
    // 1-D, [G, N, o, O, C, k]: 8 output channels, a kernel of width 1, stride 1, no padding.
    const std::vector<std::int64_t> shape{1, images, positions, 8, channels, 1};
    const std::vector<std::int64_t> in{0, positions * channels, 1, 0, positions, 1}, kern{0, 0, 0, channels, 1, 1};
    const std::vector<PlanOperand> ops{{0, in}, {0, kern}};
    const std::vector<ConvDim> dims{{1, 0, 1, 1, positions}};
    const std::vector<int> axes = conv_request_axes(std::vector<int>{0, 1, 2}, dims, false);
    return conv_coopmat_fits(PlanRequest{shape, ops, 0, axes}, why);
  };
  std::string why;
  EXPECT_TRUE(fits(4, 1 << 20, 64, &why)) << why;
  EXPECT_TRUE(fits(2047, 1 << 20, 1, &why)) << why;  // 2^31 - 2^20 rows
  EXPECT_FALSE(fits(2048, 1 << 20, 1, &why));        // 2^31
  EXPECT_NE(why.find("this request has 2147483648 and 1"), std::string::npos) << why;
  EXPECT_FALSE(fits(1, 16, std::int64_t(1) << 31, &why));
  EXPECT_NE(why.find("this request has 16 and 2147483648"), std::string::npos) << why;
  EXPECT_FALSE(fits(1, 16, -1, &why));  // a malformed request: the geometry's reason
  EXPECT_NE(why.find("negative extent"), std::string::npos) << why;
}

// Shape lists of the kind a driver with matrix units reports for VK_NV_cooperative_matrix (f16
// shapes with f16 or f32 accumulators, an s8 shape), and what Kiln takes from them.
TEST(VulkanCoopmat, TheDeviceShapeIsTheLargestF16ShapeWithF32Sums) {
  auto shape = [](std::uint32_t m, std::uint32_t n, std::uint32_t k, VkComponentTypeNV ab, VkComponentTypeNV cd,
                  VkScopeNV scope = VK_SCOPE_SUBGROUP_NV) {
    VkCooperativeMatrixPropertiesNV p{VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    p.MSize = m, p.NSize = n, p.KSize = k, p.AType = p.BType = ab, p.CType = p.DType = cd, p.scope = scope;
    return p;
  };
  const VkComponentTypeNV f16 = VK_COMPONENT_TYPE_FLOAT16_NV, f32 = VK_COMPONENT_TYPE_FLOAT32_NV, s8 = VK_COMPONENT_TYPE_SINT8_NV;
  const std::vector<VkCooperativeMatrixPropertiesNV> nvidia{
      shape(16, 8, 16, f16, f16), shape(16, 8, 8, f16, f16), shape(16, 8, 16, f16, f32), shape(16, 8, 8, f16, f32),
      shape(8, 8, 32, s8, VK_COMPONENT_TYPE_SINT32_NV)};
  std::string listed;
  DeviceInfo::MatrixShape s = vk::choose_matrix_shape(nvidia, true, &listed);
  EXPECT_EQ(std::tuple(s.m, s.n, s.k), std::tuple(16, 8, 16));
  EXPECT_EQ(listed, "16x8x16 f16*f16+f16->f16, 16x8x8 f16*f16+f16->f16, 16x8x16 f16*f16+f32->f32, "
                    "16x8x8 f16*f16+f32->f32, 8x8x32 s8*s8+s32->s32");
  listed.clear();
  s = vk::choose_matrix_shape(nvidia, false, &listed);  // e.g. subgroups of 64, or KILN_COOPMAT=0
  EXPECT_EQ(s.m, 0);
  EXPECT_FALSE(listed.empty());
  // 16x16x16 beats 16x8x16; f16 sums, another scope and shapes the kernel cannot tile are skipped.
  const std::vector<VkCooperativeMatrixPropertiesNV> other{
      shape(16, 8, 16, f16, f32), shape(16, 16, 16, f16, f32), shape(32, 32, 16, f16, f32),
      shape(16, 16, 32, f16, f32, VK_SCOPE_WORKGROUP_NV), shape(16, 16, 32, f16, f16), shape(16, 16, 12, f16, f32)};
  listed.clear();
  s = vk::choose_matrix_shape(other, true, &listed);
  EXPECT_EQ(std::tuple(s.m, s.n, s.k), std::tuple(16, 16, 16));
  EXPECT_NE(listed.find("16x16x32 f16*f16+f32->f32 (not subgroup scope)"), std::string::npos) << listed;
  listed.clear();
  EXPECT_EQ(vk::choose_matrix_shape({}, true, &listed).m, 0);
  EXPECT_EQ(listed, "");
}

}  // namespace
}  // namespace kiln
