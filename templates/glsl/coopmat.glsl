// The cooperative-matrix tile product (Vulkan, VK_NV_cooperative_matrix) shared by the contraction
// and conv kernels: out[m, n] = sum_k a[m, k] * b[k, n] for f16 operands summed in f32 by the
// device's matrix units. Inlined after glsl/ops.glsl, glsl/operands.glsl, the emitter's definitions
// (the hooks of glsl/contract.glsl: kiln_load_a/b, kiln_put, KILN_S*) and the family's params block
// (glsl/contract_params.glsl, glsl/conv_params.glsl), and before the family's hooks below
// (glsl/contract_coopmat.glsl, glsl/conv_coopmat.glsl: where a and b are read and the output
// written), with
//   KILN_CM_M, KILN_CM_N, KILN_CM_K   the device's fragment shape (A: M x K, B: K x N, C: M x N),
//                                    chosen at device creation from the shapes it reports
//   KILN_CM_EMULATED                 1: the matrix operations are loops in plain GLSL (any Vulkan
//                                    device, lavapipe included: the check of this kernel's
//                                    staging, tiling and epilogue where no device has the extension)
//
// A workgroup of 256 invocations (8 subgroups of 32) per 128 x 128 output tile, grid-stride over
// the family's tiles. Per K step of 32 the a tile (128 x 32) and the b tile (32 x 128) are staged in
// shared memory as f16 (zero outside the operands; rows padded by 8 halves), the next step's
// elements already loaded into registers (kiln_cm_fetch) while the matrix units work on this one.
// Subgroup s computes the 64 x 32 block (64 (s / 4), 32 (s % 4)) of the tile as (64 / M) x (32 / N)
// accumulator fragments. The epilogue: each fragment is stored to the subgroup's own M x N f32
// scratch, then the subgroup's invocations pass its elements to kiln_cm_put (bounds checked).
// Workgroup size: specialization constant 0, which must be 256; the pipeline is created with the
// subgroup size pinned at 32 in whole subgroups (runtime/vulkan/vk_kernel.cpp).
layout(local_size_x_id = 0) in;

#define KILN_BM 128
#define KILN_BN 128
#define KILN_BK 32
#define KILN_SA_STRIDE (KILN_BK + 8)  // halves per staged row of a: 80 bytes, a multiple of 16
#define KILN_SB_STRIDE (KILN_BN + 8)  // 272 bytes
#define KILN_FM (64 / KILN_CM_M)          // fragments per subgroup along m
#define KILN_FN (32 / KILN_CM_N)          // along n
#define KILN_CM_MN (KILN_CM_M * KILN_CM_N)

shared float16_t kiln_sa[KILN_BM * KILN_SA_STRIDE];  // a: [m][k]
shared float16_t kiln_sb[KILN_BK * KILN_SB_STRIDE];  // b: [k][n]
shared float kiln_sc[8 * KILN_CM_MN];                    // each subgroup's accumulator scratch

#if KILN_CM_EMULATED
// Subgroups of 32 consecutive invocations. A or B "fragment" is its offset in the staged tile (the
// tiles do not change until the next barrier); an accumulator is distributed over the subgroup as
// on a device, lane l holding elements l + 32 i, each summed in k order with fused multiply-adds.
#define KILN_SG_ID (gl_LocalInvocationIndex / 32u)
#define KILN_SG_LANE (gl_LocalInvocationIndex % 32u)
#define KILN_SG_SIZE 32u
#define KILN_SG_SYNC() \
  memoryBarrierShared(); \
  barrier()
