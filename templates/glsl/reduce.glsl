// Reduction kernels: out[o] = kiln_finish(combine over r of kiln_prologue(r, in0[o, r], ...), n_red).
// Vulkan compute, GLSL 4.50 + buffer device addresses; inlined after glsl/ops.glsl and the
// emitter's definitions (codegen/families/reduce.cpp):
//   KILN_REDUCE_ROWS / _COLS / _FINAL     which entry point
//   KILN_ACC_SIZE                         bytes of one accumulator in scratch memory
//   KILN_NUM_INPUTS, KILN_CHUNK           inputs (0..4); elements combined in order per chunk
//   KILN_UNROLL, KILN_FINAL_BLOCK         cols: loads issued before their combines; final's block mode
//   KILN_VEC, KILN_GROUP                  rows: elements per run, runs per group (the order)
//   KILN_T<k>, KILN_S<k>, KILN_LOAD<k>(v) storage type, size and storage -> compute of input k
//   KILN_TOUT, KILN_SOUT, KILN_STORE(c)   the output's storage type, size, compute -> storage
//   KILN_ACC                              the accumulator type (a compute type or KilnAcc)
//   kiln_identity(), kiln_combine(a, b), kiln_finish(acc, n), KILN_PROLOGUE(r, a0, a1, a2, a3)
// ABI: the device address of a KilnReduceParams block (576 bytes, codegen/abi.hpp) as the push
// constant. Every entry point combines in a fixed order (deterministic; no atomics). Work items
// are (segment s, output o) pairs, w = s * n_out + o (the outputs when n_split == 1):
//   rows:  one workgroup per work item; thread t combines runs of KILN_VEC consecutive elements,
//          t, t + size, ... in groups of KILN_GROUP (pairwise trees), then the tail (kiln_run_rows),
//          then the workgroup combines its threads' values in a tree in shared memory.
//   cols:  one thread per work item, combining the segment's elements in order (chunked); or
//          KILN_VEC neighbouring work items per thread, each the same way, where they are
//          contiguous and aligned (kiln_cols_grouped).
//   final: one thread per output, combining its n_split segment accumulators in order; from
//          KILN_FINAL_BLOCK segments on a workgroup per output (segments strided over threads, then
//          the tree).
// A work item writes the finished output when n_split == 1, else its accumulator to scratch.
// This path uses shared memory only (no subgroup operations), so it runs the same on every
// device. Block size: specialization constant 0 (default 256, a power of two).
layout(local_size_x_id = 0) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KilnReduceParams {
  uint64_t out_;
  uint64_t in_[4];
  int64_t n_out;
  int64_t n_red;
  int64_t out_rank;
  int64_t red_rank;
  int64_t out_shape[6];
  int64_t red_shape[6];
  int64_t out_strides[24];  // [input][dim], in elements
  int64_t red_strides[24];
  uint64_t scratch;
  int64_t n_split;
  int64_t seg;
};
layout(buffer_reference, std430, buffer_reference_align = KILN_ACC_SIZE) buffer KilnAccRef { KILN_ACC v; };
layout(push_constant, std430) uniform KilnReducePush { KilnReduceParams params; } pc;

uint64_t kiln_in[4];
uint64_t kiln_red_shape[6];
uint64_t kiln_red_st[24];
int kiln_red_rank;

// Adds the element offsets of output o (over the kept dimensions) to |off|.
void kiln_out_offsets(KilnReduceParams P, int64_t o, inout uint64_t off[4]) {
  uint64_t rem = uint64_t(o);
  const int rank = int(P.out_rank);
  [[unroll]] for (int d = 5; d >= 0; --d) {
    if (d < rank) {
      uint64_t idx = rem;  // dimension 0: rem < its extent, no division
      if (d > 0) {
        const uint64_t s = uint64_t(P.out_shape[d]);
        const uint64_t q = rem / s;
        idx = rem - q * s;
        rem = q;
      }
      [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k) off[k] += idx * uint64_t(P.out_strides[k * 6 + d]);
    }
  }
}

// The element offsets of reduced element j of every input, from the output's |base|.
void kiln_offsets(int64_t j, uint64_t base[4], out uint64_t off[4]) {
  off = base;
  if (kiln_red_rank == 1) {
    [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k) off[k] += uint64_t(j) * kiln_red_st[k * 6];
  } else {
    uint64_t rem = uint64_t(j);
    [[unroll]] for (int d = 5; d >= 0; --d) {
      if (d < kiln_red_rank) {
        uint64_t idx = rem;
        if (d > 0) {
          const uint64_t q = rem / kiln_red_shape[d];
          idx = rem - q * kiln_red_shape[d];
          rem = q;
        }
        [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k) off[k] += idx * kiln_red_st[k * 6 + d];
      }
    }
  }
}

