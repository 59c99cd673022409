#!/usr/bin/env bash
# Installs the Debian packages Kiln needs when any is missing. Idempotent: does nothing when all
# are present. Needs root or sudo only when something is missing.
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config ccache git
  libvulkan-dev libvulkan-volk-dev mesa-vulkan-drivers vulkan-validationlayers vulkan-tools
  glslc spirv-tools libshaderc-dev
  libgtest-dev libbenchmark-dev libmpfr-dev
  libtomlplusplus-dev libfmt-dev nlohmann-json3-dev libcli11-dev libxxhash-dev libdlpack-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "kiln: installing missing packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp /tmp/kiln-apt.XXXXXX.log)
  if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "kiln: apt-get failed (log: $log)" >&2
    exit 1
  fi
  echo "kiln: installed ${#missing[@]} package(s) (apt log: $log)"
fi

if [ ! -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  echo "kiln: the CUDA toolkit is required (nvcc, NVRTC, cuda.h under /usr/local/cuda)" >&2
  exit 1
fi
