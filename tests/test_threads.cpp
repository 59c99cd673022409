// Threading tests: the thread-safety contract of docs/reliability.md, exercised on every device
// (the CPU backend and whatever Vulkan device the machine has; CUDA when present). Built and run
// under TSan by scripts/check-sanitizers.sh.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "codegen/emit.hpp"
#include "codegen/expr.hpp"
#include "codegen/spec.hpp"
#include "runtime/device.hpp"
#include "core/error.hpp"
#include "runtime/host.hpp"
#include "runtime/jit.hpp"
#include "runtime/jit_function.hpp"
#include "runtime/ops.hpp"
#include "runtime/tensor.hpp"

namespace {

using kiln::Device;

constexpr int kThreads = 4;

template <class F>
void run_threads(int n, F f) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(f, t);
  for (auto& t : threads) t.join();
}

std::string case_name(const testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s)
    if (c == ':') c = '_';
  return s;
}

// Parameterized by device id, not by devices(): listing the devices at test registration would
// start every backend in every process, also in child processes that must not (KILN_DEVICE=cpu).
class Threads : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    try {
      dev_ = &kiln::device(GetParam());
    } catch (const kiln::Error& e) {
      GTEST_SKIP() << e.what();
    }
  }
  Device& dev() { return *dev_; }

 private:
  Device* dev_ = nullptr;
};

// One stream shared by several threads: each thread uploads, copies and downloads its own buffers;
// the stream serializes the calls.
TEST_P(Threads, SharedStreamFromSeveralThreads) {
  kiln::Stream& s = dev().default_stream();
  std::atomic<int> bad{0};
  run_threads(kThreads, [&](int t) {
    for (int round = 0; round < 8; ++round) {
      const std::size_t n = 4096 + std::size_t(t) * 100 + std::size_t(round);
      std::vector<std::uint8_t> in(n), out(n, 0);
      for (std::size_t i = 0; i < n; ++i) in[i] = std::uint8_t(i * 31 + std::size_t(t) + std::size_t(round));
      auto a = dev().allocate(n), b = dev().allocate(n);
      s.upload(*a, 0, in.data(), n);
      s.copy(*a, 0, *b, 0, n);
      s.fill(*a, 0, n, 0);
      s.download(*b, 0, out.data(), n);
      if (out != in) ++bad;
    }
  });
  EXPECT_EQ(bad.load(), 0);
}

// A stream per thread, with events.
TEST_P(Threads, StreamPerThread) {
  std::atomic<int> bad{0};
  run_threads(kThreads, [&](int t) {
    auto s = dev().create_stream();
    auto buf = dev().allocate(1 << 16);
    for (int round = 0; round < 8; ++round) {
      s->fill(*buf, 0, buf->size_bytes(), std::uint8_t(t * 16 + round));
      auto e = s->record();
      e->synchronize();
      std::uint8_t probe[4] = {};
      s->download(*buf, 1000, probe, 4);
      if (probe[3] != std::uint8_t(t * 16 + round)) ++bad;
    }
    s->synchronize();
  });
  EXPECT_EQ(bad.load(), 0);
}

// Allocation and free from several threads at once, small (pooled) and large (dedicated) sizes;
// buffers freed on another thread than the one that allocated them.
TEST_P(Threads, ConcurrentAllocateAndFree) {
  std::vector<std::shared_ptr<kiln::Buffer>> handoff[kThreads];
  run_threads(kThreads, [&](int t) {
    for (int i = 0; i < 200; ++i) {
      const std::size_t bytes = (i % 17 == 0) ? (std::size_t(20) << 20) : std::size_t(64 + (i * 977) % 40000);
      auto b = dev().allocate(bytes);
      ASSERT_GE(b->size_bytes(), bytes);
      ASSERT_EQ(b->device_address() % 256, 0u);
      if (i % 3 == 0) handoff[t].push_back(std::move(b));
      if (handoff[t].size() > 8) handoff[t].erase(handoff[t].begin());
    }
  });
  // Freed here, on the main thread.
  for (auto& h : handoff) h.clear();
  dev().default_stream().synchronize();
}

// Tensor ops from several threads on one device (kernels load once, launches share the default
// stream).
TEST_P(Threads, TensorOpsFromSeveralThreads) {
  std::atomic<int> bad{0};
  run_threads(kThreads, [&](int t) {
    std::vector<float> x(1000);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i) + float(t);
    auto a = kiln::Tensor::from_host(x.data(), x.size() * 4, {1000}, kiln::DType::f32, dev());
    for (int round = 0; round < 4; ++round) {
      auto y = kiln::multiply(kiln::add(a, a), a).to_host();
      const float* f = reinterpret_cast<const float*>(y.data());
      if (f[10] != (10.0f + float(t)) * (10.0f + float(t)) * 2.0f) ++bad;
    }
  });
  EXPECT_EQ(bad.load(), 0);
}

