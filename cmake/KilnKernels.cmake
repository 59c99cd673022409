# Build-time kernel generation: a manifest (TOML, format in kernels/builtin.toml) -> kilnc build
# (CUDA batches + GLSL shaders + kernels.json) -> kilnc compile (nvcc -> fatbins, glslc +
# spirv-opt + spirv-val -> SPIR-V; parallel, skipping outputs whose inputs, flags and tools are
# unchanged) -> kilnc pack (registry.cpp embedding the blobs with .incbin) -> an OBJECT library.
#
#   kiln_add_kernels(<target> MANIFEST <file.toml>
#                    [FUNCTION <ns::name>]   registry function to define (default
#                                            <target>_registry; declare it like
#                                            kiln::builtin_registry in runtime/registry.hpp)
#                    [NO_CUDA] [NO_VULKAN]   leave a target out (entries get cuda_image = -1 /
#                                            empty SPIR-V)
#                    [BATCH_SIZE <n>]        kernels per nvcc translation unit (default 48)
#                    [OUTPUT_DIR <dir>])     default ${CMAKE_CURRENT_BINARY_DIR}/<target>
#   kiln_builtin_kernels(<target>)           kernels/builtin.toml -> kiln::builtin_registry()
#
# Options: KILN_BUILD_CUDA_KERNELS (nvcc at all), KILN_CUDA_ARCHS (real archs of the fatbins; PTX
# is added for the last one), KILN_KERNEL_JOBS (parallel compiler processes).

get_filename_component(KILN_KERNELS_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(KILN_KERNELS_SOURCE_DIR "${KILN_KERNELS_SOURCE_DIR}" CACHE INTERNAL "")
cmake_host_system_information(RESULT _kiln_cores QUERY NUMBER_OF_LOGICAL_CORES)
set(KILN_KERNEL_JOBS "${_kiln_cores}" CACHE STRING "Parallel nvcc/glslc processes of kilnc compile")
set(KILN_CUDA_ARCHS "80;90" CACHE STRING "Real CUDA architectures of the fatbin (PTX is added for the last)")
option(KILN_BUILD_CUDA_KERNELS "Compile the built-in kernels for CUDA with nvcc" ON)

find_program(KILN_GLSLC glslc REQUIRED)
find_program(KILN_SPIRV_OPT spirv-opt REQUIRED)
find_program(KILN_SPIRV_VAL spirv-val REQUIRED)
if(KILN_BUILD_CUDA_KERNELS)
  if(NOT CUDAToolkit_NVCC_EXECUTABLE)
    find_package(CUDAToolkit REQUIRED)
  endif()
  set(KILN_NVCC "${CUDAToolkit_NVCC_EXECUTABLE}" CACHE FILEPATH "nvcc for the kernel library")
endif()

function(kiln_add_kernels target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "NO_CUDA;NO_VULKAN" "MANIFEST;FUNCTION;BATCH_SIZE;OUTPUT_DIR" "")
  if(NOT ARG_MANIFEST)
    message(FATAL_ERROR "kiln_add_kernels(${target}): MANIFEST is required")
  endif()
  get_filename_component(manifest "${ARG_MANIFEST}" ABSOLUTE)
  if(NOT ARG_FUNCTION)
    set(ARG_FUNCTION "${target}_registry")
  endif()
  if(NOT ARG_BATCH_SIZE)
    set(ARG_BATCH_SIZE 48)
  endif()
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  if(ARG_OUTPUT_DIR)
    set(out "${ARG_OUTPUT_DIR}")
  endif()
  set(templates "${KILN_KERNELS_SOURCE_DIR}/templates")
  file(GLOB_RECURSE template_files CONFIGURE_DEPENDS "${templates}/*")

  add_custom_command(
    OUTPUT "${out}/kernels.json"
    COMMAND kilnc build --manifest "${manifest}" --out "${out}" --batch-size ${ARG_BATCH_SIZE}
    DEPENDS kilnc "${manifest}" ${template_files}
    COMMENT "kilnc build: emitting the kernels of ${ARG_MANIFEST}"
    VERBATIM)

  set(compile_args --index "${out}/kernels.json" -j ${KILN_KERNEL_JOBS} --glslc "${KILN_GLSLC}"
      --spirv-opt "${KILN_SPIRV_OPT}" --spirv-val "${KILN_SPIRV_VAL}")
  set(pack_args --index "${out}/kernels.json" --function "${ARG_FUNCTION}" --out "${out}/registry.cpp")
  if(ARG_NO_VULKAN)
    list(APPEND compile_args --no-vulkan)
  else()
    list(APPEND pack_args --spirv-dir "${out}/spirv")
  endif()
  if(KILN_BUILD_CUDA_KERNELS AND NOT ARG_NO_CUDA)
    set(gencode "")
    list(LENGTH KILN_CUDA_ARCHS n)
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      list(GET KILN_CUDA_ARCHS ${i} arch)
      if(i EQUAL last)
        list(APPEND gencode "-gencode" "arch=compute_${arch},code=[sm_${arch},compute_${arch}]")
      else()
        list(APPEND gencode "-gencode" "arch=compute_${arch},code=sm_${arch}")
      endif()
    endforeach()
    # -compress-all: fatbins 5x smaller (the driver decompresses at load), same compile time.
    string(JOIN " " nvcc_flags --fmad=false -O3 -std=c++17 -Xfatbin=-compress-all ${gencode})
    list(APPEND compile_args --nvcc "${KILN_NVCC}" --nvcc-flags "${nvcc_flags}" --cuda-include "${templates}")
    list(APPEND pack_args --cuda-dir "${out}/cuda")
  endif()

  add_custom_command(
    OUTPUT "${out}/registry.cpp"
    BYPRODUCTS "${out}/registry.cpp.cuda.bin" "${out}/registry.cpp.spirv.bin"
    COMMAND kilnc compile ${compile_args}
    COMMAND kilnc pack ${pack_args}
    DEPENDS kilnc "${out}/kernels.json" ${template_files}
    COMMENT "kilnc compile + pack: ${target} (nvcc: ${KILN_BUILD_CUDA_KERNELS}, archs ${KILN_CUDA_ARCHS})"
    USES_TERMINAL
    VERBATIM)

  add_library(${target} OBJECT "${out}/registry.cpp")
  target_include_directories(${target} PRIVATE "${KILN_KERNELS_SOURCE_DIR}")
endfunction()

function(kiln_builtin_kernels target)
  kiln_add_kernels(${target} MANIFEST "${KILN_KERNELS_SOURCE_DIR}/kernels/builtin.toml"
                   FUNCTION kiln::builtin_registry OUTPUT_DIR "${CMAKE_BINARY_DIR}/kernels")
endfunction()
