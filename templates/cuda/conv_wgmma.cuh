// Convolutions on Hopper's tensor cores (sm_90a only; codegen/families/conv.cpp, path "wgmma"): the
// implicit GEMM of cuda/conv.cuh — rows m = (image, output position), columns n = output channel,
// k = (input channel, kernel position) or (position, channel) — through the tile product of
// cuda/contract_wgmma.cuh: f16 or bf16 operands, f32 accumulators, 128 x 128 output tiles, K in
// stages of 64 through the same ring of kWgStages stages and mbarriers, a block of 384 threads:
//   warpgroup 0, the producer: thread t gathers row t of the stage's a (output row m0 + t: its
//     input window, padding and the holes of a dilated input read 0) and row t of its b (output
//     channel n0 + t of the kernel), 8 k at a time, and stores each 8 as one 16-byte chunk where
//     the TMA's 128-byte swizzle would put it (chunk c of row r at chunk c ^ (r % 8)), so the
//     consumers read both operands as K-major matrices exactly as they read the contraction's.
//     Where 8 consecutive k are 8 adjacent elements of the operand (a channels-last input with
//     channels per group a multiple of 8; a kernel whose k is its contiguous axis), the chunk is
//     one asynchronous 16-byte copy (cp.async, zero-filled where the window is outside the
//     input), and the thread goes on to the next stage without waiting for it; elsewhere the 8
//     are loaded one by one and stored from registers. The TMA cannot load a window gather (its
//     im2col mode takes neither every layout nor dilated inputs), so no tensor maps: any layout,
//     dilation, padding and group runs here. Each thread then makes its stores visible to the
//     async proxy (fence.proxy.async) and arrives on the stage's "full" mbarrier, and arrives
//     again when its copies land (cp.async.mbarrier.arrive.noinc): 256 arrivals complete it.
//   warpgroups 1, 2, the consumers: contract_wgmma_consume (four k16 wgmmas per stage), then the
//     contraction family's epilogue functor (R::put) over their 64 accumulators per thread, at the
//     offsets of their two output rows.
// The k of a tile are walked in order by counters (channel, kernel position) advanced one k at a
// time: no division in the producer's loop, one split per row per tile (conv_row).
#ifndef KILN_TEMPLATES_CUDA_CONV_WGMMA_CUH
#define KILN_TEMPLATES_CUDA_CONV_WGMMA_CUH

#include "cuda/contract_wgmma.cuh"
#include "cuda/conv.cuh"

