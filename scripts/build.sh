#!/usr/bin/env bash
# Installs missing Debian packages, then configures and builds Kiln (Release, build/). With no
# arguments: everything (runtime, kilnc, the built-in kernel library, tests, kiln-bench and its
# micro-benchmarks). With targets (e.g. kiln-bench): only those and what they need.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="/usr/local/cuda/bin:$PATH"
# In CI (CI=true) every warning fails the build (KILN_WERROR); locally warnings are printed.
werror=OFF
[[ "${CI:-}" == true ]] && werror=ON
# Configure quietly but keep Kiln's summary (CUDA found or not, kernel targets, archs) visible.
log=$(mktemp)
if ! cmake --preset default -DKILN_WERROR=$werror >"$log" 2>&1; then
  cat "$log"
  rm -f "$log"
  exit 1
fi
sed -n '/-- Kiln /,/-Werror/p' "$log"
rm -f "$log"
if (($#)); then
  cmake --build --preset default --target "$@"
else
  cmake --build --preset default
fi
