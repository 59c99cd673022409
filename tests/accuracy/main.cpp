// kiln-accuracy: the max error in ulps of every floating-point op x dtype x backend against a
// correctly rounded reference (MPFR, tests/accuracy/reference.cpp), over the whole input range:
//   f16, bf16   every one of the 65,536 inputs of unary ops; random pairs of bit patterns for binary
//   f32, f64    random inputs stratified by sign and exponent (every binade equally), both operands
//   all         special and known-hard inputs (zeros, subnormals, infinities, NaN, huge trig
//               arguments, the edges of exp's range, erfc and erf_inv tails, pow's C99 cases)
//
//   kiln-accuracy [--device LIST] [--op LIST] [--dtype LIST] [--full] [--json FILE]
//                 [--markdown FILE] [--docs FILE] [--baseline FILE] [--write-baseline FILE]
//
// Short by default (CI: ~64K inputs per cell); --full is the issue-11 run (16M f32 inputs per unary
// op). --docs replaces the table between the accuracy markers of docs/semantics.md. --baseline
// fails (exit 1) when a cell's max error exceeds both its bound (reference.hpp: CUDA's documented
// bounds) and the baseline's figure for it: a ratchet, so known defects are listed, not hidden,
// and nothing gets worse. Exit status: 0 ok, 1 a cell over bound and baseline, 2 bad usage.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "core/half.hpp"
#include "runtime/kiln.hpp"
#include "tests/accuracy/reference.hpp"

namespace kiln::accuracy {
namespace {

// ---- inputs ------------------------------------------------------------------------------------

double bits_to_double(DType t, std::uint64_t b) {
  switch (t) {
    case DType::f16: return f16_bits_to_f32(std::uint16_t(b));
    case DType::bf16: return bf16_bits_to_f32(std::uint16_t(b));
    case DType::f32: { float f; std::uint32_t u = std::uint32_t(b); std::memcpy(&f, &u, 4); return f; }
    default: { double d; std::memcpy(&d, &b, 8); return d; }
  }
}

// |v| rounded to the dtype (nearest even), as a double.
double round_to(DType t, double v) {
  switch (t) {
    case DType::f16: return f16_bits_to_f32(to_f16_bits(v));
    case DType::bf16: return bf16_bits_to_f32(to_bf16_bits(v));
    case DType::f32: return double(float(v));
    default: return v;
  }
}

// A random value of the dtype whose sign and exponent field are uniform (every binade, the
// subnormals, infinities and NaNs as often as any other exponent).
double stratified(DType t, std::mt19937_64& rng) {
  const std::uint64_t r = rng();
  switch (t) {
    case DType::f16: case DType::bf16: return bits_to_double(t, r & 0xFFFF);
    case DType::f32: return bits_to_double(t, r & 0xFFFFFFFF);
    default: return bits_to_double(t, r);
  }
}

std::vector<double> specials(DType t) {
  const double inf = INFINITY, pi = 3.14159265358979323846;
  std::vector<double> v = {0.0, -0.0, inf, -inf, NAN, 1, -1, 0.5, 2, 10, -10, pi, pi / 2, 2 * pi, -pi,
                           1e7, 1e8, 1e22, 3.4028234663852886e38, -2147483648.0, 1e300, 88.7, 88.72,
                           -86, -87, -103, 709.7, 710, 8.07, 9.5, 27, -27, 1e-5, 1e-10, 0.9999999,
                           -0.9999999, 1 - 0x1p-24, 1 + 0x1p-23, 1 - 0x1p-53, 1 - 0x1p-11, 1 - 0x1p-8,
                           0x1p-149, 1e-40, 0x1p-126, 0x1p-1074, 0x1p-1022, 0x1p-14, 0x1p-24, 65504, 0.75};
  switch (t) {  // the dtype's own extremes
    case DType::f16: v.insert(v.end(), {bits_to_double(t, 1), bits_to_double(t, 0x3FF), 65504}); break;
    case DType::bf16: v.insert(v.end(), {bits_to_double(t, 1), bits_to_double(t, 0x7F7F)}); break;
    case DType::f32: v.insert(v.end(), {bits_to_double(t, 1), bits_to_double(t, 0x7FFFFF), bits_to_double(t, 0x7F7FFFFF)}); break;
    default: v.insert(v.end(), {bits_to_double(t, 1), std::numeric_limits<double>::max()}); break;
  }
  for (double& x : v) x = round_to(t, x);
  std::sort(v.begin(), v.end(), [](double a, double b) { return std::isnan(a) ? false : std::isnan(b) ? true : a < b; });
  v.erase(std::unique(v.begin(), v.end(), [](double a, double b) {
            return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b));
          }), v.end());
  return v;
}

