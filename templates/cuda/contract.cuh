// Contractions: out[b, m, n] = sum_k a[b, m, k] * b[b, k, n] over strided operands; the algorithm of
// templates/glsl/contract.glsl (a 64 x 64 output tile per block of 256 threads, K in steps of 16
// through shared memory, a 4 x 4 register block per thread, each output summed in k order with
// one fused multiply-add per product: the same roundings as the Vulkan kernels).
//
// R is the emitted functor (codegen/families/contract.cpp):
//   typedef ... C;                                       the accumulator type
//   C load_a(p, i) const, load_b(p, i) const             element i of a or b converted to C
//   void put(p, i, ei, C y) const                        the epilogue over y and its operands (at
//                                                        element ei[0], ei[1] of p.ext), converted to
//                                                        the output dtype and stored at i
// Indices are 64-bit element offsets.
#ifndef KILN_TEMPLATES_CUDA_CONTRACT_CUH
#define KILN_TEMPLATES_CUDA_CONTRACT_CUH

#include "cuda/ops.cuh"

namespace kiln {

// The kernel ABI (codegen/families/contract.cpp), redeclared without <cstdint> for NVRTC.
struct KilnContractParams {
  unsigned long long out;
  unsigned long long a;
  unsigned long long b;
  long long m, n, k;
  long long batch;
  long long batch_rank;
  long long batch_shape[4];
  long long batch_strides[3][4];  // [a, b, out][dim], in elements
  long long a_m, a_k, b_k, b_n;
  long long tiles_m, tiles_n;
  unsigned long long ext[2];             // the epilogue's operands (0: none), laid out over the result
  long long ext_batch_strides[2][4];
  long long ext_m[2], ext_n[2];
  long long reserved[2];
};
static_assert(sizeof(KilnContractParams) == 368, "KilnContractParams must match codegen/families/contract.cpp");

// ---- asynchronous 16-byte copies (cp.async, sm_80+): the tensor-core kernels' staging ------------
#if !defined(__CUDA_ARCH__)
// On the host (the tests run the templates on host threads): a thread's copies wait in its queue
// until the wait or arrival that completes them, so a missing wait reads stale shared memory there
// too; a copy that is not 16-byte aligned throws, as the GPU faults.
struct ContractHostCopy {
  unsigned char* dst;
  const unsigned char* src;
  unsigned bytes;
  unsigned long long group;  // the commits before it
};
inline thread_local std::vector<ContractHostCopy> contract_host_copies;
inline thread_local unsigned long long contract_host_commits = 0;
inline void contract_land_copies_on_host(unsigned long long groups_before) {
  std::vector<ContractHostCopy>& q = contract_host_copies;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    if (q[i].group < groups_before) {
      for (unsigned b = 0; b < 16; ++b) q[i].dst[b] = b < q[i].bytes ? q[i].src[b] : (unsigned char)0;
    } else {
      q[kept++] = q[i];
    }
  }
  q.resize(kept);
}
#endif

// 16 bytes from global |src| to shared |dst| (both 16-byte aligned) as an asynchronous copy
// (cp.async.cg): the first |bytes| read, the rest zero-filled (0: 16 zeros, nothing read).
__device__ __forceinline__ void contract_copy16(void* dst, const void* src, unsigned bytes) {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)),
               "l"(__cvta_generic_to_global(src)), "r"(bytes)
               : "memory");
#else
  if (reinterpret_cast<unsigned long long>(dst) % 16 != 0 || reinterpret_cast<unsigned long long>(src) % 16 != 0 ||
      bytes > 16)
    throw std::logic_error("a cp.async of 16 bytes not 16-byte aligned, or of a source over 16 bytes");
  contract_host_copies.push_back({static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src), bytes,
                                  contract_host_commits});
#endif
}
// The copies issued since the last commit as one group.
__device__ __forceinline__ void contract_copy_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#else
  ++contract_host_commits;
#endif
}
// Waits until at most |N| committed groups are in flight (their copies visible to this thread).
template <int N>
__device__ __forceinline__ void contract_copy_wait() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#else
  contract_land_copies_on_host(contract_host_commits >= (unsigned long long)N ? contract_host_commits - N : 0);
#endif
}
// Waits for all of this thread's copies, committed or not.
__device__ __forceinline__ void contract_copy_wait_all() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#else
  contract_land_copies_on_host(~0ull);
#endif
}

constexpr int kContractTileM = 64, kContractTileN = 64, kContractTileK = 16;

// An f32 value rounded to TF32 (precision tf32): to nearest even at 10 mantissa bits, inf and NaN kept.
__device__ __forceinline__ float contract_tf32(const float v) {
  unsigned u = __float_as_uint(v);
  if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;
  return __uint_as_float(u);
}

