#include "runtime/device.hpp"

#include <cctype>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "core/error.hpp"
#include "runtime/backends.hpp"

namespace kiln {

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::cpu: return "cpu";
    case Backend::vulkan: return "vulkan";
    case Backend::cuda: return "cuda";
  }
  return "?";
}

std::string Device::id() const {
  if (backend() == Backend::cpu) return "cpu";
  return std::string(backend_name(backend())) + ":" + std::to_string(info().index);
}

namespace {

struct DeviceList {
  std::vector<std::unique_ptr<Device>> owned;
  std::vector<Device*> devices;
  std::vector<BackendStatus> status;
};

DeviceList& device_list() {
  // Built once; never destroyed, so devices outlive every static that may still hold a tensor.
  static DeviceList* list = [] {
    auto* l = new DeviceList;
    const std::pair<Backend, detail::BackendProbe (*)()> probes[] = {
        {Backend::cuda, detail::probe_cuda},
        {Backend::vulkan, detail::probe_vulkan},
        {Backend::cpu, detail::probe_cpu},
    };
    for (auto [backend, probe] : probes) {
      detail::BackendProbe p;
      try {
        p = probe();
      } catch (const std::exception& e) {
        p.devices.clear();
        p.unavailable_reason = e.what();
      }
      l->status.push_back({backend, !p.devices.empty(), p.unavailable_reason});
      for (auto& d : p.devices) {
        l->devices.push_back(d.get());
        l->owned.push_back(std::move(d));
      }
    }
    return l;
  }();
  return *list;
}

}  // namespace

const std::vector<Device*>& devices() { return device_list().devices; }
std::vector<BackendStatus> backend_status() { return device_list().status; }

Device& device(std::string_view id) {
  auto& list = device_list();
  for (Device* d : list.devices)
    if (d->id() == id || (d->backend() == Backend::cpu && id == "cpu:0")) return *d;
  std::string why;
  for (const auto& s : list.status)
    if (id.substr(0, backend_name(s.backend).size()) == backend_name(s.backend))
      why = s.available ? "no device with that index" : s.reason;
  fail(ErrorCode::device_unavailable,
       "device '" + std::string(id) + "' is not available" + (why.empty() ? "" : ": " + why));
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
           fmt::format("KILN_DEVICE=\"{}\": {} (devices here: {}; ids are cpu, cuda:N, vulkan:N)", env, e.what(),
                       ids.empty() ? "none" : ids));
    }
  }
  for (Backend b : {Backend::cuda, Backend::vulkan, Backend::cpu})
    for (Device* d : devices())
      if (d->backend() == b) return *d;
  fail(ErrorCode::device_unavailable, "no device is available");
}

}  // namespace kiln
