// Tests of the CUDA backend of the runtime (runtime/cuda/). The probe tests run everywhere and
// assert what the machine allows: no driver -> a clear "unavailable" reason; a GPU -> a device with
// an sm_XY arch. Execution tests skip with the reason when there is no CUDA device. NVRTC is
// checked without a GPU.
#include <gtest/gtest.h>
#include <nvrtc.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cuda/cublaslt.hpp"
#include "runtime/cuda/cuda_interop.hpp"
#include "runtime/device.hpp"
#include "core/error.hpp"
#include "runtime/registry.hpp"

namespace {

std::string cuda_status_reason() {
  for (const auto& s : kiln::backend_status())
    if (s.backend == kiln::Backend::cuda) return s.available ? std::string() : s.reason;
  return "the CUDA backend is not in backend_status()";
}

kiln::Device* first_cuda_device() {
  for (kiln::Device* d : kiln::devices())
    if (d->backend() == kiln::Backend::cuda) return d;
  return nullptr;
}

#define KILN_REQUIRE_CUDA(dev)                                                 \
  kiln::Device* dev = first_cuda_device();                                     \
  if (!dev) GTEST_SKIP() << "no CUDA device: " << cuda_status_reason()

template <class F>
kiln::ErrorCode error_code_of(F&& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const kiln::Error& e) {
    if (message) *message = e.what();
    return e.code();
  }
  ADD_FAILURE() << "expected a kiln::Error";
  return kiln::ErrorCode::internal;
}

const char* kScaleSource = R"(
struct P { unsigned long long out, in, n; };
extern "C" __global__ void scale(P p) {
  unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < p.n) {
    float* out = reinterpret_cast<float*>(p.out);
    const float* in = reinterpret_cast<const float*>(p.in);
    out[i] = in[i] * 2.0f + 1.0f;
  }
}
)";

struct ScaleParams {
  std::uint64_t out, in, n;
};

// Compiles kScaleSource to a cubin for |arch| ("sm_90"); empty on failure with the log in *log.
std::vector<unsigned char> compile_scale(const std::string& arch, std::string* log) {
  nvrtcProgram prog = nullptr;
  if (nvrtcCreateProgram(&prog, kScaleSource, "scale.cu", 0, nullptr, nullptr) != NVRTC_SUCCESS) {
    *log = "nvrtcCreateProgram failed";
    return {};
  }
  const std::string arch_opt = "--gpu-architecture=" + arch;
  const char* opts[] = {arch_opt.c_str(), "--std=c++17"};
  const nvrtcResult r = nvrtcCompileProgram(prog, 2, opts);
  std::size_t log_size = 0;
  nvrtcGetProgramLogSize(prog, &log_size);
  std::string text(log_size, '\0');
  if (log_size) nvrtcGetProgramLog(prog, text.data());
  *log = std::string(nvrtcGetErrorString(r)) + ": " + text;
  std::vector<unsigned char> cubin;
  std::size_t size = 0;
  if (r == NVRTC_SUCCESS && nvrtcGetCUBINSize(prog, &size) == NVRTC_SUCCESS && size > 0) {
    cubin.resize(size);
    if (nvrtcGetCUBIN(prog, reinterpret_cast<char*>(cubin.data())) != NVRTC_SUCCESS) cubin.clear();
  }
  nvrtcDestroyProgram(&prog);
  return cubin;
}

std::vector<unsigned char> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<unsigned char> v(n);
  for (auto& b : v) b = static_cast<unsigned char>(rng());
  return v;
}

}  // namespace

// ---- run everywhere -------------------------------------------------------------------------

