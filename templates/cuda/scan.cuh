// Scans: the inclusive running sum, product, max or min of each row (the elements along one axis);
// the algorithm of templates/glsl/scan.glsl (reduce-then-scan, a block per (row, segment); why not
// a decoupled look-back: codegen/families/scan.cpp). Here the block scans its threads' totals with
// warp shuffles (lane l takes lane l - d for d = 1, 2, ..., 16), then the warps' totals the same
// way in warp 0: a fixed order, so results are deterministic.
//
// R is the emitted functor (codegen/families/scan.cpp):
//   typedef ... C;  typedef ... T;        the accumulator's compute type, x's storage type
//   C load(T) const;  T store(C) const;
//   C identity() const;  C combine(C, C) const   the combiner (the op table's semantics)
// Indices are 64-bit; offsets use wrapping unsigned math, so negative strides (reverse) work.
#ifndef KILN_TEMPLATES_CUDA_SCAN_CUH
#define KILN_TEMPLATES_CUDA_SCAN_CUH

#include "cuda/ops.cuh"

namespace kiln {

// The kernel ABI (codegen/families/scan.cpp), redeclared without <cstdint> for NVRTC.
struct KilnScanParams {
  unsigned long long out;
  unsigned long long in;
  unsigned long long scratch;
  long long n_rows;
  long long n;
  long long rank;
  long long shape[6];
  long long strides[2][6];  // [in, out][dim], in elements
  long long axis_stride[2];
  long long n_split;
  long long seg;
  long long by_thread;  // 1: a thread per row (rows of at most kScanItems elements, not split)
};
static_assert(sizeof(KilnScanParams) == 232, "KilnScanParams must match codegen/families/scan.cpp");

constexpr int kScanItems = 8;  // elements a thread scans in registers per chunk (scan.cpp: kScanItems)

namespace scan_detail {

// A value moved up the warp as 32-bit words (accumulators are 4 or 8 bytes).
template <class T> __device__ __forceinline__ T shfl_up(T v, int delta) {
  constexpr int kWords = (int(sizeof(T)) + 3) / 4;
  union U {
    T t;
    int w[kWords];
  } u;
  u.t = v;
#pragma unroll
  for (int k = 0; k < kWords; ++k) u.w[k] = __shfl_up_sync(0xFFFFFFFFu, u.w[k], delta);
  return u.t;
}

template <class R, class C> __device__ __forceinline__ C warp_inclusive(const R& r, C v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    const C o = shfl_up(v, d);
    if (lane >= d) v = r.combine(o, v);
  }
  return v;
}

// The exclusive scan of |v| over the block (thread 0: nothing before it, |has_before| false);
// |total| gets the block's total. smem: BLOCK / 32 values.
template <int BLOCK, class R, class C>
__device__ __forceinline__ C block_exclusive(const R& r, C v, C* smem, C& total, bool& has_before) {
  static_assert(BLOCK % 32 == 0, "scan kernels need whole warps");
  constexpr int kWarps = BLOCK / 32;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const C incl = warp_inclusive(r, v);
  const C in_warp = shfl_up(incl, 1);  // the lanes before this one (lane > 0)
  if (lane == 31) smem[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    C t = lane < kWarps ? smem[lane] : r.identity();
    t = warp_inclusive(r, t);
    if (lane < kWarps) smem[lane] = t;
  }
  __syncthreads();
  has_before = threadIdx.x > 0;
  C before = in_warp;
  if (warp > 0) before = lane > 0 ? r.combine(smem[warp - 1], in_warp) : smem[warp - 1];
  total = smem[kWarps - 1];
  __syncthreads();  // smem is reused by the next chunk
  return before;
}

// The element offsets of row |row| over the collapsed row dimensions.
__device__ __forceinline__ void row_offsets(const KilnScanParams& p, long long row, unsigned long long& in_off,
                                            unsigned long long& out_off) {
  unsigned long long rem = (unsigned long long)row;
  in_off = 0;
  out_off = 0;
#pragma unroll 1
  for (int d = (int)p.rank - 1; d >= 0; --d) {
    const unsigned long long s = (unsigned long long)p.shape[d], q = rem / s, idx = rem - q * s;
    rem = q;
    in_off += idx * (unsigned long long)p.strides[0][d];
    out_off += idx * (unsigned long long)p.strides[1][d];
  }
}

}  // namespace scan_detail

