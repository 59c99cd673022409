// Tests of runtime/interop.hpp (DLPack, foreign memory, Vulkan device wrapping and buffer export,
// CUDA stream wrapping) and of runtime/aot_kernel.hpp (what kiln_add_kernels' headers call).
// Vulkan tests run on lavapipe in CI; CUDA tests skip without a device.
#include <dlpack/dlpack.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <numeric>
#include <vector>

#include "codegen/api_header.hpp"
#include "codegen/manifest.hpp"
#include "codegen/spec.hpp"
#include "runtime/aot_kernel.hpp"
#include "runtime/faults.hpp"
#include "core/error.hpp"
#include "runtime/interop.hpp"
#include "runtime/jit.hpp"
#include "runtime/ops.hpp"
#include "runtime/vulkan/vk_common.hpp"

namespace {

using kiln::DType;
using kiln::ErrorCode;
using kiln::Tensor;

kiln::Device* first_device(kiln::Backend b) {
  for (kiln::Device* d : kiln::devices())
    if (d->backend() == b) return d;
  return nullptr;
}

std::string unavailable(kiln::Backend b) {
  for (const auto& s : kiln::backend_status())
    if (s.backend == b) return s.reason.empty() ? "no device" : s.reason;
  return "no device";
}

std::vector<float> host_floats(const Tensor& t) {
  std::vector<float> v(std::size_t(t.numel()));
  t.to_host(v.data(), v.size() * 4);
  return v;
}

Tensor iota(kiln::Shape shape, kiln::Device& d) {
  std::vector<float> v(std::size_t(kiln::shape_numel(shape)));
  std::iota(v.begin(), v.end(), 1.f);
  return Tensor::from_host(v.data(), v.size() * 4, shape, DType::f32, d);
}

// ---- DLPack on the CPU ----------------------------------------------------------------------------

TEST(Interop, DlpackExportIsZeroCopyAndKeepsStorageAlive) {
  kiln::Device& cpu = kiln::device("cpu");
  DLManagedTensor* m = nullptr;
  std::uint64_t storage = 0;
  {
    Tensor t = iota({3, 4}, cpu).transpose({}).slice(0, 1, 4);  // [3,3] view, strides [1,4], offset 1
    storage = t.storage()->device_address();
    m = kiln::to_dlpack(t);
  }  // the tensor is gone; the export still holds the storage
  const DLTensor& d = m->dl_tensor;
  EXPECT_EQ(d.device.device_type, kDLCPU);
  EXPECT_EQ(reinterpret_cast<std::uint64_t>(d.data), storage);
  EXPECT_EQ(d.byte_offset, 4u);
  ASSERT_EQ(d.ndim, 2);
  EXPECT_EQ(d.shape[0], 3);
  EXPECT_EQ(d.shape[1], 3);
  EXPECT_EQ(d.strides[0], 1);
  EXPECT_EQ(d.strides[1], 4);
  EXPECT_EQ(d.dtype.code, kDLFloat);
  EXPECT_EQ(d.dtype.bits, 32);
  const float* p = reinterpret_cast<const float*>(static_cast<const char*>(d.data) + d.byte_offset);
  EXPECT_EQ(p[0], 2.f);          // element [0,0] = original [0,1]
  EXPECT_EQ(p[2 + 4 * 1], 8.f);  // element [r,c] is at r + 4c: [2,1] = original flat index 7
  m->deleter(m);
}

struct Owned {
  std::vector<float> data;
  std::vector<std::int64_t> shape, strides;
  int* deleted;
};

DLManagedTensor* make_managed(std::vector<float> data, std::vector<std::int64_t> shape,
                              std::vector<std::int64_t> strides, int* deleted) {
  auto* o = new Owned{std::move(data), std::move(shape), std::move(strides), deleted};
  auto* m = new DLManagedTensor{};
  m->dl_tensor.data = o->data.data();
  m->dl_tensor.device = {kDLCPU, 0};
  m->dl_tensor.ndim = int(o->shape.size());
  m->dl_tensor.dtype = {kDLFloat, 32, 1};
  m->dl_tensor.shape = o->shape.data();
  m->dl_tensor.strides = o->strides.empty() ? nullptr : o->strides.data();
  m->manager_ctx = o;
  m->deleter = [](DLManagedTensor* self) {
    auto* o = static_cast<Owned*>(self->manager_ctx);
    ++*o->deleted;
    delete o;
    delete self;
  };
  return m;
}

TEST(Interop, DlpackImportViewsTheMemoryAndCallsTheDeleterOnce) {
  int deleted = 0;
  DLManagedTensor* m = make_managed({1, 2, 3, 4, 5, 6}, {2, 3}, {}, &deleted);
  const float* data = static_cast<const float*>(m->dl_tensor.data);
  {
    Tensor t = kiln::from_dlpack(m);
    EXPECT_EQ(t.shape(), (kiln::Shape{2, 3}));
    EXPECT_EQ(t.address(), reinterpret_cast<std::uint64_t>(data));  // no copy
    Tensor u = kiln::add(t, t);
    EXPECT_EQ(host_floats(u), (std::vector<float>{2, 4, 6, 8, 10, 12}));
    Tensor view = t.transpose({});
    t = Tensor();
    EXPECT_EQ(deleted, 0);  // the view still shares the memory
    EXPECT_EQ(host_floats(view), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  }
  EXPECT_EQ(deleted, 1);
}

TEST(Interop, DlpackImportNegativeStridesAndRoundTrip) {
  int deleted = 0;
  // A reversed 4-vector: data points at the last element of the allocation, stride -1.
  DLManagedTensor* m = make_managed({10, 20, 30, 40}, {4}, {-1}, &deleted);
  m->dl_tensor.byte_offset = 3 * 4;
  Tensor t = kiln::from_dlpack(m);
  EXPECT_EQ(host_floats(t), (std::vector<float>{40, 30, 20, 10}));
  DLManagedTensor* back = kiln::to_dlpack(t);
  Tensor again = kiln::from_dlpack(back);
  EXPECT_EQ(again.address(), t.address());
  EXPECT_EQ(host_floats(again), (std::vector<float>{40, 30, 20, 10}));
  t = again = Tensor();
  EXPECT_EQ(deleted, 1);
}

TEST(Interop, DlpackImportRejectsWhatKilnCannotView) {
  int deleted = 0;
  DLManagedTensor* m = make_managed({1, 2}, {2}, {}, &deleted);
  m->dl_tensor.dtype.lanes = 2;
  try {
    kiln::from_dlpack(m);
    FAIL() << "expected unsupported";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("lanes 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(deleted, 1);  // ownership was taken even though the import failed
  DLManagedTensor* v = make_managed({1}, {1}, {}, &deleted);
  v->dl_tensor.device = {kDLVulkan, 0};
  EXPECT_THROW(kiln::from_dlpack(v), kiln::Error);
  EXPECT_EQ(deleted, 2);
  // Shapes and strides whose counts or reach overflow 64 bits: an error naming them (no UB).
  float one = 0;
  auto error_of = [&](std::vector<std::int64_t> shape, std::vector<std::int64_t> strides) {
    DLTensor d{};
    d.data = &one;
    d.device = {kDLCPU, 0};
    d.ndim = int(shape.size());
    d.dtype = {kDLFloat, 32, 1};
    d.shape = shape.data();
    d.strides = strides.empty() ? nullptr : strides.data();
    try {
      kiln::from_dlpack(d);
    } catch (const kiln::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::int64_t big = std::int64_t(1) << 62;
  EXPECT_NE(error_of({big, 8}, {}).find("more than 2^63 elements"), std::string::npos) << error_of({big, 8}, {});
  EXPECT_NE(error_of({3}, {big}).find("reaches past 2^63 elements"), std::string::npos) << error_of({3}, {big});
  EXPECT_NE(error_of({2, 2}, {big, -big}).find("spans more than 2^63 bytes"), std::string::npos)
      << error_of({2, 2}, {big, -big});
}

TEST(Interop, DlpackDtypes) {
  kiln::Device& cpu = kiln::device("cpu");
  for (DType t : kiln::kAllDTypes) {
    Tensor x = Tensor::empty({2}, t, cpu);
    DLManagedTensor* m = kiln::to_dlpack(x);
    EXPECT_EQ(m->dl_tensor.dtype.bits, kiln::dtype_size(t) * 8) << kiln::dtype_name(t);
    Tensor y = kiln::from_dlpack(m);
    EXPECT_EQ(y.dtype(), t);
  }
}

TEST(Interop, WrapMemoryOnTheCpuIsWrittenInPlace) {
  kiln::Device& cpu = kiln::device("cpu");
  std::vector<float> mine(6, 0.f);
  auto buffer = kiln::wrap_memory(cpu, reinterpret_cast<std::uint64_t>(mine.data()), mine.size() * 4);
  Tensor out = Tensor::view(buffer, {2, 3}, {3, 1}, 0, DType::f32);
  Tensor x = iota({2, 3}, cpu);
  kiln::map(kiln::parse_expr("x * 2", {DType::f32}), {x}, std::nullopt, &out);
  EXPECT_EQ(mine, (std::vector<float>{2, 4, 6, 8, 10, 12}));
}

// ---- AOT kernels (what generated headers call) -------------------------------------------------------

TEST(Interop, AotKernelTensorAndRawForms) {
  const kiln::KernelSpec spec = kiln::make_map_spec(kiln::parse_expr("x * sigmoid(x)", {DType::f32}), DType::f32);
  kiln::AotKernel k(kiln::builtin_registry(), spec.name().c_str(), spec.canonical().c_str());
  EXPECT_THROW(kiln::AotKernel(kiln::builtin_registry(), "map_f32_f32_00000000", spec.canonical().c_str()),
               kiln::Error);
  EXPECT_THROW(kiln::AotKernel(kiln::builtin_registry(), spec.name().c_str(), "map|in=f32|out=f32|block=256|%0=f32:nosuch(%0);"),
               kiln::Error);
  // Every built-in kernel's spec rebuilds from its canonical text (what generated headers embed).
  for (const kiln::KernelEntry& e : kiln::builtin_registry().kernels)
    EXPECT_EQ(kiln::spec_from_canonical(e.spec).name(), e.name) << e.spec;
  kiln::Device& cpu = kiln::device("cpu");
  const Tensor x = iota({5, 7}, cpu);
  const std::vector<float> want = host_floats(k.run({x}));
  for (kiln::Device* d : kiln::devices()) {
    SCOPED_TRACE(d->id());
    const Tensor xd = x.to(*d);
    const std::vector<float> got = host_floats(k.run({xd}));
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f * std::abs(want[i]));
    Tensor out = Tensor::empty({5, 7}, DType::f32, *d);
    k.launch(d->default_stream(), {xd.storage().get()}, *out.storage(), 35);
    const std::vector<float> raw = host_floats(out);
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(raw[i], want[i], 1e-5f * std::abs(want[i]));
    EXPECT_THROW(k.launch(d->default_stream(), {xd.storage().get()}, *out.storage(), 36), kiln::Error);
    try {  // the output too small: named as the output, not by its position among the buffers
      Tensor small = Tensor::empty({2}, DType::f32, *d);
      k.launch(d->default_stream(), {xd.storage().get()}, *small.storage(), 4);
      ADD_FAILURE() << "an output too small was launched";
    } catch (const kiln::Error& e) {
      EXPECT_NE(std::string(e.what()).find("the output holds 8 bytes; 4 elements of f32 at offset 0 need 16"),
                std::string::npos) << e.what();
    }
    // Byte offsets that split an element (a misaligned load is a sticky fault on CUDA), and an
    // element count whose byte size overflows: refused, naming what was wrong.
    try {
      k.launch(d->default_stream(), {xd.storage().get()}, *out.storage(), 4, {2, 0});
      ADD_FAILURE() << "a misaligned offset was launched";
    } catch (const kiln::Error& e) {
      EXPECT_NE(std::string(e.what()).find("input 0 at byte offset 2"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not aligned to f32's 4 bytes"), std::string::npos) << e.what();
    }
    EXPECT_THROW(k.launch(d->default_stream(), {xd.storage().get()}, *out.storage(), 4, {0, 6}), kiln::Error);
    EXPECT_THROW(k.launch(d->default_stream(), {xd.storage().get()}, *out.storage(), ~std::uint64_t(0) / 2), kiln::Error);
    k.launch(d->default_stream(), {xd.storage().get()}, *out.storage(), 4, {4, 8});  // aligned offsets run
    EXPECT_NEAR(host_floats(out)[2], want[1], 1e-5f * std::abs(want[1]));
  }
}

// Foreign memory whose address is not a multiple of the element size is refused by Tensor::view
// (on a GPU such a view's kernels would fault; on the CPU it is undefined behaviour).
TEST(Interop, MisalignedForeignMemoryIsRefused) {
  kiln::Device& cpu = kiln::device("cpu");
  std::vector<double> mine(8, 0.0);
  const auto base = reinterpret_cast<std::uint64_t>(mine.data());
  auto odd = kiln::wrap_memory(cpu, base + 2, 32);
  try {
    Tensor::view(odd, {4}, {1}, 0, DType::f32);
    ADD_FAILURE() << "a misaligned view was made";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not aligned to f32's 4 bytes"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(Tensor::view(odd, {8}, {1}, 0, DType::u16));  // 2-byte elements at +2: aligned
  auto four = kiln::wrap_memory(cpu, base + 4, 32);
  EXPECT_NO_THROW(Tensor::view(four, {4}, {1}, 0, DType::f32));
  EXPECT_THROW(Tensor::view(four, {2}, {1}, 0, DType::f64), kiln::Error);
}

TEST(Interop, AotKernelNotBuiltForTheBackendIsCompiledJustInTime) {
  const kiln::KernelSpec spec = kiln::make_map_spec(kiln::parse_expr("x * 3 - 1", {DType::f32}), DType::f32);
  const std::string name = spec.name(), canonical = spec.canonical();
  // A registry as kilnc pack writes it for a build with neither nvcc nor SPIR-V for this kernel.
  const kiln::KernelFunction functions[] = {{"contig", {}}, {"strided", {}}};
  const kiln::KernelEntry entries[] = {{name.c_str(), canonical.c_str(), -1, 2, functions, 256}};
  const kiln::Registry registry{std::span<const kiln::KernelEntry>(entries, 1), {}};
  kiln::AotKernel k(registry, name.c_str(), canonical.c_str());
  for (kiln::Device* d : kiln::devices()) {
    SCOPED_TRACE(d->id());
    const Tensor x = iota({3, 3}, *d);
    EXPECT_EQ(host_floats(k.run({x}))[8], 26.f);
    Tensor out = Tensor::empty({9}, DType::f32, *d);
    k.launch(d->default_stream(), {x.storage().get()}, *out.storage(), 9);
    EXPECT_EQ(host_floats(out)[0], 2.f);
  }
}

TEST(Interop, GeneratedFunctionsNameTheUsersKernelInErrors) {
  // Errors name the user's function and manifest line, not kiln::map and a hash.
  kiln::Manifest m = kiln::parse_manifest("[[kernel]]\nname = \"swiglu\"\nexpr = 'x * sigmoid(x) * y'\n"
                                          "inputs = [\"f32\", \"f32\"]\n", "/somewhere/kernels.toml");
  const std::string header = kiln::emit_api_header(m, {"app", "app::registry", "kernels.toml"});
  EXPECT_NE(header.find("\"app::swiglu (kernels.toml:1:1)\""), std::string::npos) << header;
  const kiln::KernelSpec& spec = m.kernels[0].spec;
  const kiln::AotKernel k(kiln::builtin_registry(), spec.name().c_str(), spec.canonical().c_str(),
                          "app::swiglu (kernels.toml:1:1)");
  kiln::Device& cpu = kiln::device("cpu");
  const Tensor x = iota({4}, cpu);
  try {
    k.run({x, iota({4}, cpu).to(cpu)}, nullptr);  // fine
    k.run({x, x.slice(0, 0, 3)});                  // shapes do not broadcast
    ADD_FAILURE() << "no error";
  } catch (const kiln::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("app::swiglu (kernels.toml:1:1): shapes do not broadcast", 0), 0u) << what;
  }
  std::vector<float> host(4);
  Tensor out = Tensor::empty({4}, DType::f32, cpu);
  try {
    k.launch(cpu.default_stream(), {x.storage().get()}, *out.storage(), 4);
    ADD_FAILURE() << "no error";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("app::swiglu (kernels.toml:1:1): takes 2 input buffers, got 1", 0), 0u)
        << e.what();
  }
}

TEST(Interop, AotKernelWithItsOwnBlockSizeRunsItsRegistryEntry) {
  // Regression: AotKernel::run rebuilt the spec with the default block size, missed its own entry
  // (block_size = 128 in the manifest) and compiled the kernel just in time (or failed without NVRTC).
  const kiln::KernelEntry* entry = nullptr;
  for (const kiln::KernelEntry& e : kiln::builtin_registry().kernels)
    if (e.block_size == 128) entry = &e;
  ASSERT_NE(entry, nullptr) << "kernels/builtin.toml declares silu_f32_block128";
  const kiln::AotKernel k(kiln::builtin_registry(), entry->name, entry->spec);
  EXPECT_EQ(k.spec().block_size, 128);
  kiln::Device& cpu = kiln::device("cpu");
  const Tensor x = iota({4, 33}, cpu);
  const std::vector<float> want = host_floats(k.run({x}));
  const std::vector<float> want_t = host_floats(k.run({x.transpose({1, 0})}));
  for (kiln::Device* d : kiln::devices()) {
    if (d->backend() == kiln::Backend::cpu || !kiln::built_for(*entry, *d)) continue;
    SCOPED_TRACE(d->id());
    const std::uint64_t compiles = kiln::jit_compile_count();
    const Tensor xd = x.to(*d);
    const std::vector<float> got = host_floats(k.run({xd}));                       // contiguous entry point
    const std::vector<float> got_t = host_floats(k.run({xd.transpose({1, 0})}));  // strided entry point
    Tensor out = Tensor::empty({4, 33}, DType::f32, *d);
    k.launch(d->default_stream(), {xd.storage().get()}, *out.storage(), 4 * 33);
    const std::vector<float> raw = host_floats(out);
    EXPECT_EQ(kiln::jit_compile_count(), compiles) << entry->name << " was compiled just in time";
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-5f * std::max(1.f, std::abs(want[i]))) << i;
      EXPECT_NEAR(got_t[i], want_t[i], 1e-5f * std::max(1.f, std::abs(want_t[i]))) << i;
      EXPECT_NEAR(raw[i], want[i], 1e-5f * std::max(1.f, std::abs(want[i]))) << i;
    }
  }
}

// ---- Vulkan -------------------------------------------------------------------------------------------

TEST(Interop, VulkanBufferRangeMatchesTheDeviceAddress) {
  kiln::Device* d = first_device(kiln::Backend::vulkan);
  if (!d) GTEST_SKIP() << "no Vulkan device: " << unavailable(kiln::Backend::vulkan);
  Tensor t = iota({100}, *d);
  const kiln::VulkanBufferRange r = kiln::vulkan_buffer(*t.storage());
  ASSERT_NE(r.buffer, nullptr);
  EXPECT_EQ(r.size, 400u);
  const kiln::VulkanDeviceHandles h = kiln::vulkan_handles(*d);
  VkBufferDeviceAddressInfo info{VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO};
  info.buffer = r.buffer;
  EXPECT_EQ(vkGetBufferDeviceAddress(h.device, &info) + r.offset, r.device_address);
  EXPECT_EQ(r.device_address, t.storage()->device_address());
  EXPECT_THROW(kiln::vulkan_buffer(*iota({1}, kiln::device("cpu")).storage()), kiln::Error);
  try {
    kiln::to_dlpack(t);
    FAIL() << "expected unsupported";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
  }
  EXPECT_THROW(kiln::wrap_memory(*d, r.device_address, 4), kiln::Error);
}

// The caller's own instance and device, created with volk's entry points (Kiln loaded them). With
// KILN_VK_VALIDATION=1 (as CI runs) the instance has the validation layer, and every error message
// it reports about Kiln's use of the caller's device is counted in |errors|.
struct CallerVulkan {
  static inline std::atomic<int> errors{0};
  static inline std::string first_error;
  static VKAPI_ATTR VkBool32 VKAPI_CALL on_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                   VkDebugUtilsMessageTypeFlagsEXT,
                                                   const VkDebugUtilsMessengerCallbackDataEXT* data, void*) {
    if ((severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) && errors++ == 0 && data && data->pMessage)
      first_error = data->pMessage;
    return VK_FALSE;
  }
  VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
  VkInstance instance = VK_NULL_HANDLE;
  VkPhysicalDevice physical = VK_NULL_HANDLE;
  VkDevice device = VK_NULL_HANDLE;
  VkQueue queue = VK_NULL_HANDLE;
  std::uint32_t family = 0;
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan13Features f13{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};

  explicit CallerVulkan(bool with_kiln_features) {
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.apiVersion = VK_API_VERSION_1_3;
    VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.pApplicationInfo = &app;
    const char* layer = "VK_LAYER_KHRONOS_validation";
    const char* ext = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    const char* v = std::getenv("KILN_VK_VALIDATION");
    std::uint32_t nl = 0;
    vkEnumerateInstanceLayerProperties(&nl, nullptr);
    std::vector<VkLayerProperties> layers(nl);
    vkEnumerateInstanceLayerProperties(&nl, layers.data());
    const bool validate = v && std::string_view(v) == "1" &&
                          std::any_of(layers.begin(), layers.end(), [&](const auto& l) { return std::string_view(l.layerName) == layer; });
    if (validate) {
      ici.enabledLayerCount = 1;
      ici.ppEnabledLayerNames = &layer;
      ici.enabledExtensionCount = 1;
      ici.ppEnabledExtensionNames = &ext;
    }
    if (vkCreateInstance(&ici, nullptr, &instance) != VK_SUCCESS) return;
    if (validate) {
      VkDebugUtilsMessengerCreateInfoEXT mi{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
      mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
      mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT;
      mi.pfnUserCallback = on_message;
      auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
          vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT"));
      if (create) create(instance, &mi, nullptr, &messenger);
    }
    std::uint32_t n = 1;
    vkEnumeratePhysicalDevices(instance, &n, &physical);
    std::uint32_t nf = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &nf, nullptr);
    std::vector<VkQueueFamilyProperties> fams(nf);
    vkGetPhysicalDeviceQueueFamilyProperties(physical, &nf, fams.data());
    for (std::uint32_t i = 0; i < nf; ++i)
      if (fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT) { family = i; break; }
    f2.pNext = &f11;
    f11.pNext = &f12;
    f12.pNext = &f13;
    if (with_kiln_features) {
      f2.features.shaderInt64 = VK_TRUE;
      f12.bufferDeviceAddress = VK_TRUE;
      f12.timelineSemaphore = VK_TRUE;
      f13.maintenance4 = VK_TRUE;
    }
    const float prio = 1;
    VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qi.queueFamilyIndex = family;
    qi.queueCount = 1;
    qi.pQueuePriorities = &prio;
    VkDeviceCreateInfo ci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    ci.pNext = &f2;
    ci.queueCreateInfoCount = 1;
    ci.pQueueCreateInfos = &qi;
    if (vkCreateDevice(physical, &ci, nullptr, &device) != VK_SUCCESS) return;
    vkGetDeviceQueue(device, family, 0, &queue);
  }
  ~CallerVulkan() {
    if (device) vkDestroyDevice(device, nullptr);
    if (messenger) {
      auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
          vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT"));
      if (destroy) destroy(instance, messenger, nullptr);
    }
    if (instance) vkDestroyInstance(instance, nullptr);
  }
  kiln::VulkanDeviceHandles handles() const {
    return {instance, physical, device, family, {queue}, VK_API_VERSION_1_3, &f2};
  }
};

TEST(Interop, WrapCallersVulkanDevice) {
  if (!first_device(kiln::Backend::vulkan)) GTEST_SKIP() << "no Vulkan device: " << unavailable(kiln::Backend::vulkan);
  CallerVulkan::errors = 0;
  CallerVulkan caller(true);
  ASSERT_NE(caller.queue, nullptr) << "creating the caller's VkDevice failed";
  {
    std::unique_ptr<kiln::Device> dev = kiln::wrap_vulkan_device(caller.handles());
    EXPECT_EQ(dev->backend(), kiln::Backend::vulkan);
    // Without 8/16-bit features the narrow dtypes are not offered; f32 and s64 are.
    const auto& dts = dev->info().dtypes;
    EXPECT_NE(std::find(dts.begin(), dts.end(), DType::f32), dts.end());
    EXPECT_NE(std::find(dts.begin(), dts.end(), DType::s64), dts.end());
    EXPECT_EQ(std::find(dts.begin(), dts.end(), DType::f16), dts.end());
    const kiln::VulkanDeviceHandles h = kiln::vulkan_handles(*dev);
    EXPECT_EQ(h.device, caller.device);
    EXPECT_EQ(h.instance, nullptr);
    Tensor x = iota({4, 5}, *dev);
    Tensor y = kiln::multiply(kiln::add(x, x), x.slice(0, 0, 1));  // broadcast: strided kernel
    const std::vector<float> got = host_floats(y);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i], 2.f * (i + 1) * float(i % 5 + 1)) << i;
    auto s = dev->create_stream();
    Tensor z = x.to(kiln::device("cpu"));
    EXPECT_EQ(host_floats(z)[19], 20.f);
  }  // the Kiln device goes first, then the caller destroys its VkDevice
  // Kiln's pipelines on the caller's device were valid for the features it enabled (a device
  // without maintenance4 took the kernels' LocalSizeId: VUID-RuntimeSpirv-LocalSizeId-06434).
  EXPECT_EQ(CallerVulkan::errors.load(), 0) << CallerVulkan::first_error;
}

// What the runtime keeps per device goes with the device: wrapping the same VkDevice again after
// the first Kiln device was lost and destroyed (the usual recovery; the new object likely lands at
// the old one's address) gives a healthy device, not the old one's sticky loss.
TEST(Interop, AWrappedDeviceMadeAgainStartsAfresh) {
  if (!first_device(kiln::Backend::vulkan)) GTEST_SKIP() << "no Vulkan device: " << unavailable(kiln::Backend::vulkan);
  CallerVulkan caller(true);
  ASSERT_NE(caller.queue, nullptr);
  const void* first = nullptr;
  {
    std::unique_ptr<kiln::Device> dev = kiln::wrap_vulkan_device(caller.handles());
    first = dev.get();
    Tensor x = iota({8}, *dev);
    (void)kiln::add(x, x);  // a just-in-time or registry kernel on this device
    kiln::inject_fault(*dev, kiln::Fault::device_lost);
    EXPECT_THROW(kiln::add(x, x), kiln::Error);
  }
  kiln::VulkanDeviceHandles h = caller.handles();
  h.api_version = 0;  // the default: Vulkan 1.3
  std::unique_ptr<kiln::Device> again = kiln::wrap_vulkan_device(h);
  SCOPED_TRACE(again.get() == first ? "at the same address" : "at another address");
  Tensor y = iota({8}, *again);
  EXPECT_EQ(host_floats(kiln::add(y, y))[7], 16.f);
}

TEST(Interop, WrapVulkanDeviceNamesMissingFeatures) {
  if (!first_device(kiln::Backend::vulkan)) GTEST_SKIP() << "no Vulkan device: " << unavailable(kiln::Backend::vulkan);
  CallerVulkan caller(false);
  ASSERT_NE(caller.queue, nullptr);
  try {
    kiln::wrap_vulkan_device(caller.handles());
    FAIL() << "expected unsupported";
  } catch (const kiln::Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unsupported);
    EXPECT_NE(std::string(e.what()).find("without bufferDeviceAddress timelineSemaphore maintenance4 shaderInt64"),
              std::string::npos)
        << e.what();
  }
  kiln::VulkanDeviceHandles h = caller.handles();
  h.queues.clear();
  EXPECT_THROW(kiln::wrap_vulkan_device(h), kiln::Error);
}

