// Emitters: a KernelSpec rendered to CUDA C++ or GLSL. One emitter core walks the expression; a
// dialect (CUDA or GLSL) says how to spell types, literals and variables. The emitter writes only
// the small instantiation unit (the fused expression as a function, the defines, the entry points);
// the kernel bodies live in templates/cuda/<family>.cuh and templates/glsl/<family>.glsl.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/spec.hpp"

namespace kiln {

enum class Target { cuda, glsl };
std::string_view target_name(Target t);

// Whether |spec| can be emitted for |target| (all dtypes and ops supported there); when not,
// |why| says what is missing (e.g. "GLSL has no f64 exp").
bool target_supports(const KernelSpec& spec, Target target, std::string* why = nullptr);

// These dispatch on the spec's family (codegen/family.hpp).
// CUDA: one instantiation unit defining an extern "C" __global__ function <name>_<suffix> per entry
// point of the family (map: <name>_contig(KilnMapParams), <name>_strided(KilnStridedParams)). It
// #includes "cuda/<family>.cuh" (templates/ must be on the include path: nvcc -I, or the header
// sources from template_sources() for NVRTC). Many units can be concatenated in one TU.
// |functions| limits the entry points to those a launch uses (the JIT compiles only what a plan
// picked); a family may emit more than asked, never fewer.
using FunctionSet = std::uint32_t;  // bit f: entry point f, in registry function order
inline constexpr FunctionSet kAllFunctions = ~FunctionSet(0);
std::string emit_cuda(const KernelSpec& spec, FunctionSet functions = kAllFunctions);
// The CUDA function symbols of a spec, in registry function order (the family's entry points).
std::vector<std::string> cuda_symbols(const KernelSpec& spec);

// GLSL: one self-contained compute shader per entry point |function|, with the templates inlined,
// for glslc/shaderc with --target-env=vulkan1.3. Entry point "main".
std::string emit_glsl(const KernelSpec& spec, int function);

// The template files (path relative to templates/, text), embedded in the library at build time.
struct TemplateSource {
  std::string_view path;  // e.g. "cuda/map.cuh"
  std::string_view text;
};
const std::vector<TemplateSource>& template_sources();

}  // namespace kiln
