// Tests of the Vulkan backend of the runtime (runtime/vulkan). They run on whatever Vulkan device
// the machine has (Mesa lavapipe in CI) and skip when there is none. Run them with
// KILN_VK_VALIDATION=1 in the environment: every test then also checks that the validation layer
// (with synchronization validation) reported nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <random>
#include <shaderc/shaderc.hpp>
#include <spirv-tools/libspirv.hpp>
#include <string>
#include <thread>
#include <vector>

#include "runtime/device.hpp"
#include "core/error.hpp"
#include "runtime/vulkan/vk_common.hpp"
#include "runtime/vulkan/vk_spirv.hpp"
#include "runtime/vulkan/vk_validation.hpp"

namespace {

using kiln::Buffer;
using kiln::Device;
using kiln::Dim3;
using kiln::ErrorCode;

Device* first_vulkan_device(std::string* why) {
  for (Device* d : kiln::devices())
    if (d->backend() == kiln::Backend::vulkan) return d;
  for (const auto& s : kiln::backend_status())
    if (s.backend == kiln::Backend::vulkan) *why = s.reason;
  return nullptr;
}

std::vector<std::uint32_t> compile_glsl(const std::string& source, const char* name) {
  shaderc::Compiler compiler;
  shaderc::CompileOptions options;
  options.SetTargetEnvironment(shaderc_target_env_vulkan, shaderc_env_version_vulkan_1_3);
  options.SetOptimizationLevel(shaderc_optimization_level_performance);
  auto result = compiler.CompileGlslToSpv(source, shaderc_compute_shader, name, options);
  EXPECT_EQ(result.GetCompilationStatus(), shaderc_compilation_status_success) << result.GetErrorMessage();
  return {result.cbegin(), result.cend()};
}

// out[i] = in0[i] * 2 + 1 over f32, with the kernel ABI: addresses and sizes in push constants.
const char* kTwicePlusOne = R"(#version 460
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x_id = 0) in;
layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(push_constant) uniform Params { uint64_t out_; uint64_t in0; uint64_t n; } p;
void main() {
  uint i = gl_GlobalInvocationID.x;
  if (uint64_t(i) >= p.n) return;
  F32(p.out_).v[i] = F32(p.in0).v[i] * 2.0 + 1.0;
}
)";

// out[i] = in0[i] + 1 over f32.
const char* kPlusOne = R"(#version 460
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x_id = 0) in;
layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(push_constant) uniform Params { uint64_t out_; uint64_t in0; uint64_t n; } p;
void main() {
  uint i = gl_GlobalInvocationID.x;
  if (uint64_t(i) >= p.n) return;
  F32(p.out_).v[i] = F32(p.in0).v[i] + 1.0;
}
)";

// A params block of 152 bytes, read through its device address: out[i] = in0[i] * scale[i % 32].
const char* kBigParams = R"(#version 460
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
layout(local_size_x_id = 0) in;
layout(buffer_reference, std430, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer Params {
  uint64_t out_; uint64_t in0; uint64_t n; float scale[32];
};
layout(push_constant) uniform Push { uint64_t params; } p;
void main() {
  Params q = Params(p.params);
  uint i = gl_GlobalInvocationID.x;
  if (uint64_t(i) >= q.n) return;
  F32(q.out_).v[i] = F32(q.in0).v[i] * q.scale[i % 32];
}
)";

struct SmallParams {
  std::uint64_t out, in0, n;
};
struct BigParams {
  std::uint64_t out, in0, n;
  float scale[32];
};
static_assert(sizeof(BigParams) == 152);

// A one-kernel registry built at test time around a SPIR-V blob.
struct TestKernel {
  std::vector<std::uint32_t> spirv;
  kiln::KernelFunction function;
  kiln::KernelEntry entry;
  kiln::Registry registry;
  TestKernel(std::vector<std::uint32_t> code, const char* name, int block_size)
      : spirv(std::move(code)) {
    function = {"main", {reinterpret_cast<const unsigned char*>(spirv.data()), spirv.size() * 4}};
    entry = {name, "test", -1, 1, &function, block_size};
    registry.kernels = std::span<const kiln::KernelEntry>(&entry, 1);
  }
  TestKernel(const TestKernel&) = delete;
};

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = std::uint8_t(rng());
  return v;
}

std::vector<std::uint8_t> download_all(kiln::Stream& s, const Buffer& b) {
  std::vector<std::uint8_t> v(b.size_bytes());
  s.download(b, 0, v.data(), v.size());
  return v;
}

