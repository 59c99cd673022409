#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang-14 with ASan+UBSan) and runs each for a while from
# its seed corpus (fuzz/corpus/<target>/). Any crash, hang (>10 s per input), leak or sanitizer
# report fails; the input that triggered it is written to build-fuzz/findings/<target>/. Put the
# minimized input into fuzz/corpus/<target>/ once fixed: Reliability.FuzzCorpusReplays replays
# the corpus in every test run.
# Usage: scripts/fuzz.sh [seconds per target, default 60] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(expr manifest pipeline_cache jit_entry)

if ! command -v clang++-14 >/dev/null || ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "== fuzz: installing clang-14 and libclang-rt-14-dev"
  apt-get update -qq && apt-get install -y -qq clang-14 libclang-rt-14-dev >/dev/null
fi

nice="nice -n 19"
$nice cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
$nice cmake --build build-fuzz
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for t in "${targets[@]}"; do
  work=build-fuzz/work/$t findings=build-fuzz/findings/$t
  rm -rf "$work"
  mkdir -p "$work" "$findings"
  echo "== fuzz: $t for ${seconds}s"
  # New inputs go to the scratch corpus; the seeds in the repo are read only.
  rc=0
  $nice build-fuzz/fuzz_$t "$work" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 -artifact_prefix="$findings/" \
    > "build-fuzz/$t.log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "build-fuzz/$t.log" || true
  if [ "$rc" != 0 ]; then
    tail -n 60 "build-fuzz/$t.log" >&2
    echo "== fuzz: $t FAILED (exit $rc); the input is in $findings/" >&2
    exit 1
  fi
done
echo "== fuzz: passed (${seconds}s per target)"
