// Contractions on the tensor cores (sm_80 and later; codegen/families/contract.cpp, precision as
// the tensor cores give it): f16 or bf16 operands, f32 accumulators, mma.sync.aligned.m16n8k16.
// A block of 256 threads (8 warps, 2 x 4) per 128 x 128 output tile; K in steps of 32 staged in
// shared memory as raw 16-bit elements (a as [m][k], b as [n][k], rows padded by 8 elements:
// conflict-free 32-bit fragment loads) through two buffers; each warp computes 64 x 32 outputs as
// 4 x 4 m16n8 tiles. An operand whose k is its unit-stride axis (with 16-byte aligned rows: a
// row-major a, an nn.Linear weight [n][k]) is staged by asynchronous 16-byte copies (cp.async)
// issued a step ahead, which land while the tensor cores work on the step before; others are read
// through their strides element by element before each step (a transposed operand is a stride:
// the staging loop walks the contiguous axis with neighbouring threads). The epilogue is the
// contraction family's functor (R::put over the f32 sum), so fused epilogues work alike. The
// products of a k16 step are summed by the tensor cores (their order and rounding), the steps in k
// order: deterministic on a GPU model, not bit-identical to contract.cuh's fma chain.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), lane
// = 4 g + t: a holds (m, k) = (g + 8 v1, 2 t + v0 + 8 v2) as element v0 + 2 v1 + 4 v2 (two 16-bit
// elements per register, the even one low); b holds (k, n) = (2 t + v0 + 8 v1, g); the f32
// accumulators (m, n) = (g + 8 v1, 2 t + v0).
#ifndef KILN_TEMPLATES_CUDA_CONTRACT_MMA_CUH
#define KILN_TEMPLATES_CUDA_CONTRACT_MMA_CUH

#include "cuda/contract.cuh"

namespace kiln {

constexpr int kMmaTileM = 128, kMmaTileN = 128, kMmaTileK = 32, kMmaLd = kMmaTileK + 8;

#if !defined(__CUDA_ARCH__)
// Compiled for the host (the tests run the template on host threads; NVRTC, the only compiler of
// these kernels, always defines __CUDA_ARCH__): the tile product as the PTX ISA defines it.
void contract_mma_16816_on_host(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2], bool bf16);
#endif

// d += a b over one m16n8k16 tile of the warp.
template <bool BF16>
__device__ __forceinline__ void contract_mma_16816(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#if defined(__CUDA_ARCH__)
  if (BF16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  contract_mma_16816_on_host(d, a, b, BF16);  // tests/test_cuda_blocks_host.cpp: the documented semantics
#endif
}

// Two adjacent 16-bit elements of shared memory as one register (the lower-indexed one low).
__device__ __forceinline__ unsigned contract_mma_pair(const unsigned short* s) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const unsigned*>(s);
#else
  return unsigned(s[0]) | (unsigned(s[1]) << 16);
#endif
}

// One staged K step (kMmaTileK) of the warp's 64 x 32 outputs: the fragments of the block's [m][k]
// and [n][k] tiles (warp (wm, wn), lane 4 g + t) through the tensor cores into |acc|.
template <bool BF16>
__device__ __forceinline__ void contract_mma_step(const unsigned short* as, const unsigned short* bs, float (&acc)[4][4][4],
                                                  unsigned wm, unsigned wn, unsigned g, unsigned t) {
#pragma unroll
  for (int kk = 0; kk < kMmaTileK; kk += 16) {
    unsigned af[4][4], bf[4][2];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const unsigned short* s = as + (wm * 64u + 16u * i + g) * kMmaLd + kk + 2u * t;
      af[i][0] = contract_mma_pair(s);
      af[i][1] = contract_mma_pair(s + 8 * kMmaLd);
      af[i][2] = contract_mma_pair(s + 8);
      af[i][3] = contract_mma_pair(s + 8 * kMmaLd + 8);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const unsigned short* s = bs + (wn * 32u + 8u * j + g) * kMmaLd + kk + 2u * t;
      bf[j][0] = contract_mma_pair(s);
      bf[j][1] = contract_mma_pair(s + 8);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) contract_mma_16816<BF16>(acc[i][j], af[i], bf[j]);
  }
}

// Whether operand |o| (0: a, 1: b) of |p| is copied in 16-byte chunks along k: k its unit-stride
// axis, its address and its other strides multiples of 16 bytes (a chunk of 8 k from a multiple
// of 8 then starts 16-byte aligned).
__device__ __forceinline__ bool contract_mma_chunks(const KilnContractParams& p, int o) {
  const unsigned long long at = o == 0 ? p.a : p.b;
  bool ok = (o == 0 ? p.a_k : p.b_k) == 1 && (o == 0 ? p.a_m : p.b_n) % 8 == 0 && at % 16 == 0;
  for (int d = 0; d < (int)p.batch_rank; ++d) ok = ok && p.batch_strides[o][d] % 8 == 0;
  return ok;
}

