// The run: device and cases chosen, peaks measured, every case checked, timed and verified, the
// peer run, then the table and the files.
#include <chrono>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "runtime/contract.hpp"
#include "core/error.hpp"

namespace kiln::bench {

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
    for (const Device* d : devices()) s.append(s.empty() ? "" : ", ").append(d->id());
  } catch (const std::exception&) {
  }
  return s.empty() ? "(none)" : s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TimingOptions timing_for(const Device& dev, const RunOptions& opt) {
  TimingOptions t = opt.timing;
  t.repeats_given = opt.repeats_given;
  if (!opt.repeats_given) t.repeats = host_like(dev) ? 5 : 20;
  if (!opt.batch_given) t.batch = !host_like(dev);
  if (!opt.timing.warmup_ms_given) t.warmup_ms = host_like(dev) ? 0 : 300;
  return t;
}

PeakOptions peak_options(const Device& dev, const RunOptions& opt, const TimingOptions& t) {
  PeakOptions p;
  p.timing = t;
  p.copy_elements = default_elements(dev);
  for (std::uint64_t n : opt.sizes) p.copy_elements = std::max(p.copy_elements, n);
  // The CPU backend interprets expressions: a smaller FMA run keeps the peak quick.
  p.fma_elements = dev.backend() == Backend::cpu ? default_elements(dev) / 16 : default_elements(dev);
  return p;
}

Peaks peaks_with_progress(Device& dev, const PeakOptions& p, std::chrono::steady_clock::time_point t0) {
  return measure_peaks(dev, p, [&](const std::string& name) {
    fmt::print(stderr, "[peak] {:<28} (elapsed {:.1f} s)\n", name, seconds_since(t0));
  });
}

}  // namespace

bool host_like(const Device& d) {
  return d.backend() == Backend::cpu ||
         (d.backend() == Backend::vulkan && d.info().arch.find("cpu") != std::string::npos);
}

std::uint64_t default_elements(const Device& d) {
  if (d.backend() == Backend::cpu) return 1ull << 20;
  if (host_like(d)) return 1ull << 22;
  return 1ull << 26;
}

Device* pick_device(const std::string& id) {
  try {
    return id.empty() ? &default_device() : &device(id);
  } catch (const Error& e) {
    fmt::print(stderr, "kiln-bench: {}\navailable devices: {}\n", e.what(), available_ids());
    return nullptr;
  }
}

int run_peaks(const RunOptions& opt) {
  Device* dev = pick_device(opt.device_id);
  if (!dev) return 2;
  const TimingOptions t = timing_for(*dev, opt);
  const Peaks p = peaks_with_progress(*dev, peak_options(*dev, opt, t), std::chrono::steady_clock::now());
  fmt::print("Peaks of {} ({}):\n", dev->id(), dev->info().name);
  print_peaks(p);
  return p.bandwidth_gbps > 0 ? 0 : 1;
}

