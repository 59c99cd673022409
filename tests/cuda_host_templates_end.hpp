// The end of tests/cuda_host_templates_begin.hpp's specifiers.
#undef __device__
#undef __forceinline__
#undef __noinline__
#undef __shared__
#undef __align__
