// Files: the JSON report (the source of the CSV, the plot and compare), the CSV, atomic writes.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "bench/version.hpp"
#include "core/error.hpp"

namespace kiln::bench {

namespace {

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
          {"dtypes", dtype_names(d.dtypes)},
          {"cooperative_matrix", d.cooperative_matrix.m ? fmt::format("{}x{}x{}", d.cooperative_matrix.m,
                                                                      d.cooperative_matrix.n, d.cooperative_matrix.k)
                                                        : ""},
          {"matrix_shapes", d.matrix_shapes}};
}

nlohmann::json opt_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

std::string csv_field(const nlohmann::json& v) {
  std::string s;
  if (v.is_null()) return "";
  if (v.is_string()) s = v.get<std::string>();
  else if (v.is_number_float()) return fmt::format("{:.10g}", v.get<double>());
  else s = v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

}  // namespace

nlohmann::json report_json(const RunInfo& run, const std::vector<Result>& results) {
  nlohmann::json j;
  j["format"] = "kiln-bench/2";
  j["kiln"] = {{"version", kVersion}, {"commit", kGitCommit}, {"build_type", kBuildType}};
  j["timestamp"] = run.timestamp;
  j["device"] = device_json(*run.device, run.device_id);
  const char* timer = run.device->backend == Backend::cpu    ? "host steady_clock"
                      : run.device->backend == Backend::cuda ? "CUDA events"
                                                             : "Vulkan timestamp queries";
  j["config"] = {{"sizes", run.sizes},
                 {"repeats", run.timing.repeats},
                 {"warmup", run.timing.warmup},
                 {"warmup_ms", run.timing.warmup_ms},
                 {"batches", run.timing.batch ? run.timing.batches : 0},
                 {"timer", timer},
                 {"flop_convention", "1 FLOP per arithmetic op node (transcendentals 1); as_type and select 0"}};
  j["peaks"] = run.peaks.to_json();
  if (!run.peer.empty()) j["peer"] = {{"name", run.peer}, {"status", run.peer_status.empty() ? "ran" : run.peer_status}};
  j["total_seconds"] = run.total_s;
  nlohmann::json cases = nlohmann::json::array();
  int failed = 0;
  for (const Result& r : results) {
    failed += r.failed();
    const BenchCase& b = *r.bench;
    nlohmann::json c = {{"name", b.name},
                        {"kind", kind_name(b.kind)},
                        {"op", b.op},
                        {"expr", b.expr_text},
                        {"inputs", dtype_names(b.input_dtypes())},
                        {"output", std::string(dtype_name(b.output_dtype()))},
                        {"elements", r.elements},
                        {"bytes", r.bytes},
                        {"flops", r.flops},
                        {"check", check_state_name(r.check.state)},
                        {"verify", check_state_name(r.verify.state)},
                        {"failed", r.failed()},
                        {"wall_seconds", r.wall_s}};
    if (!r.check.message.empty()) c["check_message"] = r.check.message;
    if (!r.verify.message.empty()) c["verify_message"] = r.verify.message;
    if (b.conf) c["conformance_case"] = b.conf->name();
    if (b.shaped && !b.shaped->note().empty()) c["note"] = b.shaped->note();
    if (b.kind == CaseKind::contract) c["contraction"] = {{"path", r.library ? "cublaslt" : r.wgmma ? "kernel_wgmma" : r.tensor_cores ? "kernel_mma" : !r.coopmat.empty() ? "kernel_coopmat" : "kernel"}, {"operand_copies", r.copies}};
    if (b.kind == CaseKind::contract && !r.library) c["contraction"]["tile"] = r.tile;
    if (b.kind == CaseKind::contract && !r.coopmat.empty()) c["contraction"]["fragment"] = r.coopmat;
    if (r.timing.ok) {
      c["buffer_sets"] = r.timing.sets;
      c["mode"] = r.timing.mode();
      c["time_us"] = r.timing.headline().to_json();
      c["per_run_us"] = r.timing.per_run.to_json();
      if (!r.timing.batch.empty()) {
        c["batch_us"] = r.timing.batch.to_json();
        c["runs_per_batch"] = r.timing.runs_per_batch;
      }
      c["host_us_per_run"] = r.timing.host_us;
      c["gb_per_s"] = r.gbps;
      c["gflop_per_s"] = r.gflops;
      c["pct_of_peak_bandwidth"] = opt_json(r.pct_bw);
      c["pct_of_peak_flops"] = opt_json(r.pct_flops);
    } else {
      c["time_error"] = r.timing.error;
    }
    if (!r.peers.empty()) {
      nlohmann::json peers = nlohmann::json::object();
      for (const PeerResult& p : r.peers) {
        nlohmann::json pj = {{"ok", p.ok}, {"note", p.note}};
        if (p.ok) {
          pj["time_us"] = p.time.to_json();
          pj["gb_per_s"] = double(r.bytes) / (p.time.median_us * 1e-6) / 1e9;
          if (r.time_us > 0) pj["kiln_speedup"] = p.time.median_us / r.time_us;
        }
        peers[p.peer] = std::move(pj);
      }
      c["peers"] = std::move(peers);
    }
    cases.push_back(std::move(c));
  }
  j["cases"] = std::move(cases);
  j["failed"] = failed;
  return j;
}

