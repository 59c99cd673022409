// Reports: the device list, the results table and the JSON file.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/bench.hpp"
#include "runtime/error.hpp"

#ifndef KILN_GIT_COMMIT
#define KILN_GIT_COMMIT "unknown"
#endif
#ifndef KILN_VERSION
#define KILN_VERSION "unknown"
#endif
#ifndef KILN_BUILD_TYPE
#define KILN_BUILD_TYPE "unknown"
#endif

namespace kiln::bench {

bool Result::failed() const {
  return check.state == CheckResult::State::fail || check.state == CheckResult::State::error ||
         (check.state == CheckResult::State::pass && !timing.ok);
}

std::string format_bytes(std::uint64_t bytes) {
  const double b = double(bytes);
  if (bytes >= (1ull << 30)) return fmt::format("{:.1f} GiB", b / double(1ull << 30));
  if (bytes >= (1ull << 20)) return fmt::format("{:.1f} MiB", b / double(1ull << 20));
  if (bytes >= (1ull << 10)) return fmt::format("{:.1f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", bytes);
}

namespace {

std::string dtype_list(const std::vector<DType>& ds) {
  std::string s;
  for (DType d : ds) s += (s.empty() ? "" : " ") + std::string(dtype_name(d));
  return s.empty() ? "-" : s;
}

std::string fmt_us(double us) {
  return us >= 1e5 ? fmt::format("{:.0f}", us) : us >= 100 ? fmt::format("{:.1f}", us) : fmt::format("{:.2f}", us);
}

nlohmann::json dtype_names(const std::vector<DType>& ds) {
  nlohmann::json a = nlohmann::json::array();
  for (DType d : ds) a.push_back(std::string(dtype_name(d)));
  return a;
}

nlohmann::json device_json(const DeviceInfo& d, const std::string& id) {
  return {{"id", id},
          {"backend", std::string(backend_name(d.backend))},
          {"name", d.name},
          {"arch", d.arch},
          {"driver", d.driver},
          {"memory_bytes", d.memory_bytes},
          {"max_allocation_bytes", d.max_allocation_bytes},
          {"subgroup_size", d.subgroup_size},
          {"dtypes", dtype_names(d.dtypes)}};
}

}  // namespace

void print_devices() {
  const auto& devs = devices();
  fmt::print("Devices ({}):\n", devs.size());
  for (const Device* d : devs) {
    const DeviceInfo& i = d->info();
    fmt::print("  {:<10} {}\n", d->id(), i.name);
    fmt::print("             arch {}, driver {}, subgroup size {}\n", i.arch.empty() ? "-" : i.arch,
               i.driver.empty() ? "-" : i.driver, i.subgroup_size);
    fmt::print("             memory {}, max allocation {}\n", format_bytes(i.memory_bytes),
               format_bytes(i.max_allocation_bytes));
    fmt::print("             dtypes {}\n", dtype_list(i.dtypes));
  }
  bool header = false;
  for (const BackendStatus& s : backend_status()) {
    if (s.available) continue;
    if (!header) fmt::print("Unavailable backends:\n");
    header = true;
    fmt::print("  {:<10} {}\n", backend_name(s.backend), s.reason.empty() ? "(no reason given)" : s.reason);
  }
}

void print_table(const RunInfo& run, const std::vector<Result>& results) {
  const DeviceInfo& d = *run.device;
  bool batch = false;
  for (const Result& r : results) batch = batch || r.timing.batch_us > 0;
  fmt::print("kiln-bench {} ({}, {}) on {}: {} [{}, driver {}]\n", KILN_VERSION, KILN_GIT_COMMIT, KILN_BUILD_TYPE,
             run.device_id, d.name, d.arch, d.driver);
  fmt::print("{} elements per case, up to {} timed repeats after {} warm-up; device time of each run, median of the "
             "repeats{}\n\n", run.elements, run.repeats, run.warmup,
             batch ? "; batch: the repeats back to back between one pair of events" : "");
  fmt::print("{:<22} {:>10} {:>5} {:>11} {:>11} {:>11} {:>9} {:>7}{}  {}\n", "case", "bytes", "reps", "median us",
             "min us", "max us", "GB/s", "% copy", batch ? fmt::format(" {:>10}", "batch GB/s") : "", "check");
  std::vector<const Result*> notes;
  for (const Result& r : results) {
    std::string check = check_state_name(r.check.state);
    if (r.timing.ok) {
      const std::string pct = r.pct_of_copy ? fmt::format("{:.1f}", *r.pct_of_copy) : "-";
      std::string b;
      if (batch)
        b = r.timing.batch_us > 0
                ? fmt::format(" {:>10.2f}", double(r.bytes) / (r.timing.batch_us * 1e-6) / 1e9) : fmt::format(" {:>10}", "-");
      fmt::print("{:<22} {:>10} {:>5} {:>11} {:>11} {:>11} {:>9.2f} {:>7}{}  {}\n", r.bench->name,
                 format_bytes(r.bytes), r.timing.samples_us.size(), fmt_us(r.timing.median_us),
                 fmt_us(r.timing.min_us), fmt_us(r.timing.max_us), r.gbps, pct, b, check);
    } else {
      fmt::print("{:<22} {:>10} {:>5} {:>11} {:>11} {:>11} {:>9} {:>7}{}  {}\n", r.bench->name, format_bytes(r.bytes),
                 "-", "-", "-", "-", "-", "-", batch ? fmt::format(" {:>10}", "-") : "",
                 r.timing.error.empty() ? check : check + ", not timed");
    }
    if (!r.check.message.empty() || !r.timing.error.empty()) notes.push_back(&r);
  }
  if (!notes.empty()) fmt::print("\n");
  for (const Result* r : notes) {
    if (!r->check.message.empty()) {
      std::string msg = r->check.message;
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      fmt::print("{} ({}): {}\n", r->bench->name, check_state_name(r->check.state), msg);
    }
    if (!r->timing.error.empty()) fmt::print("{} (timing): {}\n", r->bench->name, r->timing.error);
  }
  int failed = 0;
  for (const Result& r : results) failed += r.failed();
  fmt::print("\n{} case(s), {} failed, {:.1f} s\n", results.size(), failed, run.total_s);
}

void write_json(const std::string& path, const RunInfo& run, const std::vector<Result>& results) {
  nlohmann::json j;
  j["kiln"] = {{"version", KILN_VERSION}, {"commit", KILN_GIT_COMMIT}, {"build_type", KILN_BUILD_TYPE}};
  j["timestamp"] = run.timestamp;
  j["device"] = device_json(*run.device, run.device_id);
  j["config"] = {{"elements", run.elements}, {"repeats", run.repeats}, {"warmup", run.warmup},
                 {"timer", run.device->backend == Backend::cpu ? "host steady_clock"
                           : run.device->backend == Backend::cuda ? "CUDA events" : "Vulkan timestamp queries"}};
  j["total_seconds"] = run.total_s;
  nlohmann::json cases = nlohmann::json::array();
  int failed = 0;
  for (const Result& r : results) {
    failed += r.failed();
    const BenchCase& b = *r.bench;
    const nlohmann::json in = dtype_names(b.input_dtypes());
    nlohmann::json c = {{"name", b.name},
                        {"kind", kind_name(b.kind)},
                        {"expr", b.expr_text},
                        {"inputs", in},
                        {"output", std::string(dtype_name(b.output_dtype()))},
                        {"elements", r.elements},
                        {"bytes", r.bytes},
                        {"check", check_state_name(r.check.state)},
                        {"failed", r.failed()},
                        {"wall_seconds", r.wall_s}};
    if (!r.check.message.empty()) c["check_message"] = r.check.message;
    if (b.conf) c["conformance_case"] = b.conf->name();
    if (r.timing.ok) {
      c["buffer_sets"] = r.timing.sets;
      c["time_us"] = {{"median", r.timing.median_us}, {"min", r.timing.min_us}, {"max", r.timing.max_us}};
      c["samples_us"] = r.timing.samples_us;
      c["host_us_per_run"] = r.timing.host_us;
      if (r.timing.batch_us > 0) {
        c["batch_us_per_run"] = r.timing.batch_us;
        c["batch_gb_per_s"] = double(r.bytes) / (r.timing.batch_us * 1e-6) / 1e9;
      }
      c["gb_per_s"] = r.gbps;
      c["pct_of_copy"] = r.pct_of_copy ? nlohmann::json(*r.pct_of_copy) : nlohmann::json(nullptr);
    } else {
      c["time_error"] = r.timing.error;
    }
    cases.push_back(std::move(c));
  }
  j["cases"] = std::move(cases);
  j["failed"] = failed;

  namespace fs = std::filesystem;
  const fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(ErrorCode::io_error, fmt::format("kiln-bench: cannot write {}", tmp.string()));
    f << j.dump(2) << "\n";
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      fail(ErrorCode::io_error, fmt::format("kiln-bench: writing {} failed", tmp.string()));
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail(ErrorCode::io_error, fmt::format("kiln-bench: cannot move the report to {}: {}", path, ec.message()));
  }
}

}  // namespace kiln::bench
