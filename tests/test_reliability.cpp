// Reliability tests (docs/reliability.md): out of memory under a memory cap, device loss through
// fault injection, corrupt kernels and pipeline-cache files, fuzz-corpus replay, and index math
// past 2^31 elements. They run on the CPU backend and on whatever Vulkan device the machine has
// (lavapipe in CI); the CUDA cases skip without a GPU.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "fuzz/targets.hpp"
#include "runtime/device.hpp"
#include "core/error.hpp"
#include "runtime/faults.hpp"
#include "runtime/limits.hpp"
#include "runtime/ops.hpp"
#include "runtime/registry.hpp"
#include "runtime/tensor.hpp"
#include "runtime/vulkan/vk_cache_file.hpp"
#include "runtime/vulkan/vk_validation.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::Device;
using kiln::ErrorCode;

Device* first_device(kiln::Backend backend) {
  for (Device* d : kiln::devices())
    if (d->backend() == backend) return d;
  return nullptr;
}

// The code of the kiln::Error |f| throws (and its message in *what), or nullopt.
std::optional<ErrorCode> error_of(const std::function<void()>& f, std::string* what = nullptr) {
  try {
    f();
  } catch (const kiln::Error& e) {
    if (what) *what = e.what();
    return e.code();
  }
  return std::nullopt;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Restores a device's memory cap and clears injected faults when a test ends, pass or fail.
struct DeviceGuard {
  Device& dev;
  std::uint64_t limit;
  explicit DeviceGuard(Device& d) : dev(d), limit(kiln::memory_limit(d)) {}
  ~DeviceGuard() {
    kiln::inject_fault(dev, kiln::Fault::none);
    kiln::set_memory_limit(dev, limit);
  }
};

// A round trip through the device, to show it still works.
void expect_device_works(Device& dev) {
  std::vector<std::uint8_t> in(1000), out(1000, 0);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::uint8_t(i * 7);
  auto b = dev.allocate(in.size());
  dev.default_stream().upload(*b, 0, in.data(), in.size());
  dev.default_stream().download(*b, 0, out.data(), out.size());
  EXPECT_EQ(in, out) << dev.id();
}

// ---- out of memory ---------------------------------------------------------------------------

TEST(Reliability, CpuOutOfMemoryUnderCap) {
  Device& dev = kiln::device("cpu");
  DeviceGuard guard(dev);
  const std::uint64_t base = kiln::memory_reserved(dev);
  kiln::set_memory_limit(dev, base + (1 << 20));
  {
    auto a = dev.allocate(512 << 10);
    EXPECT_EQ(kiln::memory_reserved(dev), base + (512 << 10));
    std::string what;
    EXPECT_EQ(error_of([&] { dev.allocate(1 << 20); }, &what), ErrorCode::out_of_memory);
    EXPECT_TRUE(contains(what, "1048576 bytes")) << what;  // the request
    EXPECT_TRUE(contains(what, "free under it")) << what;  // what is free
    // Tensor ops fail the same way and leave nothing behind.
    EXPECT_EQ(error_of([&] { kiln::Tensor::empty({1 << 20}, kiln::DType::f32, dev); }), ErrorCode::out_of_memory);
  }
  EXPECT_EQ(kiln::memory_reserved(dev), base) << "nothing leaked";
  kiln::set_memory_limit(dev, 0);
  expect_device_works(dev);
}

TEST(Reliability, CpuAllocationPastHostMemory) {
  Device& dev = kiln::device("cpu");
  for (std::size_t bytes : {std::size_t(1) << 60, ~std::size_t(0), std::size_t(dev.info().memory_bytes) + 1}) {
    std::string what;
    EXPECT_EQ(error_of([&] { dev.allocate(bytes); }, &what), ErrorCode::out_of_memory) << bytes;
    EXPECT_TRUE(contains(what, std::to_string(bytes))) << what;
  }
  expect_device_works(dev);
}

TEST(Reliability, InjectedOutOfMemoryFailsOneAllocation) {
  for (Device* dev : kiln::devices()) {
    DeviceGuard guard(*dev);
    kiln::inject_fault(*dev, kiln::Fault::out_of_memory);
    std::string what;
    EXPECT_EQ(error_of([&] { dev->allocate(64); }, &what), ErrorCode::out_of_memory) << dev->id();
    EXPECT_TRUE(contains(what, "64 bytes")) << what;
    expect_device_works(*dev);
  }
}

class VulkanReliability : public ::testing::Test {
 protected:
  void SetUp() override {
    dev_ = first_device(kiln::Backend::vulkan);
    if (!dev_) GTEST_SKIP() << "no Vulkan device";
    dev_->default_stream().synchronize();
    kiln::vk::take_validation_messages();  // start clean
  }
  // With KILN_VK_VALIDATION=1 (ctest), the failure paths must not upset the validation layer.
  void TearDown() override {
    if (!dev_ || !kiln::vk::validation_enabled()) return;
    auto messages = kiln::vk::take_validation_messages();
    EXPECT_EQ(messages.size(), 0u) << "validation messages, the first: " << messages.front();
  }
  Device& dev() { return *dev_; }
  Device* dev_ = nullptr;
};

TEST_F(VulkanReliability, OutOfMemoryUnderCapReleasesCacheAndRecovers) {
  DeviceGuard guard(dev());
  const std::uint64_t base = kiln::memory_reserved(dev());
  // Leave an empty pooled block in the cache: fill more than one 64 MiB block, free everything.
  {
    std::vector<std::shared_ptr<kiln::Buffer>> small;
    for (int i = 0; i < 70; ++i) small.push_back(dev().allocate(1 << 20));
  }
  const std::uint64_t cached = kiln::memory_reserved(dev());
  ASSERT_GT(cached, 0u);

  // Over the cap even after releasing the cache: out of memory naming the request and the cap.
  kiln::set_memory_limit(dev(), 16 << 20);
  std::string what;
  EXPECT_EQ(error_of([&] { dev().allocate(48 << 20); }, &what), ErrorCode::out_of_memory);
  EXPECT_TRUE(contains(what, "50331648 bytes")) << what;
  EXPECT_TRUE(contains(what, "memory cap 16777216")) << what;
  EXPECT_LE(kiln::memory_reserved(dev()), std::uint64_t(16 << 20)) << "the cache was released";

  // Fits only once the cache is released: the release-and-retry path succeeds.
  kiln::set_memory_limit(dev(), 0);
  { std::vector<std::shared_ptr<kiln::Buffer>> refill;
    for (int i = 0; i < 70; ++i) refill.push_back(dev().allocate(1 << 20)); }
  const std::uint64_t held = kiln::memory_reserved(dev());
  kiln::set_memory_limit(dev(), held + (32 << 20) - 1);
  {
    auto big = dev().allocate(32 << 20);  // dedicated: needs the cached blocks released
    EXPECT_LT(kiln::memory_reserved(dev()), held + (32 << 20));
    dev().default_stream().fill(*big, 0, big->size_bytes(), 3);
    dev().default_stream().synchronize();
  }
  kiln::set_memory_limit(dev(), 0);
  dev().default_stream().synchronize();
  dev().allocate(256);  // collects retired blocks
  EXPECT_LE(kiln::memory_reserved(dev()), std::max(base, cached)) << "nothing leaked";
  expect_device_works(dev());
}

// Large buffers freed under the default stream's recorded (not yet submitted) work wait for it;
// an allocation that would pass the cap because of them lets that work run and tries again,
// instead of failing with the memory free in all but name.
TEST_F(VulkanReliability, OutOfMemoryWaitsForTheDefaultStreamsFreedBuffers) {
  dev().default_stream().synchronize();
  dev().allocate(256);  // collects what earlier tests retired
  const std::uint64_t base = kiln::memory_reserved(dev());
  kiln::set_memory_limit(dev(), base + (100 << 20));
  for (int i = 0; i < 6; ++i) {  // 6 x 40 MiB through a 100 MiB cap, each freed under queued work
    auto big = dev().allocate(40 << 20);
    dev().default_stream().fill(*big, 0, big->size_bytes(), std::uint8_t(i));
  }
  auto last = dev().allocate(40 << 20);
  EXPECT_LE(kiln::memory_reserved(dev()), base + (100 << 20));
  last.reset();
  kiln::set_memory_limit(dev(), 0);
  expect_device_works(dev());
}

TEST_F(VulkanReliability, AllocationPastMaxMemoryAllocationSize) {
  const std::uint64_t max = dev().info().max_allocation_bytes;
  const std::uint64_t before = kiln::memory_reserved(dev());
  std::string what;
  EXPECT_EQ(error_of([&] { dev().allocate(max + 1); }, &what), ErrorCode::out_of_memory);
  EXPECT_TRUE(contains(what, std::to_string(max + 1))) << what;
  EXPECT_TRUE(contains(what, "maxMemoryAllocationSize")) << what;
  // A tensor of 2^31 + 8 bytes (past lavapipe's 2 GiB limit; fits on a real GPU).
  if (max < (std::uint64_t(1) << 31) + 8) {
    EXPECT_EQ(error_of([&] { kiln::Tensor::empty({(std::int64_t(1) << 31) + 8}, kiln::DType::u8, dev()); }),
              ErrorCode::out_of_memory);
  }
  EXPECT_EQ(kiln::memory_reserved(dev()), before);
  expect_device_works(dev());
}

// ---- device loss -----------------------------------------------------------------------------

// After an injected loss every call that needs the device throws device_lost (no crash, no hang),
// destructors stay quiet, and clearing the injected fault brings the device back.
void check_loss(Device& dev, kiln::Stream& s) {
  auto buf = dev.allocate(4096);
  std::vector<std::uint8_t> host(4096, 1);
  s.upload(*buf, 0, host.data(), host.size());
  auto before = s.record();
  kiln::inject_fault(dev, kiln::Fault::device_lost);
  std::string what;
  EXPECT_EQ(error_of([&] { s.synchronize(); }, &what), ErrorCode::device_lost) << dev.id();
  EXPECT_TRUE(contains(what, "lost")) << what;
  EXPECT_TRUE(kiln::device_is_lost(dev));
  // Every later call.
  EXPECT_EQ(error_of([&] { s.upload(*buf, 0, host.data(), host.size()); }), ErrorCode::device_lost);
  EXPECT_EQ(error_of([&] { s.download(*buf, 0, host.data(), host.size()); }), ErrorCode::device_lost);
  EXPECT_EQ(error_of([&] { s.fill(*buf, 0, 16, 0); }), ErrorCode::device_lost);
  EXPECT_EQ(error_of([&] { s.record(); }), ErrorCode::device_lost);
  EXPECT_EQ(error_of([&] { s.synchronize(); }), ErrorCode::device_lost);
  EXPECT_EQ(error_of([&] { dev.allocate(16); }), ErrorCode::device_lost);
  EXPECT_EQ(error_of([&] { dev.default_stream().synchronize(); }), ErrorCode::device_lost);
  if (dev.backend() != kiln::Backend::cpu) {
    EXPECT_EQ(error_of([&] { dev.create_stream(); }), ErrorCode::device_lost);
    EXPECT_EQ(error_of([&] { before->synchronize(); }), ErrorCode::device_lost);
  }
  EXPECT_EQ(error_of([&] { kiln::add(kiln::Tensor::empty({4}, kiln::DType::f32, dev),
                                     kiln::Tensor::empty({4}, kiln::DType::f32, dev)); }),
            ErrorCode::device_lost);
  before.reset();  // destructors never throw
  buf.reset();
  kiln::inject_fault(dev, kiln::Fault::none);
  EXPECT_FALSE(kiln::device_is_lost(dev));
}

TEST(Reliability, CpuInjectedDeviceLoss) {
  Device& dev = kiln::device("cpu");
  DeviceGuard guard(dev);
  check_loss(dev, dev.default_stream());
  expect_device_works(dev);
}

TEST_F(VulkanReliability, InjectedDeviceLossOnAStream) {
  DeviceGuard guard(dev());
  {
    auto s = dev().create_stream();
    check_loss(dev(), *s);
    // The stream created before the loss is destroyed after it: no throw, no hang.
  }
  expect_device_works(dev());
  // Tensor ops work again (kernels load, launches run).
  std::vector<float> x = {1, 2, 3, 4};
  auto t = kiln::Tensor::from_host(x.data(), 16, {4}, kiln::DType::f32, dev());
  auto out = kiln::add(t, t).to_host();
  EXPECT_EQ(reinterpret_cast<const float*>(out.data())[3], 8.0f);
}

TEST_F(VulkanReliability, InjectedDeviceLossWithDestructionWhileLost) {
  DeviceGuard guard(dev());
  auto s = dev().create_stream();
  auto buf = dev().allocate(1 << 20);
  s->fill(*buf, 0, buf->size_bytes(), 9);
  s->flush();  // in flight when the fault hits
  kiln::inject_fault(dev(), kiln::Fault::device_lost);
  EXPECT_EQ(error_of([&] { s->fill(*buf, 0, 16, 1); }), ErrorCode::device_lost);
  buf.reset();  // freed while lost
  s.reset();    // destroyed while lost
  // Loading a kernel while lost.
  const kiln::Registry& reg = kiln::builtin_registry();
  if (!reg.kernels.empty()) {
    EXPECT_EQ(error_of([&] { dev().kernel(reg, reg.kernels[0], 0); }), ErrorCode::device_lost);
  }
  kiln::inject_fault(dev(), kiln::Fault::none);
  expect_device_works(dev());
}

// A batch the driver will not take (vkQueueSubmit out of memory) holds the work of calls that have
// returned. Refused once, the stream waits for its submitted work and submits it again: nothing is
// lost. Refused again, the work is gone: the stream says so on every later call (instead of
// running what follows on memory that was never written), and other streams carry on.
TEST_F(VulkanReliability, ABatchTheDriverRefusesIsRetriedThenRefusedForGood) {
  DeviceGuard guard(dev());
  auto s = dev().create_stream();
  auto buf = dev().allocate(1 << 16);
  std::vector<std::uint8_t> out(16, 0);
  s->fill(*buf, 0, buf->size_bytes(), 7);  // recorded, not submitted
  kiln::inject_fault(dev(), kiln::Fault::submit_out_of_memory);
  s->download(*buf, 0, out.data(), out.size());  // submits: refused once, then taken
  EXPECT_EQ(out[5], 7);

  s->fill(*buf, 0, buf->size_bytes(), 9);
  kiln::inject_fault(dev(), kiln::Fault::submit_out_of_memory);
  kiln::inject_fault(dev(), kiln::Fault::submit_out_of_memory);
  std::string what;
  EXPECT_EQ(error_of([&] { s->synchronize(); }, &what), ErrorCode::out_of_memory);
  EXPECT_TRUE(contains(what, "VK_ERROR_OUT_OF_DEVICE_MEMORY") && contains(what, "never ran")) << what;
  EXPECT_EQ(error_of([&] { s->fill(*buf, 0, 16, 1); }, &what), ErrorCode::out_of_memory);
  EXPECT_TRUE(contains(what, "takes no more work")) << what;
  EXPECT_EQ(error_of([&] { s->download(*buf, 0, out.data(), out.size()); }), ErrorCode::out_of_memory);
  EXPECT_EQ(error_of([&] { s->record(); }), ErrorCode::out_of_memory);

  auto t = dev().create_stream();  // the dropped fill never ran: still 7
  t->download(*buf, 0, out.data(), out.size());
  EXPECT_EQ(out[3], 7);
  t->fill(*buf, 0, 16, 3);
  t->download(*buf, 0, out.data(), out.size());
  EXPECT_EQ(out[15], 3);
  buf.reset();
  s.reset();  // destroyed after failing: no throw, no hang
  t.reset();
  expect_device_works(dev());
  // The injection is used up by submissions; Fault::none clears what is left.
  kiln::inject_fault(dev(), kiln::Fault::submit_out_of_memory);
  kiln::inject_fault(dev(), kiln::Fault::none);
  expect_device_works(dev());
}

TEST(Reliability, CudaInjectedDeviceLoss) {
  Device* dev = first_device(kiln::Backend::cuda);
  if (!dev) GTEST_SKIP() << "no CUDA device";
  DeviceGuard guard(*dev);
  auto s = dev->create_stream();
  check_loss(*dev, *s);
  s.reset();
  expect_device_works(*dev);
}

// ---- corrupt kernels -------------------------------------------------------------------------

// A hand-built registry entry around |blob| (Vulkan SPIR-V).
void expect_kernel_rejected(Device& dev, std::vector<unsigned char> blob, const std::string& what) {
  kiln::KernelFunction f{"main", {blob.data(), blob.size()}};
  kiln::KernelEntry e{"test_corrupt_kernel", "test", -1, 1, &f, 64};
  kiln::Registry r;
  r.kernels = std::span<const kiln::KernelEntry>(&e, 1);
  std::string message;
  const auto code = error_of([&] { dev.kernel(r, e, 0); }, &message);
  ASSERT_TRUE(code.has_value()) << what << ": accepted";
  EXPECT_TRUE(*code == ErrorCode::compile_error || *code == ErrorCode::unsupported) << what << ": " << message;
  EXPECT_TRUE(contains(message, "test_corrupt_kernel")) << message;
}

TEST_F(VulkanReliability, CorruptSpirvIsRejected) {
  const kiln::Registry& reg = kiln::builtin_registry();
  const kiln::KernelEntry* good = nullptr;
  for (const auto& k : reg.kernels)
    if (k.num_functions > 0 && !k.functions[0].spirv.empty()) {
      good = &k;
      break;
    }
  if (!good) GTEST_SKIP() << "the registry has no Vulkan kernels";
  const auto& blob = good->functions[0].spirv;
  const std::vector<unsigned char> spirv(blob.data, blob.data + blob.size);
  // Truncated at several word boundaries and mid-word.
  for (std::size_t cut : {spirv.size() / 4 * 3 / 4 * 4, spirv.size() / 2 / 4 * 4, std::size_t(24), spirv.size() - 4,
                          spirv.size() - 1})
    expect_kernel_rejected(dev(), std::vector<unsigned char>(spirv.begin(), spirv.begin() + std::ptrdiff_t(cut)),
                           "truncated to " + std::to_string(cut));
  // Random bytes, with and without the magic number.
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<unsigned char> junk(64 + rng() % 2000 * 4);
    for (auto& b : junk) b = static_cast<unsigned char>(rng());
    if (round % 2) std::memcpy(junk.data(), spirv.data(), std::min<std::size_t>(20, spirv.size()));
    expect_kernel_rejected(dev(), junk, "random bytes, round " + std::to_string(round));
  }
  // Valid structure, wrong content: an id in the middle of the module replaced.
  std::vector<unsigned char> flipped = spirv;
  for (std::size_t i = flipped.size() / 2; i < flipped.size() / 2 + 8; ++i) flipped[i] ^= 0x5a;
  try {
    kiln::KernelFunction f{"main", {flipped.data(), flipped.size()}};
    kiln::KernelEntry e{"test_flipped_kernel", "test", -1, 1, &f, 64};
    kiln::Registry r;
    r.kernels = std::span<const kiln::KernelEntry>(&e, 1);
    dev().kernel(r, e, 0);  // a flip that still validates may load; it must not crash
  } catch (const kiln::Error& e) {
    EXPECT_TRUE(e.code() == ErrorCode::compile_error) << e.what();
  }
  expect_device_works(dev());
}

