// host-app: runs the custom kernels of kernels.toml on the default device (KILN_DEVICE chooses
// another), checks every result against Kiln's CPU reference backend, and prints timings.
// Exit status 0 when every check passes.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "host_kernels.hpp"        // generated from kernels.toml by kiln_add_kernels()
#include <kiln/kiln.hpp>          // Kiln's host API in one header
#include "runtime/ops.hpp"

namespace {

int failures = 0;

// Largest |a - b| / (atol + rtol |b|) over the elements; <= 1 passes.
void check(const char* what, const kiln::Tensor& got, const kiln::Tensor& want, double atol, double rtol) {
  const kiln::Tensor g = kiln::as_type(got.to(kiln::device("cpu")), kiln::DType::f32);
  const kiln::Tensor w = kiln::as_type(want, kiln::DType::f32);
  std::vector<float> a(std::size_t(g.numel())), b(std::size_t(w.numel()));
  g.to_host(a.data(), a.size() * 4);
  w.to_host(b.data(), b.size() * 4);
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - b[i]) / (atol + rtol * std::abs(double(b[i]))));
  const bool ok = a.size() == b.size() && worst <= 1;
  std::printf("  %-28s %-5s (worst error %.3g of the tolerance)\n", what, ok ? "ok" : "FAIL", worst);
  failures += !ok;
}

// Milliseconds per call of |fn| on |device|, timed with device events around |reps| calls.
double time_ms(kiln::Device& device, int reps, const std::function<void()>& fn) {
  fn();  // warm up: loads the kernel
  kiln::Stream& stream = device.default_stream();
  auto start = stream.record();
  for (int i = 0; i < reps; ++i) fn();
  auto stop = stream.record();
  stop->synchronize();
  return stop->elapsed_ms_since(*start) / reps;
}

kiln::Tensor random_tensor(const kiln::Shape& shape, kiln::Device& device, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.f, 2.f);
  std::vector<float> v(std::size_t(kiln::shape_numel(shape)));
  for (float& x : v) x = normal(rng);
  return kiln::Tensor::from_host(v.data(), v.size() * 4, shape, kiln::DType::f32, device);
}

}  // namespace

