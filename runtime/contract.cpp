// Contractions: the axes checked (errors name the op, both shapes, the axes, dtypes and device),
// the operands' free and contracted axes merged into the strided [batch..., M, N, K] space of the
// contraction family (an operand is copied only when they do not merge), then the family's kernel
// through the one dispatch path (runtime/dispatch.cpp).
#include "runtime/contract.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "codegen/ops.hpp"
#include "core/error.hpp"
#include "runtime/dispatch.hpp"
#include "runtime/ops.hpp"
#include "runtime/trace.hpp"

namespace kiln {

namespace {

thread_local std::uint64_t t_copies = 0, t_library = 0, t_mma = 0, t_wgmma = 0, t_coopmat = 0;
thread_local ContractTile t_tile;  // (formatted when asked: contraction_last_tile)

// The iteration space of one contraction: the output's shape, and a and b (possibly copied) with
// their axes grouped as batch, free (M for a, N for b) and contracted (K, paired in order).
struct Prepared {
  Tensor a, b;
  std::vector<int> batch_a, batch_b, free_a, free_b, contract_a, contract_b;
  // matmul: a batch axis of the result may be missing from an operand (-1: stride 0).
  Shape batch;         // the result's batch sizes
  Shape out_shape;
};

std::string axes_text(const std::vector<int>& v) { return fmt::format("[{}]", fmt::join(v, ",")); }

// Whether |dims| of |t| (in this order) address like one dimension: each stride is the next one's
// times its size (size-1 dimensions ignored); |stride| gets the innermost one's (0 if none).
bool merges(const Tensor& t, const std::vector<int>& dims, std::int64_t* stride) {
  std::int64_t inner = 0, inner_size = 0;
  bool have = false;
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) {
    const int d = *it;
    if (d < 0 || t.shape()[std::size_t(d)] == 1) continue;
    const std::int64_t s = t.strides()[std::size_t(d)];
    if (!have) {
      *stride = s;
    } else if (s != inner * inner_size) {
      return false;
    }
    inner = s;
    inner_size = t.shape()[std::size_t(d)];
    have = true;
  }
  if (!have) *stride = 0;
  return true;
}

std::int64_t product(const Tensor& t, const std::vector<int>& dims) {
  std::int64_t p = 1;
  for (int d : dims)
    if (d >= 0) p *= t.shape()[std::size_t(d)];
  return p;
}

// |t| permuted to |order| and made contiguous; the groups renumbered to the new axes.
Tensor copy_in_order(const Tensor& t, std::vector<std::vector<int>*> groups) {
  std::vector<int> perm;
  for (const std::vector<int>* g : groups)
    for (int d : *g)
      if (d >= 0) perm.push_back(d);
  const Tensor c = t.transpose(perm).contiguous();
  int next = 0;
  for (std::vector<int>* g : groups)
    for (int& d : *g)
      if (d >= 0) d = next++;
  ++t_copies;
  return c;
}

// The vendor library's form of the space (one batch stride per operand after merging), or nullopt.
// An epilogue only where it is a bias along N (strides 0 but along N, 1 there: |ext_strides|[0]).
std::optional<LibraryGemm> library_form(const KernelSpec& spec, const std::vector<std::int64_t>& shape,
                                        const std::vector<std::int64_t>& sa, const std::vector<std::int64_t>& sb,
                                        const std::vector<std::vector<std::int64_t>>& ext_strides) {
  const std::size_t nb = shape.size() - 3;
  if (spec.inputs.size() == 3) {
    // (Float outputs only: how cuBLASLt adds an integer bias to IMMA sums is not Kiln's wrapping add.)
    if (!contract_epilogue_is_bias(spec) || ext_strides.size() != 1 || !is_float(spec.output)) return std::nullopt;
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (ext_strides[0][d] != (d == nb + 1 ? 1 : 0) && shape[d] != 1) return std::nullopt;
  } else if (spec.inputs.size() != 2) {
    return std::nullopt;
  }
  if (spec.inputs[0] != spec.inputs[1]) return std::nullopt;
  // s8 x s8 -> s32 sums exactly in s32 while no sum can leave it: K * 2^14 < 2^31 (Kiln's sums wrap).
  const bool imma = spec.inputs[0] == DType::s8 && spec.output == DType::s32 && shape[nb + 2] < (std::int64_t(1) << 17);
  if (spec.inputs[0] != spec.output && !imma) return std::nullopt;
  // s8 -> s8 (Nx's default output): cuBLASLt's int8 outputs saturate where Kiln's sums wrap.
  if (spec.inputs[0] == DType::s8 && !imma) return std::nullopt;
  LibraryGemm g;
  g.dtype = spec.inputs[0];
  g.out_dtype = spec.output;
  g.tf32 = spec_contract_tf32(spec);
  g.m = shape[nb];
  g.n = shape[nb + 1];
  g.k = shape[nb + 2];
  g.a_m = sa[nb];
  g.a_k = sa[nb + 2];
  g.b_k = sb[nb + 2];
  g.b_n = sb[nb + 1];
  // Batch dimensions of size > 1 (out dense), merged where all three operands allow: one must remain.
  std::int64_t out_stride = g.m * g.n;
  std::vector<std::int64_t> so(nb);
  for (std::size_t d = nb; d-- > 0;) {
    so[d] = out_stride;
    out_stride *= shape[d];
  }
  bool have = false;
  std::int64_t size = 1;
  for (std::size_t d = nb; d-- > 0;) {
    if (shape[d] == 1) continue;
    if (!have) {
      g.a_batch = sa[d], g.b_batch = sb[d], g.out_batch = so[d];
      size = shape[d];
      have = true;
      continue;
    }
    if (sa[d] != g.a_batch * size || sb[d] != g.b_batch * size || so[d] != g.out_batch * size) return std::nullopt;
    size *= shape[d];
  }
  g.batch = size;
  if (g.a_batch < 0 || g.b_batch < 0 || g.out_batch < 0) return std::nullopt;  // cuBLASLt's offsets are >= 0
  return g;
}

// |t| with its batch axes (-1: absent, repeated) broadcast to |batch| and made contiguous in the
// order [batch, g1, g2]; the groups renumbered. After it the batch axes merge into one.
Tensor materialize(const Tensor& t, const Shape& batch, std::vector<int>& bt, std::vector<int>& g1, std::vector<int>& g2) {
  std::vector<int> perm;
  for (const std::vector<int>* g : {&bt, &g1, &g2})
    for (int d : *g)
      if (d >= 0) perm.push_back(d);
  Tensor v = t.transpose(perm);
  Shape target = batch;
  std::size_t existing = 0;
  for (int d : bt) existing += d >= 0;
  target.insert(target.end(), v.shape().begin() + std::ptrdiff_t(existing), v.shape().end());
  v = v.broadcast_to(target).contiguous();
  ++t_copies;
  int next = 0;
  for (int& d : bt) d = next++;
  for (std::vector<int>* g : {&g1, &g2})
    for (int& d : *g) d = next++;
  return v;
}


Tensor launch(std::string_view op, const KernelSpec& spec, const std::string* name, const std::vector<Tensor>& inputs,
              Prepared& p, const Tensor* into, const Registry* first, const KernelEntry* entry, const ContractCall& call) {
  const bool vendor = call.vendor_library;
  Device& device = inputs[0].device();
  Tensor out = result_tensor(op, inputs, into, p.out_shape, spec.output, device, Overlap::none);
  // More batch dimensions than the kernels take: both operands broadcast to the batch and made
  // contiguous, after which the batch merges into one dimension.
  std::size_t wide = 0;
  for (std::int64_t s : p.batch) wide += s > 1;
  const bool merge_batch = wide > std::size_t(kMaxContractBatch) && out.numel() > 0;
  if (merge_batch) {
    p.a = materialize(p.a, p.batch, p.batch_a, p.free_a, p.contract_a);
    p.b = materialize(p.b, p.batch, p.batch_b, p.contract_b, p.free_b);
  }
  // The epilogue's operands, broadcast to the result: strides over (batch, M, N) (copied when their
  // M or N axes do not merge, or when the batch merges: then laid out as the result).
  const std::size_t nb = p.batch.size(), nfa = p.free_a.size(), nfb = p.free_b.size();
  std::vector<std::vector<std::int64_t>> ext_strides;
  std::vector<Tensor> ext;
  for (std::size_t i = 2; i < inputs.size(); ++i) {
    const Tensor& e = inputs[i];
    if (broadcast_shapes({e.shape(), p.out_shape}) != p.out_shape)
      fail_op(ErrorCode::invalid_argument, op, inputs,
              fmt::format("epilogue operand {} of shape {} does not broadcast to the result's {}", i - 2,
                          shape_text(e.shape()), shape_text(p.out_shape)));
    Tensor v = e.broadcast_to(p.out_shape);
    std::vector<int> md, nd;
    for (std::size_t d = 0; d < nfa; ++d) md.push_back(int(nb + d));
    for (std::size_t d = 0; d < nfb; ++d) nd.push_back(int(nb + nfa + d));
    std::int64_t em = 0, en = 0;
    if (merge_batch || !merges(v, md, &em) || !merges(v, nd, &en)) {
      v = v.contiguous();
      ++t_copies;
      merges(v, md, &em);
      merges(v, nd, &en);
    }
    std::vector<std::int64_t> st(v.strides().begin(), v.strides().begin() + std::ptrdiff_t(nb));
    for (std::size_t d = 0; d < nb; ++d)
      if (v.shape()[d] == 1) st[d] = 0;
    st.insert(st.end(), {em, en, 0});
    ext_strides.push_back(std::move(st));
    ext.push_back(v);
  }
  if (out.numel() == 0) return out;
  // M, N and K as one strided dimension each; an operand whose axes do not merge is copied in the
  // order [batch, free, contracted] (a) or [batch, contracted, free] (b), after which they do.
  std::int64_t a_m = 0, a_k = 0, b_n = 0, b_k = 0;
  if (!merges(p.a, p.free_a, &a_m) || !merges(p.a, p.contract_a, &a_k)) {
    p.a = copy_in_order(p.a, {&p.batch_a, &p.free_a, &p.contract_a});
    merges(p.a, p.free_a, &a_m);
    merges(p.a, p.contract_a, &a_k);
  }
  if (!merges(p.b, p.free_b, &b_n) || !merges(p.b, p.contract_b, &b_k)) {
    p.b = copy_in_order(p.b, {&p.batch_b, &p.contract_b, &p.free_b});
    merges(p.b, p.free_b, &b_n);
    merges(p.b, p.contract_b, &b_k);
  }
  std::vector<std::int64_t> shape(p.batch.begin(), p.batch.end()), sa, sb;
  for (std::size_t i = 0; i < p.batch.size(); ++i) {
    const int da = p.batch_a[i], db = p.batch_b[i];
    // A broadcast batch axis (size 1 in an operand, or absent) reads the same element: stride 0.
    sa.push_back(da < 0 || p.a.shape()[std::size_t(da)] == 1 ? 0 : p.a.strides()[std::size_t(da)]);
    sb.push_back(db < 0 || p.b.shape()[std::size_t(db)] == 1 ? 0 : p.b.strides()[std::size_t(db)]);
  }
  const std::int64_t m = product(p.a, p.free_a), n = product(p.b, p.free_b), k = product(p.a, p.contract_a);
  shape.insert(shape.end(), {m, n, k});
  sa.insert(sa.end(), {a_m, 0, a_k});
  sb.insert(sb.end(), {0, b_n, b_k});
  std::vector<PlanOperand> ops{{p.a.address(), sa}, {p.b.address(), sb}};
  std::vector<Tensor> operands{p.a, p.b};
  for (std::size_t i = 0; i < ext.size(); ++i) {
    ops.push_back({ext[i].address(), ext_strides[i]});
    operands.push_back(ext[i]);
  }
  PlanRequest request{shape, ops, out.address(), {}, spec.block_size};
  // The tensor ops' kernels (not a manifest's built kernel) on the tensor cores where they apply.
  const bool mma =
      call.tensor_cores && !first && !entry && tensor_cores_on(device) && contract_tensor_cores_apply(spec, nullptr);
  // On an sm_90 GPU the Hopper kernel (wgmma, TMA loads) where the TMA can load the operands; not
  // inside a kiln::jit trace, whose replays may bind operands the TMA cannot load.
  const bool wgmma = mma && wgmma_on(device) && !active_trace() && contract_wgmma_fits(request, nullptr);
  // On Vulkan the cooperative-matrix kernel where the device has the matrix units.
  bool emulated = false;
  DeviceInfo::MatrixShape cm =
      call.tensor_cores && !first && !entry && device.backend() == Backend::vulkan && contract_coopmat_applies(spec, nullptr)
          ? coopmat_on(device, &emulated)
          : DeviceInfo::MatrixShape{};
  if (cm.m && device.info().loop_limit &&
      !within_loop_limit(device, contract_coopmat_spec(spec, {cm.m, cm.n, cm.k}, emulated), request))
    cm = {};  // (lavapipe, emulated: the portable kernel takes a K about 100 times longer)
  std::int64_t batch = 1;
  for (std::size_t i = 0; i + 3 < shape.size(); ++i) batch *= shape[i];
  const ContractTile wg_tile = wgmma ? wgmma_tile(batch, m, n) : ContractTile{};
  const KernelSpec run_spec = wgmma ? contract_wgmma_spec(spec, wg_tile.m, wg_tile.n)
                             : mma  ? contract_tensor_core_spec(spec)
                             : cm.m ? contract_coopmat_spec(spec, {cm.m, cm.n, cm.k}, emulated)
                                    : KernelSpec{};
  const bool variant = mma || cm.m;
  // (A bias epilogue is left to Kiln's kernel inside a kiln::jit trace: its replays bind a, b and
  // the output only.)
  if (vendor && device.backend() != Backend::cpu && k > 0 && (ext.empty() || !active_trace())) {
    if (std::optional<LibraryGemm> g = library_form(spec, shape, sa, sb, ext_strides)) {
      g->a = p.a.address();
      g->b = p.b.address();
      g->out = out.address();
      if (!ext.empty()) g->bias = ext[0].address();
      // kiln::jit records the library call with the kernel to run when the library cannot.
      if (trace_launch(op, variant ? run_spec : spec, variant ? nullptr : name, operands, device, request, first, entry, &*g))
        return out;
      std::string why;
      if (device.library_gemm(device.default_stream(), *g, &why)) {
        ++t_library;
        return out;
      }
    }
  }
  note_contraction_tile(device, variant ? run_spec : spec);
  if (variant) {
    run_plan(op, run_spec, nullptr, operands, device, request, first, entry);
    if (cm.m) {
      ++t_coopmat;
      return out;
    }
    ++t_mma;
    if (wgmma) ++t_wgmma;
    return out;
  }
  run_plan(op, spec, name, operands, device, request, first, entry);
  return out;
}

// Nx.dot/6's checks and grouping.
Prepared prepare_dot(std::string_view op, const Tensor& a, const Tensor& b, const DotAxes& axes) {
  const std::vector<Tensor> operands{a, b};
  const std::string given = fmt::format("contract axes {} and {}, batch axes {} and {}", axes_text(axes.contract_a),
                                        axes_text(axes.contract_b), axes_text(axes.batch_a), axes_text(axes.batch_b));
  auto bad = [&](const std::string& what) { fail_op(ErrorCode::invalid_argument, op, operands, what + " (" + given + ")"); };
  Prepared p{a, b};
  auto normalize = [&](const Tensor& t, const std::vector<int>& in, const char* which, const char* role) {
    std::vector<int> out;
    for (int d : in) {
      if (d < -t.rank() || d >= t.rank())
        bad(fmt::format("{} axis {} of {} is out of range for rank {}", role, d, which, t.rank()));
      out.push_back(d < 0 ? d + t.rank() : d);
    }
    return out;
  };
  p.contract_a = normalize(a, axes.contract_a, "a", "contract");
  p.contract_b = normalize(b, axes.contract_b, "b", "contract");
  p.batch_a = normalize(a, axes.batch_a, "a", "batch");
  p.batch_b = normalize(b, axes.batch_b, "b", "batch");
  if (p.contract_a.size() != p.contract_b.size())
    bad(fmt::format("a has {} contract axes and b {}; they pair one to one", p.contract_a.size(), p.contract_b.size()));
  if (p.batch_a.size() != p.batch_b.size())
    bad(fmt::format("a has {} batch axes and b {}; they pair one to one", p.batch_a.size(), p.batch_b.size()));
  auto free_of = [&](const Tensor& t, const std::vector<int>& c, const std::vector<int>& bt, const char* which) {
    std::vector<int> seen(std::size_t(t.rank()), 0), free;
    for (int d : c) ++seen[std::size_t(d)];
    for (int d : bt) ++seen[std::size_t(d)];
    for (int d = 0; d < t.rank(); ++d) {
      if (seen[std::size_t(d)] > 1) bad(fmt::format("axis {} of {} is given more than once", d, which));
      if (!seen[std::size_t(d)]) free.push_back(d);
    }
    return free;
  };
  p.free_a = free_of(a, p.contract_a, p.batch_a, "a");
  p.free_b = free_of(b, p.contract_b, p.batch_b, "b");
  for (std::size_t i = 0; i < p.contract_a.size(); ++i) {
    const std::int64_t sa = a.shape()[std::size_t(p.contract_a[i])], sb = b.shape()[std::size_t(p.contract_b[i])];
    if (sa != sb)
      bad(fmt::format("contract axis {} of a has size {} and axis {} of b size {}", p.contract_a[i], sa,
                      p.contract_b[i], sb));
  }
  for (std::size_t i = 0; i < p.batch_a.size(); ++i) {
    const std::int64_t sa = a.shape()[std::size_t(p.batch_a[i])], sb = b.shape()[std::size_t(p.batch_b[i])];
    if (sa != sb)
      bad(fmt::format("batch axis {} of a has size {} and axis {} of b size {}", p.batch_a[i], sa, p.batch_b[i], sb));
    p.batch.push_back(sa);
  }
  p.out_shape = p.batch;
  for (int d : p.free_a) p.out_shape.push_back(a.shape()[std::size_t(d)]);
  for (int d : p.free_b) p.out_shape.push_back(b.shape()[std::size_t(d)]);
  return p;
}

// numpy.matmul's grouping: the last two axes are the matrices, the ones before broadcast.
Prepared prepare_matmul(std::string_view op, const Tensor& a, const Tensor& b) {
  const std::vector<Tensor> operands{a, b};
  if (a.rank() == 0 || b.rank() == 0)
    fail_op(ErrorCode::invalid_argument, op, operands, "matmul takes tensors of rank 1 or more (use multiply for scalars)");
  Prepared p{a, b};
  const int ra = a.rank(), rb = b.rank();
  const int ka = ra - 1, kb = rb == 1 ? 0 : rb - 2;
  if (a.shape()[std::size_t(ka)] != b.shape()[std::size_t(kb)])
    fail_op(ErrorCode::invalid_argument, op, operands,
            fmt::format("a's last axis has size {} and b's {} axis size {}; they must match", a.shape()[std::size_t(ka)],
                        rb == 1 ? "only" : "second-to-last", b.shape()[std::size_t(kb)]));
  p.contract_a = {ka};
  p.contract_b = {kb};
  p.free_a = ra >= 2 ? std::vector<int>{ra - 2} : std::vector<int>{};
  p.free_b = rb >= 2 ? std::vector<int>{rb - 1} : std::vector<int>{};
  const Shape ba(a.shape().begin(), a.shape().end() - std::min(ra, 2)), bb(b.shape().begin(), b.shape().end() - std::min(rb, 2));
  const std::optional<Shape> batch = broadcast_shapes({ba, bb});
  if (!batch)
    fail_op(ErrorCode::invalid_argument, op, operands,
            fmt::format("the batch axes {} and {} do not broadcast", shape_text(ba), shape_text(bb)));
  p.batch = *batch;
  const int nb = int(batch->size());
  for (int i = 0; i < nb; ++i) {  // right-aligned; absent axes are -1 (stride 0)
    const int da = i - (nb - int(ba.size())), db = i - (nb - int(bb.size()));
    p.batch_a.push_back(da);
    p.batch_b.push_back(db);
  }
  p.out_shape = p.batch;
  if (ra >= 2) p.out_shape.push_back(a.shape()[std::size_t(ra - 2)]);
  if (rb >= 2) p.out_shape.push_back(b.shape()[std::size_t(rb - 1)]);
  return p;
}

// The kernel of |options| and its operands (a, b, the epilogue's).
KernelSpec spec_for(std::string_view op, const Tensor& a, const Tensor& b, const DotOptions& options,
                    std::vector<Tensor>* operands) {
  *operands = {a, b};
  operands->insert(operands->end(), options.epilogue_operands.begin(), options.epilogue_operands.end());
  check_operands(op, *operands);
  if (!options.epilogue && !options.epilogue_operands.empty())
    fail_op(ErrorCode::invalid_argument, op, *operands, "epilogue operands without an epilogue");
  if (options.epilogue && std::size_t(options.epilogue->num_inputs()) != 1 + options.epilogue_operands.size())
    fail_op(ErrorCode::invalid_argument, op, *operands,
            fmt::format("the epilogue takes {} inputs (y, then its operands); {} operands were given",
                        options.epilogue->num_inputs(), options.epilogue_operands.size()));
  const DType out = options.output ? *options.output : promote(a.dtype(), b.dtype());
  try {
    return make_contract_spec(a.dtype(), b.dtype(), out, options.epilogue ? &*options.epilogue : nullptr,
                              options.precision == DotPrecision::tf32);
  } catch (const Error& e) {
    fail_op(e.code(), op, *operands, e.what());
  }
}

}  // namespace

