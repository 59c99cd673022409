// kilnc pack: the registry source embedding the compiled blobs.
// emits everything in memory first, so an invalid manifest leaves the output folder untouched.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codegen/api_header.hpp"
#include "codegen/emit.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/family.hpp"
#include "codegen/manifest.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

extern char** environ;

#include "codegen/kilnc/kilnc.hpp"

namespace kiln::kilnc {

// ---- kilnc pack -----------------------------------------------------------------------------

std::string c_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20 || c == '?') out += fmt::format("\\{:03o}", static_cast<unsigned char>(c));
    else out += c;
  }
  return out + "\"";
}

// Blobs of one kind concatenated in one file (each 16-byte aligned), embedded with .incbin.
struct Pack {
  std::string data;
  std::size_t add(std::string_view blob) {
    data.resize((data.size() + 15) / 16 * 16, '\0');
    const std::size_t at = data.size();
    data += blob;
    return at;
  }
};



int cmd_pack(const PackOptions& o) {
  const json index = read_index(o.index);
  const std::size_t num_batches = index["cuda_batches"].size();
  std::vector<fs::path> fatbins;
  if (!o.cuda_fatbins.empty()) {
    if (o.cuda_fatbins.size() != num_batches)
      fail(ErrorCode::invalid_argument, fmt::format("--cuda-fatbins: the index has {} CUDA batches, {} fatbins given",
                                                    num_batches, o.cuda_fatbins.size()));
    for (const auto& f : o.cuda_fatbins) fatbins.emplace_back(f);
  } else if (!o.cuda_dir.empty()) {
    for (const json& b : index["cuda_batches"])
      fatbins.push_back(o.cuda_dir / fs::path(b["file"].get<std::string>()).filename().replace_extension(".fatbin"));
  }

  Pack cuda, spirv;
  std::vector<std::pair<std::size_t, std::size_t>> images;  // offset, size
  for (const fs::path& f : fatbins) {
    const std::string blob = read_text(f);
    std::uint32_t magic = 0;
    if (blob.size() >= 4) std::memcpy(&magic, blob.data(), 4);
    if (blob.empty() || magic != 0xBA55ED50u)
      fail(ErrorCode::invalid_argument, fmt::format("{}: not a CUDA fatbin (empty or bad magic)", f.string()));
    images.emplace_back(cuda.add(blob), blob.size());
  }

  std::string functions, entries;
  std::size_t num_functions = 0;
  std::vector<json> kernels(index["kernels"].begin(), index["kernels"].end());
  std::sort(kernels.begin(), kernels.end(), [](const json& a, const json& b) { return a["name"] < b["name"]; });
  for (const json& k : kernels) {
    const std::string name = k["name"];
    bool vulkan = false, cuda = false;
    for (const auto& t : k["targets"]) (t == "vulkan" ? vulkan : cuda) = true;
    const auto& symbols = k["symbols"];
    const auto& fns = k["functions"];
    const std::size_t first = num_functions;
    const std::string spec_text = k["spec"].get<std::string>();
    const Family* family = find_family(spec_text.substr(0, spec_text.find('|')));
    if (!family || family->entry_points.size() != symbols.size())
      fail(ErrorCode::invalid_argument, fmt::format("{}: kernel {} has an unknown family or {} functions (spec {})",
                                                    o.index.string(), name, symbols.size(), spec_text));
    for (std::size_t f = 0; f < symbols.size(); ++f, ++num_functions) {
      std::string blob_ref = "{}";
      if (vulkan && !o.spirv_dir.empty()) {
        const fs::path spv = o.spirv_dir / fmt::format("{}.{}.spv", name, fns[f].get<std::string>());
        const std::string blob = read_text(spv);
        std::uint32_t magic = 0;
        if (blob.size() >= 4) std::memcpy(&magic, blob.data(), 4);
        if (blob.empty() || blob.size() % 4 != 0 || magic != 0x07230203u)
          fail(ErrorCode::invalid_argument, fmt::format("{}: not a SPIR-V module (bad magic or size {})", spv.string(), blob.size()));
        blob_ref = fmt::format("{{kSpirv + {}, {}}}", spirv.add(blob), blob.size());
      }
      functions += fmt::format("    {{{}, {}, {}}},\n", c_string(symbols[f].get<std::string>()), blob_ref,
                               family->entry_points[f].params_bytes);
    }
    const int image = cuda && !fatbins.empty() && k.contains("cuda_batch") && k["cuda_batch"].is_number_integer()
                          ? k["cuda_batch"].get<int>() : -1;
    entries += fmt::format("    {{{}, {}, {}, {}, kFunctions + {}, {}, {}}},\n", c_string(name), c_string(spec_text),
                           image, symbols.size(), first, k["block_size"].get<int>(), c_string(std::string(family->name)));
  }

  // Symbol names and the packed blob files derive from the registry function's name.
  const std::string fn = o.function;
  const std::size_t colons = fn.rfind("::");
  const std::string ns = colons == std::string::npos ? "" : fn.substr(0, colons);
  const std::string fname = colons == std::string::npos ? fn : fn.substr(colons + 2);
  std::string prefix = fn;
  for (auto p = prefix.find("::"); p != std::string::npos; p = prefix.find("::")) prefix.replace(p, 2, "_");
  const fs::path out = fs::absolute(o.out).lexically_normal();
  const fs::path cuda_bin = out.string() + ".cuda.bin", spirv_bin = out.string() + ".spirv.bin";
  write_if_changed(cuda_bin, cuda.data);
  write_if_changed(spirv_bin, spirv.data);

  auto incbin = [&](const std::string& sym, const fs::path& file, const std::string& data) {
    // The content hash in the assembler comment makes the source change whenever a blob does
    // (the compiler and ccache do not see .incbin dependencies).
    return fmt::format(
        "__asm__(\".pushsection .rodata\\n.balign 16\\n.globl {0}\\n.hidden {0}\\n{0}:\\n.incbin {1}\\n"
        "/* xxh64 {2}, {3} bytes */\\n.byte 0\\n.popsection\\n\");\n"
        "extern \"C\" const unsigned char {0}[];\n",
        sym, c_string(c_string(file.string())).substr(1, c_string(c_string(file.string())).size() - 2),
        hex64(hash_of(data)), data.size());
  };

  std::string src = fmt::format("// Generated by kilnc pack from {}. Do not edit.\n// {} kernels, {} CUDA images.\n"
                                 "#include \"runtime/registry.hpp\"\n\n",
                                 o.index.filename().string(), kernels.size(), images.size());
  src += incbin(prefix + "_cuda_data", cuda_bin, cuda.data);
  src += incbin(prefix + "_spirv_data", spirv_bin, spirv.data);
  src += "\nnamespace {\n\n";
  src += fmt::format("[[maybe_unused]] const unsigned char* const kCuda = {}_cuda_data;\n", prefix);
  src += fmt::format("[[maybe_unused]] const unsigned char* const kSpirv = {}_spirv_data;\n\n", prefix);
  src += "const kiln::KernelFunction kFunctions[] = {\n" + functions + "    {nullptr, {}},\n};\n\n";
  src += "const kiln::KernelEntry kKernels[] = {\n" + entries + "    {nullptr, nullptr, -1, 0, nullptr, 0, nullptr},\n};\n\n";
  src += "const kiln::EmbeddedBlob kCudaImages[] = {\n";
  for (const auto& [at, size] : images) src += fmt::format("    {{kCuda + {}, {}}},\n", at, size);
  src += "    {},\n};\n\n}  // namespace\n\n";
  if (!ns.empty()) src += "namespace " + ns + " {\n\n";
  src += fmt::format(
      "const kiln::Registry& {}() {{\n"
      "  static const kiln::Registry registry{{std::span<const kiln::KernelEntry>(kKernels, {}),\n"
      "                                       std::span<const kiln::EmbeddedBlob>(kCudaImages, {})}};\n"
      "  return registry;\n}}\n",
      fname, kernels.size(), images.size());
  if (!ns.empty()) src += "\n}  // namespace " + ns + "\n";
  const bool changed = write_if_changed(out, src);
  std::cerr << fmt::format("kilnc pack: {} kernels, {} CUDA images ({} KiB), SPIR-V {} KiB{}\n", kernels.size(),
                           images.size(), cuda.data.size() / 1024, spirv.data.size() / 1024,
                           changed ? "" : " (registry unchanged)");
  return 0;
}

}  // namespace kiln::kilnc