TEST(Reliability, CudaImageForAnotherArchIsRejected) {
  Device* dev = first_device(kiln::Backend::cuda);
  if (!dev) GTEST_SKIP() << "no CUDA device";
  // A truncated fatbin header and random bytes: compile_error naming the kernel and the arch.
  static const unsigned char junk[] = {0x50, 0xed, 0x55, 0xba, 0x01, 0x00, 0x10, 0x00, 1, 2, 3};
  static const kiln::EmbeddedBlob images[] = {{junk, sizeof junk}};
  static const kiln::KernelFunction functions[] = {{"f", {}}};
  static const kiln::KernelEntry entries[] = {{"truncated_fatbin", "x", 0, 1, functions, 128}};
  const kiln::Registry registry{entries, images};
  std::string what;
  EXPECT_EQ(error_of([&] { dev->kernel(registry, entries[0], 0); }, &what), ErrorCode::compile_error);
  EXPECT_TRUE(contains(what, "truncated_fatbin")) << what;
  EXPECT_TRUE(contains(what, dev->info().arch)) << what;
  expect_device_works(*dev);
}

// ---- the pipeline-cache file -----------------------------------------------------------------

kiln::vk::PipelineCacheIdentity test_identity() {
  kiln::vk::PipelineCacheIdentity id;
  id.vendor_id = 0x10005;
  id.device_id = 7;
  for (int i = 0; i < 16; ++i) id.uuid[i] = std::uint8_t(200 - i);
  return id;
}

