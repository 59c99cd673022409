// The JIT (runtime/jit.cpp): it compiles only the entry points a launch's plan uses, with NVRTC
// options every supported NVRTC accepts. Its disk cache (runtime/jit_cache_file.hpp): the entry
// format rejects every truncation and flipped byte; a second process loads a kernel instead of
// compiling it; a corrupt or truncated entry is reported and rebuilt; processes and threads
// compiling one kernel at once leave one valid entry and no temporary files; the folder keeps to
// KILN_CACHE_MAX_SIZE; a FIFO or another user's file under an entry's name is passed over. The
// processes are this test binary run again on one disabled test (JitCacheChild), with
// KILN_CACHE_DIR pointing at a fresh folder.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "codegen/family.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/jit.hpp"
#include "runtime/jit_cache_file.hpp"
#include "runtime/kiln.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// A contiguous map compiles its contiguous function only; a strided call compiles the kernel again
// with every function; both agree with the CPU reference bit for bit (f32 multiply and subtract,
// no FMA).
TEST(JitKernel, CompilesOnlyTheFunctionsThePlanUses) {
  Device* dev = nullptr;
  try {
    dev = &device("vulkan:0");
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  const Expr e = parse_expr("x * 1.8125 - y * 0.4375", {DType::f32, DType::f32});  // in no registry
  const auto built = [] { return jit_compile_count() + jit_disk_cache_hits(); };
  std::vector<float> a, b;
  for (int i = 0; i < 35; ++i) {
    a.push_back(float(i - 17) * 1.1e37f);                // up to overflow in x * 1.8125
    b.push_back(std::ldexp(float(i - 17), -149 + i * 7));  // subnormals to 2^93
  }
  const Tensor xc = Tensor::from_vector(a, {7, 5}, device("cpu")), yc = Tensor::from_vector(b, {7, 5}, device("cpu"));
  const Tensor x = xc.to(*dev), y = yc.to(*dev);
  const std::uint64_t before = built();
  EXPECT_EQ(map(e, {x, y}).to_vector<float>(), map(e, {xc, yc}).to_vector<float>());
  EXPECT_EQ(built(), before + 1);
  std::string why;
  const JitKernel k = jit_kernel(*dev, make_map_spec(e, DType::f32), &why, nullptr, FunctionSet(1) << kMapContiguous);
  ASSERT_TRUE(k.entry) << why;
  EXPECT_EQ(built(), before + 1) << "the contiguous call's kernel is the one cached";
  EXPECT_FALSE(k.entry->functions[kMapContiguous].spirv.empty());
  EXPECT_TRUE(k.entry->functions[kMapStrided].spirv.empty());
  EXPECT_EQ(k.entry->functions[kMapStrided].symbol, nullptr);
  const Tensor xt = x.transpose({1, 0}), yt = y.transpose({1, 0});
  EXPECT_EQ(map(e, {xt, yt}).to_vector<float>(), map(e, {xc.transpose({1, 0}), yc.transpose({1, 0})}).to_vector<float>());
  EXPECT_EQ(built(), before + 2);
  const JitKernel both = jit_kernel(*dev, make_map_spec(e, DType::f32), &why, nullptr, FunctionSet(1) << kMapStrided);
  ASSERT_TRUE(both.entry) << why;
  EXPECT_FALSE(both.entry->functions[kMapContiguous].spirv.empty());
  EXPECT_FALSE(both.entry->functions[kMapStrided].spirv.empty());
  map(e, {x, y});
  map(e, {xt, yt});
  EXPECT_EQ(built(), before + 2);
}

// Kernel names carry 32 bits of the spec's hash, so two specs can share one: "x * 89032" and
// "x * 119534" (f32) do. Each still runs its own kernel — just in time (the cache slot checks the
// whole spec) and through the registries (an entry of another spec with the name is not taken).
TEST(JitKernel, SpecsSharingANameRunTheirOwnKernels) {
  const KernelSpec a = make_map_spec(parse_expr("x * 89032", {DType::f32}), DType::f32);
  const KernelSpec b = make_map_spec(parse_expr("x * 119534", {DType::f32}), DType::f32);
  ASSERT_EQ(a.name(), b.name()) << "the pair no longer collides: find another (a birthday search over constants)";
  ASSERT_NE(a.canonical(), b.canonical());
  std::vector<Device*> devs;
  for (Device* d : devices())
    if (d->backend() != Backend::cpu) devs.push_back(d);
  if (devs.empty()) GTEST_SKIP() << "no GPU backend (Vulkan or CUDA) to compile for";
  const Tensor xc = Tensor::from_vector(std::vector<float>{1, 2, -3, 0.5f}, {4}, device("cpu"));
  for (Device* dev : devs) {
    SCOPED_TRACE(dev->id());
    const Tensor x = xc.to(*dev);
    for (const char* text : {"x * 89032", "x * 119534", "x * 89032"}) {
      const Expr e = parse_expr(text, {DType::f32});
      EXPECT_EQ(map(e, {x}).to_vector<float>(), map(e, {xc}).to_vector<float>()) << text;
    }
    std::string why;
    const JitKernel ka = jit_kernel(*dev, a, &why), kb = jit_kernel(*dev, b, &why);
    ASSERT_TRUE(ka.entry && kb.entry) << why;
    EXPECT_NE(ka.entry, kb.entry);
    EXPECT_EQ(std::string(ka.entry->spec), a.canonical());
    EXPECT_EQ(std::string(kb.entry->spec), b.canonical());
    // A registry holding the other spec under the shared name is passed over.
    const KernelRef r = resolve_kernel(*dev, b, b.name(), ka.registry, &why);
    ASSERT_TRUE(r.entry) << why;
    EXPECT_EQ(std::string(r.entry->spec), b.canonical());
  }
}

// The options compile_cuda_cubin passes (-minimal; -Ofc=min for fast-compile families) are ones
// this NVRTC accepts, for every arch Kiln builds, on units with one entry point.
TEST(JitKernel, NvrtcTakesTheJitOptions) {
  const KernelSpec spec = make_map_spec(parse_expr("x * 0.5 * (1 + erf(x * 0.70710678))", {DType::f32}), DType::f32);
  EXPECT_TRUE(family_of(spec).jit_fast_compile);
  for (const char* arch : {"sm_80", "sm_90"})
    for (FunctionSet set : {FunctionSet(1) << kMapContiguous, FunctionSet(1) << kMapStrided})
      for (bool fast : {false, true}) {
        try {
          EXPECT_FALSE(compile_cuda_cubin(emit_cuda(spec, set), "gelu", arch, fast).empty());
        } catch (const Error& e) {
          if (e.code() == ErrorCode::unsupported) GTEST_SKIP() << e.what();  // no NVRTC here
          ADD_FAILURE() << arch << " set " << set << " fast " << fast << ": " << e.what();
        }
        const std::vector<std::string> opts = nvrtc_options(arch, fast);
        EXPECT_EQ(std::count(opts.begin(), opts.end(), "--fmad=false"), 1);  // rounding as the CPU reference
        const char* env = std::getenv("KILN_JIT_FAST_COMPILE");
        if (!fast || (env && std::string(env) == "0")) {
          EXPECT_EQ(std::count(opts.begin(), opts.end(), "-Ofc=min"), 0);
        }
      }
}

TEST(JitCache, EntryFormatRejectsEveryTruncationAndFlip) {
  const JitBlobs blobs{{1, 2, 3, 4, 5}, {}, {9, 8, 7}};
  const std::vector<char> file = pack_jit_entry(42, blobs);
  std::string why;
  auto back = unpack_jit_entry(file, 42, &why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(*back, blobs);
  EXPECT_FALSE(unpack_jit_entry(file, 43, &why));
  EXPECT_NE(why.find("another kernel, device or compiler"), std::string::npos) << why;
  for (std::size_t n = 0; n < file.size(); ++n) {
    EXPECT_FALSE(unpack_jit_entry(std::span<const char>(file).first(n), 42, &why)) << "cut at " << n;
    EXPECT_FALSE(why.empty());
  }
  for (std::size_t i = 0; i < file.size(); ++i) {
    std::vector<char> bad = file;
    bad[i] = char(bad[i] ^ 1);
    EXPECT_FALSE(unpack_jit_entry(bad, 42, &why)) << "flipped byte " << i;
  }
}

// The child: maps a fixed expression on vulkan:0 from |threads| threads at once and writes
// "<compiles> <disk hits> <ok>" to $KILN_TEST_OUT.
TEST(JitCacheChild, DISABLED_MapOneKernel) {
  const char* out = std::getenv("KILN_TEST_OUT");
  ASSERT_TRUE(out);
  Device& dev = device("vulkan:0");
  const Expr e = parse_expr("x * 3.25 + 1.5 - exp(x * 0.0625)", {DType::f32});
  const int threads = std::getenv("KILN_TEST_THREADS") ? std::atoi(std::getenv("KILN_TEST_THREADS")) : 1;
  std::vector<int> ok(std::size_t(threads), 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const Tensor x = Tensor::from_vector<float>({1.0f, 2.0f, -4.0f}, {3}, dev);
      const std::vector<float> y = map(e, {x}).to_vector<float>();
      bool good = true;
      for (std::size_t i = 0; i < 3; ++i) {
        const float v = std::vector<float>{1.0f, 2.0f, -4.0f}[i];
        good = good && std::abs(y[i] - (v * 3.25f + 1.5f - std::exp(v * 0.0625f))) < 1e-5f;
      }
      ok[std::size_t(t)] = good;
    });
  for (auto& t : pool) t.join();
  int all = 1;
  for (int g : ok) all &= g;
  std::ofstream(out) << jit_compile_count() << " " << jit_disk_cache_hits() << " " << all;
}

class JitDiskCache : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      device("vulkan:0");
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
    char self[4096] = {};
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    ASSERT_GT(n, 0);
    exe_ = std::string(self, std::size_t(n));
    dir_ = fs::temp_directory_path() / fmt::format("kiln-jit-cache-{}-{}", ::getpid(), counter_++);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Run {
    int compiles = -1, hits = -1, ok = 0;
    std::string err;
  };
  // Starts |count| children at once (each with |threads| threads, |env| added to their
  // environment) and waits for them (5 minutes at most: a child that blocks fails the test).
  std::vector<Run> run(int count = 1, int threads = 1, const std::string& env = "") {
    std::string cmd;
    for (int i = 0; i < count; ++i)
      cmd += fmt::format("{} KILN_CACHE_DIR='{}' KILN_TEST_OUT='{}/out{}' KILN_TEST_THREADS={} timeout 300 '{}' "
                         "--gtest_also_run_disabled_tests --gtest_filter=JitCacheChild.DISABLED_MapOneKernel "
                         ">'{}/log{}' 2>&1 & ",
                         env, (dir_ / "cache").string(), dir_.string(), i, threads, exe_, dir_.string(), i);
    cmd += "wait";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::vector<Run> runs(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      std::ifstream in(dir_ / fmt::format("out{}", i));
      in >> runs[std::size_t(i)].compiles >> runs[std::size_t(i)].hits >> runs[std::size_t(i)].ok;
      std::ifstream log(dir_ / fmt::format("log{}", i));
      runs[std::size_t(i)].err.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
    }
    return runs;
  }
  std::vector<fs::path> entries() {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(dir_ / "cache" / "jit")) v.push_back(e.path());
    return v;
  }

  std::string exe_;
  fs::path dir_;
  static inline int counter_ = 0;
};