// Stages the K step at |k0| of the tile at (|m0|, |n0|) into |as| ([m][k]) and |bs| ([n][k]): an
// operand along k in chunks (|a_chunks|, |b_chunks|: 512 chunks of 8 k, 2 per thread, as
// asynchronous copies; the K tail zero-filled), otherwise element by element through registers
// (16 per thread, neighbouring threads on the operand's unit-stride axis when it has one).
__device__ __forceinline__ void contract_mma_stage(const KilnContractParams& p, const long long* off, long long m0,
                                                   long long n0, long long k0, bool a_chunks, bool b_chunks,
                                                   unsigned short* as, unsigned short* bs, unsigned tid) {
  const unsigned short* A = reinterpret_cast<const unsigned short*>(p.a);
  const unsigned short* B = reinterpret_cast<const unsigned short*>(p.b);
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const unsigned e = tid + 256u * rr, row = e / 4u, kc = 8u * (e % 4u);  // chunk: row, its first k
    const long long gk = k0 + kc, left = p.k - gk;
    const unsigned bytes = left <= 0 ? 0u : left >= 8 ? 16u : unsigned(2 * left);
    if (a_chunks) {
      const long long gm = m0 + row;
      const bool in = gm < p.m && bytes > 0;
      contract_copy16(as + row * kMmaLd + kc, in ? A + off[0] + gm * p.a_m + gk : A, in ? bytes : 0u);
    }
    if (b_chunks) {
      const long long gn = n0 + row;
      const bool in = gn < p.n && bytes > 0;
      contract_copy16(bs + row * kMmaLd + kc, in ? B + off[1] + gn * p.b_n + gk : B, in ? bytes : 0u);
    }
  }
  if (a_chunks && b_chunks) return;
#pragma unroll 4
  for (int rr = 0; rr < 16; ++rr) {
    const unsigned e = tid + 256u * rr;
    if (!a_chunks) {
      const unsigned am = p.a_k == 1 ? e / 32u : e % 128u, ak = p.a_k == 1 ? e % 32u : e / 128u;
      const long long gm = m0 + am, gk = k0 + ak;
      as[am * kMmaLd + ak] = gm < p.m && gk < p.k ? A[off[0] + gm * p.a_m + gk * p.a_k] : (unsigned short)0;
    }
    if (!b_chunks) {
      const unsigned bn = p.b_n == 1 ? e % 128u : e / 32u, bk = p.b_n == 1 ? e / 128u : e % 32u;
      const long long gn = n0 + bn, hk = k0 + bk;
      bs[bn * kMmaLd + bk] = gn < p.n && hk < p.k ? B[off[1] + hk * p.b_k + gn * p.b_n] : (unsigned short)0;
    }
  }
}

template <class R, bool BF16>
__device__ void contract_mma_run(const KilnContractParams& p, const R r) {
  // Two buffers: the next K step is staged (its chunks copied asynchronously) while this one runs.
  __shared__ __align__(16) unsigned short as[2][kMmaTileM * kMmaLd];  // [m][k]
  __shared__ __align__(16) unsigned short bs[2][kMmaTileN * kMmaLd];  // [n][k]
  const unsigned tid = threadIdx.x, lane = tid % 32u, warp = tid / 32u;
  const unsigned wm = warp / 4u, wn = warp % 4u, g = lane / 4u, t = lane % 4u;
  const bool a_chunks = contract_mma_chunks(p, 0), b_chunks = contract_mma_chunks(p, 1);
  const long long tiles = p.tiles_m * p.tiles_n, work = p.batch * tiles;
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    const long long bi = w / tiles, tt = w - bi * tiles, tm = tt / p.tiles_n, tn = tt - tm * p.tiles_n;
    long long off[3], eoff[2];
    contract_batch_offsets(p, bi, off, eoff);
    const long long m0 = tm * kMmaTileM, n0 = tn * kMmaTileN;
    float acc[4][4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;
    if (p.k > 0) contract_mma_stage(p, off, m0, n0, 0, a_chunks, b_chunks, as[0], bs[0], tid);
    contract_copy_commit();
    unsigned buf = 0;
    for (long long k0 = 0; k0 < p.k; k0 += kMmaTileK, buf ^= 1u) {
      if (k0 + kMmaTileK < p.k) {  // the next step into the other buffer (free since the last barrier)
        contract_mma_stage(p, off, m0, n0, k0 + kMmaTileK, a_chunks, b_chunks, as[buf ^ 1u], bs[buf ^ 1u], tid);
        contract_copy_commit();
        contract_copy_wait<1>();  // this step's copies have landed (the next step's may still fly)
      } else {
        contract_copy_wait<0>();
      }
      __syncthreads();
      contract_mma_step<BF16>(as[buf], bs[buf], acc, wm, wn, g, t);
      __syncthreads();  // the buffer is read before the step after next stages into it
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const long long om = m0 + wm * 64u + 16u * i + g + 8u * (c / 2), on = n0 + wn * 32u + 8u * j + 2u * t + c % 2;
          if (om < p.m && on < p.n) {
            const long long ei[2] = {eoff[0] + om * p.ext_m[0] + on * p.ext_n[0], eoff[1] + om * p.ext_m[1] + on * p.ext_n[1]};
            r.put(p, off[2] + om * p.n + on, ei, acc[i][j][c]);
          }
        }
  }
}

template <class R>
__device__ void contract_mma_run_bf16(const KilnContractParams& p, const R r) {
  contract_mma_run<R, true>(p, r);
}
template <class R>
__device__ void contract_mma_run_f16(const KilnContractParams& p, const R r) {
  contract_mma_run<R, false>(p, r);
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_CONTRACT_MMA_CUH
