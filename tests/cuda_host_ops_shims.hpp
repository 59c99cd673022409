// What templates/cuda/ops.cuh needs on the host besides tests/cuda_host_shims.hpp (math names,
// bit counts, the f16 conversions), for the tests that run whole kernel templates on the host
// (test_cuda_reduce_host.cpp, test_cuda_blocks_host.cpp). Include it inside the namespace the
// template is included into, after cuda_host_shims.hpp and a declaration of
// [[noreturn]] void cuda_host_unsupported(const char* what) for what the host does not run.
inline float rsqrt(float x) { return 1 / std::sqrt(x); }
inline double rsqrt(double x) { return 1 / std::sqrt(x); }
inline float erfinvf(float) { cuda_host_unsupported("erfinvf"); }
inline double erfinv(double) { cuda_host_unsupported("erfinv"); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline unsigned kiln_host_f32_to_f16_bits(float f) { return kiln::f32_to_f16_bits(f); }
inline float kiln_host_f16_bits_to_f32(unsigned h) { return kiln::f16_bits_to_f32(std::uint16_t(h)); }
using std::ceil, std::floor, std::round, std::trunc, std::sqrt, std::exp, std::log, std::sin, std::cos, std::tan;