KILN_ACC kiln_element(int64_t j, uint64_t base[4]) {
  uint64_t off[4];
  kiln_offsets(j, base, off);
  return KILN_PROLOGUE(j, KILN_LOAD0(KilnIn0Ref(kiln_in[0] + off[0] * KILN_S0).v),
                       KILN_LOAD1(KilnIn1Ref(kiln_in[1] + off[1] * KILN_S1).v),
                       KILN_LOAD2(KilnIn2Ref(kiln_in[2] + off[2] * KILN_S2).v),
                       KILN_LOAD3(KilnIn3Ref(kiln_in[3] + off[3] * KILN_S3).v));
}

// Combines elements first, first + step, ... < end in order, in chunks of KILN_CHUNK, KILN_UNROLL
// loads in flight. (lavapipe ends any loop nest after 65535 iterations: the plan keeps every
// thread's elements well below.)
KILN_ACC kiln_run(int64_t first, int64_t step, int64_t end, uint64_t base[4]) {
  KILN_ACC total = kiln_identity();
  const int64_t m = end > first ? (end - first + step - 1) / step : 0l;  // this thread's elements
  for (int64_t c0 = 0l; c0 < m; c0 += int64_t(KILN_CHUNK)) {
    KILN_ACC part = kiln_identity();
    const int count = int(min(m - c0, int64_t(KILN_CHUNK)));
    int c = 0;
    for (; c + KILN_UNROLL <= count; c += KILN_UNROLL) {  // every load of a group before its combines
      KILN_ACC v[KILN_UNROLL];
      [[unroll]] for (int u = 0; u < KILN_UNROLL; ++u) v[u] = kiln_element(first + (c0 + int64_t(c + u)) * step, base);
      [[unroll]] for (int u = 0; u < KILN_UNROLL; ++u) part = kiln_combine(part, v[u]);
    }
    for (; c < count; ++c) part = kiln_combine(part, kiln_element(first + (c0 + int64_t(c)) * step, base));
    total = kiln_combine(total, part);
  }
  return total;
}

#if !defined(KILN_REDUCE_FINAL)
// A run of KILN_VEC elements of input k as one aligned block (KILN_RUN_ALIGN<k> = KILN_VEC *
// KILN_S<k> bytes): the driver may load it in one vector load.
#if KILN_NUM_INPUTS > 0
layout(buffer_reference, std430, buffer_reference_align = KILN_RUN_ALIGN0) readonly buffer KilnIn0Run { KILN_T0 v[KILN_VEC]; };
#endif
#if KILN_NUM_INPUTS > 1
layout(buffer_reference, std430, buffer_reference_align = KILN_RUN_ALIGN1) readonly buffer KilnIn1Run { KILN_T1 v[KILN_VEC]; };
#endif
#if KILN_NUM_INPUTS > 2
layout(buffer_reference, std430, buffer_reference_align = KILN_RUN_ALIGN2) readonly buffer KilnIn2Run { KILN_T2 v[KILN_VEC]; };
#endif
#if KILN_NUM_INPUTS > 3
layout(buffer_reference, std430, buffer_reference_align = KILN_RUN_ALIGN3) readonly buffer KilnIn3Run { KILN_T3 v[KILN_VEC]; };
#endif

#endif

#if defined(KILN_REDUCE_ROWS)
// True when every input is contiguous along the (collapsed) reduced elements and the runs of the
// segment from |first| are aligned to their size.
bool kiln_runs_aligned(int64_t first, uint64_t base[4]) {
  bool ok = kiln_red_rank == 1;
#if KILN_NUM_INPUTS > 0
  ok = ok && kiln_red_st[0] == 1ul && (kiln_in[0] + (base[0] + uint64_t(first)) * KILN_S0) % uint64_t(KILN_RUN_ALIGN0) == 0ul;
#endif
#if KILN_NUM_INPUTS > 1
  ok = ok && kiln_red_st[6] == 1ul && (kiln_in[1] + (base[1] + uint64_t(first)) * KILN_S1) % uint64_t(KILN_RUN_ALIGN1) == 0ul;
#endif
#if KILN_NUM_INPUTS > 2
  ok = ok && kiln_red_st[12] == 1ul && (kiln_in[2] + (base[2] + uint64_t(first)) * KILN_S2) % uint64_t(KILN_RUN_ALIGN2) == 0ul;
#endif
#if KILN_NUM_INPUTS > 3
  ok = ok && kiln_red_st[18] == 1ul && (kiln_in[3] + (base[3] + uint64_t(first)) * KILN_S3) % uint64_t(KILN_RUN_ALIGN3) == 0ul;
#endif
  return ok;
}

