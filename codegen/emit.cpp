// The emitters: one core walks the expression DAG and writes each node as a typed local; a dialect
// (CUDA or GLSL) says how to spell types, literals and declarations. Each family's descriptor
// (codegen/families/*.cpp) writes its instantiation unit from these pieces (codegen/emit_parts.hpp);
// the kernel bodies live in its templates (templates/cuda/<family>.cuh, templates/glsl/<family>.glsl)
// and the op spellings in the preludes
// (templates/*/ops.*): every op is kiln_<name>(...), every cast kiln_cast_<dtype>(...), every
// narrow result kiln_narrow_<dtype>(...). The semantics are in docs/semantics.md.
#include "codegen/emit.hpp"

#include <algorithm>
#include <cctype>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "codegen/emit_parts.hpp"
#include "codegen/family.hpp"
#include "core/error.hpp"

namespace kiln {

namespace {

// ---- dialects ----------------------------------------------------------------------------------

// Compute types, indexed by the compute dtype.
std::string_view cuda_compute_type(DType t) {
  switch (compute_dtype(t)) {
    case DType::s32: return "int";
    case DType::u32: return "unsigned";
    case DType::s64: return "long long";
    case DType::u64: return "unsigned long long";
    case DType::f32: return "float";
    default: return "double";
  }
}
std::string_view glsl_compute_type(DType t) {
  switch (compute_dtype(t)) {
    case DType::s32: return "int";
    case DType::u32: return "uint";
    case DType::s64: return "int64_t";
    case DType::u64: return "uint64_t";
    case DType::f32: return "float";
    default: return "double";
  }
}

// Storage (memory) types. f16 and bf16 are 16-bit patterns; pred is one byte holding 0 or 1.
std::string_view cuda_storage_type(DType t) {
  switch (t) {
    case DType::pred: case DType::u8: return "unsigned char";
    case DType::s8: return "signed char";
    case DType::s16: return "short";
    case DType::u16: case DType::f16: case DType::bf16: return "unsigned short";
    default: return cuda_compute_type(t);
  }
}
std::string_view glsl_storage_type(DType t) {
  switch (t) {
    case DType::pred: case DType::u8: return "uint8_t";
    case DType::s8: return "int8_t";
    case DType::s16: return "int16_t";
    case DType::u16: case DType::f16: case DType::bf16: return "uint16_t";
    default: return glsl_compute_type(t);
  }
}

std::string hex_float(double v, bool f32) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return std::string(buf) + (f32 ? "f" : "");
}

// Constants, exactly: CUDA hex floats (bit casts for NaN/Inf); GLSL bit casts.
std::string cuda_literal(Scalar v, DType t) {
  switch (compute_dtype(t)) {
    case DType::f32: {
      const float f = float(v.f);
      if (!std::isfinite(f)) return fmt::format("__uint_as_float(0x{:08X}u)", std::bit_cast<std::uint32_t>(f));
      return hex_float(f, true);
    }
    case DType::f64:
      if (!std::isfinite(v.f)) return fmt::format("__longlong_as_double(0x{:016X}ll)", v.u);
      return hex_float(v.f, false);
    case DType::s32:
      return v.i == INT32_MIN ? "(-2147483647 - 1)" : fmt::format("{}", v.i);
    case DType::s64:
      return v.i == INT64_MIN ? "(-9223372036854775807ll - 1ll)" : fmt::format("{}ll", v.i);
    case DType::u64: return fmt::format("{}ull", v.u);
    default: return fmt::format("{}u", v.u);
  }
}
std::string glsl_literal(Scalar v, DType t) {
  switch (compute_dtype(t)) {
    case DType::f32:
      return fmt::format("uintBitsToFloat(0x{:08X}u)", std::bit_cast<std::uint32_t>(float(v.f)));
    case DType::f64:
      return fmt::format("packDouble2x32(uvec2(0x{:08X}u, 0x{:08X}u))", std::uint32_t(v.u),
                         std::uint32_t(v.u >> 32));
    case DType::s32:
      return v.i == INT32_MIN ? "(-2147483647 - 1)" : fmt::format("{}", v.i);
    case DType::s64:
      return v.i == INT64_MIN ? "(-9223372036854775807l - 1l)" : fmt::format("{}l", v.i);
    case DType::u64: return fmt::format("{}ul", v.u);
    default: return fmt::format("{}u", v.u);
  }
}

struct Dialect {
  std::string_view (*compute_type)(DType);
  std::string (*literal)(Scalar, DType);
  // Declaration of a local of dtype |t|: CUDA "const T", GLSL "T" ("precise T" for floats, so no
  // expression is contracted into an fma).
  std::string (*declare)(DType);
  // The value of input |k| (dtype |t|) inside the expression function.
  std::string (*input)(int k, DType t);
};

const Dialect kCuda = {
    cuda_compute_type,
    cuda_literal,
    [](DType t) { return fmt::format("const {}", cuda_compute_type(t)); },
    [](int k, DType t) { return fmt::format("kiln_load_{}(a{})", dtype_name(t), k); },
};
const Dialect kGlsl = {
    glsl_compute_type,
    glsl_literal,
    [](DType t) { return fmt::format("{}{}", is_float(t) ? "precise " : "", glsl_compute_type(t)); },
    [](int k, DType) { return fmt::format("a{}", k); },
};

// ---- the emitter core --------------------------------------------------------------------------

bool needs_narrowing(DType t) {
  switch (t) {
    case DType::pred: case DType::s8: case DType::s16: case DType::u8: case DType::u16:
    case DType::f16: case DType::bf16: return true;
    default: return false;
  }
}

// The right-hand side of node |id|.
std::string node_value(const Expr& e, NodeId id, const Dialect& d) {
  const Node& n = e.node(id);
  switch (n.kind) {
    case NodeKind::input: return d.input(n.input, n.dtype);
    case NodeKind::constant: return d.literal(n.value, n.dtype);
    case NodeKind::op: break;
  }
  auto arg = [&](int k) { return fmt::format("v{}", n.args[k]); };
  if (n.op == Op::as_type) return fmt::format("kiln_cast_{}({})", dtype_name(n.dtype), arg(0));
  std::string call = fmt::format("kiln_{}(", op_info(n.op).name);
  for (int k = 0; k < n.num_args; ++k) call.append(k ? ", " : "").append(arg(k));
  switch (n.op) {  // ops that depend on the dtype's width
    case Op::count_leading_zeros: case Op::population_count: case Op::left_shift:
    case Op::right_shift:
      call += fmt::format(", {}", dtype_bits(e.dtype(n.args[0])));
      break;
    default: break;
  }
  call += ")";
  if (n.op != Op::select && needs_narrowing(n.dtype))
    call = fmt::format("kiln_narrow_{}({})", dtype_name(n.dtype), call);
  return call;
}

// The body of the expression function: one local per node (v<id>), in topological order.
std::string expression_locals(const Expr& e, const Dialect& d, std::string_view indent) {
  std::string s;
  for (NodeId id = 0; id < e.nodes().size(); ++id)
    s += fmt::format("{}{} v{} = {};\n", indent, d.declare(e.dtype(id)), id, node_value(e, id, d));
  return s;
}

void check_emittable(const KernelSpec& spec, Target target) {
  std::string why;
  if (!target_supports(spec, target, &why))
    fail(ErrorCode::unsupported,
         fmt::format("{}: cannot emit {}: {}", spec.name(), target_name(target), why));
}

std::string_view template_text(std::string_view path) {
  for (const auto& t : template_sources())
    if (t.path == path) return t.text;
  fail(ErrorCode::invalid_argument, fmt::format("template {} is not embedded in this build", path));
}

// ---- GLSL hooks ----------------------------------------------------------------------------------

// Raw bits (uint64_t b, zero-extended) -> compute value.
std::string glsl_unpack(DType t) {
  switch (t) {
    case DType::pred: return "(uint(b) != 0u ? 1u : 0u)";
    case DType::s8: return "bitfieldExtract(int(uint(b)), 0, 8)";
    case DType::s16: return "bitfieldExtract(int(uint(b)), 0, 16)";
    case DType::s32: return "int(uint(b))";
    case DType::s64: return "int64_t(b)";
    case DType::u8: case DType::u16: case DType::u32: return "uint(b)";
    case DType::u64: return "(b)";
    case DType::f16: return "kiln_f16_bits_to_f32(uint(b))";
    case DType::bf16: return "kiln_bf16_bits_to_f32(uint(b))";
    case DType::f32: return "uintBitsToFloat(uint(b))";
    case DType::f64: return "uint64BitsToDouble(b)";
  }
  return "";
}
// Storage value v -> compute value.
std::string glsl_load(DType t) {
  switch (t) {
    case DType::pred: return "(uint(v) != 0u ? 1u : 0u)";
    case DType::s8: case DType::s16: return "int(v)";
    case DType::u8: case DType::u16: return "uint(v)";
    case DType::f16: return "kiln_f16_bits_to_f32(uint(v))";
    case DType::bf16: return "kiln_bf16_bits_to_f32(uint(v))";
    default: return "(v)";
  }
}
// Compute value c -> storage value.
std::string glsl_store(DType t) {
  switch (t) {
    case DType::pred: case DType::u8: return "uint8_t(c)";
    case DType::s8: return "int8_t(c)";
    case DType::s16: return "int16_t(c)";
    case DType::u16: return "uint16_t(c)";
    case DType::f16: return "uint16_t(kiln_f32_to_f16_bits(c))";
    case DType::bf16: return "uint16_t(kiln_f32_to_bf16_bits(c))";
    default: return "(c)";
  }
}
// Compute value c -> raw bits (uint64_t; only the element's low bytes are used).
std::string glsl_pack(DType t) {
  switch (t) {
    case DType::s8: case DType::s16: case DType::s32: return "uint64_t(uint(c))";
    case DType::f16: return "uint64_t(kiln_f32_to_f16_bits(c))";
    case DType::bf16: return "uint64_t(kiln_f32_to_bf16_bits(c))";
    case DType::f32: return "uint64_t(floatBitsToUint(c))";
    case DType::f64: return "doubleBitsToUint64(c)";
    default: return "uint64_t(c)";
  }
}

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = char(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::string inline_template(std::string_view path) {
  return fmt::format("// ---- templates/{} ----\n#line 1 \"{}\"\n{}\n", path, path, template_text(path));
}

}  // namespace

std::string_view target_name(Target t) { return t == Target::cuda ? "cuda" : "glsl"; }

bool target_supports(const KernelSpec& spec, Target target, std::string* why) {
  const Family* f = find_family(spec.family);
  if (!f) {
    if (why) *why = fmt::format("unknown kernel family '{}' (families: {})", spec.family, family_names());
    return false;
  }
  if (spec.expr.nodes().empty()) {
    if (why) *why = "the expression is empty";
    return false;
  }
  return f->supports(spec, target, why);
}

std::vector<std::string> cuda_symbols(const KernelSpec& spec) {
  const std::string name = spec.name();
  std::vector<std::string> out;
  for (const FamilyEntryPoint& e : family_of(spec).entry_points) out.push_back(fmt::format("{}_{}", name, e.suffix));
  return out;
}

std::string emit_cuda(const KernelSpec& spec, FunctionSet functions) {
  check_emittable(spec, Target::cuda);
  return family_of(spec).emit_cuda(spec, functions);
}

std::string emit_glsl(const KernelSpec& spec, int function) {
  check_emittable(spec, Target::glsl);
  const Family& f = family_of(spec);
  if (function < 0 || std::size_t(function) >= f.entry_points.size())
    fail(ErrorCode::invalid_argument, fmt::format("{}: {} kernels have functions 0..{}, not {}", spec.name(), f.name,
                                                  f.entry_points.size() - 1, function));
  return f.emit_glsl(spec, function);
}

// ---- the pieces the families' emitters share (codegen/emit_parts.hpp) ---------------------------

namespace emit_parts {

std::string cuda_locals(const Expr& e, std::string_view indent) { return expression_locals(e, kCuda, indent); }
std::string glsl_locals(const Expr& e, std::string_view indent) { return expression_locals(e, kGlsl, indent); }
std::string_view cuda_storage(DType t) { return cuda_storage_type(t); }
std::string_view glsl_storage(DType t) { return glsl_storage_type(t); }
std::string_view glsl_compute(DType t) { return glsl_compute_type(t); }
std::string glsl_load_hook(DType t) { return glsl_load(t); }
std::string glsl_unpack_hook(DType t) { return glsl_unpack(t); }
std::string glsl_store_hook(DType t) { return glsl_store(t); }
std::string glsl_pack_hook(DType t) { return glsl_pack(t); }
std::string glsl_inline(std::string_view path) { return inline_template(path); }

std::string glsl_subgroup_extensions() {
  return "#ifndef KILN_SUBGROUP\n#define KILN_SUBGROUP 1\n#endif\n#if KILN_SUBGROUP\n"
         "#extension GL_KHR_shader_subgroup_basic : require\n#extension GL_KHR_shader_subgroup_arithmetic : require\n"
         "#endif\n";
}

std::string glsl_prelude(const std::vector<DType>& storage, const std::vector<const Expr*>& exprs,
                         const std::vector<std::string>& defines) {
  bool int8 = false, int16 = false;
  for (DType t : storage) {
    int8 |= dtype_size(t) == 1;
    int16 |= dtype_size(t) == 2;
  }
  // Which prelude sections the expressions use (see templates/glsl/ops.glsl).
  std::set<DType> compute;
  bool math32 = false, math64 = false, casts = false;
  for (const Expr* e : exprs)
    for (const Node& n : e->nodes()) {
      compute.insert(compute_dtype(n.dtype));
      if (n.kind != NodeKind::op) continue;
      casts |= n.op == Op::as_type;
      const DType operand = compute_dtype(e->dtype(n.args[0]));
      math32 |= op_info(n.op).math_fn && operand == DType::f32;
      math64 |= op_info(n.op).math_fn && operand == DType::f64;
    }
  std::string s;
  if (int8) s += "#define KILN_NEED_INT8 1\n";
  if (int16) s += "#define KILN_NEED_INT16 1\n";
  if (compute.count(DType::f64)) s += "#define KILN_NEED_FLOAT64 1\n";
  for (DType t : compute)
    if (t != DType::f64) s += fmt::format("#define KILN_USE_{} 1\n", upper(dtype_name(t)));
  if (casts) s += "#define KILN_USE_CASTS 1\n";
  for (const std::string& d : defines) s += d + "\n";
  s += inline_template("glsl/ops.glsl");
  if (math32 || math64)  // erf_f64 starts from f32's erf_inv
    for (const char* f : {"glsl/math_f32.glsl", "glsl/erf_f32.glsl"}) s += inline_template(f);
  if (math64)
    for (const char* f : {"glsl/math_f64.glsl", "glsl/trig_f64.glsl", "glsl/erf_f64.glsl"}) s += inline_template(f);
  return s;
}

}  // namespace emit_parts

}  // namespace kiln
