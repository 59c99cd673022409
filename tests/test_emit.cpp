// Tests of the CUDA and GLSL emitters (codegen/emit.cpp) and the map templates: every op of the
// op table with every dtype it accepts (plus as_type for all 13x13 pairs and select for every
// dtype) is emitted for both targets; the CUDA units are compiled with NVRTC to sm_90 cubin (many
// units per program, which also checks that units concatenate into one TU), and the GLSL shaders
// are compiled with shaderc for Vulkan 1.3 and checked by the SPIR-V validator. Where GLSL cannot
// run an op (f64 transcendental functions), target_supports must say so, and only there.
// Execution is tested by the conformance suite (tests/conformance/).
#include <gtest/gtest.h>

#include <deque>
#include <nvrtc.h>
#include <shaderc/shaderc.h>
#include <spirv-tools/libspirv.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "codegen/abi.hpp"
#include "codegen/api_header.hpp"
#include "codegen/emit.hpp"
#include "codegen/families/contract.hpp"
#include "codegen/families/conv.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/families/rows.hpp"
#include "codegen/families/scan.hpp"
#include "codegen/family.hpp"
#include "codegen/spec.hpp"
#include "runtime/registry.hpp"
#include "core/error.hpp"

namespace kiln {
namespace {

struct Case {
  std::string label;  // e.g. "add(f16)" or "as_type(s8 -> f32)"
  KernelSpec spec;
  Op op;
  DType operand;
};

// Every op with every dtype it accepts; as_type for every pair; select for every dtype.
const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> v;
    for (const OpInfo& o : op_table()) {
      for (DType t : kAllDTypes) {
        if (o.op == Op::as_type) {
          for (DType to : kAllDTypes)
            v.push_back({fmt::format("as_type({} -> {})", dtype_name(t), dtype_name(to)),
                         single_op_spec(o.op, t, to), o.op, t});
        } else if (o.op == Op::select || (o.accepts & dtype_bit(t))) {
          v.push_back({fmt::format("{}({})", o.name, dtype_name(t)), single_op_spec(o.op, t), o.op, t});
        }
      }
    }
    return v;
  }();
  return cases;
}

unsigned worker_count() { return std::clamp(std::thread::hardware_concurrency(), 2u, 8u); }

// Compiles |source| with NVRTC to an sm_90 cubin, the templates as headers, with the build's flags
// plus |extra| options. Empty on success, else the log.
std::string nvrtc_compile(const std::string& source, std::vector<const char*> extra = {}) {
  std::vector<const char*> names, texts;
  std::deque<std::string> storage;  // stable c_str()s, however many templates there are
  for (const auto& t : template_sources()) {
    if (!t.path.starts_with("cuda/")) continue;
    storage.emplace_back(t.path);
    names.push_back(storage.back().c_str());
    storage.emplace_back(t.text);
    texts.push_back(storage.back().c_str());
  }
  nvrtcProgram prog = nullptr;
  if (nvrtcCreateProgram(&prog, source.c_str(), "kiln_emit_test.cu", int(names.size()), texts.data(),
                         names.data()) != NVRTC_SUCCESS)
    return "nvrtcCreateProgram failed";
  std::vector<const char*> opts = {"--fmad=false", "-std=c++17"};
  const bool arch_given = std::any_of(extra.begin(), extra.end(),
                                      [](const char* o) { return std::string_view(o).starts_with("--gpu-architecture"); });
  if (!arch_given) opts.push_back("--gpu-architecture=sm_90");  // unless |extra| names one
  opts.insert(opts.end(), extra.begin(), extra.end());
  const nvrtcResult r = nvrtcCompileProgram(prog, int(opts.size()), opts.data());
  std::string log;
  std::size_t log_size = 0;
  nvrtcGetProgramLogSize(prog, &log_size);
  if (log_size > 1) {
    log.resize(log_size);
    nvrtcGetProgramLog(prog, log.data());
    log.pop_back();  // the terminating NUL
  }
  std::size_t size = 0;
  if (r == NVRTC_SUCCESS) nvrtcGetCUBINSize(prog, &size);
  nvrtcDestroyProgram(&prog);
  if (r != NVRTC_SUCCESS) return std::string(nvrtcGetErrorString(r)) + "\n" + log;
  if (size == 0) return "NVRTC produced no cubin\n" + log;
  return {};
}

// Runs fn(i) -> error text for i in [0, n) in |workers| processes: NVRTC serializes compilations
// inside one process, so threads do not help. Falls back to this process when fork fails.
std::vector<std::string> run_in_processes(std::size_t n, unsigned workers,
                                          const std::function<std::string(std::size_t)>& fn) {
  std::vector<std::string> results(n);
  struct Child {
    pid_t pid;
    int fd;
  };
  std::vector<Child> children;
  for (unsigned w = 1; w < workers; ++w) {
    int fds[2];
    if (pipe(fds) != 0) break;
    const pid_t pid = fork();
    if (pid < 0) {
      close(fds[0]);
      close(fds[1]);
      break;
    }
    if (pid == 0) {  // child: items w, w + workers, ...; writes (index, length, text) records
      close(fds[0]);
      for (std::size_t i = w; i < n; i += workers) {
        const std::string r = fn(i);
        const std::uint64_t header[2] = {i, r.size()};
        if (write(fds[1], header, sizeof header) != ssize_t(sizeof header)) _exit(1);
        if (!r.empty() && write(fds[1], r.data(), r.size()) != ssize_t(r.size())) _exit(1);
      }
      _exit(0);
    }
    close(fds[1]);
    children.push_back({pid, fds[0]});
  }
  const unsigned stride = unsigned(children.size()) + 1;
  std::vector<bool> done(n, false);
  for (std::size_t i = 0; i < n; i += stride) {
    results[i] = fn(i);
    done[i] = true;
  }
  auto read_all = [](int fd, void* p, std::size_t size) {
    for (std::size_t got = 0; got < size;) {
      const ssize_t k = read(fd, static_cast<char*>(p) + got, size - got);
      if (k <= 0) return false;
      got += std::size_t(k);
    }
    return true;
  };
  for (const Child& c : children) {
    std::uint64_t header[2];
    while (read_all(c.fd, header, sizeof header)) {
      std::string text(header[1], '\0');
      if (!read_all(c.fd, text.data(), text.size()) || header[0] >= n) break;
      results[header[0]] = std::move(text);
      done[header[0]] = true;
    }
    close(c.fd);
    int status = 0;
    waitpid(c.pid, &status, 0);
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!done[i]) results[i] = "no result from the worker process";
  return results;
}