// The inputs of one cell: args[k][i] is operand k of point i.
std::vector<std::vector<double>> inputs(Op op, DType t, bool full) {
  const int arity = op_info(op).arity;
  std::mt19937_64 rng(0x6B696C6E ^ (std::uint64_t(op) << 8) ^ std::uint64_t(t));
  std::vector<std::vector<double>> a(arity);
  const auto sp = specials(t);
  const bool half = t == DType::f16 || t == DType::bf16;
  if (arity == 1) {
    if (half) {
      for (std::uint64_t b = 0; b < 65536; ++b) a[0].push_back(bits_to_double(t, b));
    } else {
      const std::size_t n = t == DType::f32 ? (full ? 1u << 24 : 1u << 16) : (full ? 1u << 20 : 1u << 14);
      for (std::size_t i = 0; i < n; ++i) a[0].push_back(stratified(t, rng));
      a[0].insert(a[0].end(), sp.begin(), sp.end());
    }
  } else {
    const std::size_t n = full ? 1u << 22 : 1u << 16;
    for (std::size_t i = 0; i < n; ++i) {
      a[0].push_back(stratified(t, rng));
      a[1].push_back(stratified(t, rng));
    }
    for (double x : sp)
      for (double y : sp) a[0].push_back(x), a[1].push_back(y);
  }
  return a;
}

// ---- running the op on a device ----------------------------------------------------------------

Tensor to_tensor(DType t, const std::vector<double>& v, Device& dev) {
  const std::size_t n = v.size(), size = dtype_size(t);
  std::vector<std::byte> bytes(n * size);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t b = 0;
    switch (t) {
      case DType::f16: b = f32_to_f16_bits(float(v[i])); break;
      case DType::bf16: b = f32_to_bf16_bits(float(v[i])); break;
      case DType::f32: { const float f = float(v[i]); std::memcpy(&b, &f, 4); break; }
      default: std::memcpy(&b, &v[i], 8); break;
    }
    std::memcpy(bytes.data() + i * size, &b, size);
  }
  return Tensor::from_host(bytes.data(), bytes.size(), {std::int64_t(n)}, t, device("cpu")).to(dev);
}

std::vector<double> from_tensor(const Tensor& x) {
  const auto bytes = x.to(device("cpu")).to_host();
  const std::size_t size = dtype_size(x.dtype()), n = bytes.size() / size;
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t b = 0;
    std::memcpy(&b, bytes.data() + i * size, size);
    v[i] = bits_to_double(x.dtype(), b);
  }
  return v;
}

// ---- cells -------------------------------------------------------------------------------------

struct Cell {
  std::string op, dtype, backend, status = "ok";  // ok | unsupported | unavailable
  std::string note;
  double bound = 0, max_ulp = 0;
  std::vector<double> worst_args;
  double worst_got = 0, worst_want = 0;
  std::size_t points = 0;
};

std::string num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);  // the shortest text that reads back as the same double
}

nlohmann::json to_json(const Cell& c) {
  nlohmann::json j = {{"op", c.op}, {"dtype", c.dtype}, {"backend", c.backend}, {"status", c.status},
                      {"bound_ulp", c.bound}, {"points", c.points}};
  if (!c.note.empty()) j["note"] = c.note;
  if (c.status == "ok") {
    j["max_ulp"] = std::isinf(c.max_ulp) ? nlohmann::json("inf") : nlohmann::json(c.max_ulp);
    nlohmann::json args = nlohmann::json::array();
    for (double a : c.worst_args) args.push_back(num(a));
    j["worst"] = {{"args", args}, {"got", num(c.worst_got)}, {"want", num(c.worst_want)}};
  }
  return j;
}

std::string ulp_text(double u) { return std::isinf(u) ? "inf" : u < 10 ? fmt::format("{:.2f}", u) : fmt::format("{:.3g}", u); }

