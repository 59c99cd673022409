#include "runtime/jit.hpp"

#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <shaderc/shaderc.hpp>
#include <glslang/build_info.h>
#include <spirv-tools/libspirv.h>
#include <xxhash.h>

#include "codegen/emit.hpp"
#include "codegen/family.hpp"
#include "core/disk_cache.hpp"
#include "core/error.hpp"
#include "runtime/cuda/cuda_interop.hpp"
#include "runtime/jit_cache_file.hpp"

namespace kiln {

namespace {

// A compiled kernel with the storage its registry entry points into.
struct JitRecord {
  std::string name, spec;
  std::vector<std::vector<unsigned char>> blobs;  // SPIR-V per function, or one cubin
  std::vector<std::string> symbols;
  std::vector<KernelFunction> functions;
  std::vector<EmbeddedBlob> cuda_images;
  KernelEntry entry{};
  Registry registry;
};

// NVRTC, opened at run time like the driver so that the runtime links without the CUDA toolkit.
struct Nvrtc {
  using Create = int (*)(void**, const char*, const char*, int, const char* const*, const char* const*);
  using Compile = int (*)(void*, int, const char* const*);
  using GetSize = int (*)(void*, std::size_t*);
  using GetData = int (*)(void*, char*);
  using Destroy = int (*)(void**);
  using Version = int (*)(int*, int*);
  Create create = nullptr;
  Compile compile = nullptr;
  GetSize log_size = nullptr, cubin_size = nullptr;
  GetData log = nullptr, cubin = nullptr;
  Destroy destroy = nullptr;
  Version version = nullptr;
  std::string error;

