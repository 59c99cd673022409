// Row-wise kernels: softmax, log_softmax, logsumexp, layer_norm, rms_norm over each row (the
// elements along one axis). Vulkan compute, GLSL 4.50 + buffer device addresses; inlined after
// glsl/ops.glsl, glsl/operands.glsl and the emitter's definitions (codegen/families/rows.cpp):
//   KILN_ROWS_OP                        0 softmax, 1 log_softmax, 2 logsumexp, 3 layer_norm, 4 rms_norm
//   KILN_NUM_INPUTS, KILN_S<k>          the inputs (the prologue's, gamma/beta or the bias, the
//                                       epilogue's) and their sizes (1 where absent)
//   KILN_PARAMS                         inputs after the prologue's: gamma[, beta] or the bias
//   KILN_BIAS, KILN_CAUSAL              softmax: 0 no bias, 1 added, 2 a pred mask; the causal mask
//   KILN_MASKED_NAN                     softmax, log_softmax: 1 a fully masked row gives NaN (as op by
//                                       op), 0 it gives 0 (-inf)
//   KILN_RESIDUAL                       layer_norm, rms_norm: also write h = x
//   KILN_C, KILN_C_F64                  the compute type (float, or double for f64)
//   KILN_SOUT, KILN_SX                  the output's and x's element sizes
//   kiln_base[5], kiln_step[5], kiln_h  the operands' addresses and axis strides in this row (set here)
//   kiln_x(j)                           x: the prologue over the first inputs
//   kiln_param0(j), kiln_param1(j)      gamma and beta, or the bias (a mask: 0 or 1)
//   kiln_put(j, y), kiln_put_h(j, v)    the epilogue over y and its inputs, stored; h = v in x's dtype
//   kiln_rows_exp/log/rsqrt/div         the op table's functions on KILN_C
//   KILN_SUBGROUP                       1: subgroup arithmetic (GL_KHR_shader_subgroup_arithmetic)
//                                       combines the invocations' values; 0: shared memory only
// ABI: the device address of a KilnRowsParams block (416 bytes, codegen/abi.hpp) as the push
// constant. A row of up to 16 elements per invocation of a subgroup is a subgroup's (with
// subgroup arithmetic), a longer one a workgroup's; rows grid-stride. Invocation t of the row reads
// elements t, t + size, ... and combines them in order; the row's invocations combine their values
// in an order fixed for the device (kiln_rows_group), so results are deterministic. Passes over
// the row: softmax and log_softmax three over registers (max, sum of exp(x - max), the output) or
// two over memory (the max and the sum online in one read, then the output), logsumexp two or one,
// layer_norm three over registers (mean, sum of squared deviations, the output) or two over memory
// (Welford's mean and deviations in one read), rms_norm two; a row of up to 16 elements per
// invocation is read from memory once (held in registers), a longer one by every pass. Block
// size: specialization constant 0 (default 256, a power of two).
layout(local_size_x_id = 0) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KilnRowsParams {
  uint64_t out_;
  uint64_t in_[4];
  int64_t n_rows;
  int64_t n;
  int64_t rank;
  int64_t shape[6];
  int64_t strides[30];  // [operand][dim] in elements: inputs 0..3, the output at 4
  int64_t axis_stride[5];
  uint value64_lo;  // the norms' eps or softmax's scale
  uint value64_hi;
  uint value32;
  uint causal_q;    // causal: row r masks the elements j > r mod causal_q
  uint64_t h_;      // the residual output (laid out as the output), 0 for none
};
layout(push_constant, std430) uniform KilnRowsPush { KilnRowsParams params; } pc;

shared KILN_C kiln_smem[2 * gl_WorkGroupSize.x];
shared KILN_C kiln_total[2];
uint kiln_parity = 0u;  // which half of kiln_smem (and kiln_total) the next combine uses

bool kiln_by_subgroup;  // this dispatch's rows are one per subgroup (else one per workgroup)

KILN_C kiln_rows_combine(KILN_C a, KILN_C b, bool is_max) {
  return is_max ? ((kiln_isnan(a) || a > b) ? a : b) : a + b;
}

#if KILN_SUBGROUP
// The subgroup's NaN-propagating maximum (GLSL's max may drop a NaN) or sum.
KILN_C kiln_subgroup_combine(KILN_C v, bool is_max) {
  if (!is_max) return subgroupAdd(v);
  const bool nan = subgroupMax(kiln_isnan(v) ? 1u : 0u) != 0u;
  return nan ? KILN_C(kiln_nan_f32()) : subgroupMax(v);
}
#endif