// The run of KILN_VEC elements from |j| combined in a pairwise tree ((v0 v1) (v2 v3) ..., then
// pairs of pairs); |aligned|: through the KilnIn<k>Run blocks (the same elements, the same order).
KILN_ACC kiln_run_tree(int64_t j, uint64_t base[4], bool aligned) {
  KILN_ACC v[KILN_VEC];
  if (aligned) {
#if KILN_NUM_INPUTS > 0
    KilnIn0Run r0 = KilnIn0Run(kiln_in[0] + (base[0] + uint64_t(j)) * KILN_S0);
#endif
#if KILN_NUM_INPUTS > 1
    KilnIn1Run r1 = KilnIn1Run(kiln_in[1] + (base[1] + uint64_t(j)) * KILN_S1);
#endif
#if KILN_NUM_INPUTS > 2
    KilnIn2Run r2 = KilnIn2Run(kiln_in[2] + (base[2] + uint64_t(j)) * KILN_S2);
#endif
#if KILN_NUM_INPUTS > 3
    KilnIn3Run r3 = KilnIn3Run(kiln_in[3] + (base[3] + uint64_t(j)) * KILN_S3);
#endif
    [[unroll]] for (int i = 0; i < KILN_VEC; ++i)
      v[i] = KILN_PROLOGUE(j + int64_t(i), KILN_LOAD0(r0.v[i]), KILN_LOAD1(r1.v[i]), KILN_LOAD2(r2.v[i]),
                           KILN_LOAD3(r3.v[i]));
  } else {
    [[unroll]] for (int i = 0; i < KILN_VEC; ++i) v[i] = kiln_element(j + int64_t(i), base);
  }
  [[unroll]] for (int w = 1; w < KILN_VEC; w *= 2)
    [[unroll]] for (int i = 0; i + w < KILN_VEC; i += 2 * w) v[i] = kiln_combine(v[i], v[i + w]);
  return v[0];
}

// CUDA's rows order (cuda/reduce.cuh): the segment [first, end) in runs of KILN_VEC consecutive
// elements (the last n % KILN_VEC are the tail); thread t takes runs t, t + size, ...: KILN_GROUP
// runs at a time (a tree per run, then a pairwise tree of the runs), the groups in order, in
// chunks of KILN_CHUNK elements; its leftover runs one at a time; then tail element t.
KILN_ACC kiln_run_rows(int64_t first, int64_t end, uint64_t base[4], uint tid) {
  const int64_t size = int64_t(gl_WorkGroupSize.x), t = int64_t(tid);
  const int64_t nruns = (end - first) / int64_t(KILN_VEC);
  const int64_t runs = t < nruns ? (nruns - t + size - 1l) / size : 0l;  // this thread's
  const int64_t per_chunk = int64_t(KILN_CHUNK / KILN_VEC);
  const bool aligned = kiln_runs_aligned(first, base);
  KILN_ACC total = kiln_identity();
  for (int64_t m0 = 0l; m0 < runs; m0 += per_chunk) {
    const int64_t stop = min(m0 + per_chunk, runs);
    KILN_ACC part = kiln_identity();
    int64_t m = m0;
    for (; m + int64_t(KILN_GROUP) <= stop; m += int64_t(KILN_GROUP)) {
      KILN_ACC g[KILN_GROUP];
      [[unroll]] for (int u = 0; u < KILN_GROUP; ++u)
        g[u] = kiln_run_tree(first + (t + (m + int64_t(u)) * size) * int64_t(KILN_VEC), base, aligned);
      [[unroll]] for (int w = 1; w < KILN_GROUP; w *= 2)
        [[unroll]] for (int i = 0; i + w < KILN_GROUP; i += 2 * w) g[i] = kiln_combine(g[i], g[i + w]);
      part = kiln_combine(part, g[0]);
    }
    for (; m < stop; ++m)
      part = kiln_combine(part, kiln_run_tree(first + (t + m * size) * int64_t(KILN_VEC), base, aligned));
    total = kiln_combine(total, part);
  }
  const int64_t tail = first + nruns * int64_t(KILN_VEC) + t;
  if (tail < end) total = kiln_combine(total, kiln_element(tail, base));
  return total;
}
#endif

#if !defined(KILN_REDUCE_COLS)
shared KILN_ACC kiln_smem[gl_WorkGroupSize.x];

