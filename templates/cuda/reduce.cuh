// Reduction kernels: out[o] = R.finish(combine over r of R.prologue(r, in0[o, r], ...), n_red).
//
// R is the emitted functor (codegen/families/reduce.cpp):
//   typedef ... Acc;                                  the accumulator (a compute type, or ArgAcc<V>)
//   static constexpr int kUnroll;                     cols: loads each thread issues before combining them
//   static constexpr int kVec, kGroup;                rows: elements per run, runs per group
//   Acc identity() const;                             the combiner's identity
//   Acc prologue(long long r, In... a) const;         the fused prologue on storage-typed inputs
//   Acc combine(Acc a, Acc b) const;                  associative; arguments in index order
//   Out finish(Acc acc, long long n) const;           the epilogue, to the output's storage type
// Three entry points, all deterministic (a fixed combining order, no atomics). Work items are
// (segment s, output o) pairs, w = s * n_out + o; with n_split == 1 they are the outputs.
//   reduce_rows: one block per work item (grid-stride); the segment is cut into runs of kVec
//     consecutive elements (16 bytes of the widest input) and thread tid combines runs tid,
//     tid + BLOCK, ... in groups of kGroup runs (each group a pairwise tree, the groups in order,
//     in chunks of kReduceChunk elements), then the tail (n % kVec elements, one per thread); then
//     the block combines its threads' values in a tree: shared memory down to one warp, then warp
//     shuffles. A run is one vector load per input when the inputs are contiguous and aligned.
//   reduce_cols: one thread per work item, combining the segment's elements in order (chunked),
//     kUnroll loads in flight; or kVec neighbouring work items per thread, the same way, when their
//     elements are contiguous and aligned (one vector load per input and row, kGroup in flight).
//   reduce_final: one thread per output, combining its n_split segment accumulators in order; with
//     n_split >= kReduceFinalBlock a block per output (segments strided over threads, then the tree).
// A work item writes the finished output when n_split == 1, else its accumulator to scratch.
// Indices are 64-bit; offsets use wrapping unsigned math, so negative strides work.
#ifndef KILN_TEMPLATES_CUDA_REDUCE_CUH
#define KILN_TEMPLATES_CUDA_REDUCE_CUH

#include "cuda/ops.cuh"

namespace kiln {

// The kernel ABI (codegen/abi.hpp), redeclared without <cstdint> for NVRTC.
constexpr int kReduceInputs = 4;
constexpr int kReduceRank = 6;
constexpr int kReduceChunk = 256;
constexpr long long kReduceFinalBlock = 64;  // reduce_final: a block per output from this many segments
struct KilnReduceParams {
  unsigned long long out;
  unsigned long long in[kReduceInputs];
  long long n_out;
  long long n_red;
  long long out_rank;
  long long red_rank;
  long long out_shape[kReduceRank];
  long long red_shape[kReduceRank];
  long long out_strides[kReduceInputs][kReduceRank];
  long long red_strides[kReduceInputs][kReduceRank];
  unsigned long long scratch;  // n_split > 1: the accumulator of segment s of output o at [s * n_out + o]
  long long n_split;
  long long seg;               // elements per segment
};
static_assert(sizeof(KilnReduceParams) == 576, "KilnReduceParams must match codegen/abi.hpp");

// argmax/argmin: the candidate value and its index (-1: the identity, no candidate yet).
template <class V> struct ArgAcc {
  V v;
  long long i;
};

template <class T> __device__ __forceinline__ bool reduce_isnan(T v) { return v != v; }

// The better candidate whatever the order of a and b: NaN first, then the larger (kMax) or
// smaller value, then the lower index (or the higher with kTieHigh).
template <bool kMax, bool kTieHigh, class V>
__device__ __forceinline__ ArgAcc<V> arg_combine(ArgAcc<V> a, ArgAcc<V> b) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  const bool an = reduce_isnan(a.v), bn = reduce_isnan(b.v);
  bool take_b;
  if (an != bn) take_b = bn;
  else if (!an && a.v != b.v) take_b = kMax ? b.v > a.v : b.v < a.v;
  else take_b = kTieHigh ? b.i > a.i : b.i < a.i;
  return take_b ? b : a;
}

