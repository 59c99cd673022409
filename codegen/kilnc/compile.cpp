// kilnc compile: nvcc over the CUDA batches and the GLSL shaders to validated, optimized SPIR-V,
// in parallel, with a machine-wide cache. GLSL compiles in-process by default (shaderc, then the
// SPIRV-Tools optimizer and validator, one compiler per worker thread): spawning glslc, spirv-opt
// and spirv-val per shader spent most of its time starting the tools.
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
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <shaderc/shaderc.hpp>
#include <spirv-tools/libspirv.hpp>
#include <spirv-tools/optimizer.hpp>

#include "codegen/api_header.hpp"
#include "codegen/emit.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/family.hpp"
#include "codegen/manifest.hpp"
#include "core/disk_cache.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

extern char** environ;

#include "codegen/kilnc/kilnc.hpp"

namespace kiln::kilnc {

// ---- kilnc compile --------------------------------------------------------------------------

struct Job {
  std::vector<std::vector<std::string>> commands;  // run in order; the first failure stops
  fs::path glsl;                                   // in-process: the GLSL source to compile to tmp
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

// GLSL -> SPIR-V in the calling thread: shaderc (Vulkan 1.3, no optimization: its -O crashed on
// some shaders with SPIRV-Tools 2022.4), the SPIRV-Tools performance passes (spirv-opt -O), then
// the validator (spirv-val). Writes |out|; on failure returns false with the messages in |log|.
bool compile_glsl(const fs::path& source, const fs::path& out, std::string* log) {
  thread_local shaderc::Compiler compiler;  // one per worker: its setup is most of a small compile
  shaderc::CompileOptions options;
  options.SetTargetEnvironment(shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_3);
  options.SetOptimizationLevel(shaderc_optimization_level_zero);
  const std::string text = read_text(source);
  const auto result = compiler.CompileGlslToSpv(text, shaderc_compute_shader, source.string().c_str(), options);
  if (result.GetCompilationStatus() != shaderc_compilation_status_success) {
    *log = "shaderc: " + result.GetErrorMessage();
    return false;
  }
  std::vector<std::uint32_t> words(result.cbegin(), result.cend()), optimized;
  auto consumer = [log](spv_message_level_t level, const char*, const spv_position_t& at, const char* text) {
    if (level <= SPV_MSG_ERROR) *log += fmt::format("word {}: {}\n", at.index, text);
  };
  spvtools::Optimizer opt(SPV_ENV_VULKAN_1_3);
  opt.SetMessageConsumer(consumer);
  opt.RegisterPerformancePasses();
  if (!opt.Run(words.data(), words.size(), &optimized)) {
    *log = "spirv-opt: " + *log;
    return false;
  }
  spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_3);
  tools.SetMessageConsumer(consumer);
  if (!tools.Validate(optimized.data(), optimized.size(), spvtools::ValidatorOptions())) {
    *log = "spirv-val: " + *log;
    return false;
  }
  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(optimized.data()), std::streamsize(optimized.size() * 4));
  if (!f) {
    *log = "cannot write " + out.string();
    return false;
  }
  return true;
}