TEST(CudaRuntime, ProbeReportsAvailability) {
  const auto& all = kiln::devices();  // must work with or without a driver
  EXPECT_FALSE(all.empty());
  bool listed = false;
  for (const auto& s : kiln::backend_status()) {
    if (s.backend != kiln::Backend::cuda) continue;
    listed = true;
    std::string reason;
    const bool driver = kiln::cuda::driver_available(&reason);
    if (s.available) {
      EXPECT_TRUE(driver);
      kiln::Device* d = first_cuda_device();
      ASSERT_NE(d, nullptr);
      EXPECT_EQ(d->info().arch.rfind("sm_", 0), 0u) << d->info().arch;
      EXPECT_GT(kiln::cuda::driver_version(), 0);
    } else {
      EXPECT_EQ(first_cuda_device(), nullptr);
      ASSERT_FALSE(s.reason.empty());
      const bool explains = s.reason.find("libcuda") != std::string::npos ||
                            s.reason.find("driver") != std::string::npos ||
                            s.reason.find("cuInit") != std::string::npos ||
                            s.reason.find("CUDA") != std::string::npos;
      EXPECT_TRUE(explains) << s.reason;
      if (!driver) {
        EXPECT_EQ(reason, s.reason);
      }
    }
  }
  EXPECT_TRUE(listed);
}

TEST(CudaRuntime, DeviceLookup) {
  kiln::Device* d = first_cuda_device();
  if (!d) {
    const std::string reason = cuda_status_reason();
    std::string message;
    EXPECT_EQ(error_code_of([] { kiln::device("cuda:0"); }, &message),
              kiln::ErrorCode::device_unavailable);
    EXPECT_NE(message.find("cuda:0"), std::string::npos) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message << " / " << reason;
    // The other backends still work.
    EXPECT_NO_THROW(kiln::device("cpu"));
    return;
  }
  kiln::Device& same = kiln::device("cuda:0");
  const kiln::DeviceInfo& info = same.info();
  EXPECT_EQ(info.backend, kiln::Backend::cuda);
  EXPECT_EQ(same.id(), "cuda:0");
  EXPECT_FALSE(info.name.empty());
  EXPECT_GT(info.memory_bytes, 0u);
  EXPECT_EQ(info.max_allocation_bytes, info.memory_bytes);
  EXPECT_EQ(info.arch.rfind("sm_", 0), 0u);
  EXPECT_NE(info.driver.find("CUDA"), std::string::npos) << info.driver;
  EXPECT_EQ(info.subgroup_size, 32u);
  EXPECT_EQ(info.dtypes.size(), std::size_t(kiln::kNumDTypes));
  if (!std::getenv("KILN_DEVICE")) {
    EXPECT_EQ(kiln::default_device().backend(), kiln::Backend::cuda);
  }
}

TEST(CudaRuntime, NvrtcCompilesSm90CubinWithoutGpu) {
  std::string log;
  const auto cubin = compile_scale("sm_90", &log);
  ASSERT_FALSE(cubin.empty()) << log;
  ASSERT_GE(cubin.size(), 4u);
  EXPECT_EQ(std::memcmp(cubin.data(), "\x7f" "ELF", 4), 0) << "a cubin is an ELF image";
}

// ---- need a CUDA device ---------------------------------------------------------------------

TEST(CudaRuntime, BufferAllocFreeReuse) {
  KILN_REQUIRE_CUDA(dev);
  constexpr std::size_t kOdd = 777777;  // an unusual size class, not used by other tests
  std::uint64_t first = 0;
  {
    auto b = dev->allocate(kOdd);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b->size_bytes(), kOdd);
    EXPECT_EQ(b->device_address() % 256, 0u);
    EXPECT_EQ(&b->device(), dev);
    first = b->device_address();
  }
  dev->default_stream().synchronize();
  auto again = dev->allocate(kOdd - 16);  // same 512-byte size class (778240)
  EXPECT_EQ(again->device_address(), first) << "a freed block is cached and reused";
  // Distinct live buffers never share memory.
  auto a = dev->allocate(1), b = dev->allocate(1), c = dev->allocate(3 << 20);
  std::set<std::uint64_t> addresses = {a->device_address(), b->device_address(),
                                       c->device_address(), again->device_address()};
  EXPECT_EQ(addresses.size(), 4u);
  for (auto addr : addresses) EXPECT_EQ(addr % 256, 0u);
  auto zero = dev->allocate(0);
  EXPECT_EQ(zero->device_address() % 256, 0u);
}