namespace reduce_detail {

template <int... I> struct Seq {};
template <int N, int... I> struct MakeSeq : MakeSeq<N - 1, N - 1, I...> {};
template <int... I> struct MakeSeq<0, I...> { typedef Seq<I...> type; };

// A value moved between lanes as 32-bit words (accumulators are 4, 8 or 16 bytes).
template <class T> __device__ __forceinline__ T shfl_down(T v, int delta) {
  constexpr int kWords = (int(sizeof(T)) + 3) / 4;
  union U {
    T t;
    int w[kWords];
  } u;
  u.t = v;
#pragma unroll
  for (int k = 0; k < kWords; ++k) u.w[k] = __shfl_down_sync(0xFFFFFFFFu, u.w[k], delta);
  return u.t;
}

// Element offsets of output o over the kept dimensions.
__device__ __forceinline__ void out_offsets(const KilnReduceParams& p, int inputs, long long o, unsigned long long* off) {
  unsigned long long rem = (unsigned long long)o;
#pragma unroll 1
  for (int d = int(p.out_rank) - 1; d >= 0; --d) {
    unsigned long long idx = rem;  // dimension 0: rem < its extent, no division
    if (d > 0) {
      const unsigned long long s = (unsigned long long)p.out_shape[d], q = rem / s;
      idx = rem - q * s;
      rem = q;
    }
#pragma unroll
    for (int k = 0; k < kReduceInputs; ++k)
      if (k < inputs) off[k] += idx * (unsigned long long)p.out_strides[k][d];
  }
}

// Adds the offsets of reduced element r to |off|.
__device__ __forceinline__ void red_offsets(const KilnReduceParams& p, int inputs, long long r, unsigned long long* off) {
  unsigned long long rem = (unsigned long long)r;
#pragma unroll 1
  for (int d = int(p.red_rank) - 1; d >= 0; --d) {
    unsigned long long idx = rem;
    if (d > 0) {
      const unsigned long long s = (unsigned long long)p.red_shape[d], q = rem / s;
      idx = rem - q * s;
      rem = q;
    }
#pragma unroll
    for (int k = 0; k < kReduceInputs; ++k)
      if (k < inputs) off[k] += idx * (unsigned long long)p.red_strides[k][d];
  }
}

// An input element through the read-only global path (ld.global.nc): the inputs are device memory
// that nothing writes during the launch. Loaded as the unsigned integer of its size.
template <int kSize> struct Bits;
template <> struct Bits<1> { typedef unsigned char type; };
template <> struct Bits<2> { typedef unsigned short type; };
template <> struct Bits<4> { typedef unsigned int type; };
template <> struct Bits<8> { typedef unsigned long long type; };
template <class T> __device__ __forceinline__ T load_input(unsigned long long address) {
  typedef typename Bits<int(sizeof(T))>::type U;
  const U b = __ldg(reinterpret_cast<const U*>(address));
  T t;
  memcpy(&t, &b, sizeof(T));
  return t;
}

// Reduced element j of every input: kLinear when the reduced dimensions collapsed to one (offset
// j * stride), else through the reduced shape.
template <bool kLinear, class R, class... In, int... I>
__device__ __forceinline__ typename R::Acc element(const KilnReduceParams& p, const R& r, long long j,
                                                   const unsigned long long* base, Seq<I...>) {
  unsigned long long off[kReduceInputs] = {0, 0, 0, 0};
#pragma unroll
  for (int k = 0; k < kReduceInputs; ++k) off[k] = base[k];
  if (kLinear) {
#pragma unroll
    for (int k = 0; k < kReduceInputs; ++k) off[k] += (unsigned long long)j * (unsigned long long)p.red_strides[k][0];
  } else {
    red_offsets(p, int(sizeof...(In)), j, off);
  }
  return r.prologue(j, load_input<In>(p.in[I] + off[I] * sizeof(In))...);
}

// Combines load(j) for j = first, first + step, ... < end into acc, in order, U loads at a time.
template <int U, class R, class Load>
__device__ __forceinline__ typename R::Acc combine_seq(const R& r, typename R::Acc acc, long long first, long long step,
                                                       long long end, const Load& load) {
  long long j = first;
  for (; j + step * (U - 1) < end; j += step * U) {
    typename R::Acc v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) v[u] = load(j + step * u);
#pragma unroll
    for (int u = 0; u < U; ++u) acc = r.combine(acc, v[u]);
  }
  for (; j < end; j += step) acc = r.combine(acc, load(j));
  return acc;
}

