// kiln-bench: the profiling harness. It measures the device's peaks (copy bandwidth; a fused-FMA
// map kernel as a compute proxy; cuBLAS SGEMM/HGEMM on CUDA), then times the copy kernel, single-op
// map kernels from the conformance cases and fused expression chains on one device. Every case is
// checked against the CPU reference before timing and its timed output is checked again on a
// sample afterwards. Results are reported as fractions of the peaks measured in the same run (and
// of a PyTorch peer with --peer torch), as a table, JSON, CSV and an SVG roofline.
//
// Files: cases.cpp (case catalogue, inputs, checks), gemm.cpp (contraction cases), timing.cpp (device timers), peaks.cpp,
// run.cpp (the run loop), peer.cpp + torch_peer.py, report.cpp (table), output.cpp (JSON, CSV),
// plot.cpp (SVG), compare.cpp, support.cpp (docs/ops.md), micro.cpp (kiln-bench-micro).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "codegen/expr.hpp"
#include "codegen/families/reduce.hpp"
#include "codegen/families/rows.hpp"
#include "runtime/device.hpp"
#include "tests/conformance/cases.hpp"

namespace kiln::bench {

enum class CaseKind { copy, op, fused, peak, reduce, rows, scan, contract, jit };
// Which axes a reduce case reduces: the last (rows of kReduceRow elements), the first (columns),
// or all elements.
enum class ReduceAxes { last, first, all };
inline constexpr std::int64_t kReduceRow = 4096;
const char* kind_name(CaseKind k);

// Range of the random inputs of one operand (floats: uniform in [lo, hi] away from 0; integers:
// random bits; pred: random 0/1). Op cases take their inputs from the conformance generator.
struct InputRange {
  double lo = -1, hi = 1;
};

// A case whose operands have shapes of their own (contractions, convolutions): the elements of
// --size (|n|) pick its problem, and it says how to run it, count it, check it and give it to
// PyTorch.
struct ShapedCase {
  virtual ~ShapedCase() = default;
  virtual const KernelSpec& spec() const = 0;
  virtual Shape operand_shape(std::size_t k, std::uint64_t n) const = 0;
  virtual Shape output_shape(std::uint64_t n) const = 0;
  virtual double flops(std::uint64_t n) const = 0;
  virtual Tensor run(const std::vector<Tensor>& inputs, const Tensor* out) const = 0;
  // The PyTorch peer's operands, from the flat inputs x0, x1, ... (at least as long as the operands).
  virtual std::vector<std::string> torch_operands(std::uint64_t n) const = 0;
  // The |n| of the check before timing (every output against the CPU backend: a small problem).
  virtual std::uint64_t check_size() const = 0;
  // How many leading entries of axis 0 of operand 0 and of the output the check of a timed output
  // recomputes on the CPU (0: none, the problem is too large for the CPU reference).
  virtual std::int64_t verify_leading(std::uint64_t n) const = 0;
  // Whether operand k >= 1 is cut to those leading entries too (when laid out as the output).
  virtual bool sliced_with_output(std::size_t k) const { return k >= 2; }
  // How many results of the output's size a run writes (bytes counted once each).
  virtual int results() const { return 1; }
  // A line for the report after timing (the jit cases: what fused), empty for none.
  virtual std::string note() const { return {}; }
};

struct BenchCase {
  std::string name;       // "copy.f32", "add.f32", "as_type.f32_f16", "fused.gelu_tanh.f32"
  CaseKind kind = CaseKind::op;
  std::string op;         // op name for op cases; "copy", "fused" or "peak" otherwise
  bool in_default = false;  // part of the default run
  std::string expr_text;  // readable expression (for the report)
  Expr expr;              // what is timed: map(expr, inputs, {}, &out)
  std::optional<conformance::Case> conf;  // op cases: the conformance case (sample-size check)
  std::vector<InputRange> ranges;         // per input (copy, fused and peak cases)
  double atol = 0, rtol = 0;              // copy and fused checks (op cases use the op table's)
  std::optional<Combiner> combiner;       // reduce cases: expr is the prologue
  ReduceAxes reduce_axes = ReduceAxes::last;
  std::optional<KernelSpec> manifest_spec;  // reduce cases from a manifest: their spec, as it is
  std::optional<KernelSpec> axis_spec;    // rows and scan cases: the kernel over rows of row_len elements of x
  std::string torch_fn;                   // their PyTorch peer over the [rows, row_len] input "{0}" ({1}: row_len)
  std::int64_t row_len = 4096;
  // Cases whose operands have shapes of their own (contractions: gemm.cpp; convolutions: conv.cpp).
  std::shared_ptr<const ShapedCase> shaped;
  std::string origin;                     // user cases: "kernels.toml:12:1" or "--expr"

