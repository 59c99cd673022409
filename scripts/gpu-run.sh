#!/usr/bin/env bash
# gpu-run.sh: runs Kiln's checks from a device bundle (made by `scripts/device-check.sh bundle`) on
# a machine with an NVIDIA GPU, and writes three files into OUTDIR (the device tool brings back at
# most 8): summary.txt, run.log and results.tar, rewritten after every step, which holds
#   summary.txt        each step: status, exit code, seconds, tests passed/failed/skipped; bench table
#   tests-unit.json    gtest JSON: unit tests (CudaRuntime, VulkanRuntime, Tensor, Ops, codegen ...)
#   tests-cuda.json    gtest JSON: the conformance suite on cuda:0
#   tests-vulkan.json  gtest JSON: the conformance suite on vulkan:0 with the validation layer on
#   bench-cuda.json    kiln-bench --json on cuda:0
#   bench-vulkan.json  kiln-bench --json on vulkan:0
#   torch-peer.json    the same ops (and a cuBLAS GEMM peak) timed through PyTorch
#   accuracy.json      kiln-accuracy: max ulp per float op x dtype on cuda:0 and vulkan:0 against MPFR
# run.log holds everything the steps printed (nvidia-smi, devices, gtest, sanitizers, bench,
# accuracy.md); shard reports and step logs stay in a work folder.
# `python3 scripts/gpu_report.py results OUTDIR --out bench/results/` reads the tar.
#
# Usage (from the bundle folder; on the device machine OUTDIR is $OUT):
#   ./gpu-run.sh OUTDIR [--dry-run] [--budget SECONDS] [STEP ...]
# Steps, in the order they run (default: cuda vulkan bench-cuda bench-vulkan torch memcheck racecheck accuracy):
#   cuda          the conformance suite on cuda:0 in KILN_SHARDS concurrent processes, and beside it
#                 the unit tests (whose default device there is cuda:0): rows `cuda` and `unit`
#   vulkan        the conformance suite on vulkan:0 (the NVIDIA driver), validation layer on, sharded
#   bench-cuda    kiln-bench on cuda:0: its peaks (copy, FMA, cuBLAS) and headline cases, with
#                 --peer torch (PyTorch eager and torch.compile in the same run) when PyTorch is there
#   bench-vulkan  kiln-bench on vulkan:0 (the Vulkan/CUDA ratio on the same GPU)
#   torch         torch_peer.py: PyTorch's own kernels and cuBLAS GEMM peaks through torch.matmul
#   memcheck      compute-sanitizer memcheck on a small CUDA subset (elementwise, runtime, reductions)
#   racecheck     compute-sanitizer racecheck on the same subset (the reduce kernels' shared memory)
#   accuracy      kiln-accuracy on cuda:0 and vulkan:0: max ulp per float op x dtype against MPFR
# Nameable too: unit (alone). (The `env` step, which sets up and prints the machine,
# always runs first.) Every step is time-boxed; together they stay inside --budget seconds (default
# 450: one device call of at most 8 minutes with the unpacking, leaving time in a 15-minute lease to
# start the machine and rerun one step). A step that no longer fits is reported NOT-RUN, to be run
# in a second call by naming it. A failing step does not stop the others, and every step writes its
# files and the summary as soon as it ends, so a call cut short keeps what finished.
#
# --dry-run (or KILN_DRY_RUN=1): for a machine without a GPU (CI, lavapipe). The CUDA steps expect
# "no device" and skip; Vulkan runs a small subset of the conformance suite; the bench runs small.
#
# Environment overrides: KILN_UNIT_FILTER, KILN_CUDA_FILTER, KILN_VK_FILTER, KILN_SAN_FILTER,
# KILN_BENCH_SIZE (elements), KILN_BENCH_ARGS (extra kiln-bench arguments), KILN_SHARDS (concurrent
# conformance processes; default: a quarter of the cores, 1 to 6, twice that for Vulkan), KILN_GPU_BUDGET_S.
#
# Exit status: 0 when every step passed (or skipped as expected), 1 when a step failed or did not
# fit in the budget (NOT-RUN), 2 on bad usage.
set -uo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUTDIR=""
DRY=${KILN_DRY_RUN:-0}
[[ "$DRY" == "0" || -z "$DRY" ]] && DRY=0 || DRY=1
BUDGET=${KILN_GPU_BUDGET_S:-450}
MIN_STEP_S=${KILN_MIN_STEP_S:-30}  # a step with less time left than this is NOT-RUN, not started to time out
ALL_STEPS=(cuda vulkan bench-cuda bench-vulkan torch memcheck unit racecheck accuracy)
DEFAULT_STEPS=(cuda vulkan bench-cuda bench-vulkan torch memcheck racecheck accuracy)
STEPS=()
while (($#)); do
  case "$1" in
    --dry-run) DRY=1 ;;
    --budget) BUDGET=${2:?--budget needs seconds}; shift ;;
    --budget=*) BUDGET=${1#--budget=} ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "gpu-run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *)
      if [[ -z "$OUTDIR" ]]; then OUTDIR=$1
      elif [[ " ${ALL_STEPS[*]} env " == *" $1 "* ]]; then [[ "$1" != env ]] && STEPS+=("$1")
      else echo "gpu-run.sh: unknown step '$1' (steps: ${ALL_STEPS[*]})" >&2; exit 2
      fi ;;
  esac
  shift
done
if [[ -z "$OUTDIR" ]]; then echo "gpu-run.sh: OUTDIR missing" >&2; usage >&2; exit 2; fi
((${#STEPS[@]})) || STEPS=("${DEFAULT_STEPS[@]}")
SHARDS=${KILN_SHARDS:-$(( $(nproc 2>/dev/null || echo 4) / 4 ))}
(( SHARDS < 1 )) && SHARDS=1
(( SHARDS > 6 )) && SHARDS=6
# The Vulkan suite spends most of its time in the driver's shader compiler (CPU), so it runs in
# twice as many processes (at most 12): at 4 it ran past its 120 s on an H100 machine's 16 cores.
VK_SHARDS=${KILN_SHARDS:-$(( SHARDS * 2 ))}
(( VK_SHARDS > 12 )) && VK_SHARDS=12
mkdir -p "$OUTDIR" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)

T_START=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kiln-gpu-run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG="$OUTDIR/run.log"
SUMMARY="$OUTDIR/summary.txt"
# The steps' result files go to RES and, after every step, into OUTDIR/results.tar: the device
# tool brings back at most 8 files, and a call cut short keeps what finished.
RES="$WORK/results"
mkdir -p "$RES"
ROWS="$WORK/rows.tsv"       # step \t status \t rc \t seconds \t tests \t note
: >"$LOG"; : >"$ROWS"
PY=$(command -v python3 || true)

log() { printf '%s\n' "$*" | tee -a "$LOG"; }
now() { date +%s.%N; }
elapsed() { echo $(( $(date +%s) - T_START )); }
remaining() { echo $(( BUDGET - $(elapsed) )); }

# ---- bundle contents: payload/ or payload.tar.{gz,xz}, unpacked into $WORK ------------------------
PAYLOAD=""
if [[ -d "$BUNDLE/payload" ]]; then
  PAYLOAD="$BUNDLE/payload"
else
  for a in "$BUNDLE"/payload.tar.gz "$BUNDLE"/payload.tar.xz; do
    [[ -f "$a" ]] || continue
    mkdir -p "$WORK/unpacked"
    if ! tar -xf "$a" -C "$WORK/unpacked" 2>>"$LOG"; then
      [[ -n "$PY" ]] && "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$a" "$WORK/unpacked" 2>>"$LOG"
    fi
    [[ -d "$WORK/unpacked/payload/bin" ]] && PAYLOAD="$WORK/unpacked/payload"
    break
  done
fi
if [[ -z "$PAYLOAD" ]]; then
  echo "gpu-run.sh: no payload/ or payload.tar.* next to $0 (or it did not unpack): make the bundle with scripts/device-check.sh bundle" | tee -a "$LOG" >&2
  printf 'Kiln GPU run: FAIL: the bundle has no payload (see run.log)\n' >"$SUMMARY"
  exit 1
fi
BIN="$PAYLOAD/bin"
TESTS="$BIN/kiln-tests"
BENCH="$BIN/kiln-bench"
REPORT="$PAYLOAD/gpu_report.py"
[[ -f "$PAYLOAD/bundle.env" ]] && source "$PAYLOAD/bundle.env"
KILN_BUNDLE_NVRTC=${KILN_BUNDLE_NVRTC:-libnvrtc.so.13}

# ---- environment: libraries, Vulkan driver and layer, CUDA tools ------------------------------
LDCONFIG=$(command -v ldconfig 2>/dev/null || echo /sbin/ldconfig)
have_lib() {  # is soname $1 resolvable without the bundle's fallbacks?
  local d
  "$LDCONFIG" -p 2>/dev/null | grep -q "^[[:space:]]*$1 " && return 0
  IFS=: read -ra _dirs <<<"${LD_LIBRARY_PATH:-}"
  for d in "${_dirs[@]}"; do [[ -n "$d" && -e "$d/$1" ]] && return 0; done
  return 1
}
find_first() {  # first existing path among the globs given
  local g f
  for g in "$@"; do for f in $g; do [[ -e "$f" ]] && { echo "$f"; return 0; }; done; done
  return 1
}
prepend_ld() { [[ -n "$1" ]] && export LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; }
append_ld() { [[ -n "$1" ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$1"; }

setup_env() {
  ENV_NOTES=()
  export LD_LIBRARY_PATH="$PAYLOAD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

  # The NVIDIA driver libraries (libcuda.so.1 for CUDA, libGLX_nvidia.so.0 for Vulkan), in case the
  # machine's loader path does not list them.
  local d
  if ! have_lib libcuda.so.1; then
    d=$(find_first /usr/local/nvidia/lib64/libcuda.so.1 /usr/lib64/libcuda.so.1 /usr/local/nvidia/lib/libcuda.so.1 \
          /usr/lib/x86_64-linux-gnu/nvidia/current/libcuda.so.1 2>/dev/null) && append_ld "$(dirname "$d")"
  fi

  # NVRTC (the tests link it) and cuBLAS (kiln-bench opens it for its peaks) come from the
  # machine's CUDA toolkit, or from PyTorch's nvidia wheels: NVRTC is ~110 MB, too big to bundle.
  local so cand roots="" r
  [[ -n "$PY" ]] && roots=$("$PY" -c 'import site; print(" ".join(site.getsitepackages()+[site.getusersitepackages()]))' 2>/dev/null)
  for so in "$KILN_BUNDLE_NVRTC" libcublas.so.13 libcublasLt.so.13; do
    have_lib "$so" && continue
    [[ -e "$PAYLOAD/lib/$so" ]] && continue
    cand=$(find_first "/usr/local/cuda/lib64/$so" "/usr/local/cuda/targets/x86_64-linux/lib/$so" \
             "/usr/local/cuda-*/lib64/$so" "/usr/local/cuda-*/targets/x86_64-linux/lib/$so" "/usr/local/cuda/lib/$so" 2>/dev/null)
    if [[ -z "$cand" ]]; then
      for r in $roots; do
        cand=$(find "$r/nvidia" -maxdepth 4 -name "$so" 2>/dev/null | head -1)
        [[ -n "$cand" ]] && break
      done
    fi
    if [[ -n "$cand" ]]; then append_ld "$(dirname "$cand")"; ENV_NOTES+=("$so: $cand")
    elif [[ "$so" == "$KILN_BUNDLE_NVRTC" ]]; then ENV_NOTES+=("$so NOT FOUND (the tests cannot start)")
    else ENV_NOTES+=("$so not found (kiln-bench has no cuBLAS peak)"); fi
  done

  # Vulkan: the machine's loader if it has one, else the bundled one (same for libGLdispatch, which
  # the NVIDIA ICD needs, and libstdc++ if the machine's is older than the build's).
  mkdir -p "$WORK/fallback"
  local f name
  for f in "$PAYLOAD"/lib-fallback/*; do
    [[ -e "$f" ]] || continue
    name=$(basename "$f")
    if [[ "$DRY" == 1 && "$name" == libvulkan.so.1 ]] || ! have_lib "$name"; then
      ln -sf "$f" "$WORK/fallback/$name"; ENV_NOTES+=("using bundled $name")
    fi
  done
  append_ld "$WORK/fallback"
  if [[ -e "$PAYLOAD/lib-fallback/libstdc++.so.6" && -x "$BIN/kilnc" ]] &&
     "$BIN/kilnc" --help 2>&1 | grep -q "GLIBCXX_\|CXXABI_"; then
    ln -sf "$PAYLOAD/lib-fallback/libstdc++.so.6" "$WORK/fallback/"
    [[ -e "$PAYLOAD/lib-fallback/libgcc_s.so.1" ]] && ln -sf "$PAYLOAD/lib-fallback/libgcc_s.so.1" "$WORK/fallback/"
    prepend_ld "$WORK/fallback"; ENV_NOTES+=("the machine's libstdc++ is too old: using the bundled one")
  fi

  # The validation layer: the bundled one only.
  export VK_LAYER_PATH="$PAYLOAD/layers"
  unset VK_ADD_LAYER_PATH VK_INSTANCE_LAYERS VK_LOADER_LAYERS_ENABLE 2>/dev/null || true

  # The Vulkan driver: on a GPU machine the NVIDIA ICD only (so vulkan:0 is the GPU); headless
  # images keep its manifest under /usr/local/nvidia where the loader does not look.
  if [[ "$DRY" == 0 ]]; then
    local icd
    icd=$(find_first /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
            /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json \
            '/usr/share/vulkan/icd.d/nvidia*.json' '/etc/vulkan/icd.d/nvidia*.json' \
            '/usr/local/nvidia/share/vulkan/icd.d/nvidia*.json' 2>/dev/null)
    if [[ -n "$icd" ]]; then
      export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
      ENV_NOTES+=("Vulkan ICD: $icd")
      local icdlib
      icdlib=$(sed -n 's/.*"library_path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$icd" | head -1)
      if [[ -n "$icdlib" && "$icdlib" != */* ]] && ! have_lib "$icdlib"; then
        d=$(find_first "/usr/local/nvidia/lib64/$icdlib" "/usr/lib64/$icdlib" "/usr/local/nvidia/lib/$icdlib" 2>/dev/null) &&
          append_ld "$(dirname "$d")" && ENV_NOTES+=("ICD library: $d")
      fi
    else
      ENV_NOTES+=("no NVIDIA Vulkan ICD manifest found: the loader's default search is used")
    fi
  fi
  export KILN_CACHE_DIR="$WORK/cache"   # fresh JIT / pipeline caches

  # The tests read fixtures from the source tree and run kilnc from the build tree at the paths
  # they were built with: point those paths at this checkout and at the bundle when they are absent.
  local repo
  repo=$(cd "$BUNDLE/.." && pwd)
  if [[ -n "${KILN_BUNDLE_SOURCE_DIR:-}" && ! -e "$KILN_BUNDLE_SOURCE_DIR/tests/data" && -d "$repo/tests/data" ]]; then
    if [[ ! -e "$KILN_BUNDLE_SOURCE_DIR" ]] && mkdir -p "$(dirname "$KILN_BUNDLE_SOURCE_DIR")" 2>/dev/null &&
       ln -s "$repo" "$KILN_BUNDLE_SOURCE_DIR" 2>/dev/null; then
      ENV_NOTES+=("linked $KILN_BUNDLE_SOURCE_DIR -> $repo (test fixtures)")
    else
      ENV_NOTES+=("cannot provide $KILN_BUNDLE_SOURCE_DIR: the Manifest/Kilnc unit tests may fail")
    fi
  fi
  if [[ -n "${KILN_BUNDLE_BINARY_DIR:-}" && ! -e "$KILN_BUNDLE_BINARY_DIR/kilnc" ]]; then
    if [[ ! -e "$KILN_BUNDLE_BINARY_DIR" ]] && mkdir -p "$(dirname "$KILN_BUNDLE_BINARY_DIR")" 2>/dev/null &&
       ln -s "$BIN" "$KILN_BUNDLE_BINARY_DIR" 2>/dev/null; then
      ENV_NOTES+=("linked $KILN_BUNDLE_BINARY_DIR -> $BIN (kilnc)")
    else
      ENV_NOTES+=("cannot provide $KILN_BUNDLE_BINARY_DIR/kilnc: the Kilnc unit tests may fail")
    fi
  fi

  # kiln-bench --peer torch runs bench/torch_peer.py from the checkout with python3.
  [[ -f "$repo/bench/torch_peer.py" && -z "${KILN_TORCH_PEER:-}" ]] && export KILN_TORCH_PEER="$repo/bench/torch_peer.py"
  [[ -n "$PY" && -z "${KILN_PYTHON:-}" ]] && export KILN_PYTHON="$PY"

  SANITIZER=$(command -v compute-sanitizer 2>/dev/null || find_first '/usr/local/cuda/bin/compute-sanitizer' \
                '/usr/local/cuda-*/bin/compute-sanitizer' '/usr/local/cuda/compute-sanitizer/compute-sanitizer' \
                '/usr/local/cuda-*/compute-sanitizer/compute-sanitizer' '/opt/nvidia/*/compute-sanitizer' 2>/dev/null || true)
  NVSMI=$(command -v nvidia-smi 2>/dev/null || find_first /usr/local/nvidia/bin/nvidia-smi /usr/bin/nvidia-smi 2>/dev/null || true)
}

# ---- running steps -----------------------------------------------------------------------------
# run_step NAME CAP_SECONDS CMD... : runs CMD time-boxed, its output into $WORK/NAME.log and run.log.
# Sets STEP_RC and STEP_SECS. Returns 1 (and records NOT-RUN) when the budget has no room left.
run_step() {
  local name=$1 cap=$2; shift 2
  local left; left=$(remaining)
  local t=$(( cap < left - 5 ? cap : left - 5 ))
  STEP_LOG="$WORK/$name.log"
  KILLED_SHARDS=""
  if (( t < MIN_STEP_S )); then
    record "$name" NOT-RUN - 0 "" "no time left in the ${BUDGET}s budget: run again with './gpu-run.sh OUT $name'"
    return 1
  fi
  log ""
  log "=== $name: $* (timeout ${t}s, $(elapsed)s elapsed) ==="
  local t0; t0=$(now)
  timeout -k 10 "$t" "$@" >"$STEP_LOG" 2>&1 </dev/null
  STEP_RC=$?
  STEP_SECS=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
  cat "$STEP_LOG" >>"$LOG"
  log "=== $name: exit $STEP_RC after ${STEP_SECS}s ==="
  (( STEP_RC == 124 || STEP_RC == 137 )) && STEP_TIMEOUT=1 || STEP_TIMEOUT=0
  return 0
}

FAILED_STEPS=()
NOT_RUN_STEPS=()
record() {  # name status rc seconds tests note
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$ROWS"
  [[ "$2" == FAIL ]] && FAILED_STEPS+=("$1")
  [[ "$2" == NOT-RUN ]] && NOT_RUN_STEPS+=("$1")
  write_summary
  publish
}
publish() {  # RES's files (and a copy of the summary) into OUTDIR/results.tar, replaced whole
  cp "$SUMMARY" "$RES/summary.txt.$BASHPID" 2>/dev/null && mv "$RES/summary.txt.$BASHPID" "$RES/summary.txt"
  local tmp="$OUTDIR/results.tar.$BASHPID"  # the bench steps' background publisher may run at the same time
  # (exit 1: a file changed while read, e.g. a JSON being rewritten: the archive is still whole)
  tar -C "$RES" --exclude='*.tmp' --exclude='summary.txt.*' -cf "$tmp" . 2>>"$LOG"
  if (( $? <= 1 )); then mv "$tmp" "$OUTDIR/results.tar"; else rm -f "$tmp"; fi
}

# gtest counts "pass fail skip total" from the JSON, else from the log (a run cut by its timeout).
gtest_counts() {
  local json=$1 logf=$2
  if [[ -s "$json" && -n "$PY" ]]; then
    "$PY" "$REPORT" gtest-counts "$json" && return
  fi
  local p f s
  p=$(grep -c '^\[       OK \] .* ([0-9]* ms)$' "$logf" 2>/dev/null); f=$(grep -c '^\[  FAILED  \] .* ([0-9]* ms)$' "$logf" 2>/dev/null)
  s=$(grep -c '^\[  SKIPPED \] .* ([0-9]* ms)$' "$logf" 2>/dev/null)
  echo "${p:-0} ${f:-0} ${s:-0} $(( ${p:-0} + ${f:-0} + ${s:-0} ))"
}

# A test step: expect = pass (some tests must pass, none fail) | skip (every test must skip).
gtest_step() {
  local name=$1 cap=$2 expect=$3 json=$4; shift 4
  rm -f "$json"
  run_step "$name" "$cap" "$@" --gtest_output="json:$json" || return 0
  gtest_record "$name" "$expect" "$json"
}

# Runs kiln-tests with a filter in $2 concurrent gtest shards (GTEST_TOTAL_SHARDS), each
# time-boxed to $1 s, in the background; the shards' JSON reports are merged into $4 and their logs
# into $5 by gtest_shards_wait. $6... : extra environment (VAR=value) for the shards.
gtest_shards_start() {
  local t=$1 n=$2 filter=$3 json=$4 logf=$5 i; shift 5
  local part; part="$WORK/$(basename "$json")"  # the shards' reports stay out of OUTDIR (what comes back)
  SHARD_PIDS=(); rm -f "$json" "$part".shard* "$logf".shard*
  for ((i = 0; i < n; i++)); do
    env "$@" GTEST_TOTAL_SHARDS="$n" GTEST_SHARD_INDEX="$i" timeout -k 10 "$t" "$TESTS" \
      --gtest_filter="$filter" --gtest_output="json:$part.shard$i" >"$logf.shard$i" 2>&1 </dev/null &
    SHARD_PIDS+=($!)
  done
}
gtest_shards_wait() {  # json logf: sets STEP_RC (the worst shard's), STEP_TIMEOUT
  local json=$1 logf=$2 pid r i=0 killed=""
  local part; part="$WORK/$(basename "$json")"
  STEP_RC=0; STEP_TIMEOUT=0
  for pid in "${SHARD_PIDS[@]}"; do
    wait "$pid"; r=$?
    if (( r == 124 || r == 137 )); then
      STEP_TIMEOUT=1
      killed+="shard $i: $(grep '^\[ RUN      \]' "$logf.shard$i" | tail -1 | sed 's/^\[ RUN      \] //'); "
    fi
    (( r > STEP_RC )) && STEP_RC=$r
    i=$((i + 1))
  done
  KILLED_SHARDS=$killed
  cat "$logf".shard* >"$logf" 2>/dev/null; rm -f "$logf".shard*
  if [[ -n "$PY" ]] && compgen -G "$part.shard*" >/dev/null; then "$PY" "$REPORT" gtest-merge "$json" "$part".shard* 2>>"$LOG"; fi
  rm -f "$part".shard*
}

# Records a finished gtest run (STEP_RC, STEP_TIMEOUT, STEP_SECS, STEP_LOG set) as row $1.
gtest_record() {
  local name=$1 expect=$2 json=$3
  local c p f s n status note=""
  c=$(gtest_counts "$json" "$STEP_LOG"); read -r p f s n <<<"$c"
  if (( STEP_TIMEOUT )); then
    status=FAIL
    if [[ -n "${KILLED_SHARDS:-}" ]]; then note="timed out; last tests started: $KILLED_SHARDS"
    else note="timed out; last test started: $(grep '^\[ RUN      \]' "$STEP_LOG" | tail -1 | sed 's/^\[ RUN      \] //')"; fi
  elif [[ "$expect" == skip ]]; then
    if (( STEP_RC == 0 && p == 0 && f == 0 )); then status=SKIP; note="no device, as expected ($s skipped)"
    else status=FAIL; note="expected every test to skip"; fi
  elif (( STEP_RC == 0 && f == 0 && p > 0 )); then status=PASS
  elif (( STEP_RC == 0 && p == 0 )); then status=FAIL; note="nothing ran: every test skipped (device unavailable?)"
  else status=FAIL
  fi
  if [[ "$status" == FAIL && ! -s "$json" ]] && (( ! STEP_TIMEOUT )); then
    note="${note:+$note; }exit $STEP_RC without a JSON report (crashed?); last test started: $(grep '^\[ RUN      \]' "$STEP_LOG" | tail -1 | sed 's/^\[ RUN      \] //')"
  fi
  if [[ "$status" == FAIL && -s "$json" && -n "$PY" ]]; then
    local ff; ff=$("$PY" "$REPORT" gtest-failures "$json" 3 2>/dev/null | tr '\n' ';')
    [[ -n "$ff" ]] && note="${note:+$note; }failed: $ff"
  fi
  if (( s > 0 )) && [[ "$expect" == pass && -n "$PY" ]]; then
    local sk; sk=$("$PY" "$REPORT" gtest-skips "$STEP_LOG" 3 2>/dev/null | tr '\n' ';')
    [[ -n "$sk" ]] && note="${note:+$note; }skips: $sk"
  fi
  record "$name" "$status" "$STEP_RC" "$STEP_SECS" "$p/$f/$s" "$note"
}
# The conformance suite of one device in $SHARDS concurrent gtest shards. With $6 = 1 the unit
# tests run beside it in one more process (their default device on a GPU machine is cuda:0) and
# are recorded as the row `unit`.
conformance_step() {  # name cap expect json filter [with_unit]
  local name=$1 cap=$2 expect=$3 json=$4 filter=$5 with_unit=${6:-0}
  local left t upid="" t0 env=() shards=$SHARDS
  [[ "$name" == vulkan ]] && shards=$VK_SHARDS
  left=$(remaining); t=$(( cap < left - 5 ? cap : left - 5 ))
  if (( t < MIN_STEP_S )); then
    record "$name" NOT-RUN - 0 "" "no time left in the ${BUDGET}s budget: run again with './gpu-run.sh OUT $name'"
    (( with_unit )) && record unit NOT-RUN - 0 "" "no time left in the ${BUDGET}s budget"
    return 0
  fi
  log ""
  log "=== $name: kiln-tests --gtest_filter=$filter in $shards shards$( ((with_unit)) && echo " + unit ($UNIT_FILTER)") (timeout ${t}s, $(elapsed)s elapsed) ==="
  t0=$(now)
  if (( with_unit )); then
    rm -f "$RES/tests-unit.json"
    KILN_VK_VALIDATION=1 timeout -k 10 "$t" "$TESTS" --gtest_filter="$UNIT_FILTER" \
      --gtest_output="json:$RES/tests-unit.json" >"$WORK/unit.log" 2>&1 </dev/null &
    upid=$!
  fi
  [[ "$name" == vulkan ]] && env=(KILN_VK_VALIDATION=1)
  gtest_shards_start "$t" "$shards" "$filter" "$json" "$WORK/$name.log" "${env[@]}"
  gtest_shards_wait "$json" "$WORK/$name.log"
  STEP_SECS=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'); STEP_LOG="$WORK/$name.log"
  cat "$STEP_LOG" >>"$LOG"
  log "=== $name: exit $STEP_RC after ${STEP_SECS}s ==="
  gtest_record "$name" "$expect" "$json"
  if [[ -n "$upid" ]]; then
    KILLED_SHARDS=""
    wait "$upid"; STEP_RC=$?
    (( STEP_RC == 124 || STEP_RC == 137 )) && STEP_TIMEOUT=1 || STEP_TIMEOUT=0
    STEP_SECS=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'); STEP_LOG="$WORK/unit.log"
    cat "$STEP_LOG" >>"$LOG"
    log "=== unit: exit $STEP_RC after ${STEP_SECS}s ==="
    gtest_record unit pass "$RES/tests-unit.json"
  fi
}

# The positive patterns of a gtest filter that match no test of kiln-tests (one per line): a
# parameterised suite's tests end in /N, so `Cuda/Rows.SpecialRows` alone matches nothing and a
# sanitizer step would pass having run none of it.
filter_gaps() {
  local filter=${1%%-*} list pat pats
  list=$(timeout 60 "$TESTS" --gtest_list_tests 2>/dev/null | awk '/^[^ ]/ { suite = $1; next } { print suite $1 }')
  if [[ -z "$list" ]]; then echo "(kiln-tests --gtest_list_tests listed nothing)"; return; fi
  IFS=: read -r -a pats <<<"$filter"  # no word splitting or globbing of the patterns themselves
  for pat in "${pats[@]}"; do
    [[ -z "$pat" ]] && continue
    local re
    re=$(sed 's/[].[\^$+(){}|]/\\&/g; s/\*/.*/g; s/?/./g' <<<"$pat")  # the gtest glob as a regex
    grep -qE "^${re}\$" <<<"$list" || echo "$pat"
  done
}

sanitizer_step() {
  local tool=$1 cap=$2
  # Elementwise kernels, the runtime, the reduce kernels (shared-memory tree, warp shuffles, split
  # reductions with scratch memory: what racecheck is for), the rows, scan, contraction, conv and
  # jit kernels (parameterised suites: their tests end in /N, hence the /*).
  local filter=${KILN_SAN_FILTER:-'Cuda/*/add_f32*:Cuda/*/exp_f16*:Cuda/*/as_type_f32_s8*:Cuda/*/select_*odd*:CudaRuntime.*:Cuda/Reduce.*/sum_f32_row1000:Cuda/Reduce.*/sum_f32_row_2p20_3:Cuda/Reduce.*/argmax_f64_row33:Cuda/Reduce.*/reduce_max_bf16_cols33x2048:Cuda/Reduce.*/sum_s32_all_2p24:Cuda/ReduceFused.*:Cuda/Rows.SpecialRows/*:Cuda/Rows.ScaledMaskedAndCausalSoftmax/*:Cuda/Scan.EveryAxisAndViews/*:Cuda/Scan.SpecialValues/*:Cuda/Rows.FusedFormsMatchOpByOp/*:Cuda/Contract.BatchedBroadcastAndVectorOperands/*:Cuda/Contract.FusedEpiloguesMatchOpByOp/*:Cuda/Contract.VendorLibraryTakesPlainFloatProductsOnCuda/*:Cuda/Contract.HopperKernelOnSm90/*:Cuda/Conv.OptionSpaceOneTwoAndThreeDimensions/*:Cuda/Conv.FusedEpiloguesMatchOpByOp/*:Cuda/Jit.ElementwiseConsumersOfAMatmulMoveIntoItsEpilogue/*:Cuda/Jit.RowPatternsWrittenOpByOp/*:Cuda/Jit.RepeatedCallsReplayOneRecordedGraph/*:Cuda/Jit.SiblingMapsBecomeOneKernelWithSeveralResults/*-CudaRuntime.OutOfMemoryIsRecoverable:CudaRuntime.KernelLoadErrors'}
  local gaps; gaps=$(filter_gaps "$filter" | tr '\n' ' ')
  if [[ "$DRY" == 1 ]]; then
    if [[ -n "$gaps" ]]; then record "$tool" FAIL - 0 "" "filter patterns matching no test: $gaps"
    else record "$tool" SKIP - 0 "" "dry run: no GPU (every filter pattern matches a test)"; fi
    return
  fi
  if [[ -z "$SANITIZER" ]]; then record "$tool" SKIP - 0 "" "compute-sanitizer not found on this machine"; return; fi
  # racecheck: cuBLAS(Lt)'s own Hopper kernels (TMA, wgmma) are NVIDIA's to check, and slow under it.
  # The option's form is probed first (a compute-sanitizer that refuses it runs without it).
  local exclude=() vendor='regex=cublas|cutlass|nvjet|xmma|sm90_'
  if [[ "$tool" == racecheck ]]; then
    if timeout 60 "$SANITIZER" --kernel-name-exclude "$vendor" --print-limit 1 "$TESTS" --gtest_filter=NoSuchTest \
         >/dev/null 2>&1; then
      exclude=(--kernel-name-exclude "$vendor")
    else
      log "racecheck: this compute-sanitizer refuses --kernel-name-exclude $vendor; cuBLAS kernels are checked too"
    fi
  fi
  run_step "$tool" "$cap" "$SANITIZER" --tool "$tool" --error-exitcode 86 --report-api-errors no --print-limit 20 \
    "${exclude[@]}" "$TESTS" --gtest_filter="$filter" || return 0
  local errs p f s status note
  errs=$(grep -o 'ERROR SUMMARY: [0-9]* error' "$STEP_LOG" | tail -1 | grep -o '[0-9]*' || true)
  read -r p f s _ <<<"$(gtest_counts /nonexistent "$STEP_LOG")"
  note="sanitizer errors: ${errs:-?}"
  local first; first=$(grep -m1 -E '^========= (Invalid|Race|Error|.*[Hh]azard|.*not supported)' "$STEP_LOG" | cut -c1-160 || true)
  [[ -n "$first" ]] && note="$note; first: $first"
  [[ -n "$gaps" ]] && note="$note; filter patterns matching no test: $gaps"
  if (( STEP_TIMEOUT )); then status=FAIL; note="timed out; $note"
  elif [[ -n "$gaps" ]]; then status=FAIL
  elif (( STEP_RC == 0 && p > 0 )) && [[ "${errs:-0}" == 0 ]]; then status=PASS
  elif (( STEP_RC == 0 && p == 0 )); then status=FAIL; note="nothing ran (every test skipped); $note"
  else status=FAIL
  fi
  record "$tool" "$status" "$STEP_RC" "$STEP_SECS" "$p/$f/$s" "$note"
}

bench_step() {  # name device json expect(pass|skip)
  local name=$1 dev=$2 json=$3 expect=$4 cap=$5
  local args=(--device "$dev" --json "$json")
  # The PyTorch peer (eager and torch.compile) in the same run, on CUDA, when PyTorch is there.
  if [[ "$dev" == cuda:* && "$DRY" == 0 && -n "$PY" ]] && "$BENCH" --help 2>&1 | grep -q -- '--peer' &&
     "$PY" -c 'import torch' >/dev/null 2>&1; then args+=(--peer torch); fi
  if [[ "$DRY" == 1 ]]; then args+=(--size "${KILN_BENCH_SIZE:-65536}" --repeats 3 --warmup 1)
  elif [[ -n "${KILN_BENCH_SIZE:-}" ]]; then args+=(--size "$KILN_BENCH_SIZE"); fi
  # shellcheck disable=SC2206
  [[ -n "${KILN_BENCH_ARGS:-}" ]] && args+=($KILN_BENCH_ARGS)
  rm -f "$json"
  # The clocks while it runs (sampled every 250 ms): a slow case may be a slow clock, not a slow kernel.
  local smi_pid=""
  if [[ -n "$NVSMI" && "$DRY" == 0 ]]; then
    "$NVSMI" --query-gpu=clocks.sm,clocks.mem,pstate,power.draw --format=csv,noheader,nounits -lms 250 \
      >"$WORK/$name.clocks" 2>/dev/null &
    smi_pid=$!
  fi
  # kiln-bench rewrites its JSON after every case: repack it now and then, so that even a call
  # cut short from outside (the device tool's own limit) returns the cases measured so far.
  # (TERM stops its sleep and a tar in progress too: nothing is left holding the output open.)
  (
    sp=""
    trap 'kill $sp 2>/dev/null; rm -f "$OUTDIR/results.tar.$BASHPID"; exit 0' TERM
    while :; do sleep 20 & sp=$!; wait "$sp"; publish; done
  ) &
  local pub_pid=$!
  run_step "$name" "$cap" "$BENCH" "${args[@]}"
  local started=$?
  kill "$pub_pid" 2>/dev/null; wait "$pub_pid" 2>/dev/null
  if [[ -n "$smi_pid" ]]; then kill "$smi_pid" 2>/dev/null; wait "$smi_pid" 2>/dev/null; fi
  ((started == 0)) || return 0
  local clocks=""
  if [[ -s "$WORK/$name.clocks" ]]; then
    { echo "--- $name: nvidia-smi clocks.sm, clocks.mem, pstate, power.draw every 250 ms"; cat "$WORK/$name.clocks"; } >>"$LOG"
    local f="$WORK/$name.clocks" n sm mem ps
    n=$(grep -c '^[0-9]' "$f")
    if ((n > 0)); then
      sm=$(grep '^[0-9]' "$f" | cut -d, -f1 | tr -d ' ' | sort -n | awk -v n="$n" 'NR == 1 { lo = $1 } NR == int((n + 1) / 2) { med = $1 } END { printf "%s MHz (min %s, max %s)", med, lo, $1 }')
      mem=$(grep '^[0-9]' "$f" | cut -d, -f2 | tr -d ' ' | sort -n | awk -v n="$n" 'NR == int((n + 1) / 2) { print $1 }')
      ps=$(grep '^[0-9]' "$f" | cut -d, -f3 | tr -d ' ' | sort | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }')
      clocks="clocks: SM median $sm, memory $mem MHz, $ps"
    fi
  fi
  local status note=""
  if (( STEP_TIMEOUT )); then status=FAIL; note="timed out"
  elif [[ "$expect" == skip ]]; then
    if (( STEP_RC == 2 )); then status=SKIP; note="no device, as expected"; else status=FAIL; note="expected 'device unavailable' (exit 2)"; fi
  elif (( STEP_RC == 0 )) && [[ -s "$json" ]]; then status=PASS
  else status=FAIL; note=$(grep -m1 -i 'kiln-bench:\|fail\|error' "$STEP_LOG" | cut -c1-200)
  fi
  if [[ -s "$json" && -n "$PY" ]]; then
    local b; b=$("$PY" "$REPORT" bench-brief "$json" 2>/dev/null)
    [[ -n "$b" ]] && note="${note:+$note; }$b"
  fi
  [[ -n "$clocks" ]] && note="${note:+$note; }$clocks"
  record "$name" "$status" "$STEP_RC" "$STEP_SECS" "" "$note"
}

torch_step() {
  local cap=$1 json="$RES/torch-peer.json"
  rm -f "$json"
  if [[ -z "$PY" ]] || ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    if [[ "$DRY" == 1 ]]; then record torch SKIP - 0 "" "PyTorch not installed here"
    else record torch FAIL - 0 "" "python3 with PyTorch not found"; fi
    return
  fi
  if ! "$PY" -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    if [[ "$DRY" == 1 ]]; then record torch SKIP - 0 "" "PyTorch sees no CUDA device (dry run)"
    else record torch FAIL - 0 "" "PyTorch sees no CUDA device"; fi
    return
  fi
  local size=${KILN_BENCH_SIZE:-}
  if [[ -z "$size" && -s "$RES/bench-cuda.json" ]]; then
    size=$("$PY" -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]; print(c.get("elements") or max(c["sizes"]))' "$RES/bench-cuda.json" 2>/dev/null)
  fi
  PYTHONUNBUFFERED=1 run_step torch "$cap" "$PY" "$PAYLOAD/torch_peer.py" --json "$json" ${size:+--size "$size"} || return 0
  local status note=""
  if (( STEP_TIMEOUT )); then status=FAIL; note="timed out"
  elif (( STEP_RC == 0 )) && [[ -s "$json" ]]; then status=PASS
  else status=FAIL; note=$(grep -m1 -i 'error' "$STEP_LOG" | cut -c1-200)
  fi
  record torch "$status" "$STEP_RC" "$STEP_SECS" "" "$note"
}

# kiln-accuracy on the GPU's CUDA and Vulkan devices: max ulp per op x dtype against MPFR (a
# measurement for docs/semantics.md, not a gate: cells over their bound are counted in the note).
accuracy_step() {
  local cap=$1 json="$RES/accuracy.json"
  rm -f "$json"
  if [[ ! -x "$BIN/kiln-accuracy" ]]; then
    record accuracy SKIP - 0 "" "kiln-accuracy is not in the bundle (built without libmpfr-dev)"
    return
  fi
  run_step accuracy "$cap" "$BIN/kiln-accuracy" --device cuda:0,vulkan:0 --json "$json" \
    --markdown "$WORK/accuracy.md" || return 0
  [[ -s "$WORK/accuracy.md" ]] && { echo "--- accuracy.md"; cat "$WORK/accuracy.md"; } >>"$LOG"
  local status note
  note=$(tail -1 "$STEP_LOG" | cut -c1-200)
  if (( STEP_TIMEOUT )); then status=FAIL; note="timed out"
  elif (( STEP_RC == 0 )) && [[ -s "$json" ]]; then status=PASS
  else status=FAIL
  fi
  record accuracy "$status" "$STEP_RC" "$STEP_SECS" "" "$note"
}

write_summary() {
  {
    echo "Kiln GPU run ($([[ $DRY == 1 ]] && echo 'DRY RUN, no GPU expected' || echo 'GPU machine'))"
    echo "bundle: ${KILN_BUNDLE_COMMIT:-?} built ${KILN_BUNDLE_DATE:-?} for CUDA archs ${KILN_BUNDLE_CUDA_ARCHS:-?} (${KILN_BUNDLE_BUILD_TYPE:-?})"
    echo "machine: ${GPU_NAME:-no GPU} | driver ${GPU_DRIVER:-?} | $(uname -srm) | started $(date -u -d "@$T_START" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
    for n in "${ENV_NOTES[@]}"; do echo "note: $n"; done
    echo
    printf '%-13s %-8s %-4s %7s  %-18s %s\n' step status rc seconds 'pass/fail/skip' note
    while IFS=$'\t' read -r s st rc secs tests note; do
      printf '%-13s %-8s %-4s %7s  %-18s %s\n' "$s" "$st" "$rc" "$secs" "${tests:--}" "$note"
    done <"$ROWS"
  } >"$SUMMARY.tmp" && mv "$SUMMARY.tmp" "$SUMMARY"
}

# ---- the steps ---------------------------------------------------------------------------------
ENV_NOTES=()
setup_env
GPU_NAME=""; GPU_DRIVER=""
{
  echo "=== env ==="
  echo "bundle: $BUNDLE  outdir: $OUTDIR  dry-run: $DRY  budget: ${BUDGET}s  steps: ${STEPS[*]}"
  date -u; uname -a; grep -h PRETTY_NAME /etc/os-release 2>/dev/null; nproc
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "VK_LAYER_PATH=$VK_LAYER_PATH VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
  echo "compute-sanitizer: ${SANITIZER:-none}  nvidia-smi: ${NVSMI:-none}  python3: ${PY:-none}"
  for n in "${ENV_NOTES[@]}"; do echo "note: $n"; done
  cat "$PAYLOAD/bundle.env" 2>/dev/null
} 2>&1 | tee -a "$LOG" >/dev/null

env_rc=0
if [[ -n "$NVSMI" ]]; then
  timeout 30 "$NVSMI" >>"$LOG" 2>&1 || env_rc=$?
  q=$(timeout 20 "$NVSMI" --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu --format=csv,noheader 2>/dev/null | head -1)
  echo "nvidia-smi: $q" >>"$LOG"
  GPU_NAME=$(cut -d, -f1 <<<"$q" | sed 's/^ *//'); GPU_DRIVER=$(cut -d, -f2 <<<"$q" | sed 's/^ *//')
elif [[ "$DRY" == 0 ]]; then
  env_rc=1
fi
for b in "$TESTS" "$BENCH" "$BIN/kilnc"; do
  if [[ ! -x "$b" ]]; then echo "missing: $b" >>"$LOG"; env_rc=1; continue; fi
  missing=$(ldd "$b" 2>&1 | grep -i 'not found' || true)
  [[ -n "$missing" ]] && { echo "$(basename "$b"): $missing" >>"$LOG"; env_rc=1; ENV_NOTES+=("$(basename "$b") lacks: $(echo $missing)"); }
done
{ echo "--- ldd kiln-tests"; ldd "$TESTS" 2>&1; } >>"$LOG"
{ echo "--- kiln-bench --devices (KILN_VK_VALIDATION=1)"; KILN_VK_VALIDATION=1 timeout 60 "$BENCH" --devices 2>&1; } >"$WORK/devices.log"
cat "$WORK/devices.log" >>"$LOG"
devnote=$(grep -E '^  (cuda|vulkan):[0-9]+ ' "$WORK/devices.log" | sed 's/^ *//; s/  */ /g' | tr '\n' ';')
if [[ "$DRY" == 0 ]]; then
  grep -q '^  cuda:0 ' "$WORK/devices.log" || { env_rc=1; devnote+=" NO cuda:0;"; }
  grep -q '^  vulkan:0 ' "$WORK/devices.log" || { env_rc=1; devnote+=" NO vulkan:0;"; }
else
  grep -q '^  vulkan:0 ' "$WORK/devices.log" || { env_rc=1; devnote+=" NO vulkan:0 (lavapipe);"; }
fi
record env "$( ((env_rc == 0)) && echo PASS || echo FAIL)" "$env_rc" "$(elapsed)" "" "${devnote:-no GPU device listed}"

if [[ "$DRY" == 1 ]]; then
  UNIT_FILTER=${KILN_UNIT_FILTER:-'VulkanRuntime.*:CudaRuntime.*:Devices.*:Kilnc.*:Manifest.*'}
  CUDA_FILTER=${KILN_CUDA_FILTER:-'Cuda/*/add_f32*:Cuda/*/exp_f16*'}
  VK_FILTER=${KILN_VK_FILTER:-'Vulkan/*/add_*:Vulkan/*/exp_f32*'}
  CUDA_EXPECT=skip
else
  # The unit tests that use a device; the host-only compile sweeps (NVRTC, shaderc, the CUDA
  # templates on the host: minutes of CPU) ran in CI already.
  UNIT_FILTER=${KILN_UNIT_FILTER:-'-Vulkan/*:Cuda/*:Cpu/*:ConformanceCpu.*:Emit*:Families.*:CudaBlocksOnHost.*:CudaWgmmaOnHost.*:CudaReduceOnHost.*:CudaMathOnHost.*:Kilnc.*'}
  CUDA_FILTER=${KILN_CUDA_FILTER:-'Cuda/*'}
  VK_FILTER=${KILN_VK_FILTER:-'Vulkan/*'}
  CUDA_EXPECT=pass
fi

for step in "${STEPS[@]}"; do
  case "$step" in
    cuda)   conformance_step cuda 150 "$CUDA_EXPECT" "$RES/tests-cuda.json" "$CUDA_FILTER" 1 ;;
    vulkan) conformance_step vulkan 120 pass "$RES/tests-vulkan.json" "$VK_FILTER" ;;
    unit)   KILN_VK_VALIDATION=1 gtest_step unit 150 pass "$RES/tests-unit.json" "$TESTS" --gtest_filter="$UNIT_FILTER" ;;
    bench-cuda)   bench_step bench-cuda cuda:0 "$RES/bench-cuda.json" "$([[ $DRY == 1 ]] && echo skip || echo pass)" 170 ;;
    bench-vulkan) bench_step bench-vulkan vulkan:0 "$RES/bench-vulkan.json" pass 90 ;;
    torch)        torch_step 40 ;;
    memcheck)     sanitizer_step memcheck 60 ;;
    racecheck)    sanitizer_step racecheck 90 ;;
    accuracy)     accuracy_step 60 ;;
  esac
done

# ---- the report --------------------------------------------------------------------------------
write_summary
if [[ -n "$PY" ]]; then
  "$PY" "$REPORT" compare --kiln "$RES/bench-cuda.json" --vulkan "$RES/bench-vulkan.json" \
    --torch "$RES/torch-peer.json" >>"$SUMMARY" 2>>"$LOG" || true
fi
{
  echo
  if ((${#FAILED_STEPS[@]})); then echo -n "RESULT: FAIL (${FAILED_STEPS[*]})"
  elif ((${#NOT_RUN_STEPS[@]})); then echo -n "RESULT: INCOMPLETE"
  else echo -n "RESULT: PASS"; fi
  ((${#NOT_RUN_STEPS[@]})) && echo -n "; not run: ${NOT_RUN_STEPS[*]} (run them in another call: ./gpu-run.sh \$OUT ${NOT_RUN_STEPS[*]})"
  echo " after $(elapsed)s"
} >>"$SUMMARY"
publish
echo
cat "$SUMMARY"
((${#FAILED_STEPS[@]} == 0 && ${#NOT_RUN_STEPS[@]} == 0))
