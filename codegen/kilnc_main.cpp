// kilnc: the Kiln kernel compiler driver.
//
//   kilnc ops [--json]                      the op table (arity, dtypes, result rule, formula, ...)
//   kilnc emit --expr E --dtypes a,..,out --target cuda|glsl [--function contig|strided]
//                                           the generated source of one kernel, on stdout
//   kilnc build --manifest M --out DIR      every kernel of a manifest: DIR/cuda/batch_NNN.cu,
//                                           DIR/glsl/<name>.<fn>.comp and the index DIR/kernels.json
//     [--header H --namespace NS --registry FN]  and the typed C++ API header (codegen/api_header.hpp)
//   kilnc compile --index DIR/kernels.json  nvcc -> DIR/cuda/batch_NNN.fatbin; glslc, spirv-opt,
//                                           spirv-val -> DIR/spirv/<name>.<fn>.spv; in parallel,
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
#include "codegen/family.hpp"
#include "codegen/manifest.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

extern char** environ;

namespace kiln {
namespace {

// ---- files ------------------------------------------------------------------------------------

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(ErrorCode::io_error, fmt::format("{}: cannot read", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes |content| to |p| through a temporary file and a rename, unless |p| already holds it.
// Returns whether the file was (re)written.
bool write_if_changed(const fs::path& p, std::string_view content) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec) && fs::file_size(p, ec) == content.size() && read_text(p) == content) return false;
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), std::streamsize(content.size()));
    if (!out.flush()) fail(ErrorCode::io_error, fmt::format("{}: cannot write", tmp.string()));
  }
  fs::rename(tmp, p, ec);
  if (ec) fail(ErrorCode::io_error, fmt::format("{}: cannot rename into place: {}", p.string(), ec.message()));
  return true;
}

std::string hex64(std::uint64_t h) { return fmt::format("{:016x}", h); }
std::uint64_t hash_of(std::string_view s, std::uint64_t seed = 0) { return XXH64(s.data(), s.size(), seed); }