std::vector<char> driver_payload(const kiln::vk::PipelineCacheIdentity& id, std::size_t extra) {
  std::vector<char> p(32 + extra, 'x');
  const std::uint32_t header[4] = {32, 1, id.vendor_id, id.device_id};
  std::memcpy(p.data(), header, sizeof header);
  std::memcpy(p.data() + 16, id.uuid, 16);
  return p;
}

TEST(Reliability, PipelineCacheFileRejectsEveryTruncationAndFlip) {
  const auto id = test_identity();
  const std::vector<char> payload = driver_payload(id, 100);
  const std::vector<char> file = kiln::vk::wrap_pipeline_cache(payload, id);
  std::string why;
  auto ok = kiln::vk::unwrap_pipeline_cache(file, id, &why);
  ASSERT_TRUE(ok) << why;
  EXPECT_EQ(std::vector<char>(ok->begin(), ok->end()), payload);
  for (std::size_t n = 0; n < file.size(); ++n) {
    EXPECT_FALSE(kiln::vk::unwrap_pipeline_cache(std::span<const char>(file).first(n), id, &why)) << n;
    EXPECT_FALSE(why.empty());
  }
  for (std::size_t i = 0; i < file.size(); ++i) {
    std::vector<char> bad = file;
    bad[i] ^= 0x01;
    EXPECT_FALSE(kiln::vk::unwrap_pipeline_cache(bad, id, &why)) << "flipped byte " << i;
  }
  auto other = id;
  other.uuid[3] ^= 1;
  EXPECT_FALSE(kiln::vk::unwrap_pipeline_cache(file, other, &why));
  EXPECT_TRUE(contains(why, "another device")) << why;
}