TEST(CudaRuntime, UploadDownloadRoundTrip) {
  KILN_REQUIRE_CUDA(dev);
  kiln::Stream& s = dev->default_stream();
  const std::size_t sizes[] = {1, 3, 255, 257, 4099, (1u << 20) + 7, (9u << 20) + 13};
  unsigned seed = 1;
  for (std::size_t n : sizes) {
    const auto host = random_bytes(n, seed++);
    auto buf = dev->allocate(n);
    s.upload(*buf, 0, host.data(), n);
    std::vector<unsigned char> back(n, 0);
    s.download(*buf, 0, back.data(), n);
    EXPECT_EQ(back, host) << "size " << n;
    if (n > 8) {  // partial, unaligned ranges
      const std::size_t off = 5, len = n - 8;
      const auto part = random_bytes(len, seed++);
      s.upload(*buf, off, part.data(), len);
      std::vector<unsigned char> got(len);
      s.download(*buf, off, got.data(), len);
      EXPECT_EQ(got, part) << "size " << n;
    }
  }
  // A second stream of the same device.
  auto other = dev->create_stream();
  auto buf = dev->allocate(1000);
  const auto host = random_bytes(1000, 99);
  other->upload(*buf, 0, host.data(), 1000);
  std::vector<unsigned char> back(1000);
  other->download(*buf, 0, back.data(), 1000);
  EXPECT_EQ(back, host);
  // Out-of-range transfers fail clearly.
  std::string message;
  EXPECT_EQ(error_code_of([&] { s.upload(*buf, 990, host.data(), 11); }, &message),
            kiln::ErrorCode::invalid_argument);
  EXPECT_NE(message.find("1000 bytes"), std::string::npos) << message;
  EXPECT_EQ(error_code_of([&] { s.download(*buf, 1001, back.data(), 0); }),
            kiln::ErrorCode::invalid_argument);
}

TEST(CudaRuntime, FillAndCopy) {
  KILN_REQUIRE_CUDA(dev);
  kiln::Stream& s = dev->default_stream();
  const std::size_t n = 10007;
  auto a = dev->allocate(n), b = dev->allocate(n);
  std::vector<unsigned char> model_a(n, 0x11), model_b(n, 0x22);
  s.fill(*a, 0, n, 0x11);
  s.fill(*b, 0, n, 0x22);
  s.fill(*a, 3, 500, 0xAB);
  std::fill(model_a.begin() + 3, model_a.begin() + 503, 0xAB);
  s.copy(*a, 1, *b, 7, 4000);
  std::copy(model_a.begin() + 1, model_a.begin() + 4001, model_b.begin() + 7);
  // Overlapping copy inside one buffer behaves like memmove.
  s.copy(*b, 0, *b, 100, 5000);
  std::memmove(model_b.data() + 100, model_b.data(), 5000);
  std::vector<unsigned char> got_a(n), got_b(n);
  s.download(*a, 0, got_a.data(), n);
  s.download(*b, 0, got_b.data(), n);
  EXPECT_EQ(got_a, model_a);
  EXPECT_EQ(got_b, model_b);
  EXPECT_EQ(error_code_of([&] { s.copy(*a, n - 1, *b, 0, 2); }), kiln::ErrorCode::invalid_argument);
  EXPECT_EQ(error_code_of([&] { s.fill(*a, 0, n + 1, 0); }), kiln::ErrorCode::invalid_argument);
}

