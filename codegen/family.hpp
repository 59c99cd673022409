// A template family is one descriptor: everything about one kind of kernel (map, reduce, ...) that
// the rest of Kiln handles generically (spec text, manifests, kilnc, the registry, the JIT, the
// dispatch path, the conformance suite, the bench). A family is this descriptor
// (codegen/families/<name>.cpp), its two templates (templates/cuda/<name>.cuh,
// templates/glsl/<name>.glsl), its tests, and one line in all_families() (codegen/family.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/emit.hpp"
#include "codegen/spec.hpp"

namespace kiln {

// One entry point of a family's kernels: the suffix of its CUDA symbol (<kernel name>_<suffix>)
// and of its SPIR-V module, and the size of the params block it takes by value.
struct FamilyEntryPoint {
  std::string_view suffix;
  std::uint32_t params_bytes;
};

// An operand of a launch: its address (device address, or host pointer on the CPU) and its strides
// in elements over the launch's shape (0 broadcasts; negative strides allowed).
struct PlanOperand {
  std::uint64_t address = 0;
  std::span<const std::int64_t> strides;
};

// A launch-time value of a family's kernels, by name (rows: "eps", "scale"; scan: "reverse"): part
// of the launch, not of the kernel. A family's plan reads the names it knows.
struct LaunchOption {
  std::string_view name;
  double value = 0;
};

// A launch request in plain numbers: the iteration |shape| (map: the output's; reduce: the inputs'
// broadcast shape), the operands over it, the output (contiguous row-major: map over |shape|,
// reduce over the dims not in |axes|), the reduced |axes| (sorted, distinct; map: none), the
// kernel's block size and the family's launch options.
struct PlanRequest {
  std::span<const std::int64_t> shape;
  std::span<const PlanOperand> inputs;
  std::uint64_t out = 0;
  std::span<const int> axes;
  int block_size = 256;
  std::uint64_t scratch = 0;  // the address of plan().scratch_bytes of device memory, once allocated
  std::span<const LaunchOption> options;
  // The further outputs of a multi-output kernel (rows: the residual stream h), each laid out as
  // |out| is.
  std::span<const std::uint64_t> more_outputs;
  // The device's subgroup (warp) size where its kernels use subgroup arithmetic, else 0 (rows:
  // short rows go a subgroup each, so fewer groups are launched).
  std::uint32_t subgroup_size = 32;