int main() try {
  kiln::Device& gpu = kiln::default_device();
  kiln::Device& cpu = kiln::device("cpu");
  std::printf("host-app: running on %s (%s)\n", gpu.id().c_str(), gpu.info().name.c_str());

  const std::int64_t rows = 256, cols = 1024;
  std::mt19937 rng(42);
  const kiln::Tensor x = random_tensor({rows, cols}, cpu, rng);
  const kiln::Tensor y = random_tensor({rows, cols}, cpu, rng);
  const kiln::Tensor bias = random_tensor({cols}, cpu, rng);
  std::vector<std::uint8_t> mask_host(std::size_t(rows * cols));
  for (auto& m : mask_host) m = rng() % 3 != 0;
  const kiln::Tensor mask = kiln::Tensor::from_host(mask_host.data(), mask_host.size(), {rows, cols},
                                                    kiln::DType::pred, cpu);
  const kiln::Tensor gx = x.to(gpu), gy = y.to(gpu), gbias = bias.to(gpu), gmask = mask.to(gpu);

  std::printf("checks against the CPU reference backend:\n");
  // Tensor overloads: the bias row broadcasts over the rows (the strided kernel).
  check("gelu_bias [256,1024]+[1024]", host::gelu_bias(gx, gbias), host::gelu_bias(x, bias), 1e-5, 1e-4);
  const kiln::Tensor xh = kiln::as_type(x, kiln::DType::f16), bh = kiln::as_type(bias, kiln::DType::f16);
  check("gelu_bias_f16", host::gelu_bias_f16(xh.to(gpu), bh.to(gpu)), host::gelu_bias_f16(xh, bh), 1e-3, 1e-2);
  check("silu_mul", host::silu_mul(gx, gy), host::silu_mul(x, y), 1e-5, 1e-4);
  check("masked_select", host::masked_select(gmask, gx, gy), host::masked_select(mask, x, y), 0, 0);
  // Views: a transposed operand runs the strided kernel.
  check("silu_mul (transposed x)", host::silu_mul(gx.transpose({}).contiguous().transpose({}), gy),
        host::silu_mul(x, y), 1e-5, 1e-4);
  // Raw-buffer overload on a stream: n contiguous elements, no shapes.
  const std::uint64_t n = std::uint64_t(rows * cols);
  kiln::Tensor out = kiln::Tensor::empty({rows, cols}, kiln::DType::f32, gpu);
  host::silu_mul(gpu.default_stream(), *gx.storage(), *gy.storage(), *out.storage(), n);
  check("silu_mul (raw buffers)", out, host::silu_mul(x, y), 1e-5, 1e-4);
  // A fused reduction from the manifest: RMS norm = x * rms_scale(x) over the last axis.
  const kiln::Tensor scale = host::rms_scale(gx, {-1}, true);
  check("rms_scale [256,1024] -> [256,1]", scale, host::rms_scale(x, {-1}, true), 1e-6, 1e-5);
  check("rms norm (scale, then map)", kiln::multiply(gx, scale),
        kiln::multiply(x, kiln::rsqrt(kiln::sum(kiln::multiply(x, x), {-1}, true) / double(cols) + 1e-6)), 1e-5, 1e-4);
  check("max_abs_diff", host::max_abs_diff(gx, gy), kiln::reduce_max(kiln::abs(x - y)), 0, 0);
  // Rows kernels from the manifest: RMS norm with its gain in one kernel (against the same norm
  // built from the reduction and a map above), and a masked, scaled softmax (row 0 fully masked).
  const kiln::Tensor gamma = random_tensor({cols}, cpu, rng), ggamma = gamma.to(gpu);
  const kiln::Tensor rms_ref =
      kiln::multiply(kiln::multiply(x, kiln::rsqrt(kiln::sum(kiln::multiply(x, x), {-1}, true) / double(cols) + 1e-6)), gamma);
  check("rms_norm (rows kernel)", host::rms_norm(gx, ggamma, {.eps = 1e-6}), rms_ref, 1e-5, 1e-4);
  // The fused residual add + RMS norm: both outputs against the op-by-op computation on the CPU.
  const kiln::Tensor resid = random_tensor({rows, cols}, cpu, rng);
  const auto [norm, hsum] = host::add_rms_norm(gx, resid.to(gpu), ggamma, {.eps = 1e-6});
  check("add_rms_norm: h = x + r", hsum, x + resid, 0, 0);
  check("add_rms_norm: rms_norm(h)", norm, host::rms_norm(x + resid, gamma, {.eps = 1e-6}), 1e-5, 1e-4);
  std::vector<std::uint8_t> keep_host(mask_host);
  for (std::int64_t j = 0; j < cols; ++j) keep_host[std::size_t(j)] = 0;
  const kiln::Tensor keep = kiln::Tensor::from_host(keep_host.data(), keep_host.size(), {rows, cols}, kiln::DType::pred, cpu);
  const kiln::Tensor probs = host::masked_softmax(gx, keep.to(gpu), {.scale = 0.125}).to(cpu);
  check("masked_softmax", probs, host::masked_softmax(x, keep, {.scale = 0.125}), 1e-7, 1e-5);
  check("masked_softmax: masked row is 0", probs.slice(0, 0, 1), x.slice(0, 0, 1) * 0.0, 0, 0);
  check("masked_softmax: rows sum to 1", kiln::sum(probs.slice(0, 1, rows), {-1}),
        kiln::sum(x.slice(0, 1, rows), {-1}) * 0.0 + 1.0, 1e-5, 0);
  // A contraction kernel from the manifest: x [rows, cols] x w [cols, 64], w read transposed from a
  // [64, cols] tensor through its strides (no copy), against kiln::matmul on the CPU.
  const kiln::Tensor w = random_tensor({64, cols}, cpu, rng);
  check("project (contraction kernel)", host::project(gx, w.to(gpu).transpose({1, 0})),
        kiln::matmul(x, w.transpose({1, 0})), 2e-3, 1e-4);
  check("attention_scores (scaled contraction)", host::attention_scores(gx, gx.transpose({1, 0})),
        kiln::matmul(x, x.transpose({1, 0})) * 0.125, 2e-3, 1e-4);
  // GEMM + bias + GELU in one kernel (the manifest's epilogue) against matmul, then the manifest's
  // gelu_bias map kernel, on the CPU.
  const kiln::Tensor wbias = random_tensor({64}, cpu, rng);
  check("dense_gelu (fused epilogue)", host::dense_gelu(gx, w.to(gpu).transpose({1, 0}), wbias.to(gpu)),
        host::gelu_bias(kiln::matmul(x, w.transpose({1, 0})), wbias), 2e-3, 1e-4);
  // A 3x3 convolution with bias + ReLU fused (the manifest's conv kernel) against kiln::conv and
  // the same epilogue op by op, on the CPU.
  const kiln::Tensor image = random_tensor({2, 3, 16, 16}, cpu, rng), filters = random_tensor({8, 3, 3, 3}, cpu, rng);
  const kiln::Tensor cbias = random_tensor({8, 1, 1}, cpu, rng);
  const kiln::ConvGeometry same{.padding = kiln::ConvPadding::same};
  kiln::ConvOptions plain;
  plain.padding = kiln::ConvPadding::same;
  check("conv_relu (conv kernel)", host::conv_relu(image.to(gpu), filters.to(gpu), cbias.to(gpu), same),
        kiln::map(kiln::parse_expr("max(x + y, 0)", {kiln::DType::f32, kiln::DType::f32}),
                  {kiln::conv(image, filters, plain), cbias}),
        2e-3, 1e-4);
  // A scan kernel from the manifest: offsets from counts, exact (integers), forward and reverse,
  // against Kiln's built-in cumulative_sum on the CPU and a hand-computed total.
  std::vector<std::int32_t> counts_host(static_cast<std::size_t>(rows));
  for (auto& c : counts_host) c = std::int32_t(rng() % 100);
  const kiln::Tensor counts = kiln::Tensor::from_vector(counts_host, {rows}, cpu);
  const kiln::Tensor offsets = host::running_total(counts.to(gpu), {.axis = 0}).to(cpu);
  check("running_total (scan kernel)", offsets, kiln::cumulative_sum(counts), 0, 0);
  check("running_total reverse", host::running_total(counts.to(gpu), {.axis = 0, .reverse = true}),
        kiln::cumulative_sum(counts, {.axis = 0, .reverse = true}), 0, 0);
  std::int64_t total = 0;
  for (std::int32_t c : counts_host) total += c;
  if (offsets.to_vector<std::int32_t>().back() != total) {
    std::fprintf(stderr, "running_total: last offset %d, want %lld\n", offsets.to_vector<std::int32_t>().back(),
                 (long long)total);
    return 1;
  }

  std::printf("timings on %s (%lld elements, device timers):\n", gpu.id().c_str(), (long long)n);
  const double bytes = double(n) * 4 * 3;
  auto report = [&](const char* what, double ms) {
    std::printf("  %-28s %8.3f ms  %7.2f GB/s\n", what, ms, bytes / (ms * 1e-3) / 1e9);
  };
  const int reps = gpu.backend() == kiln::Backend::cpu ? 1 : 20;
  report("gelu_bias (broadcast bias)", time_ms(gpu, reps, [&] { host::gelu_bias(gx, gbias, nullptr); }));
  report("silu_mul (tensors)", time_ms(gpu, reps, [&] { host::silu_mul(gx, gy, &out); }));
  report("silu_mul (raw buffers)", time_ms(gpu, reps, [&] {
    host::silu_mul(gpu.default_stream(), *gx.storage(), *gy.storage(), *out.storage(), n);
  }));
  report("masked_select", time_ms(gpu, reps, [&] { host::masked_select(gmask, gx, gy, &out); }));
  kiln::Tensor scale_out = kiln::Tensor::empty({rows, 1}, kiln::DType::f32, gpu);
  const double rms_ms = time_ms(gpu, reps, [&] { host::rms_scale(gx, {-1}, true, &scale_out); });
  std::printf("  %-28s %8.3f ms  %7.2f GB/s\n", "rms_scale (fused reduce)", rms_ms, double(n) * 4 / (rms_ms * 1e-3) / 1e9);

  // Errors are kiln::Error with a message naming the op, shapes, dtypes and device.
  try {
    host::silu_mul(gx, gbias.reshape({1, cols}).broadcast_to({2, cols}));
    std::printf("expected a shape error\n");
    ++failures;
  } catch (const kiln::Error& e) {
    std::printf("a bad call reports: %s\n", e.what());
  }

  std::printf("host-app: %s\n", failures ? "FAILED" : "all checks passed");
  return failures ? 1 : 0;
} catch (const kiln::Error& e) {
  std::fprintf(stderr, "host-app: %s\n", e.what());
  return 2;
}
