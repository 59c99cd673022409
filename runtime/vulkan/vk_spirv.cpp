// SPIR-V edits at pipeline creation: DenormPreserve execution modes.
#include "runtime/vulkan/vk_spirv.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "runtime/vulkan/vk_common.hpp"

namespace kiln::vk {

namespace {

// SPIR-V numbers (the SPIR-V specification, sections 3.x and the float controls extension).
constexpr std::uint32_t kOpExtension = 10, kOpCapability = 17, kOpEntryPoint = 15, kOpExecutionMode = 16;
constexpr std::uint32_t kCapFloat16 = 9, kCapFloat64 = 10, kCapDenormPreserve = 4464;
constexpr std::uint32_t kModeDenormPreserve = 4459, kModeDenormFlushToZero = 4460;
constexpr std::uint32_t kExecGLCompute = 5;
constexpr std::string_view kExtension = "SPV_KHR_float_controls";

std::uint32_t op(std::uint32_t count, std::uint32_t opcode) { return count << 16 | opcode; }

// The words of a literal string operand (nul-terminated, padded to a word).
std::vector<std::uint32_t> string_words(std::string_view s) {
  std::vector<std::uint32_t> w(s.size() / 4 + 1, 0);
  std::memcpy(w.data(), s.data(), s.size());
  return w;
}

}  // namespace

DenormWidths denorm_widths(bool preserve16, bool preserve32, bool preserve64, int independence) {
  switch (independence) {
    case VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_32_BIT_ONLY:  // 16 and 64 alike
      return {preserve16 && preserve64, preserve32, preserve16 && preserve64, true};
    case VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_ALL:
      return {preserve16, preserve32, preserve64, false};
    default: {  // NONE: all three alike
      const bool all = preserve16 && preserve32 && preserve64;
      return {all, all, all, true};
    }
  }
}

bool spirv_has_capability(std::span<const std::byte> bytes, std::uint32_t capability) {
  constexpr std::uint32_t kOpCapability = 17;
  const std::size_t words = bytes.size() / 4;
  auto word = [&](std::size_t i) {
    std::uint32_t w;
    std::memcpy(&w, bytes.data() + 4 * i, 4);
    return w;
  };
  for (std::size_t i = 5; i + 1 < words;) {
    const std::uint32_t head = word(i), count = head >> 16;
    if ((head & 0xFFFFu) != kOpCapability || count < 2) return false;
    if (word(i + 1) == capability) return true;
    i += count;
  }
  return false;
}

std::vector<std::uint32_t> with_denorm_preserve(std::span<const std::uint32_t> words, DenormWidths widths) {
  std::vector<std::uint32_t> in(words.begin(), words.end());
  if (in.size() < 5 || !widths.any()) return in;
  const std::uint32_t version = in[1];  // 0x00MMmm00
  bool cap16 = false, cap64 = false, cap_preserve = false, has_extension = false;
  bool moded[3] = {false, false, false};  // a denorm mode already set for 16, 32, 64
  std::vector<std::uint32_t> entries;
  std::size_t last_capability = 5, last_entry = 0;
  for (std::size_t i = 5; i < in.size();) {
    const std::uint32_t count = in[i] >> 16, opcode = in[i] & 0xffffu;
    if (count == 0 || i + count > in.size()) return in;  // malformed: leave it to the validator
    if (opcode == kOpCapability && count == 2) {
      cap16 |= in[i + 1] == kCapFloat16;
      cap64 |= in[i + 1] == kCapFloat64;
      cap_preserve |= in[i + 1] == kCapDenormPreserve;
      last_capability = i + count;
    } else if (opcode == kOpExtension && count >= 2) {
      const char* name = reinterpret_cast<const char*>(&in[i + 1]);
      const std::size_t max = (count - 1) * 4;
      has_extension |= strnlen(name, max) < max && std::string_view(name) == kExtension;
    } else if (opcode == kOpEntryPoint && count >= 3) {
      if (in[i + 1] == kExecGLCompute) entries.push_back(in[i + 2]);
      last_entry = i + count;
    } else if (opcode == kOpExecutionMode && count == 4 &&
               (in[i + 2] == kModeDenormPreserve || in[i + 2] == kModeDenormFlushToZero)) {
      const std::uint32_t w = in[i + 3];
      if (w == 16 || w == 32 || w == 64) moded[w == 16 ? 0 : w == 32 ? 1 : 2] = true;
      last_entry = std::max(last_entry, i + count);
    }
    i += count;
  }
  std::vector<std::uint32_t> modes;  // the widths to add
  if (widths.w16 && (cap16 || widths.every_width) && !moded[0]) modes.push_back(16);
  if (widths.w32 && !moded[1]) modes.push_back(32);
  if (widths.w64 && (cap64 || widths.every_width) && !moded[2]) modes.push_back(64);
  if (modes.empty() || entries.empty() || last_entry == 0) return in;

  std::vector<std::uint32_t> out;
  out.reserve(in.size() + 16 + 3 * modes.size() * entries.size());
  out.insert(out.end(), in.begin(), in.begin() + std::ptrdiff_t(last_capability));
  if (!cap_preserve) out.insert(out.end(), {op(2, kOpCapability), kCapDenormPreserve});
  if (!has_extension && version < 0x00010400u) {
    const std::vector<std::uint32_t> name = string_words(kExtension);
    out.push_back(op(std::uint32_t(1 + name.size()), kOpExtension));
    out.insert(out.end(), name.begin(), name.end());
  }
  out.insert(out.end(), in.begin() + std::ptrdiff_t(last_capability), in.begin() + std::ptrdiff_t(last_entry));
  for (std::uint32_t entry : entries)
    for (std::uint32_t w : modes) out.insert(out.end(), {op(4, kOpExecutionMode), entry, kModeDenormPreserve, w});
  out.insert(out.end(), in.begin() + std::ptrdiff_t(last_entry), in.end());
  return out;
}

}  // namespace kiln::vk
