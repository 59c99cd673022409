// kilnc: the Kiln kernel compiler driver.
//
//   kilnc ops [--json]                      the op table (arity, dtypes, result rule, formula, ...)
//   kilnc emit --expr E --dtypes a,..,out --target cuda|glsl [--function contig|strided]
//     [--family reduce --reduce sum [--epilogue E]]
//                                           the generated source of one kernel, on stdout
//   kilnc build --manifest M --out DIR      every kernel of a manifest: DIR/cuda/batch_NNN.cu,
//                                           DIR/glsl/<name>.<fn>.comp and the index DIR/kernels.json
//     [--header H --namespace NS --registry FN]  and the typed C++ API header (codegen/api_header.hpp)
//   kilnc compile --index DIR/kernels.json  nvcc -> DIR/cuda/batch_NNN.fatbin; shaderc, SPIRV-Tools
//                                           optimizer and validator (in-process, or glslc,
//                                           spirv-opt, spirv-val with --glslc) ->
//                                           DIR/spirv/<name>.<fn>.spv; in parallel,
//                                           skipping outputs whose inputs, flags and tools are
//                                           unchanged
//   kilnc pack --index ... --out reg.cpp    the registry source embedding the compiled blobs
//
// Exit status: 0 on success, 2 for invalid input (manifest, expression, options), 1 for other
// failures (I/O, a compiler failing). Outputs are replaced atomically (write to .tmp, rename) and
// only when their content changes, so timestamps stay put and rebuilds are incremental; `build`
// emits everything in memory first, so an invalid manifest leaves the output folder untouched.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
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

namespace {

// A block size the manifest accepts too: a power of two from 32 to 1024.
const CLI::Validator kBlockSize(
    [](const std::string& v) -> std::string {
      int b = 0;
      try {
        b = std::stoi(v);
      } catch (const std::exception&) {
      }
      return b >= 32 && b <= 1024 && (b & (b - 1)) == 0 ? "" : "must be a power of two from 32 to 1024, not " + v;
    },
    "POW2 32..1024");

// A C++ name the generated code can use: identifiers joined by "::".
const CLI::Validator kCppName(
    [](const std::string& v) -> std::string {
      std::size_t at = 0;
      while (true) {
        const std::size_t end = v.find("::", at);
        const std::string part = v.substr(at, end == std::string::npos ? std::string::npos : end - at);
        bool ok = !part.empty() && !std::isdigit(static_cast<unsigned char>(part[0]));
        for (char c : part) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
        if (!ok) return "'" + v + "' is not a C++ name (identifiers joined by ::)";
        if (end == std::string::npos) return "";
        at = end + 2;
      }
    },
    "C++ NAME");

}  // namespace