// Runs this test binary again with |filter| and extra environment; returns the exit status and
// the output. The child sees KILN_RELIABILITY_CHILD=1.
int run_child(const std::string& filter, const std::string& env, std::string* output) {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = '\0';
  const fs::path log = fs::temp_directory_path() / ("kiln-child-" + std::to_string(getpid()) + ".log");
  const std::string cmd = env + " KILN_RELIABILITY_CHILD=1 '" + std::string(self) + "' --gtest_filter='" + filter +
                          "' > '" + log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  std::ifstream in(log);
  output->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  fs::remove(log);
  return status;
}

// Child: loads a built-in kernel and runs it (the pipeline cache is read at device creation and
// written after the first kernel load).
TEST(ReliabilityChild, RunsAVulkanKernel) {
  if (!std::getenv("KILN_RELIABILITY_CHILD")) GTEST_SKIP() << "run by Reliability.CorruptPipelineCacheFile";
  Device* dev = first_device(kiln::Backend::vulkan);
  if (!dev) GTEST_SKIP() << "no Vulkan device";
  std::vector<float> x = {1, 2, 3, 4};
  auto t = kiln::Tensor::from_host(x.data(), 16, {4}, kiln::DType::f32, *dev);
  auto out = kiln::add(t, t).to_host();
  EXPECT_EQ(reinterpret_cast<const float*>(out.data())[2], 6.0f);
  std::printf("child ok\n");
}