// One shaderc compiler and SPIR-V validator context per thread.
struct GlslTools {
  shaderc_compiler_t compiler = shaderc_compiler_initialize();
  shaderc_compile_options_t options = shaderc_compile_options_initialize();
  spv_context context = spvContextCreate(SPV_ENV_VULKAN_1_3);
  GlslTools() {
    shaderc_compile_options_set_target_env(options, shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_3);
  }
  ~GlslTools() {
    spvContextDestroy(context);
    shaderc_compile_options_release(options);
    shaderc_compiler_release(compiler);
  }
};

// Compiles a GLSL compute shader for Vulkan 1.3 and validates the SPIR-V. Empty on success.
std::string glsl_compile(const std::string& source, const std::string& name,
                         std::vector<std::uint32_t>* spirv = nullptr) {
  thread_local GlslTools tools;
  shaderc_compilation_result_t result =
      shaderc_compile_into_spv(tools.compiler, source.data(), source.size(), shaderc_glsl_compute_shader,
                               name.c_str(), "main", tools.options);
  std::string error;
  if (shaderc_result_get_compilation_status(result) != shaderc_compilation_status_success) {
    error = std::string("shaderc: ") + shaderc_result_get_error_message(result);
  } else {
    const auto* words = reinterpret_cast<const std::uint32_t*>(shaderc_result_get_bytes(result));
    const std::size_t count = shaderc_result_get_length(result) / 4;
    spv_diagnostic diagnostic = nullptr;
    if (spvValidateBinary(tools.context, words, count, &diagnostic) != SPV_SUCCESS)
      error = std::string("spirv-val: ") + (diagnostic ? diagnostic->error : "invalid");
    spvDiagnosticDestroy(diagnostic);
    if (spirv) spirv->assign(words, words + count);
  }
  shaderc_result_release(result);
  return error;
}

// The capabilities a SPIR-V module declares (OpCapability operands).
std::set<std::uint32_t> capabilities(const std::vector<std::uint32_t>& spirv) {
  std::set<std::uint32_t> caps;
  for (std::size_t i = 5; i < spirv.size();) {
    const std::uint32_t count = spirv[i] >> 16, opcode = spirv[i] & 0xFFFF;
    if (opcode == 17 /* OpCapability */) caps.insert(spirv[i + 1]);
    if (count == 0) break;
    i += count;
  }
  return caps;
}
constexpr std::uint32_t kCapFloat16 = 9, kCapFloat64 = 10, kCapInt16 = 22, kCapInt8 = 39;

// -Ofc=max (fast compile): this sweep checks that every unit compiles (front end, code generation and
// ptxas for sm_90); the kernels built with full optimization are covered by the tests below and
// by the kernel library build.
TEST(EmitCuda, EveryOpAndDTypeCompilesWithNvrtc) {
  const auto& cases = all_cases();
  constexpr std::size_t kPerProgram = 100;
  std::vector<std::string> programs, labels;
  for (std::size_t i = 0; i < cases.size(); i += kPerProgram) {
    std::string src, names;
    for (std::size_t j = i; j < std::min(cases.size(), i + kPerProgram); ++j) {
      src += emit_cuda(cases[j].spec);
      names += cases[j].label + " ";
    }
    programs.push_back(std::move(src));
    labels.push_back(std::move(names));
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto errors = run_in_processes(programs.size(), worker_count(), [&](std::size_t i) {
    return nvrtc_compile(programs[i], {"-Ofc=max"});
  });
  for (std::size_t i = 0; i < programs.size(); ++i)
    EXPECT_EQ(errors[i], "") << "program " << i << " with " << labels[i];
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ info ] %zu kernels in %zu NVRTC programs: %.1f s\n", cases.size(), programs.size(), s);
}

// glslang also serializes most of a compilation inside one process: this sweep uses processes too.
TEST(EmitGlsl, EveryOpAndDTypeCompilesAndValidates) {
  const auto& cases = all_cases();
  const auto t0 = std::chrono::steady_clock::now();
  const auto errors = run_in_processes(cases.size(), worker_count(), [&](std::size_t i) -> std::string {
    const Case& c = cases[i];
    // Every op on every dtype (the f64 transcendental functions: glsl/math_f64.glsl, trig_f64.glsl,
    // erf_f64.glsl; issue 11 removed the last refusals).
    std::string why;
    if (!target_supports(c.spec, Target::glsl, &why)) return "refused: " + why;
    for (int f = 0; f < 2; ++f)
      if (std::string e = glsl_compile(emit_glsl(c.spec, f), c.spec.name()); !e.empty())
        return fmt::format("function {}: {}", f, e);
    return {};
  });
  int shaders = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(errors[i], "") << cases[i].label;
    shaders += 2;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ info ] %d GLSL shaders compiled and validated: %.1f s\n", shaders, s);
}

// The f64 math library goes only into kernels that call one of its functions on f64 (it is ~1000
// lines of GLSL; shader compile time follows), and needs no f64 math from f32 kernels.
TEST(EmitGlsl, IncludesTheF64LibraryOnlyWhereUsed) {
  const std::string f64_exp = emit_glsl(single_op_spec(Op::exp, DType::f64), 0);
  for (const char* file : {"glsl/math_f64.glsl", "glsl/trig_f64.glsl", "glsl/erf_f64.glsl"})
    EXPECT_NE(f64_exp.find(fmt::format("---- templates/{} ----", file)), std::string::npos) << file;
  EXPECT_NE(f64_exp.find("double kiln_exp(double x)"), std::string::npos);
  for (const auto& spec : {single_op_spec(Op::exp, DType::f32), single_op_spec(Op::sqrt, DType::f64),
                           single_op_spec(Op::add, DType::f64)}) {
    const std::string s = emit_glsl(spec, 0);
    EXPECT_EQ(s.find("---- templates/glsl/math_f64.glsl ----"), std::string::npos) << spec.name();
  }
  EXPECT_NE(emit_glsl(single_op_spec(Op::exp, DType::f32), 0).find("glsl/math_f32.glsl"), std::string::npos);
}