class VulkanRuntime : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    dev_ = first_vulkan_device(&why);
    if (!dev_) GTEST_SKIP() << "no Vulkan device: " << why;
    kiln::vk::take_validation_messages();  // start clean
  }
  void TearDown() override {
    if (!dev_) return;
    dev_->default_stream().synchronize();
    if (kiln::vk::validation_enabled()) {
      auto messages = kiln::vk::take_validation_messages();
      EXPECT_EQ(messages.size(), 0u) << "validation messages, the first: " << messages.front();
    }
  }
  Device& dev() { return *dev_; }
  kiln::Stream& stream() { return dev_->default_stream(); }

  Device* dev_ = nullptr;
};

TEST_F(VulkanRuntime, EnumeratesDevicesWithInfo) {
  int count = 0;
  for (Device* d : kiln::devices()) {
    if (d->backend() != kiln::Backend::vulkan) continue;
    const auto& info = d->info();
    EXPECT_EQ(info.index, count);
    EXPECT_EQ(d->id(), "vulkan:" + std::to_string(count));
    ++count;
    std::string dtypes;
    for (auto t : info.dtypes) dtypes += std::string(kiln::dtype_name(t)) + " ";
    std::printf("%s: %s\n  arch %s\n  driver %s\n  memory %llu MiB, max allocation %llu MiB, subgroup %u\n"
                "  dtypes %s\n",
                d->id().c_str(), info.name.c_str(), info.arch.c_str(), info.driver.c_str(),
                (unsigned long long)(info.memory_bytes >> 20),
                (unsigned long long)(info.max_allocation_bytes >> 20), info.subgroup_size, dtypes.c_str());
    EXPECT_FALSE(info.name.empty());
    EXPECT_EQ(info.arch.rfind("vulkan 1.", 0), 0u) << info.arch;
    EXPECT_FALSE(info.driver.empty());
    EXPECT_GT(info.memory_bytes, 0u);
    EXPECT_GT(info.max_allocation_bytes, 0u);
    EXPECT_GE(info.subgroup_size, 1u);
    EXPECT_NE(std::find(info.dtypes.begin(), info.dtypes.end(), kiln::DType::f32), info.dtypes.end());
  }
  EXPECT_GE(count, 1);
  for (const auto& s : kiln::backend_status())
    if (s.backend == kiln::Backend::vulkan) {
      EXPECT_TRUE(s.available) << s.reason;
    }
  EXPECT_EQ(&kiln::device("vulkan:0"), &dev());
}

TEST_F(VulkanRuntime, AllocatesAlignedDistinctBuffers) {
  std::vector<std::size_t> sizes = {0, 1, 3, 255, 256, 257, 1000, 4097, 65537, (1u << 20) + 7,
                                    (20u << 20) + 1 /* dedicated */};
  for (int i = 0; i < 200; ++i) sizes.push_back(std::size_t(1 + (i * 7919) % 50000));
  std::vector<std::shared_ptr<Buffer>> buffers;
  auto check_disjoint = [&] {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (auto& b : buffers) {
      EXPECT_EQ(b->device_address() % 256, 0u);
      EXPECT_NE(b->device_address(), 0u);
      EXPECT_EQ(&b->device(), &dev());
      ranges.push_back({b->device_address(), b->device_address() + std::max<std::size_t>(b->size_bytes(), 1)});
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
  };
  for (std::size_t s : sizes) {
    buffers.push_back(dev().allocate(s));
    EXPECT_EQ(buffers.back()->size_bytes(), s);
  }
  check_disjoint();
  // Free every other one, then allocate again: the freed ranges are reused, still disjoint.
  for (std::size_t i = 0; i < buffers.size(); i += 2) buffers[i].reset();
  std::erase(buffers, nullptr);
  for (int i = 0; i < 100; ++i) buffers.push_back(dev().allocate(std::size_t(1 + (i * 104729) % 30000)));
  check_disjoint();
  buffers.clear();

  // Allocation and release from several threads at once.
  std::vector<std::thread> threads;
  std::vector<std::vector<std::shared_ptr<Buffer>>> kept(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<std::shared_ptr<Buffer>> mine;
      for (int i = 0; i < 500; ++i) {
        mine.push_back(dev().allocate(1 + rng() % 20000));
        if (rng() % 3 == 0) mine.erase(mine.begin() + std::ptrdiff_t(rng() % mine.size()));
      }
      kept[t] = std::move(mine);
    });
  for (auto& th : threads) th.join();
  for (auto& k : kept) buffers.insert(buffers.end(), k.begin(), k.end());
  check_disjoint();

  // Too large for the device: out_of_memory naming the size.
  try {
    dev().allocate(std::size_t(1) << 50);
    ADD_FAILURE() << "a 1 PiB allocation succeeded";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::out_of_memory);
    EXPECT_NE(std::string(e.what()).find(std::to_string(std::size_t(1) << 50)), std::string::npos) << e.what();
  }
}