// The loads of run() and reduce_final: element j of the inputs, or accumulator s of output o.
template <bool kLinear, class R, class... In> struct InputLoad {
  const KilnReduceParams& p;
  const R& r;
  const unsigned long long* base;
  __device__ __forceinline__ typename R::Acc operator()(long long j) const {
    return element<kLinear, R, In...>(p, r, j, base, typename MakeSeq<int(sizeof...(In))>::type());
  }
};
template <class Acc> struct ScratchLoad {
  const Acc* scratch;
  long long n_out, o;
  __device__ __forceinline__ Acc operator()(long long s) const { return scratch[s * n_out + o]; }
};

// Combines elements first, first + step, ... < end in order, in chunks of kReduceChunk.
template <int U, class R, class Load>
__device__ __forceinline__ typename R::Acc run_chunks(const R& r, long long first, long long step, long long end,
                                                      const Load& load) {
  typename R::Acc total = r.identity();
  for (long long j0 = first; j0 < end; j0 += step * kReduceChunk) {
    const long long stop = j0 + step * kReduceChunk < end ? j0 + step * kReduceChunk : end;
    total = r.combine(total, combine_seq<U>(r, r.identity(), j0, step, stop, load));
  }
  return total;
}

// The test on the rank is outside the loop: the linear case's loads are address arithmetic only.
template <class R, class... In>
__device__ __forceinline__ typename R::Acc run(const KilnReduceParams& p, const R& r, long long first, long long step,
                                               long long end, const unsigned long long* base) {
  constexpr int U = R::kUnroll;  // loads in flight per thread (codegen/families/reduce.cpp)
  if (p.red_rank <= 1) return run_chunks<U>(r, first, step, end, InputLoad<true, R, In...>{p, r, base});
  return run_chunks<U>(r, first, step, end, InputLoad<false, R, In...>{p, r, base});
}

// ---- rows: runs of kVec consecutive elements -------------------------------------------------

// kBytes bytes as one load (ld.global.nc of 1 to 16 bytes).
template <int kBytes> struct Raw;
template <> struct Raw<1> { typedef unsigned char type; };
template <> struct Raw<2> { typedef unsigned short type; };
template <> struct Raw<4> { typedef unsigned int type; };
template <> struct Raw<8> { typedef uint2 type; };
template <> struct Raw<16> { typedef uint4 type; };

// One run of V elements of each input, loaded as one vector per input.
template <int V, class... In> struct RunValues {
  __device__ __forceinline__ void load(const unsigned long long*) {}
};
template <int V, class T, class... Rest> struct RunValues<V, T, Rest...> {
  T v[V];
  RunValues<V, Rest...> rest;
  __device__ __forceinline__ void load(const unsigned long long* address) {
    typedef typename Raw<V * int(sizeof(T))>::type U;
    const U raw = __ldg(reinterpret_cast<const U*>(address[0]));
    memcpy(v, &raw, sizeof(U));
    rest.load(address + 1);
  }
};
template <int K> struct RunAt {
  template <class Rs> __device__ __forceinline__ static auto& of(Rs& r) { return RunAt<K - 1>::of(r.rest); }
};
template <> struct RunAt<0> {
  template <class Rs> __device__ __forceinline__ static auto& of(Rs& r) { return r.v; }
};