// A kiln::jit function called from several threads at once: one signature is traced once, every
// thread gets its own results (its own intermediates), and a thread tracing does not make ops on
// other threads record.
TEST_P(Threads, JitFunctionFromSeveralThreads) {
  auto f = kiln::jit([](const kiln::Tensor& x) { return kiln::exp(x * 0.5) + x; });
  std::atomic<int> bad{0};
  run_threads(kThreads, [&](int t) {
    std::vector<float> x(1000);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) * 0.25f + float(t);
    auto a = kiln::Tensor::from_host(x.data(), x.size() * 4, {1000}, kiln::DType::f32, dev());
    for (int round = 0; round < 4; ++round) {
      auto eager = kiln::add(kiln::exp(kiln::multiply(a, kiln::scalar(0.5, kiln::DType::f32, dev()))), a);
      const std::vector<float> got = f(a).to_vector<float>(), want = eager.to_vector<float>();
      if (got != want) ++bad;
    }
  });
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(f.stats().traces, 1u);
  EXPECT_EQ(f.stats().calls, std::uint64_t(kThreads) * 4);
}

INSTANTIATE_TEST_SUITE_P(AllDevices, Threads, ::testing::Values(std::string("cuda:0"), std::string("vulkan:0"), std::string("cpu")), case_name);

// Concurrent just-in-time compiles: one spec from several threads compiles once (every thread gets
// the same entry); different specs compile side by side.
TEST(ThreadsJit, SameSpecCompilesOnceDifferentSpecsInParallel) {
  Device* gpu = nullptr;
  for (Device* d : kiln::devices())
    if (d->backend() != kiln::Backend::cpu) gpu = d;
  if (!gpu) GTEST_SKIP() << "no GPU device (Vulkan or CUDA) to JIT for";
  // A constant no other test uses, so the cache is cold.
  const std::string salt = std::to_string(::testing::UnitTest::GetInstance()->random_seed() + 12345);
  auto spec_of = [&](int k) {
    auto e = kiln::parse_expr("x * " + salt + "." + std::to_string(k) + " + sin(x)", {kiln::DType::f32});
    return kiln::make_map_spec(e, kiln::DType::f32);
  };
  const kiln::KernelSpec same = spec_of(0);
  std::vector<const kiln::KernelEntry*> got(kThreads * 2, nullptr);
  std::atomic<int> errors{0};
  run_threads(kThreads * 2, [&](int t) {
    try {
      std::string why;
      const kiln::KernelSpec spec = t % 2 ? spec_of(t) : same;
      auto jit = kiln::jit_kernel(*gpu, spec, &why);
      got[std::size_t(t)] = jit.entry;
      if (!jit.entry) ++errors;
    } catch (const std::exception&) {
      ++errors;
    }
  });
  ASSERT_EQ(errors.load(), 0);
  std::set<const kiln::KernelEntry*> same_entries, other_entries;
  for (int t = 0; t < kThreads * 2; ++t) (t % 2 ? other_entries : same_entries).insert(got[std::size_t(t)]);
  EXPECT_EQ(same_entries.size(), 1u) << "one spec compiled more than once";
  EXPECT_EQ(other_entries.size(), std::size_t(kThreads));
}

// The JIT's one shaderc compiler from several threads at once: every thread gets the module a
// single-threaded compile gives (shaderc's compile is documented safe to call concurrently).
TEST(ThreadsJit, SharedShadercCompilerFromSeveralThreads) {
  const std::string src = kiln::emit_glsl(
      kiln::make_map_spec(kiln::parse_expr("x * 3.5 + cos(x)", {kiln::DType::f32}), kiln::DType::f32), 0);
  const std::vector<unsigned char> want = kiln::compile_glsl_spirv(src, "threads");
  ASSERT_GE(want.size(), 20u);
  std::vector<std::vector<unsigned char>> got(kThreads);
  run_threads(kThreads, [&](int t) { got[std::size_t(t)] = kiln::compile_glsl_spirv(src, "threads"); });
  for (const auto& g : got) EXPECT_EQ(g, want);
  EXPECT_THROW(kiln::compile_glsl_spirv("#version 450\nvoid main() { nope; }\n", "bad"), kiln::Error);
}

}  // namespace