// Child: the memory cap from KILN_MEMORY_LIMIT.
TEST(ReliabilityChild, MemoryLimitFromEnvironment) {
  if (!std::getenv("KILN_RELIABILITY_CHILD")) GTEST_SKIP() << "run by Reliability.MemoryLimitEnvironment";
  for (Device* dev : kiln::devices()) {
    EXPECT_EQ(kiln::memory_limit(*dev), 3u << 20) << dev->id();
    EXPECT_EQ(error_of([&] { dev->allocate(4 << 20); }), ErrorCode::out_of_memory) << dev->id();
  }
  std::printf("child ok\n");
}

// Child: the default stream refuses a batch for good (Fault::submit_out_of_memory twice). Eager ops,
// which run on it, say so; other streams can still be made — create_stream waits for the default
// stream's submitted work without throwing, also when the refusal happens in that very wait — and
// work.
TEST(ReliabilityChild, DefaultStreamFailsForGood) {
  if (!std::getenv("KILN_RELIABILITY_CHILD")) GTEST_SKIP() << "run by VulkanReliability.ADefaultStreamThatFailsLeavesOtherStreams";
  Device* dev = first_device(kiln::Backend::vulkan);
  if (!dev) GTEST_SKIP() << "no Vulkan device";
  std::vector<float> x = {1, 2, 3, 4};
  const auto t = kiln::Tensor::from_host(x.data(), 16, {4}, kiln::DType::f32, *dev);
  const std::string mode = std::getenv("KILN_CHILD_MODE") ? std::getenv("KILN_CHILD_MODE") : "";
  kiln::inject_fault(*dev, kiln::Fault::submit_out_of_memory);
  kiln::inject_fault(*dev, kiln::Fault::submit_out_of_memory);
  std::string what;
  if (mode == "eager") {  // an eager op meets the refusal
    EXPECT_EQ(error_of([&] { kiln::add(t, t).to_host(); }, &what), ErrorCode::out_of_memory);
    EXPECT_TRUE(contains(what, "never ran")) << what;
  }
  auto s = dev->create_stream();  // "wait": the upload above is refused here
  EXPECT_EQ(error_of([&] { kiln::add(t, t).to_host(); }, &what), ErrorCode::out_of_memory);
  EXPECT_TRUE(contains(what, "takes no more work")) << what;
  // It says what an eager caller can do, not "use another stream".
  EXPECT_TRUE(contains(what, "the device's default stream, so the tensor ops on this device fail")) << what;
  EXPECT_TRUE(contains(what, "create_stream() still run")) << what;
  auto buf = dev->allocate(64);
  std::vector<std::uint8_t> out(64, 0);
  s->fill(*buf, 0, 64, 5);
  s->download(*buf, 0, out.data(), out.size());
  EXPECT_EQ(out[63], 5);
  std::printf("child ok\n");
}

