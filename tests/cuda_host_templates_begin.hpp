// Around an #include of templates/cuda/*.cuh compiled for the host (after tests/cuda_host_blocks.hpp):
// CUDA's declaration specifiers as host C++ (__shared__: a static shared by the block's host threads).
// tests/cuda_host_templates_end.hpp takes them back. No include guard: used once per include.
#define __device__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