// ---- CUDA ---------------------------------------------------------------------------------------------

TEST(Interop, CudaWrapStreamAndDlpack) {
  kiln::Device* d = first_device(kiln::Backend::cuda);
  if (!d) GTEST_SKIP() << "no CUDA device: " << unavailable(kiln::Backend::cuda);
  void* native = kiln::cuda::native_stream(d->default_stream());
  std::unique_ptr<kiln::Stream> s = kiln::cuda::wrap_stream(*d, native);
  EXPECT_EQ(kiln::cuda::native_stream(*s), native);
  Tensor x = iota({64}, *d);
  Tensor out = Tensor::empty({64}, DType::f32, *d);
  // A raw launch needs a kernel of the registry: the built-in SiLU (an expression outside it,
  // such as "x + 1", is refused by AotKernel::launch: found on the first GPU run).
  const kiln::KernelSpec spec = kiln::make_map_spec(kiln::parse_expr("x * sigmoid(x)", {DType::f32}), DType::f32);
  ASSERT_NE(kiln::builtin_registry().find(spec.name()), nullptr) << spec.canonical();
  kiln::AotKernel k(kiln::builtin_registry(), spec.name().c_str(), spec.canonical().c_str());
  k.launch(*s, {x.storage().get()}, *out.storage(), 64);
  s->synchronize();
  s.reset();  // the caller's stream survives
  const std::vector<float> xs = host_floats(x), got = host_floats(out);
  for (int i : {0, 1, 10, 63})
    EXPECT_NEAR(got[i], xs[i] / (1 + std::exp(-xs[i])), 1e-5f * std::max(1.f, std::abs(xs[i]))) << i;
  // DLPack both ways on the device: same device pointer.
  DLManagedTensor* m = kiln::to_dlpack(x);
  EXPECT_EQ(m->dl_tensor.device.device_type, kDLCUDA);
  Tensor back = kiln::from_dlpack(m);
  EXPECT_EQ(back.address(), x.address());
  EXPECT_EQ(host_floats(back)[0], 1.f);
  auto wrapped = kiln::wrap_memory(*d, x.storage()->device_address(), 64 * 4);
  EXPECT_EQ(host_floats(Tensor::view(wrapped, {64}, {1}, 0, DType::f32))[10], 11.f);
}

TEST(Interop, CudaWrapStreamRejectsOtherDevices) {
  EXPECT_THROW(kiln::cuda::wrap_stream(kiln::device("cpu"), nullptr), kiln::Error);
}

}  // namespace