// Removes files of |dir| ending in |ext| that are not in |keep| (outputs of kernels that left the
// manifest), so the folder always mirrors the index.
void remove_stale(const fs::path& dir, std::string_view ext, const std::set<std::string>& keep) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.size() >= ext.size() && f.compare(f.size() - ext.size(), ext.size(), ext) == 0 && !keep.count(f))
      fs::remove(e.path(), ec);
  }
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) { if (!cur.empty()) out.push_back(cur); cur.clear(); }
    else cur += c;
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in{std::string(s)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The function suffix of a symbol: map_f32_f32_0123abcd_contig -> contig.
std::string function_suffix(const std::string& kernel, const std::string& symbol) {
  return symbol.size() > kernel.size() + 1 ? symbol.substr(kernel.size() + 1) : symbol;
}

// ---- kilnc ops ------------------------------------------------------------------------------

std::string_view result_rule_name(ResultRule r) {
  switch (r) {
    case ResultRule::same: return "same";
    case ResultRule::floating: return "floating";
    case ResultRule::pred: return "pred";
    case ResultRule::cast: return "cast";
  }
  return "?";
}

std::vector<std::string> dtype_names(DTypeSet set, Op op, bool vulkan) {
  std::vector<std::string> out;
  for (DType t : kAllDTypes)
    if ((set & dtype_bit(t)) && (!vulkan || glsl_supports(op, t))) out.emplace_back(dtype_name(t));
  return out;
}

int cmd_ops(bool as_json) {
  json ops = json::array();
  for (const OpInfo& o : op_table()) {
    json j;
    j["name"] = o.name;
    j["arity"] = o.arity;
    j["accepts"] = dtype_names(o.accepts, o.op, false);
    j["result"] = result_rule_name(o.result);
    j["formula"] = o.formula;
    j["tolerance"] = {{"atol", o.tol.atol}, {"rtol", o.tol.rtol}};
    j["targets"] = {{"cuda", dtype_names(o.accepts, o.op, false)}, {"vulkan", dtype_names(o.accepts, o.op, true)}};
    ops.push_back(j);
  }
  if (as_json) {
    std::cout << json{{"ops", ops}}.dump(2) << "\n";
    return 0;
  }
  for (const json& j : ops) {
    std::string accepts;
    for (const auto& t : j["accepts"]) accepts.append(accepts.empty() ? "" : " ").append(t.get<std::string>());
    std::string vk = "all";
    if (j["targets"]["vulkan"].size() != j["accepts"].size()) vk = "no f64";
    std::cout << fmt::format("{:<20} {}  {:<8} tol={:g}/{:g} vulkan:{:<6} [{}]  {}\n", j["name"].get<std::string>(),
                             j["arity"].get<int>(), j["result"].get<std::string>(), j["tolerance"]["atol"].get<double>(),
                             j["tolerance"]["rtol"].get<double>(), vk, accepts, j["formula"].get<std::string>());
  }
  return 0;
}

// ---- kilnc emit -----------------------------------------------------------------------------

int cmd_emit(const std::string& family, const std::string& expr, const std::string& dtypes_csv,
             const std::string& target, const std::string& function, int block_size) {
  if (!find_family(family))
    fail(ErrorCode::invalid_argument, fmt::format("--family: unknown kernel family '{}' (families: {})", family, family_names()));
  std::vector<DType> dtypes;
  for (const std::string& s : split(dtypes_csv, ',')) {
    auto t = parse_dtype(s);
    if (!t) fail(ErrorCode::invalid_argument, fmt::format("--dtypes: unknown dtype '{}'", s));
    dtypes.push_back(*t);
  }
  if (dtypes.size() < 2)
    fail(ErrorCode::invalid_argument, "--dtypes lists the input dtypes then the output dtype, e.g. f32,f32");
  const DType output = dtypes.back();
  dtypes.pop_back();
  KernelSpec spec = make_map_spec(parse_expr(expr, dtypes, "--expr"), output);
  spec.block_size = block_size;
  const Target t = target == "cuda" ? Target::cuda : Target::glsl;
  std::string why;
  if (!target_supports(spec, t, &why))
    fail(ErrorCode::unsupported, fmt::format("{} cannot be emitted for {}: {}", spec.name(), target, why));
  if (t == Target::cuda) {
    std::cout << emit_cuda(spec);
    return 0;
  }
  const std::vector<std::string> symbols = cuda_symbols(spec);
  const std::string name = spec.name();
  for (std::size_t i = 0; i < symbols.size(); ++i)
    if (function_suffix(name, symbols[i]) == function) {
      std::cout << emit_glsl(spec, int(i));
      return 0;
    }
  fail(ErrorCode::invalid_argument, fmt::format("--function: {} has no function '{}'", name, function));
}

// ---- kilnc build ----------------------------------------------------------------------------

int cmd_build(const fs::path& manifest_path, const fs::path& out, int batch_size, const fs::path& header,
              ApiHeaderOptions header_options, const std::string& targets_csv) {
  TargetSet requested{false, false};
  for (const std::string& t : split(targets_csv, ',')) {
    if (t == "cuda") requested.cuda = true;
    else if (t == "vulkan") requested.vulkan = true;
    else fail(ErrorCode::invalid_argument, fmt::format("--targets: unknown target '{}' (cuda, vulkan)", t));
  }
  if (!requested.cuda && !requested.vulkan) fail(ErrorCode::invalid_argument, "--targets: name cuda and/or vulkan");
  const Manifest manifest = read_manifest(manifest_path, requested);
  if (batch_size < 1) fail(ErrorCode::invalid_argument, "--batch-size must be at least 1");
  std::string header_text;
  if (!header.empty()) {
    header_options.manifest = manifest_path.filename().string();
    header_text = emit_api_header(manifest, header_options);
  }

  // Everything is emitted in memory first: an error here leaves |out| untouched.
  std::size_t num_cuda = 0;
  for (const auto& k : manifest.kernels) num_cuda += k.targets.cuda;
  // Kernels go to batches by a hash of their name, so adding a kernel changes one batch only
  // (until the batch count grows), and the unchanged batches are not recompiled.
  const std::size_t buckets = std::max<std::size_t>(1, (num_cuda + batch_size - 1) / batch_size);
  std::vector<std::vector<const ManifestKernel*>> bucket(buckets);
  for (const auto& k : manifest.kernels)
    if (k.targets.cuda) bucket[hash_of(k.name) % buckets].push_back(&k);
  std::erase_if(bucket, [](const auto& b) { return b.empty(); });

  std::map<std::string, std::string> files;  // path relative to |out| -> content
  std::map<std::string, int> batch_of;
  json batches = json::array();
  for (std::size_t b = 0; b < bucket.size(); ++b) {
    const std::string file = fmt::format("cuda/batch_{:03}.cu", b);
    std::string src = fmt::format("// Generated by kilnc build from {}: {} kernels. Do not edit.\n",
                                  manifest_path.filename().string(), bucket[b].size());
    for (const ManifestKernel* k : bucket[b]) {
      src += "\n// ---- " + k->name + "\n" + emit_cuda(k->spec);
      batch_of[k->name] = int(b);
    }
    batches.push_back({{"file", file}, {"kernels", bucket[b].size()}, {"hash", hex64(hash_of(src))}});
    files[file] = std::move(src);
  }

  json kernels = json::array();
  for (const auto& k : manifest.kernels) {
    json j;
    j["name"] = k.name;
    j["spec"] = k.spec.canonical();
    j["aliases"] = k.aliases;
    j["block_size"] = k.spec.block_size;
    json targets = json::array();
    if (k.targets.cuda) targets.push_back("cuda");
    if (k.targets.vulkan) targets.push_back("vulkan");
    j["targets"] = targets;
    const std::vector<std::string> symbols = cuda_symbols(k.spec);
    j["symbols"] = symbols;
    json fns = json::array();
    for (const auto& s : symbols) fns.push_back(function_suffix(k.name, s));
    j["functions"] = fns;
    j["cuda_batch"] = k.targets.cuda ? json(batch_of.at(k.name)) : json(nullptr);
    if (k.targets.vulkan) {
      json glsl = json::array();
      for (std::size_t f = 0; f < symbols.size(); ++f) {
        const std::string file = fmt::format("glsl/{}.{}.comp", k.name, function_suffix(k.name, symbols[f]));
        std::string src = emit_glsl(k.spec, int(f));
        glsl.push_back({{"file", file}, {"hash", hex64(hash_of(src))}});
        files[file] = std::move(src);
      }
      j["glsl"] = glsl;
    }
    kernels.push_back(j);
  }
  json index = {{"version", 1},
                {"manifest", fs::absolute(manifest_path).lexically_normal().string()},
                {"cuda_batches", batches},
                {"kernels", kernels}};

  std::size_t written = 0;
  std::set<std::string> keep_cu, keep_comp;
  for (const auto& [rel, content] : files) {
    written += write_if_changed(out / rel, content);
    (rel.starts_with("cuda/") ? keep_cu : keep_comp).insert(fs::path(rel).filename().string());
  }
  remove_stale(out / "cuda", ".cu", keep_cu);
  remove_stale(out / "glsl", ".comp", keep_comp);
  if (!header.empty()) written += write_if_changed(header, header_text);
  // The index goes last: it changes whenever any emitted file does (it holds their hashes).
  written += write_if_changed(out / "kernels.json", index.dump(1) + "\n");
  std::cerr << fmt::format("kilnc build: {} kernels ({} CUDA batches, {} GLSL shaders), {} files updated\n",
                           manifest.kernels.size(), bucket.size(), files.size() - bucket.size(), written);
  return 0;
}

// ---- kilnc compile --------------------------------------------------------------------------

struct Job {
  std::vector<std::vector<std::string>> commands;  // run in order; the first failure stops
  fs::path tmp, output, key_file;                  // tmp is renamed to output on success
  std::string key;
  std::string what;
};

// Runs |argv| with stdout and stderr going to |log|; returns the exit status.
int spawn(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

std::string command_line(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s.append(s.empty() ? "" : " ").append(a);
  return s;
}

// Hash of the files a CUDA source really includes: its #include "..." lines, resolved against
// |dirs| and followed recursively (angle-bracket includes are the toolkit's, keyed by nvcc). A
// GLSL prelude edit therefore leaves every CUDA batch's key unchanged.
std::uint64_t hash_includes(const std::string& source, const std::vector<std::string>& dirs) {
  std::set<fs::path> seen;
  std::vector<std::string> todo = {source};
  std::uint64_t h = 0;
  while (!todo.empty()) {
    const std::string text = std::move(todo.back());
    todo.pop_back();
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      const std::size_t at = line.find_first_not_of(" \t");
      if (at == std::string::npos || line.compare(at, 8, "#include") != 0) continue;
      const std::size_t q0 = line.find('"', at + 8), q1 = q0 == std::string::npos ? q0 : line.find('"', q0 + 1);
      if (q1 == std::string::npos) continue;
      const std::string name = line.substr(q0 + 1, q1 - q0 - 1);
      for (const auto& d : dirs) {
        const fs::path p = fs::path(d) / name;
        if (!fs::is_regular_file(p)) continue;
        if (seen.insert(p.lexically_normal()).second) {
          std::string body = read_text(p);
          h = hash_of(name + "\n" + body, h);
          todo.push_back(std::move(body));
        }
        break;
      }
    }
  }
  return h;
}

struct CompileOptions {
  fs::path index;
  std::string nvcc, nvcc_flags, glslc = "glslc", glslc_flags = "--target-env=vulkan1.3",
                                   spirv_opt = "spirv-opt", spirv_opt_flags = "-O --target-env=vulkan1.3",
                                   spirv_val = "spirv-val";
  std::vector<std::string> cuda_includes;
  bool cuda = true, vulkan = true;
  int jobs = 2;
  // A content-addressed store of compiled blobs shared by every build on the machine (fresh
  // clones and CI reuse kernels compiled before). Empty: no cache.
  fs::path cache_dir;
};

// The cache directory: $KILN_KERNEL_CACHE, else $XDG_CACHE_HOME/kiln/kernels, else
// ~/.cache/kiln/kernels; "off" disables it.
fs::path default_kernel_cache() {
  if (const char* e = std::getenv("KILN_KERNEL_CACHE"); e && *e) return std::string(e) == "off" ? fs::path() : fs::path(e);
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "kiln" / "kernels";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "kiln" / "kernels";
  return {};
}

// A tool's identity for cache keys: its path, size and modification time.
std::string tool_identity(const std::string& tool) {
  std::error_code ec;
  fs::path p = tool;
  if (p.is_relative() || !fs::exists(p, ec)) return tool;
  return fmt::format("{}:{}:{}", tool, fs::file_size(p, ec),
                     fs::last_write_time(p, ec).time_since_epoch().count());
}

int cmd_compile(const CompileOptions& o) {
  const fs::path dir = o.index.parent_path();
  const json index = json::parse(read_text(o.index));
  std::vector<Job> jobs;
  std::set<std::string> keep_fatbin, keep_spv;

  if (o.cuda && !o.nvcc.empty()) {
    const std::vector<std::string> flags = split_ws(o.nvcc_flags);
    const std::string base_key = command_line(flags) + o.nvcc;
    for (const json& b : index["cuda_batches"]) {
      const fs::path cu = dir / b["file"].get<std::string>();
      Job j;
      j.output = fs::path(cu).replace_extension(".fatbin");
      j.tmp = j.output.string() + ".tmp";
      j.key_file = j.output.string() + ".key";
      const std::string source = read_text(cu);
      j.key = hex64(hash_of(base_key + hex64(hash_includes(source, o.cuda_includes)) + source)) + "\n";
      std::vector<std::string> cmd = {o.nvcc, "-fatbin"};
      cmd.insert(cmd.end(), flags.begin(), flags.end());
      for (const auto& inc : o.cuda_includes) cmd.push_back("-I" + inc);
      cmd.insert(cmd.end(), {"-o", j.tmp.string(), cu.string()});
      j.commands.push_back(cmd);
      j.what = cu.filename().string();
      keep_fatbin.insert(j.output.filename().string());
      jobs.push_back(std::move(j));
    }
  }
  if (o.vulkan) {
    const std::vector<std::string> flags = split_ws(o.glslc_flags);
    for (const json& k : index["kernels"]) {
      if (!k.contains("glsl")) continue;
      for (const json& g : k["glsl"]) {
        const fs::path comp = dir / g["file"].get<std::string>();
        Job j;
        j.output = dir / "spirv" / fs::path(comp.filename()).replace_extension(".spv");
        j.tmp = j.output.string() + ".tmp";
        j.key_file = j.output.string() + ".key";
        j.key = hex64(hash_of(o.glslc + command_line(flags) + o.spirv_opt + o.spirv_opt_flags + o.spirv_val +
                              read_text(comp))) + "\n";
        std::vector<std::string> cmd = {o.glslc};
        cmd.insert(cmd.end(), flags.begin(), flags.end());
        cmd.insert(cmd.end(), {"-o", j.tmp.string(), comp.string()});
        j.commands.push_back(cmd);
        // glslc -O (its built-in optimizer) crashes on some shaders (SPIRV-Tools 2022.4, e.g. pow
        // on bf16); spirv-opt as a separate step does not.
        if (!o.spirv_opt.empty()) {
          cmd = {o.spirv_opt};
          for (const auto& f : split_ws(o.spirv_opt_flags)) cmd.push_back(f);
          cmd.insert(cmd.end(), {j.tmp.string(), "-o", j.tmp.string()});
          j.commands.push_back(cmd);
        }
        j.commands.push_back({o.spirv_val, "--target-env", "vulkan1.3", j.tmp.string()});
        j.what = comp.filename().string();
        keep_spv.insert(j.output.filename().string());
        jobs.push_back(std::move(j));
      }
    }
  }

  // Skip the jobs whose output exists with the same key (inputs, flags and tools unchanged), or
  // whose output is in the machine-wide cache.
  const std::string tools = tool_identity(o.nvcc) + tool_identity(o.glslc) + tool_identity(o.spirv_opt);
  auto cached = [&](const Job& j) {
    return o.cache_dir.empty() ? fs::path()
                               : o.cache_dir / (hex64(hash_of(tools + j.key)) + j.output.extension().string());
  };
  std::vector<Job*> todo;
  std::size_t from_cache = 0;
  for (Job& j : jobs) {
    std::error_code ec;
    if (fs::exists(j.output, ec) && fs::exists(j.key_file, ec) && read_text(j.key_file) == j.key) continue;
    fs::create_directories(j.output.parent_path());
    if (const fs::path c = cached(j); !c.empty() && fs::exists(c, ec)) {
      fs::copy_file(c, j.tmp, fs::copy_options::overwrite_existing, ec);
      if (!ec) {
        fs::rename(j.tmp, j.output, ec);
        if (!ec) {
          write_if_changed(j.key_file, j.key);
          ++from_cache;
          continue;
        }
      }
    }
    todo.push_back(&j);
  }
  if (from_cache) std::cerr << fmt::format("kilnc compile: {} blobs from the cache {}\n", from_cache, o.cache_dir.string());
  // CUDA batches first: they are the long ones.
  std::stable_sort(todo.begin(), todo.end(), [](const Job* a, const Job* b) {
    return a->output.extension() == ".fatbin" && b->output.extension() != ".fatbin";
  });

  const auto start = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::mutex io;
  auto worker = [&] {
    for (std::size_t i; !failed && (i = next++) < todo.size();) {
      Job& j = *todo[i];
      const fs::path log = j.output.string() + ".log";
      std::error_code ec;
      fs::remove(log, ec);
      fs::remove(j.key_file, ec);
      for (const auto& cmd : j.commands) {
        const int rc = spawn(cmd, log);
        if (rc != 0) {
          std::lock_guard lock(io);
          std::cerr << fmt::format("kilnc compile: {} failed (exit {}):\n  {}\n", j.what, rc, command_line(cmd));
          std::ifstream in(log);
          std::cerr << in.rdbuf();
          failed = true;
          fs::remove(j.tmp, ec);
          break;
        }
      }
      if (failed) break;
      fs::rename(j.tmp, j.output);
      write_if_changed(j.key_file, j.key);
      if (const fs::path c = cached(j); !c.empty()) {  // best effort: a full disk only costs reuse
        fs::create_directories(c.parent_path(), ec);
        const fs::path tmp = c.string() + fmt::format(".{}.tmp", ::getpid());
        fs::copy_file(j.output, tmp, fs::copy_options::overwrite_existing, ec);
        if (!ec) fs::rename(tmp, c, ec);
        if (ec) fs::remove(tmp, ec);
      }
      fs::remove(log, ec);
      const std::size_t n = ++done;
      if (j.output.extension() == ".fatbin" || n % 200 == 0 || n == todo.size()) {
        std::lock_guard lock(io);
        std::cerr << fmt::format("kilnc compile: [{}/{}] {} ({:.0f} s)\n", n, todo.size(), j.what,
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, o.jobs); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (failed) return 1;

  if (o.cuda && !o.nvcc.empty()) remove_stale(dir / "cuda", ".fatbin", keep_fatbin);
  if (o.vulkan) remove_stale(dir / "spirv", ".spv", keep_spv);
  std::cerr << fmt::format("kilnc compile: {} compiled, {} up to date, {:.1f} s\n", todo.size(), jobs.size() - todo.size(),
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

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

struct PackOptions {
  fs::path index, out, cuda_dir, spirv_dir;
  std::vector<std::string> cuda_fatbins;
  std::string function = "kiln::builtin_registry";
};

int cmd_pack(const PackOptions& o) {
  const json index = json::parse(read_text(o.index));
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
    const int image = cuda && !fatbins.empty() && k["cuda_batch"].is_number() ? k["cuda_batch"].get<int>() : -1;
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

int exit_code(const Error& e) {
  switch (e.code()) {
    case ErrorCode::parse_error:
    case ErrorCode::invalid_argument:
    case ErrorCode::dtype_mismatch:
    case ErrorCode::unsupported: return 2;
    default: return 1;
  }
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) {
  using namespace kiln;
  CLI::App app{"kilnc: the Kiln kernel generator"};
  app.require_subcommand(1);

  bool ops_json = false;
  auto* ops = app.add_subcommand("ops", "List the op table");
  ops->add_flag("--json", ops_json, "Print JSON");

  std::string family = "map", expr, dtypes, target, function = "contig";
  int block_size = 256;
  auto* emit = app.add_subcommand("emit", "Print the generated source of one kernel");
  emit->add_option("--family", family, "Kernel family")->capture_default_str();
  emit->add_option("--expr", expr, "Infix expression over x, y, z, w")->required();
  emit->add_option("--dtypes", dtypes, "Input dtypes then the output dtype, e.g. f32,f32,f32")->required();
  emit->add_option("--target", target, "cuda or glsl")->required()->check(CLI::IsMember({"cuda", "glsl"}));
  emit->add_option("--function", function, "GLSL function: contig or strided")->capture_default_str();
  emit->add_option("--block-size", block_size, "Threads per block")->capture_default_str();

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
  build->add_option("--namespace", header_options.ns, "C++ namespace of the header's functions")->capture_default_str();
  build->add_option("--registry", header_options.registry, "Registry function (as given to kilnc pack --function)")
      ->capture_default_str();

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
  compile->add_option("--glslc", co.glslc, "glslc")->capture_default_str();
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
  pack->add_option("--function", po.function, "Registry function to define")->capture_default_str();
  pack->add_option("--out", po.out, "Registry source to write")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (*ops) return cmd_ops(ops_json);
    if (*emit) return cmd_emit(family, expr, dtypes, target, function, block_size);
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
