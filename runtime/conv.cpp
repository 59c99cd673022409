// Convolutions: Nx.conv's options checked (errors name the op, both shapes, the options, dtypes and
// device) and resolved — permutations as strides, padding, dilations, groups, the output's extents —
// into the conv family's request (codegen/families/conv.hpp), run through the one dispatch path.
#include "runtime/conv.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <numeric>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/ops.hpp"

namespace kiln {

namespace {

std::string options_text(const ConvGeometry& g) {
  std::string pad = g.padding == ConvPadding::valid ? "valid" : g.padding == ConvPadding::same ? "same" : "[";
  if (g.padding == ConvPadding::explicit_) {
    for (std::size_t i = 0; i < g.padding_config.size(); ++i)
      pad += fmt::format("{}({},{})", i ? "," : "", g.padding_config[i].first, g.padding_config[i].second);
    pad += "]";
  }
  std::string s = fmt::format("strides [{}], padding {}, input_dilation [{}], kernel_dilation [{}], "
                              "feature_group_size {}, batch_group_size {}",
                              fmt::join(g.strides, ","), pad, fmt::join(g.input_dilation, ","),
                              fmt::join(g.kernel_dilation, ","), g.feature_group_size, g.batch_group_size);
  for (const auto& [name, perm] : {std::pair{"input", &g.input_permutation}, std::pair{"kernel", &g.kernel_permutation},
                                   std::pair{"output", &g.output_permutation}})
    if (!perm->empty()) s += fmt::format(", {}_permutation [{}]", name, fmt::join(*perm, ","));
  return s;
}

}  // namespace

Tensor run_conv_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                       const std::vector<Tensor>& inputs, const ConvGeometry& geo, const Tensor* into,
                       const Registry* first, const KernelEntry* entry, bool tensor_cores) {
  check_kernel_operands(op, spec, inputs, "input, kernel");
  auto bad = [&](const std::string& what) {
    fail_op(ErrorCode::invalid_argument, op, inputs, fmt::format("{} ({})", what, options_text(geo)));
  };
  const int rank = inputs[0].rank();
  if (rank < 3 || inputs[1].rank() != rank)
    bad(fmt::format("the input and the kernel must have the same rank, 3 or more ([batch, channels, spatial...] and "
                    "[out channels, in channels, spatial...]); got ranks {} and {}", rank, inputs[1].rank()));
  const int d = rank - 2;
  if (d > kMaxConvSpatial) bad(fmt::format("{} spatial dimensions; conv takes 1 to {}", d, kMaxConvSpatial));
  const std::size_t nd = std::size_t(d);

  // Permutations: the canonical [N, C, spatial...] and [O, I, spatial...] views.
  auto permutation = [&](const std::vector<int>& p, const char* which) {
    std::vector<int> out(static_cast<std::size_t>(rank));
    std::iota(out.begin(), out.end(), 0);
    if (p.empty()) return out;
    std::vector<int> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    if (sorted != out) bad(fmt::format("the {}_permutation [{}] is not a permutation of the {} axes", which, fmt::join(p, ","), rank));
    return p;
  };
  const std::vector<int> in_perm = permutation(geo.input_permutation, "input"),
                         k_perm = permutation(geo.kernel_permutation, "kernel");
  // Nx: the result transposed by output_permutation is [batch, channels, spatial...], as for the
  // input: the kernel writes the canonical result transposed by its inverse.
  std::vector<int> out_perm(static_cast<std::size_t>(rank));
  {
    const std::vector<int> p = permutation(geo.output_permutation, "output");
    for (int i = 0; i < rank; ++i) out_perm[std::size_t(p[std::size_t(i)])] = i;
  }
  const Tensor x = inputs[0].transpose(in_perm), w = inputs[1].transpose(k_perm);

  // Per spatial dimension options: empty = default, one value = all.
  auto per_dim = [&](const std::vector<std::int64_t>& v, const char* what) {
    std::vector<std::int64_t> out(nd, 1);
    if (v.size() == 1) std::fill(out.begin(), out.end(), v[0]);
    else if (v.size() == nd) out = v;
    else if (!v.empty()) bad(fmt::format("{} has {} values for {} spatial dimensions", what, v.size(), d));
    for (std::int64_t s : out)
      if (s < 1 || s > INT_MAX) bad(fmt::format("{} must be >= 1 (and below 2^31), got {}", what, s));
    return out;
  };
  const std::vector<std::int64_t> strides = per_dim(geo.strides, "strides"),
                                  idil = per_dim(geo.input_dilation, "input_dilation"),
                                  kdil = per_dim(geo.kernel_dilation, "kernel_dilation");

  // Groups (Nx's rules).
  const std::int64_t batch = x.shape()[0], channels = x.shape()[1], out_channels = w.shape()[0],
                     kernel_channels = w.shape()[1], fg = geo.feature_group_size, bg = geo.batch_group_size;
  if (fg < 1 || bg < 1) bad(fmt::format("group sizes must be >= 1, got feature_group_size {} and batch_group_size {}", fg, bg));
  if (fg > 1 && bg > 1) bad("feature_group_size and batch_group_size cannot both be above 1");
  if (batch % bg != 0) bad(fmt::format("batch_group_size {} does not divide the input batch {}", bg, batch));
  if (out_channels % fg != 0 || out_channels % bg != 0)
    bad(fmt::format("the kernel's {} output channels are not divisible by the group size {}", out_channels, fg * bg));
  if (channels % fg != 0 || channels / fg != kernel_channels)  // channels == kernel_channels * fg, no overflow
    bad(fmt::format("the input has {} channels; the kernel's {} input channels x feature_group_size {} must equal it",
                    channels, kernel_channels, fg));

  // Padding and the output's extents.
  if (geo.padding != ConvPadding::explicit_ && !geo.padding_config.empty())
    bad("padding_config is given but padding is not ConvPadding::explicit_, so it would be ignored");
  std::vector<ConvDim> dims(nd);
  Shape out_canonical{batch / bg, out_channels};
  for (std::size_t j = 0; j < nd; ++j) {
    const std::int64_t in = x.shape()[2 + j], k = w.shape()[2 + j];
    if (k < 1) bad(fmt::format("the kernel's spatial dimension {} is empty", j));
    if (in > INT_MAX || k > INT_MAX) bad(fmt::format("spatial dimension {} is beyond 2^31 elements", j));
    const std::int64_t dilated_in = in == 0 ? 0 : (in - 1) * idil[j] + 1, dilated_k = (k - 1) * kdil[j] + 1;
    std::int64_t lo = 0, hi = 0;
    if (geo.padding == ConvPadding::same) {
      lo = (dilated_k - 1) / 2;
      hi = dilated_k - 1 - lo;
    } else if (geo.padding == ConvPadding::explicit_) {
      if (geo.padding_config.size() != nd)
        bad(fmt::format("padding_config has {} (low, high) pairs for {} spatial dimensions", geo.padding_config.size(), d));
      lo = geo.padding_config[j].first;
      hi = geo.padding_config[j].second;
      if (lo < -INT_MAX || lo > INT_MAX || hi < -INT_MAX || hi > INT_MAX)
        bad(fmt::format("padding ({}, {}) of spatial dimension {} is beyond 2^31", lo, hi, j));
    }
    // Nx's extent, floor((padded - dilated kernel) / stride) + 1: 0 when the window passes the end
    // by at most a stride (an empty input under a one-element kernel: an empty result), refused
    // below that.
    const std::int64_t padded = dilated_in + lo + hi, diff = padded - dilated_k;
    const std::int64_t extent = diff >= 0 ? diff / strides[j] + 1 : 1 - (-diff + strides[j] - 1) / strides[j];
    if (extent < 0)
      bad(fmt::format("spatial dimension {}: the padded input's extent {} is less than the dilated kernel's {} by more "
                      "than the stride {}, which would give a negative output size", j, padded, dilated_k, strides[j]));
    out_canonical.push_back(extent);
    dims[j] = {strides[j], lo, kdil[j], idil[j], in};
  }
  Shape out_shape(static_cast<std::size_t>(rank));
  for (std::size_t i = 0; i < std::size_t(rank); ++i) out_shape[i] = out_canonical[std::size_t(out_perm[i])];

  Device& device = inputs[0].device();
  Tensor out = result_tensor(op, inputs, into, out_shape, spec.output, device, Overlap::none);
  // The epilogue's operands, broadcast to the result, in the canonical order [N, O, spatial...].
  std::vector<int> inv_out(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) inv_out[std::size_t(out_perm[std::size_t(i)])] = i;
  std::vector<Tensor> ext;
  for (std::size_t i = 2; i < inputs.size(); ++i) {
    if (broadcast_shapes({inputs[i].shape(), out_shape}) != out_shape)
      fail_op(ErrorCode::invalid_argument, op, inputs,
              fmt::format("epilogue operand {} of shape {} does not broadcast to the result's {}", i - 2,
                          shape_text(inputs[i].shape()), shape_text(out_shape)));
    ext.push_back(inputs[i].broadcast_to(out_shape).transpose(inv_out));
  }
  if (out.numel() == 0) return out;

  // The request: [G, N, o..., O, C, k...] (conv.hpp).
  const std::int64_t groups = fg * bg, og = out_channels / groups, cg = fg > 1 ? kernel_channels : channels;
  std::vector<std::int64_t> shape{groups, out_canonical[0]};
  for (std::size_t j = 0; j < nd; ++j) shape.push_back(out_canonical[2 + j]);
  shape.insert(shape.end(), {og, cg});
  for (std::size_t j = 0; j < nd; ++j) shape.push_back(w.shape()[2 + j]);
  auto stride_of = [](const Tensor& t, std::size_t a) { return t.shape()[a] == 1 ? 0 : t.strides()[a]; };
  std::vector<std::vector<std::int64_t>> st;
  {  // the input: a group is a slice of the channels (feature groups) or of the batch (batch groups)
    std::vector<std::int64_t> s{fg > 1 ? cg * x.strides()[1] : bg > 1 ? out_canonical[0] * x.strides()[0] : 0,
                                x.strides()[0]};
    for (std::size_t j = 0; j < nd; ++j) s.push_back(x.strides()[2 + j]);
    s.insert(s.end(), {0, x.strides()[1]});
    for (std::size_t j = 0; j < nd; ++j) s.push_back(x.strides()[2 + j]);
    st.push_back(std::move(s));
  }
  {  // the kernel: a group is a slice of the output channels
    std::vector<std::int64_t> s{og * w.strides()[0], 0};
    s.insert(s.end(), nd, 0);
    s.insert(s.end(), {w.strides()[0], w.strides()[1]});
    for (std::size_t j = 0; j < nd; ++j) s.push_back(w.strides()[2 + j]);
    st.push_back(std::move(s));
  }
  for (const Tensor& e : ext) {
    std::vector<std::int64_t> s{og * stride_of(e, 1), stride_of(e, 0)};
    for (std::size_t j = 0; j < nd; ++j) s.push_back(stride_of(e, 2 + j));
    s.insert(s.end(), {stride_of(e, 1), 0});
    s.insert(s.end(), nd, 0);
    st.push_back(std::move(s));
  }
  std::vector<PlanOperand> ops{{x.address(), st[0]}, {w.address(), st[1]}};
  std::vector<Tensor> operands{x, w};
  for (std::size_t i = 0; i < ext.size(); ++i) {
    ops.push_back({ext[i].address(), st[2 + i]});
    operands.push_back(ext[i]);
  }
  // k in (position, channel) order when the input's channels are its innermost axis (NHWC): the
  // threads staging a row then read adjacent channels (KILN_CONV_CHANNELS_LAST=0: never, to
  // measure the difference).
  static const bool channels_first_only = [] {  // read once, not per call
    const char* env = std::getenv("KILN_CONV_CHANNELS_LAST");
    return env && std::string_view(env) == "0";
  }();
  bool channels_last = channels > 1 && !channels_first_only;
  for (std::size_t j = 0; j < nd; ++j)
    if (x.shape()[2 + j] > 1 && std::abs(x.strides()[2 + j]) < std::abs(x.strides()[1])) channels_last = false;
  std::vector<int> axes;
  try {
    axes = conv_request_axes(out_perm, dims, channels_last);
  } catch (const Error& e) {  // a geometry past 32 bits (a huge dilation or padding): name the call
    fail_op(e.code(), op, operands, e.what());
  }
  PlanRequest request{shape, ops, out.address(), axes, spec.block_size};
  // The tensor ops' kernels (not a manifest's built kernel) on the tensor cores where they apply:
  // on an sm_90 GPU the Hopper kernel (wgmma; its producer gathers the windows, no tensor maps: any
  // layout, and kiln::jit's replays too).
  if (tensor_cores && !first && !entry && tensor_cores_on(device) && contract_tensor_cores_apply(spec, nullptr)) {
    const bool wgmma = wgmma_on(device);
    const KernelSpec mma = wgmma ? contract_wgmma_spec(spec) : contract_tensor_core_spec(spec);
    note_contraction_tile(device, mma);
    run_plan(op, mma, nullptr, operands, device, request, first, entry);
    note_tensor_core_run(wgmma);
    return out;
  }
  // On Vulkan the cooperative-matrix kernel where the device has the matrix units.
  if (tensor_cores && !first && !entry && device.backend() == Backend::vulkan && contract_coopmat_applies(spec, nullptr) &&
      conv_coopmat_fits(request, nullptr)) {
    bool emulated = false;
    const DeviceInfo::MatrixShape cm = coopmat_on(device, &emulated);
    const KernelSpec coopmat = cm.m ? contract_coopmat_spec(spec, {cm.m, cm.n, cm.k}, emulated) : KernelSpec{};
    if (cm.m && within_loop_limit(device, coopmat, request)) {
      note_contraction_tile(device, coopmat);
      run_plan(op, coopmat, nullptr, operands, device, request, first, entry);
      note_coopmat_run();
      return out;
    }
  }
  note_contraction_tile(device, spec);
  run_plan(op, spec, name, operands, device, request, first, entry);
  return out;
}

