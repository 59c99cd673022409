// Reports on the terminal: the device list, the peaks and the results table.
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "bench/version.hpp"
#include "core/error.hpp"

namespace kiln::bench {

bool Result::failed() const {
  return check.state == CheckResult::State::fail || check.state == CheckResult::State::error ||
         (check.state == CheckResult::State::pass && !timing.ok) ||
         (timing.ok && (verify.state == CheckResult::State::fail || verify.state == CheckResult::State::error));
}

std::string format_bytes(std::uint64_t bytes) {
  const double b = double(bytes);
  if (bytes >= (1ull << 30)) return fmt::format("{:.1f} GiB", b / double(1ull << 30));
  if (bytes >= (1ull << 20)) return fmt::format("{:.1f} MiB", b / double(1ull << 20));
  if (bytes >= (1ull << 10)) return fmt::format("{:.1f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", bytes);
}

std::string format_count(std::uint64_t n) {
  if (n && n % (1ull << 30) == 0) return fmt::format("{}G", n >> 30);
  if (n && n % (1ull << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n && n % (1ull << 10) == 0) return fmt::format("{}K", n >> 10);
  return fmt::format("{}", n);
}

std::optional<std::uint64_t> parse_count(const std::string& s) {
  if (s.empty()) return std::nullopt;
  const auto shift = s.find("<<");
  char* end = nullptr;
  if (shift != std::string::npos) {
    const unsigned long long base = std::strtoull(s.c_str(), &end, 10);
    if (end != s.c_str() + shift) return std::nullopt;
    const unsigned long long sh = std::strtoull(s.c_str() + shift + 2, &end, 10);
    if (*end || sh > 40) return std::nullopt;
    return std::uint64_t(base) << sh;
  }
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) return std::nullopt;
  std::uint64_t mult = 1;
  if (*end == 'K' || *end == 'k') mult = 1ull << 10, ++end;
  else if (*end == 'M' || *end == 'm') mult = 1ull << 20, ++end;
  else if (*end == 'G' || *end == 'g') mult = 1ull << 30, ++end;
  if (*end) return std::nullopt;
  return std::uint64_t(v) * mult;
}

namespace {

std::string dtype_list(const std::vector<DType>& ds) {
  std::string s;
  for (DType d : ds) s.append(s.empty() ? "" : " ").append(dtype_name(d));
  return s.empty() ? "-" : s;
}

std::string fmt_us(double us) {
  return us >= 1e5 ? fmt::format("{:.0f}", us) : us >= 100 ? fmt::format("{:.1f}", us) : fmt::format("{:.2f}", us);
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
    if (i.backend == Backend::vulkan)
      fmt::print("             cooperative matrices: {} (reported: {})\n",
                 i.cooperative_matrix.m ? fmt::format("{}x{}x{} f16 fragments", i.cooperative_matrix.m,
                                                      i.cooperative_matrix.n, i.cooperative_matrix.k)
                                        : std::string("not used"),
                 i.matrix_shapes.empty() ? "none" : i.matrix_shapes);
  }
  bool header = false;
  for (const BackendStatus& s : backend_status()) {
    if (s.available) continue;
    if (!header) fmt::print("Unavailable backends:\n");
    header = true;
    fmt::print("  {:<10} {}\n", backend_name(s.backend), s.reason.empty() ? "(no reason given)" : s.reason);
  }
}

void print_peaks(const Peaks& p) {
  for (const Peak& k : p.list) {
    if (k.error.empty())
      fmt::print("  {:<14} {:>10.2f} {:<8} {}  [{} median of {}, noise {:.1f}%]\n", k.name, k.value, k.unit, k.what,
                 k.timing.mode(), k.timing.headline().samples_us.size(), 100 * k.timing.headline().noise());
    else
      fmt::print("  {:<14} {:>10} {:<8} {}: {}\n", k.name, "-", k.unit, k.what, k.error);
  }
  fmt::print("  roofs: bandwidth {:.2f} GB/s ({}), compute {:.2f} GFLOP/s ({})\n", p.bandwidth_gbps,
             p.bandwidth_from.empty() ? "not measured" : p.bandwidth_from, p.gflops,
             p.gflops_from.empty() ? "not measured" : p.gflops_from);
}

namespace {

std::string opt_pct(const std::optional<double>& v) { return v ? fmt::format("{:.1f}", *v) : "-"; }

// Kiln / peer speed: peer time / Kiln time (above 1: Kiln is faster).
std::string peer_cell(const Result& r, const std::string& name) {
  for (const PeerResult& p : r.peers)
    if (p.peer == name) return p.ok && r.time_us > 0 ? fmt::format("{:.2f}x", p.time.median_us / r.time_us) : "n/a";
  return "n/a";
}

}  // namespace

void print_table(const RunInfo& run, const std::vector<Result>& results) {
  const DeviceInfo& d = *run.device;
  fmt::print("kiln-bench {} ({}, {}) on {}: {} [{}, driver {}]\n", kVersion, kGitCommit, kBuildType,
             run.device_id, d.name, d.arch, d.driver);
  fmt::print("timing: {} warm-up, up to {} repeats{}; device time per run, median (min, max); "
             "inputs rotate through up to 3 buffer sets\n",
             run.timing.warmup, run.timing.repeats,
             run.timing.batch ? fmt::format(", headline = {} batches of the repeats back to back", run.timing.batches)
                              : ", headline = one pair of events per run");
  if (!run.peaks.list.empty()) {
    fmt::print("peaks measured in this run:\n");
    print_peaks(run.peaks);
  }
  const bool peer = !run.peer.empty();
  fmt::print("\n{:<24} {:>6} {:>10} {:>10} {:>10} {:>6} {:>9} {:>6} {:>9} {:>6}{}  {}\n", "case", "elems", "median us",
             "min us", "max us", "noise%", "GB/s", "%bw", "GFLOP/s", "%flop",
             peer ? fmt::format(" {:>8} {:>8}", "eager", "compile") : "", "check");
  std::vector<const Result*> notes;
  for (const Result& r : results) {
    std::string check = check_state_name(r.check.state);
    if (r.check.state == CheckResult::State::pass && r.timing.ok) check += fmt::format("/{}", check_state_name(r.verify.state));
    const std::string peers =
        peer ? fmt::format(" {:>8} {:>8}", peer_cell(r, "torch.eager"), peer_cell(r, "torch.compile")) : "";
    if (r.timing.ok) {
      const Stats& s = r.timing.headline();
      fmt::print("{:<24} {:>6} {:>10} {:>10} {:>10} {:>6.1f} {:>9.2f} {:>6} {:>9} {:>6}{}  {}\n", r.bench->name,
                 format_count(r.elements), fmt_us(s.median_us), fmt_us(s.min_us), fmt_us(s.max_us), 100 * s.noise(),
                 r.gbps, opt_pct(r.pct_bw), r.flops > 0 ? fmt::format("{:.2f}", r.gflops) : "-", opt_pct(r.pct_flops),
                 peers, check);
    } else {
      fmt::print("{:<24} {:>6} {:>10} {:>10} {:>10} {:>6} {:>9} {:>6} {:>9} {:>6}{}  {}\n", r.bench->name,
                 format_count(r.elements), "-", "-", "-", "-", "-", "-", "-", "-", peers,
                 r.timing.error.empty() ? check : check + ", not timed");
    }
    if (!r.check.message.empty() || !r.timing.error.empty() || !r.verify.message.empty() || r.bench->shaped)
      notes.push_back(&r);
  }
  if (!notes.empty()) fmt::print("\n");
  for (const Result* r : notes) {
    for (const CheckResult* c : {&r->check, &r->verify}) {
      if (c->message.empty()) continue;
      std::string msg = c->message;
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      fmt::print("{} ({}): {}\n", r->bench->name, check_state_name(c->state), msg);
    }
    if (!r->timing.error.empty()) fmt::print("{} (timing): {}\n", r->bench->name, r->timing.error);
    if (r->bench->shaped && r->timing.ok && !r->bench->shaped->note().empty())
      fmt::print("{} ({}): {}\n", r->bench->name, kind_name(r->bench->kind), r->bench->shaped->note());
    if (r->bench->kind == CaseKind::contract && r->timing.ok) {
      const std::string kernel =
          r->library              ? "cuBLASLt"
          : r->wgmma              ? fmt::format("Kiln's Hopper kernel (wgmma + {}, {} tiles, 4 stages)",
                                                r->bench->name.rfind("conv.", 0) == 0 ? "gathered windows" : "TMA", r->tile)
          : r->tensor_cores       ? fmt::format("Kiln's tensor-core kernel (mma.sync, {} tiles)", r->tile)
          : !r->coopmat.empty()   ? fmt::format("Kiln's cooperative-matrix kernel (VK_NV_cooperative_matrix, {} "
                                                "fragments, {} tiles)", r->coopmat, r->tile)
          : r->tile.empty()       ? std::string("Kiln's kernel")  // (the CPU backend: no tiles)
                                  : fmt::format("Kiln's kernel ({} tiles)", r->tile);
      fmt::print("{} (contraction): {}, {} operand copies while timed\n", r->bench->name, kernel, r->copies);
    }
  }
  fmt::print("\n%bw: of the bandwidth roof; %flop: of the compute roof (1 FLOP per arithmetic node; casts and "
             "selects 0); check: before timing/timed output sampled\n");
  if (peer)
    fmt::print("eager, compile: Kiln's speed over PyTorch's (peer time / Kiln time; above 1: Kiln is faster){}\n",
               run.peer_status.empty() ? "" : "\npeer " + run.peer + ": " + run.peer_status);
  int failed = 0;
  for (const Result& r : results) failed += r.failed();
  fmt::print("{} case(s), {} failed, {:.1f} s\n", results.size(), failed, run.total_s);
}

}  // namespace kiln::bench
