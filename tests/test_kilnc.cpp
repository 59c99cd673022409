// The kilnc binary: build, compile, pack, emit and ops as a user runs them — exit codes, what is
// written and what is left untouched, the machine-wide blob cache.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "codegen/api_header.hpp"
#include "codegen/emit.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/families/rows.hpp"
#include "codegen/families/scan.hpp"
#include "codegen/family.hpp"
#include "codegen/manifest.hpp"
#include "core/error.hpp"
#include "runtime/registry.hpp"

namespace kiln {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(KILN_SOURCE_DIR) / "tests/data/manifests";
const fs::path kKilnc = fs::path(KILN_BINARY_DIR) / "kilnc";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct KilncRun {
  int status;
  std::string out, err;
};

// Runs kilnc with |args|, |env| (NAME=value ...) added to its environment.
KilncRun kilnc(const std::string& args, const std::string& env = "") {
  const fs::path dir = fs::temp_directory_path() / ("kiln-kilnc-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string cmd = env + " '" + kKilnc.string() + "' " + args + " >'" + (dir / "out").string() + "' 2>'" +
                          (dir / "err").string() + "'";
  const int rc = std::system(cmd.c_str());
  KilncRun r{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_all(dir / "out"), read_all(dir / "err")};
  fs::remove_all(dir);
  return r;
}

class Kilnc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kKilnc)) GTEST_SKIP() << "kilnc not built at " << kKilnc;
    tmp_ = fs::temp_directory_path() / ("kiln-test-manifest-" + std::to_string(::getpid()));
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override {
    if (!tmp_.empty()) fs::remove_all(tmp_);
  }
  fs::path tmp_;
};

std::map<std::string, fs::file_time_type> snapshot(const fs::path& dir) {
  std::map<std::string, fs::file_time_type> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out[e.path().string()] = e.last_write_time();
  return out;
}

TEST_F(Kilnc, BuildTargetsComeFromTheCommandLine) {
  const fs::path m = tmp_ / "f64.toml";
  std::ofstream(m) << "[[kernel]]\nexpr = 'exp(x)'\ninputs = [\"f64\"]\n";
  KilncRun vulkan = kilnc("build --manifest '" + m.string() + "' --out '" + (tmp_ / "a").string() + "' --targets vulkan");
  EXPECT_EQ(vulkan.status, 0) << vulkan.err;
  EXPECT_TRUE(fs::exists(tmp_ / "a" / "kernels.json"));
  KilncRun cuda = kilnc("build --manifest '" + m.string() + "' --out '" + (tmp_ / "b").string() + "' --targets cuda");
  EXPECT_EQ(cuda.status, 0) << cuda.err;
  EXPECT_EQ(kilnc("build --manifest '" + m.string() + "' --out '" + (tmp_ / "c").string() + "' --targets metal").status, 2);
}