Tensor conv(const Tensor& input, const Tensor& kernel, const ConvOptions& options, const Tensor* into) {
  std::vector<Tensor> operands{input, kernel};
  operands.insert(operands.end(), options.epilogue_operands.begin(), options.epilogue_operands.end());
  check_operands("conv", operands);
  if (!options.epilogue && !options.epilogue_operands.empty())
    fail_op(ErrorCode::invalid_argument, "conv", operands, "epilogue operands without an epilogue");
  if (options.epilogue && std::size_t(options.epilogue->num_inputs()) != 1 + options.epilogue_operands.size())
    fail_op(ErrorCode::invalid_argument, "conv", operands,
            fmt::format("the epilogue takes {} inputs (y, then its operands); {} operands were given",
                        options.epilogue->num_inputs(), options.epilogue_operands.size()));
  const DType out = options.output ? *options.output : conv_default_output(input.dtype(), kernel.dtype());
  KernelSpec spec;
  try {
    spec = make_conv_spec(input.dtype(), kernel.dtype(), out, options.epilogue ? &*options.epilogue : nullptr,
                          options.precision == DotPrecision::tf32);
  } catch (const Error& e) {
    fail_op(e.code(), "conv", operands, e.what());
  }
  return run_conv_kernel("conv", spec, nullptr, operands, options, into, nullptr, nullptr, options.tensor_cores);
}

}  // namespace kiln
