// Scans: the inclusive running sum, product, max or min of each row (the elements along one axis).
// Vulkan compute, GLSL 4.50 + buffer device addresses; inlined after glsl/ops.glsl and the emitter's
// definitions (codegen/families/scan.cpp):
//   KILN_SCAN_FUNCTION                 0 scan, 1 reduce (segment totals), 2 spine (their prefixes)
//   KILN_C, KILN_C_SIZE                the accumulator's compute type and its size in scratch
//   kiln_identity(), kiln_combine(a, b)  the combiner (the op table's semantics: NaN wins in max/min,
//                                      integers wrap)
//   KILN_T0, KILN_S0, KILN_LOAD(v)     x's storage type and size, storage -> KILN_C
//   KILN_TOUT, KILN_SOUT, KILN_STORE(c) the output's storage type and size, KILN_C -> storage
//   KILN_SCAN_ITEMS                    elements a thread scans in registers per chunk
//   KILN_SCAN_COMBINER, KILN_C_FLOAT   0 sum, 1 product, 2 max, 3 min; whether KILN_C is a float
//   KILN_C_INT64                       KILN_C is a 64-bit integer (no subgroup arithmetic: it would
//                                      need the extended-types feature)
//   KILN_SUBGROUP                      1: subgroup arithmetic scans inside the workgroup; 0: shared memory
// ABI: the device address of a KilnScanParams block (232 bytes, codegen/families/scan.cpp) as the
// push constant. Reduce-then-scan (scan.cpp says why not a decoupled look-back): a workgroup per
// (row, segment), grid-stride. "scan" walks its segment in chunks of size * KILN_SCAN_ITEMS: each
// thread scans KILN_SCAN_ITEMS consecutive elements in registers, the workgroup scans the threads'
// totals, each element is written as carry + thread prefix + its own running value, and the
// chunk's total joins the carry. The threads' totals: with subgroup arithmetic, each subgroup's
// exclusive scan (subgroupExclusiveAdd/Mul/Max/Min; max and min of floats also scan "a NaN so far",
// since GLSL's max may drop a NaN), then the subgroups' totals from shared memory in order; without,
// Hillis-Steele in shared memory. Every combination order depends on the shape, the block size and
// the device only, so results are deterministic (run to run on a device; devices differ in rounding). Block size:
// specialization constant 0 (default 256, a power of two).
layout(local_size_x_id = 0) in;

layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KilnScanParams {
  uint64_t out_;
  uint64_t in_;
  uint64_t scratch;
  int64_t n_rows;
  int64_t n;
  int64_t rank;
  int64_t shape[6];
  int64_t strides[12];  // [in, out][dim], in elements
  int64_t axis_stride[2];
  int64_t n_split;
  int64_t seg;
  int64_t by_thread;  // 1: a thread per row (rows of at most KILN_SCAN_ITEMS elements, not split)
};
layout(buffer_reference, std430, buffer_reference_align = KILN_C_SIZE) buffer KilnAccRef { KILN_C v; };
layout(push_constant, std430) uniform KilnScanPush { KilnScanParams params; } pc;

shared KILN_C kiln_smem[gl_WorkGroupSize.x];

#if KILN_SUBGROUP && !KILN_C_INT64
#define KILN_SCAN_SUBGROUP 1
#if KILN_C_FLOAT && KILN_SCAN_COMBINER >= 2
// The zero that wins the combine when both signs meet: +0 for max, -0 for min (the op table's order).
bool kiln_scan_signed_zero(KILN_C v) {
#if KILN_SCAN_COMBINER == 2
  return v == KILN_C(0) && !kiln_signbit(v);
#else
  return v == KILN_C(0) && kiln_signbit(v);
#endif
}
// A zero result: the winning zero when one was combined (|seen|), else the other sign.
KILN_C kiln_scan_zero(bool seen) {
#if KILN_C_F64
  const KILN_C neg = packDouble2x32(uvec2(0u, 0x80000000u));
#else
  const KILN_C neg = uintBitsToFloat(0x80000000u);
#endif
#if KILN_SCAN_COMBINER == 2
  return seen ? KILN_C(0) : neg;
#else
  return seen ? neg : KILN_C(0);
#endif
}
#endif
// The subgroup's exclusive scan of |v| (|exclusive|: the identity in its first invocation), or its
// total. (|exclusive| is the same in every invocation: the subgroup operations stay uniform.)
KILN_C kiln_subgroup_scan(KILN_C v, bool exclusive) {
#if KILN_SCAN_COMBINER == 0
  return exclusive ? subgroupExclusiveAdd(v) : subgroupAdd(v);
#elif KILN_SCAN_COMBINER == 1
  return exclusive ? subgroupExclusiveMul(v) : subgroupMul(v);
#else
#if KILN_SCAN_COMBINER == 2
  KILN_C r = exclusive ? subgroupExclusiveMax(v) : subgroupMax(v);
#else
  KILN_C r = exclusive ? subgroupExclusiveMin(v) : subgroupMin(v);
#endif
#if KILN_C_FLOAT
  // GLSL's max/min may drop a NaN and leave the sign of a zero open; the op table propagates NaN
  // and orders -0 below +0: a zero result is +0 (max) / -0 (min) when such a zero was combined.
  const uint is_nan = kiln_isnan(v) ? 1u : 0u, is_zero = kiln_scan_signed_zero(v) ? 1u : 0u;
  const bool nan = (exclusive ? subgroupExclusiveMax(is_nan) : subgroupMax(is_nan)) != 0u;
  const bool zero = (exclusive ? subgroupExclusiveMax(is_zero) : subgroupMax(is_zero)) != 0u;
  if (nan) r = KILN_C(kiln_nan_f32());
  else if (r == KILN_C(0)) r = kiln_scan_zero(zero);
#endif
  return r;
#endif
}
#else
#define KILN_SCAN_SUBGROUP 0
#endif