namespace kiln {

// 8 16-bit elements: one 16-byte chunk of a stage row.
struct __align__(16) ConvChunk {
  unsigned w[4];
};

// The k |by| after (|ci|, |kj|): the channel fastest for channels_last, else the kernel position's
// last dimension fastest (conv_split_k's order). |by|: 1, or 8 for channels_last with a multiple
// of 8 channels per group and |ci| a multiple of 8 (the next chunk: the same position or the next).
__device__ __forceinline__ void conv_next_k(const KilnConvParams& p, long long& ci, long long* kj, int by = 1) {
  if (p.channels_last) {
    if ((ci += by) < p.cg) return;
    ci = 0;
  }
#pragma unroll
  for (int j = 2; j >= 0; --j) {
    if (j < p.rank) {
      if (++kj[j] < p.k_size[j]) return;
      kj[j] = 0;
    }
  }
  if (!p.channels_last) ++ci;
}

// The kernel's offset of k = (|ci|, |kj|) from its output channel's.
__device__ __forceinline__ long long conv_kernel_at(const KilnConvParams& p, long long ci, const long long* kj) {
  long long off = ci * p.kn_c;
#pragma unroll
  for (int j = 0; j < 3; ++j)
    if (j < p.rank) off += kj[j] * p.kn_sp[j];
  return off;
}

// Whether 8 consecutive k from a multiple of 8 are 8 adjacent, 16-byte aligned elements: of the
// input (channels last, a multiple of 8 channels per group, every stride a multiple of 8), of the
// kernel (its k offsets are k's channel or, channels first, k itself, with aligned strides).
__device__ __forceinline__ bool conv_wgmma_input_chunks(const KilnConvParams& p) {
  bool ok = p.channels_last && p.in_c == 1 && p.cg % 8 == 0 && p.a % 16 == 0 && p.in_group % 8 == 0 && p.in_n % 8 == 0;
  for (int j = 0; j < 3; ++j)
    if (j < p.rank) ok = ok && p.in_sp[j] % 8 == 0;
  return ok;
}
__device__ __forceinline__ bool conv_wgmma_kernel_chunks(const KilnConvParams& p) {
  bool ok = p.b % 16 == 0 && p.kn_group % 8 == 0 && p.kn_o % 8 == 0;
  if (p.channels_last) {
    ok = ok && p.kn_c == 1 && p.cg % 8 == 0;
    for (int j = 0; j < 3; ++j)
      if (j < p.rank) ok = ok && p.kn_sp[j] % 8 == 0;
    return ok;
  }
  // Channels first: offset(k) == k (the last kernel dimension contiguous, each outer one the
  // product of the inner extents, the channel outermost).
  long long dense = 1;
  for (int j = 2; j >= 0; --j)
    if (j < p.rank) {
      ok = ok && p.kn_sp[j] == dense;
      dense *= p.k_size[j];
    }
  return ok && p.kn_c == dense;
}

// The producer warpgroup (thread |t| < 128): every tile's stages, in the consumers' order.
__device__ __forceinline__ void conv_wgmma_produce(const KilnConvParams& p, unsigned char* smem, unsigned full0,
                                                   unsigned empty0, unsigned t) {
  typedef WgTile<2> T;
  const unsigned short* A = reinterpret_cast<const unsigned short*>(p.a);
  const unsigned short* B = reinterpret_cast<const unsigned short*>(p.b);
  const bool a_chunks = conv_wgmma_input_chunks(p), b_chunks = conv_wgmma_kernel_chunks(p);
  const long long tiles = p.tiles_m * p.tiles_n, work = p.groups * tiles, ksteps = (p.k + kWgTileK - 1) / kWgTileK;
  const unsigned swz = t % 8u;  // the 128-byte swizzle of row t
  unsigned long long step = 0;
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    const long long grp = w / tiles, tt = w - grp * tiles, tm = tt / p.tiles_n, tn = tt - tm * p.tiles_n;
    const long long m = tm * T::kM + t, n = tn * T::kN + t;
    const bool m_ok = m < p.m, n_ok = n < p.n;
    const ConvRow row = conv_row(p, grp, m_ok ? m : 0);
    const long long b_row = grp * p.kn_group + (n_ok ? n : 0) * p.kn_o;
    long long ci = 0, kj[3] = {0, 0, 0}, k = 0;  // the next k and its parts
    for (long long kt = 0; kt < ksteps; ++kt, ++step) {
      const unsigned s = (unsigned)(step % kWgStages), parity = (unsigned)(step / kWgStages) & 1u;
      unsigned char* as = smem + s * T::kStageBytes;
      unsigned char* bs = as + T::kABytes;
      contract_mbar_wait(empty0 + 8u * s, parity ^ 1u);
#pragma unroll 1
      for (unsigned c = 0; c < kWgTileK / 8; ++c, k += 8) {
        const unsigned at = t * 128u + ((c ^ swz) * 16u);
        long long off = 0;
        // 16-byte chunks as asynchronous copies (cp.async: zeros where nothing is read).
        if (a_chunks) {  // (K is a multiple of 8: a chunk lies wholly before or past it)
          const bool in = m_ok && k < p.k && conv_window_at(p, row.org, ci, kj, off);
          contract_copy16(as + at, in ? A + row.in + off : A, in ? 16u : 0u);
        }
        const bool b_chunk = b_chunks && k + 8 <= p.k;
        if (b_chunk) contract_copy16(bs + at, n_ok ? B + b_row + conv_kernel_at(p, ci, kj) : B, n_ok ? 16u : 0u);
        // Element by element where a chunk is not 8 adjacent elements (and the kernel's K tail),
        // stored from the registers.
        const bool a_each = !a_chunks && m_ok, b_each = !b_chunk && n_ok;
        if (!a_each && !b_each && p.channels_last && p.cg % 8 == 0) {
          conv_next_k(p, ci, kj, 8);
          if (!a_chunks) *reinterpret_cast<ConvChunk*>(as + at) = ConvChunk{{0, 0, 0, 0}};  // (a row past M)
          if (!b_chunk) *reinterpret_cast<ConvChunk*>(bs + at) = ConvChunk{{0, 0, 0, 0}};
        } else {
          ConvChunk va = {{0, 0, 0, 0}}, vb = {{0, 0, 0, 0}};
#pragma unroll
          for (unsigned e = 0; e < 8; ++e) {
            if (k + e < p.k) {
              unsigned short x = 0, y = 0;
              if (a_each && conv_window_at(p, row.org, ci, kj, off)) x = A[row.in + off];
              if (b_each) y = B[b_row + conv_kernel_at(p, ci, kj)];
              va.w[e / 2] |= (unsigned)x << (16u * (e % 2));
              vb.w[e / 2] |= (unsigned)y << (16u * (e % 2));
              conv_next_k(p, ci, kj);
            }
          }
          if (!a_chunks) *reinterpret_cast<ConvChunk*>(as + at) = va;
          if (!b_chunk) *reinterpret_cast<ConvChunk*>(bs + at) = vb;
        }
      }
      // Two arrivals a thread: its stores (made visible to wgmma's async proxy, released by the
      // arrival) and, once they land, its asynchronous copies (.noinc: counted among the 256).
      contract_fence_proxy_async();
      contract_mbar_arrive(full0 + 8u * s, 0);
      contract_cp_async_arrive(full0 + 8u * s);
    }
  }
  contract_copy_wait_all();  // (no copy outlives its thread)
}

