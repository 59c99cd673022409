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

std::vector<std::string> dtype_names(DTypeSet set) {
  std::vector<std::string> out;
  for (DType t : kAllDTypes)
    if (set & dtype_bit(t)) out.emplace_back(dtype_name(t));
  return out;
}

int cmd_ops(bool as_json) {
  json ops = json::array();
  for (const OpInfo& o : op_table()) {
    json j;
    j["name"] = o.name;
    j["arity"] = o.arity;
    j["accepts"] = dtype_names(o.accepts);
    j["result"] = result_rule_name(o.result);
    j["formula"] = o.formula;
    j["ulp_bound"] = {{"f32", o.ulps.f32}, {"f64", o.ulps.f64}};  // f16/bf16: 1
    j["targets"] = {{"cuda", j["accepts"]}, {"vulkan", j["accepts"]}};  // every target runs every dtype
    j["family"] = "map";
    ops.push_back(j);
  }
  for (const CombinerInfo& c : combiner_table()) {  // the reduce family: result dtypes by Nx's rules
    json j;
    j["name"] = c.op;
    j["family"] = "reduce";
    j["arity"] = 1;
    const std::vector<std::string> accepts = dtype_names(c.accepts);
    j["accepts"] = accepts;
    json results = json::object();
    for (DType t : kAllDTypes)
      if (c.accepts & dtype_bit(t)) results[std::string(dtype_name(t))] = dtype_name(reduce_result_dtype(c.combiner, t));
    j["result"] = results;
    j["formula"] = c.formula;
    j["targets"] = {{"cuda", accepts}, {"vulkan", accepts}};
    ops.push_back(j);
  }
  for (const Family* f : all_families()) {  // the families whose kernels are named ops (rows, scan)
    if (f == &kMapFamily || f == &kReduceFamily) continue;
    for (std::string_view op : f->op_names()) {
      json j;
      j["name"] = op;
      j["family"] = f->name;
      json results = json::object();
      std::vector<std::string> accepts;
      std::size_t arity = 1;
      for (DType t : kAllDTypes) {
        const std::vector<KernelSpec> specs = f->expand_op(op, {t});
        if (specs.empty()) continue;
        accepts.emplace_back(dtype_name(t));
        results[std::string(dtype_name(t))] = dtype_name(specs.front().output);
        arity = specs.front().inputs.size();
      }
      j["arity"] = arity;
      j["accepts"] = accepts;
      j["result"] = results;
      j["formula"] = f->summary;
      j["targets"] = {{"cuda", accepts}, {"vulkan", accepts}};
      ops.push_back(j);
    }
  }
  if (as_json) {
    std::cout << json{{"ops", ops}}.dump(2) << "\n";
    return 0;
  }
  for (const json& j : ops) {
    std::string accepts;
    for (const auto& t : j["accepts"]) accepts.append(accepts.empty() ? "" : " ").append(t.get<std::string>());
    if (j["family"] != "map") {
      std::cout << fmt::format("{:<20} {} {:<12} [{}]  {}\n", j["name"].get<std::string>(), j["family"].get<std::string>(),
                               j["family"] == "reduce" ? "over axes"
                               : j["arity"].get<int>() == 2 ? "of a and b"
                                                           : "along an axis",
                               accepts,
                               j["formula"].get<std::string>());
      continue;
    }
    std::cout << fmt::format("{:<20} {}  {:<8} ulp={:g}/{:g} [{}]  {}\n", j["name"].get<std::string>(),
                             j["arity"].get<int>(), j["result"].get<std::string>(), j["ulp_bound"]["f32"].get<double>(),
                             j["ulp_bound"]["f64"].get<double>(), accepts, j["formula"].get<std::string>());
  }
  return 0;
}

// ---- kilnc emit -----------------------------------------------------------------------------

