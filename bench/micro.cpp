// kiln-bench-micro: Google Benchmark micro-benchmarks of Kiln's host-side costs.
//   parse / emit     parse_expr, emit_cuda, emit_glsl of a fused GELU
//   compile          the JIT's GLSL -> SPIR-V of the fused GELU (one process-wide shaderc compiler),
//                    against the same compile with a new shaderc::Compiler per call (what the JIT
//                    did before: the compiler's set-up is most of a small compile)
//   lookup           builtin_registry().find(name), single_op_spec(...).name()
//   eager/<device>   kiln::add on 1-element tensors on each available device: the dispatch cost
//                    (shape/dtype rules, kernel lookup, params, recording the launch), with the
//                    device work excluded as far as the backend allows: the stream is drained
//                    outside the timed region every 256 iterations (on the CPU backend the
//                    1-element add itself runs inline and is included).
//   compile cuda     NVRTC's compile of the fused GELU to an sm_90 cubin (the cold JIT compile on CUDA)
//   jit disk entry   reading and verifying a JIT cache entry of a 16 KiB kernel (the disk-cache hit,
//                    without the driver's module load)
//   jit/<device>     kiln::jit of a GELU written op by op (5 ops): JitTrace traces, fuses and resolves
//                    it afresh each time (kernels compiled once, then from memory); JitCall1 calls the
//                    traced function on 1 element (signature lookup + one fused launch); JitCallAdam3
//                    an Adam update (3 results, one fused launch with several results)
//   kiln-bench-micro [--benchmark_filter=REGEX] [--benchmark_format=json] ...
#include <benchmark/benchmark.h>
#include <shaderc/shaderc.hpp>

#include <string>
#include <vector>

#include "codegen/emit.hpp"
#include "codegen/spec.hpp"
#include "core/error.hpp"
#include "runtime/aot_kernel.hpp"
#include "runtime/device.hpp"
#include "runtime/ops.hpp"
#include "runtime/jit.hpp"
#include "runtime/jit_cache_file.hpp"
#include "core/disk_cache.hpp"
#include "runtime/host.hpp"
#include "runtime/jit_function.hpp"
#include "runtime/registry.hpp"

using namespace kiln;

namespace {

constexpr const char* kGelu = "0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))";

void BM_ParseExpr(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_expr(kGelu, {DType::f32}));
}
BENCHMARK(BM_ParseExpr);

void BM_EmitCuda(benchmark::State& state) {
  const Expr e = parse_expr(kGelu, {DType::f32});
  const KernelSpec spec = make_map_spec(e, DType::f32);
  for (auto _ : state) benchmark::DoNotOptimize(emit_cuda(spec));
}
BENCHMARK(BM_EmitCuda);

void BM_EmitGlsl(benchmark::State& state) {
  const Expr e = parse_expr(kGelu, {DType::f32});
  const KernelSpec spec = make_map_spec(e, DType::f32);
  for (auto _ : state) benchmark::DoNotOptimize(emit_glsl(spec, kMapContiguous));
}
BENCHMARK(BM_EmitGlsl);

void BM_ParseAndEmitGlsl(benchmark::State& state) {
  for (auto _ : state) {
    const Expr e = parse_expr(kGelu, {DType::f32});
    benchmark::DoNotOptimize(emit_glsl(make_map_spec(e, DType::f32), kMapContiguous));
  }
}
BENCHMARK(BM_ParseAndEmitGlsl);

void BM_CompileGlslFreshCompiler(benchmark::State& state) {
  const std::string src = emit_glsl(make_map_spec(parse_expr(kGelu, {DType::f32}), DType::f32), kMapContiguous);
  for (auto _ : state) {
    // Per call, as runtime/jit.cpp did before; registered before the shared compiler exists (it is
    // never destroyed), so that, as then, no other compiler keeps glslang's process state alive.
    shaderc::Compiler compiler;
    shaderc::CompileOptions options;
    options.SetTargetEnvironment(shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_3);
    options.SetOptimizationLevel(shaderc_optimization_level_zero);
    auto r = compiler.CompileGlslToSpv(src, shaderc_compute_shader, "gelu", options);
    if (r.GetCompilationStatus() != shaderc_compilation_status_success) state.SkipWithError("shaderc failed");
    benchmark::DoNotOptimize(r.cbegin());
  }
}
BENCHMARK(BM_CompileGlslFreshCompiler)->Unit(benchmark::kMillisecond);

void BM_CompileGlslSharedCompiler(benchmark::State& state) {
  const std::string src = emit_glsl(make_map_spec(parse_expr(kGelu, {DType::f32}), DType::f32), kMapContiguous);
  for (auto _ : state) benchmark::DoNotOptimize(compile_glsl_spirv(src, "gelu"));
}
BENCHMARK(BM_CompileGlslSharedCompiler)->Unit(benchmark::kMillisecond);