void check_kernel_operands(std::string_view op, const KernelSpec& spec, const std::vector<Tensor>& inputs,
                           std::string_view names) {
  check_operands(op, inputs);
  if (inputs.size() != spec.inputs.size())
    fail_op(ErrorCode::invalid_argument, op, inputs,
            fmt::format("the kernel takes {} operands ({}{}), got {}", spec.inputs.size(), names,
                        spec.inputs.size() > 2 ? ", its epilogue's" : "", inputs.size()));
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].dtype() != spec.inputs[i])
      fail_op(ErrorCode::dtype_mismatch, op, inputs,
              fmt::format("operand {} is {}; the kernel takes {}", i, dtype_name(inputs[i].dtype()),
                          dtype_name(spec.inputs[i])));
}

std::uint64_t contraction_copies() { return t_copies; }
std::uint64_t contraction_library_runs() { return t_library; }
std::uint64_t contraction_tensor_core_runs() { return t_mma; }
std::uint64_t contraction_wgmma_runs() { return t_wgmma; }
std::uint64_t contraction_coopmat_runs() { return t_coopmat; }
const std::string& contraction_last_tile() {
  thread_local std::string text;
  text = t_tile.m ? fmt::format("{}x{}x{}", t_tile.m, t_tile.n, t_tile.k) : std::string();
  return text;
}
void note_tensor_core_run(bool wgmma) {
  ++t_mma;
  if (wgmma) ++t_wgmma;
}
void note_coopmat_run() { ++t_coopmat; }
bool within_loop_limit(Device& device, const KernelSpec& spec, const PlanRequest& request) {
  const std::uint64_t limit = device.info().loop_limit;
  if (!limit) return true;
  std::string why;
  const LaunchPlan plan = family_of(spec).plan(spec, request, &why);
  return plan.function >= 0 && plan.loop_iterations <= limit;
}
void note_contraction_tile(Device& device, const KernelSpec& spec) {
  if (device.backend() != Backend::cpu) t_tile = contract_tile(spec);  // (the CPU: no tiles)
}

