#!/usr/bin/env bash
# kiln-bench writes its JSON report before the peer runs, so a peer that is cut short (a
# time-boxed GPU run) leaves Kiln's figures behind. A fake peer checks that the report is already
# there, then fails; the final report must carry Kiln's case and the peer's failure.
# Then the bodies a peer receives: copy clones, reductions do not.
#   bench_peer_partial.sh KILN_BENCH WORKDIR
set -euo pipefail
bench=$1 dir=$2
mkdir -p "$dir"
json=$dir/peer-partial.json peer=$dir/fake-peer.sh
rm -f "$json"
cat >"$peer" <<'PEER'
if ! grep -q 'not finished: this report was written before the peer ran' "$KILN_TEST_JSON" 2>/dev/null; then
  echo "fake peer: no report written before the peer" >&2
  exit 3
fi
echo "fake peer: stopped on purpose" >&2
exit 1
PEER
KILN_PYTHON=bash KILN_TORCH_PEER=$peer KILN_TEST_JSON=$json \
  "$bench" run --device cpu --op copy --size 65536 --no-peaks --peer torch --json "$json" >/dev/null
grep -q '"status": "fake peer: stopped on purpose"' "$json" || { echo "FAIL: the final report lacks the peer's failure:"; grep -n '"status"' "$json"; exit 1; }
grep -q '"name": "copy.f32"' "$json" || { echo "FAIL: the final report lacks Kiln's case"; exit 1; }
echo "ok: the report was written before the peer and again after it"

# The bodies a peer is given: the copy case clones its input (PyTorch returning x would time
# nothing), a reduction reduces its input itself (a clone would add a copy to torch.sum's time).
bodies=$dir/peer-bodies.json
cat >"$peer" <<'PEER'
cp "$2" "$KILN_TEST_BODIES"
exit 1
PEER
KILN_PYTHON=bash KILN_TORCH_PEER=$peer KILN_TEST_BODIES=$bodies \
  "$bench" run --device cpu --op copy,sum --dtype f32 --size 65536 --no-peaks --peer torch >/dev/null 2>&1 || true
python3 - "$bodies" <<'PY'
import json, sys
cases = {c["name"]: c["body"] for c in json.load(open(sys.argv[1]))["cases"]}
assert ".clone()" in cases["copy.f32"], cases
sums = [b for n, b in cases.items() if n.startswith("sum.")]
assert sums and not any(".clone()" in b for b in sums), cases
PY
echo "ok: the copy case clones, the reductions do not"