// |v| combined over the invocations of a row, every one getting the result. |is_max|: the
// NaN-propagating maximum, else the sum. With subgroup arithmetic (KILN_SUBGROUP): the subgroup's
// combine, then for a workgroup's row the subgroups' values in shared memory combined by the first
// subgroup (lane l takes values l, l + subgroup size, ... in order, from the exact identity: -0 for
// sums, -inf for the maximum), which shares the result. Without: a fixed tree in shared memory
// (invocation t with t + s, s = size/2 ... 1). Either order is fixed for a device, so results are
// deterministic. Two barriers per combine: the halves of kiln_smem alternate, so the next combine
// may write while this one's result is read. A workgroup's row calls this in uniform control flow.
KILN_C kiln_rows_group(uint tid, KILN_C v, bool is_max) {
  const uint base = kiln_parity * gl_WorkGroupSize.x;
#if KILN_SUBGROUP
  v = kiln_subgroup_combine(v, is_max);
  if (kiln_by_subgroup) return v;
  if (subgroupElect()) kiln_smem[base + gl_SubgroupID] = v;
  barrier();
  if (gl_SubgroupID == 0u) {
#if KILN_C_F64
    KILN_C t = is_max ? -kiln_inf_f64() : packDouble2x32(uvec2(0u, 0x80000000u));
#else
    KILN_C t = is_max ? -kiln_inf_f32() : uintBitsToFloat(0x80000000u);
#endif
    for (uint w = gl_SubgroupInvocationID; w < gl_NumSubgroups; w += gl_SubgroupSize)
      t = kiln_rows_combine(t, kiln_smem[base + w], is_max);
    t = kiln_subgroup_combine(t, is_max);
    if (subgroupElect()) kiln_total[kiln_parity] = t;
  }
#else
  kiln_smem[base + tid] = v;
  barrier();
  for (uint s = gl_WorkGroupSize.x / 2u; s > 1u; s >>= 1) {
    if (tid < s) kiln_smem[base + tid] = kiln_rows_combine(kiln_smem[base + tid], kiln_smem[base + tid + s], is_max);
    barrier();
  }
  if (tid == 0u) kiln_total[kiln_parity] = kiln_rows_combine(kiln_smem[base], kiln_smem[base + 1u], is_max);
#endif
  barrier();
  v = kiln_total[kiln_parity];
  kiln_parity ^= 1u;
  return v;
}

#if KILN_C_F64
KILN_C kiln_rows_ninf() { return -kiln_inf_f64(); }
#else
KILN_C kiln_rows_ninf() { return -kiln_inf_f32(); }
#endif
KILN_C kiln_scale;
int64_t kiln_q;
// softmax's input: scale x + bias, or -inf where the mask is 0 or above the causal diagonal.
KILN_C kiln_value(int64_t j) {
  precise KILN_C v = kiln_x(j);  // scaled, then biased, each rounded (no fma: as CUDA and the reference)
#if KILN_ROWS_OP <= 1
  v = v * kiln_scale;
#if KILN_BIAS == 1
  v = v + kiln_param0(j);
#elif KILN_BIAS == 2
  if (kiln_param0(j) == KILN_C(0)) v = kiln_rows_ninf();
#endif
#if KILN_CAUSAL
  if (j > kiln_q) v = kiln_rows_ninf();
#endif
#endif
  return v;
}
// y * gamma[j] + beta[j], as far as the kernel has them.
KILN_C kiln_affine(int64_t j, KILN_C y) {
#if KILN_PARAMS > 0 && KILN_ROWS_OP >= 3
  y *= kiln_param0(j);
#endif
#if KILN_PARAMS > 1 && KILN_ROWS_OP >= 3
  y += kiln_param1(j);
#endif
  return y;
}

// Online softmax statistics (templates/cuda/rows.cuh, rows_online_*): (m, s) is the running
// maximum and the sum of exp(v - m); -inf adds nothing, NaN wins, a +inf maximum makes s NaN.
void kiln_online_add(inout KILN_C m, inout KILN_C s, KILN_C v, KILN_C inf) {
  if (kiln_isnan(m) || v == -inf) return;
  if (kiln_isnan(v)) {
    m = v;
    s = v;
  } else if (v > m) {
    s = s * kiln_rows_exp(m - v) + KILN_C(1);
    m = v;
  } else {
    s += kiln_rows_exp(v - m);
  }
}
// The row's (m, s) from its invocations' states (templates/cuda/rows.cuh, rows_group_online):
// M = max m, then the sum of s * exp(m - M).
void kiln_rows_group_online(uint tid, inout KILN_C m, inout KILN_C s, KILN_C inf) {
  const KILN_C mg = kiln_rows_group(tid, m, true);
  s = kiln_rows_group(tid, m == -inf ? KILN_C(0) : s * kiln_rows_exp(m - mg), false);
  m = mg;
}

