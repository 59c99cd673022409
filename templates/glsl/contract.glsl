// Contractions: out[b, m, n] = sum_k a[b, m, k] * b[b, k, n] over strided operands. Vulkan compute,
// GLSL 4.50 + buffer device addresses; inlined after glsl/ops.glsl, glsl/operands.glsl and the
// emitter's definitions (codegen/families/contract.cpp):
//   KILN_C                              the accumulator type (float, double, int, uint, int64_t, uint64_t)
//   kiln_load_a(addr), kiln_load_b(addr)  an element of a or b converted to KILN_C (Kiln's as_type)
//   kiln_put(addr, e0, e1, acc)         the epilogue over the sum and its operands (at e0, e1),
//                                       converted to the output dtype and stored at addr
//   KILN_S0, KILN_S1, KILN_SOUT         the element sizes of a, b and the output
//   KILN_TILE_M, KILN_TILE_N, KILN_TILE_K  the output tile (64 x 64) and the K step (16)
//   KILN_FMA(a, b, c), KILN_PRECISE     a * b + c: floats one fused multiply-add (fma() into a
//                                       precise accumulator: rounded once, the same on every
//                                       driver); integers wrapping

// ABI: the device address of a KilnContractParams block (glsl/contract_params.glsl) as the push
// constant. A workgroup of 256 invocations per output tile, grid-stride over batch x tiles; per K
// step the a tile (64 x 16) and the b tile (16 x 64) are staged in shared memory, zero outside the
// operands; invocation (tx, ty) = (t % 16, t / 16) accumulates outputs (ty + 16 i, tx + 16 j),
// i, j < 4, in registers, each in k order (deterministic). Workgroup size: specialization
// constant 0, which must be 256.
layout(local_size_x_id = 0) in;

shared KILN_C kiln_as[KILN_TILE_K * (KILN_TILE_M + 1)];  // [k][m], rows padded: conflict-free stores
shared KILN_C kiln_bs[KILN_TILE_K * KILN_TILE_N];  // [k][n]

void main() {
  KilnContractParams P = pc.params;
  const uint tid = gl_LocalInvocationID.x, tx = tid % 16u, ty = tid / 16u;
  const int64_t tiles = P.tiles_m * P.tiles_n, work = P.batch * tiles;
  for (int64_t w = int64_t(gl_WorkGroupID.x); w < work; w += int64_t(gl_NumWorkGroups.x)) {
    const int64_t bi = w / tiles, t = w - bi * tiles, tm = t / P.tiles_n, tn = t - tm * P.tiles_n;
    int64_t off_a, off_b, off_o, off_e0, off_e1;
    kiln_batch_offsets(P, bi, off_a, off_b, off_o, off_e0, off_e1);
    const int64_t m0 = tm * int64_t(KILN_TILE_M), n0 = tn * int64_t(KILN_TILE_N);
    KILN_PRECISE KILN_C acc[4][4];
    [[unroll]] for (int i = 0; i < 4; ++i)
      [[unroll]] for (int j = 0; j < 4; ++j) acc[i][j] = KILN_C(0);
    for (int64_t k0 = 0l; k0 < P.k; k0 += int64_t(KILN_TILE_K)) {
      // Stage the tiles: a's element e = (m = e / 16, k = e % 16), b's (k = e / 64, n = e % 64),
      // neighbouring invocations on neighbouring k (a) and n (b).
      [[unroll]] for (int r = 0; r < 4; ++r) {
        const uint e = tid + 256u * uint(r);
        const int64_t am = m0 + int64_t(e / 16u), ak = k0 + int64_t(e % 16u);
        kiln_as[(e % 16u) * uint(KILN_TILE_M + 1) + e / 16u] =
            am < P.m && ak < P.k ? kiln_load_a(P.a_ + uint64_t(off_a + am * P.a_m + ak * P.a_k) * uint64_t(KILN_S0))
                                 : KILN_C(0);
        const int64_t bk = k0 + int64_t(e / 64u), bn = n0 + int64_t(e % 64u);
        kiln_bs[e] = bk < P.k && bn < P.n
                         ? kiln_load_b(P.b_ + uint64_t(off_b + bk * P.b_k + bn * P.b_n) * uint64_t(KILN_S1))
                         : KILN_C(0);
      }
      barrier();
      [[unroll]] for (uint kk = 0u; kk < uint(KILN_TILE_K); ++kk) {
        KILN_C ra[4], rb[4];
        [[unroll]] for (int i = 0; i < 4; ++i) ra[i] = kiln_as[kk * uint(KILN_TILE_M + 1) + ty + 16u * uint(i)];
        [[unroll]] for (int j = 0; j < 4; ++j) rb[j] = kiln_bs[kk * uint(KILN_TILE_N) + tx + 16u * uint(j)];
        [[unroll]] for (int i = 0; i < 4; ++i)
          [[unroll]] for (int j = 0; j < 4; ++j) acc[i][j] = KILN_FMA(ra[i], rb[j], acc[i][j]);
      }
      barrier();
    }
    [[unroll]] for (int i = 0; i < 4; ++i) {
      const int64_t om = m0 + int64_t(ty) + 16l * int64_t(i);
      [[unroll]] for (int j = 0; j < 4; ++j) {
        const int64_t on = n0 + int64_t(tx) + 16l * int64_t(j);
        if (om < P.m && on < P.n) {
          const uint64_t e0 = P.ext[0] + uint64_t(off_e0 + om * P.ext_m[0] + on * P.ext_n[0]) * uint64_t(KILN_S2);
          const uint64_t e1 = P.ext[1] + uint64_t(off_e1 + om * P.ext_m[1] + on * P.ext_n[1]) * uint64_t(KILN_S3);
          kiln_put(P.out_ + uint64_t(off_o + om * P.n + on) * uint64_t(KILN_SOUT), e0, e1, acc[i][j]);
        }
      }
    }
  }
}
