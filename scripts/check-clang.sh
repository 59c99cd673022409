#!/usr/bin/env bash
# The whole build with clang and -Werror (CI): GCC's build is warning-free by scripts/build.sh in
# CI; this keeps clang's -Wall -Wextra clean too (build-clang/, no nvcc: the CUDA kernel library is
# GCC's job; the SPIR-V of the built-in kernels is reused from build/).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
if [ -d build/kernels/spirv ] && [ ! -d build-clang/kernels/spirv ]; then
  mkdir -p build-clang/kernels && cp -a build/kernels/spirv build-clang/kernels/
fi
CC=clang CXX=clang++ nice -n 19 cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON \
  -DKILN_BUILD_CUDA_KERNELS=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
nice -n 19 cmake --build build-clang
echo "== check-clang: warning-free with clang $(clang++ -dumpversion) -Wall -Wextra -Werror ($(( $(date +%s) - t0 )) s)"
