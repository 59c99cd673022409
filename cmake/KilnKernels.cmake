# Build-time kernel generation: a manifest (TOML, format in kernels/builtin.toml) -> kilnc build
# (CUDA batches + GLSL shaders + kernels.json) -> kilnc compile (nvcc -> fatbins; GLSL -> optimized,
# validated SPIR-V in-process with shaderc and SPIRV-Tools; parallel, skipping outputs whose
# inputs, flags and tools are unchanged) -> kilnc pack (registry.cpp embedding the blobs with .incbin) -> an OBJECT library.
#
#   kiln_add_kernels(<target> MANIFEST <file.toml>
#                    [TARGETS cuda vulkan]   GPU targets to compile (default both); the other's
#                                            entries get cuda_image = -1 / empty SPIR-V. A
#                                            [[kernel]] one of them cannot run stops the build
#                                            at its manifest line (give it its own `targets`)
#                    [CUDA_ARCHS <n>...]     real archs of the fatbin (default KILN_CUDA_ARCHS)
#                    [NAMESPACE <ns>]        C++ namespace of the generated functions (default
#                                            <target>); the header is <target>.hpp
#                    [FUNCTION <ns::name>]   registry function to define (default <ns>::registry)
#                    [NO_CUDA] [NO_VULKAN]   the same as leaving a target out of TARGETS
#                    [NO_HEADER]             no typed API header (the built-in library)
#                    [BATCH_SIZE <n>]        kernels per nvcc translation unit (default 48)
#                    [OUTPUT_DIR <dir>]      default ${CMAKE_CURRENT_BINARY_DIR}/<target>
#                    [RUNTIME <target>])     the runtime the kernels link: Kiln::runtime (default,
#                                            shared) or Kiln::runtime_static (nothing shared)
#   kiln_builtin_kernels(<target>)           kernels/builtin.toml -> kiln::builtin_registry()
#
# <target> is an OBJECT library holding the registry; link it to your program. Its usage
# requirements carry the folder of the generated header and, from an installed package,
# Kiln::runtime. Inside Kiln's own build the kilnc target and the source tree are used; from an
# installed package (KilnConfig.cmake) the installed kilnc and templates, set as KILN_KILNC and
# KILN_TEMPLATES_DIR before this file is included.
#
# Options: KILN_BUILD_CUDA_KERNELS (nvcc at all), KILN_CUDA_ARCHS (real archs of the fatbins; PTX
# is added for the last one), KILN_KERNEL_JOBS (parallel compiler processes), KILN_GLSL_TOOLS (run
# glslc, spirv-opt and spirv-val per shader instead of compiling in-process; the SPIR-V is the same).