  // The value of option |name|, |fallback| when the request has none.
  double option(std::string_view name, double fallback) const {
    for (const LaunchOption& o : options)
      if (o.name == name) return o.value;
    return fallback;
  }
};

// One kernel launch: the entry point, the grid (x only for now) and the params block.
// A TMA tensor map (CUDA sm_90 and later: a CUtensorMap, 128 bytes) that the launch makes from
// plain numbers (Device::encode_tensor_map: the driver's cuTensorMapEncodeTiled) and writes into
// the params block at |offset| (64-byte aligned): boxes of |box| elements of a |rank|-dimensional
// tensor at |address| (16-byte aligned), dim 0 contiguous, dim d >= 1 |strides|[d - 1] bytes apart
// (multiples of 16); a box's elements outside the tensor read as zero.
struct TensorMapRequest {
  std::uint32_t offset = 0;
  std::uint32_t rank = 0;           // 1..5
  std::uint32_t element_bytes = 2;  // 1, 2, 4 or 8 (copied as raw bits)
  std::uint32_t swizzle_bytes = 0;  // the shared-memory swizzle: 0 (none), 32, 64 or 128
  std::uint64_t address = 0;
  std::uint64_t dims[5] = {};
  std::uint64_t strides[4] = {};
  std::uint32_t box[5] = {};
};

struct LaunchStep {
  int function = -1;  // -1: no plan; see the |why| of plan()
  std::uint32_t groups_x = 1;
  std::vector<std::byte> params;
  std::vector<TensorMapRequest> tensor_maps;  // written into |params| at launch (CUDA only)
};

// What a run needs: a first launch, then |then| in order on the same stream. A plan that needs
// scratch memory says how much in |scratch_bytes| when the request has none; the caller allocates
// it, sets PlanRequest::scratch and plans again.
struct LaunchPlan : LaunchStep {
  std::uint64_t scratch_bytes = 0;
  std::vector<LaunchStep> then;
  // An upper bound on the loop iterations one invocation of these launches runs, over all its
  // loops, where that grows with the request (0: small, not counted): checked against the
  // device's DeviceInfo::loop_limit before launching (lavapipe ends an invocation's loops after
  // 65535).
  std::uint64_t loop_iterations = 0;
};

// A params block as the bytes of a LaunchStep.
template <class P>
std::vector<std::byte> params_of(const P& p) {
  std::vector<std::byte> b(sizeof p);
  std::memcpy(b.data(), &p, sizeof p);
  return b;
}

// An axis-wise launch (rows, scan) as rows of n elements: the dimensions of the request's shape other
// than its axis (axes[0], else the last) collapsed (size 1 dropped; neighbours merged where every
// operand is contiguous across them). |out_strides|: the output's strides over the request's shape.
struct AxisGeometry {
  std::vector<std::int64_t> shape;                 // the row dimensions, collapsed
  std::vector<std::vector<std::int64_t>> strides;  // [operand][dim]: the inputs, then the output
  std::vector<std::int64_t> axis_stride;           // [operand]
  std::int64_t n_rows = 1, n = 1;
};
AxisGeometry axis_geometry(const PlanRequest& r, std::span<const std::int64_t> out_strides);

// Bytes moved and arithmetic done per output element (each input read once, the output written
// once); the bench divides by the measured time.
struct FamilyCost {
  double bytes_per_element = 0;
  double flops_per_element = 0;
};

// A manifest [[kernel]] table as a family's descriptor sees it (codegen/manifest.cpp implements it):
// the family reads its own keys; errors point at the key's file:line:col.
class ManifestTable {
 public:
  virtual ~ManifestTable() = default;
  // The string value of |key|, nullopt when absent (any other type is an error at the key).
  virtual std::optional<std::string> string(std::string_view key) const = 0;
  // A boolean value of |key|, nullopt when absent (any other type is an error at the key).
  virtual std::optional<bool> boolean(std::string_view key) const = 0;
  // The dtypes of the kernel's inputs (its `inputs` key), in order, and their names ("" where the
  // manifest gives none).
  virtual const std::vector<DType>& inputs() const = 0;
  virtual const std::vector<std::string>& input_names() const = 0;
  // How an expression names input k: its given name, else "z / in2" (x, y, z, w for the first four).
  std::string input_label(std::size_t k) const {
    if (k < input_names().size() && !input_names()[k].empty()) return input_names()[k];
    static constexpr const char* kPositional[] = {"x", "y", "z", "w"};
    return (k < 4 ? std::string(kPositional[k]) + " / " : std::string()) + "in" + std::to_string(k);
  }
  // The expression in |key|'s string over inputs of |dtypes|, input k also spelled |names[k]|, the
  // first |positional| also x, y, z, w, in<k>; nullopt when the key is absent. Parse errors point
  // into the string.
  virtual std::optional<Expr> expr(std::string_view key, const std::vector<DType>& dtypes,
                                   const std::vector<std::string_view>& names,
                                   std::size_t positional = ~std::size_t(0)) const = 0;
  // Throws parse_error "<file>:<line>:<col>: |message|" at |key| (at the table when absent).
  [[noreturn]] void error(std::string_view key, const std::string& message) const {
    raise(key, message);
    std::abort();  // raise always throws
  }

 protected:
  virtual void raise(std::string_view key, const std::string& message) const = 0;
};

// One function of a generated header (codegen/api_header.cpp) for a family's kernel.
struct ApiFunction {
  std::string name;                  // the C++ function name (an alias or the kernel name)
  std::string kernel;                // the detail:: accessor of its kiln::AotKernel
  std::vector<std::string> params;   // the input parameter names, in order
  std::string comment;               // "// name: (f32, f32) -> f32 = ...\n// (kernel, origin)\n"
  const KernelSpec* spec = nullptr;  // the kernel's spec
};

// kiln::jit's fusion of an elementwise consumer into a kernel's epilogue (Family::fuse_epilogue):
// the kernel's spec with the consumer applied to its output, and the strides over the launch's
// request shape of the consumer's other operands, appended after the kernel's own inputs.
struct EpilogueFusion {
  KernelSpec spec;
  std::vector<std::vector<std::int64_t>> strides;
};

struct Family {
  std::string_view name;                         // the spec's family, e.g. "map"
  std::span<const FamilyEntryPoint> entry_points;  // in registry function order
  std::span<const std::string_view> slots;       // its expression slots (map: "expr")
  std::span<const std::string_view> manifest_keys;  // the keys a manifest [[kernel]] of it may have
                                                    // (without "expr": its kernels have none)