TEST_F(Kilnc, BadManifestExits2AndLeavesTheOutputUntouched) {
  const fs::path out = tmp_ / "out";
  // A previous good build, then a bad one into the same folder.
  KilncRun good = kilnc("build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + out.string() + "'");
  ASSERT_EQ(good.status, 0) << good.err;
  const auto before = snapshot(out);
  const std::string index = read_all(out / "kernels.json");
  for (const char* bad : {"bad_expr.toml", "syntax_error.toml", "unknown_op.toml"}) {
    KilncRun r = kilnc("build --manifest '" + (kFixtures / bad).string() + "' --out '" + out.string() + "'");
    EXPECT_EQ(r.status, 2) << bad;
    EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
    EXPECT_EQ(snapshot(out), before) << bad;
  }
  KilncRun r = kilnc("build --manifest '" + (kFixtures / "bad_expr.toml").string() + "' --out '" + out.string() + "'");
  EXPECT_NE(r.err.find("bad_expr.toml:4:15: "), std::string::npos) << r.err;
  EXPECT_EQ(read_all(out / "kernels.json"), index);

  // Into a fresh folder: nothing is created.
  KilncRun fresh = kilnc("build --manifest '" + (kFixtures / "bad_dtype.toml").string() + "' --out '" + (tmp_ / "fresh").string() + "'");
  EXPECT_EQ(fresh.status, 2);
  EXPECT_FALSE(fs::exists(tmp_ / "fresh"));
}

TEST_F(Kilnc, BuildIsIncremental) {
  const fs::path out = tmp_ / "out";
  const std::string args = "build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + out.string() + "'";
  ASSERT_EQ(kilnc(args).status, 0);
  EXPECT_TRUE(fs::exists(out / "kernels.json"));
  EXPECT_TRUE(fs::exists(out / "cuda/batch_000.cu"));
  const auto before = snapshot(out);
  std::size_t comps = 0;
  for (const auto& [path, t] : before) comps += path.ends_with(".comp");
  EXPECT_EQ(comps, 16u);  // 8 kernels x 2 functions, all with vulkan
  ASSERT_EQ(kilnc(args).status, 0);
  EXPECT_EQ(snapshot(out), before);  // nothing rewritten

  const std::string index = read_all(out / "kernels.json");
  const std::string add = single_op_spec(Op::add, DType::f32).name();
  EXPECT_NE(index.find("\"" + add + "\""), std::string::npos);
  EXPECT_NE(index.find("\"axpb_again\""), std::string::npos);
  EXPECT_NE(index.find("\"" + add + "_contig\""), std::string::npos);
}

TEST_F(Kilnc, CudaBatchesRebuildOnlyWhenTheTemplatesTheyIncludeChange) {
  // A CUDA batch's key covers the templates it includes, not the whole templates tree: editing the
  // GLSL prelude must not recompile every fatbin. A stand-in nvcc counts its runs.
  const fs::path out = tmp_ / "out", templates = tmp_ / "templates", count = tmp_ / "nvcc-runs";
  ASSERT_EQ(kilnc("build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + out.string() + "'").status, 0);
  fs::copy(fs::path(KILN_SOURCE_DIR) / "templates", templates, fs::copy_options::recursive);
  const fs::path nvcc = tmp_ / "fake-nvcc";
  {
    std::ofstream f(nvcc);
    f << "#!/bin/sh\necho run >> '" << count.string() << "'\n"
      << "while [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then printf 'P\\355U\\272' > \"$2\"; fi; shift; done\n";
  }
  fs::permissions(nvcc, fs::perms::owner_all);
  const std::string compile = "compile --index '" + (out / "kernels.json").string() + "' --nvcc '" + nvcc.string() +
                              "' --cuda-include '" + templates.string() + "' --no-vulkan --cache-dir ''";
  auto runs = [&] {
    const std::string t = fs::exists(count) ? read_all(count) : "";
    return std::count(t.begin(), t.end(), '\n');
  };
  KilncRun r = kilnc(compile);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto batches = runs();
  ASSERT_GT(batches, 0);
  std::ofstream(templates / "glsl/ops.glsl", std::ios::app) << "\n// an edit of the GLSL prelude\n";
  ASSERT_EQ(kilnc(compile).status, 0);
  EXPECT_EQ(runs(), batches) << "a GLSL edit recompiled CUDA batches";
  std::ofstream(templates / "cuda/ops.cuh", std::ios::app) << "\n// an edit of the CUDA prelude\n";
  ASSERT_EQ(kilnc(compile).status, 0);
  EXPECT_EQ(runs(), 2 * batches) << "a CUDA prelude edit must recompile every batch (map.cuh includes it)";
}

TEST_F(Kilnc, PackValidatesBlobs) {
  const fs::path out = tmp_ / "out";
  ASSERT_EQ(kilnc("build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + out.string() + "'").status, 0);
  fs::create_directories(out / "spirv");
  for (const auto& e : fs::directory_iterator(out / "glsl")) {
    std::ofstream f(out / "spirv" / fs::path(e.path().filename()).replace_extension(".spv"), std::ios::binary);
    f << "not spirv";
  }
  KilncRun r = kilnc("pack --index '" + (out / "kernels.json").string() + "' --spirv-dir '" + (out / "spirv").string() +
                "' --out '" + (tmp_ / "registry.cpp").string() + "'");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("not a SPIR-V module"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp_ / "registry.cpp"));

  // Without blobs the registry lists the kernels with no CUDA image and no SPIR-V.
  r = kilnc("pack --index '" + (out / "kernels.json").string() + "' --out '" + (tmp_ / "registry.cpp").string() + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string src = read_all(tmp_ / "registry.cpp");
  EXPECT_NE(src.find("const kiln::Registry& builtin_registry()"), std::string::npos);
  EXPECT_NE(src.find(".incbin"), std::string::npos);
}

TEST_F(Kilnc, EmitPrintsTheKernel) {
  const KernelSpec spec = make_map_spec(parse_expr("x * sigmoid(x) + y", {DType::f32, DType::f32}), DType::f32);
  KilncRun cuda = kilnc("emit --expr 'x * sigmoid(x) + y' --dtypes f32,f32,f32 --target cuda");
  ASSERT_EQ(cuda.status, 0) << cuda.err;
  EXPECT_NE(cuda.out.find(spec.name()), std::string::npos) << cuda.out;
  EXPECT_EQ(cuda.out, emit_cuda(spec));
  KilncRun glsl = kilnc("emit --expr 'x * sigmoid(x) + y' --dtypes f32,f32,f32 --target glsl --function strided");
  ASSERT_EQ(glsl.status, 0) << glsl.err;
  EXPECT_EQ(glsl.out, emit_glsl(spec, kMapStrided));

  KilncRun bad = kilnc("emit --expr 'x +' --dtypes f32,f32 --target cuda");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--expr:1:4: "), std::string::npos) << bad.err;
  EXPECT_EQ(kilnc("emit --expr 'x' --dtypes f33,f32 --target cuda").status, 2);
  EXPECT_EQ(kilnc("emit --expr 'exp(x)' --dtypes f64,f64 --target glsl").status, 0);  // glsl/math_f64.glsl

  // The reduce family: the prologue, the reduction, the epilogue; any of its functions.
  const Expr epi = parse_expr_named("rsqrt(acc / n + 1e-6)", {DType::f32, DType::s64}, {"acc", "n"});
  const KernelSpec rms = make_reduce_spec(Combiner::sum, parse_expr("x * x", {DType::f32}), &epi, DType::f32);
  const std::string r = "emit --family reduce --reduce sum --expr 'x * x' --epilogue 'rsqrt(acc / n + 1e-6)' --dtypes f32,f32";
  KilncRun rc = kilnc(r + " --target cuda");
  ASSERT_EQ(rc.status, 0) << rc.err;
  EXPECT_EQ(rc.out, emit_cuda(rms));
  KilncRun rg = kilnc(r + " --target glsl --function final");
  ASSERT_EQ(rg.status, 0) << rg.err;
  EXPECT_EQ(rg.out, emit_glsl(rms, 2));
  KilncRun rbad = kilnc(r + " --target glsl --function strided");
  EXPECT_EQ(rbad.status, 2);
  EXPECT_NE(rbad.err.find("(rows, cols, final)"), std::string::npos) << rbad.err;
  EXPECT_EQ(kilnc("emit --family reduce --reduce summ --expr x --dtypes f32,f32 --target cuda").status, 2);

  // Listed inputs the expression does not use were ignored silently; now an error.
  KilncRun unused = kilnc("emit --expr 'x' --dtypes f32,f16,f32 --target cuda");
  EXPECT_EQ(unused.status, 2);
  EXPECT_NE(unused.err.find("--expr 'x' does not use input 1 (f16)"), std::string::npos) << unused.err;

  // The rows family: --op, x's dtype and the affine inputs'; its one GLSL function.
  const KernelSpec ln = make_rows_spec(RowsOp::layer_norm, DType::bf16, 2);
  KilncRun lc = kilnc("emit --family rows --op layer_norm --expr x --dtypes bf16,bf16,bf16,bf16 --target cuda");
  ASSERT_EQ(lc.status, 0) << lc.err;
  EXPECT_EQ(lc.out, emit_cuda(ln));
  KilncRun lg = kilnc("emit --family rows --op layer_norm --expr x --dtypes bf16,bf16,bf16,bf16 --target glsl");
  ASSERT_EQ(lg.status, 0) << lg.err;
  EXPECT_EQ(lg.out, emit_glsl(ln, 0));
  KilncRun lbad = kilnc("emit --family rows --op softmax --expr x --dtypes f32,f16 --target cuda");
  EXPECT_EQ(lbad.status, 2);
  EXPECT_NE(lbad.err.find("--dtypes: softmax has no kernel taking f32,f16 (its forms for f32: f32,f32; "),
            std::string::npos) << lbad.err;
  EXPECT_EQ(kilnc("emit --family rows --op softmax --expr 'x * 2' --dtypes f32,f32 --target cuda").status, 2);
  EXPECT_EQ(kilnc("emit --family rows --op softmaks --expr x --dtypes f32,f32 --target cuda").status, 2);
  EXPECT_EQ(kilnc("emit --op softmax --expr x --dtypes f32,f32 --target cuda").status, 2);

  // The scan family through the same --op path: its three GLSL functions by name.
  const KernelSpec cs = make_scan_spec(Combiner::sum, DType::u16);
  KilncRun sc = kilnc("emit --family scan --op cumulative_sum --expr x --dtypes u16,u16 --target cuda");
  ASSERT_EQ(sc.status, 0) << sc.err;
  EXPECT_EQ(sc.out, emit_cuda(cs));
  KilncRun sg = kilnc("emit --family scan --op cumulative_sum --expr x --dtypes u16,u16 --target glsl --function spine");
  ASSERT_EQ(sg.status, 0) << sg.err;
  EXPECT_EQ(sg.out, emit_glsl(cs, 2));
  KilncRun sbad = kilnc("emit --family scan --op cumulative_sum --expr x --dtypes pred,pred --target cuda");
  EXPECT_EQ(sbad.status, 2);
  EXPECT_NE(sbad.err.find("cumulative_sum has no kernel taking pred,pred (its forms for pred: none)"), std::string::npos)
      << sbad.err;
  KilncRun sop = kilnc("emit --family scan --op cumsum --expr x --dtypes f32,f32 --target cuda");
  EXPECT_EQ(sop.status, 2);
  EXPECT_NE(sop.err.find("the scan family has no op 'cumsum' (cumulative_sum, cumulative_product"), std::string::npos)
      << sop.err;
}

TEST_F(Kilnc, OpsListsTheTable) {
  KilncRun text = kilnc("ops");
  ASSERT_EQ(text.status, 0);
  KilncRun js = kilnc("ops --json");
  ASSERT_EQ(js.status, 0);
  for (const OpInfo& op : op_table()) {
    EXPECT_NE(text.out.find(std::string(op.name) + " "), std::string::npos) << op.name;
    EXPECT_NE(js.out.find("\"name\": \"" + std::string(op.name) + "\""), std::string::npos) << op.name;
  }
  EXPECT_NE(js.out.find("\"vulkan\""), std::string::npos);
  for (const CombinerInfo& c : combiner_table()) {
    EXPECT_NE(text.out.find(std::string(c.op) + " "), std::string::npos) << c.op;
    EXPECT_NE(js.out.find("\"name\": \"" + std::string(c.op) + "\""), std::string::npos) << c.op;
  }
  EXPECT_NE(js.out.find("\"family\": \"reduce\""), std::string::npos);
  for (const Family* f : all_families())  // every op of every family, with its family
    for (std::string_view op : f->op_names()) {
      EXPECT_NE(js.out.find("\"name\": \"" + std::string(op) + "\""), std::string::npos) << op;
      EXPECT_NE(text.out.find(std::string(op) + " "), std::string::npos) << op;
    }
  EXPECT_NE(js.out.find("\"family\": \"scan\""), std::string::npos);
}

// Misuse is an error with a non-zero exit, never a crash or a silent success that wipes outputs:
// an index missing its keys (compile and pack read it), a directory given as the manifest, a
// block size the manifest would refuse, a namespace that is not a C++ name.
TEST_F(Kilnc, BadIndexesPathsAndOptionsAreErrors) {
  const fs::path index = tmp_ / "kernels.json";
  for (const char* text : {"{}", "[]", "{\"kernels\": [{}], \"cuda_batches\": []}", "not json"}) {
    std::ofstream(index) << text;
    for (const std::string& cmd : {"compile --index '" + index.string() + "' --no-vulkan --cache-dir ''",
                                  "pack --index '" + index.string() + "' --out '" + (tmp_ / "r.cpp").string() + "'"}) {
      const KilncRun r = kilnc(cmd);
      EXPECT_EQ(r.status, 2) << text << ": " << cmd << "\n" << r.err;
      EXPECT_NE(r.err.find("not a kilnc index"), std::string::npos) << r.err;
      EXPECT_NE(r.err.find(index.string()), std::string::npos) << r.err;
    }
  }
  EXPECT_FALSE(fs::exists(tmp_ / "r.cpp"));
  // A directory as the manifest: an error, and the previous build's outputs stay.
  const fs::path out = tmp_ / "out";
  ASSERT_EQ(kilnc("build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + out.string() + "'").status, 0);
  const auto before = snapshot(out);
  const KilncRun dir = kilnc("build --manifest '" + tmp_.string() + "' --out '" + out.string() + "'");
  EXPECT_EQ(dir.status, 1) << dir.err;
  EXPECT_NE(dir.err.find("is a directory"), std::string::npos) << dir.err;
  EXPECT_EQ(snapshot(out), before);
  for (const char* bs : {"0", "7", "-32", "2048", "x"})
    EXPECT_EQ(kilnc(std::string("emit --expr 'x + 1' --dtypes f32,f32 --target cuda --block-size ") + bs).status, 2) << bs;
  EXPECT_EQ(kilnc("emit --expr 'x + 1' --dtypes f32,f32 --target cuda --block-size 64").status, 0);
  for (const char* ns : {"1x", "a b", "a::", "::a", ""})
    EXPECT_EQ(kilnc("build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + (tmp_ / "h").string() +
                    "' --header '" + (tmp_ / "h.hpp").string() + "' --namespace '" + ns + "'")
                  .status,
              2)
        << ns;
  EXPECT_FALSE(fs::exists(tmp_ / "h.hpp"));
}

// A tool named bare (found on PATH, as nvcc usually is) is keyed by the file it finds: replacing it
// (a toolkit upgrade) recompiles, in the build and past the machine-wide cache.
TEST_F(Kilnc, AToolUpgradeRecompilesPastBothCaches) {
  const fs::path out = tmp_ / "out", bin = tmp_ / "bin", count = tmp_ / "nvcc-runs", cache = tmp_ / "cache";
  ASSERT_EQ(kilnc("build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + out.string() + "'").status, 0);
  fs::create_directories(bin);
  auto install = [&](const std::string& version) {
    const fs::path nvcc = bin / "kiln-fake-nvcc";
    std::ofstream f(nvcc, std::ios::trunc);
    f << "#!/bin/sh\n# release " << version << "\necho run >> '" << count.string() << "'\n"
      << "while [ $# -gt 0 ]; do if [ \"$1\" = -o ]; then printf 'P\\355U\\272' > \"$2\"; fi; shift; done\n";
    f.close();
    fs::permissions(nvcc, fs::perms::owner_all);
  };
  auto runs = [&] {
    const std::string t = fs::exists(count) ? read_all(count) : "";
    return std::count(t.begin(), t.end(), '\n');
  };
  const std::string compile = "compile --index '" + (out / "kernels.json").string() +
                              "' --nvcc kiln-fake-nvcc --cuda-include '" + (fs::path(KILN_SOURCE_DIR) / "templates").string() +
                              "' --no-vulkan --cache-dir '" + cache.string() + "'";
  const std::string path = "PATH='" + bin.string() + "':\"$PATH\" ";
  auto run = [&] { return std::system((path + "'" + kKilnc.string() + "' " + compile + " 2>/dev/null").c_str()); };
  install("1.0");
  const auto released = fs::last_write_time(bin / "kiln-fake-nvcc");
  ASSERT_EQ(run(), 0);
  const auto batches = runs();
  ASSERT_GT(batches, 0);
  ASSERT_EQ(run(), 0);
  EXPECT_EQ(runs(), batches) << "an unchanged tool recompiled";
  install("1.1 (a longer release line)");
  ASSERT_EQ(run(), 0);
  EXPECT_EQ(runs(), 2 * batches) << "the build's keys ignored the new tool";
  // Back to the first release (a package keeps its files' times) in a fresh build folder: the
  // machine-wide cache has its blobs.
  install("1.0");
  fs::last_write_time(bin / "kiln-fake-nvcc", released);
  fs::remove_all(out / "cuda");
  ASSERT_EQ(kilnc("build --manifest '" + (kFixtures / "good.toml").string() + "' --out '" + out.string() + "'").status, 0);
  ASSERT_EQ(run(), 0);
  EXPECT_EQ(runs(), 2 * batches) << "the machine-wide cache missed a tool it had seen";
}

// A build cut short leaves no index over a mix of sources, and compile refuses sources that do
// not match the index it is given.
TEST_F(Kilnc, CompileRefusesSourcesTheIndexDoesNotDescribe) {
  const fs::path m = tmp_ / "one.toml", out = tmp_ / "out";
  std::ofstream(m) << "[[kernel]]\nexpr = 'x * 3 + 1'\ninputs = [\"f32\"]\n";
  ASSERT_EQ(kilnc("build --manifest '" + m.string() + "' --out '" + out.string() + "'").status, 0);
  const std::string index = read_all(out / "kernels.json");
  for (const auto& dir : {"cuda", "glsl"}) {
    fs::path source;
    for (const auto& e : fs::directory_iterator(out / dir)) source = e.path();
    ASSERT_FALSE(source.empty()) << dir;
    const std::string text = read_all(source);
    std::ofstream(source, std::ios::app) << "\n// edited\n";
    const KilncRun r = kilnc("compile --index '" + (out / "kernels.json").string() + "' --nvcc true --cache-dir ''");
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find(source.string() + ": does not match the index"), std::string::npos) << r.err;
    std::ofstream(source, std::ios::trunc) << text;
  }
  // A changed manifest whose build cannot finish (the header's folder is a file): the old index
  // is gone, not left describing sources that have changed under it.
  std::ofstream(m, std::ios::app) << "[[kernel]]\nexpr = 'x - 2'\ninputs = [\"f32\"]\n";
  std::ofstream(tmp_ / "blocker") << "a file where the header's folder should be";
  const KilncRun r = kilnc("build --manifest '" + m.string() + "' --out '" + out.string() + "' --header '" +
                           (tmp_ / "blocker" / "h.hpp").string() + "'");
  EXPECT_NE(r.status, 0);
  EXPECT_FALSE(fs::exists(out / "kernels.json"));
  ASSERT_EQ(kilnc("build --manifest '" + m.string() + "' --out '" + out.string() + "'").status, 0);
  EXPECT_NE(read_all(out / "kernels.json"), index);
}

// The machine-wide cache: a truncated or corrupted blob is not copied into a build (it is said,
// removed and compiled again); good entries carry a checksum file.
TEST_F(Kilnc, CorruptCacheEntriesAreCompiledAgain) {
  const fs::path m = tmp_ / "one.toml", out = tmp_ / "out", cache = tmp_ / "cache";
  std::ofstream(m) << "[[kernel]]\nexpr = 'x * 3 + 1'\ninputs = [\"f32\"]\n";
  ASSERT_EQ(kilnc("build --manifest '" + m.string() + "' --out '" + out.string() + "' --targets vulkan").status, 0);
  const std::string compile = "compile --index '" + (out / "kernels.json").string() + "' --cache-dir '" + cache.string() + "'";
  KilncRun first = kilnc(compile);
  ASSERT_EQ(first.status, 0) << first.err;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(cache))
    if (e.path().extension() == ".spv") entries.push_back(e.path());
  ASSERT_FALSE(entries.empty());
  for (const fs::path& e : entries) EXPECT_TRUE(fs::exists(e.string() + ".sum")) << e;
  std::map<fs::path, std::string> good;
  for (const auto& e : fs::directory_iterator(out / "spirv"))
    if (e.path().extension() == ".spv") good[e.path()] = read_all(e.path());
  // Truncate one entry (magic intact) and flip a byte of another; the build's outputs go away.
  const std::string blob = read_all(entries[0]);
  std::ofstream(entries[0], std::ios::binary | std::ios::trunc) << blob.substr(0, blob.size() / 2);
  if (entries.size() > 1) {
    std::string other = read_all(entries[1]);
    other[other.size() / 2] ^= 1;
    std::ofstream(entries[1], std::ios::binary | std::ios::trunc) << other;
  }
  fs::remove_all(out / "spirv");
  KilncRun again = kilnc(compile);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("is corrupt or truncated; compiling it again"), std::string::npos) << again.err;
  for (const auto& [path, bytes] : good) EXPECT_EQ(read_all(path), bytes) << path;
}

// The machine-wide cache keeps to KILN_CACHE_MAX_SIZE: a compile that leaves it over the limit
// removes its least recently used entries (a blob with its checksum), never the ones it just used.
TEST_F(Kilnc, TheMachineWideCacheKeepsToItsSizeLimit) {
  const fs::path m = tmp_ / "one.toml", out = tmp_ / "out", cache = tmp_ / "cache";
  std::ofstream(m) << "[[kernel]]\nexpr = 'x * 5 - 2'\ninputs = [\"f32\"]\n";
  ASSERT_EQ(kilnc("build --manifest '" + m.string() + "' --out '" + out.string() + "' --targets vulkan").status, 0);
  const std::string compile = "compile --index '" + (out / "kernels.json").string() + "' --cache-dir '" + cache.string() + "'";
  fs::create_directories(cache);
  for (int i = 0; i < 8; ++i) {  // entries of builds long gone
    for (const std::string ext : {".spv", ".spv.sum"}) {
      const fs::path p = cache / (fmt::format("old-{:016x}", i) + ext);
      std::ofstream(p, std::ios::binary) << std::string(ext == ".spv" ? 64 << 10 : 17, 'o');
      fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(48 + i));
    }
  }
  const KilncRun first = kilnc(compile, "KILN_CACHE_MAX_SIZE=256K");
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_NE(first.err.find("least recently used entries"), std::string::npos) << first.err;
  std::uint64_t total = 0;
  int old_blobs = 0, old_sums = 0, new_blobs = 0;
  for (const auto& e : fs::directory_iterator(cache)) {
    total += fs::file_size(e.path());
    const std::string name = e.path().filename().string();
    if (name.rfind("old", 0) == 0) (e.path().extension() == ".sum" ? old_sums : old_blobs) += 1;
    else if (e.path().extension() == ".spv") ++new_blobs;
  }
  EXPECT_LE(total, 256u << 10);
  EXPECT_LT(old_blobs, 8);
  EXPECT_EQ(old_sums, old_blobs) << "a blob and its checksum go together";
  EXPECT_GE(new_blobs, 1);
  // The next build takes its blobs from the cache.
  fs::remove_all(out / "spirv");
  const KilncRun again = kilnc(compile, "KILN_CACHE_MAX_SIZE=256K");
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find(fmt::format("{} blobs from the cache", new_blobs)), std::string::npos) << again.err;
}

// A FIFO (or anything but this user's regular file) under a blob's or its checksum's name is passed
// over without blocking, said, and the blob compiled.
TEST_F(Kilnc, ACacheEntryHeldByAFifoIsPassedOver) {
  const fs::path m = tmp_ / "one.toml", out = tmp_ / "out", cache = tmp_ / "cache";
  std::ofstream(m) << "[[kernel]]\nexpr = 'x * 7 - 3'\ninputs = [\"f32\"]\n";
  ASSERT_EQ(kilnc("build --manifest '" + m.string() + "' --out '" + out.string() + "' --targets vulkan").status, 0);
  const std::string compile = "compile --index '" + (out / "kernels.json").string() + "' --cache-dir '" + cache.string() + "'";
  ASSERT_EQ(kilnc(compile).status, 0);
  std::vector<fs::path> blobs;
  for (const auto& e : fs::directory_iterator(cache))
    if (e.path().extension() == ".spv") blobs.push_back(e.path());
  ASSERT_FALSE(blobs.empty());
  for (const char* held : {".sum", ""}) {
    for (const fs::path& b : blobs) {
      const fs::path p = b.string() + held;
      fs::remove(p);
      ASSERT_EQ(::mkfifo(p.c_str(), 0644), 0) << p;
    }
    fs::remove_all(out / "spirv");
    const KilncRun again = kilnc(compile, "timeout 120");
    ASSERT_EQ(again.status, 0) << held << again.err;
    EXPECT_NE(again.err.find("not a regular file"), std::string::npos) << held << again.err;
    EXPECT_EQ(again.err.find("blobs from the cache"), std::string::npos) << held << again.err;
    for (const fs::path& b : blobs) EXPECT_TRUE(fs::is_regular_file(b.string() + held)) << "not replaced: " << b;
  }
}

// The generated functions' own locals are kiln_*: attention's q, k, v are fine input names (k
// was the contraction functions' kernel handle, a redeclaration); their parameters (options,
// call), C++ keywords and reserved spellings are refused by name.
TEST(ApiHeader, InputNamesMayBeAnyIdentifierTheGeneratedCodeDoesNotUse) {
  const Manifest m = parse_manifest(
      "[[kernel]]\nname = \"scores\"\nfamily = \"contract\"\ninputs = [\"q: f32\", \"k: f32\"]\n"
      "[[kernel]]\nname = \"norm\"\nfamily = \"rows\"\nop = \"rms_norm\"\ninputs = [\"h: f32\", \"r: f32\"]\n"
      "prologue = 'h + r'\nresidual = true\n",
      "m.toml");
  const std::string h = emit_api_header(m, {"app", "app::registry", "m.toml"});
  EXPECT_NE(h.find("scores(const kiln::Tensor& q, const kiln::Tensor& k, "), std::string::npos) << h;
  EXPECT_NE(h.find("const kiln::AotKernel& kiln_k = "), std::string::npos) << h;
  EXPECT_EQ(h.find("AotKernel& k "), std::string::npos) << h;
  EXPECT_EQ(h.find("kiln::Tensor h;"), std::string::npos) << h;
  auto error_of = [](const std::string& kernel) -> std::string {
    try {
      emit_api_header(parse_manifest(kernel, "m.toml"), {"app", "app::registry", "m.toml"});
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(error_of("[[kernel]]\nname = \"mm\"\nfamily = \"contract\"\ninputs = [\"options: f32\", \"b: f32\"]\n")
                .find("input name 'options' is reserved"),
            std::string::npos);
  for (const char* name : {"decltype", "requires", "co_await", "assert", "_Foo", "a__b"})
    EXPECT_NE(error_of(std::string("[[kernel]]\nname = \"") + name + "\"\nexpr = 'x'\ninputs = [\"f32\"]\n").find("is reserved"),
              std::string::npos)
        << name;
}

}  // namespace
}  // namespace kiln