// The workgroup's values v (one per thread) combined in a fixed tree: thread t with t + s for
// s = size/2 ... 1 (CUDA's order). Every thread gets the result.
KILN_ACC kiln_block_combine(uint tid, KILN_ACC v) {
  kiln_smem[tid] = v;
  barrier();
  for (uint s = gl_WorkGroupSize.x / 2u; s > 0u; s >>= 1) {
    if (tid < s) kiln_smem[tid] = kiln_combine(kiln_smem[tid], kiln_smem[tid + s]);
    barrier();
  }
  v = kiln_smem[0];
  barrier();  // kiln_smem is reused by the next work item
  return v;
}
#endif

// Work item w: its output, and the first element and end of its segment.
void kiln_work_item(KilnReduceParams P, int64_t w, out int64_t o, out int64_t first, out int64_t end) {
  const int64_t s = P.n_split == 1l ? 0l : w / P.n_out;  // no 64-bit division when unsplit
  o = w - s * P.n_out;
  first = s * P.seg;
  end = min(first + P.seg, P.n_red);
}

void kiln_put(KilnReduceParams P, int64_t w, int64_t o, KILN_ACC v) {
  if (P.n_split == 1l) KilnOutRef(P.out_ + uint64_t(o) * KILN_SOUT).v = KILN_STORE(kiln_finish(v, P.n_red));
  else KilnAccRef(P.scratch + uint64_t(w) * KILN_ACC_SIZE).v = v;
}

#if defined(KILN_REDUCE_COLS)
// KILN_VEC neighbouring outputs per thread when they are KILN_VEC contiguous elements of every
// input, aligned (cuda/reduce.cuh's cols_grouped; the plan sizes the grid with the same test).
bool kiln_cols_grouped(KilnReduceParams P) {
  if (KILN_VEC == 1 || P.out_rank < 1l || kiln_red_rank > 1 || KILN_NUM_INPUTS == 0) return false;
  const int last = int(P.out_rank) - 1;
  if (P.out_shape[last] % int64_t(KILN_VEC) != 0l) return false;
  const uint64_t align[4] = uint64_t[4](
#if KILN_NUM_INPUTS > 0
      uint64_t(KILN_RUN_ALIGN0),
#else
      1ul,
#endif
#if KILN_NUM_INPUTS > 1
      uint64_t(KILN_RUN_ALIGN1),
#else
      1ul,
#endif
#if KILN_NUM_INPUTS > 2
      uint64_t(KILN_RUN_ALIGN2),
#else
      1ul,
#endif
#if KILN_NUM_INPUTS > 3
      uint64_t(KILN_RUN_ALIGN3));
#else
      1ul);
#endif
  bool ok = true;
  [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k) {
    ok = ok && kiln_in[k] % align[k] == 0ul && P.out_strides[k * 6 + last] == 1l;
    for (int d = 0; d < last; ++d) ok = ok && P.out_strides[k * 6 + d] % int64_t(KILN_VEC) == 0l;
    ok = ok && (kiln_red_rank == 0 || P.red_strides[k * 6] % int64_t(KILN_VEC) == 0l);
  }
  return ok;
}

// Outputs o .. o + KILN_VEC - 1 of one thread, each combining its elements in order (chunked) as
// the one-output path does: the same order, the same results.
void kiln_cols_grouped_run(KilnReduceParams P, int64_t me, int64_t step) {
  const int64_t groups = P.n_out * P.n_split / int64_t(KILN_VEC);
  for (int64_t q = me; q < groups; q += step) {
    int64_t o, first, end;
    kiln_work_item(P, q * int64_t(KILN_VEC), o, first, end);
    uint64_t base[4] = uint64_t[4](0ul, 0ul, 0ul, 0ul);
    kiln_out_offsets(P, o, base);
    KILN_ACC total[KILN_VEC];
    [[unroll]] for (int i = 0; i < KILN_VEC; ++i) total[i] = kiln_identity();
    for (int64_t j0 = first; j0 < end; j0 += int64_t(KILN_CHUNK)) {
      const int64_t stop = min(j0 + int64_t(KILN_CHUNK), end);
      KILN_ACC part[KILN_VEC];
      [[unroll]] for (int i = 0; i < KILN_VEC; ++i) part[i] = kiln_identity();
      for (int64_t j = j0; j < stop; ++j) {
        uint64_t off[4];
        kiln_offsets(j, base, off);
#if KILN_NUM_INPUTS > 0
        KilnIn0Run r0 = KilnIn0Run(kiln_in[0] + off[0] * KILN_S0);
#endif
#if KILN_NUM_INPUTS > 1
        KilnIn1Run r1 = KilnIn1Run(kiln_in[1] + off[1] * KILN_S1);
#endif
#if KILN_NUM_INPUTS > 2
        KilnIn2Run r2 = KilnIn2Run(kiln_in[2] + off[2] * KILN_S2);
#endif
#if KILN_NUM_INPUTS > 3
        KilnIn3Run r3 = KilnIn3Run(kiln_in[3] + off[3] * KILN_S3);
#endif
        [[unroll]] for (int i = 0; i < KILN_VEC; ++i)
          part[i] = kiln_combine(part[i], KILN_PROLOGUE(j, KILN_LOAD0(r0.v[i]), KILN_LOAD1(r1.v[i]),
                                                        KILN_LOAD2(r2.v[i]), KILN_LOAD3(r3.v[i])));
      }
      [[unroll]] for (int i = 0; i < KILN_VEC; ++i) total[i] = kiln_combine(total[i], part[i]);
    }
    [[unroll]] for (int i = 0; i < KILN_VEC; ++i) kiln_put(P, q * int64_t(KILN_VEC) + int64_t(i), o + int64_t(i), total[i]);
  }
}
#endif