TEST_F(VulkanRuntime, UploadDownloadRoundTrip) {
  auto& s = stream();
  const std::size_t n = 10007;
  auto buf = dev().allocate(n);
  auto data = random_bytes(n, 1);
  s.upload(*buf, 0, data.data(), n);
  EXPECT_EQ(download_all(s, *buf), data);

  // Unaligned offsets and sizes, and zero bytes.
  auto part = random_bytes(1001, 2);
  s.upload(*buf, 3, part.data(), part.size());
  std::copy(part.begin(), part.end(), data.begin() + 3);
  s.upload(*buf, 17, nullptr, 0);
  s.upload(*buf, n, part.data(), 0);
  std::vector<std::uint8_t> out(997);
  s.download(*buf, 5, out.data(), out.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + 5));
  s.download(*buf, n, nullptr, 0);
  EXPECT_EQ(download_all(s, *buf), data);

  // The host source may be reused as soon as upload returns.
  std::vector<std::uint8_t> scratch(64, 0xab);
  s.upload(*buf, 100, scratch.data(), scratch.size());
  std::fill(scratch.begin(), scratch.end(), 0);
  std::fill(data.begin() + 100, data.begin() + 164, 0xab);
  EXPECT_EQ(download_all(s, *buf), data);

  // Larger than one staging piece (and a dedicated allocation).
  const std::size_t big = (40u << 20) + 13;
  auto large = dev().allocate(big);
  auto bytes = random_bytes(big, 3);
  s.upload(*large, 0, bytes.data(), big);
  EXPECT_TRUE(download_all(s, *large) == bytes);

  // Out-of-range transfers are errors.
  EXPECT_THROW(s.upload(*buf, n - 1, part.data(), 2), kiln::Error);
  EXPECT_THROW(s.download(*buf, n + 1, out.data(), 0), kiln::Error);
}

TEST_F(VulkanRuntime, CopyAndFillByteByByte) {
  auto& s = stream();
  const std::size_t n = 4099;
  auto a = dev().allocate(n), b = dev().allocate(n);
  auto ha = random_bytes(n, 4), hb = random_bytes(n, 5);
  s.upload(*a, 0, ha.data(), n);
  s.upload(*b, 0, hb.data(), n);
  struct C { std::size_t so, doff, bytes; };
  for (C c : {C{0, 0, 16}, C{1, 2, 3}, C{3, 7, 1000}, C{4, 8, 4}, C{17, 1, 0}, C{5, 2000, 2099}}) {
    s.copy(*a, c.so, *b, c.doff, c.bytes);
    std::copy(ha.begin() + c.so, ha.begin() + c.so + c.bytes, hb.begin() + c.doff);
  }
  EXPECT_EQ(download_all(s, *b), hb);
  // Overlapping copies inside one buffer behave like memmove.
  s.copy(*b, 10, *b, 13, 500);
  std::memmove(hb.data() + 13, hb.data() + 10, 500);
  s.copy(*b, 1000, *b, 997, 501);
  std::memmove(hb.data() + 997, hb.data() + 1000, 501);
  EXPECT_EQ(download_all(s, *b), hb);

  struct F { std::size_t off, bytes; std::uint8_t v; };
  for (F f : {F{0, 1, 1}, F{1, 1, 2}, F{3, 10, 3}, F{4, 8, 4}, F{5, 2, 5}, F{6, 3, 6}, F{9, 0, 7},
              F{11, 4000, 8}, F{n - 3, 3, 9}, F{0, n, 0xfe}, F{2, 5, 0}}) {
    s.fill(*a, f.off, f.bytes, f.v);
    std::fill(ha.begin() + f.off, ha.begin() + f.off + f.bytes, f.v);
    auto got = download_all(s, *a);
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(got[i], ha[i]) << "byte " << i << " after fill(" << f.off << ", " << f.bytes << ")";
  }
  EXPECT_THROW(s.fill(*a, n, 1, 0), kiln::Error);
  EXPECT_THROW(s.copy(*a, 0, *b, n - 1, 2), kiln::Error);
}

