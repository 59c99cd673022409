// Row-wise kernels: softmax, log_softmax, logsumexp, layer_norm, rms_norm over each row (the
// elements along one axis); the algorithm of templates/glsl/rows.glsl (the same passes; a warp per
// short row, a block per long one; the threads' values combined with warp shuffles, where Vulkan
// uses subgroup arithmetic, so the two agree to rounding, not bit for bit).
//
// R is the emitted functor (codegen/families/rows.cpp); its hooks take (p, off, j): the params,
// the row's element offsets (inputs 0..3, the output at 4) and the element's index in the row:
//   typedef ... C;                               compute type (float, double for f64)
//   static constexpr int kOp, kParams;           0 softmax, 1 log_softmax, 2 logsumexp, 3 layer_norm,
//                                                4 rms_norm; inputs after the prologue's: gamma, beta
//                                                or the bias
//   static constexpr int kBias, kCausal;         softmax: 0 no bias, 1 added, 2 a pred mask; the causal mask
//   static constexpr int kResidual;              layer_norm, rms_norm: also write h = x
//   static constexpr int kMaskedNan;             softmax, log_softmax: a fully masked row gives NaN
//                                                (as op by op), not 0 (-inf)
//   C x(p, off, j) const;                        x: the prologue over the first inputs
//   C param0(p, off, j), param1(p, off, j) const gamma and beta, or the bias (a mask: 0 or 1)
//   void put(p, off, j, C y) const;              the epilogue over y and its inputs, stored as the output
//   void put_h(p, off, j, C v) const;            h = v, stored in x's dtype
//   C f_exp(C), f_log(C), f_rsqrt(C), f_div(C, C) const   the op table's functions
// Indices are 64-bit; offsets use wrapping unsigned math, so negative strides work.
#ifndef KILN_TEMPLATES_CUDA_ROWS_CUH
#define KILN_TEMPLATES_CUDA_ROWS_CUH

#include "cuda/ops.cuh"