bool tensor_cores_on(Device& device) {
  if (device.backend() != Backend::cuda) return false;
  static const bool off = [] {  // read once: this is on every CUDA contraction's path
    const char* env = std::getenv("KILN_MMA");
    return env && std::string_view(env) == "0";
  }();
  if (off) return false;
  const std::string& arch = device.info().arch;
  return arch.rfind("sm_", 0) == 0 && std::atoi(arch.c_str() + 3) >= 80;
}

ContractTile wgmma_tile(std::int64_t batch, std::int64_t m, std::int64_t n) {
  const char* env = std::getenv("KILN_WGMMA_TILE");
  if (!env || !*env) return contract_wgmma_tile_for(batch, m, n);
  const std::string_view v(env);
  if (v == "64x128") return {64, 128, 64};
  if (v == "128x128") return {128, 128, 64};
  if (v == "128x256") return {128, 256, 64};
  fail(ErrorCode::invalid_argument,
       fmt::format("KILN_WGMMA_TILE={} is not a tile of the wgmma GEMM: 64x128, 128x128 or 128x256 (or unset: "
                   "chosen by shape)", v));
}

bool wgmma_on(Device& device) {
  static const bool off = [] {
    const char* env = std::getenv("KILN_WGMMA");
    return env && std::string_view(env) == "0";
  }();
  return !off && tensor_cores_on(device) && device.info().arch == "sm_90";
}