// The row's mean and q from its invocations' Welford states (count c, mean, q; rows_group_welford):
// the mean of the c * mean, then q + c (mean - M)^2 summed.
// A mean whose sum left the range is summed again from the terms divided by n first (CUDA's
// rows_group_welford; uniform: every invocation sees the same total).
void kiln_rows_group_welford(uint tid, KILN_C cn, KILN_C c, inout KILN_C mean, inout KILN_C q) {
  KILN_C mg = kiln_rows_div(kiln_rows_group(tid, c * mean, false), cn);
  if (kiln_isnan(mg) || kiln_isinf(mg)) mg = kiln_rows_group(tid, mean * kiln_rows_div(c, cn), false);
  q = kiln_rows_group(tid, q + c * (mean - mg) * (mean - mg), false);
  mean = mg;
}

// BODY for each element j (value v) of this thread's part of the row, in order: from the registers
// (cached) or from memory.
#define KILN_ROWS_CACHE 16
#define KILN_EACH(j, v, BODY)                                                   \
  if (cached) {                                                                 \
    [[unroll]] for (int i_ = 0; i_ < KILN_ROWS_CACHE; ++i_) {                   \
      const int64_t j = int64_t(tid) + int64_t(i_) * size;                      \
      if (j < n) {                                                              \
        const KILN_C v = cx[i_];                                                \
        BODY                                                                    \
      }                                                                         \
    }                                                                           \
  } else {                                                                      \
    for (int64_t j = int64_t(tid); j < n; j += size) {                          \
      const KILN_C v = kiln_value(j);                                           \
      BODY                                                                      \
    }                                                                           \
  }