// The identity of the in-process GLSL toolchain, for cache keys.
std::string in_process_glsl_identity() {
  unsigned version = 0, revision = 0;
  shaderc_get_spv_version(&version, &revision);
  return fmt::format("shaderc+spirv-tools in-process spv {}.{} {} -O val", version, revision, spvSoftwareVersionString());
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



// The cache directory: $KILN_KERNEL_CACHE, else $KILN_CACHE_DIR/kernels (the root of every
// cache Kiln keeps), else $XDG_CACHE_HOME/kiln/kernels, else ~/.cache/kiln/kernels; "off"
// disables it.
fs::path default_kernel_cache() {
  if (const char* e = std::getenv("KILN_KERNEL_CACHE"); e && *e) return std::string(e) == "off" ? fs::path() : fs::path(e);
  if (const char* r = std::getenv("KILN_CACHE_DIR"); r && *r) return fs::path(r) / "kernels";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "kiln" / "kernels";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "kiln" / "kernels";
  return {};
}

// The machine-wide cache's entries: the blob, and <blob>.sum holding its XXH64. An entry whose
// checksum does not match (a torn or truncated copy) is not taken (and removed); one without a
// checksum (from before checksums, or its writer is between the two renames) is taken when it
// looks like its kind — SPIR-V's magic and whole words, a fatbin's magic — and gets one. Both files
// are read as cache entries (core/disk_cache.hpp: this user's regular files, never blocking), and
// the bytes checked are the bytes returned: the caller writes them, never the path again.
std::optional<std::string> cache_entry_ok(const fs::path& c) {
  try {
    std::string why;
    const auto bytes = read_cache_entry(c.string(), &why);
    if (!bytes) {
      if (!why.empty())
        std::cerr << fmt::format("kilnc compile: warning: passing over the cache entry {}: {}\n", c.string(), why);
      return std::nullopt;
    }
    std::string blob(bytes->begin(), bytes->end());
    const std::string sum = hex64(hash_of(blob)) + "\n";
    std::error_code ec;
    const fs::path sum_file = c.string() + ".sum";
    bool ok;
    std::string sum_why;
    if (const auto stored = read_cache_entry(sum_file.string(), &sum_why)) {
      ok = std::string(stored->begin(), stored->end()) == sum;
    } else if (!sum_why.empty()) {  // something else under the checksum's name: not this entry's
      std::cerr << fmt::format("kilnc compile: warning: passing over the cache entry {}: its checksum file {}\n",
                               c.string(), sum_why);
      return std::nullopt;
    } else {
      std::uint32_t magic = 0;
      if (blob.size() >= 4) std::memcpy(&magic, blob.data(), 4);
      ok = c.extension() == ".spv" ? blob.size() >= 20 && blob.size() % 4 == 0 && magic == 0x07230203u
                                   : blob.size() >= 16 && magic == 0xBA55ED50u;
      if (ok) {
        try {
          write_if_changed(sum_file, sum);
        } catch (const std::exception&) {  // a read-only cache: taken on its looks all the same
        }
      }
    }
    if (!ok) {
      std::cerr << fmt::format("kilnc compile: warning: the cache entry {} is corrupt or truncated; compiling it again\n",
                               c.string());
      fs::remove(c, ec);
      fs::remove(sum_file, ec);
      return std::nullopt;
    }
    return blob;
  } catch (const std::exception&) {  // unreadable: a miss
    return std::nullopt;
  }
}

// A tool's identity for cache keys: the file it names — a bare name found on PATH as
// posix_spawnp finds it, links followed (/usr/local/cuda -> cuda-13.0) — with its size and
// modification time, so a toolkit upgrade misses both the build's keys and the machine-wide cache.
std::string tool_identity(const std::string& tool) {
  if (tool.empty()) return {};
  std::error_code ec;
  fs::path p = tool;
  if (tool.find('/') == std::string::npos) {
    p.clear();
    std::string path;
    if (const char* e = std::getenv("PATH")) {
      path = e;
    } else {  // posix_spawnp's default search path
      path.resize(::confstr(_CS_PATH, nullptr, 0));
      if (!path.empty()) ::confstr(_CS_PATH, path.data(), path.size());
      path = path.c_str();
    }
    for (std::size_t at = 0; at <= path.size();) {  // empty entries (a::b, :a) are the working directory
      const std::size_t end = std::min(path.find(':', at), path.size());
      const std::string d = path.substr(at, end - at);
      at = end + 1;
      const fs::path c = fs::path(d.empty() ? "." : d) / tool;
      if (fs::is_regular_file(c, ec) && ::access(c.c_str(), X_OK) == 0) {
        p = c;
        break;
      }
    }
    if (p.empty()) return tool;  // not found: the run fails and says so
  }
  const fs::path real = fs::canonical(p, ec);
  if (ec) return tool;
  return fmt::format("{}={}:{}:{}", tool, real.string(), fs::file_size(real, ec),
                     fs::last_write_time(real, ec).time_since_epoch().count());
}

// The sources must be the ones the index describes (their hashes): a build cut short, or files
// edited by hand, would otherwise be compiled under another kernel's name.
void check_source_hash(const json& entry, const fs::path& file, const std::string& text, const fs::path& index) {
  if (!entry.contains("hash")) return;  // an index from before hashes
  if (!entry["hash"].is_string() || entry["hash"].get<std::string>() != hex64(hash_of(text)))
    fail(ErrorCode::parse_error, fmt::format("{}: does not match the index {} (an interrupted or newer kilnc build, or "
                                             "an edit); run kilnc build again",
                                             file.string(), index.string()));
}

int cmd_compile(const CompileOptions& o) {
  const fs::path dir = o.index.parent_path();
  const json index = read_index(o.index);
  std::vector<Job> jobs;
  std::set<std::string> keep_fatbin, keep_spv;

  if (o.cuda && !o.nvcc.empty()) {
    const std::vector<std::string> flags = split_ws(o.nvcc_flags);
    const std::string base_key = command_line(flags) + "\n" + tool_identity(o.nvcc);
    for (const json& b : index["cuda_batches"]) {
      const fs::path cu = dir / b["file"].get<std::string>();
      Job j;
      j.output = fs::path(cu).replace_extension(".fatbin");
      j.tmp = unique_temp(j.output);
      j.key_file = j.output.string() + ".key";
      const std::string source = read_text(cu);
      check_source_hash(b, cu, source, o.index);
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
    const std::string tools = o.glslc.empty() ? std::string()
                                              : tool_identity(o.glslc) + "\n" + tool_identity(o.spirv_opt) + "\n" +
                                                    tool_identity(o.spirv_val) + "\n";
    for (const json& k : index["kernels"]) {
      if (!k.contains("glsl")) continue;
      for (const json& g : k["glsl"]) {
        const fs::path comp = dir / g["file"].get<std::string>();
        Job j;
        j.output = dir / "spirv" / fs::path(comp.filename()).replace_extension(".spv");
        j.tmp = unique_temp(j.output);
        j.key_file = j.output.string() + ".key";
        j.what = comp.filename().string();
        keep_spv.insert(j.output.filename().string());
        const std::string source = read_text(comp);
        check_source_hash(g, comp, source, o.index);
        if (o.glslc.empty()) {  // in-process
          j.key = hex64(hash_of(in_process_glsl_identity() + source)) + "\n";
          j.glsl = comp;
          jobs.push_back(std::move(j));
          continue;
        }
        j.key = hex64(hash_of(tools + command_line(flags) + o.spirv_opt_flags + source)) + "\n";
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
        jobs.push_back(std::move(j));
      }
    }
  }

  // Skip the jobs whose output exists with the same key (inputs, flags and tools unchanged), or
  // whose output is in the machine-wide cache.
  auto cached = [&](const Job& j) {  // the key holds the tools' identities
    return o.cache_dir.empty() ? fs::path() : o.cache_dir / (hex64(hash_of(j.key)) + j.output.extension().string());
  };
  std::vector<Job*> todo;
  std::size_t from_cache = 0;
  for (Job& j : jobs) {
    std::error_code ec;
    if (fs::exists(j.output, ec) && fs::exists(j.key_file, ec) && read_text(j.key_file) == j.key) continue;
    fs::create_directories(j.output.parent_path());
    const fs::path c = cached(j);
    if (const auto blob = c.empty() ? std::nullopt : cache_entry_ok(c)) {
      ec.clear();
      {
        std::ofstream out(j.tmp, std::ios::binary | std::ios::trunc);
        out.write(blob->data(), std::streamsize(blob->size()));
        if (!out.flush()) ec = std::make_error_code(std::errc::io_error);
      }
      if (!ec) fs::rename(j.tmp, j.output, ec);
      if (!ec) {
        write_if_changed(j.key_file, j.key);
        touch_cache_entry(c.string());
        ++from_cache;
        continue;
      }
      fs::remove(j.tmp, ec);  // compiled below instead
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
      try {  // nothing escapes the thread (std::terminate): a failure is reported and stops the run
        fs::remove(log, ec);
        fs::remove(j.key_file, ec);
        if (!j.glsl.empty()) {
          std::string messages;
          if (!compile_glsl(j.glsl, j.tmp, &messages)) {
            std::lock_guard lock(io);
            std::cerr << fmt::format("kilnc compile: {} failed:\n{}\n", j.what, messages);
            failed = true;
            fs::remove(j.tmp, ec);
            break;
          }
        }
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
        if (failed) {
          fs::remove(j.tmp, ec);
          break;
        }
        fs::rename(j.tmp, j.output);
        write_if_changed(j.key_file, j.key);
        if (const fs::path c = cached(j); !c.empty()) {  // best effort: a full disk only costs reuse
          fs::create_directories(c.parent_path(), ec);
          const fs::path tmp = unique_temp(c);
          fs::copy_file(j.output, tmp, fs::copy_options::overwrite_existing, ec);
          if (!ec) fs::rename(tmp, c, ec);
          if (ec) {
            fs::remove(tmp, ec);
          } else {
            try {
              write_if_changed(c.string() + ".sum", hex64(hash_of(read_text(j.output))) + "\n");
            } catch (const std::exception&) {  // the entry is then taken on its looks, or rebuilt
            }
          }
        }
        fs::remove(log, ec);
        const std::size_t n = ++done;
        if (j.output.extension() == ".fatbin" || n % 200 == 0 || n == todo.size()) {
          std::lock_guard lock(io);
          std::cerr << fmt::format("kilnc compile: [{}/{}] {} ({:.0f} s)\n", n, todo.size(), j.what,
                                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        }
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(io);
          std::cerr << fmt::format("kilnc compile: {} failed: {}\n", j.what, e.what());
        }
        failed = true;
        fs::remove(j.tmp, ec);
        break;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, o.jobs); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (failed) return 1;

  if (!o.cache_dir.empty()) {  // the machine-wide cache keeps to KILN_CACHE_MAX_SIZE
    if (const TrimResult t = trim_cache(o.cache_dir.string(), cache_max_bytes()); t.entries_removed)
      std::cerr << fmt::format("kilnc compile: the cache {} held {:.1f} MiB; removed its {} least recently used entries "
                               "({:.1f} MiB) to keep under KILN_CACHE_MAX_SIZE\n",
                               o.cache_dir.string(), t.bytes_before / 1048576.0, t.entries_removed,
                               t.bytes_removed / 1048576.0);
  }
  if (o.cuda && !o.nvcc.empty()) remove_stale(dir / "cuda", ".fatbin", keep_fatbin);
  if (o.vulkan) remove_stale(dir / "spirv", ".spv", keep_spv);
  std::cerr << fmt::format("kilnc compile: {} compiled, {} up to date, {:.1f} s\n", todo.size(), jobs.size() - todo.size(),
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}

}  // namespace kiln::kilnc