int cmd_emit(const EmitOptions& o) {
  const Family* family = find_family(o.family);
  if (!family)
    fail(ErrorCode::invalid_argument, fmt::format("--family: unknown kernel family '{}' (families: {})", o.family, family_names()));
  std::vector<DType> dtypes;
  for (const std::string& s : split(o.dtypes_csv, ',')) {
    auto t = parse_dtype(s);
    if (!t) fail(ErrorCode::invalid_argument, fmt::format("--dtypes: unknown dtype '{}'", s));
    dtypes.push_back(*t);
  }
  if (dtypes.size() < 2)
    fail(ErrorCode::invalid_argument, "--dtypes lists the input dtypes then the output dtype, e.g. f32,f32");
  const DType output = dtypes.back();
  dtypes.pop_back();
  const Expr e = parse_expr(o.expr, dtypes, "--expr");
  KernelSpec spec;
  const std::span<const std::string_view> op_names = family->op_names();
  const bool named_ops = family != &kMapFamily && family != &kReduceFamily;  // kernels named by an op, no expr
  if (!named_ops) {  // every listed input is one the expression uses (as in manifests)
    std::vector<bool> used(dtypes.size(), false);
    for (const Node& n : e.nodes())
      if (n.kind == NodeKind::input && n.input >= 0 && std::size_t(n.input) < used.size()) used[std::size_t(n.input)] = true;
    for (std::size_t i = 0; i < used.size(); ++i)
      if (!used[i])
        fail(ErrorCode::invalid_argument,
             fmt::format("--dtypes lists {} inputs and the output, but --expr '{}' does not use input {} ({})",
                         dtypes.size(), o.expr, i, dtype_name(dtypes[i])));
  }
  if (!o.op.empty() && !named_ops)
    fail(ErrorCode::invalid_argument, fmt::format("--op: the {} family takes --expr{}", family->name,
                                                  family == &kReduceFamily ? " and --reduce" : ""));
  if (named_ops) {
    std::string known;
    for (std::string_view n : op_names) known.append(known.empty() ? "" : ", ").append(n);
    if (std::find(op_names.begin(), op_names.end(), o.op) == op_names.end())
      fail(ErrorCode::invalid_argument, fmt::format("--op: the {} family has no op '{}' ({})", family->name, o.op, known));
    if (o.expr != "x")
      fail(ErrorCode::invalid_argument, fmt::format("--expr: {} kernels have no fused prologue yet; pass --expr x", family->name));
    // The op's kernel with exactly these input and output dtypes, among the forms it comes in.
    std::string forms;
    bool found = false;
    for (const KernelSpec& s : family->expand_op(o.op, {dtypes[0]})) {
      if (s.inputs == dtypes && s.output == output) {
        spec = s;
        found = true;
        break;
      }
      std::string f;
      for (DType t : s.inputs) f.append(f.empty() ? "" : ",").append(dtype_name(t));
      forms.append(forms.empty() ? "" : "; ").append(f + "," + std::string(dtype_name(s.output)));
    }
    if (!found)
      fail(ErrorCode::invalid_argument, fmt::format("--dtypes: {} has no kernel taking {} (its forms for {}: {})", o.op,
                                                    o.dtypes_csv, dtype_name(dtypes[0]), forms.empty() ? "none" : forms));
  } else if (family == &kReduceFamily) {
    const auto c = find_combiner(o.reduce);
    if (!c) fail(ErrorCode::invalid_argument, fmt::format("--reduce: unknown reduction '{}' (sum, product, max, min, all, "
                                                          "any, argmax, argmin)", o.reduce));
    const DType result = reduce_result_dtype(*c, e.dtype(e.root()));
    std::optional<Expr> epi;
    if (!o.epilogue.empty()) epi = parse_expr_named(o.epilogue, {result, DType::s64}, {"acc", "n"}, "--epilogue");
    spec = make_reduce_spec(*c, e, epi ? &*epi : nullptr, output);
  } else {
    if (!o.reduce.empty() || !o.epilogue.empty())
      fail(ErrorCode::invalid_argument, "--reduce and --epilogue need --family reduce");
    spec = make_map_spec(e, output);
  }
  spec.block_size = o.block_size;
  const Target t = o.target == "cuda" ? Target::cuda : Target::glsl;
  std::string why;
  if (!target_supports(spec, t, &why))
    fail(ErrorCode::unsupported, fmt::format("{} cannot be emitted for {}: {}", spec.name(), o.target, why));
  if (t == Target::cuda) {
    std::cout << emit_cuda(spec);
    return 0;
  }
  std::string names;
  for (std::size_t i = 0; i < family->entry_points.size(); ++i) {
    if (o.function.empty() || family->entry_points[i].suffix == o.function) {
      std::cout << emit_glsl(spec, int(i));
      return 0;
    }
    names.append(names.empty() ? "" : ", ").append(family->entry_points[i].suffix);
  }
  fail(ErrorCode::invalid_argument, fmt::format("--function: {} has no function '{}' ({})", spec.name(), o.function, names));
}

}  // namespace kiln::kilnc