TEST(EmitGlsl, PureF32KernelNeedsNoNarrowOrF64Capabilities) {
  const KernelSpec spec = make_map_spec(
      parse_expr("0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x))) + erf(y)", {DType::f32, DType::f32}),
      DType::f32);
  for (int f = 0; f < 2; ++f) {
    std::vector<std::uint32_t> spirv;
    ASSERT_EQ(glsl_compile(emit_glsl(spec, f), spec.name(), &spirv), "");
    const auto caps = capabilities(spirv);
    for (std::uint32_t cap : {kCapFloat16, kCapFloat64, kCapInt16, kCapInt8})
      EXPECT_FALSE(caps.count(cap)) << "function " << f << " declares capability " << cap;
  }
}

// A kernel of the GELU expression for f32 and f16 compiles for both targets.
TEST(EmitBoth, GeluCompiles) {
  std::string cuda;
  for (DType t : {DType::f32, DType::f16}) {
    const KernelSpec spec =
        make_map_spec(parse_expr("0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))", {t}), t);
    EXPECT_EQ(spec.output, t);
    cuda += emit_cuda(spec);
    for (int f = 0; f < 2; ++f) EXPECT_EQ(glsl_compile(emit_glsl(spec, f), spec.name()), "") << dtype_name(t);
  }
  EXPECT_EQ(nvrtc_compile(cuda), "");
}

// A map with several results (kiln::jit's sibling maps): one expression per result over the same
// inputs, result k converted to outputs[k].
KernelSpec multi_map_spec(const std::vector<std::string>& exprs, const std::vector<DType>& inputs,
                          const std::vector<DType>& outputs) {
  Expr e;
  std::vector<NodeId> in, roots;
  for (std::size_t k = 0; k < inputs.size(); ++k) in.push_back(e.input(int(k), inputs[k]));
  for (std::size_t k = 0; k < exprs.size(); ++k)
    roots.push_back(e.cast(inline_expr(e, parse_expr(exprs[k], inputs), in), outputs[k]));
  e.set_root(roots.front());
  e.set_more_roots({roots.begin() + 1, roots.end()});
  return make_map_spec(e, outputs.front());
}

// Fused expressions mixing element sizes (vector steps of 1-, 2- and 8-byte elements in one
// kernel), special constants, zero inputs, four inputs and several results.
TEST(EmitBoth, MixedDTypesConstantsAndArities) {
  std::vector<KernelSpec> specs;
  specs.push_back(make_map_spec(parse_expr("select(w, x * 2 + f16(z), y - 3)", {DType::f16, DType::s64, DType::u8, DType::pred}), DType::f32));
  specs.push_back(make_map_spec(parse_expr("select(x > 0, x + inf, nan) - (-inf)", {DType::f32}), DType::f32));
  specs.push_back(make_map_spec(parse_expr("select(x > 0, x + inf, nan) * -0.0", {DType::f64}), DType::f64));
  specs.push_back(make_map_spec(parse_expr("select(x > 0, x + inf, nan)", {DType::bf16}), DType::bf16));
  specs.push_back(make_map_spec(parse_expr("x + (-2147483647 - 1)", {DType::s32}), DType::s32));
  specs.push_back(make_map_spec(parse_expr("x * 9223372036854775807 + 18446744073709551615", {DType::s64, DType::u64}), DType::u64));
  specs.push_back(make_map_spec(parse_expr("(x & 255) << 3", {DType::u8}), DType::pred));
  specs.push_back(make_map_spec(parse_expr("x / y + z", {DType::s16, DType::u16, DType::f64}), DType::f16));
  specs.push_back(make_map_spec(parse_expr("2.5", {}), DType::f32));
  // Several results of 1- to 8-byte elements (vector steps of 2 to 16 elements), with no inputs too.
  specs.push_back(multi_map_spec({"x * z", "f64(y) + 0.5", "x > z", "y & (y * 3)"}, {DType::f16, DType::s32, DType::bf16},
                                 {DType::f32, DType::f64, DType::pred, DType::s32}));
  specs.push_back(multi_map_spec({"x + 1", "x + 1"}, {DType::u8}, {DType::u8, DType::f16}));
  specs.push_back(multi_map_spec({"2.5", "-1"}, {}, {DType::bf16, DType::s64}));
  std::string cuda;
  for (const KernelSpec& spec : specs) {
    SCOPED_TRACE(spec.expr.to_string());
    ASSERT_TRUE(target_supports(spec, Target::glsl));
    cuda += emit_cuda(spec);
    for (int f = 0; f < 2; ++f) EXPECT_EQ(glsl_compile(emit_glsl(spec, f), spec.name()), "") << "function " << f;
  }
  EXPECT_EQ(nvrtc_compile(cuda), "");
}

// Several results keep every root through the spec text; five are refused.
TEST(EmitBoth, MapsWithSeveralResultsKeepTheirRoots) {
  const KernelSpec four = multi_map_spec({"x * z", "f64(y) + 0.5", "x > z", "y & (y * 3)"},
                                         {DType::f16, DType::s32, DType::bf16}, {DType::f32, DType::f64, DType::pred, DType::s32});
  EXPECT_EQ(four.expr.more_roots().size(), 3u);
  EXPECT_EQ(spec_from_canonical(four.canonical()).canonical(), four.canonical());
  EXPECT_THROW(spec_from_canonical("map|in=f32|out=f32|block=256|%0=f32:in0;%1=f32:exp(%0);>%1,%7;"), Error);
  const KernelSpec five = multi_map_spec({"x", "x + 1", "x + 2", "x + 3", "x + 4"}, {DType::f32}, std::vector<DType>(5, DType::f32));
  std::string why;
  EXPECT_FALSE(target_supports(five, Target::cuda, &why));
  EXPECT_NE(why.find("5 results"), std::string::npos) << why;
}

