// Manifests (codegen/manifest.hpp) and the built-in registry kilnc produces (the kilnc binary:
// tests/test_kilnc.cpp).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "codegen/api_header.hpp"
#include "codegen/emit.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/families/rows.hpp"
#include "codegen/families/contract.hpp"
#include "codegen/families/conv.hpp"
#include "codegen/families/scan.hpp"
#include "codegen/family.hpp"
#include "codegen/manifest.hpp"
#include "core/error.hpp"
#include "runtime/registry.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(KILN_SOURCE_DIR) / "tests/data/manifests";

// The parse_error message of reading a fixture ("" when it parses).
std::string manifest_error(const std::string& fixture) {
  try {
    read_manifest(kFixtures / fixture);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::parse_error) << e.what();
    return e.what();
  }
  return "";
}

struct BadCase {
  const char* file;
  const char* position;  // line:col
  const char* words;     // part of the message
};

TEST(Manifest, ErrorsPointIntoTheFile) {
  const BadCase cases[] = {
      {"syntax_error.toml", "3:17", "TOML syntax error"},
      {"unknown_op.toml", "2:15", "unknown op 'frobnicate'"},
      {"bad_dtype.toml", "3:18", "unknown dtype 'f31'; did you mean 'f32'?"},
      {"bad_expr.toml", "4:15", "unexpected character '$'"},
      {"bad_expr_multiline.toml", "4:3", "found ')'"},
      {"type_error.toml", "2:13", "bitwise_not"},
      {"unknown_key.toml", "4:1", "unknown key 'blocksize' in [[kernel]]; did you mean 'block_size'?"},
      {"wrong_type.toml", "4:14", "'block_size' must be an integer"},
      {"bad_target.toml", "4:20", "unknown target 'metal'"},
      {"bad_family.toml", "2:10", "unknown kernel family 'fft'"},
      {"bad_reduce.toml", "3:10", "unknown reduction 'summ'; did you mean 'sum'?"},
      {"reduce_missing.toml", "1:1", "needs a 'reduce' key"},
      {"bad_epilogue.toml", "5:25", "unknown name 'm'"},
      {"bad_tie.toml", "4:13", "'tie_break' applies to argmax and argmin"},
      {"reduce_pred.toml", "4:8", "reduce_max does not accept pred values"},
      {"unused_input.toml", "2:8", "does not use it"},
      {"alias_clash.toml", "7:8", "kernel name 'k' is already used"},
      {"too_many_inputs.toml", "4:11", "cannot target vulkan: 5 inputs; map kernels take at most 4"},
  };
  for (const BadCase& c : cases) {
    const std::string msg = manifest_error(c.file);
    const std::string prefix = (kFixtures / c.file).string() + ":" + c.position + ": ";
    EXPECT_EQ(msg.rfind(prefix, 0), 0u) << c.file << ": " << msg;
    EXPECT_NE(msg.find(c.words), std::string::npos) << c.file << ": " << msg;
  }
}

TEST(Manifest, ReduceKernelsAndTables) {
  const Manifest m = parse_manifest(R"(
[[ops]]
family = "reduce"
ops = ["sum", "argmax"]
dtypes = ["f16", "s8", "pred"]

[[kernel]]
name = "rms_factor"
family = "reduce"
reduce = "sum"
expr = 'x * x'
epilogue = 'rsqrt(acc / n + 1e-6)'
inputs = ["f32"]

[[kernel]]
name = "last_max"
family = "reduce"
reduce = "argmax"
tie_break = "high"
expr = 'abs(x - y)'
inputs = ["f32", "f16"]
)", "inline.toml");
  // sum over f16, s8, pred (3) and argmax over f16, s8 (pred is not a number) + 2 kernels.
  ASSERT_EQ(m.kernels.size(), 7u);
  Expr x;
  x.set_root(x.input(0, DType::s8));
  const ManifestKernel* sum_s8 = m.find(make_reduce_spec(Combiner::sum, x).name());
  ASSERT_NE(sum_s8, nullptr);
  EXPECT_EQ(sum_s8->spec.output, DType::s64);  // Nx: sums of signed integers are s64
  for (const ManifestKernel& k : m.kernels) {
    EXPECT_EQ(k.spec.family, "reduce");
    EXPECT_EQ(spec_from_canonical(k.spec.canonical()).name(), k.name);  // the generated header rebuilds it
    if (k.aliases == std::vector<std::string>{"rms_factor"}) {
      EXPECT_EQ(k.spec.output, DType::f32);
      EXPECT_EQ(k.spec.epilogue.to_string().find("rsqrt") != std::string::npos, true) << k.spec.epilogue.to_string();
    }
    if (k.aliases == std::vector<std::string>{"last_max"}) {
      EXPECT_EQ(k.spec.attribute("tie_break"), "high");
      EXPECT_EQ(k.spec.output, DType::s64);
    }
  }
}

