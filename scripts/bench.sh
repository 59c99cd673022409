#!/usr/bin/env bash
# The main job: builds Kiln (generating and compiling the kernel library), then profiles the
# kernels on the default device (KILN_DEVICE=cpu|vulkan:N|cuda:N to choose). Extra arguments go
# to kiln-bench; results are written to build/bench-results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
./build/bench/kiln-bench --devices
./build/bench/kiln-bench --json build/bench-results.json "$@"