int main(int argc, char** argv) {
  using namespace kiln;
  using namespace kiln::kilnc;
  CLI::App app{"kilnc: the Kiln kernel generator"};
  app.require_subcommand(1);

  bool ops_json = false;
  auto* ops = app.add_subcommand("ops", "List the op table");
  ops->add_flag("--json", ops_json, "Print JSON");

  std::string family = "map", expr, dtypes, target, function, reduce, epilogue, op;
  int block_size = 256;
  auto* emit = app.add_subcommand("emit", "Print the generated source of one kernel");
  emit->add_option("--family", family, "Kernel family")->capture_default_str();
  emit->add_option("--expr", expr, "Infix expression over x, y, z, w")->required();
  emit->add_option("--dtypes", dtypes, "Input dtypes then the output dtype, e.g. f32,f32,f32")->required();
  emit->add_option("--target", target, "cuda or glsl")->required()->check(CLI::IsMember({"cuda", "glsl"}));
  emit->add_option("--function", function, "GLSL function (map: contig or strided; reduce: rows, cols or final); "
                                           "default: the first");
  emit->add_option("--reduce", reduce, "reduce family: the reduction (sum, max, argmax, ...); --expr is the prologue");
  emit->add_option("--epilogue", epilogue, "reduce family: the epilogue over acc and n");
  emit->add_option("--op", op, "families named by an op: rows (softmax, ..., rms_norm), scan (cumulative_sum, ...), "
                               "contract (matmul), conv (conv); --expr x, --dtypes the inputs' (rows: x, gamma, beta, a "
                               "bias or mask; contract and conv: a, b), then the output's");
  emit->add_option("--block-size", block_size, "Threads per block")->capture_default_str()->check(kBlockSize);

  std::string manifest, out_dir;
  int batch_size = 48;
  auto* build = app.add_subcommand("build", "Emit every kernel of a manifest");
  build->add_option("--manifest", manifest, "Manifest file (TOML)")->required();
  build->add_option("--out", out_dir, "Output folder")->required();
  build->add_option("--batch-size", batch_size, "Kernels per CUDA translation unit")->capture_default_str();
  std::string build_targets = "cuda,vulkan";
  build->add_option("--targets", build_targets,
                    "The targets the build compiles (a [[kernel]] one of them cannot run is an error)")
      ->capture_default_str();
  std::string header;
  ApiHeaderOptions header_options{"kernels", "kernels::registry", ""};
  build->add_option("--header", header, "Also write the typed C++ API header of the manifest");
  build->add_option("--namespace", header_options.ns, "C++ namespace of the header's functions")
      ->capture_default_str()
      ->check(kCppName);
  build->add_option("--registry", header_options.registry, "Registry function (as given to kilnc pack --function)")
      ->capture_default_str()
      ->check(kCppName);

  CompileOptions co;
  std::string includes;
  auto* compile = app.add_subcommand("compile", "Compile the sources of a build index (nvcc, glslc, spirv-val)");
  compile->add_option("--index", co.index, "kernels.json written by kilnc build")->required();
  compile->add_option("--nvcc", co.nvcc, "nvcc; without it no CUDA batch is compiled");
  compile->add_option("--nvcc-flags", co.nvcc_flags, "nvcc flags, space separated");
  compile->add_option("--cuda-include", includes, "Include folders, comma separated (hashed for rebuilds)");
  co.cache_dir = default_kernel_cache();
  compile->add_option("--cache-dir", co.cache_dir,
                      "Machine-wide cache of compiled blobs (default $KILN_KERNEL_CACHE or ~/.cache/kiln/kernels; "
                      "empty disables)");
  compile->add_option("--glslc", co.glslc, "Run this glslc (then --spirv-opt, --spirv-val) per shader instead of "
                                          "compiling in-process with shaderc and SPIRV-Tools");
  compile->add_option("--glslc-flags", co.glslc_flags, "glslc flags, space separated")->capture_default_str();
  compile->add_option("--spirv-opt", co.spirv_opt, "spirv-opt (empty: no optimization)")->capture_default_str();
  compile->add_option("--spirv-opt-flags", co.spirv_opt_flags, "spirv-opt flags")->capture_default_str();
  compile->add_option("--spirv-val", co.spirv_val, "spirv-val")->capture_default_str();
  compile->add_flag("--no-vulkan{false}", co.vulkan, "Skip the GLSL shaders");
  compile->add_option("-j,--jobs", co.jobs, "Parallel compiler processes")->capture_default_str();

  PackOptions po;
  std::string fatbins;
  auto* pack = app.add_subcommand("pack", "Write the registry source embedding the compiled kernels");
  pack->add_option("--index", po.index, "kernels.json written by kilnc build")->required();
  pack->add_option("--cuda-fatbins", fatbins, "Fatbin of each CUDA batch, comma separated, in index order");
  pack->add_option("--cuda-dir", po.cuda_dir, "Folder holding batch_NNN.fatbin (instead of --cuda-fatbins)");
  pack->add_option("--spirv-dir", po.spirv_dir, "Folder holding <name>.<function>.spv");
  pack->add_option("--function", po.function, "Registry function to define")->capture_default_str()->check(kCppName);
  pack->add_option("--out", po.out, "Registry source to write")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  // What ops and emit print must all reach stdout (a full disk or a closed pipe is a failure).
  auto printed = [](int rc) {
    std::cout.flush();
    if (rc == 0 && !std::cout) {
      std::cerr << "kilnc: cannot write to standard output\n";
      return 1;
    }
    return rc;
  };
  try {
    if (*ops) return printed(cmd_ops(ops_json));
    if (*emit) return printed(cmd_emit({family, expr, dtypes, target, function, block_size, reduce, epilogue, op}));
    if (*build) return cmd_build(manifest, out_dir, batch_size, header, header_options, build_targets);
    if (*compile) {
      co.cuda_includes = split(includes, ',');
      return cmd_compile(co);
    }
    if (*pack) {
      po.cuda_fatbins = split(fatbins, ',');
      return cmd_pack(po);
    }
  } catch (const Error& e) {
    // Parse errors start with file:line:col, like a compiler's.
    std::cerr << (e.code() == ErrorCode::parse_error ? "" : "kilnc: ") << e.what() << "\n";
    return exit_code(e);
  } catch (const std::exception& e) {
    std::cerr << "kilnc: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