std::string markdown(const std::vector<Cell>& cells, const std::vector<std::string>& backends, bool full) {
  std::string s = fmt::format(
      "Max error in ulps against MPFR (correctly rounded), `kiln-accuracy{}`: f16/bf16 unary ops on all "
      "65,536 inputs, f32/f64 on inputs stratified over every binade ({}), plus special and hard "
      "inputs. **Bold**: over the bound (CUDA's documented max ulp for f32/f64, 1 for f16/bf16); "
      "worst input in parentheses; \"-\" the backend refuses the dtype.\n\n| op | dtype | bound |",
      full ? " --full" : "", full ? "2^24 f32, 2^20 f64 per unary op; 2^22 pairs per binary op"
                                  : "2^16 f32, 2^14 f64 per unary op; 2^16 pairs per binary op");
  for (const auto& b : backends) s += fmt::format(" {} |", b);
  s += "\n| --- | --- | ---: |";
  for (std::size_t i = 0; i < backends.size(); ++i) s += " ---: |";
  s += "\n";
  std::map<std::pair<std::string, std::string>, std::map<std::string, const Cell*>> rows;
  std::vector<std::pair<std::string, std::string>> order;
  for (const Cell& c : cells) {
    auto key = std::make_pair(c.op, c.dtype);
    if (!rows.count(key)) order.push_back(key);
    rows[key][c.backend] = &c;
  }
  for (const auto& key : order) {
    const auto& row = rows[key];
    s += fmt::format("| {} | {} | {} |", key.first, key.second, row.begin()->second->bound);
    for (const auto& b : backends) {
      const auto it = row.find(b);
      if (it == row.end() || it->second->status != "ok") {
        s += " - |";
        continue;
      }
      const Cell& c = *it->second;
      std::string args;
      for (double a : c.worst_args) args += (args.empty() ? "" : ", ") + num(a);
      const std::string u = ulp_text(c.max_ulp);
      s += c.max_ulp > c.bound ? fmt::format(" **{}** ({}) |", u, args) : fmt::format(" {} |", u);
    }
    s += "\n";
  }
  return s;
}

void replace_between_markers(const std::string& path, const std::string& table) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(fmt::format("kiln-accuracy: cannot read {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string doc = ss.str();
  const std::string begin = "<!-- accuracy:begin (generated by kiln-accuracy --docs; do not edit) -->\n",
                    end = "<!-- accuracy:end -->";
  const auto b = doc.find(begin), e = doc.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b)
    throw std::runtime_error(fmt::format("kiln-accuracy: {} has no accuracy markers ({})", path, begin.substr(0, begin.size() - 1)));
  doc = doc.substr(0, b + begin.size()) + table + doc.substr(e);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << doc;
    if (!out) throw std::runtime_error(fmt::format("kiln-accuracy: cannot write {}", tmp));
  }
  std::filesystem::rename(tmp, path);
}

// One cell per backend of |got| (the op's results on each): the exact value is computed once per
// input, on every core.
std::vector<Cell> measure(Op op, DType t, const std::vector<std::string>& backends,
                          const std::vector<std::vector<double>>& args, const std::vector<std::vector<double>>& got) {
  const std::size_t n = args[0].size(), nb = backends.size();
  const unsigned workers = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  struct Worst {
    double err = -1, want = 0;
    std::size_t at = 0;
  };
  std::vector<std::vector<Worst>> worst(workers, std::vector<Worst>(nb));
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      double a[2];
      std::vector<double> g(nb), e(nb);
      for (std::size_t i = w; i < n; i += workers) {
        for (std::size_t k = 0; k < args.size(); ++k) a[k] = args[k][i];
        for (std::size_t b = 0; b < nb; ++b) g[b] = got[b][i];
        const double want = ulp_errors(op, t, std::span<const double>(a, args.size()), g, e);
        for (std::size_t b = 0; b < nb; ++b)
          if (e[b] > worst[w][b].err) worst[w][b] = {e[b], want, i};
      }
    });
  for (auto& th : pool) th.join();
  std::vector<Cell> cells;
  for (std::size_t b = 0; b < nb; ++b) {
    Worst best;
    for (unsigned w = 0; w < workers; ++w)
      if (worst[w][b].err > best.err) best = worst[w][b];
    Cell c;
    c.op = std::string(op_info(op).name);
    c.dtype = std::string(dtype_name(t));
    c.backend = backends[b];
    c.bound = ulp_bound(op, t);
    c.points = n;
    c.max_ulp = std::max(0.0, best.err);
    for (const auto& col : args) c.worst_args.push_back(col[best.at]);
    c.worst_got = got[b][best.at];
    c.worst_want = best.want;
    cells.push_back(std::move(c));
  }
  return cells;
}