  // Whether |spec| can be emitted for |target|; when not, |why| says what is missing.
  bool (*supports)(const KernelSpec& spec, Target target, std::string* why);
  // The CUDA instantiation unit: the entry points in |functions| (at least) as extern "C"
  // __global__ functions.
  std::string (*emit_cuda)(const KernelSpec& spec, FunctionSet functions);
  // One self-contained GLSL compute shader for entry point |function|.
  std::string (*emit_glsl)(const KernelSpec& spec, int function);
  // The launch of |spec| for |request|; function -1 with the reason in |why| when it cannot run.
  LaunchPlan (*plan)(const KernelSpec& spec, const PlanRequest& request, std::string* why);
  // The CPU reference (the CPU backend and the conformance oracle): the same as a launch, on host
  // memory (addresses are host pointers), with the semantics of codegen/eval.cpp.
  void (*run_cpu)(const KernelSpec& spec, const PlanRequest& request);
  FamilyCost (*cost)(const KernelSpec& spec);
  // One line for docs and `kilnc ops`: what a kernel of the family computes.
  std::string_view summary;

  // Manifests: the spec of a [[kernel]] of this family from |expr| (`expr` over the inputs), the
  // optional `output` and the family's own keys read through |table|.
  KernelSpec (*from_manifest)(const ManifestTable& table, const Expr& expr, std::optional<DType> output);
  // [[ops]] tables: the family's op names, and the specs of op |op| for each of |dtypes| it
  // accepts (empty: none accepted).
  std::span<const std::string_view> (*op_names)();
  std::vector<KernelSpec> (*expand_op)(std::string_view op, const std::vector<DType>& dtypes);
  // Generated headers: the inline functions calling the kernel (map: tensor and raw-buffer
  // overloads; reduce: the tensor form with axes).
  std::string (*api_functions)(const ApiFunction& f);
  // The runtime header those functions need besides runtime/aot_kernel.hpp (empty: none).
  std::string_view api_include = {};

  // What kiln::jit may fuse (runtime/fuse.cpp). |elementwise|: output element i (contiguous over
  // request.shape) is the expr slot over the inputs at index i, so the kernel can be inlined into
  // a consumer. |pointwise_inputs|: the expr slot reads the request's inputs elementwise over
  // request.shape, so an elementwise producer can be inlined into it.
  bool elementwise = false;
  bool pointwise_inputs = false;
  // The kernel with an elementwise |consumer| of its output in its epilogue: input |slot| of the
  // consumer reads the output (row-major over |out_shape|, the output's logical shape), its other
  // inputs have |strides| over |out_shape| (in input order, |slot| skipped). |request_shape| and
  // |request_axes| are the launch's. nullopt, with the reason in |why|, when the family cannot
  // (null: no epilogue to fuse into).
  std::optional<EpilogueFusion> (*fuse_epilogue)(const KernelSpec& spec, std::span<const std::int64_t> request_shape,
                                                 std::span<const int> request_axes, const Expr& consumer, int slot,
                                                 const std::vector<std::int64_t>& out_shape,
                                                 const std::vector<std::vector<std::int64_t>>& strides,
                                                 std::string* why) = nullptr;
  // Kernels bound by memory traffic, whose just-in-time compile may skip NVRTC's expensive
  // optimizations (-Ofc=min: a third less compile time; see runtime/jit.cpp).
  bool jit_fast_compile = false;
  // The params size of entry point |function| of |spec| where a family's kernel variants take
  // different params blocks (contract: the wgmma kernels' tensor maps); null: entry_points' sizes.
  std::uint32_t (*params_bytes)(const KernelSpec& spec, int function) = nullptr;
};

// The params size of entry point |function| of |spec|, a kernel of |family|.
inline std::uint32_t entry_params_bytes(const Family& family, const KernelSpec& spec, int function) {
  return family.params_bytes ? family.params_bytes(spec, function)
                             : family.entry_points[std::size_t(function)].params_bytes;
}

// Every family, in a fixed order; find_family returns nullptr for an unknown name.
std::span<const Family* const> all_families();
const Family* find_family(std::string_view name);
// The family of |spec|; throws invalid_argument naming the known families when there is none.
const Family& family_of(const KernelSpec& spec);
// "map, reduce" (for error messages).
std::string family_names();

// The descriptors (codegen/families/*.cpp).
extern const Family kMapFamily;
extern const Family kReduceFamily;
extern const Family kRowsFamily;
extern const Family kScanFamily;
extern const Family kContractFamily;
extern const Family kConvFamily;

}  // namespace kiln
