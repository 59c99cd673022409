// Convolutions as an implicit GEMM (codegen/families/conv.cpp): per group, rows m = (image, output
// position), columns n = output channel, k = (input channel, kernel position). The tile product of
// glsl/contract.glsl (the same hooks and definitions from the emitter: KILN_C, kiln_load_a/b,
// kiln_put, KILN_S*, KILN_TILE_*, KILN_FMA, KILN_PRECISE) whose a tile is gathered from the input
// windows while it is staged: positions in the padding or between dilated input elements read 0.

// ABI: the device address of a KilnConvParams block (glsl/conv_params.glsl, inlined before this
// file) as the push constant. A workgroup of 256 invocations per output tile, grid-stride over
// groups x tiles. Workgroup size: specialization constant 0, which must be 256.
layout(local_size_x_id = 0) in;

shared KILN_C kiln_as[KILN_TILE_K * (KILN_TILE_M + 1)];  // [k][m], rows padded: conflict-free stores
shared KILN_C kiln_bs[KILN_TILE_K * KILN_TILE_N];  // [k][n]

void main() {
  KilnConvParams P = pc.params;
  const uint tid = gl_LocalInvocationID.x, tx = tid % 16u, ty = tid / 16u;
  const int64_t tiles = P.tiles_m * P.tiles_n, work = P.groups * tiles;
  for (int64_t w = int64_t(gl_WorkGroupID.x); w < work; w += int64_t(gl_NumWorkGroups.x)) {
    const int64_t g = w / tiles, t = w - g * tiles, tm = t / P.tiles_n, tn = t - tm * P.tiles_n;
    const int64_t m0 = tm * int64_t(KILN_TILE_M), n0 = tn * int64_t(KILN_TILE_N);
    // This invocation's rows ty + 16 i (it stages their a elements and stores their outputs).
    int64_t in_row[4], out_row[4], e0_row[4], e1_row[4], origin[4][3];
    bool row_ok[4];
    [[unroll]] for (int i = 0; i < 4; ++i) {
      const int64_t m = m0 + int64_t(ty) + 16l * int64_t(i);
      row_ok[i] = m < P.m;
      int64_t rem = row_ok[i] ? m : 0l, o_off = 0l, e0 = 0l, e1 = 0l;
      [[unroll]] for (int j = 2; j >= 0; --j) {
        origin[i][j] = 0l;
        if (int64_t(j) < P.rank) {
          const int64_t q = rem / P.out_size[j], o = rem - q * P.out_size[j];
          rem = q;
          origin[i][j] = o * P.stride[j] - P.pad_lo[j];
          o_off += o * P.out_sp[j];
          e0 += o * P.ext_sp[j];
          e1 += o * P.ext_sp[3 + j];
        }
      }
      in_row[i] = g * P.in_group + rem * P.in_n;
      out_row[i] = g * P.out_group + rem * P.out_n + o_off;
      e0_row[i] = g * P.ext_group[0] + rem * P.ext_n[0] + e0;
      e1_row[i] = g * P.ext_group[1] + rem * P.ext_n[1] + e1;
    }
    KILN_PRECISE KILN_C acc[4][4];
    [[unroll]] for (int i = 0; i < 4; ++i)
      [[unroll]] for (int j = 0; j < 4; ++j) acc[i][j] = KILN_C(0);
    for (int64_t k0 = 0l; k0 < P.k; k0 += int64_t(KILN_TILE_K)) {
      {  // the a tile: this invocation's k is k0 + tx for all four of its rows
        const int64_t ak = k0 + int64_t(tx);
        int64_t kj[3];
        const int64_t ci = kiln_split_k(P, ak < P.k ? ak : 0l, kj);
        [[unroll]] for (int i = 0; i < 4; ++i) {
          bool inside = row_ok[i] && ak < P.k;
          int64_t off = in_row[i] + ci * P.in_c;
          [[unroll]] for (int j = 0; j < 3; ++j) {
            if (int64_t(j) < P.rank) {
              const int64_t q = origin[i][j] + kj[j] * P.kdil[j], qi = q >= 0l ? q / P.idil[j] : -1l;
              inside = inside && q >= 0l && qi * P.idil[j] == q && qi < P.in_size[j];
              off += qi * P.in_sp[j];
            }
          }
          kiln_as[tx * uint(KILN_TILE_M + 1) + ty + 16u * uint(i)] =
              inside ? kiln_load_a(P.a_ + uint64_t(off) * uint64_t(KILN_S0)) : KILN_C(0);
        }
      }
      // The b tile: element e = (k = e / 64, n = e % 64) of the group's kernel.
      [[unroll]] for (int r = 0; r < 4; ++r) {
        const uint e = tid + 256u * uint(r);
        const int64_t bk = k0 + int64_t(e / 64u), bn = n0 + int64_t(e % 64u);
        KILN_C v = KILN_C(0);
        if (bk < P.k && bn < P.n) {
          int64_t kj[3];
          const int64_t ci = kiln_split_k(P, bk, kj);
          int64_t off = g * P.kn_group + bn * P.kn_o + ci * P.kn_c;
          [[unroll]] for (int j = 0; j < 3; ++j) off += kj[j] * P.kn_sp[j];
          v = kiln_load_b(P.b_ + uint64_t(off) * uint64_t(KILN_S1));
        }
        kiln_bs[e] = v;
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
      [[unroll]] for (int j = 0; j < 4; ++j) {
        const int64_t on = n0 + int64_t(tx) + 16l * int64_t(j);
        if (row_ok[i] && on < P.n) {
          const uint64_t e0 = P.ext[0] + uint64_t(e0_row[i] + on * P.ext_o[0]) * uint64_t(KILN_S2);
          const uint64_t e1 = P.ext[1] + uint64_t(e1_row[i] + on * P.ext_o[1]) * uint64_t(KILN_S3);
          kiln_put(P.out_ + uint64_t(out_row[i] + on * P.out_o) * uint64_t(KILN_SOUT), e0, e1, acc[i][j]);
        }
      }
    }
  }
}