// The loops over fragments and tile elements stay loops (unrolled, llvmpipe takes many seconds to
// compile the kernel); a fragment product is unrolled: llvmpipe ends a shader invocation's loops
// after 65535 iterations in all (its loop limiter), so each loop iteration here costs K range.
#define KILN_CM_UNROLL [[dont_unroll]]
struct KilnCmA { uint offset; };
struct KilnCmB { uint offset; };
struct KilnCmC { float v[KILN_CM_MN / 32]; };
KilnCmC kiln_cm_zero() {
  KilnCmC c;
  [[unroll]] for (int i = 0; i < KILN_CM_MN / 32; ++i) c.v[i] = 0.0;
  return c;
}
KilnCmA kiln_cm_load_a(uint offset) { return KilnCmA(offset); }
KilnCmB kiln_cm_load_b(uint offset) { return KilnCmB(offset); }
KilnCmC kiln_cm_mul_add(KilnCmA a, KilnCmB b, KilnCmC acc) {
  [[unroll]] for (uint i = 0u; i < uint(KILN_CM_MN / 32); ++i) {
    const uint e = KILN_SG_LANE + 32u * i, r = e / uint(KILN_CM_N), c = e % uint(KILN_CM_N);
    precise float s = acc.v[i];
    [[unroll]] for (uint k = 0u; k < uint(KILN_CM_K); ++k)
      s = fma(float(kiln_sa[a.offset + r * uint(KILN_SA_STRIDE) + k]), float(kiln_sb[b.offset + k * uint(KILN_SB_STRIDE) + c]), s);
    acc.v[i] = s;
  }
  return acc;
}
void kiln_cm_store(KilnCmC acc, uint offset) {
  [[unroll]] for (uint i = 0u; i < uint(KILN_CM_MN / 32); ++i) kiln_sc[offset + KILN_SG_LANE + 32u * i] = acc.v[i];
}
#else
#define KILN_SG_ID gl_SubgroupID
#define KILN_SG_LANE gl_SubgroupInvocationID
#define KILN_SG_SIZE gl_SubgroupSize
#define KILN_CM_UNROLL [[unroll]]
#define KILN_SG_SYNC() \
  subgroupMemoryBarrierShared(); \
  subgroupBarrier()
#define KilnCmA fcoopmatNV<16, gl_ScopeSubgroup, KILN_CM_M, KILN_CM_K>
#define KilnCmB fcoopmatNV<16, gl_ScopeSubgroup, KILN_CM_K, KILN_CM_N>
#define KilnCmC fcoopmatNV<32, gl_ScopeSubgroup, KILN_CM_M, KILN_CM_N>
KilnCmC kiln_cm_zero() { return KilnCmC(0.0); }
KilnCmA kiln_cm_load_a(uint offset) {
  KilnCmA a;
  coopMatLoadNV(a, kiln_sa, offset, uint(KILN_SA_STRIDE), false);
  return a;
}
KilnCmB kiln_cm_load_b(uint offset) {
  KilnCmB b;
  coopMatLoadNV(b, kiln_sb, offset, uint(KILN_SB_STRIDE), false);
  return b;
}
KilnCmC kiln_cm_mul_add(KilnCmA a, KilnCmB b, KilnCmC acc) { return coopMatMulAddNV(a, b, acc); }
void kiln_cm_store(KilnCmC acc, uint offset) { coopMatStoreNV(acc, kiln_sc, offset, uint(KILN_CM_N), false); }
#endif

// The family's problem (kiln_cm_setup) and tile (kiln_cm_tile): M x N outputs summed over K, this
// tile's first row and column, and which axis of each operand the staging walks fastest (the one
// contiguous in memory, so that neighbouring invocations read neighbouring elements).
int64_t kiln_cm_m, kiln_cm_n, kiln_cm_k, kiln_m0, kiln_n0;
bool kiln_a_m_inner, kiln_b_k_inner;

// The 16 elements of a and of b this invocation stages per K step (e = tid + 256 i), loaded into
// registers by the family's kiln_cm_fetch: zero outside the operands.
float16_t kiln_ra[16], kiln_rb[16];

// The family's hooks (defined after this file).
int64_t kiln_cm_setup();            // reads the params; sets kiln_cm_m/n/k and the staging order;
                                    // returns the number of output tiles
void kiln_cm_tile(int64_t w);       // tile w: sets kiln_m0, kiln_n0 (and the family's tile state;
                                    // a barrier follows)
void kiln_cm_fetch(int64_t k0);     // kiln_ra/rb for the step at k0 (kiln_tile_element's order)
void kiln_cm_put(uint r, int64_t n, float v);  // output (kiln_m0 + r, n), inside M x N

// Element i (0 .. 15) of invocation tid's share of the a and b tiles: (am, ak) and (bk, bn).
// KILN_CM_CHUNKS 0: e = tid + 256 i; along m (a) or n (b) fastest, an invocation keeps one row
// (am = tid % 128) or column (bn = tid % 128) for all 16 of its elements; along k fastest, one k
// (tid % 32) for all of them. KILN_CM_CHUNKS 1: two chunks of 8 consecutive elements along the
// walked axis, chunk c = tid + 256 (i / 8), element i % 8 of it (so that a chunk of a dense,
// 16-byte aligned operand is one 16-byte load: the family's kiln_cm_fetch).
#ifndef KILN_CM_CHUNKS
#define KILN_CM_CHUNKS 0
#endif
void kiln_tile_element(uint tid, uint i, out uint am, out uint ak, out uint bk, out uint bn) {
#if KILN_CM_CHUNKS
  const uint c = tid + 256u * (i / 8u), q = i % 8u;
  am = kiln_a_m_inner ? (c % 16u) * 8u + q : c / 4u;
  ak = kiln_a_m_inner ? c / 16u : (c % 4u) * 8u + q;
  bk = kiln_b_k_inner ? (c % 4u) * 8u + q : c / 16u;
  bn = kiln_b_k_inner ? c / 4u : (c % 16u) * 8u + q;
#else
  const uint e = tid + 256u * i;
  am = kiln_a_m_inner ? e % uint(KILN_BM) : e / uint(KILN_BK);
  ak = kiln_a_m_inner ? e / uint(KILN_BM) : e % uint(KILN_BK);
  bk = kiln_b_k_inner ? e % uint(KILN_BK) : e / uint(KILN_BN);
  bn = kiln_b_k_inner ? e / uint(KILN_BK) : e % uint(KILN_BN);
#endif
}

