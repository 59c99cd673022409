// Kernel manifests: a TOML file listing the kernels to generate at build time (kilnc build). The
// format is documented at the top of kernels/builtin.toml. Reading a manifest expands [[ops]]
// tables through the op table and parses [[kernel]] expressions; every error is a
// kiln::Error(parse_error) whose message starts with "<file>:<line>:<col>: ", pointing into the
// manifest (inside the expression string for expression errors).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/spec.hpp"

namespace kiln {

// The GPU targets a manifest kernel is built for. "vulkan" is emitted as GLSL and compiled to
// SPIR-V.
struct TargetSet {
  bool cuda = true;
  bool vulkan = true;
  bool operator==(const TargetSet&) const = default;
};

struct ManifestKernel {
  KernelSpec spec;
  std::string name;                  // spec.name(), cached
  TargetSet targets;
  std::vector<std::string> aliases;  // user names from `name = ...`, sorted, unique
  std::vector<std::string> input_names;  // from `inputs = ["gate: f32", ...]` ("" unnamed), else empty
  std::string origin;                // "<file>:<line>:<col>" of the first table that defined it
};

struct Manifest {
  // One entry per distinct spec (duplicates merged: targets and aliases united), sorted by name.
  std::vector<ManifestKernel> kernels;
  const ManifestKernel* find(std::string_view name) const;
};

// Parses manifest text; |origin| names it in error messages (usually the file path). |requested|
// are the targets the build compiles (kiln_add_kernels' TARGETS): a [[kernel]] without its own
// `targets` key that one of them cannot run is an error at its table (never a silent drop); a
// [[kernel]] lists `targets` to be built for fewer. [[ops]] tables leave out, per target, the op
// and dtype pairs the target cannot run (GLSL has no f64 transcendentals), as documented.
Manifest parse_manifest(std::string_view text, std::string_view origin, TargetSet requested = {});

// Names a manifest cannot give: a kernel name that is a C++ keyword, a name the generated header
// uses (registry, detail) or a spelling C++ reserves (_X..., __); an input name that is one of
// those, a generated function's own parameter (into, stream, options, ...) or kiln_*.
bool reserved_cpp_name(std::string_view name);
bool reserved_cpp_parameter(std::string_view name);
// Reads and parses a manifest file (io_error when it cannot be read).
Manifest read_manifest(const std::filesystem::path& file, TargetSet requested = {});



}  // namespace kiln