namespace kiln {

// The kernel ABI (codegen/abi.hpp), redeclared without <cstdint> for NVRTC.
struct KilnRowsParams {
  unsigned long long out;
  unsigned long long in[4];
  long long n_rows;
  long long n;
  long long rank;
  long long shape[6];
  long long strides[5][6];  // [operand][dim]: inputs 0..3, the output at 4
  long long axis_stride[5];
  unsigned long long value64;  // the norms' eps or softmax's scale
  unsigned value32;
  unsigned causal_q;           // causal: row r masks the elements j > r mod causal_q
  unsigned long long h;        // the residual output, laid out as the output (0: none)
};
static_assert(sizeof(KilnRowsParams) == 416, "KilnRowsParams must match codegen/abi.hpp");

template <class C> __device__ __forceinline__ C rows_inf();
template <> __device__ __forceinline__ float rows_inf<float>() { return __int_as_float(0x7F800000); }
template <> __device__ __forceinline__ double rows_inf<double>() { return __longlong_as_double(0x7FF0000000000000ll); }
__device__ __forceinline__ float rows_value(const KilnRowsParams& p, float) { return __uint_as_float(p.value32); }
__device__ __forceinline__ double rows_value(const KilnRowsParams& p, double) {
  return __longlong_as_double((long long)p.value64);
}

// Two values of a row combined: the NaN-propagating maximum (|MAX|), else the sum.
template <bool MAX, class C>
__device__ __forceinline__ C rows_combine(const C a, const C b) {
  return MAX ? ((kiln_isnan(a) || a > b) ? a : b) : a + b;
}

// |v| combined over the G threads of a row (G = 32: one warp; G = BLOCK: the block), every thread
// of the row getting the same value: a butterfly of warp shuffles (lane i with lane i ^ s, s = 16
// ... 1, the lower lane's value first, so every lane computes the same thing), then for a block
// the warps' totals from shared memory, combined in warp order. The order is fixed, so results
// are deterministic. A row of a warp needs no barrier; a block's row calls this in uniform control flow.
template <int G, bool MAX, class C>
__device__ __forceinline__ C rows_group(C* smem, C v) {
  const unsigned lane = threadIdx.x & 31u;
#pragma unroll
  for (unsigned s = 16; s > 0; s >>= 1) {
    const C o = __shfl_xor_sync(0xFFFFFFFFu, v, s);
    v = (lane & s) ? rows_combine<MAX>(o, v) : rows_combine<MAX>(v, o);
  }
  if (G > 32) {
    if (lane == 0) smem[threadIdx.x >> 5] = v;
    __syncthreads();
    v = smem[0];
#pragma unroll
    for (int w = 1; w < G / 32; ++w) v = rows_combine<MAX>(v, smem[w]);
    __syncthreads();  // smem is reused by the next combine
  }
  return v;
}

// Online softmax statistics (a row too long to hold in registers is read once for both): the
// state (m, s) is the running maximum and the sum of exp(v - m). -inf elements add nothing, NaN
// wins, and a +inf maximum makes the sum NaN (the row is NaN, as the two-pass form gives).
template <class R, class C>
__device__ __forceinline__ void rows_online_add(const R& r, C& m, C& s, const C v, const C inf) {
  if (kiln_isnan(m) || v == -inf) return;
  if (kiln_isnan(v)) {
    m = v;
    s = v;
  } else if (v > m) {
    s = s * r.f_exp(m - v) + C(1);
    m = v;
  } else {
    s += r.f_exp(v - m);
  }
}
// The row's (m, s) from its threads' states: M = max m, then the sum of s * exp(m - M) (a thread
// that saw only -inf adds 0; a NaN or a +inf maximum gives NaN, as above).
template <int G, class R, class C>
__device__ __forceinline__ void rows_group_online(const R& r, C* smem, C& m, C& s, const C inf) {
  const C mg = rows_group<G, true>(smem, m);
  s = rows_group<G, false>(smem, m == -inf ? C(0) : s * r.f_exp(m - mg));
  m = mg;
}
// The row's mean and q (the sum of squared deviations) from its threads' Welford states (count c,
// mean, q): the mean of the c * mean, then q + c (mean - M)^2 summed (Chan et al.'s decomposition
// around the row's mean; a thread with no elements adds 0).
// A mean whose sum left the range (3e38 + 3e38 is inf; +inf + -inf NaN) is summed again from the
// terms divided by n first (a rare second group sum; every thread sees the same total). A row holding
// an infinity or a NaN gives the same non-finite mean either way.
template <class C>
__device__ __forceinline__ bool rows_finite(C v) {
  return !kiln_isnan(v) && !kiln_isinf(v);
}
template <int G, class R, class C>
__device__ __forceinline__ void rows_group_welford(const R& r, C* smem, const C cn, C c, C& mean, C& q) {
  C mg = r.f_div(rows_group<G, false>(smem, c * mean), cn);
  if (!rows_finite(mg)) mg = rows_group<G, false>(smem, mean * r.f_div(c, cn));
  q = rows_group<G, false>(smem, q + c * (mean - mg) * (mean - mg));
  mean = mg;
}

constexpr int kRowsCache = 16;  // elements per thread held in registers (glsl/rows.glsl: KILN_ROWS_CACHE)

// body(j, v) for each element j (value v) of this thread's part of the row (j = tid, tid + G, ...),
// in order: from the registers |cx| when |cached|, else value(j) from memory. (A function template,
// not a generic lambda: NVRTC compiles no generic lambdas in device code.)
template <int G, class C, class V, class B>
__device__ __forceinline__ void rows_each(const bool cached, const C* cx, const long long n, const long long tid,
                                          const V& value, const B& body) {
  if (cached) {
#pragma unroll
    for (int i = 0; i < kRowsCache; ++i) {
      const long long j = tid + (long long)i * G;
      if (j < n) body(j, cx[i]);
    }
  } else {
    for (long long j = tid; j < n; j += G) body(j, value(j));
  }
}

// The rows, G threads each: BLOCK / G rows per block at a time, grid-striding over the rows.
template <int G, int BLOCK, class R>
__device__ __forceinline__ void rows_groups(const KilnRowsParams& p, const R& r, typename R::C* smem) {
  typedef typename R::C C;
  constexpr int kPerBlock = BLOCK / G;
  const long long n = p.n, tid = threadIdx.x % G;
  const C inf = rows_inf<C>(), eps = rows_value(p, C(0)), scale = eps;
  for (long long row = (long long)blockIdx.x * kPerBlock + threadIdx.x / G; row < p.n_rows;
       row += (long long)gridDim.x * kPerBlock) {
    unsigned long long off[5] = {0, 0, 0, 0, 0};
    unsigned long long rem = (unsigned long long)row;
    for (int d = (int)p.rank - 1; d >= 0; --d) {
      const unsigned long long s = (unsigned long long)p.shape[d], q = rem / s, idx = rem - q * s;
      rem = q;
#pragma unroll
      for (int k = 0; k < 5; ++k) off[k] += idx * (unsigned long long)p.strides[k][d];
    }
    const long long qi = R::kCausal ? row % (long long)p.causal_q : 0;
    // softmax's input: scale x + bias, or -inf where the mask is 0 or above the causal diagonal.
    auto value = [&](long long j) -> C {
      C v = r.x(p, off, j);
      if (R::kOp > 1) return v;
      v = v * scale;
      if (R::kBias == 1) v = v + r.param0(p, off, j);
      if (R::kBias == 2 && r.param0(p, off, j) == C(0)) v = -inf;
      if (R::kCausal && j > qi) v = -inf;
      return v;
    };
    // A row of up to kCache elements per thread is read once, into registers; a longer one is read
    // again by each pass. Both visit a thread's elements in the same order (glsl/rows.glsl).
    const bool cached = n <= (long long)G * kRowsCache;
    C cx[kRowsCache] = {};  // (set when cached; zeroed so no path reads an unset register)
    if (cached) {
#pragma unroll
      for (int i = 0; i < kRowsCache; ++i) {
        const long long j = tid + (long long)i * G;
        cx[i] = j < n ? value(j) : C(0);
      }
    }
// each(body): rows_each over this thread's part of the row.
#define KILN_ROWS_EACH_ARGS cached, cx, n, tid, value
    if (R::kOp <= 2) {
      // Registers: the maximum, then the sum of exp(x - max). Memory: both in one online read.
      C m = -inf, s = C(0);
      if (cached) {
        rows_each<G>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { m = (kiln_isnan(m) || m > v) ? m : v; });
        m = rows_group<G, true>(smem, m);
      } else {
        for (long long j = tid; j < n; j += G) rows_online_add(r, m, s, value(j), inf);
        rows_group_online<G>(r, smem, m, s, inf);
      }
      if (R::kOp == 2 && m == inf) {
        if (tid == 0) r.put(p, off, 0, inf);
        continue;
      }
      const C me = m == -inf ? C(0) : m;
      if (cached) {
        rows_each<G>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { s += r.f_exp(v - me); });
        s = rows_group<G, false>(smem, s);
      }
      if (R::kOp == 2) {
        if (tid == 0) r.put(p, off, 0, me + r.f_log(s));
      } else if (R::kOp == 1) {
        const C ls = r.f_log(s);
        rows_each<G>(KILN_ROWS_EACH_ARGS,
                     [&](long long j, C v) { r.put(p, off, j, s == C(0) && !R::kMaskedNan ? -inf : (v - me) - ls); });
      } else {
        rows_each<G>(KILN_ROWS_EACH_ARGS, [&](long long j, C v) {
          r.put(p, off, j, s == C(0) && !R::kMaskedNan ? C(0) : r.f_div(r.f_exp(v - me), s));
        });
      }
      continue;
    }
    const C cn = C(n);
    C mean = C(0), q = C(0);
    if (R::kOp == 3 && !cached) {  // layer_norm over memory: mean and deviations in one read
      C c = C(0);
      for (long long j = tid; j < n; j += G) {
        const C v = value(j), d = v - mean;
        c += C(1);
        if (kiln_isinf(d) && !kiln_isinf(v) && !kiln_isinf(mean)) {
          // v - mean left the range (values of both signs past half the largest): halves keep the
          // mean finite; the squared deviations are past the range too
          mean += r.f_div(v * C(0.5) - mean * C(0.5), c) * C(2);
          q = inf;
        } else {
          mean += r.f_div(d, c);
          q += d * (v - mean);
        }
      }
      rows_group_welford<G>(r, smem, cn, c, mean, q);
    } else {  // registers (or rms_norm): the mean, then the squares
      if (R::kOp == 3) {
        rows_each<G>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { mean += v; });
        mean = r.f_div(rows_group<G, false>(smem, mean), cn);
        if (!rows_finite(mean)) {  // the sum left the range (rows_group_welford)
          mean = C(0);
          rows_each<G>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { mean += r.f_div(v, cn); });
          mean = rows_group<G, false>(smem, mean);
        }
      }
      rows_each<G>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { q += (v - mean) * (v - mean); });
      q = rows_group<G, false>(smem, q);
    }
    const C rs = r.f_rsqrt(r.f_div(q, cn) + eps);
    // rs = 0: the squares left the range (the row is 0); halves keep v - mean from overflowing into
    // inf * 0 = NaN there (an infinite v still gives NaN).
    const C shrink = rs == C(0) ? C(0.5) : C(1);
    rows_each<G>(KILN_ROWS_EACH_ARGS, [&](long long j, C v) {
      C y = (v * shrink - mean * shrink) * rs;
      if (R::kParams > 0) y *= r.param0(p, off, j);
      if (R::kParams > 1) y += r.param1(p, off, j);
      r.put(p, off, j, y);
      if (R::kResidual) r.put_h(p, off, j, v);
    });
  }
}
#undef KILN_ROWS_EACH_ARGS

// The kernel body: a warp per row for rows of up to 32 x kRowsCache elements (no barriers; the
// plan launches BLOCK / 32 times fewer blocks), else a block per row.
template <int BLOCK, class R>
__device__ void rows_run(const KilnRowsParams& p, const R r) {
  static_assert(BLOCK >= 32 && BLOCK % 32 == 0, "rows kernels run whole warps");
  __shared__ typename R::C smem[BLOCK / 32];
  if (BLOCK > 32 && p.n <= 32ll * kRowsCache)
    rows_groups<32, BLOCK>(p, r, smem);
  else
    rows_groups<BLOCK, BLOCK>(p, r, smem);
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_ROWS_CUH