DeviceInfo::MatrixShape coopmat_on(Device& device, bool* emulated) {
  *emulated = false;
  if (device.backend() != Backend::vulkan) return {};
  const char* env = std::getenv("KILN_COOPMAT");
  if (env && std::string_view(env) == "emulate") {
    *emulated = true;
    return {16, 16, 16};
  }
  return env && std::string_view(env) == "0" ? DeviceInfo::MatrixShape{} : device.info().cooperative_matrix;
}


Tensor run_contract_kernel(std::string_view op, const KernelSpec& spec, const std::string* name,
                           const std::vector<Tensor>& inputs, const ContractCall& call, const Tensor* into,
                           const Registry* first, const KernelEntry* entry) {
  check_kernel_operands(op, spec, inputs, "a, b");
  Prepared p = call.axes ? prepare_dot(op, inputs[0], inputs[1], *call.axes) : prepare_matmul(op, inputs[0], inputs[1]);
  return launch(op, spec, name, inputs, p, into, first, entry, call);
}

Tensor dot(const Tensor& a, const Tensor& b, const DotAxes& axes, const DotOptions& options, const Tensor* into) {
  std::vector<Tensor> operands;
  const KernelSpec spec = spec_for("dot", a, b, options, &operands);
  return run_contract_kernel("dot", spec, nullptr, operands, ContractCall{axes, options.vendor_library, options.tensor_cores},
                             into, nullptr);
}