TEST(EmitBoth, DeterministicAndNamedAfterTheSpec) {
  const auto make = [] {
    return make_map_spec(parse_expr("sigmoid(x) * y + 1", {DType::bf16, DType::f32}), DType::bf16);
  };
  const KernelSpec a = make(), b = make();
  EXPECT_EQ(emit_cuda(a), emit_cuda(b));
  for (int f = 0; f < 2; ++f) EXPECT_EQ(emit_glsl(a, f), emit_glsl(b, f));
  const std::string name = a.name();
  ASSERT_EQ(cuda_symbols(a), (std::vector<std::string>{name + "_contig", name + "_strided"}));
  const std::string cuda = emit_cuda(a);
  for (const std::string& sym : cuda_symbols(a))
    EXPECT_NE(cuda.find(fmt::format("__launch_bounds__({}) {}(", a.block_size, sym)), std::string::npos) << sym;
  EXPECT_NE(emit_glsl(a, 0).find(name + " (contiguous)"), std::string::npos);
  EXPECT_NE(emit_glsl(a, 1).find(name + " (strided)"), std::string::npos);
  EXPECT_EQ(emit_glsl(a, 0).find("#include"), std::string::npos);  // self-contained
  EXPECT_THROW(emit_glsl(a, 2), Error);
}

TEST(EmitBoth, RejectsWhatTheTemplatesCannotDo) {
  Expr e;
  NodeId sum = e.input(0, DType::f32);
  for (int k = 1; k < 5; ++k) sum = e.apply(Op::add, {sum, e.input(k, DType::f32)});
  e.set_root(sum);
  const KernelSpec spec = make_map_spec(e, DType::f32);
  std::string why;
  EXPECT_FALSE(target_supports(spec, Target::cuda, &why));
  EXPECT_NE(why.find("at most 4"), std::string::npos) << why;
  EXPECT_THROW(emit_cuda(spec), Error);
  EXPECT_THROW(emit_glsl(spec, 0), Error);
}

// ---- family descriptors ----------------------------------------------------------------------------

TEST(Families, EveryFamilyIsFoundByNameAndHasItsTemplates) {
  ASSERT_FALSE(all_families().empty());
  std::set<std::string> paths;
  for (const auto& t : template_sources()) paths.insert(std::string(t.path));
  for (const Family* f : all_families()) {
    EXPECT_EQ(find_family(f->name), f);
    EXPECT_FALSE(f->entry_points.empty()) << f->name;
    EXPECT_FALSE(f->slots.empty()) << f->name;
    for (const FamilyEntryPoint& e : f->entry_points) EXPECT_GT(e.params_bytes, 0u) << f->name << " " << e.suffix;
    EXPECT_TRUE(paths.count(fmt::format("cuda/{}.cuh", f->name))) << f->name;
    EXPECT_TRUE(paths.count(fmt::format("glsl/{}.glsl", f->name))) << f->name;
    // Everything manifests, kilnc and generated headers need comes from the descriptor.
    ASSERT_TRUE(f->supports && f->emit_cuda && f->emit_glsl && f->plan && f->run_cpu && f->cost) << f->name;
    ASSERT_TRUE(f->from_manifest && f->op_names && f->expand_op && f->api_functions) << f->name;
    ASSERT_FALSE(f->op_names().empty()) << f->name;
    const std::vector<DType> all(kAllDTypes.begin(), kAllDTypes.end());
    for (std::string_view op : f->op_names())
      for (const KernelSpec& spec : f->expand_op(op, all)) EXPECT_EQ(spec.family, f->name) << op;
    EXPECT_TRUE(f->expand_op("no_such_op", all).empty()) << f->name;
  }
  EXPECT_EQ(find_family("nosuch"), nullptr);
  KernelSpec bad = single_op_spec(Op::add, DType::f32);
  bad.family = "nosuch";
  std::string why;
  EXPECT_FALSE(target_supports(bad, Target::cuda, &why));
  EXPECT_NE(why.find("families: map, reduce"), std::string::npos) << why;
  EXPECT_THROW(family_of(bad), Error);
}

TEST(Families, BuiltInRegistryRecordsFamiliesAndParamsSizes) {
  const Registry& reg = builtin_registry();
  if (reg.kernels.empty()) GTEST_SKIP() << "built with KILN_BUILD_KERNELS=OFF";
  for (const KernelEntry& e : reg.kernels) {
    ASSERT_NE(e.family, nullptr) << e.name;
    const Family* f = find_family(e.family);
    ASSERT_NE(f, nullptr) << e.name << " " << e.family;
    ASSERT_EQ(std::size_t(e.num_functions), f->entry_points.size()) << e.name;
    const KernelSpec spec = spec_from_canonical(e.spec);
    const std::vector<std::string> symbols = cuda_symbols(spec);
    for (int k = 0; k < e.num_functions; ++k) {
      EXPECT_EQ(e.functions[k].params_bytes, f->entry_points[std::size_t(k)].params_bytes) << e.name;
      EXPECT_EQ(std::string(e.functions[k].symbol), symbols[std::size_t(k)]) << e.name;
    }
  }
}