TEST(CudaRuntime, KernelLaunchMatchesHost) {
  KILN_REQUIRE_CUDA(dev);
  std::string log;
  static std::vector<unsigned char> cubin;  // registries reference their blobs for their life
  cubin = compile_scale(dev->info().arch, &log);
  ASSERT_FALSE(cubin.empty()) << "NVRTC could not compile for " << dev->info().arch << ": " << log;
  static const kiln::EmbeddedBlob images[] = {{cubin.data(), cubin.size()}};
  static const kiln::KernelFunction functions[] = {{"scale", {}}};
  static const kiln::KernelEntry entries[] = {{"test_scale", "test", 0, 1, functions, 256}};
  const kiln::Registry registry{entries, images};

  const kiln::Kernel* kernel = nullptr;
  try {
    kernel = &dev->kernel(registry, entries[0], 0);
  } catch (const kiln::Error& e) {
    if (e.code() == kiln::ErrorCode::compile_error &&
        kiln::cuda::driver_version() < [] { int M = 0, m = 0; nvrtcVersion(&M, &m); return M * 1000 + m * 10; }())
      GTEST_SKIP() << "the driver is older than NVRTC and cannot load its cubin: " << e.what();
    throw;
  }
  EXPECT_EQ(&dev->kernel(registry, entries[0], 0), kernel) << "kernels are cached";
  EXPECT_EQ(kernel->block_size(), 256);
  EXPECT_NE(kernel->name().find("test_scale"), std::string::npos);

  const std::uint64_t n = 1000003;
  std::vector<float> in(n), out(n, -1.0f), expect(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    in[i] = float(int(i % 2001) - 1000) * 0.37f;
    expect[i] = in[i] * 2.0f + 1.0f;
  }
  auto din = dev->allocate(n * sizeof(float)), dout = dev->allocate(n * sizeof(float));
  kiln::Stream& s = dev->default_stream();
  s.upload(*din, 0, in.data(), n * sizeof(float));
  s.fill(*dout, 0, n * sizeof(float), 0);
  const ScaleParams p{dout->device_address(), din->device_address(), n};
  const kiln::Dim3 groups{std::uint32_t((n + 255) / 256), 1, 1};
  s.launch(*kernel, groups, &p, sizeof(p));
  s.download(*dout, 0, out.data(), n * sizeof(float));
  EXPECT_EQ(out, expect);

  // Grid limits are checked with the kernel's name.
  std::string message;
  EXPECT_EQ(error_code_of([&] { s.launch(*kernel, {1, 70000, 1}, &p, sizeof(p)); }, &message),
            kiln::ErrorCode::invalid_argument);
  EXPECT_NE(message.find("test_scale"), std::string::npos) << message;
  // The device still works after the rejected launch.
  s.launch(*kernel, groups, &p, sizeof(p));
  s.synchronize();
}

TEST(CudaRuntime, KernelLoadErrors) {
  KILN_REQUIRE_CUDA(dev);
  static const unsigned char junk[] = "this is not a fatbin, a cubin or PTX";
  static const kiln::EmbeddedBlob images[] = {{junk, sizeof(junk)}};
  static const kiln::KernelFunction functions[] = {{"f", {}}};
  static const kiln::KernelEntry entries[] = {{"no_cuda_kernel", "x", -1, 1, functions, 128},
                                              {"junk_kernel", "y", 0, 1, functions, 128}};
  const kiln::Registry registry{entries, images};
  std::string message;
  EXPECT_EQ(error_code_of([&] { dev->kernel(registry, entries[0], 0); }, &message),
            kiln::ErrorCode::unsupported);
  EXPECT_NE(message.find("no_cuda_kernel was not built for CUDA"), std::string::npos) << message;
  EXPECT_EQ(error_code_of([&] { dev->kernel(registry, entries[1], 0); }, &message),
            kiln::ErrorCode::compile_error);
  EXPECT_NE(message.find("junk_kernel"), std::string::npos) << message;
  EXPECT_NE(message.find(dev->info().arch), std::string::npos) << message;
  // Not sticky: the device still works.
  auto b = dev->allocate(16);
  dev->default_stream().fill(*b, 0, 16, 1);
  dev->default_stream().synchronize();
}

TEST(CudaRuntime, EventsMeasureTime) {
  KILN_REQUIRE_CUDA(dev);
  auto s = dev->create_stream();
  auto buf = dev->allocate(64 << 20);
  auto start = s->record();
  for (int i = 0; i < 4; ++i) s->fill(*buf, 0, buf->size_bytes(), std::uint8_t(i));
  auto end = s->record();
  end->synchronize();
  const double ms = end->elapsed_ms_since(*start);
  EXPECT_GE(ms, 0.0);
  EXPECT_LT(ms, 60000.0);
}