TEST_F(VulkanRuntime, LaunchesAComputeKernel) {
  TestKernel k(compile_glsl(kTwicePlusOne, "twice_plus_one.comp"), "test_twice_plus_one", 64);
  const kiln::Kernel& kernel = dev().kernel(k.registry, k.entry, 0);
  EXPECT_EQ(kernel.block_size(), 64);
  EXPECT_NE(kernel.name().find("test_twice_plus_one"), std::string::npos);
  EXPECT_EQ(&dev().kernel(k.registry, k.entry, 0), &kernel);  // cached

  const std::uint32_t n = 100003;
  std::vector<float> in(n), out(n);
  for (std::uint32_t i = 0; i < n; ++i) in[i] = float(i % 1000) * 0.25f - 7.0f;
  auto bin = dev().allocate(n * 4), bout = dev().allocate(n * 4);
  auto& s = stream();
  s.upload(*bin, 0, in.data(), n * 4);
  s.fill(*bout, 0, n * 4, 0);
  SmallParams p{bout->device_address(), bin->device_address(), n};
  s.launch(kernel, Dim3{(n + 63) / 64, 1, 1}, &p, sizeof p);
  s.download(*bout, 0, out.data(), n * 4);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(out[i], in[i] * 2 + 1) << i;

  // Too many workgroups for one launch is an error (the caller splits).
  EXPECT_THROW(s.launch(kernel, Dim3{0xffffffffu, 1, 1}, &p, sizeof p), kiln::Error);
  // Zero workgroups: nothing happens.
  s.launch(kernel, Dim3{0, 1, 1}, &p, sizeof p);
}

TEST_F(VulkanRuntime, PassesLargeParamsByAddress) {
  TestKernel k(compile_glsl(kBigParams, "big_params.comp"), "test_big_params", 128);
  const kiln::Kernel& kernel = dev().kernel(k.registry, k.entry, 0);
  const std::uint32_t n = 5000;
  std::vector<float> in(n), out(n);
  for (std::uint32_t i = 0; i < n; ++i) in[i] = float(i);
  auto bin = dev().allocate(n * 4);
  auto& s = stream();
  s.upload(*bin, 0, in.data(), n * 4);
  std::vector<std::shared_ptr<Buffer>> outs;
  // Several launches with different params in one batch: each keeps its own params copy.
  for (int round = 0; round < 3; ++round) {
    outs.push_back(dev().allocate(n * 4));
    BigParams p{outs.back()->device_address(), bin->device_address(), n, {}};
    for (int j = 0; j < 32; ++j) p.scale[j] = float(j + round * 100);
    s.launch(kernel, Dim3{(n + 127) / 128, 1, 1}, &p, sizeof p);
    std::memset(&p, 0, sizeof p);  // the params may be reused at once
  }
  for (int round = 0; round < 3; ++round) {
    s.download(*outs[round], 0, out.data(), n * 4);
    for (std::uint32_t i = 0; i < n; ++i)
      ASSERT_EQ(out[i], in[i] * float(i % 32 + round * 100)) << "round " << round << " i " << i;
  }
}

TEST_F(VulkanRuntime, EventsTimeALaunch) {
  TestKernel k(compile_glsl(kTwicePlusOne, "twice_plus_one.comp"), "test_twice_plus_one", 64);
  const kiln::Kernel& kernel = dev().kernel(k.registry, k.entry, 0);
  const std::uint32_t n = 1 << 20;
  auto a = dev().allocate(n * 4), b = dev().allocate(n * 4);
  auto& s = stream();
  s.fill(*a, 0, n * 4, 0);
  SmallParams p{b->device_address(), a->device_address(), n};
  auto start = s.record();
  for (int i = 0; i < 4; ++i) s.launch(kernel, Dim3{n / 64, 1, 1}, &p, sizeof p);
  auto stop = s.record();
  stop->synchronize();
  const double ms = stop->elapsed_ms_since(*start);
  std::printf("4 launches over %u floats: %.3f ms\n", n, ms);
  EXPECT_GE(ms, 0.0);
  EXPECT_GE(start->elapsed_ms_since(*start), 0.0);
}