  static const Nvrtc& get() {
    static const Nvrtc n = [] {
      Nvrtc r;
      void* lib = nullptr;
      // NVRTC 13's cubins need a CUDA 13 driver: a 12.x driver takes NVRTC 12 first.
      const int drv = cuda::driver_version();
      const bool old_driver = drv > 0 && drv < 13000;
      for (const char* name : {old_driver ? "libnvrtc.so.12" : "libnvrtc.so.13",
                               old_driver ? "libnvrtc.so.13" : "libnvrtc.so.12", "libnvrtc.so"})
        if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
      if (!lib) {
        r.error = "NVRTC (libnvrtc.so) was not found";
        return r;
      }
      r.create = reinterpret_cast<Create>(dlsym(lib, "nvrtcCreateProgram"));
      r.compile = reinterpret_cast<Compile>(dlsym(lib, "nvrtcCompileProgram"));
      r.log_size = reinterpret_cast<GetSize>(dlsym(lib, "nvrtcGetProgramLogSize"));
      r.log = reinterpret_cast<GetData>(dlsym(lib, "nvrtcGetProgramLog"));
      r.cubin_size = reinterpret_cast<GetSize>(dlsym(lib, "nvrtcGetCUBINSize"));
      r.cubin = reinterpret_cast<GetData>(dlsym(lib, "nvrtcGetCUBIN"));
      r.destroy = reinterpret_cast<Destroy>(dlsym(lib, "nvrtcDestroyProgram"));
      r.version = reinterpret_cast<Version>(dlsym(lib, "nvrtcVersion"));
      if (!r.create || !r.compile || !r.log_size || !r.log || !r.cubin_size || !r.cubin || !r.destroy || !r.version)
        r.error = "libnvrtc.so lacks an expected entry point";
      return r;
    }();
    return n;
  }
};

}  // namespace

std::vector<std::string> nvrtc_options(const std::string& arch, bool fast_compile) {
  const Nvrtc& nv = Nvrtc::get();
  if (!nv.error.empty()) return {};
  int major = 0, minor = 0;
  nv.version(&major, &minor);
  const int version = major * 100 + minor;
  std::vector<std::string> opts = {"--gpu-architecture=" + arch, "--fmad=false", "-std=c++17"};
  // -minimal leaves out textures, the device runtime and the driver's types, none of which the
  // templates use: ~3 ms less per compile.
  if (version >= 1204) opts.push_back("-minimal");
  static const bool fast_allowed = [] {
    const char* env = std::getenv("KILN_JIT_FAST_COMPILE");
    return !(env && std::string_view(env) == "0");
  }();
  if (fast_compile && fast_allowed && version >= 1208) opts.push_back("-Ofc=min");
  return opts;
}

std::vector<unsigned char> compile_cuda_cubin(const std::string& source, const std::string& name, const std::string& arch,
                                              bool fast_compile) {
  const Nvrtc& nv = Nvrtc::get();
  if (!nv.error.empty()) fail(ErrorCode::unsupported, nv.error);
  std::vector<const char*> header_text, header_names;
  for (const auto& t : template_sources())
    if (t.path.substr(0, 5) == "cuda/") {
      header_text.push_back(t.text.data());
      header_names.push_back(t.path.data());
    }
  void* prog = nullptr;
  if (nv.create(&prog, source.c_str(), (name + ".cu").c_str(), int(header_text.size()), header_text.data(),
                header_names.data()) != 0)
    fail(ErrorCode::compile_error, "nvrtcCreateProgram failed for " + name);
  const std::vector<std::string> options = nvrtc_options(arch, fast_compile);
  std::vector<const char*> opts;
  for (const std::string& o : options) opts.push_back(o.c_str());
  const int rc = nv.compile(prog, int(opts.size()), opts.data());
  std::size_t log_size = 0;
  nv.log_size(prog, &log_size);
  std::string log(log_size, '\0');
  if (log_size) nv.log(prog, log.data());
  std::vector<unsigned char> cubin;
  if (rc == 0) {
    std::size_t size = 0;
    nv.cubin_size(prog, &size);
    cubin.resize(size);
    nv.cubin(prog, reinterpret_cast<char*>(cubin.data()));
  }
  nv.destroy(&prog);
  if (rc != 0) fail(ErrorCode::compile_error, fmt::format("NVRTC could not compile {} for {}: {}", name, arch, log));
  return cubin;
}

namespace {

std::atomic<std::uint64_t> g_compiles{0}, g_disk_hits{0};

// The compiler's identity for the disk cache's key: its version and options.
std::string compiler_id(Device& device, const std::string& cuda_arch, bool fast_compile) {
  if (device.backend() == Backend::cuda) {
    const Nvrtc& nv = Nvrtc::get();
    int major = 0, minor = 0;
    if (nv.error.empty()) nv.version(&major, &minor);
    return fmt::format("nvrtc {}.{} {}", major, minor, fmt::join(nvrtc_options(cuda_arch, fast_compile), " "));
  }
  unsigned version = 0, revision = 0;
  shaderc_get_spv_version(&version, &revision);
  return fmt::format("shaderc spv {}.{} glslang {}.{}.{}{} {} vulkan1.3 O0", version, revision, GLSLANG_VERSION_MAJOR,
                     GLSLANG_VERSION_MINOR, GLSLANG_VERSION_PATCH, GLSLANG_VERSION_FLAVOR, spvSoftwareVersionString());
}

// The templates the sources include (CUDA sources name them; GLSL sources inline them): part of
// the disk cache's key, so a changed template (a new params layout) never loads an old blob.
std::uint64_t templates_hash() {
  static const std::uint64_t hash = [] {
    XXH64_state_t* st = XXH64_createState();
    XXH64_reset(st, 0);
    for (const TemplateSource& t : template_sources()) {
      XXH64_update(st, t.path.data(), t.path.size());
      XXH64_update(st, t.text.data(), t.text.size());
    }
    const std::uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h;
  }();
  return hash;
}

// Compiles |sources| (one per function; CUDA: one, for |cuda_arch|) for |device|, or loads them
// from the disk cache (cache_dir("jit"), keyed by everything the blobs depend on). A bad entry is
// reported and rebuilt.
JitBlobs compile_or_load(Device& device, const std::string& name, const std::vector<std::string>& sources,
                         const std::string& cuda_arch, bool fast_compile) {
  const bool cuda = device.backend() == Backend::cuda;
  const bool subgroups = device.info().subgroup_arithmetic;
  std::string key_text = fmt::format("kiln {}\n{}\n{}\n{}\ntemplates {:016x}\n", KILN_VERSION,
                                     cuda ? "cuda " + cuda_arch : "spirv",
                                     subgroups ? "subgroup arithmetic" : "no subgroup arithmetic",
                                     compiler_id(device, cuda_arch, fast_compile), templates_hash());
  for (const std::string& s : sources) key_text += s;
  const std::uint64_t key = XXH64(key_text.data(), key_text.size(), 0);
  const std::string dir = std::getenv("KILN_JIT_DISK_CACHE") && std::string_view(std::getenv("KILN_JIT_DISK_CACHE")) == "0"
                              ? std::string() : cache_dir("jit");
  const std::string path = dir.empty() ? std::string() : fmt::format("{}/{}-{:016x}.bin", dir, name, key);
  if (!path.empty()) {
    std::string why;
    if (auto file = read_cache_entry(path, &why)) {
      if (auto blobs = unpack_jit_entry(*file, key, &why); blobs && blobs->size() == sources.size()) {
        g_disk_hits.fetch_add(1, std::memory_order_relaxed);
        touch_cache_entry(path);
        return std::move(*blobs);
      }
      if (why.empty()) why = "another number of functions";
    }
    if (!why.empty()) {
      std::fprintf(stderr, "kiln: warning: ignoring the JIT cache entry '%s': %s; compiling it again\n", path.c_str(),
                   why.c_str());
    }
  }
  g_compiles.fetch_add(1, std::memory_order_relaxed);
  JitBlobs blobs;
  for (const std::string& s : sources)
    blobs.push_back(cuda ? compile_cuda_cubin(s, name, cuda_arch, fast_compile)
                         : compile_glsl_spirv(s, name, subgroups));
  if (!path.empty()) {  // best effort
    const std::vector<char> entry = pack_jit_entry(key, blobs);
    if (write_file_atomically(path, entry)) note_cache_write(dir, entry.size());
  }
  return blobs;
}

// The architecture |spec| is compiled for on CUDA |device|: the device's, or the spec's "arch"
// attribute (an arch-specific target such as sm_90a, for instructions only that chip has) when
// the device is that chip.
std::string cuda_arch_of(const KernelSpec& spec, Device& device) {
  const std::string& own = device.info().arch;
  const std::string wanted(spec.attribute("arch"));
  if (wanted.empty()) return own;
  if (wanted != own + "a")
    fail(ErrorCode::unsupported, fmt::format("{}: kernel {} is built for {} only, not for {} ({})", device.id(),
                                             spec.name(), wanted, own, device.info().name));
  return wanted;
}

// The kernel of |spec| with the entry points in |functions| (the others have no symbol).
std::unique_ptr<JitRecord> build(Device& device, const KernelSpec& spec, FunctionSet functions) {
  auto r = std::make_unique<JitRecord>();
  r->name = spec.name();
  r->spec = spec.canonical();
  const Family& family = family_of(spec);
  const int num_functions = int(family.entry_points.size());
  const bool cuda = device.backend() == Backend::cuda;
  std::vector<std::string> sources;
  if (cuda) {
    sources.push_back(emit_cuda(spec, functions));
  } else {
    for (int f = 0; f < num_functions; ++f)
      if (functions >> f & 1) sources.push_back(emit_glsl(spec, f));
  }
  r->blobs = compile_or_load(device, r->name, sources, cuda ? cuda_arch_of(spec, device) : std::string(),
                             family.jit_fast_compile);
  if (cuda) {
    r->symbols = cuda_symbols(spec);
    r->cuda_images.push_back({r->blobs[0].data(), r->blobs[0].size()});
  }
  for (int f = 0, blob = 0; f < num_functions; ++f) {
    KernelFunction fn{nullptr, {}, entry_params_bytes(family, spec, f)};
    if (functions >> f & 1) {
      if (cuda) {
        fn.symbol = r->symbols[f].c_str();
      } else {
        fn.symbol = "main";
        fn.spirv = {r->blobs[blob].data(), r->blobs[blob].size()};
        ++blob;
      }
    }
    r->functions.push_back(fn);
  }
  r->entry = KernelEntry{r->name.c_str(), r->spec.c_str(), cuda ? 0 : -1, num_functions, r->functions.data(),
                         spec.block_size, family.name.data()};
  r->registry.kernels = std::span<const KernelEntry>(&r->entry, 1);
  r->registry.cuda_images = r->cuda_images;
  return r;
}

// One cache slot per (device, spec): its own lock serializes the compiles of that spec only, so
// different kernels compile in parallel and one spec compiles once. A compile that throws leaves
// the slot empty (the next call tries again).
struct JitSlot {
  std::mutex mutex;
  std::unique_ptr<JitRecord> record;
};

// The process's just-in-time kernels by device, spec name and function set; never freed (devices
// may be destroyed during static teardown).
using JitCache = std::map<std::tuple<const Device*, std::string, FunctionSet>, std::unique_ptr<JitSlot>>;
std::mutex& jit_cache_mutex() {  // guards the map only
  static auto* mu = new std::mutex;
  return *mu;
}
JitCache& jit_cache() {
  static auto* cache = new JitCache;
  return *cache;
}

}  // namespace

void forget_jit_kernels(const Device& device) {
  std::lock_guard lock(jit_cache_mutex());
  JitCache& cache = jit_cache();
  for (auto it = cache.begin(); it != cache.end();)
    it = std::get<0>(it->first) == &device ? cache.erase(it) : std::next(it);
}

std::vector<unsigned char> compile_glsl_spirv(const std::string& source, const std::string& name,
                                              bool subgroup_arithmetic) {
  // One compiler for the process (never destroyed: JIT compiles may run during static teardown).
  static const shaderc::Compiler* const compiler = new shaderc::Compiler;
  shaderc::CompileOptions options;
  if (!subgroup_arithmetic) options.AddMacroDefinition("KILN_SUBGROUP", "0");
  options.SetTargetEnvironment(shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_3);
  options.SetOptimizationLevel(shaderc_optimization_level_zero);
  auto result = compiler->CompileGlslToSpv(source, shaderc_compute_shader, name.c_str(), options);
  if (result.GetCompilationStatus() != shaderc_compilation_status_success)
    fail(ErrorCode::compile_error, fmt::format("shaderc could not compile {}: {}", name, result.GetErrorMessage()));
  return std::vector<unsigned char>(reinterpret_cast<const unsigned char*>(result.cbegin()),
                                    reinterpret_cast<const unsigned char*>(result.cend()));
}

std::uint64_t jit_compile_count() { return g_compiles.load(std::memory_order_relaxed); }
std::uint64_t jit_disk_cache_hits() { return g_disk_hits.load(std::memory_order_relaxed); }

JitKernel jit_kernel(Device& device, const KernelSpec& spec, std::string* why, const std::string* name,
                     FunctionSet functions, const std::string* canonical) {
  JitCache* const cache = &jit_cache();
  const Target target = device.backend() == Backend::cuda ? Target::cuda : Target::glsl;
  if (device.backend() == Backend::cpu) {
    if (why) *why = "the CPU backend evaluates expressions directly";
    return {};
  }
  std::string reason;
  if (!target_supports(spec, target, &reason)) {
    if (why) *why = reason;
    return {};
  }
  const std::size_t count = family_of(spec).entry_points.size();
  const FunctionSet all = count >= 32 ? kAllFunctions : (FunctionSet(1) << count) - 1;
  functions &= all;
  std::string own_text;
  const std::string& text = canonical ? *canonical : (own_text = spec.canonical());
  const std::string key = name ? *name : spec.name(text);
  if (!functions) fail(ErrorCode::internal, fmt::format("{}: no function asked for", key));
  auto slot_for = [&](const std::string& k, FunctionSet want) -> std::pair<JitSlot*, FunctionSet> {
    std::lock_guard lock(jit_cache_mutex());
    auto it = cache->find(std::make_tuple(&device, k, want));
    if (it == cache->end()) {
      // Another set of this kernel was asked for before: compile every function this time (a
      // kernel used two ways is likely used every way, and each set is a compile of its own).
      auto other = cache->lower_bound(std::make_tuple(&device, k, FunctionSet(0)));
      if (other != cache->end() && std::get<0>(other->first) == &device && std::get<1>(other->first) == k)
        want = all;
      it = cache->try_emplace(std::make_tuple(&device, k, want)).first;
    }
    if (!it->second) it->second = std::make_unique<JitSlot>();
    return {it->second.get(), want};  // erased only with the device (forget_jit_kernels): stays valid
  };
  {
    const auto [slot, want] = slot_for(key, functions);
    std::lock_guard lock(slot->mutex);
    if (!slot->record) slot->record = build(device, spec, want);
    if (slot->record->spec == text) return {&slot->record->registry, &slot->record->entry};
  }
  // Another spec holds this (32-bit) name: a slot of its own, keyed by the whole text.
  const auto [slot, want] = slot_for(key + "\n" + text, functions);
  std::lock_guard lock(slot->mutex);
  if (!slot->record) slot->record = build(device, spec, want);
  return {&slot->record->registry, &slot->record->entry};
}

}  // namespace kiln