// a * b + c: floats one fused multiply-add (rounded once, as the Vulkan kernels' fma), integers wrapping.
template <class C>
__device__ __forceinline__ C contract_fma(const C a, const C b, const C c) {
  return C(c + a * b);
}
template <>
__device__ __forceinline__ float contract_fma<float>(const float a, const float b, const float c) {
  return __fmaf_rn(a, b, c);
}
template <>
__device__ __forceinline__ double contract_fma<double>(const double a, const double b, const double c) {
  return __fma_rn(a, b, c);
}
// Signed accumulators wrap through unsigned arithmetic (signed overflow is undefined behaviour).
template <>
__device__ __forceinline__ int contract_fma<int>(const int a, const int b, const int c) {
  return (int)((unsigned)c + (unsigned)a * (unsigned)b);
}
template <>
__device__ __forceinline__ long long contract_fma<long long>(const long long a, const long long b, const long long c) {
  return (long long)((unsigned long long)c + (unsigned long long)a * (unsigned long long)b);
}

// The staged tiles' products added to the thread's 4 x 4 outputs (rows ty + 16 i, columns tx + 16 j),
// in k order.
template <class C>
__device__ __forceinline__ void contract_tile_product(const C* as, const C* bs, C (&acc)[4][4], const unsigned tx,
                                                      const unsigned ty) {
#pragma unroll
  for (int kk = 0; kk < kContractTileK; ++kk) {
    C ra[4], rb[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) ra[i] = as[kk * (kContractTileM + 1) + ty + 16 * i];
#pragma unroll
    for (int j = 0; j < 4; ++j) rb[j] = bs[kk * kContractTileN + tx + 16 * j];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = contract_fma(ra[i], rb[j], acc[i][j]);
  }
}

// The offsets of batch |bi| in a, b, the output ([0..3)) and the epilogue's operands.
__device__ __forceinline__ void contract_batch_offsets(const KilnContractParams& p, long long bi, long long* off,
                                                       long long* eoff) {
  off[0] = off[1] = off[2] = 0;
  eoff[0] = eoff[1] = 0;
  long long rem = bi;
  for (int d = (int)p.batch_rank - 1; d >= 0; --d) {
    const long long s = p.batch_shape[d], q = rem / s, idx = rem - q * s;
    rem = q;
#pragma unroll
    for (int o = 0; o < 3; ++o) off[o] += idx * p.batch_strides[o][d];
#pragma unroll
    for (int e = 0; e < 2; ++e) eoff[e] += idx * p.ext_batch_strides[e][d];
  }
}

template <class R>
__device__ void contract_run(const KilnContractParams& p, const R r) {
  typedef typename R::C C;
  __shared__ C as[kContractTileK * (kContractTileM + 1)];  // [k][m], rows padded: conflict-free stores
  __shared__ C bs[kContractTileK * kContractTileN];  // [k][n]
  const unsigned tid = threadIdx.x, tx = tid % 16u, ty = tid / 16u;
  const long long tiles = p.tiles_m * p.tiles_n, work = p.batch * tiles;
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    const long long bi = w / tiles, t = w - bi * tiles, tm = t / p.tiles_n, tn = t - tm * p.tiles_n;
    long long off[3], eoff[2];
    contract_batch_offsets(p, bi, off, eoff);
    const long long m0 = tm * kContractTileM, n0 = tn * kContractTileN;
    C acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = C(0);
    for (long long k0 = 0; k0 < p.k; k0 += kContractTileK) {
      // Stage the tiles: a's element e = (m = e / 16, k = e % 16), b's (k = e / 64, n = e % 64).
#pragma unroll
      for (int rr = 0; rr < 4; ++rr) {
        const unsigned e = tid + 256u * rr;
        const long long am = m0 + e / 16u, ak = k0 + e % 16u;
        as[(e % 16u) * (kContractTileM + 1) + e / 16u] = am < p.m && ak < p.k ? r.load_a(p, off[0] + am * p.a_m + ak * p.a_k) : C(0);
        const long long bk = k0 + e / 64u, bn = n0 + e % 64u;
        bs[e] = bk < p.k && bn < p.n ? r.load_b(p, off[1] + bk * p.b_k + bn * p.b_n) : C(0);
      }
      __syncthreads();
      contract_tile_product(as, bs, acc, tx, ty);
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const long long om = m0 + ty + 16 * i;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const long long on = n0 + tx + 16 * j;
        if (om < p.m && on < p.n) {
          const long long ei[2] = {eoff[0] + om * p.ext_m[0] + on * p.ext_n[0], eoff[1] + om * p.ext_m[1] + on * p.ext_n[1]};
          r.put(p, off[2] + om * p.n + on, ei, acc[i][j]);
        }
      }
    }
  }
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_CONTRACT_CUH
