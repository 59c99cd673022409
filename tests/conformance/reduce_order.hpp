// The combining order of the reduce kernels (docs/semantics.md, "Order and determinism"), emulated
// on the host for sums of T in T: what every GPU must give bit for bit (test_reduce.cpp's
// ReduceOrder on the devices; test_cuda_reduce_host.cpp runs the CUDA template itself on the host).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace kiln::conformance {

// Pairwise: (v0 v1) (v2 v3) ..., then pairs of pairs.
template <class T> T tree_of(std::vector<T> v) {
  for (std::size_t w = 1; w < v.size(); w *= 2)
    for (std::size_t i = 0; i + w < v.size(); i += 2 * w) v[i] = v[i] + v[i + w];
  return v[0];
}

// Thread t's value along a row (or segment) of n elements x[0 .. n): runs of |vec| elements, runs
// t, t + block, ... in groups of |group| (pairwise trees), the groups in order in chunks of 256
// elements, its leftover runs one at a time, then tail element t.
template <class T>
T emulated_row_thread(const T* x, std::int64_t n, std::int64_t t, std::int64_t block, std::int64_t vec, std::int64_t group) {
  const std::int64_t nruns = n / vec, per_chunk = 256 / vec;
  auto run = [&](std::int64_t q) { return tree_of(std::vector<T>(x + q * vec, x + q * vec + vec)); };
  const std::int64_t runs = t < nruns ? (nruns - t + block - 1) / block : 0;
  T total = 0;
  for (std::int64_t m0 = 0; m0 < runs; m0 += per_chunk) {
    const std::int64_t stop = std::min(m0 + per_chunk, runs);
    T part = 0;
    std::int64_t m = m0;
    for (; m + group <= stop; m += group) {
      std::vector<T> g;
      for (std::int64_t u = 0; u < group; ++u) g.push_back(run(t + (m + u) * block));
      part = part + tree_of(g);
    }
    for (; m < stop; ++m) part = part + run(t + m * block);
    total = total + part;
  }
  if (nruns * vec + t < n) total = total + x[nruns * vec + t];
  return total;
}

// The block's tree over its threads' values: thread t with t + h for h = block/2 ... 1.
template <class T> T block_tree(std::vector<T> v) {
  for (std::size_t h = v.size() / 2; h > 0; h /= 2)
    for (std::size_t t = 0; t < h; ++t) v[t] = v[t] + v[t + h];
  return v[0];
}

// One row reduced by one block.
template <class T> T emulated_row_sum(const T* x, std::int64_t n, std::int64_t block, std::int64_t vec, std::int64_t group) {
  std::vector<T> threads(static_cast<std::size_t>(block));
  for (std::int64_t t = 0; t < block; ++t) threads[std::size_t(t)] = emulated_row_thread(x, n, t, block, vec, group);
  return block_tree(threads);
}

// A column segment (one thread): its elements in order, in chunks of 256.
template <class T> T emulated_col_segment(const std::vector<T>& x) {
  T total = 0;
  for (std::size_t j0 = 0; j0 < x.size(); j0 += 256) {
    T part = 0;
    for (std::size_t j = j0; j < std::min(x.size(), j0 + 256); ++j) part = part + x[j];
    total = total + part;
  }
  return total;
}

}  // namespace kiln::conformance
