// kiln-bench: the command line.
//   kiln-bench [run] [--device ID] [--op LIST] [--dtype LIST] [--filter TEXT] [--all] [--size LIST]
//              [--repeats R] [--warmup W] [--warmup-ms MS] [--batch|--no-batch] [--batches B] [--no-peaks]
//              [--peer torch] [--json FILE] [--csv FILE] [--plot FILE.svg]
//   kiln-bench list [filters]            the cases (default ones marked *)
//   kiln-bench devices                   every device, and why unavailable backends are
//   kiln-bench peaks [--device ID]       the measured peaks only
//   kiln-bench compare A.json B.json [--threshold PCT] [--fail-on-slower]
//   kiln-bench plot REPORT.json --out FILE.svg
//   kiln-bench support [--out docs/ops.md]
//   kiln-bench plan [--device ID] [--filter TEXT]   kiln::jit's fusion plan of the sample functions
//   kiln-bench micro [Google Benchmark flags]   (runs kiln-bench-micro)
// Exit status: 0 fine, 1 a check failed or a case could not run, 2 bad usage or device.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/bench.hpp"
#include "core/error.hpp"

using namespace kiln;
using namespace kiln::bench;

namespace {

std::vector<std::string> split_list(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const std::string& item : items) {
    std::size_t start = 0;
    while (start <= item.size()) {
      const std::size_t comma = std::min(item.find(',', start), item.size());
      if (comma > start) out.push_back(item.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

int list_cases(const Selection& sel, const std::vector<BenchCase>& user) {
  const std::vector<BenchCase> all = user.empty() ? bench_cases() : user;
  Selection s = sel;
  const bool filtered = !s.ops.empty() || !s.dtypes.empty() || !s.filter.empty();
  if (!filtered) s.all = true;  // list shows the catalogue; * marks the default run
  const auto chosen = select_cases(all, s);
  fmt::print("{:<2}{:<26} {:<6} {:>9} {:>9}  {}\n", "", "case", "kind", "bytes/el", "FLOP/el", "expression");
  for (const BenchCase* c : chosen)
    fmt::print("{:<2}{:<26} {:<6} {:>9} {:>9}  {}\n", c->in_default ? "*" : "", c->name, kind_name(c->kind),
               c->bytes(1), c->flops_per_element(), c->expr_text);
  fmt::print("{} case(s); * = in the default run (kiln-bench run --all runs every case)\n", chosen.size());
  return 0;
}

int run_micro(const std::vector<std::string>& args) {
  char self[PATH_MAX];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  std::filesystem::path micro = "kiln-bench-micro";
  if (len > 0) micro = std::filesystem::path(std::string(self, std::size_t(len))).parent_path() / "kiln-bench-micro";
  if (!std::filesystem::exists(micro)) {
    fmt::print(stderr, "kiln-bench: {} was not built (cmake --build build --target kiln-bench-micro; it needs "
                       "Google Benchmark: Debian libbenchmark-dev)\n",
               micro.string());
    return 2;
  }
  std::vector<std::string> argv_s{micro.string()};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  execv(micro.c_str(), argv.data());
  fmt::print(stderr, "kiln-bench: cannot run {}\n", micro.string());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln-bench: times Kiln's kernels against the peaks of the device, measured in the same run"};
  app.require_subcommand(0, 1);
  RunOptions opt;
  bool list_devices = false, list_flag = false, batch_on = false, batch_off = false, no_peaks = false;
  std::vector<std::string> ops, dtypes, sizes;
  app.add_flag("--devices", list_devices, "List the devices and the unavailable backends, then exit");
  app.add_flag("--list", list_flag, "List the cases, then exit (as kiln-bench list)");
  app.add_option("--device", opt.device_id, "Device id (cpu, vulkan:N, cuda:N); default: KILN_DEVICE or the first GPU");
  app.add_option("--op", ops, "Only these ops (comma-separated; copy and fused too)");
  app.add_option("--dtype", dtypes, "Only cases of these dtypes (comma-separated)");
  app.add_option("--filter", opt.selection.filter, "Only the cases whose name contains this text");
  app.add_flag("--all", opt.selection.all, "Every case of the catalogue (default: the curated set)");
  app.add_option("--size", sizes,
                 "Elements per case, a list (4M, 1<<22, 65536); default: 64M on GPUs, 4M on CPU Vulkan, 1M on the CPU");
  app.add_option("--repeats", opt.timing.repeats, "Timed repeats per case (default: 20 on GPUs, 5 on CPU devices)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--warmup", opt.timing.warmup, "Warm-up runs per case")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--warmup-ms", opt.timing.warmup_ms,
                 "Then warm up until this many milliseconds have passed (default: 300 on GPUs, so the clocks are up; 0 on CPUs)")
      ->check(CLI::Range(0.0, 60000.0));
  app.add_flag("--batch", batch_on, "Headline from back-to-back batches (default on GPUs)");
  app.add_flag("--no-batch", batch_off, "Headline from one pair of events per run")->excludes("--batch");
  app.add_option("--batches", opt.timing.batches, "Batches per case")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--budget", opt.timing.case_budget_s, "Soft limit of the timed part of one case, seconds")
      ->capture_default_str();
  app.add_flag("--no-peaks", no_peaks, "Do not measure the peaks (no fractions of peak)");
  app.add_option("--peer", opt.peer, "Also time the cases with a peer: torch (eager and torch.compile)");
  std::string manifest, user_expr, user_dtypes;
  app.add_option("--manifest", manifest, "Time every kernel of this manifest (yours) instead of the catalogue")
      ->check(CLI::ExistingFile);
  app.add_option("--expr", user_expr, "Time this expression (with --dtypes) instead of the catalogue");
  app.add_option("--dtypes", user_dtypes, "The input dtypes of --expr, comma-separated (default f32 for each input used)");
  app.add_option("--json", opt.json, "Write the report as JSON");
  app.add_option("--csv", opt.csv, "Write the results as CSV");
  app.add_option("--plot", opt.plot, "Write a roofline chart (SVG)");

  auto* run_cmd = app.add_subcommand("run", "Run the cases (the default)")->fallthrough();
  auto* list_cmd = app.add_subcommand("list", "List the cases (with the filters)")->fallthrough();
  auto* dev_cmd = app.add_subcommand("devices", "List the devices and the unavailable backends");
  auto* peaks_cmd = app.add_subcommand("peaks", "Measure the device's peaks only")->fallthrough();
  auto* cmp_cmd = app.add_subcommand("compare", "Compare two JSON reports case by case");
  std::string cmp_a, cmp_b;
  double threshold = 2.0;
  bool fail_on_slower = false;
  cmp_cmd->add_option("A", cmp_a, "The baseline report")->required()->check(CLI::ExistingFile);
  cmp_cmd->add_option("B", cmp_b, "The new report")->required()->check(CLI::ExistingFile);
  cmp_cmd->add_option("--threshold", threshold, "Smallest change reported, percent (also: 2x the noise)")
      ->capture_default_str();
  cmp_cmd->add_flag("--fail-on-slower", fail_on_slower, "Exit 1 when a case is slower beyond the noise");
  auto* plot_cmd = app.add_subcommand("plot", "Draw the roofline of a JSON report");
  std::string plot_in, plot_out;
  plot_cmd->add_option("REPORT", plot_in, "A kiln-bench JSON report")->required()->check(CLI::ExistingFile);
  plot_cmd->add_option("--out", plot_out, "The SVG file")->required();
  auto* sup_cmd = app.add_subcommand("support", "Write the op x dtype x backend support matrix (Markdown)");
  std::string sup_out;
  sup_cmd->add_option("--out", sup_out, "The file (default: stdout), e.g. docs/ops.md");
  auto* plan_cmd = app.add_subcommand("plan", "Print kiln::jit's fusion plan of the sample functions (bench/jit.cpp)")
                       ->fallthrough();
  auto* micro_cmd = app.add_subcommand("micro", "Host-side micro-benchmarks (kiln-bench-micro; Google Benchmark flags)");
  micro_cmd->prefix_command();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  try {
    for (const std::string& s : split_list(ops)) opt.selection.ops.push_back(s);
    for (const std::string& s : split_list(dtypes)) {
      const auto t = parse_dtype(s);
      if (!t) {
        fmt::print(stderr, "kiln-bench: unknown dtype '{}'\n", s);
        return 2;
      }
      opt.selection.dtypes.push_back(*t);
    }
    for (const std::string& s : split_list(sizes)) {
      const auto n = parse_count(s);
      if (!n || *n == 0 || *n > (1ull << 32)) {
        fmt::print(stderr, "kiln-bench: bad --size '{}' (1 to 4G elements, e.g. 4M, 1<<22, 65536)\n", s);
        return 2;
      }
      opt.sizes.push_back(*n);
    }
    if (!manifest.empty()) opt.user_cases = manifest_cases(manifest);
    if (!user_expr.empty()) {
      std::vector<DType> ds;
      for (const std::string& s : split_list({user_dtypes})) {
        const auto t = parse_dtype(s);
        if (!t) {
          fmt::print(stderr, "kiln-bench: bad --dtypes entry '{}'\n", s);
          return 2;
        }
        ds.push_back(*t);
      }
      if (ds.empty()) ds.assign(4, DType::f32);  // x, y, z, w: f32; unused ones are dropped below
      BenchCase b = expr_case(user_expr, ds);
      if (user_dtypes.empty()) {  // only the inputs the expression uses
        std::vector<DType> used;
        for (const Node& n : b.expr.nodes())
          if (n.kind == NodeKind::input) used.resize(std::max<std::size_t>(used.size(), std::size_t(n.input) + 1), DType::f32);
        b = expr_case(user_expr, used);
      }
      opt.user_cases.push_back(std::move(b));
    } else if (!user_dtypes.empty()) {
      fmt::print(stderr, "kiln-bench: --dtypes goes with --expr\n");
      return 2;
    }
    opt.repeats_given = app.count("--repeats") > 0;
    opt.timing.warmup_ms_given = app.count("--warmup-ms") > 0;
    opt.batch_given = batch_on || batch_off;
    opt.timing.batch = batch_on || !batch_off;
    opt.peaks = !no_peaks;

    if (*micro_cmd) return run_micro(micro_cmd->remaining());
    if (list_devices || *dev_cmd) {
      print_devices();
      return 0;
    }
    if (list_flag || *list_cmd) return list_cases(opt.selection, opt.user_cases);
    if (*peaks_cmd) return run_peaks(opt);
    if (*plan_cmd) {
      Device* dev = pick_device(opt.device_id);
      return dev ? print_jit_plans(*dev, opt.selection.filter, opt.sizes.empty() ? 1u << 20 : opt.sizes[0]) : 2;
    }
    if (*cmp_cmd) return compare_reports(cmp_a, cmp_b, threshold, fail_on_slower);
    if (*plot_cmd) {
      write_file(plot_out, roofline_svg(read_json(plot_in)));
      fmt::print("wrote {}\n", plot_out);
      return 0;
    }
    if (*sup_cmd) {
      const std::string md = support_markdown();
      if (sup_out.empty()) fmt::print("{}", md);
      else {
        write_file(sup_out, md);
        fmt::print("wrote {}\n", sup_out);
      }
      return 0;
    }
    (void)run_cmd;
    return run_bench(opt);
  } catch (const Error& e) {
    fmt::print(stderr, "kiln-bench: [{}] {}\n", error_code_name(e.code()), e.what());
    return e.code() == ErrorCode::device_unavailable || e.code() == ErrorCode::invalid_argument ||
                   e.code() == ErrorCode::parse_error || e.code() == ErrorCode::dtype_mismatch
               ? 2
               : 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln-bench: {}\n", e.what());
    return 1;
  }
}
