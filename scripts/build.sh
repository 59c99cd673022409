#!/usr/bin/env bash
# Installs missing Debian packages, then configures and builds Kiln (Release, build/): the
# runtime, kilnc, the generated kernel library (nvcc; GLSL in-process with shaderc), tests and kiln-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="/usr/local/cuda/bin:$PATH"
# In CI (CI=true) every warning fails the build (KILN_WERROR); locally warnings are printed.
werror=OFF
[[ "${CI:-}" == true ]] && werror=ON
cmake --preset default -DKILN_WERROR=$werror >/dev/null
cmake --build --preset default