uint64_t kiln_base_in, kiln_base_out;
int64_t kiln_step_in, kiln_step_out;

KILN_C kiln_x(int64_t j) { return KILN_LOAD(KilnIn0Ref(kiln_base_in + uint64_t(j * kiln_step_in) * KILN_S0).v); }
void kiln_put(int64_t j, KILN_C v) {
  KilnOutRef(kiln_base_out + uint64_t(j * kiln_step_out) * KILN_SOUT).v = KILN_STORE(v);
}

// The bases of row |row|: its offsets over the collapsed row dimensions.
void kiln_row_bases(KilnScanParams P, int64_t row) {
  uint64_t off_in = 0ul, off_out = 0ul, rem = uint64_t(row);
  const int rank = int(P.rank);
  [[unroll]] for (int d = 5; d >= 0; --d) {
    if (d < rank) {
      const uint64_t s = uint64_t(P.shape[d]), q = rem / s, idx = rem - q * s;
      rem = q;
      off_in += idx * uint64_t(P.strides[d]);
      off_out += idx * uint64_t(P.strides[6 + d]);
    }
  }
  kiln_base_in = P.in_ + off_in * uint64_t(KILN_S0);
  kiln_base_out = P.out_ + off_out * uint64_t(KILN_SOUT);
  kiln_step_in = P.axis_stride[0];
  kiln_step_out = P.axis_stride[1];
}

