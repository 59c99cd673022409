#!/usr/bin/env bash
# device-check.sh: prepares (and rehearses) a Kiln run on a lent GPU machine. See
# docs/gpu-verification.md.
#
#   scripts/device-check.sh bundle  [--build-dir DIR] [--out DIR] [--no-build] [--no-strip]
#                                   [--compress auto|gzip|xz|none]
#       Builds kiln-tests, kiln-bench and kilnc (default DIR: build-sm90, configured Release for
#       sm_90 only) and gathers into one git-ignored folder (default: .device-bundle) what the GPU
#       machine needs: the binaries (stripped), the shared libraries it likely lacks, the Vulkan
#       loader and the validation layer (its manifest pointing at the bundled .so), the PyTorch
#       peer -- packed as payload.tar.gz (xz when gzip is too big; `none` leaves a payload/ folder)
#       -- beside gpu-run.sh, which unpacks it, and MANIFEST.txt with sizes. Fails when the bundle
#       plus the working tree would exceed the device tool's 64 MiB.
#       Then, with the device tool: run {carry: [".device-bundle"],
#                                        command: "cd .device-bundle && ./gpu-run.sh $OUT"}
#
#   scripts/device-check.sh dry-run [--build-dir DIR] [--out DIR] [--no-build] [--results DIR]
#       The same bundle (default DIR: build, the preset's build, bundle under DIR/device-bundle),
#       then runs its gpu-run.sh --dry-run here: CUDA steps must skip cleanly, Vulkan runs a subset
#       of the conformance suite on lavapipe with the bundled validation layer, the bench runs
#       small. Results in DIR/device-dry-run (or --results). Exit status: gpu-run.sh's.
#
# Builds run under `nice -n 19`. Exit status: 0 ok, 1 failure, 2 bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="/usr/local/cuda/bin:$PATH"
LIMIT=$((64 * 1024 * 1024))     # the device tool's limit on what travels (working tree + carry)
WARN_AT=$((60 * 1024 * 1024))

die() { echo "device-check: $*" >&2; exit 1; }
note() { echo "device-check: $*" >&2; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

CMD=${1:-}
[[ -n "$CMD" ]] || { usage >&2; exit 2; }
shift
BUILD_DIR="" OUT="" RESULTS="" DO_BUILD=1 DO_STRIP=1 COMPRESS=auto
while (($#)); do
  case "$1" in
    --build-dir) BUILD_DIR=${2:?}; shift ;;
    --build-dir=*) BUILD_DIR=${1#*=} ;;
    --out) OUT=${2:?}; shift ;;
    --out=*) OUT=${1#*=} ;;
    --results) RESULTS=${2:?}; shift ;;
    --results=*) RESULTS=${1#*=} ;;
    --compress) COMPRESS=${2:?}; shift ;;
    --compress=*) COMPRESS=${1#*=} ;;
    --no-build) DO_BUILD=0 ;;
    --no-strip) DO_STRIP=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "device-check: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

case "$CMD" in
  bundle) BUILD_DIR=${BUILD_DIR:-build-sm90}; OUT=${OUT:-.device-bundle} ;;
  dry-run) BUILD_DIR=${BUILD_DIR:-build}; OUT=${OUT:-$BUILD_DIR/device-bundle}; RESULTS=${RESULTS:-$BUILD_DIR/device-dry-run} ;;
  -h|--help|help) usage; exit 0 ;;
  *) echo "device-check: unknown command '$CMD'" >&2; usage >&2; exit 2 ;;
esac

human() { awk -v b="$1" 'BEGIN{ printf "%.1f MiB", b / 1048576 }'; }
fsize() { stat -L -c %s "$1"; }

# ---- build -------------------------------------------------------------------------------------
build() {
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    ((DO_BUILD)) || die "$BUILD_DIR is not a configured build directory (and --no-build was given)"
    if [[ "$BUILD_DIR" == build ]]; then
      note "configuring $BUILD_DIR (cmake --preset default)"
      nice -n 19 cmake --preset default >/dev/null
    else
      note "configuring $BUILD_DIR (Release, sm_90)"
      nice -n 19 cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA_ARCHS=90 >/dev/null
    fi
  fi
  if ((DO_BUILD)); then
    note "building kiln-tests kiln-bench kilnc in $BUILD_DIR (nice -n 19)"
    nice -n 19 cmake --build "$BUILD_DIR" --target kiln-tests kiln-bench kilnc
    # kiln-accuracy exists only where libmpfr-dev is installed; its step skips without it.
    nice -n 19 cmake --build "$BUILD_DIR" --target kiln-accuracy >/dev/null 2>&1 ||
      note "kiln-accuracy not built (libmpfr-dev missing?): the GPU run's accuracy step will skip"
  fi
  for b in tests/kiln-tests bench/kiln-bench kilnc; do
    [[ -x "$BUILD_DIR/$b" ]] || die "$BUILD_DIR/$b is missing: build it first (or drop --no-build)"
  done
}