TEST_F(VulkanReliability, ADefaultStreamThatFailsLeavesOtherStreams) {
  for (const char* mode : {"eager", "wait"}) {
    std::string out;
    EXPECT_EQ(run_child("ReliabilityChild.DefaultStreamFailsForGood", std::string("KILN_CHILD_MODE=") + mode, &out), 0)
        << mode << ": " << out;
    EXPECT_TRUE(contains(out, "child ok")) << mode << ": " << out;
  }
}

// Child: the default device with KILN_VK_VALIDATION=1 and no validation layer to be found.
TEST(ReliabilityChild, DefaultDeviceWithoutTheValidationLayer) {
  if (!std::getenv("KILN_RELIABILITY_CHILD")) GTEST_SKIP() << "run by Reliability.ValidationRequestedWithoutTheLayer";
  std::printf("default device: %s\n", kiln::default_device().id().c_str());
  EXPECT_FALSE(kiln::vk::validation_enabled());
}

TEST(Reliability, ValidationRequestedWithoutTheLayerKeepsVulkanAndSaysSo) {
  // Regression: the default device silently became the CPU.
  if (!first_device(kiln::Backend::vulkan)) GTEST_SKIP() << "no Vulkan device";
  if (first_device(kiln::Backend::cuda)) GTEST_SKIP() << "the default device is CUDA here";
  std::string out;
  const int status = run_child("ReliabilityChild.DefaultDeviceWithoutTheValidationLayer",
                               "KILN_VK_VALIDATION=1 VK_LAYER_PATH=/nonexistent-kiln-layers", &out);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(contains(out, "default device: vulkan:0")) << out;
  EXPECT_TRUE(contains(out, "KILN_VK_VALIDATION is set but the layer VK_LAYER_KHRONOS_validation is not installed"))
      << out;
}

