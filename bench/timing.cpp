// Timing: inputs uploaded once into 1-3 buffer sets that the repeats rotate through (so caches do
// not flatter the results), warm-up runs, then repeats each bracketed by two events on the
// device's default stream (CUDA events, Vulkan timestamp queries, the host clock on the CPU), then
// batches of the repeats back to back between one pair of events (no per-launch gaps).
#include <algorithm>
#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "core/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/tensor.hpp"

namespace kiln::bench {

namespace {

constexpr int kMaxSets = 3;

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * double(sorted.size() - 1);
  const std::size_t lo = std::size_t(pos);
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - double(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

Stats Stats::of(std::vector<double> samples_us) {
  Stats s;
  s.samples_us = samples_us;
  if (samples_us.empty()) return s;
  std::sort(samples_us.begin(), samples_us.end());
  s.median_us = quantile(samples_us, 0.5);
  s.q1_us = quantile(samples_us, 0.25);
  s.q3_us = quantile(samples_us, 0.75);
  s.min_us = samples_us.front();
  s.max_us = samples_us.back();
  return s;
}

double Stats::noise() const {
  if (samples_us.size() < 2 || median_us <= 0) return 0;
  return (q3_us - q1_us) / median_us;
}

nlohmann::json Stats::to_json() const {
  return {{"median", median_us}, {"min", min_us}, {"max", max_us}, {"q1", q1_us}, {"q3", q3_us},
          {"noise", noise()}, {"samples", samples_us}};
}

int buffer_sets(const DeviceInfo& info, std::uint64_t set_bytes, std::uint64_t largest, std::string* why) {
  if (info.max_allocation_bytes && largest > info.max_allocation_bytes) {
    *why = fmt::format("a buffer of {} exceeds the device's largest allocation ({}); use a smaller --size",
                       format_bytes(largest), format_bytes(info.max_allocation_bytes));
    return 0;
  }
  const std::uint64_t budget = info.memory_bytes ? info.memory_bytes / 2 : set_bytes * kMaxSets;
  const int sets = int(std::min<std::uint64_t>(kMaxSets, budget / std::max<std::uint64_t>(set_bytes, 1)));
  if (sets == 0)
    *why = fmt::format("one set of buffers needs {} but only {} of device memory is used; use a smaller --size",
                       format_bytes(set_bytes), format_bytes(budget));
  return sets;
}

Timing time_runs(Stream& stream, const std::function<void(int)>& run, int sets, const TimingOptions& opt) {
  Timing t;
  t.sets = sets;
  // Warm-up (kernel loading, clocks, first touch of pages); also estimates the time of one run.
  stream.synchronize();
  const auto w0 = std::chrono::steady_clock::now();
  const int warmup = std::max(1, opt.warmup);
  for (int r = 0; r < warmup; ++r) run(r);
  stream.synchronize();
  const double per_run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() / warmup;
  t.host_us = per_run_s * 1e6;
  if (opt.warmup_ms > 0) {  // sustained load until the clocks are up: chunks of ~10 ms, synchronized
    const int chunk = int(std::clamp(0.010 / std::max(per_run_s, 1e-7), 1.0, 10000.0));
    int r = warmup;
    while (std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count() < opt.warmup_ms) {
      for (int i = 0; i < chunk; ++i) run(r++);
      stream.synchronize();
    }
  }
  int repeats = std::max(1, opt.repeats);
  int batches = opt.batch ? std::max(1, opt.batches) : 0;
  if (!opt.repeats_given && per_run_s > 0) {
    // Keep the timed part within the budget: at least 3 per-run samples, batches shrink first.
    const int affordable = int(opt.case_budget_s / per_run_s);
    repeats = std::clamp(affordable / (1 + batches), std::min(3, repeats), repeats);
    if (batches) batches = std::clamp(affordable / std::max(1, repeats) - 1, 1, batches);
  }

  std::vector<std::pair<std::unique_ptr<Event>, std::unique_ptr<Event>>> events;
  events.reserve(std::size_t(repeats));
  for (int r = 0; r < repeats; ++r) {
    auto start = stream.record();
    run(r);
    auto stop = stream.record();
    events.emplace_back(std::move(start), std::move(stop));
  }
  stream.synchronize();
  std::vector<double> samples;
  for (auto& [start, stop] : events) samples.push_back(stop->elapsed_ms_since(*start) * 1e3);
  t.per_run = Stats::of(std::move(samples));

  if (batches) {
    std::vector<double> per;
    for (int b = 0; b < batches; ++b) {
      auto start = stream.record();
      for (int r = 0; r < repeats; ++r) run(r);
      auto stop = stream.record();
      stop->synchronize();
      per.push_back(stop->elapsed_ms_since(*start) * 1e3 / repeats);
    }
    t.batch = Stats::of(std::move(per));
    t.runs_per_batch = repeats;
  }
  t.ok = true;
  return t;
}

Timing time_case(const BenchCase& c, Device& dev, std::uint64_t n, const TimingOptions& opt, CheckResult* verify) {
  Timing t;
  const auto dtypes = c.input_dtypes();
  const DType out_dtype = c.output_dtype();
  try {
    std::uint64_t largest = std::uint64_t(shape_numel(c.output_shape(n))) * dtype_size(out_dtype);
    for (std::size_t k = 0; k < dtypes.size(); ++k)
      largest = std::max<std::uint64_t>(largest, std::uint64_t(shape_numel(c.operand_shape(k, n))) * dtype_size(dtypes[k]));
    const int sets = buffer_sets(dev.info(), c.bytes(n), largest, &t.error);
    if (sets == 0) return t;

    // Inputs: random, non-zero, filled on the host once and uploaded into every set. The sets
    // hold the same values at different addresses: what matters for caches is the addresses.
    const auto host = case_inputs(c, n);
    std::vector<std::vector<Tensor>> ins(static_cast<std::size_t>(sets));
    std::vector<Tensor> outs;
    for (std::size_t k = 0; k < dtypes.size(); ++k)
      for (auto& set : ins)
        set.push_back(Tensor::from_host(host[k].data(), host[k].size(), c.operand_shape(k, n), dtypes[k], dev));
    for (int s = 0; s < sets; ++s) outs.push_back(Tensor::empty(c.output_shape(n), out_dtype, dev));
    int last = 0;
    auto run = [&](int r) {
      last = r % sets;
      c.run(ins[std::size_t(last)], &outs[std::size_t(last)]);
    };
    t = time_runs(dev.default_stream(), run, sets, opt);
    if (verify) *verify = verify_sample(c, n, host, outs[std::size_t(last)]);
  } catch (const Error& e) {
    t.ok = false;
    t.error = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  } catch (const std::exception& e) {
    t.ok = false;
    t.error = e.what();
  }
  return t;
}

}  // namespace kiln::bench