TEST(Manifest, NamedInputsNameTheExpressionAndTheGeneratedParameters) {
  const Manifest m = parse_manifest(R"([[kernel]]
name = "swiglu"
expr = 'gate * sigmoid(gate) * up'
inputs = ["gate: f32", "up : f16"]

[[kernel]]
name = "scaled"
family = "reduce"
reduce = "sum"
expr = 'v * y'
inputs = ["v: f32", "f32"]
)", "/x/inline.toml");
  ASSERT_EQ(m.kernels.size(), 2u);
  for (const ManifestKernel& k : m.kernels) {
    if (k.aliases[0] == "swiglu") {
      EXPECT_EQ(k.input_names, (std::vector<std::string>{"gate", "up"}));
      EXPECT_EQ(k.spec.inputs, (std::vector<DType>{DType::f32, DType::f16}));
      // The names are only spelling: the kernel is the one of x * sigmoid(x) * y.
      const Expr same = parse_expr("x * sigmoid(x) * y", {DType::f32, DType::f16});
      EXPECT_EQ(k.name, make_map_spec(same, same.dtype(same.root())).name());
    } else {
      EXPECT_EQ(k.input_names, (std::vector<std::string>{"v", ""}));
    }
  }
  const std::string h = emit_api_header(m, {"app", "app::registry", "inline.toml"});
  EXPECT_NE(h.find("swiglu(const kiln::Tensor& gate, const kiln::Tensor& up, const kiln::Tensor* into"), std::string::npos) << h;
  EXPECT_NE(h.find("swiglu(kiln::Stream& stream, const kiln::Buffer& gate, const kiln::Buffer& up,"), std::string::npos) << h;
  EXPECT_NE(h.find("scaled(const kiln::Tensor& v, const kiln::Tensor& y, const std::vector<int>& axes"), std::string::npos) << h;

  auto error_of = [](const std::string& inputs, const std::string& expr = "a") {
    try {
      const Manifest bad = parse_manifest("[[kernel]]\nexpr = '" + expr + "'\ninputs = " + inputs + "\n", "m.toml");
      emit_api_header(bad, {"app", "app::registry", "m.toml"});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of(R"(["a: f32", "a: f32"])", "a + a").find("m.toml:3:21: input name 'a' is used twice"), std::string::npos)
      << error_of(R"(["a: f32", "a: f32"])", "a + a");
  EXPECT_NE(error_of(R"(["y: f32"])", "y").find("input name 'y' is taken"), std::string::npos);
  EXPECT_NE(error_of(R"(["exp: f32"])", "exp").find("input name 'exp' is taken"), std::string::npos);
  EXPECT_NE(error_of(R"(["2a: f32"])").find("must be an identifier"), std::string::npos);
  EXPECT_NE(error_of(R"(["a: f31"])").find("m.toml:3:11: unknown dtype 'f31'; did you mean 'f32'?"), std::string::npos)
      << error_of(R"(["a: f31"])");
  EXPECT_NE(error_of(R"(["into: f32"])", "into").find("input name 'into' is reserved"), std::string::npos);
  // Reserved names are refused by the manifest reader itself, at their place, header or not.
  try {
    parse_manifest("[[kernel]]\nname = \"class\"\nexpr = 'x'\ninputs = [\"f32\"]\n", "keyword.toml");
    ADD_FAILURE() << "a kernel named class was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keyword.toml:2:8: kernel name 'class' is reserved"), std::string::npos) << e.what();
  }
  try {
    parse_manifest("[[kernel]]\nexpr = 'options'\ninputs = [\"options: f32\"]\n", "param.toml");
    ADD_FAILURE() << "an input named options was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("param.toml:3:11: input name 'options' is reserved"), std::string::npos) << e.what();
  }
  EXPECT_NE(error_of(R"(["a: f32", "b: f32"])", "a").find("input 1 (b) is listed in 'inputs' but"), std::string::npos);
}

TEST(Manifest, InlineTextErrorsUseTheOrigin) {
  try {
    parse_manifest("[[kernel]]\nexpr = \"x +\"\ninputs = [\"f32\"]\n", "inline.toml");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("inline.toml:2:", 0), 0u) << e.what();
  }
  EXPECT_THROW(parse_manifest("[[kernel]]\ninputs = [\"f32\"]\n", "m"), Error);  // no expr
  EXPECT_THROW(parse_manifest("kernel = 3\n", "m"), Error);
  EXPECT_THROW(parse_manifest("[stuff]\n", "m"), Error);
  EXPECT_THROW(parse_manifest("[[ops]]\nops = [\"quotient\"]\ndtypes = [\"f32\"]\n", "m"), Error);
  EXPECT_THROW(parse_manifest("[[ops]]\nops = \"*\"\ndtypes = \"*\"\nblock_size = 100\n", "m"), Error);
  EXPECT_NO_THROW(parse_manifest("", "empty"));
}