// The N values combined in a fixed pairwise tree ((v0 v1) (v2 v3) ..., then pairs of pairs); the
// result in v[0].
template <int N, class R> __device__ __forceinline__ void tree(const R& r, typename R::Acc* v) {
#pragma unroll
  for (int w = 1; w < N; w *= 2)
#pragma unroll
    for (int i = 0; i + w < N; i += 2 * w) v[i] = r.combine(v[i], v[i + w]);
}

// Runs j0, j0 + step, ... (U of them), each combined in a tree of V, into g[0 .. U). kMode 0:
// one vector load per input and run (unit stride, aligned), all issued before any combine; 1:
// element by element, collapsed reduced dimensions; 2: through the reduced shape (run by run).
template <int kMode, int U, class R, class... In, int... I>
__device__ __forceinline__ void load_runs(const KilnReduceParams& p, const R& r, long long j0, long long step,
                                          const unsigned long long* base, typename R::Acc* g, Seq<I...> seq) {
  typedef typename R::Acc Acc;
  constexpr int V = R::kVec;
  if (kMode == 0) {
    RunValues<V, In...> run[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const unsigned long long j = (unsigned long long)(j0 + step * u);
      const unsigned long long address[] = {(p.in[I] + (base[I] + j) * sizeof(In))..., 0ull};
      run[u].load(address);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      Acc v[V];
#pragma unroll
      for (int i = 0; i < V; ++i) v[i] = r.prologue(j0 + step * u + i, RunAt<I>::of(run[u])[i]...);
      tree<V>(r, v);
      g[u] = v[0];
    }
  } else if (kMode == 1) {
    Acc v[U * V];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int i = 0; i < V; ++i) v[u * V + i] = element<true, R, In...>(p, r, j0 + step * u + i, base, seq);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      tree<V>(r, v + u * V);
      g[u] = v[u * V];
    }
  } else {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      Acc v[V];
#pragma unroll
      for (int i = 0; i < V; ++i) v[i] = element<false, R, In...>(p, r, j0 + step * u + i, base, seq);
      tree<V>(r, v);
      g[u] = v[0];
    }
  }
}

// The segment [first, end) cut into runs of V = kVec consecutive elements (the last n % V
// elements are the tail). Thread tid takes runs q = tid + m * BLOCK, m = 0, 1, ...: kGroup runs
// at a time, combined in a pairwise tree, the groups in order, in chunks of kReduceChunk
// elements; its leftover runs one at a time (a tree of V each); then tail element tid.
template <int kMode, int BLOCK, class R, class... In>
__device__ __forceinline__ typename R::Acc run_rows_as(const KilnReduceParams& p, const R& r, long long first,
                                                       long long end, const unsigned long long* base, int tid) {
  typedef typename R::Acc Acc;
  typedef typename MakeSeq<int(sizeof...(In))>::type S;
  constexpr int V = R::kVec, U = R::kGroup;
  constexpr long long kRunsPerChunk = kReduceChunk / V;
  const long long nruns = (end - first) / V;
  const long long runs = tid < nruns ? (nruns - tid + BLOCK - 1) / BLOCK : 0;  // this thread's
  Acc total = r.identity();
  for (long long m0 = 0; m0 < runs; m0 += kRunsPerChunk) {
    const long long stop = m0 + kRunsPerChunk < runs ? m0 + kRunsPerChunk : runs;
    Acc part = r.identity();
    long long m = m0;
    for (; m + U <= stop; m += U) {
      Acc g[U];  // a tree of V per run, then of the U runs: the pairwise tree of the U * V elements
      load_runs<kMode, U, R, In...>(p, r, first + (tid + m * BLOCK) * V, (long long)BLOCK * V, base, g, S());
      tree<U>(r, g);
      part = r.combine(part, g[0]);
    }
    for (; m < stop; ++m) {
      Acc g[1];
      load_runs<kMode, 1, R, In...>(p, r, first + (tid + m * BLOCK) * V, 0, base, g, S());
      part = r.combine(part, g[0]);
    }
    total = r.combine(total, part);
  }
  const long long t = first + nruns * V + tid;
  if (t < end) total = r.combine(total, element<kMode != 2, R, In...>(p, r, t, base, S()));
  return total;
}