  std::vector<DType> input_dtypes() const {
    return shaped ? shaped->spec().inputs : axis_spec ? axis_spec->inputs : expr.input_dtypes();
  }
  DType output_dtype() const;
  // The spec that is timed (a map of expr, or the reduction).
  KernelSpec spec() const;
  // The inputs' shape for |n| elements (n itself, or [n / kReduceRow, kReduceRow] and its
  // transpose for reductions over the last and first axis), and the output's.
  Shape input_shape(std::uint64_t n) const;
  Shape output_shape(std::uint64_t n) const;
  // The shape of input |k| (input_shape, except for contraction cases) and the elements a run
  // covers (|n|, a contraction case's s * s).
  Shape operand_shape(std::size_t k, std::uint64_t n) const;
  std::uint64_t elements(std::uint64_t n) const;
  // FLOPs of one run (flops_per_element x n; a contraction's 2 s^3).
  double flops(std::uint64_t n) const;
  // Runs the case: map(expr, inputs) or the reduction, into |out| when given.
  Tensor run(const std::vector<Tensor>& inputs, const Tensor* out = nullptr) const;
  // The dtypes --dtype matches: the operand dtype (and as_type's target) of op cases, the input
  // and output dtypes of the others.
  std::vector<DType> match_dtypes() const;
  // Bytes one run reads and writes for |n| elements (every input read once, the output written once).
  std::uint64_t bytes(std::uint64_t n) const;
  // FLOPs per element: 1 per op node of the expression, transcendentals included; casts
  // (as_type) and selects count 0 (they move data, they do not compute).
  double flops_per_element() const;
};

// |n| random values of dtype |t| (little endian), deterministic in |seed|; never 0 (pred: 0 or 1).
std::vector<std::byte> random_input(DType t, InputRange range, std::uint64_t n, std::uint64_t seed);
// The |n|-element host inputs of a case: op cases tile the conformance operands (values where the
// op is well defined) with exact zeros replaced by other values of the same data; others use
// random_input.
std::vector<std::vector<std::byte>> case_inputs(const BenchCase& c, std::uint64_t n);

// Every benchmark case (copy, every op x dtype of the conformance cases, fused chains), in report
// order; in_default marks the default run.
std::vector<BenchCase> bench_cases();
// The user's kernels: every [[kernel]] of a manifest (reductions over the last axis), named
// after their aliases; and one expression over inputs of |dtypes|. Inputs are random in [-3, 3]
// (integers: random bits), checked against the CPU backend like the catalogue's fused cases.
std::vector<BenchCase> manifest_cases(const std::string& path);
BenchCase expr_case(const std::string& text, const std::vector<DType>& dtypes);
// The FMA-chain kernel used as the measured compute proxy (peaks.cpp): |steps| of t = t * 0.5 + x.
BenchCase fma_peak_case(int steps);

struct Selection {
  std::vector<std::string> ops;     // op names ("copy" and "fused" too); empty: any
  std::vector<DType> dtypes;        // empty: any
  std::string filter;               // substring of the name; empty: any
  bool all = false;                 // the whole catalogue (else: the default cases when no filter)
};
std::vector<const BenchCase*> select_cases(const std::vector<BenchCase>& all, const Selection& sel);

struct CheckResult {
  enum class State { pass, fail, skipped, error } state = State::pass;
  std::string message;  // why it failed / was skipped (first mismatches, error text)
};
const char* check_state_name(CheckResult::State s);

// Element-wise comparison of |got| with |want| within the case's atol/rtol; |cpu_inputs| (when
// laid out like the output) name the inputs of the first mismatches.
CheckResult compare_outputs(const BenchCase& c, const Tensor& got, const Tensor& want,
                            const std::vector<Tensor>& cpu_inputs);
// Whether |dev| can run the case, with the reason if not.
bool case_supported(const BenchCase& c, Device& dev, std::string* why);
// Runs the case on a sample size on |dev| and compares with the CPU reference.
CheckResult check_case(const BenchCase& c, Device& dev);
// Compares a timed output (|out|, |n| elements) with the CPU reference on a sample of its elements
// (about 4096, evenly spaced, the last element included) computed from the host |inputs|.
CheckResult verify_sample(const BenchCase& c, std::uint64_t n, const std::vector<std::vector<std::byte>>& inputs,
                          const Tensor& out);

// The contraction cases (gemm.cpp): matmul per dtype, with a fused bias + GELU epilogue, LLM
// shapes; the convolution cases (conv.cpp): ResNet-50 layers, NHWC. The check of a shaped case
// (every output of its check_size() problem against the CPU backend) and of its timed output (the
// leading rows or images against the CPU).
std::vector<BenchCase> gemm_cases();
std::vector<BenchCase> conv_cases();
// The traced-function cases (jit.cpp): functions written op by op, timed fused by kiln::jit
// ("jit") and replayed op by op ("jit_eager").
std::vector<BenchCase> jit_cases();
// kiln-bench plan: the fusion plan of each of those functions on |dev| (the names containing
// |filter|), for |elements| elements.
int print_jit_plans(Device& dev, const std::string& filter, std::uint64_t elements);
CheckResult check_shaped_case(const BenchCase& c, Device& dev);
CheckResult verify_shaped_sample(const BenchCase& c, std::uint64_t n, const std::vector<std::vector<std::byte>>& inputs,
                                 const Tensor& out);

// ---- timing (timing.cpp) -------------------------------------------------------------------------

struct TimingOptions {
  int repeats = 20;
  bool repeats_given = false;   // else the harness may lower repeats for slow cases
  int warmup = 2;
  // Then keep warming up until this much time has passed (GPUs): the driver raises the clocks only
  // under sustained load. On the first H100 run the Vulkan cases ran at 345 MHz (idle clock) after
  // the host-side set-up of each case, CUDA at 1980 MHz.
  double warmup_ms = 0;
  bool warmup_ms_given = false;
  double case_budget_s = 4.0;   // soft limit of the timed part of a case (when repeats not given)
  // Also time batches: the repeats back to back between one pair of events (no per-launch
  // submission or event gaps), |batches| times. The headline on GPUs.
  bool batch = true;
  int batches = 5;
};

struct Stats {
  std::vector<double> samples_us;
  double median_us = 0, min_us = 0, max_us = 0, q1_us = 0, q3_us = 0;
  bool empty() const { return samples_us.empty(); }
  // Relative spread: interquartile range / median (0 when fewer than 2 samples).
  double noise() const;
  static Stats of(std::vector<double> samples_us);
  nlohmann::json to_json() const;
};

struct Timing {
  bool ok = false;
  std::string error;            // why no timing (does not fit, kernel error, ...)
  int sets = 0;                 // input/output buffer sets rotated between repeats
  Stats per_run;                // one pair of events around each run
  Stats batch;                  // mean device time per run of each back-to-back batch
  int runs_per_batch = 0;
  double host_us = 0;           // host wall time per warm-up run (launch overhead included)
  // The headline: batch when it ran, else per run.
  const Stats& headline() const { return batch.empty() ? per_run : batch; }
  const char* mode() const { return batch.empty() ? "per-run" : "batch"; }
};

// Times |run|(r) (which enqueues run r on |stream|): warm-up, then per-run events, then batches.
Timing time_runs(Stream& stream, const std::function<void(int)>& run, int sets, const TimingOptions& opt);
// Times case |c| over |n| elements with rotating buffer sets; when |verify| is given, checks the
// last timed output on a sample into it.
Timing time_case(const BenchCase& c, Device& dev, std::uint64_t n, const TimingOptions& opt,
                 CheckResult* verify = nullptr);
// How many buffer sets of |set_bytes| to rotate through (1-3, within half the device memory), or 0
// with the reason in |why| when one does not fit.
int buffer_sets(const DeviceInfo& info, std::uint64_t set_bytes, std::uint64_t largest_buffer, std::string* why);

// ---- peaks (peaks.cpp) ---------------------------------------------------------------------------

struct Peak {
  std::string name;      // "copy.stream", "copy.kernel", "fma.f32", "sgemm.cublas", "hgemm.cublas"
  std::string what;      // how it was measured, in words
  std::string unit;      // "GB/s" or "GFLOP/s"
  double value = 0;      // 0 when not measured
  Timing timing;
  std::string error;     // why not measured
};

struct Peaks {
  std::vector<Peak> list;
  double bandwidth_gbps = 0;   // the best copy: the roof of memory-bound kernels
  std::string bandwidth_from;
  double gflops = 0;           // the compute roof of f32 map kernels (SGEMM on CUDA, else fma.f32)
  std::string gflops_from;
  nlohmann::json to_json() const;
};

struct PeakOptions {
  std::uint64_t copy_elements = 0;  // f32 elements of the copy measurements
  std::uint64_t fma_elements = 0;
  int gemm_size = 8192;             // cuBLAS m = n = k
  TimingOptions timing;
};
Peaks measure_peaks(Device& dev, const PeakOptions& opt, const std::function<void(const std::string&)>& progress);

// ---- the run (run.cpp) -------------------------------------------------------------------------

struct PeerResult {
  std::string peer;        // "torch.eager", "torch.compile"
  bool ok = false;
  Stats time;              // device time per run
  std::string note;        // why not measured, or how
};

struct Result {
  const BenchCase* bench = nullptr;
  std::uint64_t size = 0;           // the elements of --size the case ran for
  std::uint64_t elements = 0;
  std::uint64_t bytes = 0;
  double flops = 0;                 // per run
  CheckResult check;                // before timing, on a sample size
  CheckResult verify;               // the timed output, on a sample of elements
  Timing timing;
  double time_us = 0;               // the headline median
  double gbps = 0, gflops = 0;
  std::optional<double> pct_bw, pct_flops;  // of the measured peaks
  std::vector<PeerResult> peers;
  double wall_s = 0;                // host time spent on the case
  // Contraction cases: operands copied while timed (a layout strides could not express) and
  // whether the vendor library (cuBLASLt) ran instead of Kiln's kernel.
  std::uint64_t copies = 0;
  bool library = false;
  bool tensor_cores = false;        // Kiln's tensor-core kernel ran (mma.sync, or on sm_90 wgmma:)
  bool wgmma = false;               // the Hopper kernel (wgmma with TMA loads)
  std::string coopmat;              // Vulkan: the cooperative-matrix kernel's fragment ("16x8x16"), or none
  std::string tile;                 // Kiln's kernel's tile, "MxNxK" (contraction_last_tile)
  bool failed() const;              // a failed check or an error (exit status 1)
};

struct RunInfo {
  std::string device_id;
  const DeviceInfo* device = nullptr;
  std::vector<std::uint64_t> sizes;
  TimingOptions timing;
  std::string timestamp;  // ISO 8601, UTC
  double total_s = 0;
  Peaks peaks;
  std::string peer;          // "torch" or empty
  std::string peer_status;   // why the peer did not run (empty when it ran)
};

struct RunOptions {
  std::string device_id;             // empty: KILN_DEVICE or the first GPU
  Selection selection;
  std::vector<std::uint64_t> sizes;  // empty: the device's default
  TimingOptions timing;
  bool batch_given = false, repeats_given = false;
  bool peaks = true;
  std::string peer;                  // "torch" or empty
  std::string json, csv, plot;       // output files (empty: none)
  std::vector<BenchCase> user_cases; // --manifest / --expr: run these instead of the catalogue
};
// kiln-bench run: exit status 0 all checks passed, 1 a check failed or a case could not run, 2 bad
// usage or device.
int run_bench(const RunOptions& opt);
// kiln-bench peaks: measures and prints the peaks only.
int run_peaks(const RunOptions& opt);
// The device named by |id| (empty: the default), or nullptr after printing why.
Device* pick_device(const std::string& id);
// Elements per case by default: beyond the last-level cache on GPUs (2^26: 256 MiB per f32
// buffer), smaller where kernels run on the host CPU.
std::uint64_t default_elements(const Device& d);
bool host_like(const Device& d);

// Runs the PyTorch peer (bench/torch_peer.py) on |results| (fills Result::peers), or says why not.
void run_torch_peer(Device& dev, const RunInfo& run, std::vector<Result>& results, std::string* status);
// The expression spelled as a PyTorch expression over x0, x1, ... (nullopt: an op without one).
// |clone_bare_input|: a bare input is returned as a copy (the copy case: PyTorch returning its input
// would time nothing); a reduction's prologue keeps it as it is.
std::optional<std::string> torch_expr(const Expr& e, std::string* why, bool clone_bare_input = true);

// ---- output ------------------------------------------------------------------------------------

std::string format_bytes(std::uint64_t bytes);
std::string format_count(std::uint64_t n);          // 4194304 -> "4M"
std::optional<std::uint64_t> parse_count(const std::string& s);  // "4M", "1<<22", "65536"
void print_devices();                                // kiln-bench devices
void print_peaks(const Peaks& p);
void print_table(const RunInfo& run, const std::vector<Result>& results);
nlohmann::json report_json(const RunInfo& run, const std::vector<Result>& results);
// Writes |text| to |path| through a temporary file (never a partial file). Throws io_error.
void write_file(const std::string& path, const std::string& text);
nlohmann::json read_json(const std::string& path);
std::string report_csv(const nlohmann::json& report);
std::string roofline_svg(const nlohmann::json& report);

// Subcommands.
int compare_reports(const std::string& a, const std::string& b, double min_change, bool fail_on_slower);
std::string support_markdown();

}  // namespace kiln::bench