TEST_F(JitDiskCache, SecondProcessLoadsInsteadOfCompiling) {
  Run a = run()[0];
  EXPECT_EQ(a.ok, 1) << a.err;
  EXPECT_EQ(a.hits, 0) << a.err;
  EXPECT_GE(a.compiles, 1) << a.err;
  ASSERT_EQ(entries().size(), std::size_t(a.compiles)) << a.err;
  Run b = run()[0];
  EXPECT_EQ(b.ok, 1) << b.err;
  EXPECT_EQ(b.compiles, 0) << b.err;
  EXPECT_EQ(b.hits, a.compiles) << b.err;
}

TEST_F(JitDiskCache, CorruptAndTruncatedEntriesAreReportedAndRebuilt) {
  ASSERT_EQ(run()[0].ok, 1);
  for (const char* damage : {"flip", "truncate", "empty"}) {
    for (const fs::path& p : entries()) {
      std::vector<char> bytes;
      {
        std::ifstream in(p, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      }
      if (std::string(damage) == "flip") bytes[bytes.size() / 2] = char(bytes[bytes.size() / 2] ^ 0x40);
      else bytes.resize(std::string(damage) == "truncate" ? bytes.size() / 2 : 0);
      std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
    }
    Run r = run()[0];
    EXPECT_EQ(r.ok, 1) << damage << r.err;
    EXPECT_GE(r.compiles, 1) << damage << r.err;
    EXPECT_NE(r.err.find("ignoring the JIT cache entry"), std::string::npos) << damage << r.err;
    Run again = run()[0];  // rebuilt: loads cleanly
    EXPECT_EQ(again.compiles, 0) << damage << again.err;
    EXPECT_EQ(again.err.find("ignoring"), std::string::npos) << damage << again.err;
  }
}

TEST_F(JitDiskCache, ProcessesAndThreadsAtOnceLeaveOneValidEntry) {
  const std::vector<Run> runs = run(3, 4);
  for (const Run& r : runs) EXPECT_EQ(r.ok, 1) << r.err;
  const std::vector<fs::path> files = entries();
  for (const fs::path& p : files) EXPECT_EQ(p.string().find(".tmp"), std::string::npos) << p;
  Run after = run()[0];
  EXPECT_EQ(after.compiles, 0) << after.err;
  EXPECT_EQ(std::size_t(after.hits), files.size()) << after.err;
}

// KILN_CACHE_MAX_SIZE: a process that writes an entry trims the folder, least recently used
// first: the stale entries of earlier work go, the new kernel stays and the next process loads it.
TEST_F(JitDiskCache, KeepsToKilnCacheMaxSize) {
  const fs::path jit = dir_ / "cache" / "jit";
  fs::create_directories(jit);
  for (int i = 0; i < 10; ++i) {
    const fs::path p = jit / fmt::format("old-{:016x}.bin", i);
    std::ofstream(p, std::ios::binary) << std::string(100 << 10, 'o');
    fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(24 + i));
  }
  const Run a = run(1, 1, "KILN_CACHE_MAX_SIZE=600K")[0];
  EXPECT_EQ(a.ok, 1) << a.err;
  ASSERT_GE(a.compiles, 1) << a.err;
  std::uint64_t total = 0;
  int old = 0, fresh = 0;
  for (const fs::path& p : entries()) {
    total += fs::file_size(p);
    (p.filename().string().rfind("old-", 0) == 0 ? old : fresh) += 1;
  }
  EXPECT_LE(total, 600u << 10);
  EXPECT_LT(old, 10);
  EXPECT_FALSE(fs::exists(jit / fmt::format("old-{:016x}.bin", 9))) << "the least recently used goes first";
  EXPECT_EQ(fresh, a.compiles);
  const Run b = run(1, 1, "KILN_CACHE_MAX_SIZE=600K")[0];
  EXPECT_EQ(b.ok, 1) << b.err;
  EXPECT_EQ(b.compiles, 0) << b.err;
  EXPECT_EQ(b.hits, a.compiles) << b.err;
  const Run c = run(1, 1, "KILN_CACHE_MAX_SIZE=lots")[0];  // not a size: said, the default kept
  EXPECT_EQ(c.ok, 1) << c.err;
  EXPECT_EQ(c.compiles, 0) << c.err;
  EXPECT_NE(c.err.find("KILN_CACHE_MAX_SIZE='lots' is not a size"), std::string::npos) << c.err;
}

