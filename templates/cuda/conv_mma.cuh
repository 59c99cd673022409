// Convolutions on the tensor cores (sm_80 and later; codegen/families/conv.cpp): the implicit GEMM
// of cuda/conv.cuh — rows m = (image, output position), columns n = output channel, k = (input
// channel, kernel position) or (position, channel) — with the tiles and fragments of
// cuda/contract_mma.cuh: f16 or bf16 operands, f32 accumulators, a block of 256 threads (8 warps,
// 2 x 4) per 128 x 128 output tile, K in steps of 32 staged in shared memory as raw 16-bit
// elements. The a tile is gathered from the input windows as it is staged (positions in the padding
// or between dilated input elements read 0); no im2col in memory. What each row and each k of the
// step needs (the image's offset, the window's origin, the channel's and the kernel position's
// offsets) is worked out once per tile and once per step into shared memory, so staging an element
// is additions (and a division per spatial dimension of a dilated input). The epilogue is the
// contraction family's functor (R::put over the f32 sum).
#ifndef KILN_TEMPLATES_CUDA_CONV_MMA_CUH
#define KILN_TEMPLATES_CUDA_CONV_MMA_CUH

#include "cuda/contract_mma.cuh"
#include "cuda/conv.cuh"

namespace kiln {

template <class R, bool BF16>
__device__ void conv_mma_run(const KilnConvParams& p, const R r) {
  __shared__ __align__(16) unsigned short as[kMmaTileM * kMmaLd];  // [m][k]
  __shared__ __align__(16) unsigned short bs[kMmaTileN * kMmaLd];  // [n][k]
  // The tile's rows: in range, the input offset of the image, the window origin per dimension, the
  // output's and the epilogue operands' offsets.
  __shared__ bool row_ok[kMmaTileM];
  __shared__ long long row_in[kMmaTileM], row_org[kMmaTileM][3], row_out[kMmaTileM], row_ext[2][kMmaTileM];
  // The step's k: in range, the channel's offset in the input, the kernel position times the kernel
  // dilation per dimension, the offset in the kernel (channel and position).
  __shared__ bool k_ok[kMmaTileK];
  __shared__ long long k_in[kMmaTileK], k_dil[kMmaTileK][3], k_kn[kMmaTileK];
  const unsigned short* A = reinterpret_cast<const unsigned short*>(p.a);
  const unsigned short* B = reinterpret_cast<const unsigned short*>(p.b);
  const unsigned tid = threadIdx.x, lane = tid % 32u, warp = tid / 32u;
  const unsigned wm = warp / 4u, wn = warp % 4u, g = lane / 4u, t = lane % 4u;
  // Neighbouring threads stage neighbouring k when k's channels are the input's unit-stride axis
  // (channels last), else neighbouring rows (output positions); the kernel along n when output
  // channels are its unit-stride axis (HWIO), else along k.
  const bool a_k_fast = p.channels_last != 0 && p.in_c == 1, b_n_fast = p.kn_o == 1;
  const long long tiles = p.tiles_m * p.tiles_n, work = p.groups * tiles;
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    const long long grp = w / tiles, tt = w - grp * tiles, tm = tt / p.tiles_n, tn = tt - tm * p.tiles_n;
    const long long m0 = tm * kMmaTileM, n0 = tn * kMmaTileN;
    if (tid < unsigned(kMmaTileM)) {
      const long long m = m0 + tid;
      row_ok[tid] = m < p.m;
      const ConvRow w = conv_row(p, grp, m < p.m ? m : 0);
#pragma unroll
      for (int j = 0; j < 3; ++j) row_org[tid][j] = w.org[j];
      row_in[tid] = w.in;
      row_out[tid] = w.out;
#pragma unroll
      for (int e = 0; e < 2; ++e) row_ext[e][tid] = w.ext[e];
    }
    __syncthreads();  // the rows are in shared memory (K = 0 reads them too)
    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;
    for (long long k0 = 0; k0 < p.k; k0 += kMmaTileK) {
      if (tid < unsigned(kMmaTileK)) {
        const long long k = k0 + tid;
        k_ok[tid] = k < p.k;
        long long kj[3];
        const long long ci = conv_split_k(p, k < p.k ? k : 0, kj);
        long long kn = ci * p.kn_c;
#pragma unroll
        for (int j = 0; j < 3; ++j) {
          k_dil[tid][j] = kj[j] * p.kdil[j];
          kn += kj[j] * p.kn_sp[j];
        }
        k_in[tid] = ci * p.in_c;
        k_kn[tid] = kn;
      }
      __syncthreads();  // this step's k are in shared memory
#pragma unroll 4
      for (int rr = 0; rr < 16; ++rr) {
        const unsigned e = tid + 256u * rr;
        const unsigned am = a_k_fast ? e / 32u : e % 128u, ak = a_k_fast ? e % 32u : e / 128u;
        unsigned short v = 0;
        if (row_ok[am] && k_ok[ak]) {
          bool inside = true;
          long long off = row_in[am] + k_in[ak];
#pragma unroll
          for (int j = 0; j < 3; ++j) {
            if (j < p.rank) {
              // No 64-bit division for an undilated input (the common case).
              const long long q = row_org[am][j] + k_dil[ak][j], dil = p.idil[j];
              const long long qi = q < 0 ? -1 : dil == 1 ? q : q / dil;
              inside = inside && q >= 0 && (dil == 1 || qi * dil == q) && qi < p.in_size[j];
              off += qi * p.in_sp[j];
            }
          }
          if (inside) v = A[off];
        }
        as[am * kMmaLd + ak] = v;
        const unsigned bn = b_n_fast ? e % 128u : e / 32u, bk = b_n_fast ? e / 128u : e % 32u;
        const long long gn = n0 + bn;
        bs[bn * kMmaLd + bk] = gn < p.n && k_ok[bk] ? B[grp * p.kn_group + gn * p.kn_o + k_kn[bk]] : (unsigned short)0;
      }
      __syncthreads();
      contract_mma_step<BF16>(as, bs, acc, wm, wn, g, t);
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const unsigned lm = wm * 64u + 16u * i + g + 8u * (c / 2);
          const long long on = n0 + wn * 32u + 8u * j + 2u * t + c % 2;
          if (row_ok[lm] && on < p.n) {
            const long long ei[2] = {row_ext[0][lm] + on * p.ext_o[0], row_ext[1][lm] + on * p.ext_o[1]};
            r.put(p, row_out[lm] + on * p.out_o, ei, acc[i][j][c]);
          }
        }
    __syncthreads();  // the rows are read above before the next tile writes them
  }
}

template <class R>
__device__ void conv_mma_run_bf16(const KilnConvParams& p, const R r) {
  conv_mma_run<R, true>(p, r);
}
template <class R>
__device__ void conv_mma_run_f16(const KilnConvParams& p, const R r) {
  conv_mma_run<R, false>(p, r);
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_CONV_MMA_CUH