void main() {
  KilnReduceParams P = pc.params;
  [[unroll]] for (int k = 0; k < 4; ++k) kiln_in[k] = k < KILN_NUM_INPUTS ? P.in_[k] : 0ul;
  kiln_red_rank = int(P.red_rank);
  [[unroll]] for (int d = 0; d < 6; ++d) {
    kiln_red_shape[d] = d < kiln_red_rank ? uint64_t(P.red_shape[d]) : 1ul;
    [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k)
      kiln_red_st[k * 6 + d] = d < kiln_red_rank ? uint64_t(P.red_strides[k * 6 + d]) : 0ul;
  }
  const int64_t work = P.n_out * P.n_split;
#if defined(KILN_REDUCE_ROWS)
  const uint tid = gl_LocalInvocationID.x;
  for (int64_t w = int64_t(gl_WorkGroupID.x); w < work; w += int64_t(gl_NumWorkGroups.x)) {
    int64_t o, first, end;
    kiln_work_item(P, w, o, first, end);
    uint64_t base[4] = uint64_t[4](0ul, 0ul, 0ul, 0ul);
    kiln_out_offsets(P, o, base);
    const KILN_ACC v = kiln_block_combine(tid, kiln_run_rows(first, end, base, tid));
    if (tid == 0u) kiln_put(P, w, o, v);
  }
#else
  const int64_t step = int64_t(gl_NumWorkGroups.x) * int64_t(gl_WorkGroupSize.x);
  const int64_t me = int64_t(gl_WorkGroupID.x) * int64_t(gl_WorkGroupSize.x) + int64_t(gl_LocalInvocationID.x);
#if defined(KILN_REDUCE_COLS)
  if (kiln_cols_grouped(P)) {
    kiln_cols_grouped_run(P, me, step);
    return;
  }
  for (int64_t w = me; w < work; w += step) {
    int64_t o, first, end;
    kiln_work_item(P, w, o, first, end);
    uint64_t base[4] = uint64_t[4](0ul, 0ul, 0ul, 0ul);
    kiln_out_offsets(P, o, base);
    kiln_put(P, w, o, kiln_run(first, 1l, end, base));
  }
#else  // final: a workgroup per output from KILN_FINAL_BLOCK segments on, else a thread per output
  if (P.n_split >= int64_t(KILN_FINAL_BLOCK)) {
    const uint tid = gl_LocalInvocationID.x;
    for (int64_t o = int64_t(gl_WorkGroupID.x); o < P.n_out; o += int64_t(gl_NumWorkGroups.x)) {
      KILN_ACC v = kiln_identity();
      for (int64_t s = int64_t(tid); s < P.n_split; s += int64_t(gl_WorkGroupSize.x))
        v = kiln_combine(v, KilnAccRef(P.scratch + uint64_t(s * P.n_out + o) * KILN_ACC_SIZE).v);
      v = kiln_block_combine(tid, v);
      if (tid == 0u) KilnOutRef(P.out_ + uint64_t(o) * KILN_SOUT).v = KILN_STORE(kiln_finish(v, P.n_red));
    }
    return;
  }
  for (int64_t o = me; o < P.n_out; o += step) {
    KILN_ACC v = kiln_identity();
    for (int64_t s = 0l; s < P.n_split; ++s) v = kiln_combine(v, KilnAccRef(P.scratch + uint64_t(s * P.n_out + o) * KILN_ACC_SIZE).v);
    KilnOutRef(P.out_ + uint64_t(o) * KILN_SOUT).v = KILN_STORE(kiln_finish(v, P.n_red));
  }
#endif
#endif
}