cache_var() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD_DIR/CMakeCache.txt" | head -1; }

# ---- libraries -----------------------------------------------------------------------------------
# Sonames the GPU machine provides itself: glibc, the GCC runtime, the NVIDIA driver. NVRTC is
# handled apart (big; the machine's CUDA toolkit has it).
SYSTEM_RE='^(linux-vdso|linux-gate|ld-linux[^ ]*|libc|libm|libdl|libpthread|librt|libresolv|libutil|libmvec|libanl|libnsl|libBrokenLocale|libstdc\+\+|libgcc_s|libcuda|libnvidia-[^ ]*|libGLX_nvidia|libEGL_nvidia)\.so'

resolve_soname() {  # path of a soname on this machine
  local p
  p=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk -v n="$1" '$1 == n && /x86-64/ { print $NF; exit }')
  [[ -n "$p" && -e "$p" ]] && { echo "$p"; return; }
  for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/lib; do
    [[ -e "$d/$1" ]] && { echo "$d/$1"; return; }
  done
  return 1
}

NVRTC_SONAME=""
add_deps() {  # ldd of $1: copy the non-system libraries into $2
  local line name path
  while read -r line; do
    case "$line" in
      *"=> not found"*) name=${line%% *}
        [[ "$name" == libnvrtc* ]] && { NVRTC_SONAME=$name; continue; }
        die "$(basename "$1") needs $name, which is not found here" ;;
      *"=>"*) name=${line%% *}; path=$(sed -n 's/.*=> \(\/[^ ]*\) (.*/\1/p' <<<"$line") ;;
      *) continue ;;
    esac
    [[ -n "$path" ]] || continue
    if [[ "$name" == libnvrtc* ]]; then NVRTC_SONAME=$name; NVRTC_PATH=$path; continue; fi
    [[ "$name" =~ $SYSTEM_RE ]] && continue
    if [[ ! -e "$2/$name" ]]; then cp -L "$path" "$2/$name"; chmod u+w "$2/$name"; fi
  done < <(ldd "$1" 2>&1)
}

