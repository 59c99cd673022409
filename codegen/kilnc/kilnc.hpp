// kilnc's commands (codegen/kilnc/<command>.cpp) and what they share. See main.cpp for the CLI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "codegen/api_header.hpp"
#include "core/error.hpp"

namespace kiln::kilnc {

namespace fs = std::filesystem;

// ---- files (files.cpp) ----
std::string read_text(const fs::path& p);
// Replaces |p| atomically (write to a temporary file of this process and call, rename) when its
// content changes; returns whether it did. A failure leaves |p| as it was and no temporary file.
bool write_if_changed(const fs::path& p, std::string_view content);
// A temporary name beside |p| no other process or thread uses (pid, a counter, the clock).
fs::path unique_temp(const fs::path& p);
// The index kilnc build wrote (kernels.json), checked for every key compile and pack read: a
// parse_error naming the file otherwise.
nlohmann::ordered_json read_index(const fs::path& p);
// Removes the files of |dir| with extension |ext| whose names are not in |keep|.
void remove_stale(const fs::path& dir, std::string_view ext, const std::set<std::string>& keep);
std::string hex64(std::uint64_t h);
std::uint64_t hash_of(std::string_view s, std::uint64_t seed = 0);  // XXH64
std::vector<std::string> split(std::string_view s, char sep);
std::vector<std::string> split_ws(std::string_view s);
// "contig" for kernel "map_..." and symbol "map_..._contig".
std::string function_suffix(const std::string& kernel, const std::string& symbol);
// 2 for invalid input (parse errors, bad arguments, unsupported), 1 for other failures.
int exit_code(const Error& e);

// ---- commands ----
int cmd_ops(bool as_json);                                                      // ops.cpp
struct EmitOptions {
  std::string family, expr, dtypes_csv, target, function;  // function: empty for the first
  int block_size = 256;
  std::string reduce, epilogue;  // the reduce family
  std::string op;                // families with named ops (rows, scan): the op
};
int cmd_emit(const EmitOptions& o);                                             // ops.cpp
int cmd_build(const fs::path& manifest_path, const fs::path& out, int batch_size, const fs::path& header,
              ApiHeaderOptions header_options, const std::string& targets_csv);       // build.cpp

struct CompileOptions {
  fs::path index;
  // glslc empty (the default): GLSL compiles in-process (shaderc + SPIRV-Tools); otherwise the
  // three programs are run per shader.
  std::string nvcc, nvcc_flags, glslc, glslc_flags = "--target-env=vulkan1.3",
                                   spirv_opt = "spirv-opt", spirv_opt_flags = "-O --target-env=vulkan1.3",
                                   spirv_val = "spirv-val";
  std::vector<std::string> cuda_includes;
  bool cuda = true, vulkan = true;
  int jobs = 2;
  // A content-addressed store of compiled blobs shared by every build on the machine (fresh
  // clones and CI reuse kernels compiled before). Empty: no cache.
  fs::path cache_dir;
};
// The kernel cache directory ($KILN_KERNEL_CACHE, else the XDG cache; "off" disables it).
fs::path default_kernel_cache();
int cmd_compile(const CompileOptions& o);  // compile.cpp

struct PackOptions {
  fs::path index, out, cuda_dir, spirv_dir;
  std::vector<std::string> cuda_fatbins;
  std::string function = "kiln::builtin_registry";
};
int cmd_pack(const PackOptions& o);  // pack.cpp

}  // namespace kiln::kilnc
