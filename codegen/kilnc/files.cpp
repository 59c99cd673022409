// kilnc: file helpers shared by the commands.
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

// ---- files ------------------------------------------------------------------------------------

std::string read_text(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) fail(ErrorCode::io_error, fmt::format("{}: is a directory, not a file", p.string()));
  std::ifstream in(p, std::ios::binary);
  if (!in) fail(ErrorCode::io_error, fmt::format("{}: cannot read", p.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(ErrorCode::io_error, fmt::format("{}: cannot read", p.string()));
  return ss.str();
}

fs::path unique_temp(const fs::path& p) {
  static std::atomic<std::uint64_t> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return p.string() + fmt::format(".tmp-{}-{}-{:x}", ::getpid(), counter++, std::uint64_t(now) & 0xffffff);
}

json read_index(const fs::path& p) {
  auto bad = [&](const std::string& what) {
    fail(ErrorCode::parse_error, fmt::format("{}: not a kilnc index (kernels.json of kilnc build): {}", p.string(), what));
  };
  json index;
  try {
    index = json::parse(read_text(p));
  } catch (const json::exception& e) {
    bad(e.what());
  }
  auto strings = [&](const json& o, std::initializer_list<const char*> keys, const char* what) {
    for (const char* k : keys)
      if (!o.contains(k) || !o[k].is_string()) bad(fmt::format("{} without a string '{}'", what, k));
  };
  if (!index.is_object()) bad("not a JSON object");
  for (const char* key : {"kernels", "cuda_batches"})
    if (!index.contains(key) || !index[key].is_array()) bad(fmt::format("no '{}' array", key));
  for (const json& b : index["cuda_batches"]) {
    if (!b.is_object()) bad("a CUDA batch that is not an object");
    strings(b, {"file"}, "a CUDA batch");
  }
  for (const json& k : index["kernels"]) {
    if (!k.is_object()) bad("a kernel that is not an object");
    strings(k, {"name", "spec"}, "a kernel");
    for (const char* a : {"targets", "symbols", "functions"}) {
      if (!k.contains(a) || !k[a].is_array()) bad(fmt::format("kernel {} without a '{}' array", k["name"].get<std::string>(), a));
      for (const json& e : k[a])
        if (!e.is_string()) bad(fmt::format("kernel {}: '{}' holds a non-string", k["name"].get<std::string>(), a));
    }
    if (k["symbols"].size() != k["functions"].size())
      bad(fmt::format("kernel {}: {} symbols, {} functions", k["name"].get<std::string>(), k["symbols"].size(),
                      k["functions"].size()));
    if (!k.contains("block_size") || !k["block_size"].is_number_integer())
      bad(fmt::format("kernel {} without an integer 'block_size'", k["name"].get<std::string>()));
    if (k.contains("glsl")) {
      if (!k["glsl"].is_array()) bad(fmt::format("kernel {}: 'glsl' is not an array", k["name"].get<std::string>()));
      for (const json& g : k["glsl"]) {
        if (!g.is_object()) bad("a GLSL entry that is not an object");
        strings(g, {"file"}, "a GLSL entry");
      }
    }
  }
  return index;
}

// Writes |content| to |p| through a temporary file and a rename, unless |p| already holds it.
// Returns whether the file was (re)written.
bool write_if_changed(const fs::path& p, std::string_view content) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec) && fs::file_size(p, ec) == content.size() && read_text(p) == content) return false;
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const fs::path tmp = unique_temp(p);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), std::streamsize(content.size()));
    out.close();
    if (!out) {
      fs::remove(tmp, ec);
      fail(ErrorCode::io_error, fmt::format("{}: cannot write", tmp.string()));
    }
  }
  fs::rename(tmp, p, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    fail(ErrorCode::io_error, fmt::format("{}: cannot rename into place: {}", p.string(), why));
  }
  return true;
}

std::string hex64(std::uint64_t h) { return fmt::format("{:016x}", h); }
std::uint64_t hash_of(std::string_view s, std::uint64_t seed) { return XXH64(s.data(), s.size(), seed); }

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

int exit_code(const Error& e) {
  switch (e.code()) {
    case ErrorCode::parse_error:
    case ErrorCode::invalid_argument:
    case ErrorCode::dtype_mismatch:
    case ErrorCode::unsupported: return 2;
    default: return 1;
  }
}

}  // namespace kiln::kilnc