// A cold NVRTC compile of GELU for sm_90: what kiln::jit compiles for a contiguous elementwise
// group (the contiguous entry point, -Ofc=min), for a strided one, and the whole unit at full
// optimization (both entry points, as before the JIT compiled only what a plan uses).
void BM_CompileCudaNvrtc(benchmark::State& state, FunctionSet functions, bool fast) {
  const std::string src = emit_cuda(make_map_spec(parse_expr(kGelu, {DType::f32}), DType::f32), functions);
  try {
    compile_cuda_cubin(src, "gelu", "sm_90", fast);
  } catch (const Error& e) {
    state.SkipWithError(e.what());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(compile_cuda_cubin(src, "gelu", "sm_90", fast));
}
BENCHMARK_CAPTURE(BM_CompileCudaNvrtc, contiguous_jit, FunctionSet(1) << kMapContiguous, true)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CompileCudaNvrtc, strided_jit, FunctionSet(1) << kMapStrided, true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CompileCudaNvrtc, both_full, kAllFunctions, false)->Unit(benchmark::kMillisecond);

void BM_JitDiskEntryLoad(benchmark::State& state) {
  const std::string path = cache_dir("bench") + "/micro-entry.bin";
  JitBlobs blobs(2, std::vector<unsigned char>(8192, 7));
  if (!write_file_atomically(path, pack_jit_entry(1, blobs))) {
    state.SkipWithError("cannot write to the cache folder");
    return;
  }
  std::string why;
  for (auto _ : state) {
    auto file = read_cache_entry(path, &why);
    benchmark::DoNotOptimize(unpack_jit_entry(*file, 1, &why));
    touch_cache_entry(path);
  }
}
BENCHMARK(BM_JitDiskEntryLoad)->Unit(benchmark::kMicrosecond);

void BM_SpecName(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(single_op_spec(Op::add, DType::f32).name());
}
BENCHMARK(BM_SpecName);

void BM_RegistryFind(benchmark::State& state) {
  const Registry& reg = builtin_registry();
  if (reg.kernels.empty()) {
    state.SkipWithError("the built-in registry is empty (built with KILN_BUILD_KERNELS=OFF)");
    return;
  }
  const std::string name = single_op_spec(Op::add, DType::f32).name();
  for (auto _ : state) benchmark::DoNotOptimize(reg.find(name));
}
BENCHMARK(BM_RegistryFind);

void BM_RegistryFindMissing(benchmark::State& state) {
  const Registry& reg = builtin_registry();
  for (auto _ : state) benchmark::DoNotOptimize(reg.find("map_f32_f32_00000000"));
}
BENCHMARK(BM_RegistryFindMissing);

// Times |dispatch| (one host-side call that enqueues work on |dev|): one warm call first (kernel
// loaded, JIT compiled, caches warm), then the device is drained outside the timed region every 256
// calls so queues never fill.
template <class F>
void time_dispatch(benchmark::State& state, Device* dev, F dispatch) {
  benchmark::DoNotOptimize(dispatch());
  dev->default_stream().synchronize();
  std::int64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dispatch());
    if (++i % 256 == 0) {
      state.PauseTiming();
      dev->default_stream().synchronize();
      state.ResumeTiming();
    }
  }
  dev->default_stream().synchronize();
  state.SetLabel(dev->info().name);
}

Tensor one_element(Device* dev) {
  const float one = 1.0f;
  return Tensor::from_host(&one, sizeof one, {1}, DType::f32, *dev);
}

void eager_add(benchmark::State& state, Device* dev) {
  const Tensor x = one_element(dev), y = one_element(dev);
  time_dispatch(state, dev, [&] { return add(x, y); });
}

void eager_fused(benchmark::State& state, Device* dev) {
  const Expr e = parse_expr(kGelu, {DType::f32});
  const Tensor x = one_element(dev);
  time_dispatch(state, dev, [&] { return map(e, {x}); });
}

// What a generated header's function costs: AotKernel::run of a registry kernel (the built-in SiLU
// with 128 threads per block) on a 1-element tensor.
void aot_run(benchmark::State& state, Device* dev) {
  const KernelEntry* entry = nullptr;
  for (const KernelEntry& e : builtin_registry().kernels)
    if (e.block_size == 128) entry = &e;
  if (!entry) {
    state.SkipWithError("no built-in kernel with block_size 128 (built with KILN_BUILD_KERNELS=OFF?)");
    return;
  }
  const AotKernel k(builtin_registry(), entry->name, entry->spec);
  const Tensor x = one_element(dev);
  time_dispatch(state, dev, [&] { return k.run({x}); });
}