TEST(Manifest, GoodFixture) {
  const Manifest m = read_manifest(kFixtures / "good.toml");
  // add, exp over f32 and s32 (4), as_type f32<->s32 (2), axpb (merged twice), exp f16 -> f32;
  // "multiline" is x + y over s32: the same spec as add on s32, so it merges into it.
  ASSERT_EQ(m.kernels.size(), 8u);
  EXPECT_TRUE(std::is_sorted(m.kernels.begin(), m.kernels.end(),
                             [](const auto& a, const auto& b) { return a.name < b.name; }));

  const ManifestKernel* add_s32 = m.find(single_op_spec(Op::add, DType::s32).name());
  ASSERT_NE(add_s32, nullptr);
  EXPECT_EQ(add_s32->aliases, std::vector<std::string>{"multiline"});

  const auto axpb = std::find_if(m.kernels.begin(), m.kernels.end(),
                                 [](const auto& k) { return !k.aliases.empty() && k.aliases[0] == "axpb"; });
  ASSERT_NE(axpb, m.kernels.end());
  EXPECT_EQ(axpb->aliases, (std::vector<std::string>{"axpb", "axpb_again"}));
  EXPECT_EQ(axpb->spec.block_size, 128);
  EXPECT_EQ(axpb->spec.inputs, (std::vector<DType>{DType::f32, DType::f32}));
  EXPECT_TRUE(axpb->targets.cuda && axpb->targets.vulkan);  // targets of duplicates are united
  EXPECT_EQ(axpb->name.rfind("map_f32f32_f32_", 0), 0u);

  const auto exp16 = std::find_if(m.kernels.begin(), m.kernels.end(),
                                  [](const auto& k) { return k.spec.inputs == std::vector<DType>{DType::f16}; });
  ASSERT_NE(exp16, m.kernels.end());
  EXPECT_EQ(exp16->spec.output, DType::f32);
  EXPECT_FALSE(exp16->targets.cuda);
  EXPECT_TRUE(exp16->targets.vulkan);

  EXPECT_NE(m.find(single_op_spec(Op::as_type, DType::s32, DType::f32).name()), nullptr);
  EXPECT_NE(m.find(single_op_spec(Op::exp, DType::s32).name()), nullptr);
}

// Every single-op spec the op table defines, with the targets that can run it.
std::map<std::string, TargetSet> all_single_op_specs() {
  std::map<std::string, TargetSet> out;
  for (const OpInfo& op : op_table())
    for (DType t : kAllDTypes) {
      if (!(op.accepts & dtype_bit(t))) continue;
      std::vector<KernelSpec> specs;
      if (op.op == Op::as_type) {
        for (DType to : kAllDTypes)
          if (to != t) specs.push_back(single_op_spec(op.op, t, to));
      } else {
        specs.push_back(single_op_spec(op.op, t));
      }
      for (const KernelSpec& s : specs) out[s.name()];
    }
  return out;
}

TEST(Manifest, OpsExpansionMatchesTheOpTable) {
  std::size_t expected = 0;
  for (const OpInfo& op : op_table()) {
    std::size_t n = 0;
    for (DType t : kAllDTypes) n += (op.accepts & dtype_bit(t)) != 0;
    expected += op.op == Op::as_type ? n * (kNumDTypes - 1) : n;
    EXPECT_EQ(expand_op(op.op, std::vector<DType>(kAllDTypes.begin(), kAllDTypes.end())).size(),
              op.op == Op::as_type ? n * (kNumDTypes - 1) : n)
        << op.name;
  }
  const auto specs = all_single_op_specs();
  EXPECT_LE(specs.size(), expected);

  const Manifest m = parse_manifest("[[ops]]\nops = \"*\"\ndtypes = \"*\"\n", "all.toml");
  EXPECT_EQ(m.kernels.size(), specs.size());
  for (const auto& [name, targets] : specs) {
    const ManifestKernel* k = m.find(name);
    ASSERT_NE(k, nullptr) << name;
    EXPECT_TRUE(k->targets.cuda) << name;
    EXPECT_EQ(k->targets.vulkan, targets.vulkan) << name << ": " << k->spec.canonical();
  }
  // Restricting targets and dtypes.
  const Manifest v = parse_manifest("[[ops]]\nops = [\"exp\", \"add\"]\ndtypes = [\"f64\"]\ntargets = [\"vulkan\"]\n", "v");
  ASSERT_EQ(v.kernels.size(), 2u);  // f64 exp too (glsl/math_f64.glsl)
  EXPECT_NE(v.find(single_op_spec(Op::add, DType::f64).name()), nullptr);
  EXPECT_NE(v.find(single_op_spec(Op::exp, DType::f64).name()), nullptr);
  for (const ManifestKernel& k : v.kernels) EXPECT_FALSE(k.targets.cuda) << k.name;
}