void main() {
  KilnRowsParams P = pc.params;
  const int64_t n = P.n;
  // A subgroup per row for rows of up to subgroup size x KILN_ROWS_CACHE elements (no barriers; the
  // plan launches fewer workgroups), when the workgroup is whole subgroups; else a workgroup per row.
#if KILN_SUBGROUP
  kiln_by_subgroup = gl_NumSubgroups > 1u && gl_NumSubgroups * gl_SubgroupSize == gl_WorkGroupSize.x &&
                     n <= int64_t(gl_SubgroupSize) * int64_t(KILN_ROWS_CACHE);
#else
  kiln_by_subgroup = false;
#endif
  uint tid = gl_LocalInvocationID.x;
  int64_t size = int64_t(gl_WorkGroupSize.x), first = int64_t(gl_WorkGroupID.x), per = 1;
#if KILN_SUBGROUP
  if (kiln_by_subgroup) {
    tid = gl_SubgroupInvocationID;
    size = int64_t(gl_SubgroupSize);
    per = int64_t(gl_NumSubgroups);
    first = first * per + int64_t(gl_SubgroupID);
  }
#endif
#if KILN_C_F64
  const KILN_C eps = packDouble2x32(uvec2(P.value64_lo, P.value64_hi));
  const KILN_C inf = kiln_inf_f64();
#else
  const KILN_C eps = uintBitsToFloat(P.value32);
  const KILN_C inf = kiln_inf_f32();
#endif
  for (int64_t row = first; row < P.n_rows; row += int64_t(gl_NumWorkGroups.x) * per) {
    // The operands' element offsets of this row (row-major over the collapsed row dimensions).
    uint64_t off[5] = uint64_t[5](0ul, 0ul, 0ul, 0ul, 0ul);
    uint64_t rem = uint64_t(row);
    const int rank = int(P.rank);
    [[unroll]] for (int d = 5; d >= 0; --d) {
      if (d < rank) {
        const uint64_t s = uint64_t(P.shape[d]), q = rem / s, idx = rem - q * s;
        rem = q;
        [[unroll]] for (int k = 0; k < 5; ++k) off[k] += idx * uint64_t(P.strides[k * 6 + d]);
      }
    }
    const uint64_t es[5] = uint64_t[5](KILN_S0, KILN_S1, KILN_S2, KILN_S3, KILN_SOUT);
    [[unroll]] for (int k = 0; k < 5; ++k) {
      const uint64_t addr = k == 4 ? P.out_ : (k < KILN_NUM_INPUTS ? P.in_[k] : 0ul);
      kiln_base[k] = addr + off[k] * es[k];
      kiln_step[k] = P.axis_stride[k];
    }
    kiln_h = P.h_ + off[4] * uint64_t(KILN_SX);
    kiln_scale = eps;
    kiln_q = P.causal_q == 0u ? 0l : row % int64_t(P.causal_q);
    // A row of up to size * KILN_ROWS_CACHE elements is read once, into registers; a longer one
    // is read again by each pass. Both visit a thread's elements in the same order.
    const bool cached = n <= size * int64_t(KILN_ROWS_CACHE);
    KILN_C cx[KILN_ROWS_CACHE];
    if (cached) {
      [[unroll]] for (int i = 0; i < KILN_ROWS_CACHE; ++i) {
        const int64_t j = int64_t(tid) + int64_t(i) * size;
        cx[i] = j < n ? kiln_value(j) : KILN_C(0);
      }
    }
#if KILN_ROWS_OP <= 2
    // Registers: the maximum, then the sum of exp(x - max). Memory: both in one online read.
    KILN_C m = -inf, s = KILN_C(0);
    if (cached) {
      KILN_EACH(j, v, m = (kiln_isnan(m) || m > v) ? m : v;)
      m = kiln_rows_group(tid, m, true);
    } else {
      for (int64_t j = int64_t(tid); j < n; j += size) kiln_online_add(m, s, kiln_value(j), inf);
      kiln_rows_group_online(tid, m, s, inf);
    }
#if KILN_ROWS_OP == 2
    if (m == inf) {
      if (tid == 0u) kiln_put(0l, inf);
      continue;
    }
#endif
    const KILN_C me = m == -inf ? KILN_C(0) : m;
    if (cached) {
      KILN_EACH(j, v, s += kiln_rows_exp(v - me);)
      s = kiln_rows_group(tid, s, false);
    }
#if KILN_ROWS_OP == 2
    if (tid == 0u) kiln_put(0l, me + kiln_rows_log(s));
#elif KILN_ROWS_OP == 1
    const KILN_C ls = kiln_rows_log(s);
    KILN_EACH(j, v, kiln_put(j, s == KILN_C(0) && KILN_MASKED_NAN == 0 ? -inf : (v - me) - ls);)
#else
    KILN_EACH(j, v, kiln_put(j, s == KILN_C(0) && KILN_MASKED_NAN == 0 ? KILN_C(0) : kiln_rows_div(kiln_rows_exp(v - me), s));)
#endif
#else  // layer_norm, rms_norm
    const KILN_C cn = KILN_C(n);
    KILN_C mean = KILN_C(0), q = KILN_C(0);
#if KILN_ROWS_OP == 3
    if (!cached) {  // over memory: mean and deviations in one read (Welford)
      KILN_C c = KILN_C(0);
      for (int64_t j = int64_t(tid); j < n; j += size) {
        const KILN_C v = kiln_value(j), d = v - mean;
        c += KILN_C(1);
        if (kiln_isinf(d) && !kiln_isinf(v) && !kiln_isinf(mean)) {  // v - mean left the range (rows.cuh)
          precise KILN_C h = v * KILN_C(0.5) - mean * KILN_C(0.5);  // not refactored into (v - mean) * 0.5
          mean += kiln_rows_div(h, c) * KILN_C(2);
          q = inf;
        } else {
          mean += kiln_rows_div(d, c);
          q += d * (v - mean);
        }
      }
      kiln_rows_group_welford(tid, cn, c, mean, q);
    } else {
      KILN_EACH(j, v, mean += v;)
      mean = kiln_rows_div(kiln_rows_group(tid, mean, false), cn);
      if (kiln_isnan(mean) || kiln_isinf(mean)) {  // the sum left the range
        mean = KILN_C(0);
        KILN_EACH(j, v, mean += kiln_rows_div(v, cn);)
        mean = kiln_rows_group(tid, mean, false);
      }
      KILN_EACH(j, v, q += (v - mean) * (v - mean);)
      q = kiln_rows_group(tid, q, false);
    }
#else
    KILN_EACH(j, v, q += v * v;)
    q = kiln_rows_group(tid, q, false);
#endif
    const KILN_C r = kiln_rows_rsqrt(kiln_rows_div(q, cn) + eps);
    const KILN_C shrink = r == KILN_C(0) ? KILN_C(0.5) : KILN_C(1);  // the squares left the range (rows.cuh)
    KILN_EACH(j, v, precise KILN_C d = v * shrink - mean * shrink; kiln_put(j, kiln_affine(j, d * r)); kiln_put_h(j, v);)
#endif
  }
}
