// The CUDA driver API entry points Kiln uses, as an X-macro table (in the style of IREE's
// dynamic_symbol_tables.h). Every entry is resolved at run time through cuGetProcAddress from
// libcuda.so.1; nothing links against libcuda.
//
// Usage: #define KILN_CU_SYMBOL(name) ... then #include this file (no include guard on purpose).
// Inside the macro, `#name` is the base API name ("cuMemAlloc", what cuGetProcAddress wants) and
// `name` expands through cuda.h's versioning macros to the ABI the header declares
// (cuMemAlloc -> cuMemAlloc_v2), so decltype(&::name) is the matching function type.
// Symbols are requested for CUDA 12.0 (see cuda_driver.cpp), whose ABIs match cuda.h for all of
// the entries below.
#ifndef KILN_CU_SYMBOL
#error "define KILN_CU_SYMBOL(name) before including cuda_symbols.hpp"
#endif

// Initialization, versions, errors.
KILN_CU_SYMBOL(cuInit)
KILN_CU_SYMBOL(cuDriverGetVersion)
KILN_CU_SYMBOL(cuGetErrorName)
KILN_CU_SYMBOL(cuGetErrorString)
// Devices.
KILN_CU_SYMBOL(cuDeviceGet)
KILN_CU_SYMBOL(cuDeviceGetCount)
KILN_CU_SYMBOL(cuDeviceGetName)
KILN_CU_SYMBOL(cuDeviceGetAttribute)
KILN_CU_SYMBOL(cuDeviceTotalMem)
// Contexts.
KILN_CU_SYMBOL(cuDevicePrimaryCtxRetain)
KILN_CU_SYMBOL(cuDevicePrimaryCtxRelease)
KILN_CU_SYMBOL(cuCtxSetCurrent)
KILN_CU_SYMBOL(cuCtxSynchronize)
// Memory.
KILN_CU_SYMBOL(cuMemAlloc)
KILN_CU_SYMBOL(cuMemFree)
KILN_CU_SYMBOL(cuMemGetInfo)
KILN_CU_SYMBOL(cuMemHostAlloc)
KILN_CU_SYMBOL(cuMemFreeHost)
KILN_CU_SYMBOL(cuMemcpyHtoDAsync)
KILN_CU_SYMBOL(cuMemcpyDtoHAsync)
KILN_CU_SYMBOL(cuMemcpyDtoDAsync)
KILN_CU_SYMBOL(cuMemsetD8Async)
// Streams and events.
KILN_CU_SYMBOL(cuStreamCreate)
KILN_CU_SYMBOL(cuStreamDestroy)
KILN_CU_SYMBOL(cuStreamSynchronize)
KILN_CU_SYMBOL(cuEventCreate)
KILN_CU_SYMBOL(cuEventDestroy)
KILN_CU_SYMBOL(cuEventRecord)
KILN_CU_SYMBOL(cuEventQuery)
KILN_CU_SYMBOL(cuEventSynchronize)
KILN_CU_SYMBOL(cuEventElapsedTime)
// Modules and launches.
KILN_CU_SYMBOL(cuModuleLoadDataEx)
KILN_CU_SYMBOL(cuModuleUnload)
KILN_CU_SYMBOL(cuModuleGetFunction)
KILN_CU_SYMBOL(cuFuncGetAttribute)
KILN_CU_SYMBOL(cuLaunchKernel)
// Kernels with dynamic shared memory (a module global <symbol>_shared_bytes) and TMA tensor maps.
KILN_CU_SYMBOL(cuModuleGetGlobal)
KILN_CU_SYMBOL(cuMemcpyDtoH)
KILN_CU_SYMBOL(cuFuncSetAttribute)
KILN_CU_SYMBOL(cuTensorMapEncodeTiled)
// Graphs (kiln::jit's replay: Stream::record_graph).
KILN_CU_SYMBOL(cuGraphCreate)
KILN_CU_SYMBOL(cuGraphDestroy)
KILN_CU_SYMBOL(cuGraphAddKernelNode)
KILN_CU_SYMBOL(cuGraphInstantiateWithFlags)
KILN_CU_SYMBOL(cuGraphExecDestroy)
KILN_CU_SYMBOL(cuGraphLaunch)