TEST_F(VulkanRuntime, BatchesManyDependentLaunches) {
  TestKernel k(compile_glsl(kPlusOne, "plus_one.comp"), "test_plus_one", 64);
  const kiln::Kernel& kernel = dev().kernel(k.registry, k.entry, 0);
  const std::uint32_t n = 1000;
  auto a = dev().allocate(n * 4), b = dev().allocate(n * 4);
  auto& s = stream();
  s.fill(*a, 0, n * 4, 0);
  // 700 launches, each reading what the previous one wrote (ping-pong between a and b), more
  // than one batch holds; one download at the end.
  const int launches = 700;
  for (int i = 0; i < launches; ++i) {
    const bool even = i % 2 == 0;
    SmallParams p{(even ? b : a)->device_address(), (even ? a : b)->device_address(), n};
    s.launch(kernel, Dim3{(n + 63) / 64, 1, 1}, &p, sizeof p);
  }
  std::vector<float> out(n);
  s.download(launches % 2 ? *b : *a, 0, out.data(), n * 4);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(out[i], float(launches)) << i;

  // The same on a stream of its own, in place.
  auto other = dev().create_stream();
  other->fill(*a, 0, n * 4, 0);
  SmallParams p{a->device_address(), a->device_address(), n};
  for (int i = 0; i < 50; ++i) other->launch(kernel, Dim3{(n + 63) / 64, 1, 1}, &p, sizeof p);
  other->flush();
  other->download(*a, 0, out.data(), n * 4);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(out[i], 50.0f) << i;
  other->synchronize();
}

// Stream::record_graph: launches recorded once into a secondary command buffer (push constants and
// large params by address, barriers between launches) and replayed several times, on this stream
// and another, in one batch and across batches; the graph may go before the work using it ends.
TEST_F(VulkanRuntime, RecordsLaunchesIntoAGraphAndReplaysIt) {
  TestKernel plus(compile_glsl(kPlusOne, "plus_one.comp"), "test_plus_one", 64);
  TestKernel big(compile_glsl(kBigParams, "big_params.comp"), "test_big_params", 128);
  const kiln::Kernel& k_plus = dev().kernel(plus.registry, plus.entry, 0);
  const kiln::Kernel& k_big = dev().kernel(big.registry, big.entry, 0);
  const std::uint32_t n = 3000;
  auto a = dev().allocate(n * 4), b = dev().allocate(n * 4);
  auto& s = stream();
  s.fill(*a, 0, n * 4, 0);
  s.fill(*b, 0, n * 4, 0);
  // b = a + 1; a = b * scale[i % 32] (scale 2); b = a + 1; an empty launch between: skipped.
  std::vector<kiln::GraphLaunch> launches(4);
  auto bytes_of = [](const auto& p) {
    std::vector<std::byte> v(sizeof p);
    std::memcpy(v.data(), &p, sizeof p);
    return v;
  };
  const Dim3 groups{(n + 63) / 64, 1, 1};
  launches[0] = {&k_plus, groups, bytes_of(SmallParams{b->device_address(), a->device_address(), n})};
  BigParams bp{a->device_address(), b->device_address(), n, {}};
  for (float& v : bp.scale) v = 2;
  launches[1] = {&k_big, Dim3{(n + 127) / 128, 1, 1}, bytes_of(bp)};
  launches[2] = {&k_plus, Dim3{0, 1, 1}, bytes_of(SmallParams{a->device_address(), a->device_address(), n})};
  launches[3] = {&k_plus, groups, bytes_of(SmallParams{b->device_address(), a->device_address(), n})};
  std::string why;
  std::unique_ptr<kiln::StreamGraph> graph = s.record_graph(launches, &why);
  ASSERT_TRUE(graph) << why;
  EXPECT_EQ(graph->kind(), "Vulkan command buffer");
  std::vector<float> out(n);
  s.download(*b, 0, out.data(), n * 4);
  EXPECT_EQ(out[0], 0.0f) << "nothing runs at recording";
  // x -> 2 (x + 1) + 1 per replay, with launches of the stream around it; x = a; then a = b.
  float want = 0;
  auto step = [&](kiln::Stream& on) {
    on.replay(*graph);
    SmallParams copy{a->device_address(), b->device_address(), n};
    on.launch(k_plus, groups, &copy, sizeof copy);  // a = b + 1
    want = 2 * (want + 1) + 1 + 1;
  };
  for (int i = 0; i < 3; ++i) step(s);  // one batch
  s.download(*a, 0, out.data(), n * 4);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(out[i], want) << i;
  auto other = dev().create_stream();
  step(*other);
  other->synchronize();
  step(s);
  graph.reset();  // still used by the batch recording: it lives on with it
  s.download(*a, 0, out.data(), n * 4);
  for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(out[i], want) << i;
  // Misuse: a launch without a kernel; a graph of another backend's stream.
  launches[0].kernel = nullptr;
  EXPECT_THROW(s.record_graph(launches, &why), kiln::Error);
  std::unique_ptr<kiln::StreamGraph> none = kiln::device("cpu").default_stream().record_graph({}, &why);
  EXPECT_FALSE(none);
  EXPECT_NE(why.find("cpu streams run launches as they come"), std::string::npos) << why;
}

