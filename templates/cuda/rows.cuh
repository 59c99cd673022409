// Row-wise kernels: softmax, log_softmax, logsumexp, layer_norm, rms_norm over each row (the
// elements along one axis); the algorithm of templates/glsl/rows.glsl (one block per row, the same
// passes and the same combining order, so CUDA and Vulkan agree for one block size).
//
// R is the emitted functor (codegen/families/rows.cpp); its hooks take (p, off, j): the params,
// the row's element offsets (inputs 0..3, the output at 4) and the element's index in the row:
//   typedef ... C;                               compute type (float, double for f64)
//   static constexpr int kOp, kParams;           0 softmax, 1 log_softmax, 2 logsumexp, 3 layer_norm,
//                                                4 rms_norm; inputs after the prologue's: gamma, beta
//                                                or the bias
//   static constexpr int kBias, kCausal;         softmax: 0 no bias, 1 added, 2 a pred mask; the causal mask
//   static constexpr int kResidual;              layer_norm, rms_norm: also write h = x
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

// The block's values combined in a fixed tree (thread t with t + s, s = BLOCK/2 ... 1); every thread
// gets the result.
template <int BLOCK, class C>
__device__ __forceinline__ C rows_block(C* smem, C v, bool is_max) {
  const unsigned tid = threadIdx.x;
  smem[tid] = v;
  __syncthreads();
  for (unsigned s = BLOCK / 2; s > 0; s >>= 1) {
    if (tid < s) {
      const C a = smem[tid], b = smem[tid + s];
      smem[tid] = is_max ? ((kiln_isnan(a) || a > b) ? a : b) : a + b;
    }
    __syncthreads();
  }
  v = smem[0];
  __syncthreads();
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
template <class R, class C>
__device__ __forceinline__ void rows_online_combine(const R& r, C& m, C& s, const C m2, const C s2, const C inf) {
  if (kiln_isnan(m) || kiln_isnan(m2)) {
    m = kiln_isnan(m) ? m : m2;
    s = m;
    return;
  }
  const C mm = m > m2 ? m : m2;
  if (mm == -inf) return;  // both empty: (-inf, 0)
  s = (m == -inf ? C(0) : s * r.f_exp(m - mm)) + (m2 == -inf ? C(0) : s2 * r.f_exp(m2 - mm));
  m = mm;
}
// The block's (m, s) states combined in the fixed tree of rows_block; every thread gets the result.
template <int BLOCK, class R, class C>
__device__ __forceinline__ void rows_block_online(const R& r, C* smem, C* smem2, C& m, C& s, const C inf) {
  const unsigned tid = threadIdx.x;
  smem[tid] = m;
  smem2[tid] = s;
  __syncthreads();
  for (unsigned h = BLOCK / 2; h > 0; h >>= 1) {
    if (tid < h) {
      C a = smem[tid], b = smem2[tid];
      rows_online_combine(r, a, b, smem[tid + h], smem2[tid + h], inf);
      smem[tid] = a;
      smem2[tid] = b;
    }
    __syncthreads();
  }
  m = smem[0];
  s = smem2[0];
  __syncthreads();
}

// Welford statistics of a row too long for registers, read once: per thread the count c, the mean
// and q, the sum of squared deviations; merged in rows_block's tree (Chan et al.'s pairwise update).
template <int BLOCK, class R, class C>
__device__ __forceinline__ void rows_block_welford(const R& r, C* sc, C* sm, C* sq, C& c, C& mean, C& q) {
  const unsigned tid = threadIdx.x;
  sc[tid] = c;
  sm[tid] = mean;
  sq[tid] = q;
  __syncthreads();
  for (unsigned h = BLOCK / 2; h > 0; h >>= 1) {
    if (tid < h && sc[tid + h] > C(0)) {
      const C na = sc[tid], nb = sc[tid + h], nn = na + nb, d = sm[tid + h] - sm[tid];
      sm[tid] = sm[tid] + d * r.f_div(nb, nn);
      sq[tid] = sq[tid] + sq[tid + h] + d * d * r.f_div(na * nb, nn);
      sc[tid] = nn;
    }
    __syncthreads();
  }
  c = sc[0];
  mean = sm[0];
  q = sq[0];
  __syncthreads();
}

constexpr int kRowsCache = 16;  // elements per thread held in registers (glsl/rows.glsl: KILN_ROWS_CACHE)

// body(j, v) for each element j (value v) of this thread's part of the row, in order: from the
// registers |cx| when |cached|, else value(j) from memory. (A function template, not a generic
// lambda: NVRTC compiles no generic lambdas in device code.)
template <int BLOCK, class C, class V, class B>
__device__ __forceinline__ void rows_each(const bool cached, const C* cx, const long long n, const long long tid,
                                          const V& value, const B& body) {
  if (cached) {
#pragma unroll
    for (int i = 0; i < kRowsCache; ++i) {
      const long long j = tid + (long long)i * BLOCK;
      if (j < n) body(j, cx[i]);
    }
  } else {
    for (long long j = tid; j < n; j += BLOCK) body(j, value(j));
  }
}

template <int BLOCK, class R>
__device__ void rows_run(const KilnRowsParams& p, const R r) {
  typedef typename R::C C;
  __shared__ C smem[BLOCK];
  __shared__ C smem2[BLOCK];
  __shared__ C smem3[BLOCK];
  const long long n = p.n, tid = threadIdx.x;
  const C inf = rows_inf<C>(), eps = rows_value(p, C(0)), scale = eps;
  for (long long row = blockIdx.x; row < p.n_rows; row += gridDim.x) {
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
    const bool cached = n <= (long long)BLOCK * kRowsCache;
    C cx[kRowsCache];
    if (cached) {
#pragma unroll
      for (int i = 0; i < kRowsCache; ++i) {
        const long long j = tid + (long long)i * BLOCK;
        cx[i] = j < n ? value(j) : C(0);
      }
    }
// each(body): rows_each over this thread's part of the row.
#define KILN_ROWS_EACH_ARGS cached, cx, n, tid, value
    if (R::kOp <= 2) {
      // Registers: the maximum, then the sum of exp(x - max). Memory: both in one online read.
      C m = -inf, s = C(0);
      if (cached) {
        rows_each<BLOCK>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { m = (kiln_isnan(m) || m > v) ? m : v; });
        m = rows_block<BLOCK>(smem, m, true);
      } else {
        for (long long j = tid; j < n; j += BLOCK) rows_online_add(r, m, s, value(j), inf);
        rows_block_online<BLOCK>(r, smem, smem2, m, s, inf);
      }
      if (R::kOp == 2 && m == inf) {
        if (tid == 0) r.put(p, off, 0, inf);
        continue;
      }
      const C me = m == -inf ? C(0) : m;
      if (cached) {
        rows_each<BLOCK>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { s += r.f_exp(v - me); });
        s = rows_block<BLOCK>(smem, s, false);
      }
      if (R::kOp == 2) {
        if (tid == 0) r.put(p, off, 0, me + r.f_log(s));
      } else if (R::kOp == 1) {
        const C ls = r.f_log(s);
        rows_each<BLOCK>(KILN_ROWS_EACH_ARGS,
                         [&](long long j, C v) { r.put(p, off, j, s == C(0) ? -inf : (v - me) - ls); });
      } else {
        rows_each<BLOCK>(KILN_ROWS_EACH_ARGS, [&](long long j, C v) {
          r.put(p, off, j, s == C(0) ? C(0) : r.f_div(r.f_exp(v - me), s));
        });
      }
      continue;
    }
    const C cn = C(n);
    C mean = C(0), q = C(0);
    if (R::kOp == 3 && !cached) {  // layer_norm over memory: mean and deviations in one read
      C c = C(0);
      for (long long j = tid; j < n; j += BLOCK) {
        const C v = value(j), d = v - mean;
        c += C(1);
        mean += r.f_div(d, c);
        q += d * (v - mean);
      }
      rows_block_welford<BLOCK>(r, smem, smem2, smem3, c, mean, q);
    } else {  // registers (or rms_norm): the mean, then the squares
      if (R::kOp == 3) {
        rows_each<BLOCK>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { mean += v; });
        mean = r.f_div(rows_block<BLOCK>(smem, mean, false), cn);
      }
      rows_each<BLOCK>(KILN_ROWS_EACH_ARGS, [&](long long, C v) { q += (v - mean) * (v - mean); });
      q = rows_block<BLOCK>(smem, q, false);
    }
    const C rs = r.f_rsqrt(r.f_div(q, cn) + eps);
    rows_each<BLOCK>(KILN_ROWS_EACH_ARGS, [&](long long j, C v) {
      C y = (v - mean) * rs;
      if (R::kParams > 0) y *= r.param0(p, off, j);
      if (R::kParams > 1) y += r.param1(p, off, j);
      r.put(p, off, j, y);
      if (R::kResidual) r.put_h(p, off, j, v);
    });
  }
}
#undef KILN_ROWS_EACH_ARGS

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_ROWS_CUH
