// Timing of one case: inputs uploaded once into 1-3 buffer sets that the repeats rotate through
// (so caches do not flatter the results), warm-up runs, then repeats each bracketed by two events
// on the device's default stream (CUDA events, Vulkan timestamp queries, the host clock on the CPU).
#include <algorithm>
#include <chrono>
#include <memory>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/tensor.hpp"

namespace kiln::bench {

namespace {

constexpr int kMaxSets = 3;

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

Timing time_case(const BenchCase& c, Device& dev, const TimingOptions& opt) {
  Timing t;
  const std::uint64_t n = opt.elements;
  const auto dtypes = c.input_dtypes();
  const DType out_dtype = c.output_dtype();
  const DeviceInfo& info = dev.info();
  try {
    // Does one set fit, and how many sets fit in half the device memory?
    const std::uint64_t set_bytes = c.bytes(n);
    std::uint64_t largest = n * dtype_size(out_dtype);
    for (DType d : dtypes) largest = std::max<std::uint64_t>(largest, n * dtype_size(d));
    if (info.max_allocation_bytes && largest > info.max_allocation_bytes) {
      t.error = fmt::format("a buffer of {} exceeds the device's largest allocation ({}); use a smaller --size",
                            format_bytes(largest), format_bytes(info.max_allocation_bytes));
      return t;
    }
    const std::uint64_t budget = info.memory_bytes ? info.memory_bytes / 2 : set_bytes * kMaxSets;
    t.sets = int(std::min<std::uint64_t>(kMaxSets, budget / std::max<std::uint64_t>(set_bytes, 1)));
    if (t.sets == 0) {
      t.error = fmt::format("one set of buffers needs {} but only {} of device memory is used; use a smaller --size",
                            format_bytes(set_bytes), format_bytes(budget));
      return t;
    }

    // Inputs: random, non-zero, filled on the host once and uploaded into every set. The sets
    // hold the same values at different addresses: what matters for caches is the addresses.
    std::vector<std::vector<Tensor>> ins(std::size_t(t.sets));
    std::vector<Tensor> outs;
    const Shape shape{std::int64_t(n)};
    for (std::size_t k = 0; k < dtypes.size(); ++k) {
      const auto data = random_input(dtypes[k], c.ranges[k], n, 17 + k);
      for (auto& set : ins) set.push_back(Tensor::from_host(data.data(), data.size(), shape, dtypes[k], dev));
    }
    for (int s = 0; s < t.sets; ++s) outs.push_back(Tensor::empty(shape, out_dtype, dev));
    Stream& stream = dev.default_stream();
    auto run = [&](int r) {
      const std::size_t s = std::size_t(r % t.sets);
      map(c.expr, ins[s], std::nullopt, &outs[s]);
    };

    // Warm-up (kernel loading, clocks, first-touch of pages); also estimates the time of one run.
    stream.synchronize();
    const auto w0 = std::chrono::steady_clock::now();
    const int warmup = std::max(1, opt.warmup);
    for (int r = 0; r < warmup; ++r) run(r);
    stream.synchronize();
    const double per_run_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() / warmup;
    t.host_us = per_run_s * 1e6;
    int repeats = std::max(1, opt.repeats);
    if (!opt.repeats_given && per_run_s > 0)
      repeats = std::clamp(int(opt.case_budget_s / per_run_s), std::min(3, repeats), repeats);

    std::vector<std::pair<std::unique_ptr<Event>, std::unique_ptr<Event>>> events;
    events.reserve(std::size_t(repeats));
    for (int r = 0; r < repeats; ++r) {
      auto start = stream.record();
      run(r);
      auto stop = stream.record();
      events.emplace_back(std::move(start), std::move(stop));
    }
    stream.synchronize();
    for (auto& [start, stop] : events) t.samples_us.push_back(stop->elapsed_ms_since(*start) * 1e3);
    t.median_us = median_of(t.samples_us);
    t.min_us = *std::min_element(t.samples_us.begin(), t.samples_us.end());
    t.max_us = *std::max_element(t.samples_us.begin(), t.samples_us.end());
    if (opt.batch) {
      auto start = stream.record();
      for (int r = 0; r < repeats; ++r) run(r);
      auto stop = stream.record();
      stop->synchronize();
      t.batch_us = stop->elapsed_ms_since(*start) * 1e3 / repeats;
    }
    t.ok = true;
  } catch (const Error& e) {
    t.error = fmt::format("[{}] {}", error_code_name(e.code()), e.what());
  } catch (const std::exception& e) {
    t.error = e.what();
  }
  return t;
}

}  // namespace kiln::bench