void kiln_stage() {
  KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
    uint am, ak, bk, bn;
    kiln_tile_element(gl_LocalInvocationIndex, i, am, ak, bk, bn);
    kiln_sa[am * uint(KILN_SA_STRIDE) + ak] = kiln_ra[i];
    kiln_sb[bk * uint(KILN_SB_STRIDE) + bn] = kiln_rb[i];
  }
}

void main() {
  const int64_t work = kiln_cm_setup();
  const uint sg = KILN_SG_ID, lane = KILN_SG_LANE, wm = sg / 4u, wn = sg % 4u;
  for (int64_t w = int64_t(gl_WorkGroupID.x); w < work; w += int64_t(gl_NumWorkGroups.x)) {
    barrier();  // the previous tile's epilogue is done with the family's tile state
    kiln_cm_tile(w);
    memoryBarrierShared();
    barrier();
    KilnCmC acc[KILN_FM * KILN_FN];
    KILN_CM_UNROLL for (int f = 0; f < KILN_FM * KILN_FN; ++f) acc[f] = kiln_cm_zero();
    if (kiln_cm_k > 0l) kiln_cm_fetch(0l);
    for (int64_t k0 = 0l; k0 < kiln_cm_k; k0 += int64_t(KILN_BK)) {
      barrier();  // the previous step's fragments are loaded
      kiln_stage();
      memoryBarrierShared();
      barrier();
      if (k0 + int64_t(KILN_BK) < kiln_cm_k) kiln_cm_fetch(k0 + int64_t(KILN_BK));
      KILN_CM_UNROLL for (uint kk = 0u; kk < uint(KILN_BK); kk += uint(KILN_CM_K)) {
        KilnCmA fa[KILN_FM];
        KilnCmB fb[KILN_FN];
        KILN_CM_UNROLL for (uint i = 0u; i < uint(KILN_FM); ++i)
          fa[i] = kiln_cm_load_a((wm * 64u + i * uint(KILN_CM_M)) * uint(KILN_SA_STRIDE) + kk);
        KILN_CM_UNROLL for (uint j = 0u; j < uint(KILN_FN); ++j)
          fb[j] = kiln_cm_load_b(kk * uint(KILN_SB_STRIDE) + wn * 32u + j * uint(KILN_CM_N));
        KILN_CM_UNROLL for (uint i = 0u; i < uint(KILN_FM); ++i)
          KILN_CM_UNROLL for (uint j = 0u; j < uint(KILN_FN); ++j)
            acc[i * uint(KILN_FN) + j] = kiln_cm_mul_add(fa[i], fb[j], acc[i * uint(KILN_FN) + j]);
      }
    }
    // The epilogue, one fragment at a time through the subgroup's scratch.
    const uint scratch = sg * uint(KILN_CM_MN);
    KILN_CM_UNROLL for (uint f = 0u; f < uint(KILN_FM * KILN_FN); ++f) {
      kiln_cm_store(acc[f], scratch);
      KILN_SG_SYNC();
      const uint r0 = wm * 64u + (f / uint(KILN_FN)) * uint(KILN_CM_M);
      const int64_t c0 = kiln_n0 + int64_t(wn * 32u + (f % uint(KILN_FN)) * uint(KILN_CM_N));
      for (uint e = lane; e < uint(KILN_CM_MN); e += KILN_SG_SIZE) {
        const uint r = r0 + e / uint(KILN_CM_N);
        const int64_t on = c0 + int64_t(e % uint(KILN_CM_N));
        if (kiln_m0 + int64_t(r) < kiln_cm_m && on < kiln_cm_n) kiln_cm_put(r, on, kiln_sc[scratch + e]);
      }
      KILN_SG_SYNC();
    }
  }
}