// "scan" (kTotals false): each (row, segment) from its prefix (the spine's when split), chunk by
// chunk. "reduce" (kTotals true): the same walk without the stores, each (row, segment)'s total
// into scratch[w] — grouped exactly as the scan groups it (a thread's consecutive elements, then
// the block's threads in order, then chunk after chunk), so a total never pairs elements that are
// not neighbours (2^100 and 2^-100 alternating: every total stays finite, as every prefix does).
template <int BLOCK, bool kTotals, class R>
__device__ void scan_segments(const KilnScanParams& p, const R r) {
  typedef typename R::C C;
  typedef typename R::T T;
  __shared__ C smem[BLOCK / 32];
  const long long work = p.n_rows * p.n_split, tid = threadIdx.x;
  C* scratch = reinterpret_cast<C*>(p.scratch);
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    const long long row = w / p.n_split, s = w - row * p.n_split;
    unsigned long long in_off, out_off;
    scan_detail::row_offsets(p, row, in_off, out_off);
    const T* x = reinterpret_cast<const T*>(p.in) + in_off;
    T* y = reinterpret_cast<T*>(p.out) + out_off;
    const long long xs = p.axis_stride[0], ys = p.axis_stride[1];
    const long long lo = s * p.seg, hi = lo + p.seg < p.n ? lo + p.seg : p.n;
    C carry = !kTotals && p.n_split > 1 ? scratch[w] : r.identity();
    for (long long c0 = lo; c0 < hi; c0 += (long long)BLOCK * kScanItems) {
      const long long j0 = c0 + tid * kScanItems;
      C v[kScanItems];
      C run = r.identity();
#pragma unroll
      for (int i = 0; i < kScanItems; ++i) {
        const long long j = j0 + i;
        if (j < hi) run = i == 0 ? r.load(x[j * xs]) : r.combine(run, r.load(x[j * xs]));
        v[i] = run;
      }
      C total;
      bool has_before;
      const C before = scan_detail::block_exclusive<BLOCK>(r, run, smem, total, has_before);
      if (!kTotals) {
        const C prefix = has_before ? r.combine(carry, before) : carry;
#pragma unroll
        for (int i = 0; i < kScanItems; ++i) {
          const long long j = j0 + i;
          if (j < hi) y[j * ys] = r.store(r.combine(prefix, v[i]));
        }
      }
      carry = r.combine(carry, total);
    }
    if (kTotals && tid == 0) scratch[w] = carry;
  }
}

// A thread per row (rows of at most kScanItems elements): the combines a thread makes of its
// registers' elements in scan_segments, whose prefix for thread 0 is the identity — so the same bits.
template <int BLOCK, class R>
__device__ void scan_by_thread(const KilnScanParams& p, const R r) {
  typedef typename R::C C;
  typedef typename R::T T;
  for (long long row = (long long)blockIdx.x * BLOCK + threadIdx.x; row < p.n_rows; row += (long long)gridDim.x * BLOCK) {
    unsigned long long in_off, out_off;
    scan_detail::row_offsets(p, row, in_off, out_off);
    const T* x = reinterpret_cast<const T*>(p.in) + in_off;
    T* y = reinterpret_cast<T*>(p.out) + out_off;
    C run = r.identity();
    for (long long j = 0; j < p.n; ++j) {
      run = j == 0 ? r.load(x[j * p.axis_stride[0]]) : r.combine(run, r.load(x[j * p.axis_stride[0]]));
      y[j * p.axis_stride[1]] = r.store(r.combine(r.identity(), run));
    }
  }
}

template <int BLOCK, class R>
__device__ void scan_scan(const KilnScanParams& p, const R r) {
  if (p.by_thread) scan_by_thread<BLOCK>(p, r);
  else scan_segments<BLOCK, false>(p, r);
}

template <int BLOCK, class R>
__device__ void scan_reduce(const KilnScanParams& p, const R r) {
  scan_segments<BLOCK, true>(p, r);
}

// "spine": each row's segment totals become exclusive prefixes, in order (a thread per row).
template <int BLOCK, class R>
__device__ void scan_spine(const KilnScanParams& p, const R r) {
  typedef typename R::C C;
  C* scratch = reinterpret_cast<C*>(p.scratch);
  for (long long row = (long long)blockIdx.x * BLOCK + threadIdx.x; row < p.n_rows; row += (long long)gridDim.x * BLOCK) {
    C acc = r.identity();
    for (long long s = 0; s < p.n_split; ++s) {
      const C t = scratch[row * p.n_split + s];
      scratch[row * p.n_split + s] = acc;
      acc = r.combine(acc, t);
    }
  }
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_SCAN_CUH
