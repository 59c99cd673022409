#include "runtime/disk_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <random>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <fmt/format.h>

namespace kiln {

std::string cache_dir(std::string_view sub) {
  std::string root;
  if (const char* v = std::getenv("KILN_CACHE_DIR"); v && *v) root = v;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) root = std::string(x) + "/kiln";
  else if (const char* h = std::getenv("HOME"); h && *h) root = std::string(h) + "/.cache/kiln";
  else return {};
  return root + "/" + std::string(sub);
}

bool write_file_atomically(const std::string& path, std::span<const char> bytes) {
  namespace fs = std::filesystem;
  static std::atomic<std::uint64_t> counter{0};
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  // A name no other writer uses — processes in other PID namespaces or on other hosts share a
  // cache folder with the same pids — created exclusively (never through a link left there).
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    std::uint64_t r = std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                      reinterpret_cast<std::uintptr_t>(&tmp);
    try {  // a sandbox without an entropy source: the clock and an address only
      std::random_device rd;
      r ^= (std::uint64_t(rd()) << 32) ^ rd();
    } catch (const std::exception&) {
    }
    tmp = fmt::format("{}.tmp-{}-{}-{:016x}", path, ::getpid(), counter.fetch_add(1), r);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  }
  if (fd < 0) return false;
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fs::remove(tmp, ec);
      return false;
    }
    done += std::size_t(n);
  }
  if (::close(fd) != 0) {
    fs::remove(tmp, ec);
    return false;
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

std::optional<std::vector<char>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace kiln
