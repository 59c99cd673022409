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
