// Kiln's caches on disk share one root, one way of writing and one size policy: $KILN_CACHE_DIR,
// else $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln, with a folder per cache (jit: kernels compiled
// just in time; kernels: kilnc's machine-wide blobs; vulkan: the persisted VkPipelineCache).
// - Writing: to a unique temporary name, renamed into place, so a reader (another thread or
//   process) sees a whole file or none.
// - Reading: only a regular file owned by this user or root is taken; another user's file (in a
//   shared folder or not), a link, a FIFO or a device node is passed over (a miss), never opened
//   blocking.
// - Size: a folder that grows past cache_max_bytes() loses its least recently used entries (a hit
//   renews an entry's time) down to three quarters of the limit.
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

// <root>/|sub|, or "" when no root can be named (no KILN_CACHE_DIR, XDG_CACHE_HOME or HOME).
std::string cache_dir(std::string_view sub);

// Writes |bytes| to |path| (creating its folder) through a temporary file in the same folder,
// then renames it over |path|. False when any step failed (nothing is left behind then).
bool write_file_atomically(const std::string& path, std::span<const char> bytes);

// The whole of the cache entry |path|, or nullopt: with *why empty when there is no such file,
// else saying why it was not taken (not a regular file, owned by another user, unreadable, larger
// than the folder's limit).
std::optional<std::vector<char>> read_cache_entry(const std::string& path, std::string* why);

// Marks the entry |path| as used now (its modification time), so trimming keeps it longer. Best
// effort: a read-only cache stays as it is.
void touch_cache_entry(const std::string& path);

// The most bytes one cache folder keeps: $KILN_CACHE_MAX_SIZE (a byte count, or with a K, M, G or T
// suffix: powers of 1024; 0: no limit), else 2 GiB. A value that is not a size is reported once on
// stderr, naming the variable and the value, and the default is used.
std::uint64_t cache_max_bytes();

// Parses a size as KILN_CACHE_MAX_SIZE takes it ("512M", "2G", "1048576", "0"); nullopt when it is
// not one (empty, a negative or fractional number, an unknown suffix, past 2^64).
std::optional<std::uint64_t> parse_cache_size(std::string_view text);

struct TrimResult {
  std::uint64_t bytes_before = 0;  // the folder's entries (temporaries included)
  std::uint64_t bytes_removed = 0;
  std::size_t entries_removed = 0;
};

// When the entries of |dir| (not its subfolders) total more than |max_bytes| (0: no limit), removes
// the least recently modified ones until they total at most 3/4 of it. An entry is a regular file
// named as Kiln names them (16 or more hex digits, then .bin, .spv or .fatbin) together with its
// "<file>.sum" (kilnc's checksums); any other file is left alone (the folder may be a user's).
// Temporaries of entries older than an hour (their writer died) are removed whatever the size.
// Removing a file another process is reading is safe (POSIX keeps it until closed); a file that
// is gone already is skipped.
TrimResult trim_cache(const std::string& dir, std::uint64_t max_bytes);

// Notes that |bytes| were just written under |dir| by this process, and trims |dir| to
// cache_max_bytes() the first time this process writes there and again each time it has written
// another eighth of the limit: a folder stays within the limit plus what one process writes
// between two trims.
void note_cache_write(const std::string& dir, std::uint64_t bytes);

}  // namespace kiln
