#!/usr/bin/env bash
# Installs missing Debian packages, then configures and builds Kiln (Release, build/): the
# runtime, kilnc, the generated kernel library (nvcc + glslc + spirv-val), tests and kiln-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="/usr/local/cuda/bin:$PATH"
cmake --preset default >/dev/null
cmake --build --preset default
