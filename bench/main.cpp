// kiln-bench: profiles the copy kernel, single-op map kernels and fused chains on one device.
//   kiln-bench --devices
//   kiln-bench [--device ID] [--size N] [--repeats R] [--warmup W] [--json FILE] [--filter SUBSTR] [--list]
// Exit status: 0 all checks passed, 1 a check failed or a case could not run, 2 bad usage or device.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench.hpp"
#include "runtime/error.hpp"

using namespace kiln;
using namespace kiln::bench;

namespace {

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string available_ids() {
  std::string s;
  try {
    for (const Device* d : devices()) s += (s.empty() ? "" : ", ") + d->id();
  } catch (const std::exception&) {
  }
  return s.empty() ? "(none)" : s;
}

// Device sizes: beyond the last-level cache on GPUs; small where kernels run on the host CPU.
bool host_like(const Device& d) {
  return d.backend() == Backend::cpu || (d.backend() == Backend::vulkan && d.info().arch.find("cpu") != std::string::npos);
}

std::uint64_t default_elements(const Device& d) {
  if (d.backend() == Backend::cpu) return 1ull << 20;
  if (host_like(d)) return 1ull << 22;
  return 1ull << 26;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln-bench: times Kiln's kernels on one device against its copy bandwidth"};
  bool list_devices = false, list_cases = false, batch_on = false, batch_off = false;
  std::string device_id, json_path, filter;
  std::uint64_t size = 0;
  int repeats = 0, warmup = 2;
  app.add_flag("--devices", list_devices, "List the devices and the unavailable backends, then exit");
  app.add_flag("--list", list_cases, "List the benchmark cases, then exit");
  app.add_option("--device", device_id, "Device id (cpu, vulkan:N, cuda:N); default: KILN_DEVICE or the first GPU");
  app.add_option("--size", size, "Elements per case (default: 2^26 on GPUs, 2^22 on CPU Vulkan, 2^20 on the CPU)")
      ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 32));
  app.add_option("--repeats", repeats, "Timed repeats per case (default: 20 on GPUs, 5 on CPU devices)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--warmup", warmup, "Warm-up runs per case")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_flag("--batch", batch_on, "Also time the repeats back to back (default on GPUs)");
  app.add_flag("--no-batch", batch_off, "Do not time a back-to-back batch")->excludes("--batch");
  app.add_option("--json", json_path, "Write the results as JSON to this file");
  app.add_option("--filter", filter, "Only the cases whose name contains this text (the copy kernel always runs)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  try {
    if (list_devices) {
      print_devices();
      return 0;
    }
    std::vector<BenchCase> all = bench_cases();
    if (list_cases) {
      for (const BenchCase& c : all) fmt::print("{:<22} {:<6} {}\n", c.name, kind_name(c.kind), c.expr_text);
      return 0;
    }

    Device* dev = nullptr;
    try {
      dev = device_id.empty() ? &default_device() : &device(device_id);
    } catch (const Error& e) {
      fmt::print(stderr, "kiln-bench: {}\navailable devices: {}\n", e.what(), available_ids());
      return 2;
    }

    std::vector<const BenchCase*> chosen;
    for (const BenchCase& c : all)
      if (c.kind == CaseKind::copy || filter.empty() || c.name.find(filter) != std::string::npos) chosen.push_back(&c);
    if (!filter.empty() && chosen.size() == 1) {
      fmt::print(stderr, "kiln-bench: no case matches --filter '{}' (see --list)\n", filter);
      return 2;
    }

    TimingOptions opt;
    opt.elements = size ? size : default_elements(*dev);
    opt.repeats_given = repeats > 0;
    opt.repeats = repeats > 0 ? repeats : host_like(*dev) ? 5 : 20;
    opt.warmup = warmup;
    opt.batch = batch_on || (!batch_off && !host_like(*dev));

    RunInfo run;
    run.device_id = dev->id();
    run.device = &dev->info();
    run.elements = opt.elements;
    run.repeats = opt.repeats;
    run.warmup = opt.warmup;
    run.timestamp = utc_timestamp();
    fmt::print(stderr, "kiln-bench: {} ({}), {} elements, {} cases\n", run.device_id, run.device->name,
               run.elements, chosen.size());

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Result> results;
    std::optional<double> copy_gbps;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      const BenchCase& c = *chosen[i];
      fmt::print(stderr, "[{:>2}/{}] {:<22} (elapsed {:.1f} s)\n", i + 1, chosen.size(), c.name, seconds_since(t0));
      const auto c0 = std::chrono::steady_clock::now();
      Result r;
      r.bench = &c;
      r.elements = opt.elements;
      r.bytes = c.bytes(opt.elements);
      r.check = check_case(c, *dev);
      if (r.check.state != CheckResult::State::skipped && r.check.state != CheckResult::State::error)
        r.timing = time_case(c, *dev, opt);
      else
        r.timing.error = r.check.state == CheckResult::State::error ? "not timed: the check could not run" : "";
      if (r.timing.ok && r.timing.median_us > 0) {
        r.gbps = double(r.bytes) / (r.timing.median_us * 1e-6) / 1e9;
        if (c.kind == CaseKind::copy && r.check.state == CheckResult::State::pass) copy_gbps = r.gbps;
        if (copy_gbps && *copy_gbps > 0) r.pct_of_copy = 100.0 * r.gbps / *copy_gbps;
      }
      r.wall_s = seconds_since(c0);
      if (r.failed())
        fmt::print(stderr, "        {}: {}\n", check_state_name(r.check.state),
                   r.check.message.empty() ? r.timing.error : r.check.message.substr(0, r.check.message.find('\n')));
      results.push_back(std::move(r));
    }
    run.total_s = seconds_since(t0);

    print_table(run, results);
    if (!json_path.empty()) {
      write_json(json_path, run, results);
      fmt::print("wrote {}\n", json_path);
    }
    for (const Result& r : results)
      if (r.failed()) return 1;
    return 0;
  } catch (const Error& e) {
    fmt::print(stderr, "kiln-bench: [{}] {}\n", error_code_name(e.code()), e.what());
    return e.code() == ErrorCode::device_unavailable || e.code() == ErrorCode::invalid_argument ? 2 : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln-bench: {}\n", e.what());
    return 1;
  }
}
