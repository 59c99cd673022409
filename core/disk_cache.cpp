#include "core/disk_cache.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>

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

std::optional<std::vector<char>> read_cache_entry(const std::string& path, std::string* why) {
  why->clear();
  // O_NONBLOCK: a FIFO planted under an entry's name must not block the open; O_NOFOLLOW: a link
  // is not an entry Kiln wrote.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return std::nullopt;
    *why = err == ELOOP ? std::string("it is a symbolic link") : fmt::format("it cannot be opened ({})", std::strerror(err));
    return std::nullopt;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *why = fmt::format("it cannot be examined ({})", std::strerror(errno));
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    *why = "it is not a regular file";
    return std::nullopt;
  }
  // Another user's file is never taken, not even from that user's own folder: a link anywhere on
  // the path (a shared KILN_CACHE_DIR's subfolder pointing into their home) would pass any check of
  // the folders, and a planted entry can hold any kernel with a valid checksum.
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    *why = fmt::format("it belongs to another user (uid {}), and Kiln loads only its user's and root's entries",
                       st.st_uid);
    return std::nullopt;
  }
  const std::uint64_t limit = cache_max_bytes();
  if (limit && std::uint64_t(st.st_size) > limit) {
    *why = fmt::format("it is larger ({} bytes) than the cache's limit ({} bytes, KILN_CACHE_MAX_SIZE)", st.st_size, limit);
    return std::nullopt;
  }
  std::vector<char> bytes(std::size_t(st.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {  // a file cut short meanwhile reads short: the entry's checksum says so
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = fmt::format("it cannot be read ({})", std::strerror(errno));
      return std::nullopt;
    }
    if (n == 0) break;
    done += std::size_t(n);
  }
  bytes.resize(done);
  return bytes;
}

void touch_cache_entry(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  // Renewed at most once a minute: a hot entry costs no metadata write per hit.
  if (std::time(nullptr) - st.st_mtime < 60) return;
  const struct timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW);
}

std::optional<std::uint64_t> parse_cache_size(std::string_view text) {
  std::size_t i = 0;
  std::uint64_t n = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (n > (UINT64_MAX - std::uint64_t(text[i] - '0')) / 10) return std::nullopt;
    n = n * 10 + std::uint64_t(text[i] - '0');
  }
  if (i == 0) return std::nullopt;
  std::string_view suffix = text.substr(i);
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
      case 'b': case 'B': shift = 0; break;
      default: return std::nullopt;
    }
    suffix.remove_prefix(1);
    if (shift && (suffix == "B" || suffix == "iB" || suffix == "b")) suffix = {};
    if (!suffix.empty()) return std::nullopt;
  }
  if (shift && n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

std::uint64_t cache_max_bytes() {
  constexpr std::uint64_t kDefault = std::uint64_t(2) << 30;
  const char* v = std::getenv("KILN_CACHE_MAX_SIZE");
  if (!v || !*v) return kDefault;
  if (auto n = parse_cache_size(v)) return *n;
  static std::mutex mutex;
  static std::string warned;
  std::lock_guard lock(mutex);
  if (warned != v) {
    warned = v;
    std::fprintf(stderr,
                 "kiln: warning: KILN_CACHE_MAX_SIZE='%s' is not a size (a byte count, or with a K, M, G or T "
                 "suffix; 0: no limit); the caches keep the default, 2G\n",
                 v);
  }
  return kDefault;
}

namespace {

// Whether |name| is one of Kiln's entries: <anything ending in 16 or more hex digits> followed by
// .bin (JIT entries, pipeline caches), .spv or .fatbin (kilnc's blobs). Anything else in a folder
// a user pointed a cache at is theirs, and never removed.
bool is_entry_name(std::string_view name) {
  std::string_view stem;
  for (std::string_view ext : {".bin", ".spv", ".fatbin"})
    if (name.size() > ext.size() && name.substr(name.size() - ext.size()) == ext)
      stem = name.substr(0, name.size() - ext.size());
  std::size_t hex = 0;
  while (hex < stem.size() && std::isxdigit(static_cast<unsigned char>(stem[stem.size() - 1 - hex]))) ++hex;
  return hex >= 16;
}

}  // namespace

TrimResult trim_cache(const std::string& dir, std::uint64_t max_bytes) {
  namespace fs = std::filesystem;
  TrimResult r;
  struct Entry {
    std::vector<fs::path> files;
    std::uint64_t bytes = 0;
    fs::file_time_type time = fs::file_time_type::min();
  };
  std::map<std::string, Entry> entries;
  const auto stale_before = fs::file_time_type::clock::now() - std::chrono::hours(1);
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code e;
    if (!it->is_regular_file(e) || it->is_symlink(e)) continue;
    const std::uint64_t size = it->file_size(e);
    if (e) continue;  // removed meanwhile
    const fs::file_time_type time = it->last_write_time(e);
    if (e) continue;
    const std::string name = it->path().filename().string();
    if (const std::size_t tmp = name.find(".tmp-"); tmp != std::string::npos) {  // a writer's, live or dead
      std::string_view of = std::string_view(name).substr(0, tmp);
      if (of.size() > 4 && of.substr(of.size() - 4) == ".sum") of.remove_suffix(4);
      if (!is_entry_name(of)) continue;
      r.bytes_before += size;
      if (time < stale_before && (fs::remove(it->path(), e), !e)) {
        r.bytes_removed += size;
        ++r.entries_removed;
      }
      continue;
    }
    const bool sum = name.size() > 4 && name.compare(name.size() - 4, 4, ".sum") == 0;
    const std::string key = sum ? name.substr(0, name.size() - 4) : name;
    if (!is_entry_name(key)) continue;
    r.bytes_before += size;
    Entry& entry = entries[key];
    entry.files.push_back(it->path());
    entry.bytes += size;
    entry.time = std::max(entry.time, time);
  }
  std::uint64_t total = r.bytes_before - r.bytes_removed;
  if (!max_bytes || total <= max_bytes) return r;
  std::vector<Entry*> order;
  for (auto& [name, entry] : entries) order.push_back(&entry);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->time < b->time; });
  const std::uint64_t target = max_bytes / 4 * 3;
  for (const Entry* entry : order) {
    if (total <= target) break;
    bool removed = true;  // a file gone already counts as removed; one that stays does not
    for (const fs::path& f : entry->files) {
      fs::remove(f, ec);
      removed = removed && !ec;
    }
    if (!removed) continue;  // a read-only folder, another user's file in a sticky one
    total -= entry->bytes;
    r.bytes_removed += entry->bytes;
    ++r.entries_removed;
  }
  return r;
}

void note_cache_write(const std::string& dir, std::uint64_t bytes) {
  static std::mutex mutex;
  static std::map<std::string, std::uint64_t> written;  // since the folder's last trim
  const std::uint64_t limit = cache_max_bytes();
  {
    std::lock_guard lock(mutex);
    auto [it, first] = written.try_emplace(dir, 0);
    it->second += bytes;
    if (!first && (!limit || it->second < limit / 8)) return;
    it->second = 0;
  }
  trim_cache(dir, limit);
}

}  // namespace kiln