TEST(Families, MapPlanPicksTheEntryPointAndCollapsesDimensions) {
  const KernelSpec spec = single_op_spec(Op::add, DType::f32);
  const Family& map = family_of(spec);
  std::string why;
  // Dense operands of the output's shape: the contiguous entry point, 4 elements per thread.
  const std::array<std::int64_t, 3> shape{3, 1, 1000};
  const std::int64_t dense[] = {1000, 1000, 1}, bcast[] = {0, 0, 1};
  const PlanOperand a{0x1000, dense}, b{0x9000, dense};
  LaunchPlan p = map.plan(spec, {shape, std::vector<PlanOperand>{a, b}, 0x20000, {}, 256}, &why);
  ASSERT_EQ(p.function, 0) << why;
  ASSERT_EQ(p.params.size(), sizeof(KilnMapParams));
  KilnMapParams mp;
  std::memcpy(&mp, p.params.data(), sizeof mp);
  EXPECT_EQ(mp.n, 3000u);
  EXPECT_EQ(mp.out, 0x20000u);
  EXPECT_EQ(mp.in[1], 0x9000u);
  EXPECT_EQ(p.groups_x, (3000u + 1023u) / 1024u);
  // A broadcast operand: the strided entry point; the size-1 dimension is dropped and the two
  // remaining ones stay apart (the broadcast operand's strides do not merge).
  p = map.plan(spec, {shape, std::vector<PlanOperand>{a, {0x9000, bcast}}, 0x20000, {}, 128}, &why);
  ASSERT_EQ(p.function, 1) << why;
  ASSERT_EQ(p.params.size(), sizeof(KilnStridedParams));
  KilnStridedParams sp;
  std::memcpy(&sp, p.params.data(), sizeof sp);
  EXPECT_EQ(sp.rank, 2);
  EXPECT_EQ(sp.shape[0], 3);
  EXPECT_EQ(sp.shape[1], 1000);
  EXPECT_EQ(sp.strides[0][0], 1000);
  EXPECT_EQ(sp.strides[1][0], 0);
  EXPECT_EQ(p.groups_x, (3000u + 127u) / 128u);
  // Transposed strides never merge; seven non-mergeable dimensions are refused with the reason.
  const std::array<std::int64_t, 7> shape7{2, 2, 2, 2, 2, 2, 2};
  const std::int64_t odd7[] = {1, 3, 9, 27, 81, 243, 729}, dense7[] = {64, 32, 16, 8, 4, 2, 1};
  p = map.plan(spec, {shape7, std::vector<PlanOperand>{{0, odd7}, {0, dense7}}, 0, {}, 256}, &why);
  EXPECT_EQ(p.function, -1);
  EXPECT_NE(why.find("7 non-mergeable dimensions"), std::string::npos) << why;
}

// Every reduction of every dtype, and fused prologues/epilogues, through NVRTC (the JIT's path; the
// built-in library checks the same sources with nvcc at build time).
TEST(Families, ReduceKernelsCompileWithNvrtc) {
  std::vector<KernelSpec> specs;
  for (const CombinerInfo& c : combiner_table())
    for (DType t : kAllDTypes) {
      if (!(c.accepts & dtype_bit(t))) continue;
      Expr e;
      e.set_root(e.input(0, t));
      specs.push_back(make_reduce_spec(c.combiner, e, nullptr, std::nullopt, t == DType::s32));
    }
  const Expr sq = parse_expr("x * y", {DType::bf16, DType::f32});
  const Expr rms = parse_expr_named("rsqrt(acc / n + 1e-6)", {DType::f32, DType::s64}, {"acc", "n"});
  specs.push_back(make_reduce_spec(Combiner::sum, sq, &rms, DType::f16));
  specs.push_back(make_reduce_spec(Combiner::argmin, parse_expr("abs(x - y)", {DType::f64, DType::f64})));
  std::string src;
  for (const KernelSpec& spec : specs) src += emit_cuda(spec);
  EXPECT_EQ(nvrtc_compile(src), "");
  for (const KernelSpec& spec : specs) {
    std::string why;
    EXPECT_TRUE(target_supports(spec, Target::glsl, &why) || spec.inputs[0] == DType::f64) << spec.name() << ": " << why;
  }
}

// Every scan (4 ops x 12 dtypes, three entry points each) in one NVRTC program, as the JIT compiles
// them, and every GLSL function through shaderc and spirv-val; each block size the manifests allow
// at its ends (32: one warp, the shuffle scan without a second level; 1024: 32 warps).
TEST(EmitScan, EveryScanCompilesWithNvrtcAndGlslang) {
  std::vector<KernelSpec> specs;
  for (const ScanOpInfo& i : scan_op_table())
    for (DType t : kAllDTypes)
      if (t != DType::pred) specs.push_back(make_scan_spec(i.combiner, t));
  for (int block : {32, 1024}) {
    KernelSpec s = make_scan_spec(Combiner::max, DType::f16);
    s.block_size = block;
    specs.push_back(s);
  }
  std::string src;
  for (const KernelSpec& spec : specs) src += emit_cuda(spec);
  EXPECT_EQ(nvrtc_compile(src, {"-Ofc=max"}), "");
  const auto errors = run_in_processes(specs.size(), worker_count(), [&](std::size_t i) -> std::string {
    for (int f = 0; f < 3; ++f)
      if (std::string e = glsl_compile(emit_glsl(specs[i], f), specs[i].name()); !e.empty())
        return fmt::format("function {}: {}", f, e);
    return {};
  });
  for (std::size_t i = 0; i < specs.size(); ++i) EXPECT_EQ(errors[i], "") << specs[i].name();
  EXPECT_EQ(family_of(specs[0]).entry_points.size(), 3u);
}

