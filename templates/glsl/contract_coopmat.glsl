// Contractions on cooperative matrices (Vulkan, VK_NV_cooperative_matrix): out[b, m, n] =
// sum_k a[b, m, k] * b[b, k, n] for f16 operands summed in f32 by the device's matrix units.
// Inlined after glsl/ops.glsl, glsl/operands.glsl, the emitter's definitions (the hooks of
// glsl/contract.glsl: kiln_load_a/b, kiln_put, KILN_S*) and glsl/contract_params.glsl, with
//   KILN_CM_M, KILN_CM_N, KILN_CM_K   the device's fragment shape (A: M x K, B: K x N, C: M x N),
//                                    chosen at device creation from the shapes it reports
//   KILN_CM_EMULATED                 1: the matrix operations are loops in plain GLSL (any Vulkan
//                                    device, lavapipe included: the check of this kernel's
//                                    staging, tiling and epilogue where no device has the extension)
//
// A workgroup of 256 invocations (8 subgroups of 32) per 128 x 128 output tile, grid-stride over
// batch x tiles. Per K step of 32 the a tile (128 x 32) and the b tile (32 x 128) are staged in
// shared memory as f16 (zero outside the operands; rows padded by 8 halves), the next step's
// elements already loaded into registers while the matrix units work on this one. Subgroup s
// computes the 64 x 32 block (64 (s / 4), 32 (s % 4)) of the tile as (64 / M) x (32 / N)
// accumulator fragments. The epilogue: each fragment is stored to the subgroup's own 16 x 16 f32
// scratch, then the subgroup's invocations apply kiln_put to its elements (bounds checked).
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
#define KILN_CM_UNROLL [[dont_unroll]]  // (unrolled, llvmpipe takes many seconds to compile the kernel)
struct KilnCmA { uint offset; };
struct KilnCmB { uint offset; };
struct KilnCmC { float v[KILN_CM_MN / 32]; };
KilnCmC kiln_cm_zero() {
  KilnCmC c;
  for (int i = 0; i < KILN_CM_MN / 32; ++i) c.v[i] = 0.0;
  return c;
}
KilnCmA kiln_cm_load_a(uint offset) { return KilnCmA(offset); }
KilnCmB kiln_cm_load_b(uint offset) { return KilnCmB(offset); }
KilnCmC kiln_cm_mul_add(KilnCmA a, KilnCmB b, KilnCmC acc) {
  [[dont_unroll]] for (uint i = 0u; i < uint(KILN_CM_MN / 32); ++i) {
    const uint e = KILN_SG_LANE + 32u * i, r = e / uint(KILN_CM_N), c = e % uint(KILN_CM_N);
    precise float s = acc.v[i];
    [[dont_unroll]] for (uint k = 0u; k < uint(KILN_CM_K); ++k)
      s = fma(float(kiln_sa[a.offset + r * uint(KILN_SA_STRIDE) + k]), float(kiln_sb[b.offset + k * uint(KILN_SB_STRIDE) + c]), s);
    acc.v[i] = s;
  }
  return acc;
}
void kiln_cm_store(KilnCmC acc, uint offset) {
  for (uint i = 0u; i < uint(KILN_CM_MN / 32); ++i) kiln_sc[offset + KILN_SG_LANE + 32u * i] = acc.v[i];
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

// The 16 elements of a and of b this invocation stages per K step (e = tid + 256 i), loaded from
// the operands into registers: neighbouring invocations on the operand's contiguous axis.
float16_t kiln_ra[16], kiln_rb[16];

// Element e (= tid + 256 i) of the a and b tiles: (am, ak) and (bk, bn).
void kiln_tile_element(KilnContractParams P, uint e, out uint am, out uint ak, out uint bk, out uint bn) {
  const bool a_m_inner = P.a_k != 1l && P.a_m == 1l, b_k_inner = P.b_n != 1l && P.b_k == 1l;
  am = a_m_inner ? e % uint(KILN_BM) : e / uint(KILN_BK);
  ak = a_m_inner ? e / uint(KILN_BM) : e % uint(KILN_BK);
  bk = b_k_inner ? e % uint(KILN_BK) : e / uint(KILN_BN);
  bn = b_k_inner ? e / uint(KILN_BK) : e % uint(KILN_BN);
}

void kiln_fetch(KilnContractParams P, int64_t off_a, int64_t off_b, int64_t m0, int64_t n0, int64_t k0) {
  KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
    uint am, ak, bk, bn;
    kiln_tile_element(P, gl_LocalInvocationIndex + 256u * i, am, ak, bk, bn);
    const int64_t gm = m0 + int64_t(am), gk = k0 + int64_t(ak);
    kiln_ra[i] = gm < P.m && gk < P.k
                     ? float16_t(kiln_load_a(P.a_ + uint64_t(off_a + gm * P.a_m + gk * P.a_k) * uint64_t(KILN_S0)))
                     : float16_t(0.0);
    const int64_t hk = k0 + int64_t(bk), hn = n0 + int64_t(bn);
    kiln_rb[i] = hk < P.k && hn < P.n
                     ? float16_t(kiln_load_b(P.b_ + uint64_t(off_b + hk * P.b_k + hn * P.b_n) * uint64_t(KILN_S1)))
                     : float16_t(0.0);
  }
}

