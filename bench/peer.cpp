// --peer torch: the same cases through PyTorch eager and torch.compile, timed by bench/torch_peer.py
// the same way (warm-up, CUDA events per run and in back-to-back batches, medians; the host clock
// on the CPU). Each expression is spelled as a small Python function over x0, x1, ... built from
// the expression IR, so fused cases are the same computation. The peer's inputs are random in the
// same ranges (not the same values); its bytes are counted like Kiln's.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/args.h>
#include <fmt/format.h>

#include "bench/bench.hpp"
#include "codegen/eval.hpp"

#ifndef KILN_BENCH_SOURCE_DIR
#define KILN_BENCH_SOURCE_DIR "bench"
#endif

namespace kiln::bench {

namespace {

const char* torch_dtype(DType t) {
  switch (t) {
    case DType::pred: return "torch.bool";
    case DType::s8: return "torch.int8";
    case DType::s16: return "torch.int16";
    case DType::s32: return "torch.int32";
    case DType::s64: return "torch.int64";
    case DType::u8: return "torch.uint8";
    case DType::u16: return "torch.uint16";
    case DType::u32: return "torch.uint32";
    case DType::u64: return "torch.uint64";
    case DType::f16: return "torch.float16";
    case DType::bf16: return "torch.bfloat16";
    case DType::f32: return "torch.float32";
    case DType::f64: return "torch.float64";
  }
  return "?";
}

const char* torch_fn(Op op) {
  switch (op) {
    case Op::exp: return "torch.exp"; case Op::expm1: return "torch.expm1"; case Op::log: return "torch.log";
    case Op::log1p: return "torch.log1p"; case Op::sigmoid: return "torch.sigmoid"; case Op::cos: return "torch.cos";
    case Op::sin: return "torch.sin"; case Op::tan: return "torch.tan"; case Op::cosh: return "torch.cosh";
    case Op::sinh: return "torch.sinh"; case Op::tanh: return "torch.tanh"; case Op::acos: return "torch.acos";
    case Op::asin: return "torch.asin"; case Op::atan: return "torch.atan"; case Op::acosh: return "torch.acosh";
    case Op::asinh: return "torch.asinh"; case Op::atanh: return "torch.atanh"; case Op::sqrt: return "torch.sqrt";
    case Op::rsqrt: return "torch.rsqrt"; case Op::erf: return "torch.erf"; case Op::erfc: return "torch.erfc";
    case Op::erf_inv: return "torch.erfinv"; case Op::abs: return "torch.abs";
    case Op::bitwise_not: return "torch.bitwise_not"; case Op::ceil: return "torch.ceil";
    case Op::floor: return "torch.floor"; case Op::negate: return "torch.neg"; case Op::round: return "torch.round";
    case Op::sign: return "torch.sign"; case Op::is_nan: return "torch.isnan"; case Op::is_infinity: return "torch.isinf";
    case Op::add: return "torch.add"; case Op::subtract: return "torch.sub"; case Op::multiply: return "torch.mul";
    case Op::pow: return "torch.pow"; case Op::remainder: return "torch.remainder"; case Op::divide: return "torch.div";
    case Op::atan2: return "torch.atan2"; case Op::min: return "torch.minimum"; case Op::max: return "torch.maximum";
    case Op::quotient: return "quotient"; case Op::bitwise_and: return "torch.bitwise_and";
    case Op::bitwise_or: return "torch.bitwise_or"; case Op::bitwise_xor: return "torch.bitwise_xor";
    case Op::left_shift: return "torch.bitwise_left_shift"; case Op::right_shift: return "torch.bitwise_right_shift";
    case Op::equal: return "torch.eq"; case Op::not_equal: return "torch.ne"; case Op::greater: return "torch.gt";
    case Op::less: return "torch.lt"; case Op::greater_equal: return "torch.ge"; case Op::less_equal: return "torch.le";
    case Op::logical_and: return "torch.logical_and"; case Op::logical_or: return "torch.logical_or";
    case Op::logical_xor: return "torch.logical_xor"; case Op::select: return "torch.where";
    default: return nullptr;  // cbrt, count_leading_zeros, population_count: no torch function
  }
}

std::string py_literal(const Node& n) {
  const double v = scalar_to_double(n.value, n.dtype);
  if (n.dtype == DType::pred) return v != 0 ? "True" : "False";
  if (std::isnan(v)) return "float('nan')";
  if (std::isinf(v)) return v > 0 ? "float('inf')" : "float('-inf')";
  if (!is_float(n.dtype)) return fmt::format("{}", std::int64_t(v));
  return fmt::format("{:.17g}", v);
}

}  // namespace

std::optional<std::string> torch_expr(const Expr& expr, std::string* why, bool clone_bare_input) {
  const Expr e = expr.pruned();
  std::string body;
  for (NodeId i = 0; i < NodeId(e.nodes().size()); ++i) {
    const Node& n = e.node(i);
    std::string rhs;
    if (n.kind == NodeKind::input) rhs = fmt::format("x{}", n.input);
    else if (n.kind == NodeKind::constant) rhs = py_literal(n);
    else if (n.op == Op::as_type) rhs = fmt::format("t{}.to({})", n.args[0], torch_dtype(n.dtype));
    else {
      const char* fn = torch_fn(n.op);
      if (!fn) {
        *why = fmt::format("PyTorch has no {}", op_info(n.op).name);
        return std::nullopt;
      }
      std::string args;
      for (int k = 0; k < n.num_args; ++k) args += fmt::format("{}t{}", k ? ", " : "", n.args[std::size_t(k)]);
      rhs = fmt::format("{}({})", fn, args);
    }
    body += fmt::format("t{} = {}\n", i, rhs);
  }
  // A bare input (the copy case) is cloned: Kiln writes a new tensor, and PyTorch returning its input
  // would time nothing (torch.compile made copy.f32 4.5 us on the first H100 run).
  body += clone_bare_input && e.node(e.root()).kind == NodeKind::input ? fmt::format("return t{}.clone()\n", e.root())
                                                                      : fmt::format("return t{}\n", e.root());
  return body;
}

void run_torch_peer(Device& dev, const RunInfo& run, std::vector<Result>& results, std::string* status) {
  auto all_fail = [&](const std::string& why) {
    *status = why;
    for (Result& r : results) r.peers = {{"torch.eager", false, {}, why}, {"torch.compile", false, {}, why}};
  };
  if (dev.backend() == Backend::vulkan) return all_fail("PyTorch has no Vulkan backend; use --device cuda:N or cpu");
  namespace fs = std::filesystem;
  const char* script_env = std::getenv("KILN_TORCH_PEER");
  const fs::path script = script_env ? fs::path(script_env) : fs::path(KILN_BENCH_SOURCE_DIR) / "torch_peer.py";
  if (!fs::exists(script)) return all_fail(fmt::format("{} not found (set KILN_TORCH_PEER)", script.string()));

  nlohmann::json req = {{"device", dev.backend() == Backend::cuda ? fmt::format("cuda:{}", dev.info().index) : "cpu"},
                        {"repeats", run.timing.repeats},
                        {"warmup", run.timing.warmup},
                        {"batches", run.timing.batch ? run.timing.batches : 0}};
  nlohmann::json cases = nlohmann::json::array();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const BenchCase& c = *results[i].bench;
    std::string why;
    // A reduction reduces its prologue as it is: a clone would add a copy's two passes to torch's
    // time (the first H100 run timed torch.sum at a third of its speed).
    auto body = torch_expr(c.expr, &why, !c.combiner);
    if (body && c.manifest_spec) {  // the prologue's torch code would miss the epilogue and casts
      why = "no PyTorch peer for a manifest reduction (its epilogue and casts)";
      body.reset();
    }
    if (body && c.axis_spec) {  // x reshaped like Kiln's input, then torch's row op or scan
      const Shape shape = c.input_shape(results[i].elements);
      const std::string r = fmt::format("x0.reshape({}, {})", shape[0], shape[1]);
      const std::string r1 = fmt::format("x1.reshape({}, {})", shape[0], shape[1]);
      *body = fmt::format(fmt::runtime(c.torch_fn), r, shape[1], r1) + "\n";
    }
    if (body && c.shaped) {  // the operands shaped from the first elements of the inputs
      const std::vector<std::string> x = c.shaped->torch_operands(results[i].size);
      fmt::dynamic_format_arg_store<fmt::format_context> args;
      for (const std::string& a : x) args.push_back(a);
      *body = fmt::vformat(c.torch_fn, args) + "\n";
    }
    if (body && c.combiner) {  // the prologue, reshaped like Kiln's input, then torch's reduction
      const std::size_t ret = body->rfind("return ");
      std::string value = body->substr(ret + 7);
      value.pop_back();  // the newline
      const Shape shape = c.input_shape(results[i].elements);
      std::string dims;
      for (std::int64_t d : shape) dims += fmt::format("{}, ", d);
      const std::string dim = shape.size() == 2 ? fmt::format(", dim={}", c.reduce_axes == ReduceAxes::last ? 1 : 0) : "";
      const char* fn = *c.combiner == Combiner::sum ? "torch.sum" : *c.combiner == Combiner::max ? "torch.amax"
                     : *c.combiner == Combiner::argmax ? "torch.argmax" : nullptr;
      if (!fn) {
        why = fmt::format("no PyTorch peer for {}", combiner_info(*c.combiner).op);
        body.reset();
      } else {
        *body = body->substr(0, ret) + fmt::format("r = {}.reshape({})\nreturn {}(r{})\n", value, dims, fn, dim);
      }
    }
    if (!body) {
      results[i].peers = {{"torch.eager", false, {}, why}, {"torch.compile", false, {}, why}};
      continue;
    }
    nlohmann::json ins = nlohmann::json::array();
    const auto dts = c.input_dtypes();
    for (std::size_t k = 0; k < dts.size(); ++k) {
      double lo = c.conf ? op_info(c.conf->op).lo : c.ranges[k].lo, hi = c.conf ? op_info(c.conf->op).hi : c.ranges[k].hi;
      if (!is_float(dts[k])) lo = 1, hi = 7;  // small non-zero integers: valid shifts, divisors and powers
      nlohmann::json in = {{"dtype", torch_dtype(dts[k])}, {"lo", lo}, {"hi", hi}};
      if (c.shaped) in["elements"] = shape_numel(c.operand_shape(k, results[i].size));  // own shapes
      ins.push_back(std::move(in));
    }
    cases.push_back({{"index", i}, {"name", c.name}, {"elements", results[i].elements}, {"inputs", ins},
                     {"body", *body}});
  }
  req["cases"] = cases;

