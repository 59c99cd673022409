#!/usr/bin/env bash
# CI step "Kiln in someone else's build": installs Kiln from a build folder into PREFIX_DIR, builds
# examples/host-app against that installed package in BUILD_DIR (a separate folder, nothing from
# the source tree but the example's own files), runs it on the default device (lavapipe on CI), and
# checks that an invalid manifest fails the consumer's build with the manifest's file:line:col.
#
#   scripts/check-install.sh PREFIX_DIR BUILD_DIR [KILN_BUILD_DIR]
#
# KILN_BUILD_DIR (default build/) must be configured and built already (scripts/build.sh).
# Environment: KILN_BUILD_CUDA_KERNELS (default ON when nvcc is found) and KILN_CUDA_ARCHS
# (default 90: one arch keeps nvcc short) for the example's kernels; KILN_DEVICE to pick a device.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$(mkdir -p "$1" && cd "$1" && pwd)"
build="$(mkdir -p "$2" && cd "$2" && pwd)"
kiln_build="${3:-$root/build}"
export PATH="/usr/local/cuda/bin:$PATH"
step() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }

step "install $kiln_build to $prefix"
cmake --build "$kiln_build"
cmake --install "$kiln_build" --prefix "$prefix" >/dev/null
for f in lib/libkiln_runtime.so lib/libkiln_runtime.a bin/kilnc bin/kiln-bench lib/cmake/Kiln/KilnConfig.cmake \
         lib/pkgconfig/kiln.pc include/kiln/runtime/ops.hpp share/kiln/templates/cuda/map.cuh; do
  [[ -e "$prefix/$f" ]] || { echo "check-install: $prefix/$f is missing" >&2; exit 1; }
done
# The installed kiln-bench finds its micro-benchmarks (it said "not built" when only kiln-bench was installed).
if [[ -e "$kiln_build/bench/kiln-bench-micro" ]]; then
  "$prefix/bin/kiln-bench" micro --benchmark_list_tests | grep -q '^BM_ParseExpr$' ||
    { echo "check-install: the installed 'kiln-bench micro' does not run its micro-benchmarks" >&2; exit 1; }
fi

# The example is copied out of the source tree, so it can only find Kiln through the prefix.
step "build examples/host-app against $prefix"
rm -rf "$build/src" "$build/app" "$build/app-static"
mkdir -p "$build/src"
cp -r "$root/examples/host-app/." "$build/src/"
cuda_args=()
[[ -n "${KILN_BUILD_CUDA_KERNELS:-}" ]] && cuda_args+=("-DKILN_BUILD_CUDA_KERNELS=$KILN_BUILD_CUDA_KERNELS")
cmake -S "$build/src" -B "$build/app" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
      -DKILN_CUDA_ARCHS="${KILN_CUDA_ARCHS:-90}" "${cuda_args[@]}" >/dev/null
cmake --build "$build/app"

step "run host-app"
"$build/app/host-app"

step "the same against the static library (Kiln::runtime_static)"
cmake -S "$build/src" -B "$build/app-static" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DHOST_APP_STATIC=ON \
      -DKILN_CUDA_ARCHS="${KILN_CUDA_ARCHS:-90}" "${cuda_args[@]}" >/dev/null
cmake --build "$build/app-static" >/dev/null
"$build/app-static/host-app" | tail -1
# Statically linked means no libkiln_runtime.so anywhere in the program.
if ldd "$build/app-static/host-app" | grep -q libkiln_runtime; then
  echo "check-install: the static host-app still loads the shared runtime:" >&2
  ldd "$build/app-static/host-app" | grep libkiln_runtime >&2
  exit 1
fi

step "rebuild after a manifest edit regenerates only the edited kernel"
sed -i 's/gate \* sigmoid(gate) \* up/up * sigmoid(gate) * gate/' "$build/src/kernels.toml"   # same value, new spec
log="$build/rebuild.log"
cmake --build "$build/app" >"$log" 2>&1 || { cat "$log"; exit 1; }
grep -E "kilnc (build|compile)" "$log" || true
grep -q "kilnc compile: [0-9]* compiled, [1-9]" "$log" || { echo "check-install: nothing was reused" >&2; cat "$log"; exit 1; }
"$build/app/host-app" >/dev/null

step "an invalid manifest fails the consumer's build with file:line:col"
cat >>"$build/src/kernels.toml" <<'TOML'

[[kernel]]
name = "broken"
expr = 'x + nosuchop(x)'
inputs = ["f32"]
TOML
if cmake --build "$build/app" >"$log" 2>&1; then
  echo "check-install: the build accepted an invalid manifest" >&2; exit 1
fi
grep -E "kernels\.toml:[0-9]+:[0-9]+: " "$log" || { echo "check-install: no file:line:col message" >&2; cat "$log"; exit 1; }

step "pkg-config"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs kiln

# A package is copied or unpacked elsewhere (a container layer, a tarball, a Spack store): nothing
# in it may name the folder it was installed to. The original folder is moved away for the check,
# so a leftover absolute path fails instead of silently reading the old place.
step "the prefix moved elsewhere still works (CMake package, pkg-config, RPATH, kilnc, templates)"
moved="$build/moved-prefix"
rm -rf "$moved" "$build/src-moved" "$build/app-moved" "$build/pc-app"
mv "$prefix" "$moved"
trap 'mv "$moved" "$prefix" 2>/dev/null || true' EXIT
if grep -rlF "$prefix" "$moved/lib/cmake" "$moved/lib/pkgconfig"; then
  echo "check-install: the package files above name the install folder $prefix" >&2; exit 1
fi
mkdir -p "$build/src-moved"
cp -r "$root/examples/host-app/." "$build/src-moved/"
cmake -S "$build/src-moved" -B "$build/app-moved" -G Ninja -DCMAKE_PREFIX_PATH="$moved" \
      -DKILN_CUDA_ARCHS="${KILN_CUDA_ARCHS:-90}" "${cuda_args[@]}" >/dev/null
cmake --build "$build/app-moved" >"$log" 2>&1 || { cat "$log"; exit 1; }
"$build/app-moved/host-app" | tail -1
ldd "$build/app-moved/host-app" | grep -F "$moved/lib/libkiln_runtime.so" >/dev/null ||
  { echo "check-install: the moved host-app does not load $moved/lib/libkiln_runtime.so:" >&2; ldd "$build/app-moved/host-app" >&2; exit 1; }
"$moved/bin/kiln-bench" --devices >/dev/null
# A pkg-config consumer: the flags alone build and run a program against the moved prefix.
mkdir -p "$build/pc-app"
cat >"$build/pc-app/main.cpp" <<'CPP'
#include <kiln/kiln.hpp>
#include <cstdio>
int main() {
  auto x = kiln::Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}, kiln::device("cpu"));
  const float s = kiln::sum(x * x).to_vector<float>().at(0);
  std::printf("pkg-config consumer: sum(x * x) = %g\n", s);
  return s == 14.0f ? 0 : 1;
}
CPP
pc_flags=$(PKG_CONFIG_PATH="$moved/lib/pkgconfig" pkg-config --cflags --libs kiln)
# shellcheck disable=SC2086  # the flags are words
${CXX:-c++} -O1 -o "$build/pc-app/pc-app" "$build/pc-app/main.cpp" $pc_flags -Wl,-rpath,"$moved/lib"
"$build/pc-app/pc-app"
mv "$moved" "$prefix"
trap - EXIT

step "check-install: ok"
