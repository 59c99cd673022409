// kilnc ops (the op table of every family) and kilnc emit (one kernel's source).
// emits everything in memory first, so an invalid manifest leaves the output folder untouched.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codegen/api_header.hpp"
#include "codegen/emit.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/family.hpp"
#include "codegen/manifest.hpp"
#include "core/error.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

extern char** environ;

#include "codegen/kilnc/kilnc.hpp"

namespace kiln::kilnc {

// ---- kilnc ops ------------------------------------------------------------------------------

std::string_view result_rule_name(ResultRule r) {
  switch (r) {
    case ResultRule::same: return "same";
    case ResultRule::floating: return "floating";
    case ResultRule::pred: return "pred";
    case ResultRule::cast: return "cast";
  }
  return "?";
}

std::vector<std::string> dtype_names(DTypeSet set, Op op, bool vulkan) {
  std::vector<std::string> out;
  for (DType t : kAllDTypes)
    if ((set & dtype_bit(t)) && (!vulkan || glsl_supports(op, t))) out.emplace_back(dtype_name(t));
  return out;
}

int cmd_ops(bool as_json) {
  json ops = json::array();
  for (const OpInfo& o : op_table()) {
    json j;
    j["name"] = o.name;
    j["arity"] = o.arity;
    j["accepts"] = dtype_names(o.accepts, o.op, false);
    j["result"] = result_rule_name(o.result);
    j["formula"] = o.formula;
    j["tolerance"] = {{"atol", o.tol.atol}, {"rtol", o.tol.rtol}};
    j["targets"] = {{"cuda", dtype_names(o.accepts, o.op, false)}, {"vulkan", dtype_names(o.accepts, o.op, true)}};
    j["family"] = "map";
    ops.push_back(j);
  }
  for (const CombinerInfo& c : combiner_table()) {  // the reduce family: result dtypes by Nx's rules
    json j;
    j["name"] = c.op;
    j["family"] = "reduce";
    j["arity"] = 1;
    const std::vector<std::string> accepts = dtype_names(c.accepts, Op::add, false);
    j["accepts"] = accepts;
    json results = json::object();
    for (DType t : kAllDTypes)
      if (c.accepts & dtype_bit(t)) results[std::string(dtype_name(t))] = dtype_name(reduce_result_dtype(c.combiner, t));
    j["result"] = results;
    j["formula"] = c.formula;
    j["targets"] = {{"cuda", accepts}, {"vulkan", accepts}};
    ops.push_back(j);
  }
  if (as_json) {
    std::cout << json{{"ops", ops}}.dump(2) << "\n";
    return 0;
  }
  for (const json& j : ops) {
    std::string accepts;
    for (const auto& t : j["accepts"]) accepts.append(accepts.empty() ? "" : " ").append(t.get<std::string>());
    if (j["family"] == "reduce") {
      std::cout << fmt::format("{:<20} reduce over axes  [{}]  {}\n", j["name"].get<std::string>(), accepts,
                               j["formula"].get<std::string>());
      continue;
    }
    std::string vk = "all";
    if (j["targets"]["vulkan"].size() != j["accepts"].size()) vk = "no f64";
    std::cout << fmt::format("{:<20} {}  {:<8} tol={:g}/{:g} vulkan:{:<6} [{}]  {}\n", j["name"].get<std::string>(),
                             j["arity"].get<int>(), j["result"].get<std::string>(), j["tolerance"]["atol"].get<double>(),
                             j["tolerance"]["rtol"].get<double>(), vk, accepts, j["formula"].get<std::string>());
  }
  return 0;
}

// ---- kilnc emit -----------------------------------------------------------------------------

int cmd_emit(const std::string& family, const std::string& expr, const std::string& dtypes_csv,
             const std::string& target, const std::string& function, int block_size) {
  if (!find_family(family))
    fail(ErrorCode::invalid_argument, fmt::format("--family: unknown kernel family '{}' (families: {})", family, family_names()));
  std::vector<DType> dtypes;
  for (const std::string& s : split(dtypes_csv, ',')) {
    auto t = parse_dtype(s);
    if (!t) fail(ErrorCode::invalid_argument, fmt::format("--dtypes: unknown dtype '{}'", s));
    dtypes.push_back(*t);
  }
  if (dtypes.size() < 2)
    fail(ErrorCode::invalid_argument, "--dtypes lists the input dtypes then the output dtype, e.g. f32,f32");
  const DType output = dtypes.back();
  dtypes.pop_back();
  KernelSpec spec = make_map_spec(parse_expr(expr, dtypes, "--expr"), output);
  spec.block_size = block_size;
  const Target t = target == "cuda" ? Target::cuda : Target::glsl;
  std::string why;
  if (!target_supports(spec, t, &why))
    fail(ErrorCode::unsupported, fmt::format("{} cannot be emitted for {}: {}", spec.name(), target, why));
  if (t == Target::cuda) {
    std::cout << emit_cuda(spec);
    return 0;
  }
  const std::vector<std::string> symbols = cuda_symbols(spec);
  const std::string name = spec.name();
  for (std::size_t i = 0; i < symbols.size(); ++i)
    if (function_suffix(name, symbols[i]) == function) {
      std::cout << emit_glsl(spec, int(i));
      return 0;
    }
  fail(ErrorCode::invalid_argument, fmt::format("--function: {} has no function '{}'", name, function));
}

}  // namespace kiln::kilnc
