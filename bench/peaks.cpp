// The device's peaks, measured in the same run as the cases so every figure is a fraction of
// something measured on this machine:
//   copy.stream  Stream::copy device to device (cuMemcpyDtoDAsync, vkCmdCopyBuffer, memcpy)
//   copy.kernel  Kiln's own copy kernel (map "x")
//   fma.f32      a map kernel doing 256 dependent f32 FLOPs per 8 bytes: a measured proxy of the
//                f32 compute peak of elementwise kernels (not a vendor number)
//   sgemm.cublas, hgemm.cublas  on CUDA, cuBLAS (opened with dlopen, so kiln-bench runs without
//                it) SGEMM and HGEMM (fp16 in/out, fp32 accumulate, tensor cores), m = n = k
// The bandwidth roof is the best copy; the compute roof is SGEMM on CUDA, else fma.f32.
#include <dlfcn.h>

#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "runtime/cuda/cuda_interop.hpp"
#include "core/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/tensor.hpp"

namespace kiln::bench {

namespace {

constexpr int kFmaSteps = 128;

// The few cuBLAS entry points used, opened at run time (libcublas.so.13, then .12, then .so).
struct Cublas {
  using Handle = void*;
  int (*create)(Handle*) = nullptr;
  int (*destroy)(Handle) = nullptr;
  int (*set_stream)(Handle, void*) = nullptr;
  int (*sgemm)(Handle, int, int, int, int, int, const float*, const float*, int, const float*, int, const float*,
               float*, int) = nullptr;
  int (*gemm_ex)(Handle, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                 const void*, void*, int, int, int, int) = nullptr;
  void* lib = nullptr;
  std::string error;

  static Cublas& get() {
    static Cublas c = open();
    return c;
  }

  static Cublas open() {
    Cublas c;
    std::string tried;
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
      c.lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (c.lib) break;
      const char* e = dlerror();
      tried += fmt::format("{}{}", tried.empty() ? "" : "; ", e ? e : name);
    }
    if (!c.lib) {
      c.error = "cuBLAS not found: " + tried;
      return c;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(c.lib, name));
      if (!fn && c.error.empty()) c.error = fmt::format("cuBLAS lacks {}", name);
    };
    sym(c.create, "cublasCreate_v2");
    sym(c.destroy, "cublasDestroy_v2");
    sym(c.set_stream, "cublasSetStream_v2");
    sym(c.sgemm, "cublasSgemm_v2");
    sym(c.gemm_ex, "cublasGemmEx");
    return c;
  }
};

// cuBLAS enums (cublas_api.h, library_types.h).
constexpr int kOpN = 0;
constexpr int kR16F = 2;  // CUDA_R_16F
constexpr int kCompute32F = 68;
constexpr int kGemmDefault = -1;

void check_cublas(int status, const char* call) {
  if (status != 0) fail(ErrorCode::internal, fmt::format("{} failed with cublasStatus_t {}", call, status));
}

Peak gemm_peak(Device& dev, bool half, int size, const TimingOptions& topt) {
  Peak p;
  p.name = half ? "hgemm.cublas" : "sgemm.cublas";
  p.unit = "GFLOP/s";
  p.what = fmt::format("cuBLAS {} m=n=k={}{}", half ? "cublasGemmEx" : "cublasSgemm", size,
                       half ? " (f16 in/out, f32 accumulate)" : " (f32)");
  if (dev.backend() != Backend::cuda) {
    p.error = "cuBLAS runs on CUDA devices only";
    return p;
  }
  Cublas& cb = Cublas::get();
  if (!cb.error.empty()) {
    p.error = cb.error;
    return p;
  }
  try {
    cuda::make_context_current(dev);
    Stream& stream = dev.default_stream();
    Cublas::Handle h = nullptr;
    check_cublas(cb.create(&h), "cublasCreate_v2");
    std::unique_ptr<void, void (*)(void*)> guard(h, [](void* x) { Cublas::get().destroy(x); });
    check_cublas(cb.set_stream(h, cuda::native_stream(stream)), "cublasSetStream_v2");
    const std::uint64_t n = std::uint64_t(size) * std::uint64_t(size);
    const DType t = half ? DType::f16 : DType::f32;
    const auto a = random_input(t, {-1, 1}, n, 1), b = random_input(t, {-1, 1}, n, 2);
    const Tensor A = Tensor::from_host(a.data(), a.size(), {std::int64_t(n)}, t, dev);
    const Tensor B = Tensor::from_host(b.data(), b.size(), {std::int64_t(n)}, t, dev);
    const Tensor C = Tensor::empty({std::int64_t(n)}, t, dev);
    const float alpha = 1, beta = 0;
    auto run = [&](int) {
      auto pa = reinterpret_cast<const void*>(A.address()), pb = reinterpret_cast<const void*>(B.address());
      auto pc = reinterpret_cast<void*>(C.address());
      if (half)
        check_cublas(cb.gemm_ex(h, kOpN, kOpN, size, size, size, &alpha, pa, kR16F, size, pb, kR16F, size, &beta, pc,
                                kR16F, size, kCompute32F, kGemmDefault), "cublasGemmEx");
      else
        check_cublas(cb.sgemm(h, kOpN, kOpN, size, size, size, &alpha, static_cast<const float*>(pa), size,
                              static_cast<const float*>(pb), size, &beta, static_cast<float*>(pc), size),
                     "cublasSgemm_v2");
    };
    p.timing = time_runs(stream, run, 1, topt);
    const double flops = 2.0 * double(size) * double(size) * double(size);
    p.value = flops / (p.timing.headline().median_us * 1e-6) / 1e9;
  } catch (const Error& e) {
    p.error = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  }
  return p;
}

