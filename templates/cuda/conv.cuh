// Convolutions as an implicit GEMM (codegen/families/conv.cpp): per group, rows m = (image, output
// position), columns n = output channel, k = (input channel, kernel position). The tile product of
// cuda/contract.cuh — a 64 x 64 output tile per block of 256 threads, K in steps of 16 through
// shared memory, a 4 x 4 register block per thread, each output summed in k order with one fused
// multiply-add per product — whose a tile is gathered from the input windows while it is staged
// (positions in the padding or between dilated input elements read 0); no im2col in memory.
//
// R is the emitted functor of the contraction family (load_a, load_b, put; see cuda/contract.cuh).
#ifndef KILN_TEMPLATES_CUDA_CONV_CUH
#define KILN_TEMPLATES_CUDA_CONV_CUH

#include "cuda/contract.cuh"

namespace kiln {

// The kernel ABI (codegen/families/conv.cpp), redeclared without <cstdint> for NVRTC.
struct KilnConvParams {
  unsigned long long out;
  unsigned long long a;  // the input
  unsigned long long b;  // the kernel
  unsigned long long ext[2];
  long long groups, m, n, k;
  long long tiles_m, tiles_n;
  long long rank, batch, cg;
  long long out_size[3], k_size[3], in_size[3];
  long long stride[3], pad_lo[3], kdil[3], idil[3];
  long long in_group, in_n, in_c, in_sp[3];
  long long kn_group, kn_o, kn_c, kn_sp[3];
  long long out_group, out_n, out_o, out_sp[3];
  long long ext_group[2], ext_n[2], ext_o[2], ext_sp[2][3];
  long long channels_last;  // k = (kernel position, input channel) instead of (input channel, position)
};
static_assert(sizeof(KilnConvParams) == 528, "KilnConvParams must match codegen/families/conv.cpp");

// k = (input channel, kernel position) — or (position, channel) with channels_last — split into
// its parts (the position's last spatial dimension fastest); returns the channel.
__device__ __forceinline__ long long conv_split_k(const KilnConvParams& p, long long k, long long* kj) {
  long long ci = 0;
  if (p.channels_last) {
    const long long q = k / p.cg;
    ci = k - q * p.cg;
    k = q;
  }
#pragma unroll
  for (int j = 2; j >= 0; --j) {
    kj[j] = 0;
    if (j < p.rank) {
      const long long q = k / p.k_size[j];
      kj[j] = k - q * p.k_size[j];
      k = q;
    }
  }
  return p.channels_last ? ci : k;
}

// Output row m of group |grp| (image, output position): the input's offset of its image, its
// window's origin per spatial dimension (in the dilated, padded input), the output's and the
// epilogue operands' offsets.
struct ConvRow {
  long long in, out, ext[2], org[3];
};
__device__ __forceinline__ ConvRow conv_row(const KilnConvParams& p, long long grp, long long m) {
  ConvRow w;
  long long rem = m, o_off = 0, e_off[2] = {0, 0};
#pragma unroll
  for (int j = 2; j >= 0; --j) {
    w.org[j] = 0;
    if (j < p.rank) {
      const long long q = rem / p.out_size[j], o = rem - q * p.out_size[j];
      rem = q;
      w.org[j] = o * p.stride[j] - p.pad_lo[j];
      o_off += o * p.out_sp[j];
#pragma unroll
      for (int e = 0; e < 2; ++e) e_off[e] += o * p.ext_sp[e][j];
    }
  }
  w.in = grp * p.in_group + rem * p.in_n;
  w.out = grp * p.out_group + rem * p.out_n + o_off;
#pragma unroll
  for (int e = 0; e < 2; ++e) w.ext[e] = grp * p.ext_group[e] + rem * p.ext_n[e] + e_off[e];
  return w;
}

// The input's element for window origin |org| (ConvRow::org) at input channel |ci| and kernel
// position |kj|: true with its offset from the image's in |off|, false in the padding or between
// the elements of a dilated input (no 64-bit division for an undilated input, the common case).
__device__ __forceinline__ bool conv_window_at(const KilnConvParams& p, const long long* org, long long ci,
                                               const long long* kj, long long& off) {
  bool inside = true;
  off = ci * p.in_c;
#pragma unroll
  for (int j = 0; j < 3; ++j) {
    if (j < p.rank) {
      const long long q = org[j] + kj[j] * p.kdil[j], dil = p.idil[j];
      const long long qi = q < 0 ? -1 : dil == 1 ? q : q / dil;
      inside = inside && q >= 0 && (dil == 1 || qi * dil == q) && qi < p.in_size[j];
      off += qi * p.in_sp[j];
    }
  }
  return inside;
}

template <class R>
__device__ void conv_run(const KilnConvParams& p, const R r) {
  typedef typename R::C C;
  __shared__ C as[kContractTileK * (kContractTileM + 1)];  // [k][m], rows padded: conflict-free stores
  __shared__ C bs[kContractTileK * kContractTileN];  // [k][n]
  const unsigned tid = threadIdx.x, tx = tid % 16u, ty = tid / 16u;
  const long long tiles = p.tiles_m * p.tiles_n, work = p.groups * tiles;
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    const long long g = w / tiles, t = w - g * tiles, tm = t / p.tiles_n, tn = t - tm * p.tiles_n;
    const long long m0 = tm * kContractTileM, n0 = tn * kContractTileN;
    // This thread's rows ty + 16 i (it stages their a elements and stores their outputs).
    ConvRow row[4];
    bool row_ok[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const long long m = m0 + ty + 16 * i;
      row_ok[i] = m < p.m;
      row[i] = conv_row(p, g, row_ok[i] ? m : 0);
    }
    C acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = C(0);
    for (long long k0 = 0; k0 < p.k; k0 += kContractTileK) {
      // The a tile: this thread's k is k0 + tx for all four of its rows.
      {
        const long long ak = k0 + tx;
        long long kj[3];
        const long long ci = conv_split_k(p, ak < p.k ? ak : 0, kj);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          long long off = 0;
          const bool inside = conv_window_at(p, row[i].org, ci, kj, off) && row_ok[i] && ak < p.k;
          as[tx * (kContractTileM + 1) + ty + 16 * i] = inside ? r.load_a(p, row[i].in + off) : C(0);
        }
      }
      // The b tile: element e = (k = e / 64, n = e % 64) of the group's kernel.
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) {
        const unsigned e = tid + 256u * rr;
        const long long bk = k0 + e / 64u, bn = n0 + e % 64u;
        C v = C(0);
        if (bk < p.k && bn < p.n) {
          long long kj[3];
          const long long ci = conv_split_k(p, bk, kj);
          long long off = g * p.kn_group + bn * p.kn_o + ci * p.kn_c;
#pragma unroll
          for (int j = 0; j < 3; ++j) off += kj[j] * p.kn_sp[j];
          v = r.load_b(p, off);
        }
        bs[e] = v;
      }
      __syncthreads();
      contract_tile_product(as, bs, acc, tx, ty);
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const long long on = n0 + tx + 16 * j;
        if (row_ok[i] && on < p.n) {
          const long long ei[2] = {row[i].ext[0] + on * p.ext_o[0], row[i].ext[1] + on * p.ext_o[1]};
          r.put(p, row[i].out + on * p.out_o, ei, acc[i][j]);
        }
      }
    }
  }
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_CONV_CUH
