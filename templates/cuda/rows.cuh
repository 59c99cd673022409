// Row-wise kernels: softmax, log_softmax, logsumexp, layer_norm, rms_norm over each row (the
// elements along one axis); the algorithm of templates/glsl/rows.glsl (one block per row, the same
// passes and the same combining order, so CUDA and Vulkan agree for one block size).
//
// R is the emitted functor (codegen/families/rows.cpp):
//   typedef ... C;  typedef ... T;               compute type (float, double for f64), storage type
//   static constexpr int kOp, kInputs;           0 softmax, 1 log_softmax, 2 logsumexp, 3 layer_norm,
//                                                4 rms_norm; x then gamma, beta (or softmax's bias)
//   static constexpr int kBias, kCausal;         softmax: 0 no bias, 1 added (x's dtype), 2 a pred mask;
//                                                the causal mask
//   typedef ... B;  C load_b(B) const;           the bias' storage type and its load
//   C load(T) const;  T store(C) const;
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
};
static_assert(sizeof(KilnRowsParams) == 408, "KilnRowsParams must match codegen/abi.hpp");

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

constexpr int kRowsCache = 16;  // elements per thread held in registers (glsl/rows.glsl: KILN_ROWS_CACHE)

template <int BLOCK, class R>
__device__ void rows_run(const KilnRowsParams& p, const R r) {
  typedef typename R::C C;
  typedef typename R::T T;
  __shared__ C smem[BLOCK];
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
    const T* x = reinterpret_cast<const T*>(p.in[0]) + off[0];
    const long long xs = p.axis_stride[0];
    const typename R::B* bias = reinterpret_cast<const typename R::B*>(p.in[1]) + off[1];
    const long long qi = R::kCausal ? row % (long long)p.causal_q : 0;
    // softmax's input: scale x + bias, or -inf where the mask is 0 or above the causal diagonal.
    auto value = [&](long long j) -> C {
      C v = r.load(x[j * xs]);
      if (R::kOp > 1) return v;
      v = v * scale;
      if (R::kBias == 1) v = v + r.load_b(bias[j * p.axis_stride[1]]);
      if (R::kBias == 2 && r.load_b(bias[j * p.axis_stride[1]]) == C(0)) v = -inf;
      if (R::kCausal && j > qi) v = -inf;
      return v;
    };
    T* out = reinterpret_cast<T*>(p.out) + off[4];
    const long long os = p.axis_stride[4];
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
    auto each = [&](auto&& body) {
      if (cached) {
#pragma unroll
        for (int i = 0; i < kRowsCache; ++i) {
          const long long j = tid + (long long)i * BLOCK;
          if (j < n) body(j, cx[i]);
        }
      } else {
        for (long long j = tid; j < n; j += BLOCK) body(j, value(j));
      }
    };
    if (R::kOp <= 2) {
      C m = -inf;
      each([&](long long, C v) { m = (kiln_isnan(m) || m > v) ? m : v; });
      m = rows_block<BLOCK>(smem, m, true);
      if (R::kOp == 2 && m == inf) {
        if (tid == 0) out[0] = r.store(inf);
        continue;
      }
      const C me = m == -inf ? C(0) : m;
      C s = C(0);
      each([&](long long, C v) { s += r.f_exp(v - me); });
      s = rows_block<BLOCK>(smem, s, false);
      if (R::kOp == 2) {
        if (tid == 0) out[0] = r.store(me + r.f_log(s));
      } else if (R::kOp == 1) {
        const C ls = r.f_log(s);
        each([&](long long j, C v) { out[j * os] = r.store(s == C(0) ? -inf : (v - me) - ls); });
      } else {
        each([&](long long j, C v) { out[j * os] = r.store(s == C(0) ? C(0) : r.f_div(r.f_exp(v - me), s)); });
      }
      continue;
    }
    const C cn = C(n);
    C mean = C(0);
    if (R::kOp == 3) {
      each([&](long long, C v) { mean += v; });
      mean = r.f_div(rows_block<BLOCK>(smem, mean, false), cn);
    }
    C q = C(0);
    each([&](long long, C v) { q += (v - mean) * (v - mean); });
    const C rs = r.f_rsqrt(r.f_div(rows_block<BLOCK>(smem, q, false), cn) + eps);
    const T* g = reinterpret_cast<const T*>(p.in[1]) + off[1];
    const T* b = reinterpret_cast<const T*>(p.in[2]) + off[2];
    each([&](long long j, C v) {
      C y = (v - mean) * rs;
      if (R::kInputs > 1) y *= r.load(g[j * p.axis_stride[1]]);
      if (R::kInputs > 2) y += r.load(b[j * p.axis_stride[2]]);
      out[j * os] = r.store(y);
    });
  }
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_ROWS_CUH
