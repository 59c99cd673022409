// Elementwise map kernels: out[i] = f(in0[i], in1[i], ...), contiguous and strided/broadcast;
// map_contiguous_multi / map_strided_multi for a map with up to kMaxMapOutputs results.
//
// F is the emitted functor: Out operator()(In...) const on *storage* types (f16 and bf16 as
// unsigned short bit patterns, pred as unsigned char); it converts to compute types itself. The
// kernels work for any grid size >= 1 (grid-stride loops) and use 64-bit indices throughout. The
// emitted instantiation unit defines the extern "C" entry points:
//   extern "C" __global__ void __launch_bounds__(256) NAME_contig(kiln::KilnMapParams p) {
//     kiln::map_contiguous<NAME_fn, Out, In...>(p, NAME_fn());
//   }
//   extern "C" __global__ void __launch_bounds__(256)
//   NAME_strided(const __grid_constant__ kiln::KilnStridedParams p) { ... map_strided ... }
// Build with --fmad=false (see cuda/ops.cuh).
#ifndef KILN_TEMPLATES_CUDA_MAP_CUH
#define KILN_TEMPLATES_CUDA_MAP_CUH

#include "cuda/ops.cuh"

namespace kiln {

// The kernel ABI (codegen/abi.hpp), redeclared without <cstdint> for NVRTC.
constexpr int kMaxMapInputs = 4;
constexpr int kMaxMapOutputs = 4;
constexpr int kMaxMapRank = 6;
struct KilnMapParams {
  unsigned long long out;
  unsigned long long in[kMaxMapInputs];
  unsigned long long n;
  unsigned long long more_out[kMaxMapOutputs - 1];  // results 1.. of a map with several
};
struct KilnStridedParams {
  unsigned long long out;
  unsigned long long in[kMaxMapInputs];
  unsigned long long n;
  long long rank;
  long long shape[kMaxMapRank];
  long long strides[kMaxMapInputs][kMaxMapRank];  // in elements; 0 broadcasts
  unsigned long long more_out[kMaxMapOutputs - 1];
};
static_assert(sizeof(KilnMapParams) == 72, "KilnMapParams must match codegen/abi.hpp");
static_assert(sizeof(KilnStridedParams) == 320, "KilnStridedParams must match codegen/abi.hpp");

// The type of a result slot a map with several results does not have (its functor takes one).
struct NoResult {};

namespace map_detail {

template <int... I> struct Seq {};
template <int N, int... I> struct MakeSeq : MakeSeq<N - 1, N - 1, I...> {};
template <int... I> struct MakeSeq<0, I...> { typedef Seq<I...> type; };

template <class... T> struct MaxSize;
template <class T> struct MaxSize<T> { static constexpr int value = int(sizeof(T)); };
template <class T, class... R> struct MaxSize<T, R...> {
  static constexpr int value = int(sizeof(T)) > MaxSize<R...>::value ? int(sizeof(T)) : MaxSize<R...>::value;
};

// The machine word moving |B| bytes in one access.
template <int B> struct Word;
template <> struct Word<16> { typedef uint4 type; };
template <> struct Word<8> { typedef uint2 type; };
template <> struct Word<4> { typedef unsigned type; };
template <> struct Word<2> { typedef unsigned short type; };

// VEC elements of T, loaded and stored as one vector access.
template <class T, int VEC> union Pack {
  typename Word<int(sizeof(T)) * VEC>::type w;
  T v[VEC];
};

template <class T, int VEC> __device__ __forceinline__ Pack<T, VEC> load_pack(const T* p) {
  Pack<T, VEC> k;
  k.w = *reinterpret_cast<const typename Word<int(sizeof(T)) * VEC>::type*>(p);
  return k;
}

template <int VEC, class F, class Out, class... In>
__device__ __forceinline__ void map_step(const F& f, Out* out, const Pack<In, VEC>&... in) {
  Pack<Out, VEC> o;
#pragma unroll
  for (int j = 0; j < VEC; ++j) o.v[j] = f(in.v[j]...);
  *reinterpret_cast<typename Word<int(sizeof(Out)) * VEC>::type*>(out) = o.w;
}

__device__ __forceinline__ unsigned long long thread_index() {
  return (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ unsigned long long thread_count() {
  return (unsigned long long)gridDim.x * blockDim.x;
}

template <class F, class Out, class... In, int... I>
__device__ __forceinline__ void map_contiguous(const KilnMapParams& p, const F& f, Seq<I...>) {
  constexpr int kVec = 16 / MaxSize<Out, In...>::value;  // elements per 16-byte access
  const unsigned long long n = p.n;
  const unsigned long long tid = thread_index(), nthreads = thread_count();
  Out* out = reinterpret_cast<Out*>(p.out);
  unsigned long long start = 0;
  if (((p.out | ... | p.in[I]) & 15ull) == 0) {
    const unsigned long long nvec = n / kVec;
    for (unsigned long long s = tid; s < nvec; s += nthreads) {
      const unsigned long long base = s * kVec;
      map_step<kVec, F, Out, In...>(f, out + base,
                                    load_pack<In, kVec>(reinterpret_cast<const In*>(p.in[I]) + base)...);
    }
    start = nvec * kVec;
  }
  for (unsigned long long i = start + tid; i < n; i += nthreads)
    out[i] = f(reinterpret_cast<const In*>(p.in[I])[i]...);
}

// Decomposes the linear output index i over shape[0..rank) (last dimension fastest) into per-input
// element offsets. Index is unsigned (when n < 2^32: cheap 32-bit division) or unsigned long long.
// Offsets use wrapping unsigned math, so negative strides work as two's complement.
template <class Index>
__device__ __forceinline__ void strided_offsets(const KilnStridedParams& p, int rank, int inputs,
                                                unsigned long long i, unsigned long long* off) {
  Index rem = Index(i);
#pragma unroll 1
  for (int d = rank - 1; d >= 0; --d) {
    const Index s = Index(p.shape[d]);
    const Index q = rem / s;
    const Index idx = rem - q * s;
    rem = q;
#pragma unroll
    for (int k = 0; k < kMaxMapInputs; ++k)
      if (k < inputs) off[k] += (unsigned long long)idx * (unsigned long long)p.strides[k][d];
  }
}

template <class Index, class F, class Out, class... In, int... I>
__device__ __forceinline__ void map_strided_loop(const KilnStridedParams& p, const F& f, Seq<I...>) {
  const unsigned long long n = p.n;
  const int rank = int(p.rank);
  const unsigned long long tid = thread_index(), nthreads = thread_count();
  Out* out = reinterpret_cast<Out*>(p.out);
  for (unsigned long long i = tid; i < n; i += nthreads) {
    unsigned long long off[kMaxMapInputs] = {0, 0, 0, 0};
    strided_offsets<Index>(p, rank, int(sizeof...(In)), i, off);
    out[i] = f(*reinterpret_cast<const In*>(p.in[I] + off[I] * sizeof(In))...);
  }
}

// ---- several results: F::operator()(O0& r0, O1& r1, O2& r2, O3& r3, In... a) stores each result
// (storage types; NoResult for the slots it does not have), result k going to out / more_out[k-1].
template <class T> struct IsResult { static constexpr bool value = true; };
template <> struct IsResult<NoResult> { static constexpr bool value = false; };

template <class T> __device__ __forceinline__ unsigned long long result_bits(unsigned long long address) {
  return IsResult<T>::value ? address : 0ull;
}
template <class T> __device__ __forceinline__ void store_result(unsigned long long address, unsigned long long i, const T& v) {
  if constexpr (IsResult<T>::value) reinterpret_cast<T*>(address)[i] = v;
}
template <class T, int VEC>
__device__ __forceinline__ void store_results(unsigned long long address, unsigned long long base, const Pack<T, VEC>& o) {
  if constexpr (IsResult<T>::value)
    *reinterpret_cast<typename Word<int(sizeof(T)) * VEC>::type*>(reinterpret_cast<T*>(address) + base) = o.w;
}

template <int VEC, class F, class O0, class O1, class O2, class O3, class... In>
__device__ __forceinline__ void map_step_multi(const F& f, const unsigned long long* out, unsigned long long base,
                                               const Pack<In, VEC>&... in) {
  Pack<O0, VEC> r0;
  Pack<O1, VEC> r1;
  Pack<O2, VEC> r2;
  Pack<O3, VEC> r3;
#pragma unroll
  for (int j = 0; j < VEC; ++j) f(r0.v[j], r1.v[j], r2.v[j], r3.v[j], in.v[j]...);
  store_results<O0, VEC>(out[0], base, r0);
  store_results<O1, VEC>(out[1], base, r1);
  store_results<O2, VEC>(out[2], base, r2);
  store_results<O3, VEC>(out[3], base, r3);
}

template <class F, class O0, class O1, class O2, class O3, class... In, int... I>
__device__ __forceinline__ void map_contiguous_multi(const KilnMapParams& p, const F& f, Seq<I...>) {
  constexpr int kVec = 16 / MaxSize<O0, O1, O2, O3, In...>::value;
  const unsigned long long n = p.n;
  const unsigned long long tid = thread_index(), nthreads = thread_count();
  const unsigned long long out[4] = {p.out, p.more_out[0], p.more_out[1], p.more_out[2]};
  const unsigned long long out_bits = result_bits<O0>(out[0]) | result_bits<O1>(out[1]) |
                                      result_bits<O2>(out[2]) | result_bits<O3>(out[3]);
  unsigned long long start = 0;
  if (((out_bits | ... | p.in[I]) & 15ull) == 0) {
    const unsigned long long nvec = n / kVec;
    for (unsigned long long s = tid; s < nvec; s += nthreads) {
      const unsigned long long base = s * kVec;
      map_step_multi<kVec, F, O0, O1, O2, O3, In...>(
          f, out, base, load_pack<In, kVec>(reinterpret_cast<const In*>(p.in[I]) + base)...);
    }
    start = nvec * kVec;
  }
  for (unsigned long long i = start + tid; i < n; i += nthreads) {
    O0 r0;
    O1 r1;
    O2 r2;
    O3 r3;
    f(r0, r1, r2, r3, reinterpret_cast<const In*>(p.in[I])[i]...);
    store_result(out[0], i, r0);
    store_result(out[1], i, r1);
    store_result(out[2], i, r2);
    store_result(out[3], i, r3);
  }
}

template <class Index, class F, class O0, class O1, class O2, class O3, class... In, int... I>
__device__ __forceinline__ void map_strided_multi_loop(const KilnStridedParams& p, const F& f, Seq<I...>) {
  const unsigned long long n = p.n;
  const int rank = int(p.rank);
  const unsigned long long tid = thread_index(), nthreads = thread_count();
  for (unsigned long long i = tid; i < n; i += nthreads) {
    unsigned long long off[kMaxMapInputs] = {0, 0, 0, 0};
    strided_offsets<Index>(p, rank, int(sizeof...(In)), i, off);
    O0 r0;
    O1 r1;
    O2 r2;
    O3 r3;
    f(r0, r1, r2, r3, *reinterpret_cast<const In*>(p.in[I] + off[I] * sizeof(In))...);
    store_result(p.out, i, r0);
    store_result(p.more_out[0], i, r1);
    store_result(p.more_out[1], i, r2);
    store_result(p.more_out[2], i, r3);
  }
}

}  // namespace map_detail

// A map with several results (NoResult for the absent slots O1..O3).
template <class F, class O0, class O1, class O2, class O3, class... In>
__device__ __forceinline__ void map_contiguous_multi(const KilnMapParams& p, F f) {
  map_detail::map_contiguous_multi<F, O0, O1, O2, O3, In...>(p, f,
                                                            typename map_detail::MakeSeq<int(sizeof...(In))>::type());
}
template <class F, class O0, class O1, class O2, class O3, class... In>
__device__ __forceinline__ void map_strided_multi(const KilnStridedParams& p, F f) {
  typedef typename map_detail::MakeSeq<int(sizeof...(In))>::type Inputs;
  if (p.n <= 0xFFFFFFFFull)
    map_detail::map_strided_multi_loop<unsigned, F, O0, O1, O2, O3, In...>(p, f, Inputs());
  else
    map_detail::map_strided_multi_loop<unsigned long long, F, O0, O1, O2, O3, In...>(p, f, Inputs());
}

template <class F, class Out, class... In>
__device__ __forceinline__ void map_contiguous(const KilnMapParams& p, F f) {
  map_detail::map_contiguous<F, Out, In...>(p, f, typename map_detail::MakeSeq<int(sizeof...(In))>::type());
}

// |p| should be a __grid_constant__ kernel parameter: the loop indexes shape and strides at run time.
template <class F, class Out, class... In>
__device__ __forceinline__ void map_strided(const KilnStridedParams& p, F f) {
  typedef typename map_detail::MakeSeq<int(sizeof...(In))>::type Inputs;
  if (p.n <= 0xFFFFFFFFull)
    map_detail::map_strided_loop<unsigned, F, Out, In...>(p, f, Inputs());
  else
    map_detail::map_strided_loop<unsigned long long, F, Out, In...>(p, f, Inputs());
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_MAP_CUH
