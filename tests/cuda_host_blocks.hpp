// A CUDA block run on host threads, for the tests that execute whole kernel templates in CI
// (test_cuda_blocks_host.cpp, test_cuda_wgmma_host.cpp): one host thread per CUDA thread,
// __syncthreads a barrier of the block's threads, __shfl_xor_sync an exchange through memory
// between barriers of the warp's threads, __shared__ a static shared by the block. Include it
// inside the namespace the templates are included into (after <barrier>, <thread>, <vector>,
// <memory>, <cstring>, <cmath>, <stdexcept> and core/half.hpp).
#pragma once

// ---- what the templates need from CUDA ---------------------------------------------------------
struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local Dim3 threadIdx;
inline Dim3 blockIdx, gridDim;
inline std::barrier<>* block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline unsigned long long shfl_slots[1024];

inline void __syncthreads() { block_barrier->arrive_and_wait(); }
template <class T> T __shfl_xor_sync(unsigned, T v, unsigned lane_mask) {
  const unsigned t = threadIdx.x;
  std::memcpy(&shfl_slots[t], &v, sizeof v);
  warp_barriers[t / 32]->arrive_and_wait();
  T o;
  std::memcpy(&o, &shfl_slots[t ^ lane_mask], sizeof o);
  warp_barriers[t / 32]->arrive_and_wait();
  return o;
}
template <class T> T __shfl_up_sync(unsigned, T v, unsigned delta) {
  const unsigned t = threadIdx.x;
  std::memcpy(&shfl_slots[t], &v, sizeof v);
  warp_barriers[t / 32]->arrive_and_wait();
  T o = v;  // lanes below delta keep their own value
  if (t % 32 >= delta) std::memcpy(&o, &shfl_slots[t - delta], sizeof o);
  warp_barriers[t / 32]->arrive_and_wait();
  return o;
}
template <class T> T __ldg(const T* p) { return *p; }
[[noreturn]] inline void cuda_host_unsupported(const char* what) {
  throw std::logic_error(std::string(what) + " is not run here");
}
inline int __shfl_down_sync(unsigned, int, int) { cuda_host_unsupported("__shfl_down_sync"); }
#include "tests/cuda_host_shims.hpp"
#include "tests/cuda_host_ops_shims.hpp"

// Runs |body| for every block of a grid of |blocks| x |threads|: the block's threads as host
// threads, released together.
template <class F> void launch(unsigned blocks, unsigned threads, const F& body) {
  std::barrier<> block(threads);
  block_barrier = &block;
  warp_barriers.clear();
  for (unsigned w = 0; w < threads / 32; ++w) warp_barriers.push_back(std::make_unique<std::barrier<>>(32));
  gridDim = {blocks, 1, 1};
  for (unsigned b = 0; b < blocks; ++b) {
    blockIdx = {b, 0, 0};
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([&body, t] {
        threadIdx = {t, 0, 0};
        body();
      });
    for (std::thread& t : ts) t.join();
  }
  block_barrier = nullptr;
}