# ---- the bundle ----------------------------------------------------------------------------------
make_bundle() {
  build
  case "$OUT" in /|"$ROOT"|"$ROOT/"|.|..|"") die "refusing --out '$OUT'" ;; esac
  case "$COMPRESS" in auto|gzip|xz|none) ;; *) die "--compress must be auto, gzip, xz or none" ;; esac
  rm -rf "$OUT"
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  local P="$OUT/payload"             # staged here, then packed (unless --compress none)
  mkdir -p "$P"/{bin,lib,lib-fallback,layers}

  local raw=0 src dst
  for b in tests/kiln-tests bench/kiln-bench kilnc tests/kiln-accuracy; do
    [[ "$b" == tests/kiln-accuracy && ! -x "$BUILD_DIR/$b" ]] && continue  # optional (MPFR)
    src="$BUILD_DIR/$b"
    dst="$P/bin/$(basename "$b")"
    raw=$((raw + $(fsize "$src")))
    if ((DO_STRIP)); then strip --strip-all -o "$dst" "$src"; else cp "$src" "$dst"; fi
    add_deps "$src" "$P/lib"
  done
  [[ ";$(cache_var KILN_CUDA_ARCHS);" == *";90;"* || ";$(cache_var KILN_CUDA_ARCHS);" == *";90a;"* ]] ||
    die "$BUILD_DIR is configured with KILN_CUDA_ARCHS=$(cache_var KILN_CUDA_ARCHS): the H100/H200 need 90"
  if command -v cuobjdump >/dev/null && ! cuobjdump --list-elf "$P/bin/kiln-tests" 2>/dev/null | grep -q sm_90; then
    die "kiln-tests embeds no sm_90 code (cuobjdump --list-elf): build with KILN_CUDA_ARCHS containing 90"
  fi

  # NVRTC: the machine's CUDA toolkit has it; bundled only if small (it is ~110 MB for CUDA 13).
  if [[ -n "${NVRTC_PATH:-}" ]]; then
    local nv; nv=$(fsize "$NVRTC_PATH")
    if (( nv < 8 * 1024 * 1024 )); then cp -L "$NVRTC_PATH" "$P/lib/$NVRTC_SONAME"
    else note "not bundling $NVRTC_SONAME ($(human "$nv")): gpu-run.sh finds it in the GPU machine's CUDA toolkit"; fi
  fi

  # Fallbacks, used there only when missing: the Vulkan loader (dlopened, so ldd does not show it),
  # libGLdispatch (the NVIDIA ICD needs it), and the GCC runtime in case the machine's is older.
  local so p
  for so in libvulkan.so.1 libGLdispatch.so.0 libstdc++.so.6 libgcc_s.so.1; do
    if p=$(resolve_soname "$so"); then cp -L "$p" "$P/lib-fallback/$so"
    elif [[ "$so" == libvulkan.so.1 ]]; then die "the Vulkan loader libvulkan.so.1 is not installed here"
    else note "no $so here: not bundled"; fi
  done

  # The validation layer, with its manifest pointing at the bundled library (relative to the
  # manifest, so the bundle works wherever it is unpacked).
  local json="" d
  for d in /usr/share/vulkan/explicit_layer.d /etc/vulkan/explicit_layer.d /usr/local/share/vulkan/explicit_layer.d; do
    [[ -f "$d/VkLayer_khronos_validation.json" ]] && { json="$d/VkLayer_khronos_validation.json"; break; }
  done
  [[ -n "$json" ]] || die "the Vulkan validation layer manifest (VkLayer_khronos_validation.json) is not installed here (apt-get install vulkan-validationlayers)"
  local lib; lib=$(sed -n 's/.*"library_path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$json" | head -1)
  case "$lib" in
    /*) ;;
    */*) lib="$(dirname "$json")/$lib" ;;
    *) lib=$(resolve_soname "$lib") || die "validation layer library $lib not found" ;;
  esac
  [[ -f "$lib" ]] || die "validation layer library $lib not found"
  cp -L "$lib" "$P/layers/libVkLayer_khronos_validation.so"
  sed 's|"library_path"[[:space:]]*:[[:space:]]*"[^"]*"|"library_path": "./libVkLayer_khronos_validation.so"|' \
    "$json" >"$P/layers/VkLayer_khronos_validation.json"
  grep -q '"library_path": "./libVkLayer_khronos_validation.so"' "$P/layers/VkLayer_khronos_validation.json" ||
    die "could not rewrite library_path in the layer manifest"
  add_deps "$lib" "$P/lib"

  cp scripts/torch_peer.py scripts/gpu_report.py "$P/"
  cp scripts/gpu-run.sh "$OUT/"
  chmod +x "$OUT/gpu-run.sh"

  local commit; commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
  [[ -n "$(git status --porcelain 2>/dev/null | head -1)" ]] && commit="$commit+dirty"
  {
    printf 'KILN_BUNDLE_SOURCE_DIR=%q\n' "$(cache_var CMAKE_HOME_DIRECTORY)"
    printf 'KILN_BUNDLE_BINARY_DIR=%q\n' "$(cd "$BUILD_DIR" && pwd)"
    printf 'KILN_BUNDLE_NVRTC=%q\n' "${NVRTC_SONAME:-libnvrtc.so.13}"
    printf 'KILN_BUNDLE_COMMIT=%q\n' "$commit"
    printf 'KILN_BUNDLE_DATE=%q\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'KILN_BUNDLE_CUDA_ARCHS=%q\n' "$(cache_var KILN_CUDA_ARCHS)"
    printf 'KILN_BUNDLE_BUILD_TYPE=%q\n' "$(cache_var CMAKE_BUILD_TYPE)"
    printf 'KILN_BUNDLE_BUILT_ON=%q\n' "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-?}"), nvcc $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  } >"$P/bundle.env"

  local listing payload_bytes envtext
  envtext=$(cat "$P/bundle.env")
  listing=$(cd "$P" && find . -type f -printf '%s\t%P\n' | sort -k2 | awk -F'\t' '{ printf "%-10d payload/%s\n", $1, $2 }')
  payload_bytes=$(find "$P" -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}')

  # Pack: gzip (fast, everywhere); xz when gzip does not fit.
  local tree_bytes packed="" method=$COMPRESS
  tree_bytes=$( (git ls-files -z -c -o --exclude-standard 2>/dev/null || true) | (xargs -0 -r stat -L -c %s 2>/dev/null || true) |
                awk '{s+=$1} END{print s+0}')
  if [[ "$method" == auto || "$method" == gzip ]]; then
    tar -C "$OUT" -cf - payload | gzip -6 >"$OUT/payload.tar.gz"
    packed="$OUT/payload.tar.gz"
    if [[ "$method" == auto ]] && (( $(fsize "$packed") + tree_bytes + 65536 > LIMIT )); then
      note "gzip leaves it over 64 MiB: packing with xz"; rm -f "$packed"; method=xz
    fi
  fi
  if [[ "$method" == xz ]]; then
    command -v xz >/dev/null || die "xz is not installed"
    tar -C "$OUT" -cf - payload | nice -n 19 xz -9 -T0 >"$OUT/payload.tar.xz"
    packed="$OUT/payload.tar.xz"
  fi
  [[ -n "$packed" ]] && rm -rf "$P"

  # Sizes: what travels (the bundle plus the working tree) must stay under 64 MiB.
  local bundle_bytes total
  if [[ "$OUT" == "$ROOT"/* ]] && ! git check-ignore -q "$OUT" 2>/dev/null; then
    note "WARNING: $OUT is not git-ignored: it would travel twice (add it to .gitignore)"
  fi
  {
    echo "Kiln device bundle"
    sed 's/^/  /' <<<"$envtext"
    echo
    echo "bytes      file (unpacked)"
    echo "$listing"
    echo
    echo "payload:      $payload_bytes bytes unpacked ($(human "$payload_bytes")); binaries before strip: $(human "$raw")"
  } >"$OUT/MANIFEST.txt"
  bundle_bytes=$(( $(find "$OUT" -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}') + 200 ))
  total=$((bundle_bytes + tree_bytes))
  {
    [[ -n "$packed" ]] && echo "packed:       $(basename "$packed") $(fsize "$packed") bytes ($(human "$(fsize "$packed")"))"
    echo "bundle:       $bundle_bytes bytes ($(human "$bundle_bytes")) as it travels"
    echo "working tree: $tree_bytes bytes ($(human "$tree_bytes")) (tracked + untracked, not ignored)"
    echo "total:        $total bytes ($(human "$total")) of the device tool's $(human "$LIMIT")"
    [[ -n "${NVRTC_SONAME:-}" && ! -e "$P/lib/$NVRTC_SONAME" ]] && echo "not bundled:  $NVRTC_SONAME (from the GPU machine's CUDA toolkit)"
  } >>"$OUT/MANIFEST.txt"
  sed -n '/^payload:/,$p' "$OUT/MANIFEST.txt" >&2
  if (( total > LIMIT )); then
    if [[ "$CMD" == bundle ]]; then
      die "TOO BIG: bundle $(human "$bundle_bytes") + working tree $(human "$tree_bytes") > 64 MiB; see $OUT/MANIFEST.txt"
    fi
    note "WARNING: over 64 MiB (this build's archs: $(cache_var KILN_CUDA_ARCHS))"
  elif (( total > WARN_AT )); then
    note "WARNING: within 4 MiB of the 64 MiB limit"
  fi
  note "bundle ready: $OUT ($(human "$bundle_bytes"))"
}

case "$CMD" in
  bundle)
    make_bundle
    cat >&2 <<EOF
device-check: on the GPU machine (device tool), one call:
  run  carry: ["$(realpath --relative-to="$ROOT" "$OUT")"]  command: "cd $(realpath --relative-to="$ROOT" "$OUT") && ./gpu-run.sh \$OUT"  timeout_s: 600
EOF
    ;;
  dry-run)
    t0=$(date +%s)
    make_bundle
    t1=$(date +%s)
    rm -rf "$RESULTS"; mkdir -p "$RESULTS"
    RESULTS=$(cd "$RESULTS" && pwd)
    rc=0
    (cd "$OUT" && KILN_DRY_RUN=1 ./gpu-run.sh "$RESULTS" --dry-run) || rc=$?
    t2=$(date +%s)
    note "dry run: bundle $((t1 - t0)) s, gpu-run.sh $((t2 - t1)) s, exit $rc; results in $RESULTS"
    exit "$rc"
    ;;
esac
