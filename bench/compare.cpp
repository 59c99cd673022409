// kiln-bench compare A.json B.json: per case (name and size), the speed ratio of B over A (A's
// median time / B's), flagged as faster or slower when the change exceeds both --threshold and
// twice the larger relative noise (interquartile range / median) of the two runs.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "bench/bench.hpp"

namespace kiln::bench {

namespace {

struct Row {
  double median = 0, noise = 0;
  double pct_bw = -1;
  bool ok = false;
};

std::map<std::pair<std::string, std::uint64_t>, Row> rows_of(const nlohmann::json& rep) {
  std::map<std::pair<std::string, std::uint64_t>, Row> out;
  for (const auto& c : rep.at("cases")) {
    Row r;
    if (c.contains("time_us") && c.at("time_us").is_object()) {
      r.median = c.at("time_us").value("median", 0.0);
      r.noise = c.at("time_us").value("noise", 0.0);
      r.ok = r.median > 0 && !c.value("failed", false);
    }
    if (c.contains("pct_of_peak_bandwidth") && c.at("pct_of_peak_bandwidth").is_number())
      r.pct_bw = c.at("pct_of_peak_bandwidth").get<double>();
    out[{c.value("name", std::string("?")), c.value("elements", std::uint64_t(0))}] = r;
  }
  return out;
}

std::string describe(const nlohmann::json& rep) {
  const auto& d = rep.at("device");
  const auto& k = rep.value("kiln", nlohmann::json::object());
  return fmt::format("{} ({}), kiln {} {}, {}", d.value("id", "?"), d.value("name", "?"), k.value("commit", "?"),
                     k.value("build_type", "?"), rep.value("timestamp", "?"));
}

}  // namespace

int compare_reports(const std::string& a_path, const std::string& b_path, double min_change_pct, bool fail_on_slower) {
  const nlohmann::json a = read_json(a_path), b = read_json(b_path);
  fmt::print("A: {}  {}\nB: {}  {}\n", a_path, describe(a), b_path, describe(b));
  const auto pa = a.value("peaks", nlohmann::json::object()), pb = b.value("peaks", nlohmann::json::object());
  const double bwa = pa.value("bandwidth_gb_per_s", 0.0), bwb = pb.value("bandwidth_gb_per_s", 0.0);
  if (bwa > 0 && bwb > 0) {
    fmt::print("peak bandwidth: A {:.2f} GB/s, B {:.2f} GB/s (B/A {:.3f})", bwa, bwb, bwb / bwa);
    if (std::abs(bwb / bwa - 1) > 0.1) fmt::print("  -- the machines or their state differ: compare %bw too");
    fmt::print("\n");
  }
  if (a.at("device").value("name", "") != b.at("device").value("name", ""))
    fmt::print("note: different devices; the ratios compare machines, not code\n");

  const auto ra = rows_of(a), rb = rows_of(b);
  fmt::print("\n{:<24} {:>6} {:>11} {:>11} {:>8} {:>7} {:>7} {:>7} {:>7}  {}\n", "case", "elems", "A us", "B us",
             "B/A", "noiseA%", "noiseB%", "%bw A", "%bw B", "verdict");
  int faster = 0, slower = 0, same = 0, missing = 0;
  for (const auto& [key, x] : ra) {
    const auto it = rb.find(key);
    if (it == rb.end()) {
      ++missing;
      fmt::print("{:<24} {:>6} {:>11} {:>11} {:>8} {:>7} {:>7} {:>7} {:>7}  {}\n", key.first, format_count(key.second),
                 x.ok ? fmt::format("{:.2f}", x.median) : "-", "-", "-", "-", "-", "-", "-", "only in A");
      continue;
    }
    const Row& y = it->second;
    auto pct = [](double v) { return v >= 0 ? fmt::format("{:.1f}", v) : std::string("-"); };
    if (!x.ok || !y.ok) {
      ++missing;
      fmt::print("{:<24} {:>6} {:>11} {:>11} {:>8} {:>7} {:>7} {:>7} {:>7}  {}\n", key.first, format_count(key.second),
                 x.ok ? fmt::format("{:.2f}", x.median) : "-", y.ok ? fmt::format("{:.2f}", y.median) : "-", "-", "-",
                 "-", pct(x.pct_bw), pct(y.pct_bw), "not timed in both");
      continue;
    }
    const double speed = x.median / y.median;  // above 1: B is faster
    const double limit = std::max(min_change_pct / 100.0, 2.0 * std::max(x.noise, y.noise));
    std::string verdict = "same (within noise)";
    if (speed > 1 + limit) verdict = fmt::format("FASTER (beyond {:.1f}%)", 100 * limit), ++faster;
    else if (speed < 1 / (1 + limit)) verdict = fmt::format("SLOWER (beyond {:.1f}%)", 100 * limit), ++slower;
    else ++same;
    fmt::print("{:<24} {:>6} {:>11.2f} {:>11.2f} {:>8.3f} {:>7.1f} {:>7.1f} {:>7} {:>7}  {}\n", key.first,
               format_count(key.second), x.median, y.median, speed, 100 * x.noise, 100 * y.noise, pct(x.pct_bw),
               pct(y.pct_bw), verdict);
  }
  for (const auto& [key, y] : rb)
    if (!ra.count(key)) {
      ++missing;
      fmt::print("{:<24} {:>6} {:>11} {:>11} {:>8} {:>7} {:>7} {:>7} {:>7}  {}\n", key.first, format_count(key.second),
                 "-", y.ok ? fmt::format("{:.2f}", y.median) : "-", "-", "-", "-", "-", "-", "only in B");
    }
  fmt::print("\nB/A: speed of B over A (A's median time / B's). {} faster, {} slower, {} within noise, {} not "
             "comparable\n", faster, slower, same, missing);
  return fail_on_slower && slower ? 1 : 0;
}

}  // namespace kiln::bench