// Vector loads when every input is contiguous along the reduced elements and this segment's
// runs are aligned to their size; else the same elements one by one (the same order).
template <int BLOCK, class R, class... In, int... I>
__device__ __forceinline__ typename R::Acc run_rows(const KilnReduceParams& p, const R& r, long long first,
                                                    long long end, const unsigned long long* base, int tid,
                                                    Seq<I...>) {
  if (p.red_rank > 1) return run_rows_as<2, BLOCK, R, In...>(p, r, first, end, base, tid);
  constexpr int V = R::kVec;
  bool vec = true;
  const bool unit[] = {p.red_strides[I][0] == 1 ..., true};
  const bool aligned[] = {((p.in[I] + (base[I] + (unsigned long long)first) * sizeof(In)) % (V * sizeof(In))) == 0 ...,
                          true};
#pragma unroll
  for (int k = 0; k < int(sizeof...(In)); ++k) vec = vec && unit[k] && aligned[k];
  if (vec) return run_rows_as<0, BLOCK, R, In...>(p, r, first, end, base, tid);
  return run_rows_as<1, BLOCK, R, In...>(p, r, first, end, base, tid);
}

// The block's values v (one per thread) combined in a fixed tree: thread t with t + s for
// s = BLOCK/2 ... 1 (shared memory down to one warp, then shuffles). The result is in thread 0.
template <int BLOCK, class R>
__device__ __forceinline__ typename R::Acc block_combine(const R& r, typename R::Acc* smem, int tid,
                                                         typename R::Acc v) {
  typedef typename R::Acc Acc;
  smem[tid] = v;
  __syncthreads();
#pragma unroll
  for (int s = BLOCK / 2; s >= 32; s >>= 1) {
    if (tid < s) smem[tid] = r.combine(smem[tid], smem[tid + s]);
    __syncthreads();
  }
  if (tid < 32) {
    v = smem[tid];
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) {
      const Acc other = shfl_down(v, s);
      if (tid + s < 32) v = r.combine(v, other);
    }
  }
  return v;
}

// Work item w: its output, the first element of its segment and the end of the segment.
__device__ __forceinline__ void work_item(const KilnReduceParams& p, long long w, long long* o, long long* first,
                                          long long* end) {
  const long long s = p.n_split == 1 ? 0 : w / p.n_out;  // no 64-bit division when unsplit
  *o = w - s * p.n_out;
  *first = s * p.seg;
  *end = *first + p.seg < p.n_red ? *first + p.seg : p.n_red;
}

template <class R, class Out>
__device__ __forceinline__ void put(const KilnReduceParams& p, const R& r, long long w, long long o,
                                    typename R::Acc v) {
  if (p.n_split == 1) reinterpret_cast<Out*>(p.out)[o] = r.finish(v, p.n_red);
  else reinterpret_cast<typename R::Acc*>(p.scratch)[w] = v;
}

}  // namespace reduce_detail