void kiln_stage(KilnContractParams P) {
  KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
    uint am, ak, bk, bn;
    kiln_tile_element(P, gl_LocalInvocationIndex + 256u * i, am, ak, bk, bn);
    kiln_sa[am * uint(KILN_SA_STRIDE) + ak] = kiln_ra[i];
    kiln_sb[bk * uint(KILN_SB_STRIDE) + bn] = kiln_rb[i];
  }
}

void main() {
  KilnContractParams P = pc.params;
  const uint sg = KILN_SG_ID, lane = KILN_SG_LANE, wm = sg / 4u, wn = sg % 4u;
  const int64_t tiles = P.tiles_m * P.tiles_n, work = P.batch * tiles;
  for (int64_t w = int64_t(gl_WorkGroupID.x); w < work; w += int64_t(gl_NumWorkGroups.x)) {
    const int64_t bi = w / tiles, t = w - bi * tiles, tm = t / P.tiles_n, tn = t - tm * P.tiles_n;
    int64_t off_a, off_b, off_o, off_e0, off_e1;
    kiln_batch_offsets(P, bi, off_a, off_b, off_o, off_e0, off_e1);
    const int64_t m0 = tm * int64_t(KILN_BM), n0 = tn * int64_t(KILN_BN);
    KilnCmC acc[KILN_FM * KILN_FN];
    KILN_CM_UNROLL for (int f = 0; f < KILN_FM * KILN_FN; ++f) acc[f] = kiln_cm_zero();
    if (P.k > 0l) kiln_fetch(P, off_a, off_b, m0, n0, 0l);
    for (int64_t k0 = 0l; k0 < P.k; k0 += int64_t(KILN_BK)) {
      barrier();  // the previous step's fragments are loaded
      kiln_stage(P);
      memoryBarrierShared();
      barrier();
      if (k0 + int64_t(KILN_BK) < P.k) kiln_fetch(P, off_a, off_b, m0, n0, k0 + int64_t(KILN_BK));
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
      const int64_t r0 = m0 + int64_t(wm * 64u + (f / uint(KILN_FN)) * uint(KILN_CM_M));
      const int64_t c0 = n0 + int64_t(wn * 32u + (f % uint(KILN_FN)) * uint(KILN_CM_N));
      for (uint e = lane; e < uint(KILN_CM_MN); e += KILN_SG_SIZE) {
        const int64_t om = r0 + int64_t(e / uint(KILN_CM_N)), on = c0 + int64_t(e % uint(KILN_CM_N));
        if (om < P.m && on < P.n) {
          const uint64_t e0 = P.ext[0] + uint64_t(off_e0 + om * P.ext_m[0] + on * P.ext_n[0]) * uint64_t(KILN_S2);
          const uint64_t e1 = P.ext[1] + uint64_t(off_e1 + om * P.ext_m[1] + on * P.ext_n[1]) * uint64_t(KILN_S3);
          kiln_put(P.out_ + uint64_t(off_o + om * P.n + on) * uint64_t(KILN_SOUT), e0, e1, kiln_sc[scratch + e]);
        }
      }
      KILN_SG_SYNC();
    }
  }
}
