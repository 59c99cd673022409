// What built kiln-bench: recorded in every report. Defined in a file generated at build time
// (bench/version.cmake), so the commit is the one built, not the one configured.
#pragma once

namespace kiln::bench {

extern const char* const kVersion;     // the project version, e.g. "0.1.0"
extern const char* const kGitCommit;   // short hash, "-dirty" when the tree had changes; "unknown"
extern const char* const kBuildType;   // CMAKE_BUILD_TYPE / configuration

}  // namespace kiln::bench
