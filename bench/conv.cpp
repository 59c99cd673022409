// Convolution cases: ResNet-50 layers in NHWC bf16 and f16 (the input [N, H, W, C], the kernel
// [O, kh, kw, C], the output [N, H', W', O]: permutations, no copies), 3x3 and 1x1, against
// torch.nn.functional.conv2d on channels-last tensors with --peer torch. The elements of --size
// pick the batch (up to 32 images) or, below one image, a smaller square image; FLOPs are
// 2 N H' W' O C kh kw, bytes the operands read once and the output written once. f16 is the Vulkan
// cooperative-matrix kernel's dtype (bf16 has no NV cooperative-matrix type). Not in the default
// run: kiln-bench --op conv.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "bench/bench.hpp"
#include "codegen/families/conv.hpp"
#include "runtime/conv.hpp"

namespace kiln::bench {

namespace {

struct Layer {
  const char* name;
  std::int64_t hw, c, o, k, stride;  // square images and kernels; "same" padding
};
constexpr Layer kLayers[] = {
    {"res2_3x3", 56, 64, 64, 3, 1},
    {"res2_1x1", 56, 256, 64, 1, 1},
    {"res3_3x3s2", 56, 128, 128, 3, 2},
    {"res4_1x1", 14, 1024, 256, 1, 1},
    {"res5_3x3", 7, 512, 512, 3, 1},
};

struct ConvCase : ShapedCase {
  KernelSpec kernel;
  Layer layer{};

  struct Dims {
    std::int64_t n, hw, out_hw;
  };
  Dims dims(std::uint64_t size) const {
    const std::int64_t image = layer.hw * layer.hw * layer.c;
    Dims d{std::clamp<std::int64_t>(std::int64_t(size) / image, 1, 32), layer.hw, 0};
    if (std::int64_t(size) < image)
      d.hw = std::clamp<std::int64_t>(std::int64_t(std::sqrt(double(size) / double(layer.c))), 1, layer.hw);
    d.out_hw = (d.hw - 1) / layer.stride + 1;  // "same": ceil(hw / stride)
    return d;
  }
  ConvOptions options() const {
    ConvOptions o;
    o.strides = {layer.stride};
    o.padding = ConvPadding::same;
    o.input_permutation = {0, 3, 1, 2};
    o.kernel_permutation = {0, 3, 1, 2};
    o.output_permutation = {0, 3, 1, 2};
    return o;
  }
  const KernelSpec& spec() const override { return kernel; }
  Shape operand_shape(std::size_t i, std::uint64_t size) const override {
    const Dims d = dims(size);
    return i == 0 ? Shape{d.n, d.hw, d.hw, layer.c} : Shape{layer.o, layer.k, layer.k, layer.c};
  }
  Shape output_shape(std::uint64_t size) const override {
    const Dims d = dims(size);
    return {d.n, d.out_hw, d.out_hw, layer.o};
  }
  double flops(std::uint64_t size) const override {
    const Dims d = dims(size);
    return 2 * double(d.n) * double(d.out_hw * d.out_hw) * double(layer.o) * double(layer.c * layer.k * layer.k);
  }
  Tensor run(const std::vector<Tensor>& inputs, const Tensor* out) const override {
    // As kiln::conv runs it: on the tensor cores where they apply (bf16 and f16 on CUDA sm_80+, f16
    // on Vulkan cooperative matrices).
    return run_conv_kernel("conv", kernel, nullptr, inputs, options(), out, nullptr, nullptr, /*tensor_cores=*/true);
  }
  std::vector<std::string> torch_operands(std::uint64_t size) const override {
    const Dims d = dims(size);
    return {fmt::format("x0[:{}].reshape({}, {}, {}, {}).permute(0, 3, 1, 2)", d.n * d.hw * d.hw * layer.c, d.n, d.hw,
                        d.hw, layer.c),
            fmt::format("x1[:{}].reshape({}, {}, {}, {}).permute(0, 3, 1, 2)", layer.o * layer.k * layer.k * layer.c,
                        layer.o, layer.k, layer.k, layer.c)};
  }
  std::uint64_t check_size() const override { return 4096; }
  std::int64_t verify_leading(std::uint64_t size) const override {
    const Dims d = dims(size);  // one image, when the CPU reference can afford its products
    return double(d.out_hw * d.out_hw) * double(layer.o * layer.c * layer.k * layer.k) <= 0x1p24 ? 1 : 0;
  }
};

}  // namespace

std::vector<BenchCase> conv_cases() {
  std::vector<BenchCase> out;
  for (DType t : {DType::bf16, DType::f16}) {
    for (const Layer& l : kLayers) {
      BenchCase b;
      b.kind = CaseKind::contract;
      auto c = std::make_shared<ConvCase>();
      c->kernel = make_conv_spec(t, t, t);
      c->layer = l;
      b.shaped = c;
      b.op = "conv";
      b.name = fmt::format("conv.{}.{}", l.name, dtype_name(t));
      b.expr = parse_expr("x", {t}, b.name);
      b.expr_text = fmt::format("ResNet-50 {}: NHWC [N,{},{},{}] * [{},{},{},{}], stride {}, same padding", l.name, l.hw,
                                l.hw, l.c, l.o, l.k, l.k, l.c, l.stride);
      b.torch_fn = fmt::format("return torch.nn.functional.conv2d({{0}}, {{1}}, stride={}, padding={})", l.stride, l.k / 2);
      // Inputs in [-1, 1]; sums of up to 4608 products in f32, the output rounded to 8 (bf16) or 11 bits.
      b.ranges = {InputRange{-1, 1}, InputRange{-1, 1}};
      b.atol = 5e-2;
      b.rtol = 2e-2;
      out.push_back(std::move(b));
    }
  }
  return out;
}

}  // namespace kiln::bench
