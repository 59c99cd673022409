// Internal: edits of a kernel's SPIR-V made when a pipeline is created for a particular device.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kiln::vk {

// Float widths (16, 32, 64) whose subnormals the module asks the driver to keep.
struct DenormWidths {
  bool w16 = false, w32 = false, w64 = false;
  // Every width asked for, even where the module has no floats of it: a device whose
  // denormBehaviorIndependence ties widths together wants the same mode on all of them.
  bool every_width = false;
  bool any() const { return w16 || w32 || w64; }
};

// What a device allows (VkPhysicalDeviceVulkan12Properties): the widths it can preserve, and
// whether their modes may differ (denormBehaviorIndependence: ALL; 32_BIT_ONLY ties 16 and 64;
// NONE ties all three). Where tied widths cannot all be preserved, none of them is.
DenormWidths denorm_widths(bool preserve16, bool preserve32, bool preserve64, int independence);

// |words| with OpExecutionMode DenormPreserve for each width in |widths| on every GLCompute entry
// point (SPV_KHR_float_controls; core from SPIR-V 1.4, with OpExtension before). Without it a
// driver may flush subnormal inputs and results to zero (NVIDIA's does: exp(-87.5f) gave 0, the
// true value is 1.0e-38), which CUDA and the CPU backend do not. A width is skipped when the
// module has no floats of that width (no Float16/Float64 capability; unless every_width) or
// already sets a denorm mode for it. The module is returned unchanged when nothing applies. |words| must be a
// structurally sound module (check_spirv).
std::vector<std::uint32_t> with_denorm_preserve(std::span<const std::uint32_t> words, DenormWidths widths);

// SPIR-V's GroupNonUniformArithmetic capability (subgroupAdd, subgroupMax, ...) and
// CooperativeMatrixNV (SPV_NV_cooperative_matrix).
inline constexpr std::uint32_t kCapabilityGroupNonUniformArithmetic = 63;
inline constexpr std::uint32_t kCapabilityCooperativeMatrixNV = 5357;
// Whether the module (|bytes|, any alignment) declares |capability|: its OpCapability instructions
// lead it, after the 5-word header, so only those words are read.
bool spirv_has_capability(std::span<const std::byte> bytes, std::uint32_t capability);

}  // namespace kiln::vk