void print_cell(const Cell& c) {
  fmt::print("{:<10} {:<5} {:<9} {:>11}  bound {:<4} {}\n", c.op, c.dtype, c.backend,
             c.status == "ok" ? ulp_text(c.max_ulp) : c.status, c.bound, c.status == "ok" && c.max_ulp > c.bound ? "OVER" : "");
}

// The measure itself against hand-computed errors, before any cell is trusted (every run).
void self_check() {
  struct Case {
    Op op;
    DType t;
    std::vector<double> args;
    double got, want_ulp;
  };
  const double inf = INFINITY;
  const std::vector<Case> cases = {
      {Op::add, DType::f32, {1, 0x1p-24}, 1, 0.5},                 // a tie: half an ulp of 1 (2^-23)
      {Op::add, DType::f32, {1, 0x1p-24}, 1 + 0x1p-23, 0.5},
      {Op::multiply, DType::f32, {0x1p-140, 0x1p-10}, 0, 0.5},    // 2^-150: half the smallest subnormal
      {Op::multiply, DType::f16, {0x1p-20, 0x1p-10}, 0, 0x1p-6},   // 2^-30 in f16's subnormal ulp 2^-24
      {Op::exp, DType::f32, {89}, inf, 0},                        // overflows: inf is exact
      {Op::exp, DType::f32, {89}, 3.4028234663852886e38, inf},
      {Op::log, DType::f32, {-1}, NAN, 0},
      {Op::log, DType::f32, {-1}, 0, inf},
      {Op::sqrt, DType::f64, {4}, 2 + 0x1p-51, 1},                // one ulp of 2 (2^-51)
      {Op::rsqrt, DType::f32, {-0.0}, -inf, 0},
      {Op::divide, DType::bf16, {1, 3}, 0.333984375, 1.0 / 3},    // 171/512 - 1/3 = 1/1536; bf16's ulp at 1/3: 2^-9
  };
  for (const Case& c : cases) {
    double e = -1;
    ulp_errors(c.op, c.t, c.args, std::span<const double>(&c.got, 1), std::span<double>(&e, 1));
    const bool ok = std::isinf(c.want_ulp) ? std::isinf(e) : std::fabs(e - c.want_ulp) < 1e-9;
    if (!ok)
      throw std::runtime_error(fmt::format("kiln-accuracy: self-check: {} {} at {}: got {} ulp, want {}", op_info(c.op).name,
                                           dtype_name(c.t), num(c.args[0]), e, c.want_ulp));
  }
}

