#!/usr/bin/env bash
# Sanitizer builds and runs (docs/reliability.md), one CI step:
#   asan: ASan+UBSan build (CMake preset "asan", build-asan/); runs the unit tests (CPU, Vulkan
#         runtime, reliability, threads) and a subset of the Vulkan conformance suite.
#   tsan: TSan build (preset "tsan", build-tsan/, no built-in kernel library: tensor ops compile
#         just in time); runs the threading and runtime tests.
# Usage: scripts/check-sanitizers.sh [asan|tsan|all]   (default all). Any sanitizer report fails.
# Both builds leave out nvcc (KILN_BUILD_CUDA_KERNELS=OFF): the CUDA tests skip without a GPU.
# Suppressions (third-party driver code only, each with its reason) are in scripts/sanitizers/:
# lavapipe and the validation layer (LSan), lavapipe (TSan).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
root=$PWD
nice="nice -n 19"
export KILN_VK_PIPELINE_CACHE=0   # no state from earlier runs

step() { echo "== check-sanitizers: $*"; }
elapsed() { echo "== check-sanitizers: $1 took $(( $(date +%s) - $2 )) s"; }

# The SPIR-V of the built-in kernels is the same in every build: reuse it (kilnc compile skips
# outputs whose inputs, flags and tools are unchanged).
seed_kernels() {
  if [ -d build/kernels/spirv ] && [ ! -d "$1/kernels/spirv" ]; then
    mkdir -p "$1/kernels" && cp -a build/kernels/spirv "$1/kernels/"
  fi
}

# gcc's TSan runtime cannot map its shadow memory with the kernel's default 32 bits of mmap
# randomization (vm.mmap_rnd_bits); run without ASLR when setarch is there.
no_aslr() { if command -v setarch >/dev/null; then setarch "$(uname -m)" -R "$@"; else "$@"; fi; }

run_asan() {
  local t0; t0=$(date +%s)
  step "asan: build"
  seed_kernels build-asan
  $nice cmake --preset asan >/dev/null
  $nice cmake --build --preset asan
  elapsed "asan build" "$t0"
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:check_initialization_order=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$root/scripts/sanitizers/lsan.supp:print_suppressions=0"
  local t1; t1=$(date +%s)
  step "asan: unit tests"
  # KILN_SKIP_LARGE: the 2^31-element CPU test runs in the main suite (2 GiB twice is too much here).
  # The two largest NVRTC programs (every reduce kernel; the Hopper kernels) run in the main suite
  # only: under ASan's allocator NVRTC took 214 s and 58 s for them, over half of this step, and
  # the emitters that feed them run here in the smaller Emit* and Families cases.
  (cd build-asan && KILN_SKIP_LARGE=1 $nice tests/kiln-tests --gtest_brief=1 \
     --gtest_filter='-Vulkan/*:Cuda/*:Families.ReduceKernelsCompileWithNvrtc:CudaWgmmaOnHost.KernelsCompileForSm90aOnly')
  step "asan: Vulkan conformance subset"
  (cd build-asan && $nice tests/kiln-tests --gtest_brief=1 \
     --gtest_filter='Vulkan/*/add_*:Vulkan/*/as_type_f32*:Vulkan/*/select*:Vulkan/*/exp_*:Vulkan/*/divide_*:Vulkan/Scan.EveryAxisAndViews:Vulkan/Scan.BitIdenticalReruns:-*large*')
  elapsed "asan tests" "$t1"
}

run_tsan() {
  local t0; t0=$(date +%s)
  step "tsan: build"
  $nice cmake --preset tsan >/dev/null
  # The runtime-only test binary when tests/CMakeLists.txt defines it (less to build), else all.
  local target=kiln-tests
  if grep -q "kiln-runtime-tests" build-tsan/build.ninja; then target=kiln-runtime-tests; fi
  $nice cmake --build --preset tsan --target "$target"
  elapsed "tsan build" "$t0"
  export TSAN_OPTIONS="suppressions=$root/scripts/sanitizers/tsan.supp:halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0"
  local t1; t1=$(date +%s)
  step "tsan: threading and runtime tests"
  (cd build-tsan && no_aslr $nice "tests/$target" --gtest_brief=1 \
     --gtest_filter='AllDevices/Threads.*:ThreadsJit.*:VulkanRuntime.*:CudaRuntime.*:Reliability.*:VulkanReliability.*:-*Past2To31*')
  elapsed "tsan tests" "$t1"
}

case "$what" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all) run_asan; run_tsan ;;
  *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;;
esac
step "passed ($what)"
