#include "runtime/device.hpp"

#include <cctype>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "core/error.hpp"
#include "runtime/backends.hpp"
#include "runtime/device_state.hpp"
#include "runtime/jit.hpp"

namespace kiln {

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::cpu: return "cpu";
    case Backend::vulkan: return "vulkan";
    case Backend::cuda: return "cuda";
  }
  return "?";
}

std::unique_ptr<StreamGraph> Stream::record_graph(std::span<const GraphLaunch>, std::string* why) {
  if (why) *why = fmt::format("{} streams run launches as they come (no graphs to record)", device().id());
  return nullptr;
}

void Stream::replay(const StreamGraph& graph) {
  fail(ErrorCode::invalid_argument,
       fmt::format("{}: a {} cannot be replayed on this stream", device().id(), graph.kind()));
}

Device::~Device() {
  detail::forget_device_state(*this);
  forget_jit_kernels(*this);
}

void Device::encode_tensor_map(const TensorMapRequest&, void*) {
  fail(ErrorCode::unsupported, fmt::format("{}: TMA tensor maps need a CUDA device of compute capability 9.0 or later", id()));
}

std::string Device::id() const {
  if (backend() == Backend::cpu) return "cpu";
  return std::string(backend_name(backend())) + ":" + std::to_string(info().index);
}

namespace {

// Backends are probed lazily, each once: device("cpu") (and so KILN_DEVICE=cpu) starts neither
// Vulkan nor CUDA; devices() and backend_status() probe them all. Never destroyed, so devices
// outlive every static that may still hold a tensor.
struct BackendSlot {
  std::once_flag once;
  std::vector<std::unique_ptr<Device>> owned;
  BackendStatus status;
};

struct DeviceList {
  BackendSlot slots[3];  // indexed by kProbeOrder position
  std::once_flag all_once;
  std::vector<Device*> devices;
  std::vector<BackendStatus> status;
};

constexpr Backend kProbeOrder[] = {Backend::cuda, Backend::vulkan, Backend::cpu};

DeviceList& device_list() {
  static DeviceList* list = new DeviceList;
  return *list;
}

BackendSlot& probed(Backend backend) {
  DeviceList& l = device_list();
  const std::size_t i = backend == Backend::cuda ? 0 : backend == Backend::vulkan ? 1 : 2;
  BackendSlot& slot = l.slots[i];
  std::call_once(slot.once, [&] {
    detail::BackendProbe p;
    try {
      p = backend == Backend::cuda ? detail::probe_cuda() : backend == Backend::vulkan ? detail::probe_vulkan()
                                                                                       : detail::probe_cpu();
    } catch (const std::exception& e) {
      p.devices.clear();
      p.unavailable_reason = e.what();
    }
    slot.status = {backend, !p.devices.empty(), p.unavailable_reason};
    slot.owned = std::move(p.devices);
  });
  return slot;
}

const DeviceList& all_probed() {
  DeviceList& l = device_list();
  std::call_once(l.all_once, [&] {
    for (Backend b : kProbeOrder) {
      BackendSlot& slot = probed(b);
      l.status.push_back(slot.status);
      for (auto& d : slot.owned) l.devices.push_back(d.get());
    }
  });
  return l;
}

}  // namespace

const std::vector<Device*>& devices() { return all_probed().devices; }
std::vector<BackendStatus> backend_status() { return all_probed().status; }

Device& device(std::string_view id) {
  // Only the backend the id names is probed.
  for (Backend b : kProbeOrder) {
    const std::string_view name = backend_name(b);
    if (id.substr(0, name.size()) != name) continue;
    BackendSlot& slot = probed(b);
    for (const auto& d : slot.owned)
      if (d->id() == id || (b == Backend::cpu && id == "cpu:0")) return *d;
    fail(ErrorCode::device_unavailable,
         fmt::format("device '{}' is not available: {}", id,
                     slot.status.available ? "no device with that index" : slot.status.reason));
  }
  fail(ErrorCode::device_unavailable, fmt::format("device '{}' is not available: ids are cpu, cuda:N and vulkan:N", id));
}

Device& default_device() {
  if (const char* env = std::getenv("KILN_DEVICE"); env && *env) {
    // Surrounding spaces are not part of the id (KILN_DEVICE=" vulkan:0" from a shell script).
    std::string_view id = env;
    while (!id.empty() && std::isspace(static_cast<unsigned char>(id.front()))) id.remove_prefix(1);
    while (!id.empty() && std::isspace(static_cast<unsigned char>(id.back()))) id.remove_suffix(1);
    try {
      return device(id);
    } catch (const Error& e) {
      if (e.code() != ErrorCode::device_unavailable) throw;
      std::string ids;
      for (Device* d : devices()) ids.append(ids.empty() ? "" : ", ").append(d->id());
      fail(ErrorCode::device_unavailable,
           fmt::format("KILN_DEVICE=\"{}\": {} (devices here: {})", env, e.what(),
                       ids.empty() ? "none" : ids));
    }
  }
  for (Backend b : {Backend::cuda, Backend::vulkan, Backend::cpu})
    for (Device* d : devices())
      if (d->backend() == b) return *d;
  fail(ErrorCode::device_unavailable, "no device is available");
}

}  // namespace kiln
