// kiln-bench: the profiling harness. It times the copy kernel (the bandwidth reference), single-op
// map kernels picked from the conformance cases and fused expression chains on one device, checks
// each against the CPU reference first, and reports device time, GB/s and the fraction of the copy
// kernel's bandwidth, as a table and as JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codegen/expr.hpp"
#include "runtime/device.hpp"
#include "tests/conformance/cases.hpp"

namespace kiln::bench {

enum class CaseKind { copy, op, fused };
const char* kind_name(CaseKind k);

// Range of the random inputs of one operand (floats: uniform in [lo, hi] away from 0; integers:
// random bits; pred: random 0/1).
struct InputRange {
  double lo = -1, hi = 1;
};

struct BenchCase {
  std::string name;       // "copy.f32", "add.f32", "as_type.f32_f16", "fused.gelu_tanh.f32"
  CaseKind kind = CaseKind::op;
  std::string expr_text;  // readable expression (for the report)
  Expr expr;              // what is timed: map(expr, inputs, {}, &out)
  std::optional<conformance::Case> conf;  // op cases: the conformance case (sample-size check)
  std::vector<InputRange> ranges;         // per input
  double atol = 0, rtol = 0;              // copy and fused checks (op cases use the op table's)

  std::vector<DType> input_dtypes() const { return expr.input_dtypes(); }
  DType output_dtype() const { return expr.dtype(expr.root()); }
  // Bytes one run reads and writes for |n| elements.
  std::uint64_t bytes(std::uint64_t n) const;
};

// |n| random values of dtype |t| (little endian), deterministic in |seed|; never 0 (pred: 0 or 1).
std::vector<std::byte> random_input(DType t, InputRange range, std::uint64_t n, std::uint64_t seed);

// The benchmark cases, in report order: the copy kernel first.
std::vector<BenchCase> bench_cases();

struct CheckResult {
  enum class State { pass, fail, skipped, error } state = State::pass;
  std::string message;  // why it failed / was skipped (first mismatches, error text)
};
const char* check_state_name(CheckResult::State s);

// Runs the case on a sample size on |dev| and compares with the CPU reference.
CheckResult check_case(const BenchCase& c, Device& dev);

struct TimingOptions {
  std::uint64_t elements = 0;
  int repeats = 20;
  bool repeats_given = false;   // else the harness may lower repeats for slow cases
  int warmup = 2;
  double case_budget_s = 4.0;   // soft limit of the timed part of a case (when repeats not given)
  // Also time the repeats back to back between one pair of events (no per-launch submission or
  // event gaps): the steady-state throughput. On by default on GPUs.
  bool batch = true;
};

struct Timing {
  bool ok = false;
  std::string error;            // why no timing (does not fit, kernel error, ...)
  int sets = 0;                 // input/output buffer sets rotated between repeats
  std::vector<double> samples_us;
  double median_us = 0, min_us = 0, max_us = 0;
  double batch_us = 0;          // mean device time per run of a back-to-back batch (0: not run)
  double host_us = 0;           // host wall time per warm-up run (launch overhead included)
};

Timing time_case(const BenchCase& c, Device& dev, const TimingOptions& opt);

// One row of the report.
struct Result {
  const BenchCase* bench = nullptr;
  std::uint64_t elements = 0;
  std::uint64_t bytes = 0;
  CheckResult check;
  Timing timing;
  double gbps = 0;              // bytes / median time
  std::optional<double> pct_of_copy;
  double wall_s = 0;            // host time spent on the case (check + timing)
  bool failed() const;          // a failed check or an error (exit status 1)
};

struct RunInfo {
  std::string device_id;
  const DeviceInfo* device = nullptr;
  std::uint64_t elements = 0;
  int repeats = 0;
  int warmup = 0;
  std::string timestamp;  // ISO 8601, UTC
  double total_s = 0;
};

std::string format_bytes(std::uint64_t bytes);
void print_devices();                 // kiln-bench --devices
void print_table(const RunInfo& run, const std::vector<Result>& results);
// Writes the JSON report to |path| (through a temporary file, so never a partial file).
void write_json(const std::string& path, const RunInfo& run, const std::vector<Result>& results);

}  // namespace kiln::bench