int run(int argc, char** argv) {
  CLI::App app{"kiln-accuracy: max ulp error of Kiln's float ops against MPFR, per op x dtype x backend"};
  std::vector<std::string> devices = {"cpu", "vulkan:0", "cuda:0"}, ops, dtypes = {"f16", "bf16", "f32", "f64"};
  std::string json_path, md_path, docs_path, baseline_path, write_baseline;
  bool full = false;
  app.add_option("--device", devices, "Devices (default: cpu,vulkan:0,cuda:0; absent ones are listed, not run)")->delimiter(',');
  app.add_option("--op", ops, "Only these ops (default: every float op with a mathematical definition)")->delimiter(',');
  app.add_option("--dtype", dtypes, "Only these dtypes")->delimiter(',');
  app.add_flag("--full", full, "The full sampling (2^24 f32 inputs per unary op; minutes per op)");
  app.add_option("--json", json_path, "Write every cell as JSON");
  app.add_option("--markdown", md_path, "Write the table as Markdown");
  app.add_option("--docs", docs_path, "Replace the table between the accuracy markers of this file");
  app.add_option("--baseline", baseline_path, "Fail when a cell exceeds both its bound and this JSON's figure");
  app.add_option("--write-baseline", write_baseline, "Write the cells as a baseline JSON");
  CLI11_PARSE(app, argc, argv);
  self_check();

  std::vector<Op> chosen;
  for (Op op : measured_ops())
    if (ops.empty() || std::find(ops.begin(), ops.end(), op_info(op).name) != ops.end()) chosen.push_back(op);
  for (const auto& name : ops)
    if (std::none_of(chosen.begin(), chosen.end(), [&](Op o) { return op_info(o).name == name; })) {
      fmt::print(stderr, "kiln-accuracy: --op {}: not a measured op\n", name);
      return 2;
    }
  std::vector<DType> types;
  for (const auto& name : dtypes) {
    const auto t = parse_dtype(name);
    if (!t || !(op_info(Op::exp).accepts & dtype_bit(*t))) {
      fmt::print(stderr, "kiln-accuracy: --dtype {}: not a float dtype (f16, bf16, f32, f64)\n", name);
      return 2;
    }
    types.push_back(*t);
  }
  std::vector<std::pair<std::string, Device*>> devs;
  std::vector<std::string> backends;
  for (const auto& id : devices) {
    Device* d = nullptr;
    try {
      d = &device(id);
    } catch (const Error& e) {
      fmt::print(stderr, "kiln-accuracy: {}: not available ({})\n", id, std::string(e.what()).substr(0, 120));
    }
    devs.emplace_back(id, d);
    if (d) backends.push_back(id);
  }

  std::vector<Cell> cells;
  for (Op op : chosen)
    for (DType t : types) {
      const auto args = inputs(op, t, full);
      std::vector<std::string> ran;
      std::vector<std::vector<double>> got;
      std::vector<Cell> refused;
      for (const auto& [id, dev] : devs) {
        if (!dev) continue;
        try {
          std::vector<Tensor> operands;
          for (const auto& col : args) operands.push_back(to_tensor(t, col, *dev));
          got.push_back(from_tensor(apply_op(op, operands)));
          ran.push_back(id);
        } catch (const Error& e) {
          Cell c;
          c.op = std::string(op_info(op).name), c.dtype = std::string(dtype_name(t)), c.backend = id;
          c.status = "unsupported", c.bound = ulp_bound(op, t);
          const std::string why = e.what();
          c.note = why.substr(0, why.find('\n'));
          refused.push_back(std::move(c));
        }
      }
      for (Cell& c : measure(op, t, ran, args, got)) print_cell(c), cells.push_back(std::move(c));
      for (Cell& c : refused) print_cell(c), cells.push_back(std::move(c));
      std::fflush(stdout);
    }

  nlohmann::json all = nlohmann::json::array();
  for (const Cell& c : cells) all.push_back(to_json(c));
  const auto write = [](const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f) throw std::runtime_error(fmt::format("kiln-accuracy: cannot write {}", path));
  };
  const nlohmann::json report = {{"mode", full ? "full" : "short"}, {"cells", all}};
  if (!json_path.empty()) write(json_path, report.dump(1) + "\n");
  if (!write_baseline.empty()) write(write_baseline, report.dump(1) + "\n");
  const std::string table = markdown(cells, backends, full);
  if (!md_path.empty()) write(md_path, table);
  if (!docs_path.empty()) replace_between_markers(docs_path, table);

  int rc = 0;
  std::size_t over = 0;
  for (const Cell& c : cells) over += c.status == "ok" && c.max_ulp > c.bound;
  fmt::print("{} cell(s), {} over their bound\n", cells.size(), over);
  if (!baseline_path.empty()) {
    std::ifstream f(baseline_path);
    if (!f) throw std::runtime_error(fmt::format("kiln-accuracy: cannot read {}", baseline_path));
    const auto base = nlohmann::json::parse(f);
    std::map<std::string, double> known;
    for (const auto& j : base.at("cells"))
      if (j.value("status", "") == "ok") {
        const auto& m = j.at("max_ulp");
        known[j.at("op").get<std::string>() + "/" + j.at("dtype").get<std::string>() + "/" + j.at("backend").get<std::string>()] =
            m.is_string() ? INFINITY : m.get<double>();
      }
    for (const Cell& c : cells) {
      if (c.status != "ok" || c.max_ulp <= c.bound) continue;
      const auto it = known.find(c.op + "/" + c.dtype + "/" + c.backend);
      if (it != known.end() && c.max_ulp <= it->second) continue;
      std::string args;
      for (double a : c.worst_args) args += (args.empty() ? "" : ", ") + num(a);
      fmt::print(stderr, "kiln-accuracy: {} {} on {}: {} ulp at ({}) = {}, exact {}; bound {}{}\n", c.op, c.dtype,
                 c.backend, ulp_text(c.max_ulp), args, num(c.worst_got), num(c.worst_want), c.bound,
                 it == known.end() ? "" : fmt::format(", baseline {}", ulp_text(it->second)));
      rc = 1;
    }
  }
  return rc;
}

}  // namespace
}  // namespace kiln::accuracy

int main(int argc, char** argv) {
  try {
    return kiln::accuracy::run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  }
}