Tensor gelu_ops(const Tensor& x) { return x * 0.5 * (erf(x * 0.7071067811865476) + 1.0); }

void jit_trace(benchmark::State& state, Device* dev) {
  const Tensor x = one_element(dev);
  for (auto _ : state) {
    auto f = jit(&gelu_ops);
    benchmark::DoNotOptimize(f.plan(x));
  }
}

void jit_call(benchmark::State& state, Device* dev) {
  const Tensor x = one_element(dev);
  auto f = jit(&gelu_ops);
  time_dispatch(state, dev, [&] { return f(x); });
}

void jit_call_adam(benchmark::State& state, Device* dev) {
  const Tensor p = one_element(dev), g = one_element(dev), m = one_element(dev), v = one_element(dev);
  auto adam = jit([](const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v) {
    const Tensor m2 = m * 0.9 + g * 0.1, v2 = v * 0.999 + g * g * 0.001;
    return std::tuple{p - m2 * 1e-2 / (sqrt(v2 / 0.001) + 1e-8), m2, v2};
  });
  time_dispatch(state, dev, [&] { return std::get<0>(adam(p, g, m, v)); });
}

// As jit_call_adam, each result kept alive for 8 calls: every call has new addresses, so it is
// resolved and planned again (the cost of a call the kept plans and graphs do not cover).
void jit_call_adam_new_addresses(benchmark::State& state, Device* dev) {
  const Tensor p = one_element(dev), g = one_element(dev), m = one_element(dev), v = one_element(dev);
  auto adam = jit([](const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v) {
    const Tensor m2 = m * 0.9 + g * 0.1, v2 = v * 0.999 + g * g * 0.001;
    return std::tuple{p - m2 * 1e-2 / (sqrt(v2 / 0.001) + 1e-8), m2, v2};
  });
  std::vector<std::tuple<Tensor, Tensor, Tensor>> ring(8);
  std::size_t i = 0;
  time_dispatch(state, dev, [&] {
    ring[i++ % ring.size()] = adam(p, g, m, v);
    return i;
  });
  state.counters["graph_replays"] = double(adam.stats().graph_replays);
}

// The same update written into the same tensors each call (Jit::call_into): on a GPU its three
// kernels are planned once and replayed as one recorded graph (|graphs| true) or launched one by
// one from the kept plans.
void jit_call_into_adam(benchmark::State& state, Device* dev, bool graphs) {
  const Tensor p = one_element(dev), g = one_element(dev), m = one_element(dev), v = one_element(dev);
  const std::vector<Tensor> out{one_element(dev), one_element(dev), one_element(dev)};
  JitOptions options;
  options.name = "adam_into";
  options.graphs = graphs;
  auto adam = jit(
      [](const Tensor& p, const Tensor& g, const Tensor& m, const Tensor& v) {
        const Tensor m2 = m * 0.9 + g * 0.1, v2 = v * 0.999 + g * g * 0.001;
        return std::tuple{p - m2 * 1e-2 / (sqrt(v2 / 0.001) + 1e-8), m2, v2};
      },
      options);
  time_dispatch(state, dev, [&] { return std::get<0>(adam.call_into(out, p, g, m, v)); });
  state.counters["graph_replays"] = double(adam.stats().graph_replays);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  for (const BackendStatus& s : backend_status())
    if (!s.available) std::fprintf(stderr, "kiln-bench-micro: %s unavailable: %s\n",
                                   std::string(backend_name(s.backend)).c_str(), s.reason.c_str());
  for (Device* dev : devices()) {
    benchmark::RegisterBenchmark(("BM_EagerAdd1/" + dev->id()).c_str(), eager_add, dev);
    benchmark::RegisterBenchmark(("BM_EagerFusedMap1/" + dev->id()).c_str(), eager_fused, dev);
    benchmark::RegisterBenchmark(("BM_AotKernelRun1/" + dev->id()).c_str(), aot_run, dev);
    benchmark::RegisterBenchmark(("BM_JitTrace/" + dev->id()).c_str(), jit_trace, dev)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("BM_JitCall1/" + dev->id()).c_str(), jit_call, dev);
    benchmark::RegisterBenchmark(("BM_JitCallAdam3/" + dev->id()).c_str(), jit_call_adam, dev);
    benchmark::RegisterBenchmark(("BM_JitCallAdam3NewAddresses/" + dev->id()).c_str(), jit_call_adam_new_addresses,
                                 dev);
    benchmark::RegisterBenchmark(("BM_JitCallIntoAdam3Graph/" + dev->id()).c_str(), jit_call_into_adam, dev, true);
    benchmark::RegisterBenchmark(("BM_JitCallIntoAdam3Launches/" + dev->id()).c_str(), jit_call_into_adam, dev, false);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