template <int BLOCK, class R, class Out, class... In>
__device__ __forceinline__ void reduce_rows(const KilnReduceParams& p, R r) {
  typedef typename R::Acc Acc;
  static_assert(BLOCK >= 32 && BLOCK >= R::kVec, "the tree ends in one warp; the tail takes one element a thread");
  __shared__ Acc smem[BLOCK];
  const int tid = int(threadIdx.x);
  const long long work = p.n_out * p.n_split;
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    long long o, first, end;
    reduce_detail::work_item(p, w, &o, &first, &end);
    unsigned long long base[kReduceInputs] = {0, 0, 0, 0};
    reduce_detail::out_offsets(p, int(sizeof...(In)), o, base);
    const Acc v = reduce_detail::block_combine<BLOCK>(
        r, smem, tid,
        reduce_detail::run_rows<BLOCK, R, In...>(p, r, first, end, base, tid,
                                                 typename reduce_detail::MakeSeq<int(sizeof...(In))>::type()));
    if (tid == 0) reduce_detail::put<R, Out>(p, r, w, o, v);
    __syncthreads();  // smem is reused by the next work item
  }
}

namespace reduce_detail {

// cols with W = kVec outputs per thread: W neighbouring outputs are W contiguous elements of every
// input, aligned to W of them (the inner kept dimension contiguous and a multiple of W long, every
// other stride a multiple of W, the inputs aligned, the reduced dimensions collapsed to one). codegen/families/reduce.cpp sizes the grid
// with the same test (cols_grouped there).
template <int W, class... In, int... I>
__device__ __forceinline__ bool cols_grouped(const KilnReduceParams& p, Seq<I...>) {
  if (W == 1 || p.out_rank < 1 || p.red_rank > 1 || sizeof...(In) == 0) return false;
  const int last = int(p.out_rank) - 1;
  if (p.out_shape[last] % W != 0) return false;
  const bool aligned[] = {(p.in[I] % (W * sizeof(In))) == 0 ..., true};
#pragma unroll
  for (int k = 0; k < int(sizeof...(In)); ++k) {
    if (!aligned[k] || p.out_strides[k][last] != 1) return false;
    for (int d = 0; d < last; ++d)
      if (p.out_strides[k][d] % W != 0) return false;
    if (p.red_rank == 1 && p.red_strides[k][0] % W != 0) return false;
  }
  return true;
}

// Element offsets of reduced element j of every input (collapsed reduced dimensions), from the
// output's |base|.
__device__ __forceinline__ void element_offsets(const KilnReduceParams& p, long long j, const unsigned long long* base,
                                                unsigned long long* off) {
#pragma unroll
  for (int k = 0; k < kReduceInputs; ++k) off[k] = base[k] + (unsigned long long)j * (unsigned long long)p.red_strides[k][0];
}

// The W outputs o, o + 1, ... of one thread, each combining its elements in order (chunked) as
// reduce_cols does for one: the same order, so the same results. kGroup rows in flight, one vector
// load per input and row.
// Not inlined: beside the one-output path in one function ptxas spilled registers of both.
template <int BLOCK, class R, class Out, class... In, int... I>
__device__ __noinline__ void cols_grouped_run(const KilnReduceParams& p, const R& r, Seq<I...>) {
  typedef typename R::Acc Acc;
  constexpr int W = R::kVec, U = R::kGroup, N = int(sizeof...(In));
  const long long groups = p.n_out * p.n_split / W, step = (long long)gridDim.x * BLOCK;
  for (long long q = (long long)blockIdx.x * BLOCK + threadIdx.x; q < groups; q += step) {
    long long o, first, end;
    work_item(p, q * W, &o, &first, &end);
    unsigned long long base[kReduceInputs] = {0, 0, 0, 0};
    out_offsets(p, N, o, base);
    Acc total[W];
#pragma unroll
    for (int i = 0; i < W; ++i) total[i] = r.identity();
    for (long long j0 = first; j0 < end; j0 += kReduceChunk) {
      const long long stop = j0 + kReduceChunk < end ? j0 + kReduceChunk : end;
      Acc part[W];
#pragma unroll
      for (int i = 0; i < W; ++i) part[i] = r.identity();
      long long j = j0;
      for (; j + U <= stop; j += U) {
        RunValues<W, In...> run[U];
#pragma unroll
        for (int u = 0; u < U; ++u) {
          unsigned long long off[kReduceInputs];
          element_offsets(p, j + u, base, off);
          const unsigned long long address[] = {(p.in[I] + off[I] * sizeof(In))..., 0ull};
          run[u].load(address);
        }
#pragma unroll
        for (int u = 0; u < U; ++u)
#pragma unroll
          for (int i = 0; i < W; ++i) part[i] = r.combine(part[i], r.prologue(j + u, RunAt<I>::of(run[u])[i]...));
      }
      for (; j < stop; ++j) {
        RunValues<W, In...> run;
        unsigned long long off[kReduceInputs];
        element_offsets(p, j, base, off);
        const unsigned long long address[] = {(p.in[I] + off[I] * sizeof(In))..., 0ull};
        run.load(address);
#pragma unroll
        for (int i = 0; i < W; ++i) part[i] = r.combine(part[i], r.prologue(j, RunAt<I>::of(run)[i]...));
      }
#pragma unroll
      for (int i = 0; i < W; ++i) total[i] = r.combine(total[i], part[i]);
    }
#pragma unroll
    for (int i = 0; i < W; ++i) put<R, Out>(p, r, q * W + i, o + i, total[i]);
  }
}

}  // namespace reduce_detail