Tensor dot(const Tensor& a, const Tensor& b, const DotOptions& options) {
  check_operands("dot", {a, b});
  const int n = a.rank(), m = b.rank();
  DotAxes axes;
  if (n == 0 || m == 0) {
    // A scalar operand multiplies (Nx): a contraction over a new leading axis of size 1 of both
    // (a broadcast: a view of any operand, strided or not), so that the contraction's rules hold
    // (s8 x s8 -> s32 exactly, f16 products in f32, its dtype checks, precision and epilogue).
    Shape sa = a.shape(), sb = b.shape();
    sa.insert(sa.begin(), 1);
    sb.insert(sb.begin(), 1);
    axes.contract_a = {0};
    axes.contract_b = {0};
    return dot(a.broadcast_to(sa), b.broadcast_to(sb), axes, options);
  }
  axes.contract_a = {n - 1};
  axes.contract_b = {m == 1 ? 0 : m - 2};
  return dot(a, b, axes, options);
}

Tensor matmul(const Tensor& a, const Tensor& b, const DotOptions& options, const Tensor* into) {
  std::vector<Tensor> operands;
  const KernelSpec spec = spec_for("matmul", a, b, options, &operands);
  return run_contract_kernel("matmul", spec, nullptr, operands,
                             ContractCall{std::nullopt, options.vendor_library, options.tensor_cores}, into, nullptr);
}

}  // namespace kiln
