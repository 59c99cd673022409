#!/usr/bin/env bash
# The main job: builds what profiling needs (the runtime, kilnc, the built-in kernel library of
# ~2,000 kernels for CUDA and Vulkan, kiln-bench), then profiles the kernels on the default device
# (KILN_DEVICE=cpu|vulkan:N|cuda:N to choose). Extra arguments go to kiln-bench (e.g. --op sum,
# --manifest my_kernels.toml). Results: build/bench-results.json (and the table printed below).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cat <<'INFO'
kiln: the main job — build (Release, build/), then kiln-bench on the default device.
  It compiles the runtime, kilnc and the built-in kernels (nvcc for sm_80/sm_90, SPIR-V in-process).
  On a 2-core machine: about 3 minutes from nothing (measured: 3 min 6 s), seconds when nothing changed
  (compiled kernels are cached machine-wide in ~/.cache/kiln/kernels, C++ objects by ccache).
INFO
scripts/build.sh kiln-bench
built=$(date +%s)
echo
./build/bench/kiln-bench --devices
echo
status=0
./build/bench/kiln-bench --json build/bench-results.json "$@" || status=$?
end=$(date +%s)

cat <<SUMMARY

kiln: done in $((end - start)) s (build $((built - start)) s, profiling $((end - built)) s); kiln-bench exit status $status.
  built:    build/bench/kiln-bench, build/kilnc, the runtime and its kernel library (build/kernels/)
  results:  build/bench-results.json (the table above; kiln-bench plot build/bench-results.json --out r.svg)
  reading:  GB/s and GFLOP/s are medians of device-timed runs; %bw and %flop are fractions of the
            copy bandwidth and FMA rate measured in the same run. "llvmpipe" (lavapipe) is Vulkan
            running on this machine's CPU: its figures measure the CPU, not a GPU.
  next:     scripts/test.sh                      the whole test suite
            build/bench/kiln-bench --all         every op x dtype and every reduction
            build/bench/kiln-bench --manifest F  your own kernels (docs/performance.md)
SUMMARY
exit $status
