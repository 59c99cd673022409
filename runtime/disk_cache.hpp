// Kiln's caches on disk share one root and one way of writing: $KILN_CACHE_DIR, else
// $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln, with a folder per cache (vulkan: the persisted
// VkPipelineCache; jit: kernels compiled just in time). Files are written to a unique temporary
// name and renamed into place, so a reader (another thread or process) sees a whole file or none.
// Thread-safety: every function may be called from any thread.
#pragma once

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

// The whole file, or nullopt when it cannot be opened.
std::optional<std::vector<char>> read_file(const std::string& path);

}  // namespace kiln