template <int BLOCK, class R, class Out, class... In>
__device__ __forceinline__ void reduce_cols(const KilnReduceParams& p, R r) {
  typedef typename reduce_detail::MakeSeq<int(sizeof...(In))>::type S;
  if (reduce_detail::cols_grouped<R::kVec, In...>(p, S())) {
    reduce_detail::cols_grouped_run<BLOCK, R, Out, In...>(p, r, S());
    return;
  }
  const long long work = p.n_out * p.n_split, step = (long long)gridDim.x * BLOCK;
  for (long long w = (long long)blockIdx.x * BLOCK + threadIdx.x; w < work; w += step) {
    long long o, first, end;
    reduce_detail::work_item(p, w, &o, &first, &end);
    unsigned long long base[kReduceInputs] = {0, 0, 0, 0};
    reduce_detail::out_offsets(p, int(sizeof...(In)), o, base);
    reduce_detail::put<R, Out>(p, r, w, o, reduce_detail::run<R, In...>(p, r, first, 1, end, base));
  }
}

// With n_split >= kReduceFinalBlock a block per output: thread t combines segments t, t + BLOCK,
// ... in order, then the block tree; otherwise a thread per output, segments in order.
template <int BLOCK, class R, class Out, class... In>
__device__ __forceinline__ void reduce_final(const KilnReduceParams& p, R r) {
  typedef typename R::Acc Acc;
  const Acc* scratch = reinterpret_cast<const Acc*>(p.scratch);
  if (p.n_split >= kReduceFinalBlock) {
    __shared__ Acc smem[BLOCK];
    const int tid = int(threadIdx.x);
    for (long long o = blockIdx.x; o < p.n_out; o += gridDim.x) {
      const reduce_detail::ScratchLoad<Acc> load{scratch, p.n_out, o};
      const Acc v = reduce_detail::block_combine<BLOCK>(
          r, smem, tid, reduce_detail::combine_seq<8>(r, r.identity(), tid, BLOCK, p.n_split, load));
      if (tid == 0) reinterpret_cast<Out*>(p.out)[o] = r.finish(v, p.n_red);
      __syncthreads();  // smem is reused by the next output
    }
    return;
  }
  const long long step = (long long)gridDim.x * BLOCK;
  for (long long o = (long long)blockIdx.x * BLOCK + threadIdx.x; o < p.n_out; o += step) {
    const reduce_detail::ScratchLoad<Acc> load{scratch, p.n_out, o};
    const Acc v = reduce_detail::combine_seq<8>(r, r.identity(), 0, 1, p.n_split, load);
    reinterpret_cast<Out*>(p.out)[o] = r.finish(v, p.n_red);
  }
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_REDUCE_CUH