  const fs::path dir = fs::temp_directory_path() / fmt::format("kiln-bench-peer-{}", ::getpid());
  fs::create_directories(dir);
  const fs::path rq = dir / "request.json", rs = dir / "response.json", log = dir / "stderr.txt";
  write_file(rq.string(), req.dump());
  const char* py = std::getenv("KILN_PYTHON");
  const std::string cmd = fmt::format("'{}' '{}' --request '{}' --out '{}' 2> '{}'", py ? py : "python3",
                                      script.string(), rq.string(), rs.string(), log.string());
  const int rc = std::system(cmd.c_str());
  std::string err;
  {
    std::ifstream f(log);
    std::string line;
    while (std::getline(f, line)) {
      if (!line.empty()) err = line;  // the last line says why
      fmt::print(stderr, "  {}\n", line);
    }
  }
  if (rc != 0 || !fs::exists(rs)) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return all_fail(err.empty() ? fmt::format("{} exited with status {}", script.filename().string(), rc) : err);
  }
  nlohmann::json resp;
  try {
    std::ifstream f(rs);
    resp = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    return all_fail(fmt::format("bad peer output: {}", e.what()));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  const std::string mode = run.timing.batch ? "batch" : "per_run";
  for (const auto& pc : resp.value("cases", nlohmann::json::array())) {
    const std::size_t i = pc.value("index", std::size_t(0));
    if (i >= results.size()) continue;
    results[i].peers.clear();
    for (const char* which : {"eager", "compile"}) {
      PeerResult p;
      p.peer = fmt::format("torch.{}", which);
      const auto& w = pc.value(which, nlohmann::json::object());
      if (w.contains("error")) p.note = w.at("error").get<std::string>();
      else if (w.contains(mode)) {
        p.ok = true;
        p.time = Stats::of(w.at(mode).get<std::vector<double>>());
        p.note = fmt::format("torch {}, {}", resp.value("torch", "?"), mode);
      } else p.note = "no timing returned";
      results[i].peers.push_back(std::move(p));
    }
  }
  status->clear();
}

}  // namespace kiln::bench