// Contraction and convolution kernels of every operand pairing the tensor API makes (the same
// dtype, promotions, explicit outputs) compile with NVRTC (sm_90) and glslang; the family refuses what it cannot do.
TEST(EmitContract, KernelsCompileWithNvrtcAndGlslang) {
  std::vector<KernelSpec> specs;
  for (DType t : kAllDTypes)
    if (t != DType::pred) specs.push_back(make_contract_spec(t, t, t));
  specs.push_back(make_contract_spec(DType::s8, DType::s8, DType::s32));
  specs.push_back(make_contract_spec(DType::f16, DType::bf16, DType::f32));
  specs.push_back(make_contract_spec(DType::s8, DType::f32, DType::f32));
  specs.push_back(make_contract_spec(DType::f64, DType::f32, DType::f16));
  // Fused epilogues: gelu(y + bias) + residual (bf16 operands), an integer bias (s8 -> s32).
  const Expr gelu_bias_res = parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f32, DType::bf16});
  specs.push_back(make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &gelu_bias_res));
  const Expr gelu_bias_res_f16 = parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f32, DType::f16});
  const Expr int_bias = parse_expr("x + y", {DType::s32, DType::s32});
  specs.push_back(make_contract_spec(DType::s8, DType::s8, DType::s32, &int_bias));
  specs.push_back(make_contract_spec(DType::f32, DType::f32, DType::f32, nullptr, true));  // precision tf32
  // The tensor-core variants (CUDA only): bf16 and f16, an epilogue, an f32 output; sm_80 too below.
  std::vector<KernelSpec> mma{contract_tensor_core_spec(make_contract_spec(DType::bf16, DType::bf16, DType::bf16)),
                              contract_tensor_core_spec(make_contract_spec(DType::f16, DType::f16, DType::f32)),
                              contract_tensor_core_spec(make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &gelu_bias_res))};
  // Convolutions on the tensor cores (templates/cuda/conv_mma.cuh).
  mma.push_back(contract_tensor_core_spec(make_conv_spec(DType::bf16, DType::bf16, DType::bf16)));
  mma.push_back(contract_tensor_core_spec(make_conv_spec(DType::f16, DType::f16, DType::f32, &gelu_bias_res_f16)));
  std::string mma_src;
  for (const KernelSpec& spec : mma) mma_src += emit_cuda(spec);
  EXPECT_EQ(nvrtc_compile(mma_src, {"-Ofc=max"}), "");
  EXPECT_EQ(nvrtc_compile(mma_src, {"--gpu-architecture=sm_80"}), "");
  std::string why;
  for (const KernelSpec& spec : {mma[0], mma[3]}) {
    EXPECT_FALSE(family_of(spec).supports(spec, Target::glsl, &why)) << spec.name();
    EXPECT_NE(why.find("CUDA-only"), std::string::npos) << why;
  }
  EXPECT_THROW(contract_tensor_core_spec(make_conv_spec(DType::f32, DType::f32, DType::f32)), Error);
  EXPECT_THROW(contract_tensor_core_spec(make_contract_spec(DType::f32, DType::f32, DType::f32)), Error);
  EXPECT_THROW(contract_tensor_core_spec(make_contract_spec(DType::bf16, DType::bf16, DType::f64)), Error);
  // Convolutions: the same hooks over the implicit-GEMM template (templates/*/conv.*).
  for (DType t : {DType::f16, DType::bf16, DType::f32, DType::f64}) specs.push_back(make_conv_spec(t, t, t));
  specs.push_back(make_conv_spec(DType::s8, DType::s8, DType::s32, &int_bias));
  specs.push_back(make_conv_spec(DType::bf16, DType::bf16, DType::bf16, &gelu_bias_res));
  std::string src;
  for (const KernelSpec& spec : specs) src += emit_cuda(spec);
  EXPECT_EQ(nvrtc_compile(src, {"-Ofc=max"}), "");
  const auto errors = run_in_processes(specs.size(), worker_count(), [&](std::size_t i) -> std::string {
    return glsl_compile(emit_glsl(specs[i], 0), specs[i].name());
  });
  for (std::size_t i = 0; i < specs.size(); ++i) EXPECT_EQ(errors[i], "") << specs[i].name();
  EXPECT_EQ(contract_accumulator_dtype(DType::f16, DType::f16, DType::f16), DType::f32);
  EXPECT_EQ(contract_accumulator_dtype(DType::f32, DType::f64, DType::f32), DType::f64);
  EXPECT_EQ(contract_accumulator_dtype(DType::s8, DType::s8, DType::s8), DType::s32);
  EXPECT_EQ(contract_accumulator_dtype(DType::u64, DType::u64, DType::u64), DType::u64);
  EXPECT_THROW(make_contract_spec(DType::pred, DType::pred, DType::pred), Error);
  EXPECT_THROW(make_contract_spec(DType::f32, DType::f32, DType::s32), Error);
  const Expr wrong_y = parse_expr("x + y", {DType::f16, DType::f16});  // y must be the f32 sum
  EXPECT_THROW(make_contract_spec(DType::f16, DType::f16, DType::f16, &wrong_y), Error);
  KernelSpec odd = make_contract_spec(DType::f32, DType::f32, DType::f32);
  odd.block_size = 128;
  EXPECT_FALSE(family_of(odd).supports(odd, Target::glsl, &why));
  EXPECT_NE(why.find("256 threads"), std::string::npos) << why;
}

// The contraction plan: batch dimensions of size 1 dropped and neighbours merged; a broadcast
// batch dimension (stride 0) kept; M, N, K and the tile counts from the request.
TEST(Families, ContractPlanMergesBatchDimensions) {
  const KernelSpec spec = make_contract_spec(DType::f32, DType::f32, DType::f32);
  const Family& f = family_of(spec);
  std::string why;
  // [2, 1, 3] batch, M 70, N 65, K 9; a contiguous [2,1,3,70,9]; b broadcast over batch dim 0.
  const std::vector<std::int64_t> shape{2, 1, 3, 70, 65, 9};
  const std::vector<std::int64_t> sa{3 * 630, 3 * 630, 630, 9, 0, 1}, sb{0, 0, 585, 0, 1, 65};
  const std::vector<PlanOperand> ops{{0x1000, sa}, {0x2000, sb}};
  const LaunchPlan p = f.plan(spec, {shape, ops, 0x9000, {}, 256}, &why);
  ASSERT_EQ(p.function, 0) << why;
  std::int64_t w[46];
  ASSERT_EQ(p.params.size(), sizeof w);
  std::memcpy(w, p.params.data(), sizeof w);
  EXPECT_EQ(w[3], 70);  // m
  EXPECT_EQ(w[4], 65);  // n
  EXPECT_EQ(w[5], 9);   // k
  EXPECT_EQ(w[6], 6);   // batch
  EXPECT_EQ(w[7], 2);   // batch rank: [2, 3] (the size-1 dim dropped; b's stride 0 stops the merge)
  EXPECT_EQ(w[8], 2);
  EXPECT_EQ(w[9], 3);
  EXPECT_EQ(w[28], 2);  // tiles_m = ceil(70 / 64)
  EXPECT_EQ(w[29], 2);  // tiles_n
  EXPECT_EQ(p.groups_x, 6u * 2 * 2);
  // Dense operands merge their batch dimensions into one.
  const std::vector<std::int64_t> da{3 * 630, 630, 9, 0, 1}, db{3 * 585, 585, 0, 1, 65};
  const std::vector<std::int64_t> dshape{2, 3, 70, 65, 9};
  const std::vector<PlanOperand> dops{{0x1000, da}, {0x2000, db}};
  const LaunchPlan q = f.plan(spec, {dshape, dops, 0x9000, {}, 256}, &why);
  ASSERT_EQ(q.function, 0) << why;
  std::memcpy(w, q.params.data(), sizeof w);
  EXPECT_EQ(w[7], 1);
  EXPECT_EQ(w[8], 6);
  // Too few dimensions for [batch..., M, N, K].
  const std::vector<std::int64_t> flat{4, 4}, fs{4, 1};
  const std::vector<PlanOperand> fops{{0x1000, fs}, {0x2000, fs}};
  EXPECT_EQ(f.plan(spec, {flat, fops, 0x9000, {}, 256}, &why).function, -1);
}