int run_bench(const RunOptions& opt) {
  Device* dev = pick_device(opt.device_id);
  if (!dev) return 2;
  const std::vector<BenchCase> all = opt.user_cases.empty() ? bench_cases() : opt.user_cases;
  Selection sel = opt.selection;
  if (!opt.user_cases.empty()) sel.all = true;  // every user kernel (filters still apply)
  const std::vector<const BenchCase*> chosen = select_cases(all, sel);
  if (chosen.empty()) {
    fmt::print(stderr, "kiln-bench: no case matches the filters (see kiln-bench list)\n");
    return 2;
  }

  RunInfo run;
  run.device_id = dev->id();
  run.device = &dev->info();
  run.sizes = opt.sizes.empty() ? std::vector<std::uint64_t>{default_elements(*dev)} : opt.sizes;
  run.timing = timing_for(*dev, opt);
  run.timestamp = utc_timestamp();
  run.peer = opt.peer;
  const std::size_t total = chosen.size() * run.sizes.size();
  fmt::print(stderr, "kiln-bench: {} ({}), {} case(s) x {} size(s), timing {}\n", run.device_id, run.device->name,
             chosen.size(), run.sizes.size(), run.timing.batch ? "batch (headline) + per run" : "per run");

  const auto t0 = std::chrono::steady_clock::now();
  if (opt.peaks) run.peaks = peaks_with_progress(*dev, peak_options(*dev, opt, run.timing), t0);

  std::vector<Result> results;
  std::size_t i = 0;
  for (std::uint64_t n : run.sizes)
    for (const BenchCase* cp : chosen) {
      const BenchCase& c = *cp;
      fmt::print(stderr, "[{:>3}/{}] {:<24} {:>6} (elapsed {:.1f} s)\n", ++i, total, c.name, format_count(n),
                 seconds_since(t0));
      const auto c0 = std::chrono::steady_clock::now();
      Result r;
      r.bench = &c;
      r.size = n;
      r.elements = c.elements(n);
      r.bytes = c.bytes(n);
      r.flops = c.flops(n);
      r.check = check_case(c, *dev);
      if (r.check.state == CheckResult::State::pass) {
        const std::uint64_t copies = contraction_copies(), library = contraction_library_runs(),
                            mma = contraction_tensor_core_runs(), wgmma = contraction_wgmma_runs(),
                            coopmat = contraction_coopmat_runs();
        r.timing = time_case(c, *dev, n, run.timing, &r.verify);
        r.copies = contraction_copies() - copies;
        r.library = contraction_library_runs() > library;
        r.tensor_cores = contraction_tensor_core_runs() > mma;
        r.wgmma = contraction_wgmma_runs() > wgmma;
        r.tile = contraction_last_tile();
        if (contraction_coopmat_runs() > coopmat) {
          bool emulated = false;
          const DeviceInfo::MatrixShape s = coopmat_on(*dev, &emulated);
          r.coopmat = fmt::format("{}x{}x{}{}", s.m, s.n, s.k, emulated ? " emulated" : "");
        }
      } else {
        r.verify.state = CheckResult::State::skipped;
        if (r.check.state == CheckResult::State::error) r.timing.error = "not timed: the check could not run";
        if (r.check.state == CheckResult::State::fail) r.timing.error = "not timed: the check failed";
      }
      if (r.timing.ok && r.timing.headline().median_us > 0) {
        r.time_us = r.timing.headline().median_us;
        r.gbps = double(r.bytes) / (r.time_us * 1e-6) / 1e9;
        r.gflops = r.flops / (r.time_us * 1e-6) / 1e9;
        if (run.peaks.bandwidth_gbps > 0) r.pct_bw = 100.0 * r.gbps / run.peaks.bandwidth_gbps;
        if (run.peaks.gflops > 0 && r.flops > 0) r.pct_flops = 100.0 * r.gflops / run.peaks.gflops;
      }
      r.wall_s = seconds_since(c0);
      if (r.failed()) {
        const std::string& m = !r.check.message.empty() ? r.check.message
                               : !r.verify.message.empty() ? r.verify.message : r.timing.error;
        fmt::print(stderr, "        {}: {}\n", r.check.state != CheckResult::State::pass
                                                   ? check_state_name(r.check.state) : check_state_name(r.verify.state),
                   m.substr(0, m.find('\n')));
      }
      results.push_back(std::move(r));
      // The report so far after every case: a run cut short by a time box keeps what it measured.
      if (!opt.json.empty() && i < total) {
        run.peer_status = fmt::format("not finished: this report was written after case {} of {}", i, total);
        run.total_s = seconds_since(t0);
        write_file(opt.json, report_json(run, results).dump(2) + "\n");
        run.peer_status.clear();
      }
    }
  if (!opt.peer.empty()) {
    // Kiln's figures are kept even when the peer is cut short (torch.compile autotunes each
    // reduction; a time-boxed GPU run lost a whole report to it): the JSON is written now, then
    // again with the peer's figures.
    if (!opt.json.empty()) {
      run.peer_status = "not finished: this report was written before the peer ran";
      run.total_s = seconds_since(t0);
      write_file(opt.json, report_json(run, results).dump(2) + "\n");
    }
    run.peer_status.clear();
    fmt::print(stderr, "[peer] {} (elapsed {:.1f} s)\n", opt.peer, seconds_since(t0));
    if (opt.peer == "torch") run_torch_peer(*dev, run, results, &run.peer_status);
    else run.peer_status = fmt::format("unknown peer '{}' (known: torch)", opt.peer);
  }
  run.total_s = seconds_since(t0);

  print_table(run, results);
  const nlohmann::json report = report_json(run, results);
  if (!opt.json.empty()) {
    write_file(opt.json, report.dump(2) + "\n");
    fmt::print("wrote {}\n", opt.json);
  }
  if (!opt.csv.empty()) {
    write_file(opt.csv, report_csv(report));
    fmt::print("wrote {}\n", opt.csv);
  }
  if (!opt.plot.empty()) {
    write_file(opt.plot, roofline_svg(report));
    fmt::print("wrote {}\n", opt.plot);
  }
  for (const Result& r : results)
    if (r.failed()) return 1;
  return 0;
}

}  // namespace kiln::bench