TEST(CudaRuntime, OutOfMemoryIsRecoverable) {
  KILN_REQUIRE_CUDA(dev);
  std::string message;
  EXPECT_EQ(error_code_of([&] { dev->allocate(std::size_t(1) << 50); }, &message),  // 1 PiB
            kiln::ErrorCode::out_of_memory);
  EXPECT_NE(message.find(std::to_string(std::size_t(1) << 50)), std::string::npos) << message;
  EXPECT_NE(message.find("free"), std::string::npos) << message;
  auto b = dev->allocate(1 << 20);
  const auto host = random_bytes(1 << 20, 7);
  dev->default_stream().upload(*b, 0, host.data(), host.size());
  std::vector<unsigned char> back(host.size());
  dev->default_stream().download(*b, 0, back.data(), back.size());
  EXPECT_EQ(back, host);
}

TEST(CudaRuntime, ConcurrentAllocationsAndStreams) {
  KILN_REQUIRE_CUDA(dev);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      try {
        auto s = dev->create_stream();
        for (int i = 0; i < 50; ++i) {
          const std::size_t n = 1 + std::size_t((t * 131 + i * 977) % 70000);
          auto b = dev->allocate(n);
          const auto host = random_bytes(n, unsigned(t * 1000 + i));
          s->upload(*b, 0, host.data(), n);
          std::vector<unsigned char> back(n);
          s->download(*b, 0, back.data(), n);
          if (back != host) ++failures;
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// cuBLASLt: loaded at run time where installed (the runtime works without it and says why), and the
// row-major product mapped onto its column-major C^T = B^T A^T from the operands' strides.
TEST(CublasLt, LoadsWhereInstalledOrSaysWhy) {
  std::string why;
  const kiln::cuda::Lt* lt = kiln::cuda::load_cublaslt(&why);
  if (lt) {
    EXPECT_GT(lt->version, 0u) << lt->library;
    EXPECT_NE(lt->cublasLtMatmul, nullptr);
  } else {
    EXPECT_NE(why.find("libcublasLt"), std::string::npos) << why;
  }
}

TEST(CublasLt, OperandsFromStrides) {
  using kiln::cuda::LtOperand;
  LtOperand a, b;
  // Row-major a [5, 7] and b [7, 3]: both stored as they are (C^T = B^T A^T, no transposes).
  ASSERT_TRUE(kiln::cuda::lt_operands(5, 3, 7, 7, 1, 3, 1, &a, &b));
  EXPECT_EQ(a.op, CUBLAS_OP_N);  // cuBLASLt's A: b^T, column-major [3, 7], ld 3
  EXPECT_EQ(a.rows, 3u);
  EXPECT_EQ(a.cols, 7u);
  EXPECT_EQ(a.ld, 3);
  EXPECT_EQ(b.op, CUBLAS_OP_N);  // cuBLASLt's B: a^T, column-major [7, 5], ld 7
  EXPECT_EQ(b.rows, 7u);
  EXPECT_EQ(b.cols, 5u);
  EXPECT_EQ(b.ld, 7);
  // a given as the transpose of a row-major [7, 5] (strides 1, 5); b with padded rows (ld 8).
  ASSERT_TRUE(kiln::cuda::lt_operands(5, 3, 7, 1, 5, 8, 1, &a, &b));
  EXPECT_EQ(a.ld, 8);
  EXPECT_EQ(b.op, CUBLAS_OP_T);  // a stored column-major [5, 7], ld 5, transposed
  EXPECT_EQ(b.rows, 5u);
  EXPECT_EQ(b.cols, 7u);
  EXPECT_EQ(b.ld, 5);
  // Unit stride along neither axis (a step-sliced view): not expressible.
  EXPECT_FALSE(kiln::cuda::lt_operands(5, 3, 7, 14, 2, 3, 1, &a, &b));
  // Overlapping rows (ld smaller than a row): refused too.
  EXPECT_FALSE(kiln::cuda::lt_operands(5, 3, 7, 3, 1, 3, 1, &a, &b));
}