// The fused row kernels (compiled just in time on CUDA, so the kernel library build never sees
// them): a residual prologue with two outputs, a dequantizing prologue with gamma and beta, a
// gating epilogue, an output cast, a masked softmax with a prologue, logsumexp with an epilogue.
TEST(EmitRows, FusedFormsCompileWithNvrtcAndGlslang) {
  std::vector<KernelSpec> specs;
  RowsFusion res;
  res.prologue = parse_expr("x + y", {DType::bf16, DType::bf16});
  res.residual = true;
  specs.push_back(make_rows_spec(RowsOp::rms_norm, DType::bf16, 1, RowsBias::none, false, &res));
  RowsFusion deq;
  deq.prologue = parse_expr("as_type(x, f32) * 0.05", {DType::s8});
  specs.push_back(make_rows_spec(RowsOp::layer_norm, DType::f32, 2, RowsBias::none, false, &deq));
  RowsFusion gate;
  gate.epilogue = parse_expr("x * sigmoid(y)", {DType::f32, DType::f16});
  gate.output = DType::f16;
  specs.push_back(make_rows_spec(RowsOp::rms_norm, DType::f16, 0, RowsBias::none, false, &gate));
  RowsFusion cast;
  cast.output = DType::s8;
  specs.push_back(make_rows_spec(RowsOp::layer_norm, DType::f64, 0, RowsBias::none, false, &cast));
  RowsFusion sm;
  sm.prologue = parse_expr("x + y", {DType::f32, DType::f32});
  specs.push_back(make_rows_spec(RowsOp::softmax, DType::f32, 0, RowsBias::mask, true, &sm));
  RowsFusion lse;
  lse.epilogue = parse_expr("x * 2", {DType::f32});
  specs.push_back(make_rows_spec(RowsOp::logsumexp, DType::bf16, 0, RowsBias::none, false, &lse));
  std::string src;
  for (const KernelSpec& spec : specs) src += emit_cuda(spec);
  EXPECT_EQ(nvrtc_compile(src, {"-Ofc=max"}), "");
  for (const KernelSpec& spec : specs) {
    // With subgroup arithmetic (the default) and without (KILN_SUBGROUP=0, for devices that lack it):
    // only the first declares the capability.
    std::vector<std::uint32_t> with, without;
    const std::string src_glsl = emit_glsl(spec, 0);
    std::string no_subgroup = src_glsl;
    no_subgroup.insert(no_subgroup.find('\n') + 1, "#define KILN_SUBGROUP 0\n");
    EXPECT_EQ(glsl_compile(src_glsl, spec.name(), &with), "") << spec.name();
    EXPECT_EQ(glsl_compile(no_subgroup, spec.name(), &without), "") << spec.name();
    auto declares_arithmetic = [](const std::vector<std::uint32_t>& w) {
      for (std::size_t i = 5; i + 1 < w.size() && (w[i] & 0xFFFFu) == 17u; i += w[i] >> 16)
        if (w[i + 1] == 63u) return true;  // OpCapability GroupNonUniformArithmetic
      return false;
    };
    EXPECT_TRUE(declares_arithmetic(with)) << spec.name();
    EXPECT_FALSE(declares_arithmetic(without)) << spec.name();
  }
}

// The rows plan: a warp (subgroup) per row of up to 16 elements per lane, so BLOCK / subgroup rows
// per group; a group per row for longer rows or without subgroup arithmetic (subgroup size 0).
TEST(Families, RowsPlanGivesShortRowsASubgroupEach) {
  const KernelSpec spec = make_rows_spec(RowsOp::softmax, DType::f32, 0, RowsBias::none, false);
  const Family& rows = family_of(spec);
  std::string why;
  auto groups = [&](std::int64_t n_rows, std::int64_t n, std::uint32_t subgroup) {
    const std::vector<std::int64_t> shape{n_rows, n}, strides{n, 1};
    const std::vector<PlanOperand> ops{{0x1000, strides}};
    PlanRequest r{shape, ops, 0x9000, {}, 256};
    r.subgroup_size = subgroup;
    const LaunchPlan p = rows.plan(spec, r, &why);
    EXPECT_EQ(p.function, 0) << why;
    return p.groups_x;
  };
  EXPECT_EQ(groups(1000, 512, 32), 125u);   // 8 warps of a 256-thread block, a row each
  EXPECT_EQ(groups(1001, 100, 32), 126u);
  EXPECT_EQ(groups(1000, 513, 32), 1000u);  // too long for a warp's registers
  EXPECT_EQ(groups(1000, 128, 8), 32u);     // lavapipe's subgroups of 8: 32 rows per workgroup
  EXPECT_EQ(groups(1000, 129, 8), 1000u);
  EXPECT_EQ(groups(1000, 100, 0), 1000u);   // no subgroup arithmetic: a workgroup per row
  EXPECT_EQ(groups(1u << 20, 4, 32), 65535u);  // capped; the kernel grid-strides
}