Peak stream_copy_peak(Device& dev, std::uint64_t n, const TimingOptions& topt) {
  Peak p;
  p.name = "copy.stream";
  p.unit = "GB/s";
  p.what = fmt::format("Stream::copy device to device, {} f32 (read + write counted)", format_count(n));
  try {
    const std::uint64_t bytes = n * 4;
    const int sets = buffer_sets(dev.info(), 2 * bytes, bytes, &p.error);
    if (!sets) return p;
    std::vector<std::shared_ptr<Buffer>> src, dst;
    const auto data = random_input(DType::f32, {-1e4, 1e4}, n, 5);
    Stream& stream = dev.default_stream();
    for (int s = 0; s < sets; ++s) {
      src.push_back(dev.allocate(bytes));
      dst.push_back(dev.allocate(bytes));
      stream.upload(*src.back(), 0, data.data(), bytes);
    }
    auto run = [&](int r) { stream.copy(*src[std::size_t(r % sets)], 0, *dst[std::size_t(r % sets)], 0, bytes); };
    p.timing = time_runs(stream, run, sets, topt);
    p.value = 2.0 * double(bytes) / (p.timing.headline().median_us * 1e-6) / 1e9;
  } catch (const Error& e) {
    p.error = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  }
  return p;
}

Peak case_peak(const BenchCase& c, const char* name, const char* unit, Device& dev, std::uint64_t n,
               const TimingOptions& topt) {
  Peak p;
  p.name = name;
  p.unit = unit;
  const bool flops = std::string(unit) == "GFLOP/s";
  p.what = flops ? fmt::format("map kernel {} over {} f32: {:.0f} FLOP per 8 bytes, a measured proxy", c.expr_text,
                               format_count(n), c.flops_per_element())
                 : fmt::format("Kiln's copy kernel (map \"x\"), {} f32", format_count(n));
  CheckResult verify;
  p.timing = time_case(c, dev, n, topt, &verify);
  if (!p.timing.ok) {
    p.error = p.timing.error;
    return p;
  }
  if (verify.state != CheckResult::State::pass) {
    p.error = "the timed output is wrong: " + verify.message;
    return p;
  }
  const double s = p.timing.headline().median_us * 1e-6;
  p.value = flops ? c.flops_per_element() * double(n) / s / 1e9 : double(c.bytes(n)) / s / 1e9;
  return p;
}

}  // namespace

nlohmann::json Peaks::to_json() const {
  nlohmann::json a = nlohmann::json::array();
  for (const Peak& p : list) {
    nlohmann::json j = {{"name", p.name}, {"what", p.what}, {"unit", p.unit}};
    if (p.error.empty()) {
      j["value"] = p.value;
      j["mode"] = p.timing.mode();
      j["time_us"] = p.timing.headline().to_json();
    } else {
      j["value"] = nullptr;
      j["error"] = p.error;
    }
    a.push_back(std::move(j));
  }
  return {{"list", a},
          {"bandwidth_gb_per_s", bandwidth_gbps},
          {"bandwidth_from", bandwidth_from},
          {"gflop_per_s", gflops},
          {"gflop_from", gflops_from}};
}

Peaks measure_peaks(Device& dev, const PeakOptions& opt, const std::function<void(const std::string&)>& progress) {
  Peaks out;
  TimingOptions topt = opt.timing;
  progress("copy.stream");
  out.list.push_back(stream_copy_peak(dev, opt.copy_elements, topt));
  progress("copy.kernel");
  const std::vector<BenchCase> all = bench_cases();
  out.list.push_back(case_peak(all.front(), "copy.kernel", "GB/s", dev, opt.copy_elements, topt));
  progress("fma.f32");
  const BenchCase fma = fma_peak_case(kFmaSteps);
  out.list.push_back(case_peak(fma, "fma.f32", "GFLOP/s", dev, opt.fma_elements, topt));
  if (dev.backend() == Backend::cuda) {
    TimingOptions g = topt;
    g.repeats = std::min(g.repeats, 10);
    progress("sgemm.cublas");
    out.list.push_back(gemm_peak(dev, false, opt.gemm_size, g));
    progress("hgemm.cublas");
    out.list.push_back(gemm_peak(dev, true, opt.gemm_size, g));
  }
  for (const Peak& p : out.list) {
    if (!p.error.empty()) continue;
    if (p.unit == "GB/s" && p.value > out.bandwidth_gbps) {
      out.bandwidth_gbps = p.value;
      out.bandwidth_from = p.name;
    }
  }
  auto pick_flops = [&](const char* name) {
    for (const Peak& p : out.list)
      if (p.name == name && p.error.empty() && p.value > 0) {
        out.gflops = p.value;
        out.gflops_from = p.name;
        return true;
      }
    return false;
  };
  if (!pick_flops("sgemm.cublas")) pick_flops("fma.f32");
  return out;
}

}  // namespace kiln::bench