template <class R, bool BF16>
__device__ void conv_wgmma_run(const KilnConvParams& p, const R r) {
  typedef WgTile<2> T;
  unsigned char* smem = contract_wgmma_shared();
  const unsigned base = contract_wgmma_address(smem);
  const unsigned full0 = base + kWgStages * T::kStageBytes, empty0 = full0 + 8u * kWgStages;
  const unsigned tid = threadIdx.x, wg = tid / 128u, warp = tid % 128u / 32u, lane = tid % 32u;
  contract_wgmma_init_ring<2>(full0, empty0, 256);
  if (wg == 0) {
    conv_wgmma_produce(p, smem, full0, empty0, tid);
    return;
  }
  const unsigned cw = wg - 1u;
  const long long tiles = p.tiles_m * p.tiles_n, work = p.groups * tiles, ksteps = (p.k + kWgTileK - 1) / kWgTileK;
  unsigned long long step = 0;
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    const long long grp = w / tiles, tt = w - grp * tiles, tm = tt / p.tiles_n, tn = tt - tm * p.tiles_n;
    float acc[64];
    contract_wgmma_consume<BF16, false, false, 2, true>(acc, base, full0, empty0, cw, lane, ksteps, step);
    // This thread's two output rows (accumulator fragment: rows g and g + 8 of its warp's 16).
    const long long row0 = tm * T::kM + 64 * cw + 16 * warp + lane / 4, col0 = tn * T::kN + 2 * (lane % 4);
    ConvRow rows[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) rows[h] = conv_row(p, grp, row0 + 8 * h < p.m ? row0 + 8 * h : 0);
#pragma unroll
    for (int i = 0; i < 64; ++i) {
      const int h = (i / 2) % 2;
      const long long om = row0 + 8 * h, on = col0 + 8 * (i / 4) + i % 2;
      if (om < p.m && on < p.n) {
        const long long ei[2] = {rows[h].ext[0] + on * p.ext_o[0], rows[h].ext[1] + on * p.ext_o[1]};
        r.put(p, rows[h].out + on * p.out_o, ei, ksteps > 0 ? acc[i] : 0.0f);
      }
    }
  }
}

template <class R>
__device__ void conv_wgmma_run_bf16(const KilnConvParams& p, const R r) {
  conv_wgmma_run<R, true>(p, r);
}
template <class R>
__device__ void conv_wgmma_run_f16(const KilnConvParams& p, const R r) {
  conv_wgmma_run<R, false>(p, r);
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_CONV_WGMMA_CUH