TEST_F(VulkanRuntime, StreamsAreThreadSafeAndFreesWhileInFlightAreSafe) {
  // Several threads share the default stream and a stream of their own.
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      auto own = dev().create_stream();
      for (int round = 0; round < 20; ++round) {
        kiln::Stream& s = (round % 2) ? *own : stream();
        const std::size_t n = 1000 + std::size_t(t) * 37 + std::size_t(round);
        auto buf = dev().allocate(n);
        auto data = random_bytes(n, unsigned(t * 100 + round));
        s.upload(*buf, 0, data.data(), n);
        s.fill(*buf, 1, 5, std::uint8_t(t));
        std::fill(data.begin() + 1, data.begin() + 6, std::uint8_t(t));
        if (download_all(s, *buf) != data) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  // Buffers (pooled and dedicated) released while copies into them are still queued.
  auto& s = stream();
  auto src = dev().allocate(24u << 20);
  s.fill(*src, 0, src->size_bytes(), 7);
  for (int i = 0; i < 4; ++i) {
    auto big = dev().allocate(24u << 20);    // dedicated
    auto small = dev().allocate(1u << 16);   // pooled
    s.copy(*src, 0, *big, 0, big->size_bytes());
    s.copy(*src, 0, *small, 0, small->size_bytes());
    s.flush();
  }  // released here, possibly before the copies ran
  s.synchronize();
  auto check = dev().allocate(100);
  s.copy(*src, 12345, *check, 0, 100);
  std::vector<std::uint8_t> got(100);
  s.download(*check, 0, got.data(), 100);
  EXPECT_EQ(got, std::vector<std::uint8_t>(100, 7));
}

// A buffer freed while another stream's recorded work still uses it: its memory goes to no new
// buffer until that work has run (else the old fill lands in the new buffer).
TEST_F(VulkanRuntime, MemoryFreedUnderAnotherStreamsWorkIsNotReusedEarly) {
  auto other = dev().create_stream();
  const std::size_t n = 1 << 16;
  auto a = dev().allocate(n);
  other->fill(*a, 0, n, 0xAB);  // recorded on |other|, not yet submitted
  const std::uint64_t where = a->device_address();
  a.reset();
  auto b = dev().allocate(n);
  const auto data = random_bytes(n, 9);
  stream().upload(*b, 0, data.data(), n);
  stream().synchronize();
  other->synchronize();  // the fill runs now
  EXPECT_EQ(download_all(stream(), *b), data)
      << "the freed buffer's fill reached the new one" << (b->device_address() == where ? " (the same memory)" : "");
  // Once |other| has run, the range is reused again (best fit: the range of exactly n bytes).
  other.reset();
  auto c = dev().allocate(n);
  EXPECT_EQ(c->device_address(), where) << "the deferred range was never given back";
}

// The other way round: memory freed while the default stream's work may still use it is not
// handed to a buffer another stream then writes — neither to a stream that exists at the time nor
// to one created after the range was reused (creating a stream lets the default stream finish).
TEST_F(VulkanRuntime, MemoryFreedUnderTheDefaultStreamsWorkIsNotReusedByAnotherStream) {
  const std::size_t n = 1 << 16;
  const auto data = random_bytes(n, 11);
  {
    auto other = dev().create_stream();
    auto a = dev().allocate(n);
    stream().fill(*a, 0, n, 0xAB);  // recorded on the default stream, not yet submitted
    const std::uint64_t where = a->device_address();
    a.reset();
    auto b = dev().allocate(n);
    other->upload(*b, 0, data.data(), n);
    other->synchronize();
    stream().synchronize();  // the fill runs now
    EXPECT_EQ(download_all(*other, *b), data)
        << "the default stream's fill reached another stream's buffer" << (b->device_address() == where ? " (the same memory)" : "");
  }
  auto c = dev().allocate(n);
  stream().fill(*c, 0, n, 0xCD);
  c.reset();
  auto d = dev().allocate(n);  // one stream: the range may come back at once
  auto later = dev().create_stream();
  later->upload(*d, 0, data.data(), n);
  later->synchronize();
  stream().synchronize();
  EXPECT_EQ(download_all(*later, *d), data) << "a stream created after the reuse was overwritten by the older fill";
}

TEST_F(VulkanRuntime, RejectsBadSpirv) {
  auto expect_error = [&](std::vector<unsigned char> blob, const char* what) {
    kiln::KernelFunction f{"main", {blob.data(), blob.size()}};
    kiln::KernelEntry e{"test_bad_kernel", "test", -1, 1, &f, 64};
    kiln::Registry r;
    r.kernels = std::span<const kiln::KernelEntry>(&e, 1);
    try {
      dev().kernel(r, e, 0);
      ADD_FAILURE() << what << ": no error";
    } catch (const kiln::Error& err) {
      EXPECT_TRUE(err.code() == ErrorCode::compile_error || err.code() == ErrorCode::unsupported)
          << what << ": " << err.what();
      EXPECT_NE(std::string(err.what()).find("test_bad_kernel"), std::string::npos) << err.what();
    }
  };
  expect_error({}, "empty");
  expect_error({3, 2, 0x23, 7, 1}, "size not a multiple of 4");
  expect_error(std::vector<unsigned char>(64, 0x11), "no magic number");
  // The magic number, then garbage.
  std::vector<unsigned char> garbage(64, 0xff);
  const std::uint32_t magic = 0x07230203;
  std::memcpy(garbage.data(), &magic, 4);
  expect_error(garbage, "garbage after the magic number");
  // A valid module whose entry point is not a compute shader named main: compile a vertex shader.
  shaderc::Compiler compiler;
  auto vs = compiler.CompileGlslToSpv("#version 450\nvoid main() { gl_Position = vec4(0); }\n",
                                      shaderc_vertex_shader, "v.vert");
  std::vector<unsigned char> vert(reinterpret_cast<const unsigned char*>(vs.cbegin()),
                                  reinterpret_cast<const unsigned char*>(vs.cend()));
  expect_error(vert, "vertex shader");

  // A function index out of range.
  TestKernel k(compile_glsl(kPlusOne, "plus_one.comp"), "test_plus_one", 64);
  EXPECT_THROW(dev().kernel(k.registry, k.entry, 1), kiln::Error);
}

// The DenormPreserve edit (vk_spirv.hpp) gives modules the validator accepts, with the modes for
// the float widths the module has, once, and the extension only where SPIR-V < 1.4 needs it. No
// device needed: lavapipe keeps subnormals anyway and does not report the property; NVIDIA's
// driver flushes them without it (docs/semantics.md, "Subnormals").
TEST(VulkanSpirv, DenormPreserveEditIsValidSpirv) {
  const std::string f32_only = "#version 460\nlayout(local_size_x = 64) in;\n"
                               "layout(std430, binding = 0) buffer B { float v[]; } b;\n"
                               "void main() { b.v[gl_GlobalInvocationID.x] *= 0.5; }\n";
  const std::string with_f64 = "#version 460\nlayout(local_size_x = 64) in;\n"
                               "layout(std430, binding = 0) buffer B { double d[]; float v[]; } b;\n"
                               "void main() { b.d[0] *= 0.5lf; b.v[gl_GlobalInvocationID.x] *= 0.5; }\n";
  struct Target {
    shaderc_env_version env;
    spv_target_env val;
    bool needs_extension;
  };
  for (const Target t : {Target{shaderc_env_version_vulkan_1_3, SPV_ENV_VULKAN_1_3, false},
                         Target{shaderc_env_version_vulkan_1_1, SPV_ENV_VULKAN_1_1, true}}) {
    for (const std::string* src : {&f32_only, &with_f64}) {
      SCOPED_TRACE(std::string(t.needs_extension ? "SPIR-V 1.3, " : "SPIR-V 1.6, ") +
                   (src == &with_f64 ? "f64" : "f32 only"));
      shaderc::Compiler compiler;
      shaderc::CompileOptions options;
      options.SetTargetEnvironment(shaderc_target_env_vulkan, t.env);
      auto r = compiler.CompileGlslToSpv(*src, shaderc_compute_shader, "d.comp", options);
      ASSERT_EQ(r.GetCompilationStatus(), shaderc_compilation_status_success) << r.GetErrorMessage();
      const std::vector<std::uint32_t> words(r.cbegin(), r.cend());
      EXPECT_EQ(kiln::vk::with_denorm_preserve(words, {}), words) << "no widths: unchanged";
      const auto edited = kiln::vk::with_denorm_preserve(words, {true, true, true});
      spvtools::SpirvTools tools(t.val);
      std::string first;
      tools.SetMessageConsumer([&](spv_message_level_t, const char*, const spv_position_t&, const char* m) {
        if (first.empty()) first = m;
      });
      EXPECT_TRUE(tools.Validate(edited)) << first;
      std::string text;
      ASSERT_TRUE(tools.Disassemble(edited, &text, SPV_BINARY_TO_TEXT_OPTION_NONE));
      auto count = [&](const std::string& s) {
        std::size_t n = 0;
        for (std::size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + 1)) ++n;
        return n;
      };
      EXPECT_EQ(count("OpCapability DenormPreserve"), 1u) << text;
      EXPECT_EQ(count("DenormPreserve 32"), 1u) << text;
      EXPECT_EQ(count("DenormPreserve 64"), src == &with_f64 ? 1u : 0u) << text;
      EXPECT_EQ(count("DenormPreserve 16"), 0u) << "no Float16 capability: " << text;
      EXPECT_EQ(count("SPV_KHR_float_controls"), t.needs_extension ? 1u : 0u) << text;
      EXPECT_EQ(kiln::vk::with_denorm_preserve(edited, {true, true, true}), edited) << "a second edit adds nothing";
      // What a device reporting only f32 gets.
      const auto only32 = kiln::vk::with_denorm_preserve(words, {false, true, false});
      EXPECT_TRUE(tools.Validate(only32)) << first;
      EXPECT_EQ(only32.size() + (src == &with_f64 ? 4u : 0u), edited.size());
    }
  }
  // Widths a device ties together get one mode or none (denormBehaviorIndependence), and then
  // the mode goes on every width of the module, floats of that width or not.
  using kiln::vk::denorm_widths;
  const auto same = [](kiln::vk::DenormWidths a, kiln::vk::DenormWidths b) {
    return a.w16 == b.w16 && a.w32 == b.w32 && a.w64 == b.w64 && a.every_width == b.every_width;
  };
  EXPECT_TRUE(same(denorm_widths(false, true, true, VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_ALL), {false, true, true, false}));
  EXPECT_TRUE(same(denorm_widths(false, true, true, VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_32_BIT_ONLY), {false, true, false, true}));
  EXPECT_TRUE(same(denorm_widths(true, true, true, VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_32_BIT_ONLY), {true, true, true, true}));
  EXPECT_TRUE(same(denorm_widths(true, true, false, VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_NONE), {false, false, false, true}));
  EXPECT_TRUE(same(denorm_widths(true, true, true, VK_SHADER_FLOAT_CONTROLS_INDEPENDENCE_NONE), {true, true, true, true}));
  {
    shaderc::Compiler compiler;
    auto r = compiler.CompileGlslToSpv(f32_only, shaderc_compute_shader, "d.comp", shaderc::CompileOptions());
    ASSERT_EQ(r.GetCompilationStatus(), shaderc_compilation_status_success) << r.GetErrorMessage();
    const auto all = kiln::vk::with_denorm_preserve(std::vector<std::uint32_t>(r.cbegin(), r.cend()), {true, true, true, true});
    spvtools::SpirvTools tools(SPV_ENV_VULKAN_1_3);
    std::string text, first;
    tools.SetMessageConsumer([&](spv_message_level_t, const char*, const spv_position_t&, const char* m) {
      if (first.empty()) first = m;
    });
    EXPECT_TRUE(tools.Validate(all)) << first;
    ASSERT_TRUE(tools.Disassemble(all, &text, SPV_BINARY_TO_TEXT_OPTION_NONE));
    for (const char* w : {"DenormPreserve 16", "DenormPreserve 32", "DenormPreserve 64"})
      EXPECT_NE(text.find(w), std::string::npos) << w << " missing: " << text;
  }
  // A truncated module comes back as it was (the validator then rejects it with its reason).
  const std::vector<std::uint32_t> bad = {0x07230203u, 0x00010600u, 0, 100, 0, 0x00ff0011u};
  EXPECT_EQ(kiln::vk::with_denorm_preserve(bad, {true, true, true}), bad);
}

}  // namespace