// An entry's name held by what Kiln did not write — a FIFO, another user's file in a shared
// folder — is passed over with a warning (never blocking on the FIFO), compiled and replaced.
TEST_F(JitDiskCache, AFifoOrAnotherUsersFileUnderAnEntrysNameIsPassedOver) {
  const Run a = run()[0];
  ASSERT_EQ(a.ok, 1) << a.err;
  const std::vector<fs::path> files = entries();
  for (const fs::path& p : files) {
    fs::remove(p);
    ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0) << p;
  }
  const Run b = run()[0];
  EXPECT_EQ(b.ok, 1) << b.err;
  EXPECT_EQ(b.compiles, a.compiles) << b.err;
  EXPECT_NE(b.err.find("it is not a regular file; compiling it again"), std::string::npos) << b.err;
  for (const fs::path& p : files) EXPECT_TRUE(fs::is_regular_file(p)) << p << " was not replaced";
  EXPECT_EQ(run()[0].compiles, 0);
  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's owner needs root";
  for (const fs::path& p : files) ASSERT_EQ(::chown(p.c_str(), 54321, 54321), 0) << p;
  const Run c = run()[0];
  EXPECT_EQ(c.ok, 1) << c.err;
  EXPECT_EQ(c.compiles, a.compiles) << c.err;
  EXPECT_NE(c.err.find("belongs to another user (uid 54321)"), std::string::npos) << c.err;
}

}  // namespace
}  // namespace kiln