TEST(Manifest, BuiltinManifest) {
  const Manifest m = read_manifest(fs::path(KILN_SOURCE_DIR) / "kernels/builtin.toml");
  for (const auto& [name, targets] : all_single_op_specs()) EXPECT_NE(m.find(name), nullptr) << name;
  std::set<std::string> aliases;
  for (const auto& k : m.kernels) aliases.insert(k.aliases.begin(), k.aliases.end());
  for (const char* a : {"gelu_tanh_f32", "gelu_tanh_f16", "gelu_tanh_bf16", "chain6_f32", "copy_8", "copy_16",
                        "copy_32", "copy_64"})
    EXPECT_TRUE(aliases.count(a)) << a;
}

TEST(Manifest, AKernelTheBuildsTargetsCannotRunIsAnErrorAtItsLine) {
  // f64 exp was refused on Vulkan (GLSL has no f64 functions) until glsl/math_f64.glsl: it now
  // builds for both targets, and for either on request.
  const std::string text = "[[kernel]]\nexpr = 'exp(x)'\ninputs = [\"f64\"]\n";
  const Manifest both = parse_manifest(text, "user.toml");
  ASSERT_EQ(both.kernels.size(), 1u);
  EXPECT_EQ(both.kernels[0].targets, (TargetSet{true, true}));
  const Manifest cuda_only = parse_manifest(text, "user.toml", TargetSet{true, false});
  ASSERT_EQ(cuda_only.kernels.size(), 1u);
  EXPECT_EQ(cuda_only.kernels[0].targets, (TargetSet{true, false}));
  const Manifest opted = parse_manifest(text + "targets = [\"vulkan\"]\n", "user.toml");
  ASSERT_EQ(opted.kernels.size(), 1u);
  EXPECT_EQ(opted.kernels[0].targets, (TargetSet{false, true}));
  // A kernel no target can run (more inputs than a map kernel takes): an error at its line that
  // says so, not a hint to build it for the other target.
  const std::string five = "[[kernel]]\nexpr = 'in0 + in1 + in2 + in3 + in4'\ninputs = [\"f32\", \"f32\", \"f32\", \"f32\", \"f32\"]\n";
  try {
    parse_manifest(five, "user.toml");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("user.toml:2:8: "), std::string::npos) << m;
    EXPECT_NE(m.find("no target can run the kernel: 5 inputs; map kernels take at most 4"), std::string::npos) << m;
  }
  EXPECT_EQ(parse_manifest("[[ops]]\nops = [\"exp\"]\ndtypes = [\"f64\"]\n", "ops.toml").kernels.size(), 1u);
}