// The reduce plan: rows for inner axes, cols for outer axes with many outputs, a split (two
// launches, scratch memory) for long reductions; collapsed dimensions keep the flattened order.
TEST(Families, ReducePlanPicksKernelsAndSplits) {
  Expr e;
  e.set_root(e.input(0, DType::f32));
  const KernelSpec spec = make_reduce_spec(Combiner::sum, e);
  const Family& reduce = family_of(spec);
  std::string why;
  auto plan = [&](std::vector<std::int64_t> shape, std::vector<std::int64_t> strides, std::vector<int> axes,
                  std::uint64_t scratch = 0) {
    const std::vector<PlanOperand> ops{{0x1000, strides}};
    return reduce.plan(spec, {shape, ops, 0x9000, axes, 256, scratch}, &why);
  };
  auto params = [](const LaunchPlan& p) {
    KilnReduceParams r;
    std::memcpy(&r, p.params.data(), sizeof r);
    return r;
  };
  LaunchPlan p = plan({64, 1000}, {1000, 1}, {1});  // rows of 1000: a block per row
  ASSERT_EQ(p.function, 0) << why;
  EXPECT_EQ(p.groups_x, 64u);
  EXPECT_EQ(p.scratch_bytes, 0u);
  EXPECT_EQ(params(p).n_split, 1);
  p = plan({1000, 4096}, {4096, 1}, {0});  // over the outer axis, 4096 contiguous outputs
  ASSERT_EQ(p.function, 1) << why;
  EXPECT_EQ(params(p).n_out, 4096);
  // Four neighbouring f32 outputs per thread (aligned, contiguous): a quarter of the threads.
  const std::int64_t work = params(p).n_out * params(p).n_split;
  EXPECT_EQ(p.groups_x, std::uint32_t((work + 1023) / 1024));
  p = plan({1000, 4094}, {4096, 1}, {0});  // 4094 outputs: not in fours, a thread each
  EXPECT_EQ(p.groups_x, std::uint32_t((params(p).n_out * params(p).n_split + 255) / 256));
  p = plan({4, 5, 6}, {30, 6, 1}, {1, 2});  // the two inner axes merge into one of 30
  EXPECT_EQ(params(p).red_rank, 1);
  EXPECT_EQ(params(p).red_shape[0], 30);
  p = plan({6, 5}, {1, 6}, {1});  // transposed: the reduced axis has stride 6
  EXPECT_EQ(params(p).red_strides[0][0], 6);
  p = plan({1 << 24}, {1}, {0});  // one long row: split, asks for scratch first
  ASSERT_EQ(p.function, 0) << why;
  ASSERT_GT(p.scratch_bytes, 0u);
  const std::int64_t split = params(p).n_split;
  EXPECT_GT(split, 1);
  EXPECT_EQ(p.scratch_bytes, std::uint64_t(split) * 4);
  p = plan({1 << 24}, {1}, {0}, 0x70000);
  EXPECT_EQ(params(p).scratch, 0x70000u);
  ASSERT_EQ(p.then.size(), 1u);
  EXPECT_EQ(p.then[0].function, 2);  // the final combine
  EXPECT_LE(params(p).seg / 256, 16384);  // elements per thread stay bounded
}

TEST(Families, MapCpuReferenceAndCost) {
  const KernelSpec spec = make_map_spec(parse_expr("x * 2 + y", {DType::f32, DType::f32}), DType::f32);
  const Family& map = family_of(spec);
  const float x[] = {1, 2, 3}, y[] = {10};
  float out[3] = {0, 0, 0};
  const std::array<std::int64_t, 1> shape{3};
  const std::int64_t unit[] = {1}, zero[] = {0};
  const std::vector<PlanOperand> ops{{reinterpret_cast<std::uint64_t>(x), unit}, {reinterpret_cast<std::uint64_t>(y), zero}};
  map.run_cpu(spec, {shape, ops, reinterpret_cast<std::uint64_t>(out), {}, 256});
  EXPECT_EQ(out[0], 12.f);
  EXPECT_EQ(out[1], 14.f);
  EXPECT_EQ(out[2], 16.f);
  const FamilyCost c = map.cost(spec);
  EXPECT_EQ(c.bytes_per_element, 12.0);  // two f32 reads, one f32 write
  EXPECT_EQ(c.flops_per_element, 2.0);   // multiply, add
  // Two results: the second (f64) goes to more_outputs, as in the kernels' params.
  const KernelSpec two = multi_map_spec({"x * 2 + y", "f64(x) - y"}, {DType::f32, DType::f32}, {DType::f32, DType::f64});
  double second[3] = {0, 0, 0};
  const std::uint64_t more[] = {reinterpret_cast<std::uint64_t>(second)};
  PlanRequest r{shape, ops, reinterpret_cast<std::uint64_t>(out), {}, 256};
  r.more_outputs = more;
  map.run_cpu(two, r);
  EXPECT_EQ(out[2], 16.f);
  EXPECT_EQ(second[0], -9.0);
  EXPECT_EQ(second[2], -7.0);
  EXPECT_EQ(map.cost(two).bytes_per_element, 20.0);  // two f32 reads, an f32 and an f64 write
  std::string why;
  LaunchPlan plan = map.plan(two, r, &why);
  ASSERT_EQ(plan.function, 1) << why;  // y broadcasts: strided
  KilnStridedParams sp;
  std::memcpy(&sp, plan.params.data(), sizeof sp);
  EXPECT_EQ(sp.more_out[0], more[0]);
  EXPECT_EQ(sp.more_out[1], 0u);
  r.more_outputs = {};
  EXPECT_EQ(map.plan(two, r, &why).function, -1);  // a result without its array
  EXPECT_NE(why.find("2 results"), std::string::npos) << why;
  EXPECT_THROW(map.run_cpu(two, r), Error);
}

}  // namespace
}  // namespace kiln