void main() {
  KilnScanParams P = pc.params;
  const uint tid = gl_LocalInvocationID.x;
  const int64_t size = int64_t(gl_WorkGroupSize.x);
  // A thread's place in a chunk: by subgroup when the workgroup is whole subgroups (subgroup scans
  // then follow the elements' order, whatever the device's mapping of invocations to subgroups).
#if KILN_SCAN_SUBGROUP
  const bool by_subgroup = gl_NumSubgroups * gl_SubgroupSize == gl_WorkGroupSize.x;
  const uint pos = by_subgroup ? gl_SubgroupID * gl_SubgroupSize + gl_SubgroupInvocationID : tid;
#else
  const uint pos = tid;
#endif
#if KILN_SCAN_FUNCTION == 2
  // spine: each row's segment totals become exclusive prefixes, in order (a thread per row).
  for (int64_t row = int64_t(gl_GlobalInvocationID.x); row < P.n_rows;
       row += int64_t(gl_NumWorkGroups.x) * size) {
    KILN_C acc = kiln_identity();
    for (int64_t s = 0l; s < P.n_split; ++s) {
      KilnAccRef a = KilnAccRef(P.scratch + uint64_t(row * P.n_split + s) * uint64_t(KILN_C_SIZE));
      const KILN_C t = a.v;
      a.v = acc;
      acc = kiln_combine(acc, t);
    }
  }
#else
#if KILN_SCAN_FUNCTION == 0
  if (P.by_thread != 0l) {
    // A thread per row: the combines a thread makes of its registers' elements in the chunked scan
    // below, whose prefix for the first thread is the identity — so the same bits.
    for (int64_t row = int64_t(gl_GlobalInvocationID.x); row < P.n_rows; row += int64_t(gl_NumWorkGroups.x) * size) {
      kiln_row_bases(P, row);
      KILN_C run = kiln_identity();
      for (int64_t j = 0l; j < P.n; ++j) {
        run = j == 0l ? kiln_x(j) : kiln_combine(run, kiln_x(j));
        kiln_put(j, kiln_combine(kiln_identity(), run));
      }
    }
    return;
  }
#endif
  const int64_t work = P.n_rows * P.n_split;
  for (int64_t w = int64_t(gl_WorkGroupID.x); w < work; w += int64_t(gl_NumWorkGroups.x)) {
    const int64_t row = w / P.n_split, s = w - row * P.n_split;
    kiln_row_bases(P, row);
    const int64_t lo = s * P.seg, hi = min(P.n, lo + P.seg);
    // scan (KILN_SCAN_FUNCTION 0): from the segment's prefix (the spine's), chunk by chunk. reduce
    // (1): the same walk without the stores, the segment's total into scratch — grouped exactly as
    // the scan groups it (a thread's consecutive elements, the threads in order, chunk after
    // chunk), so a total never pairs elements that are not neighbours (2^100 and 2^-100
    // alternating: every total stays finite, as every prefix does).
#if KILN_SCAN_FUNCTION == 0
    KILN_C carry = P.n_split > 1l ? KilnAccRef(P.scratch + uint64_t(w) * uint64_t(KILN_C_SIZE)).v : kiln_identity();
#else
    KILN_C carry = kiln_identity();
#endif
    for (int64_t c0 = lo; c0 < hi; c0 += size * int64_t(KILN_SCAN_ITEMS)) {
      const int64_t j0 = c0 + int64_t(pos) * int64_t(KILN_SCAN_ITEMS);
      KILN_C v[KILN_SCAN_ITEMS];
      KILN_C run = kiln_identity();
      [[unroll]] for (int i = 0; i < KILN_SCAN_ITEMS; ++i) {
        const int64_t j = j0 + int64_t(i);
        if (j < hi) run = i == 0 ? kiln_x(j) : kiln_combine(run, kiln_x(j));
        v[i] = run;
      }
#if KILN_SCAN_SUBGROUP
      if (by_subgroup) {
        // The threads' totals: exclusive within the subgroup, after the earlier subgroups' totals.
        const KILN_C within = kiln_subgroup_scan(run, true);
        if (gl_SubgroupInvocationID == gl_SubgroupSize - 1u) kiln_smem[gl_SubgroupID] = kiln_combine(within, run);
        barrier();
        KILN_C prefix = carry, total = carry;
        for (uint g = 0u; g < gl_NumSubgroups; ++g) {
          if (g == gl_SubgroupID) prefix = total;
          total = kiln_combine(total, kiln_smem[g]);
        }
        if (gl_SubgroupInvocationID > 0u) prefix = kiln_combine(prefix, within);  // (the identity would lose a -0)
        barrier();  // kiln_smem is reused by the next chunk
#if KILN_SCAN_FUNCTION == 0
        [[unroll]] for (int i = 0; i < KILN_SCAN_ITEMS; ++i) {
          const int64_t j = j0 + int64_t(i);
          if (j < hi) kiln_put(j, kiln_combine(prefix, v[i]));
        }
#endif
        carry = total;
        continue;
      }
#endif
      // Inclusive scan of the threads' totals (Hillis-Steele: read, barrier, write, barrier).
      kiln_smem[tid] = run;
      barrier();
      for (uint d = 1u; d < gl_WorkGroupSize.x; d <<= 1) {
        const KILN_C before = tid >= d ? kiln_smem[tid - d] : kiln_identity();
        barrier();
        if (tid >= d) kiln_smem[tid] = kiln_combine(before, kiln_smem[tid]);
        barrier();
      }
      const KILN_C prefix = tid > 0u ? kiln_combine(carry, kiln_smem[tid - 1u]) : carry;
      const KILN_C total = kiln_smem[gl_WorkGroupSize.x - 1u];
      barrier();  // kiln_smem is reused by the next chunk
#if KILN_SCAN_FUNCTION == 0
      [[unroll]] for (int i = 0; i < KILN_SCAN_ITEMS; ++i) {
        const int64_t j = j0 + int64_t(i);
        if (j < hi) kiln_put(j, kiln_combine(prefix, v[i]));
      }
#endif
      carry = kiln_combine(carry, total);
    }
#if KILN_SCAN_FUNCTION == 1
    if (tid == 0u) KilnAccRef(P.scratch + uint64_t(w) * uint64_t(KILN_C_SIZE)).v = carry;
#endif
  }
#endif
}
