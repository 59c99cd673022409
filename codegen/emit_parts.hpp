// The pieces of the emitter core (codegen/emit.cpp) that the families' emitters
// (codegen/families/*.cpp) build their instantiation units from. Not for use outside codegen/.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "codegen/expr.hpp"

namespace kiln::emit_parts {

// The body of an expression function: one typed local v<id> per node, in topological order,
// spelled for CUDA (storage-typed inputs a<k> converted by the prelude) or GLSL (compute-typed a<k>).
std::string cuda_locals(const Expr& e, std::string_view indent);
std::string glsl_locals(const Expr& e, std::string_view indent);

std::string_view cuda_storage(DType t);  // e.g. "unsigned short" for f16
std::string_view glsl_storage(DType t);  // e.g. "uint16_t" for f16
std::string_view glsl_compute(DType t);  // e.g. "float" for f16

// GLSL hooks: storage value v -> compute value; raw bits b (uint64_t) -> compute value; compute
// value c -> storage value; compute value c -> raw bits.
std::string glsl_load_hook(DType t);
std::string glsl_unpack_hook(DType t);
std::string glsl_store_hook(DType t);
std::string glsl_pack_hook(DType t);

// "// ---- templates/<path> ----", a #line and the embedded template's text.
std::string glsl_inline(std::string_view path);

// The lines after #version of a template that may use subgroup arithmetic: KILN_SUBGROUP is 1 (and
// the subgroup extensions are required) unless the compile defines it 0, as the runtime does for a
// Vulkan device without subgroup arithmetic (runtime/jit.cpp).
std::string glsl_subgroup_extensions();

// The defines that select the prelude sections |exprs| use (8/16-bit storage of |storage|, f64,
// compute types, f32 functions, casts), then |defines| (one line each), then the prelude itself.
std::string glsl_prelude(const std::vector<DType>& storage, const std::vector<const Expr*>& exprs,
                         const std::vector<std::string>& defines);

}  // namespace kiln::emit_parts