get_filename_component(KILN_KERNELS_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(KILN_KERNELS_SOURCE_DIR "${KILN_KERNELS_SOURCE_DIR}" CACHE INTERNAL "")
if(NOT KILN_KILNC)                 # in Kiln's own build
  set(KILN_KILNC kilnc)
  set(KILN_TEMPLATES_DIR "${KILN_KERNELS_SOURCE_DIR}/templates")
endif()
cmake_host_system_information(RESULT _kiln_cores QUERY NUMBER_OF_LOGICAL_CORES)
set(KILN_KERNEL_JOBS "${_kiln_cores}" CACHE STRING "Parallel nvcc/glslc processes of kilnc compile")
set(KILN_CUDA_ARCHS "80;90" CACHE STRING "Real CUDA architectures of the fatbin (PTX is added for the last)")
option(KILN_BUILD_CUDA_KERNELS "Compile the built-in kernels for CUDA with nvcc" ON)

option(KILN_GLSL_TOOLS "kilnc compile runs glslc, spirv-opt and spirv-val per shader (default: in-process)" OFF)
if(KILN_GLSL_TOOLS)
  find_program(KILN_GLSLC glslc REQUIRED)
  find_program(KILN_SPIRV_OPT spirv-opt REQUIRED)
  find_program(KILN_SPIRV_VAL spirv-val REQUIRED)
endif()
if(KILN_BUILD_CUDA_KERNELS)
  if(NOT CUDAToolkit_NVCC_EXECUTABLE)
    find_package(CUDAToolkit REQUIRED)
  endif()
  set(KILN_NVCC "${CUDAToolkit_NVCC_EXECUTABLE}" CACHE FILEPATH "nvcc for the kernel library")
endif()

function(kiln_add_kernels target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "NO_CUDA;NO_VULKAN;NO_HEADER"
                        "MANIFEST;FUNCTION;NAMESPACE;BATCH_SIZE;OUTPUT_DIR;RUNTIME" "TARGETS;CUDA_ARCHS")
  if(NOT ARG_MANIFEST)
    message(FATAL_ERROR "kiln_add_kernels(${target}): MANIFEST is required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "kiln_add_kernels(${target}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  get_filename_component(manifest "${ARG_MANIFEST}" ABSOLUTE)
  if(NOT ARG_NAMESPACE)
    set(ARG_NAMESPACE "${target}")
  endif()
  if(NOT ARG_NAMESPACE MATCHES "^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$")
    message(FATAL_ERROR "kiln_add_kernels(${target}): '${ARG_NAMESPACE}' is not a C++ namespace; "
                        "give NAMESPACE <ns>")
  endif()
  if(NOT ARG_FUNCTION)
    set(ARG_FUNCTION "${ARG_NAMESPACE}::registry")
  endif()
  if(DEFINED ARG_TARGETS)
    foreach(t IN LISTS ARG_TARGETS)
      if(NOT t MATCHES "^(cuda|vulkan)$")
        message(FATAL_ERROR "kiln_add_kernels(${target}): unknown target '${t}' (cuda, vulkan)")
      endif()
    endforeach()
    if(NOT "cuda" IN_LIST ARG_TARGETS)
      set(ARG_NO_CUDA TRUE)
    endif()
    if(NOT "vulkan" IN_LIST ARG_TARGETS)
      set(ARG_NO_VULKAN TRUE)
    endif()
  endif()
  set(archs "${KILN_CUDA_ARCHS}")
  if(ARG_CUDA_ARCHS)
    set(archs "${ARG_CUDA_ARCHS}")
  endif()
  if(NOT ARG_BATCH_SIZE)
    set(ARG_BATCH_SIZE 48)
  endif()
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  if(ARG_OUTPUT_DIR)
    set(out "${ARG_OUTPUT_DIR}")
  endif()
  set(templates "${KILN_TEMPLATES_DIR}")
  file(GLOB_RECURSE template_files CONFIGURE_DEPENDS "${templates}/*")

  # The targets this build compiles: a [[kernel]] one of them cannot run stops the build at its
  # manifest line (kilnc build --targets), instead of being left out silently.
  set(requested "")
  if(NOT ARG_NO_CUDA)
    list(APPEND requested cuda)
  endif()
  if(NOT ARG_NO_VULKAN)
    list(APPEND requested vulkan)
  endif()
  if(NOT requested)
    message(FATAL_ERROR "kiln_add_kernels(${target}): NO_CUDA and NO_VULKAN leave no target to build")
  endif()
  string(JOIN "," requested ${requested})
  set(build_args --manifest "${manifest}" --out "${out}" --batch-size ${ARG_BATCH_SIZE} --targets "${requested}")
  set(build_outputs "${out}/kernels.json")
  set(header "${out}/include/${target}.hpp")
  if(NOT ARG_NO_HEADER)
    list(APPEND build_args --header "${header}" --namespace "${ARG_NAMESPACE}" --registry "${ARG_FUNCTION}")
    list(APPEND build_outputs "${header}")
  endif()
  # kilnc rewrites only the files whose content changes, and Ninja re-checks output timestamps
  # (restat), so editing one manifest kernel recompiles that kernel's shaders and batch only.
  add_custom_command(
    OUTPUT ${build_outputs}
    COMMAND ${KILN_KILNC} build ${build_args}
    DEPENDS ${KILN_KILNC} "${manifest}" ${template_files}
    COMMENT "kilnc build: emitting the kernels of ${ARG_MANIFEST}"
    VERBATIM)

  set(compile_args --index "${out}/kernels.json" -j ${KILN_KERNEL_JOBS})
  if(KILN_GLSL_TOOLS)
    list(APPEND compile_args --glslc "${KILN_GLSLC}" --spirv-opt "${KILN_SPIRV_OPT}" --spirv-val "${KILN_SPIRV_VAL}")
  endif()
  set(pack_args --index "${out}/kernels.json" --function "${ARG_FUNCTION}" --out "${out}/registry.cpp")
  if(ARG_NO_VULKAN)
    list(APPEND compile_args --no-vulkan)
  else()
    list(APPEND pack_args --spirv-dir "${out}/spirv")
  endif()
  if(KILN_BUILD_CUDA_KERNELS AND NOT ARG_NO_CUDA)
    set(gencode "")
    list(LENGTH archs n)
    math(EXPR last "${n} - 1")
    foreach(i RANGE ${last})
      list(GET archs ${i} arch)
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
    COMMAND ${KILN_KILNC} compile ${compile_args}
    COMMAND ${KILN_KILNC} pack ${pack_args}
    DEPENDS ${KILN_KILNC} "${out}/kernels.json" ${template_files}
    COMMENT "kilnc compile + pack: ${target} (nvcc: ${KILN_BUILD_CUDA_KERNELS}, archs ${archs})"
    USES_TERMINAL
    VERBATIM)

  add_library(${target} OBJECT "${out}/registry.cpp")
  if(TARGET Kiln::runtime AND NOT TARGET kiln_runtime_objects)   # from an installed package
    # One runtime only: linking the static one next to a target that brings the shared one would
    # put both in the program (two registries, two device lists).
    if(NOT ARG_RUNTIME)
      set(ARG_RUNTIME Kiln::runtime)
    endif()
    if(NOT ARG_RUNTIME STREQUAL "Kiln::runtime" AND NOT ARG_RUNTIME STREQUAL "Kiln::runtime_static")
      message(FATAL_ERROR "kiln_add_kernels(${target}): RUNTIME is Kiln::runtime or Kiln::runtime_static, not ${ARG_RUNTIME}")
    endif()
    target_link_libraries(${target} PUBLIC ${ARG_RUNTIME})
  else()
    target_include_directories(${target} PUBLIC "${KILN_KERNELS_SOURCE_DIR}")
  endif()
  if(NOT ARG_NO_HEADER)
    target_sources(${target} PRIVATE "${header}")
    target_include_directories(${target} PUBLIC "${out}/include")
  endif()
endfunction()

function(kiln_builtin_kernels target)
  kiln_add_kernels(${target} MANIFEST "${KILN_KERNELS_SOURCE_DIR}/kernels/builtin.toml" NO_HEADER
                   FUNCTION kiln::builtin_registry OUTPUT_DIR "${CMAKE_BINARY_DIR}/kernels")
endfunction()