std::string report_csv(const nlohmann::json& rep) {
  static const char* kCols[] = {"device", "device_name", "driver", "commit", "build_type", "timestamp", "case",
                                "kind", "elements", "bytes", "flops", "mode", "median_us", "min_us", "max_us",
                                "noise", "gb_per_s", "gflop_per_s", "pct_of_peak_bandwidth", "pct_of_peak_flops",
                                "peak_bandwidth_gb_per_s", "peak_gflop_per_s", "torch_eager_us", "torch_compile_us",
                                "check", "verify", "failed"};
  std::ostringstream out;
  for (std::size_t i = 0; i < std::size(kCols); ++i) out << (i ? "," : "") << kCols[i];
  out << "\n";
  const nlohmann::json null;
  auto at = [&](const nlohmann::json& j, const char* k) -> const nlohmann::json& {
    return j.is_object() && j.contains(k) ? j.at(k) : null;
  };
  const auto& dev = rep.at("device");
  const auto& kiln = rep.at("kiln");
  const auto& peaks = at(rep, "peaks");
  for (const auto& c : rep.at("cases")) {
    const auto& t = at(c, "time_us");
    const auto& peers = at(c, "peers");
    auto peer_us = [&](const char* name) -> nlohmann::json {
      const auto& p = at(peers, name);
      return at(at(p, "time_us"), "median");
    };
    const nlohmann::json row[] = {
        at(dev, "id"), at(dev, "name"), at(dev, "driver"), at(kiln, "commit"), at(kiln, "build_type"),
        at(rep, "timestamp"), at(c, "name"), at(c, "kind"), at(c, "elements"), at(c, "bytes"), at(c, "flops"),
        at(c, "mode"), at(t, "median"), at(t, "min"), at(t, "max"), at(t, "noise"), at(c, "gb_per_s"),
        at(c, "gflop_per_s"), at(c, "pct_of_peak_bandwidth"), at(c, "pct_of_peak_flops"),
        at(peaks, "bandwidth_gb_per_s"), at(peaks, "gflop_per_s"), peer_us("torch.eager"), peer_us("torch.compile"),
        at(c, "check"), at(c, "verify"), at(c, "failed")};
    for (std::size_t i = 0; i < std::size(row); ++i) out << (i ? "," : "") << csv_field(row[i]);
    out << "\n";
  }
  return out.str();
}

void write_file(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  fs::path tmp = target;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(ErrorCode::io_error, fmt::format("kiln-bench: cannot write {}", tmp.string()));
    f << text;
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
    fail(ErrorCode::io_error, fmt::format("kiln-bench: cannot move the output to {}: {}", path, ec.message()));
  }
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(ErrorCode::io_error, fmt::format("kiln-bench: cannot read {}", path));
  try {
    nlohmann::json j = nlohmann::json::parse(f);
    if (!j.is_object() || !j.contains("cases") || !j.contains("device"))
      fail(ErrorCode::invalid_argument, fmt::format("kiln-bench: {} is not a kiln-bench JSON report", path));
    return j;
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::invalid_argument, fmt::format("kiln-bench: {} is not valid JSON: {}", path, e.what()));
  }
}

}  // namespace kiln::bench