// Child: KILN_DEVICE=cpu runs on the CPU without loading the Vulkan loader or the CUDA driver.
TEST(ReliabilityChild, CpuDeviceStartsNoGpuBackend) {
  if (!std::getenv("KILN_RELIABILITY_CHILD")) GTEST_SKIP() << "run by Reliability.KilnDeviceCpuStartsNoGpuBackend";
  kiln::Device& d = kiln::default_device();
  std::vector<float> x = {1, 2};
  auto t = kiln::Tensor::from_host(x.data(), 8, {2}, kiln::DType::f32, d);
  EXPECT_EQ(reinterpret_cast<const float*>(kiln::add(t, t).to_host().data())[1], 4.0f);
  std::ifstream maps("/proc/self/maps");
  const std::string text((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
  std::printf("device %s; libvulkan %s; libcuda %s\n", d.id().c_str(),
              text.find("libvulkan") == std::string::npos ? "not loaded" : "LOADED",
              text.find("libcuda.so") == std::string::npos ? "not loaded" : "LOADED");
}

TEST(Reliability, KilnDeviceCpuStartsNoGpuBackend) {
  std::string out;
  EXPECT_EQ(run_child("ReliabilityChild.CpuDeviceStartsNoGpuBackend", "KILN_DEVICE=cpu", &out), 0) << out;
  EXPECT_TRUE(contains(out, "device cpu; libvulkan not loaded; libcuda not loaded")) << out;
}

TEST(Reliability, MemoryLimitEnvironment) {
  std::string out;
  const int status = run_child("ReliabilityChild.MemoryLimitFromEnvironment", "KILN_MEMORY_LIMIT=3145728", &out);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(contains(out, "child ok")) << out;
}

TEST(Reliability, CorruptPipelineCacheFile) {
  if (!first_device(kiln::Backend::vulkan)) GTEST_SKIP() << "no Vulkan device";
  const fs::path dir = fs::temp_directory_path() / ("kiln-cache-test-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string env = "KILN_CACHE_DIR='" + dir.string() + "' KILN_VK_PIPELINE_CACHE=1";
  std::string out;
  ASSERT_EQ(run_child("ReliabilityChild.RunsAVulkanKernel", env, &out), 0) << out;
  ASSERT_TRUE(contains(out, "child ok")) << out;
  fs::path file;
  for (const auto& e : fs::directory_iterator(dir / "vulkan"))
    if (e.path().extension() == ".bin") file = e.path();
  ASSERT_FALSE(file.empty()) << "no pipeline cache written under " << dir;
  const auto good_size = fs::file_size(file);
  ASSERT_GT(good_size, kiln::vk::kPipelineCacheHeaderBytes);

  auto corrupt_and_run = [&](const std::string& what, const std::function<void()>& corrupt) {
    corrupt();
    std::string log;
    EXPECT_EQ(run_child("ReliabilityChild.RunsAVulkanKernel", env, &log), 0) << what << ":\n" << log;
    EXPECT_TRUE(contains(log, "child ok")) << what << ":\n" << log;
    EXPECT_TRUE(contains(log, "ignoring the pipeline cache")) << what << ": no warning:\n" << log;
    EXPECT_GT(fs::file_size(file), kiln::vk::kPipelineCacheHeaderBytes) << what << ": the cache is rewritten";
  };
  corrupt_and_run("truncated", [&] { fs::resize_file(file, good_size / 2); });
  corrupt_and_run("header only", [&] { fs::resize_file(file, 20); });
  corrupt_and_run("random bytes", [&] {
    std::mt19937 rng(3);
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 5000; ++i) f.put(char(rng()));
  });
  corrupt_and_run("one flipped byte", [&] {
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(std::streamoff(fs::file_size(file) - 10));
    const char c = char(f.get());
    f.seekp(std::streamoff(fs::file_size(file) - 10));
    f.put(char(c ^ 0x40));
  });
  // An intact file is read silently.
  std::string log;
  EXPECT_EQ(run_child("ReliabilityChild.RunsAVulkanKernel", env, &log), 0) << log;
  EXPECT_FALSE(contains(log, "ignoring the pipeline cache")) << log;
  fs::remove_all(dir);
}

// ---- fuzz corpus replay ----------------------------------------------------------------------

TEST(Reliability, FuzzCorpusReplays) {
  const fs::path root = fs::path(KILN_SOURCE_DIR) / "fuzz" / "corpus";
  const std::pair<const char*, void (*)(const std::uint8_t*, std::size_t)> targets[] = {
      {"expr", kiln::fuzz::expr_target},
      {"manifest", kiln::fuzz::manifest_target},
      {"pipeline_cache", kiln::fuzz::pipeline_cache_target},
      {"jit_entry", kiln::fuzz::jit_entry_target},
  };
  for (auto [name, target] : targets) {
    int files = 0;
    for (const auto& e : fs::directory_iterator(root / name)) {
      std::ifstream in(e.path(), std::ios::binary);
      const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      SCOPED_TRACE(e.path().string());
      target(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
      ++files;
    }
    EXPECT_GT(files, 0) << "no corpus for " << name;
  }
}

// ---- large and odd sizes ---------------------------------------------------------------------

// Index math past 2^31 elements on the CPU backend (a 2 GiB u8 tensor): views, ops and transfers
// at element offsets beyond the 32-bit range. (lavapipe cannot hold it: maxMemoryAllocationSize
// is 2 GiB; see VulkanReliability.AllocationPastMaxMemoryAllocationSize.)
TEST(Reliability, CpuTensorPast2To31Elements) {
  if (std::getenv("KILN_SKIP_LARGE")) GTEST_SKIP() << "KILN_SKIP_LARGE is set";
  Device& dev = kiln::device("cpu");
  const std::int64_t n = (std::int64_t(1) << 31) + 8;
  if (dev.info().memory_bytes < std::uint64_t(n) * 3) GTEST_SKIP() << "not enough host memory";
  auto t = kiln::Tensor::empty({n}, kiln::DType::u8, dev);
  dev.default_stream().fill(*t.storage(), 0, std::size_t(n), 1);
  std::vector<std::uint8_t> tail = {10, 20, 30, 40, 50, 60, 70, 80};
  dev.default_stream().upload(*t.storage(), std::size_t(n) - 8, tail.data(), tail.size());
  // A view that starts past 2^31 and a 2-D view whose strides reach past it.
  auto end = t.slice(0, n - 16, n);
  EXPECT_EQ(end.offset(), n - 16);
  auto sum = kiln::add(end, end).to_host();
  ASSERT_EQ(sum.size(), 16u);
  EXPECT_EQ(std::uint8_t(sum[0]), 2);
  EXPECT_EQ(std::uint8_t(sum[15]), 160);
  auto grid = t.reshape({2, n / 2}).slice(1, n / 2 - 4, n / 2);  // rows 0 and 1, last 4 columns
  auto g = grid.contiguous().to_host();
  ASSERT_EQ(g.size(), 8u);
  EXPECT_EQ(std::uint8_t(g[7]), 80);
  EXPECT_EQ(std::uint8_t(g[3]), 1);
}

// More elements than 65535 workgroups cover in one pass: run_gpu caps groups.x at 65535 and the
// map kernels loop grid-stride, so the elements past the first pass must be computed too.
TEST_F(VulkanReliability, LaunchPastMaxGroupsLoopsGridStride) {
  if (std::getenv("KILN_SKIP_LARGE")) GTEST_SKIP() << "KILN_SKIP_LARGE is set";
  const std::int64_t n = std::int64_t(65535) * 1024 * 2 + 78;  // past two passes of the widest launch
  std::vector<std::uint8_t> x(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::uint8_t(i * 13 + 5);
  auto t = kiln::Tensor::from_host(x.data(), x.size(), {n}, kiln::DType::u8, dev());
  auto y = kiln::add(t, t).to_host();
  ASSERT_EQ(y.size(), x.size());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < x.size(); ++i) wrong += std::uint8_t(y[i]) != std::uint8_t(x[i] * 2);
  EXPECT_EQ(wrong, 0u);
  // Strided too (a broadcast row: the strided kernel, one element per thread).
  auto z = kiln::add(t.reshape({2, n / 2}).slice(1, 0, n / 2, 1), t.reshape({2, n / 2}).slice(0, 1, 2));
  auto zh = z.to_host();
  ASSERT_EQ(zh.size(), std::size_t(n / 2) * 2);
  EXPECT_EQ(std::uint8_t(zh[zh.size() - 1]), std::uint8_t(x[std::size_t(n / 2) * 2 - 1] + x[std::size_t(n / 2) * 2 - 1]));
  EXPECT_EQ(std::uint8_t(zh[0]), std::uint8_t(x[0] + x[std::size_t(n / 2)]));
}

}  // namespace