// [[kernel]] tables of the rows family: `op` and the inputs (no expression); mistakes at their
// file:line:col.
TEST(Manifest, RowsKernels) {
  const Manifest m = parse_manifest(
      "[[kernel]]\nname = \"norm\"\nfamily = \"rows\"\nop = \"layer_norm\"\ninputs = [\"h: bf16\", \"g: bf16\", \"b: bf16\"]\n"
      "[[kernel]]\nname = \"probs\"\nfamily = \"rows\"\nop = \"softmax\"\ninputs = [\"s: f32\", \"keep: pred\"]\n",
      "rows.toml");
  ASSERT_EQ(m.kernels.size(), 2u);
  for (const ManifestKernel& k : m.kernels) {
    if (k.aliases.front() == "norm") EXPECT_EQ(k.spec.canonical(), make_rows_spec(RowsOp::layer_norm, DType::bf16, 2).canonical());
    else EXPECT_EQ(k.spec.canonical(), make_rows_spec(RowsOp::softmax, DType::f32, 0, RowsBias::mask).canonical());
  }
  auto error_of = [](const std::string& text) -> std::string {
    try {
      parse_manifest(text, "rows.toml");
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string head = "[[kernel]]\nfamily = \"rows\"\n";
  std::string e = error_of(head + "op = \"softmaks\"\ninputs = [\"f32\"]\n");
  EXPECT_NE(e.find("rows.toml:3:6: "), std::string::npos) << e;
  EXPECT_NE(e.find("unknown row op 'softmaks'; did you mean 'softmax'?"), std::string::npos) << e;
  e = error_of(head + "op = \"rms_norm\"\ninputs = [\"f32\", \"f16\"]\n");
  EXPECT_NE(e.find("rows.toml:4:10: input 1 is f16; rms_norm takes inputs of x's dtype (f32)"), std::string::npos) << e;
  e = error_of(head + "op = \"softmax\"\ninputs = [\"s32\"]\n");
  EXPECT_NE(e.find("needs a float tensor"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"f32\"]\n");
  EXPECT_NE(e.find("needs an 'op' key"), std::string::npos) << e;
  e = error_of(head + "op = \"softmax\"\nexpr = 'x'\ninputs = [\"f32\"]\n");
  EXPECT_NE(e.find("expr"), std::string::npos) << e;

  // The fused forms: a prologue over the first inputs, an epilogue over y and the last ones, the
  // residual output.
  const Manifest f = parse_manifest(
      "[[kernel]]\nname = \"add_norm\"\nfamily = \"rows\"\nop = \"rms_norm\"\nprologue = 'h + r'\n"
      "epilogue = 'y * sigmoid(gate)'\ninputs = [\"h: bf16\", \"r: bf16\", \"g: bf16\", \"gate: f32\"]\nresidual = true\n",
      "fused.toml");
  ASSERT_EQ(f.kernels.size(), 1u);
  RowsFusion fu;
  fu.prologue = parse_expr("x + y", {DType::bf16, DType::bf16});
  fu.epilogue = parse_expr("x * sigmoid(y)", {DType::f32, DType::f32});
  fu.residual = true;
  EXPECT_EQ(f.kernels[0].spec.canonical(), make_rows_spec(RowsOp::rms_norm, DType::bf16, 1, RowsBias::none, false, &fu).canonical());
  e = error_of(head + "op = \"rms_norm\"\nprologue = 'b * 2'\ninputs = [\"a: f32\", \"b: f32\"]\n");
  EXPECT_NE(e.find("rows.toml:4:12: the prologue uses the first 2 inputs but not input 0"), std::string::npos) << e;
  e = error_of(head + "op = \"rms_norm\"\nepilogue = 'y * a'\ninputs = [\"a: f32\", \"b: f32\"]\n");
  EXPECT_NE(e.find("rows.toml:4:12: the epilogue uses input 0 (a) but not input 1 (b)"), std::string::npos) << e;
  // Unnamed inputs keep their names in the epilogue: rms_norm(x) * gamma, gated by input 2 (z).
  const Manifest un = parse_manifest(head + "op = \"rms_norm\"\nepilogue = 'y * sigmoid(z)'\ninputs = [\"f32\", \"f32\", \"f32\"]\n",
                                     "rows.toml");
  RowsFusion gate;
  gate.epilogue = parse_expr("x * sigmoid(y)", {DType::f32, DType::f32});
  EXPECT_EQ(un.kernels.at(0).spec.canonical(), make_rows_spec(RowsOp::rms_norm, DType::f32, 1, RowsBias::none, false, &gate).canonical());
  e = error_of(head + "op = \"softmax\"\nepilogue = 'z * 2'\ninputs = [\"f32\", \"f32\"]\n");
  EXPECT_NE(e.find("input 'z' (input 2) is not given: the kernel has 2 input(s)"), std::string::npos) << e;
  e = error_of(head + "op = \"rms_norm\"\nepilogue = 'sigmoid(z)'\ninputs = [\"f32\", \"f32\", \"f32\"]\n");
  EXPECT_NE(e.find("the epilogue must use y (the op's result)"), std::string::npos) << e;
  e = error_of(head + "op = \"softmax\"\ninputs = [\"f32\"]\nresidual = true\n");
  EXPECT_NE(e.find("rows.toml:5:12: softmax has no residual output"), std::string::npos) << e;
  e = error_of(head + "op = \"rms_norm\"\ninputs = [\"f32\"]\nresidual = 1\n");
  EXPECT_NE(e.find("rows.toml:5:12: 'residual' must be true or false"), std::string::npos) << e;
}

TEST(Manifest, ScanKernels) {
  const Manifest m = parse_manifest(
      "[[kernel]]\nname = \"running_total\"\nfamily = \"scan\"\nop = \"cumulative_sum\"\ninputs = [\"counts: s32\"]\n"
      "[[kernel]]\nname = \"running_max\"\nfamily = \"scan\"\nop = \"cumulative_max\"\ninputs = [\"bf16\"]\n",
      "scan.toml");
  ASSERT_EQ(m.kernels.size(), 2u);
  for (const ManifestKernel& k : m.kernels) {
    if (k.aliases.front() == "running_total") EXPECT_EQ(k.spec.canonical(), make_scan_spec(Combiner::sum, DType::s32).canonical());
    else EXPECT_EQ(k.spec.canonical(), make_scan_spec(Combiner::max, DType::bf16).canonical());
  }
  auto error_of = [](const std::string& text) -> std::string {
    try {
      parse_manifest(text, "scan.toml");
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string head = "[[kernel]]\nfamily = \"scan\"\n";
  std::string e = error_of(head + "op = \"cumulative_summ\"\ninputs = [\"f32\"]\n");
  EXPECT_NE(e.find("scan.toml:3:6: unknown scan op 'cumulative_summ'; did you mean 'cumulative_sum'?"), std::string::npos) << e;
  e = error_of(head + "op = \"cumulative_sum\"\ninputs = [\"f32\", \"f32\"]\n");
  EXPECT_NE(e.find("scan.toml:4:10: a scan takes one input, not 2"), std::string::npos) << e;
  e = error_of(head + "op = \"cumulative_min\"\ninputs = [\"pred\"]\n");
  EXPECT_NE(e.find("cumulative_min takes a numeric tensor"), std::string::npos) << e;
  e = error_of(head + "op = \"cumulative_min\"\ninputs = [\"f32\"]\noutput = \"f64\"\n");
  EXPECT_NE(e.find("scan.toml:5:10: a scan's output is x's dtype (f32), not f64"), std::string::npos) << e;
  e = error_of(head + "op = \"cumulative_sum\"\nexpr = 'x'\ninputs = [\"f32\"]\n");
  EXPECT_NE(e.find("expr"), std::string::npos) << e;
}

TEST(Manifest, ContractKernels) {
  const Manifest m = parse_manifest(
      "[[kernel]]\nname = \"project\"\nfamily = \"contract\"\ninputs = [\"act: bf16\", \"weight: bf16\"]\n"
      "[[kernel]]\nname = \"int8_gemm\"\nfamily = \"contract\"\nop = \"matmul\"\ninputs = [\"s8\", \"s8\"]\n"
      "output = \"s32\"\n",
      "contract.toml");
  ASSERT_EQ(m.kernels.size(), 2u);
  for (const ManifestKernel& k : m.kernels) {
    if (k.aliases.front() == "project")
      EXPECT_EQ(k.spec.canonical(), make_contract_spec(DType::bf16, DType::bf16, DType::bf16).canonical());
    else
      EXPECT_EQ(k.spec.canonical(), make_contract_spec(DType::s8, DType::s8, DType::s32).canonical());
  }
  auto error_of = [](const std::string& text) -> std::string {
    try {
      parse_manifest(text, "contract.toml");
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string head = "[[kernel]]\nfamily = \"contract\"\n";
  std::string e = error_of(head + "op = \"conv\"\ninputs = [\"f32\", \"f32\"]\n");
  EXPECT_NE(e.find("contract.toml:3:6: unknown contraction op 'conv' (expected: matmul)"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"f32\"]\n");
  EXPECT_NE(e.find("contract.toml:3:10: a contraction takes two inputs (a, b), not 1"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"f32\", \"f32\"]\noutput = \"s32\"\n");
  EXPECT_NE(e.find("contract.toml:4:10: an integer output (s32) needs integer inputs"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"pred\", \"pred\"]\n");
  EXPECT_NE(e.find("contract.toml:3:10:"), std::string::npos) << e;
  EXPECT_NE(e.find("pred"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"f32\", \"f32\"]\nblock_size = 128\n");
  EXPECT_NE(e.find("block_size"), std::string::npos) << e;
  // Epilogues: over y and the inputs after a and b, by name.
  const Manifest f = parse_manifest(head + "inputs = [\"act: bf16\", \"weight: bf16\", \"bias: f32\"]\n"
                                            "epilogue = 'sigmoid(y + bias)'\n", "contract.toml");
  const Expr want = parse_expr("sigmoid(x + y)", {DType::f32, DType::f32});
  EXPECT_EQ(f.kernels.at(0).spec.canonical(), make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &want).canonical());
  e = error_of(head + "inputs = [\"act: f32\", \"weight: f32\", \"bias: f32\"]\n");
  EXPECT_NE(e.find("contract.toml:3:10: a contraction takes two inputs (a, b) and, with an 'epilogue', up to 2 more"),
            std::string::npos) << e;
  e = error_of(head + "inputs = [\"act: f32\", \"weight: f32\"]\nepilogue = 'y * weight'\n");
  EXPECT_NE(e.find("contract.toml:4:12: the epilogue reads y (the sum) and the inputs after a and b, not a or b"),
            std::string::npos) << e;
  e = error_of(head + "inputs = [\"act: f32\", \"weight: f32\", \"bias: f32\", \"r: f32\"]\nepilogue = 'y + bias'\n");
  EXPECT_NE(e.find("the epilogue does not use input 3 (r)"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"act: f32\", \"weight: f32\", \"y: f32\"]\nepilogue = 'y + y'\n");
  EXPECT_NE(e.find("contract.toml:3:38: input name 'y' is taken"), std::string::npos) << e;  // y is the sum
  const Manifest tf = parse_manifest(head + "inputs = [\"f32\", \"f32\"]\nprecision = \"tf32\"\n", "contract.toml");
  EXPECT_EQ(tf.kernels.at(0).spec.canonical(), make_contract_spec(DType::f32, DType::f32, DType::f32, nullptr, true).canonical());
  e = error_of(head + "inputs = [\"f32\", \"f32\"]\nprecision = \"fp8\"\n");
  EXPECT_NE(e.find("contract.toml:4:13: unknown precision 'fp8' (expected: highest, tf32)"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"f64\", \"f64\"]\nprecision = \"tf32\"\n");
  EXPECT_NE(e.find("contract.toml:4:13: precision tf32 applies to products summed in f32"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"act: f32\", \"weight: f32\"]\nepilogue = 'y + nope'\n");
  EXPECT_NE(e.find("contract.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("inputs are act, weight, y, or x, y, z, w or in0, in1, ..."), std::string::npos) << e;
  // Unnamed inputs keep their names in the epilogue (z, w, in2, in3: inputs 2 and 3), y is the sum,
  // and x (a) is refused, never taken for the sum.
  for (const char* epi : {"y + z", "y + in2"}) {
    const Manifest u = parse_manifest(head + "inputs = [\"bf16\", \"bf16\", \"f32\"]\nepilogue = '" + epi + "'\n",
                                      "contract.toml");
    const Expr plus = parse_expr("x + y", {DType::f32, DType::f32});
    EXPECT_EQ(u.kernels.at(0).spec.canonical(), make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &plus).canonical())
        << epi;
  }
  e = error_of(head + "inputs = [\"f32\", \"f32\", \"f32\"]\nepilogue = 'x + z'\n");
  EXPECT_NE(e.find("the epilogue must use y (the sum)"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"f32\", \"f32\", \"f32\"]\nepilogue = 'x + y + z'\n");
  EXPECT_NE(e.find("not a or b (x and in0 name a"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"a: f32\", \"b: f32\", \"bias: f32\"]\nepilogue = 'x + bias'\n");
  EXPECT_NE(e.find("the epilogue must use y (the sum)"), std::string::npos) << e;
  e = error_of(head + "inputs = [\"f32\", \"f32\", \"f32\", \"f32\"]\nepilogue = 'y + z'\n");
  EXPECT_NE(e.find("the epilogue does not use input 3 (w / in3)"), std::string::npos) << e;
  // The sum is y only: a positional name past the kernel's inputs reaches nothing.
  for (const char* epi : {"relu(z)", "y + z", "in2 * 2", "y + w"}) {
    e = error_of(head + "inputs = [\"f32\", \"f32\"]\nepilogue = '" + epi + "'\n");
    EXPECT_NE(e.find("is not given: the kernel has 2 input(s)"), std::string::npos) << epi << ": " << e;
  }
}

// Conv kernels: the contraction family's keys; Nx's floating default output (s8 x s8 -> f32).
TEST(Manifest, ConvKernels) {
  const Manifest m = parse_manifest("[[kernel]]\nfamily = \"conv\"\ninputs = [\"s8\", \"s8\"]\n[[kernel]]\nfamily = \"conv\"\n"
                                    "inputs = [\"act: bf16\", \"wt: bf16\", \"bias: f32\"]\nepilogue = 'sigmoid(y + bias)'\n", "conv.toml");
  ASSERT_EQ(m.kernels.size(), 2u);
  const bool s8_first = m.kernels[0].spec.inputs.size() == 2;
  const KernelSpec& plain = m.kernels[s8_first ? 0 : 1].spec;
  const KernelSpec& fused = m.kernels[s8_first ? 1 : 0].spec;
  EXPECT_EQ(plain.canonical(), make_conv_spec(DType::s8, DType::s8, DType::f32).canonical());
  const Expr sig = parse_expr("sigmoid(x + y)", {DType::f32, DType::f32});
  EXPECT_EQ(fused.canonical(), make_conv_spec(DType::bf16, DType::bf16, DType::bf16, &sig).canonical());
  EXPECT_NE(fused.canonical(), make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &sig).canonical());
  try {
    parse_manifest("[[kernel]]\nfamily = \"conv\"\nop = \"matmul\"\ninputs = [\"f32\", \"f32\"]\n", "conv.toml");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv.toml:3:6: unknown convolution op 'matmul' (expected: conv)"), std::string::npos) << e.what();
  }
}

// ---- the built-in registry --------------------------------------------------------------------

TEST(BuiltinRegistry, HasEveryReductionOfEveryDtype) {
  const Registry& r = builtin_registry();
  if (r.kernels.empty()) GTEST_SKIP() << "built with KILN_BUILD_KERNELS=OFF";
  int found = 0;
  for (const CombinerInfo& c : combiner_table())
    for (DType t : kAllDTypes) {
      if (!(c.accepts & dtype_bit(t))) continue;
      Expr e;
      e.set_root(e.input(0, t));
      const KernelSpec spec = make_reduce_spec(c.combiner, e);  // what kiln::sum(x) etc. look up
      const KernelEntry* k = r.find(spec.name());
      ASSERT_NE(k, nullptr) << c.op << " " << dtype_name(t);
      EXPECT_EQ(std::string(k->family), "reduce");
      EXPECT_EQ(k->num_functions, 3);
      ++found;
    }
  EXPECT_EQ(found, 100);  // 8 reductions: 13 + 13 + 12 + 12 + 13 + 13 + 12 + 12 dtypes
}

TEST(BuiltinRegistry, HasEveryScanOfEveryNumericDtype) {
  const Registry& r = builtin_registry();
  if (r.kernels.empty()) GTEST_SKIP() << "built with KILN_BUILD_KERNELS=OFF";
  int found = 0;
  for (const ScanOpInfo& i : scan_op_table())
    for (DType t : kAllDTypes) {
      if (t == DType::pred) continue;
      const KernelEntry* k = r.find(make_scan_spec(i.combiner, t).name());
      ASSERT_NE(k, nullptr) << i.name << " " << dtype_name(t);
      EXPECT_EQ(std::string(k->family), "scan");
      EXPECT_EQ(k->num_functions, 3);
      ++found;
    }
  EXPECT_EQ(found, 48);  // 4 scans x 12 dtypes
}

TEST(BuiltinRegistry, HasMatmulOfTheListedDtypes) {
  const Registry& r = builtin_registry();
  if (r.kernels.empty()) GTEST_SKIP() << "built with KILN_BUILD_KERNELS=OFF";
  for (DType t : {DType::f16, DType::bf16, DType::f32, DType::f64, DType::s32}) {
    const KernelEntry* k = r.find(make_contract_spec(t, t, t).name());
    ASSERT_NE(k, nullptr) << dtype_name(t);
    EXPECT_EQ(std::string(k->family), "contract");
    EXPECT_EQ(k->num_functions, 1);
    EXPECT_EQ(k->block_size, 256);
  }
}

TEST(BuiltinRegistry, HasEverySingleOpKernel) {
  const Registry& r = builtin_registry();
  if (r.kernels.empty()) GTEST_SKIP() << "built with KILN_BUILD_KERNELS=OFF";
  EXPECT_TRUE(std::is_sorted(r.kernels.begin(), r.kernels.end(), [](const KernelEntry& a, const KernelEntry& b) {
    return std::string_view(a.name) < std::string_view(b.name);
  }));
  for (const OpInfo& op : op_table())
    for (DType t : kAllDTypes) {
      if (!(op.accepts & dtype_bit(t))) continue;
      const KernelSpec spec = op.op == Op::as_type ? single_op_spec(op.op, t, t == DType::f32 ? DType::s32 : DType::f32)
                                                   : single_op_spec(op.op, t);
      const KernelEntry* e = r.find(spec.name());
      ASSERT_NE(e, nullptr) << op.name << " " << dtype_name(t) << ": " << spec.name();
      EXPECT_EQ(std::string(e->spec), spec.canonical());
      EXPECT_EQ(e->block_size, spec.block_size);
      ASSERT_EQ(e->num_functions, 2);
      EXPECT_EQ(std::string(e->functions[kMapContiguous].symbol), cuda_symbols(spec)[kMapContiguous]);
      EXPECT_LT(e->cuda_image, int(r.cuda_images.size()));
      for (int f = 0; f < e->num_functions; ++f) {
        const EmbeddedBlob& spv = e->functions[f].spirv;
        EXPECT_EQ(spv.empty(), !target_supports(spec, Target::glsl)) << e->name;
        if (spv.empty()) continue;
        EXPECT_EQ(spv.size % 4, 0u);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(spv.data) % 4, 0u);
        EXPECT_EQ(*reinterpret_cast<const std::uint32_t*>(spv.data), 0x07230203u) << e->name;
      }
    }
  for (const EmbeddedBlob& img : r.cuda_images) {
    ASSERT_GE(img.size, 4u);
    EXPECT_EQ(*reinterpret_cast<const std::uint32_t*>(img.data), 0xBA55ED50u);  // fatbin magic
  }
}

}  // namespace
}  // namespace kiln
