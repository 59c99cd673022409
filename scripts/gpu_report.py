#!/usr/bin/env python3
"""Summaries for gpu-run.sh (standard library only; Python 3.8+).

  gpu_report.py gtest-counts FILE.json            -> "pass fail skip total"
  gpu_report.py gtest-failures FILE.json [N]      -> the first N failed tests, one line each
  gpu_report.py gtest-skips FILE.log [N]          -> the N most common skip reasons with counts
  gpu_report.py gtest-merge OUT.json IN.json...   -> one gtest JSON of several shards' reports
  gpu_report.py bench-brief FILE.json             -> one line: copy GB/s, slowest % of copy, failures
  gpu_report.py compare --kiln B.json [--vulkan V.json] [--torch T.json]
                                                  -> table: Kiln CUDA / Kiln Vulkan / PyTorch per case
  gpu_report.py results DIR [--out bench/results] -> one JSON of a run (tests, benches, peer, summary)
                                                     named <date>-<gpu>-<commit>.json, to commit
"""
import argparse
import collections
import json
import os
import re
import sys


def load(path):
    if not path or not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def gtest_tests(d):
    for suite in d.get("testsuites", []):
        for t in suite.get("testsuite", []):
            yield suite.get("name", "?") + "." + t.get("name", "?"), t


def cmd_gtest_counts(a):
    d = load(a.file)
    if d is None:
        return 1
    p = f = s = 0
    for _, t in gtest_tests(d):
        if t.get("status") == "NOTRUN":
            continue
        if t.get("failures"):
            f += 1
        elif t.get("result") == "SKIPPED":
            s += 1
        else:
            p += 1
    print(p, f, s, p + f + s)
    return 0


def cmd_gtest_merge(a):
    """Merges the JSON reports of gtest shards (GTEST_SHARD_INDEX) into one; missing or cut-off
    shards (a timeout leaves none) are skipped, so counts come from what did report."""
    out = {"tests": 0, "failures": 0, "disabled": 0, "errors": 0, "time": "0s", "testsuites": []}
    suites = collections.OrderedDict()
    secs = 0.0
    for path in a.inputs:
        d = load(path)
        if d is None:
            continue
        out.setdefault("timestamp", d.get("timestamp"))
        for k in ("tests", "failures", "disabled", "errors"):
            out[k] += int(d.get(k, 0))
        secs = max(secs, float(str(d.get("time", "0s")).rstrip("s") or 0))
        for suite in d.get("testsuites", []):
            s = suites.setdefault(suite.get("name", "?"), {"name": suite.get("name", "?"), "tests": 0,
                                                          "failures": 0, "testsuite": []})
            s["tests"] += int(suite.get("tests", 0))
            s["failures"] += int(suite.get("failures", 0))
            s["testsuite"].extend(suite.get("testsuite", []))
    out["time"] = f"{secs:.3f}s"
    out["testsuites"] = list(suites.values())
    with open(a.out + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(a.out + ".tmp", a.out)
    return 0


def cmd_gtest_failures(a):
    d = load(a.file)
    if d is None:
        return 1
    n = 0
    for name, t in gtest_tests(d):
        if not t.get("failures"):
            continue
        msg = t["failures"][0].get("failure", "")
        lines = [l for l in msg.splitlines() if l.strip() and not re.match(r"^/.*:\d+$", l.strip())]
        first = lines[0].strip() if lines else ""
        print(f"{name}: {first[:160]}")
        n += 1
        if n >= a.n:
            break
    return 0


def cmd_gtest_skips(a):
    try:
        with open(a.file, errors="replace") as f:
            text = f.read()
    except OSError:
        return 1
    reasons = collections.Counter()
    msg = None
    for line in text.splitlines():
        if line.startswith("[ RUN      ]"):
            msg = None
        elif re.search(r":\d+: Skipped$", line):
            msg = []
        elif line.startswith("[  SKIPPED ]") and line.endswith("ms)"):
            r = " ".join(l.strip() for l in (msg or []) if l.strip()) or "(no reason given)"
            r = re.sub(r"\b(on|for) (cuda|vulkan):\d+", r"\1 \2", r)
            reasons[r[:140]] += 1
            msg = None
        elif msg is not None and len(msg) < 3:
            msg.append(line)
    for r, c in reasons.most_common(a.n):
        print(f"{c}x {r}")
    return 0


def cases_by_name(d):
    """One row per case name (the largest size when a report has several)."""
    out = {}
    for c in (d or {}).get("cases", []):
        old = out.get(c.get("name"))
        if old is None or (c.get("elements") or 0) > (old.get("elements") or 0):
            out[c.get("name")] = c
    return out


def pct_of(c):
    """Fraction of the bandwidth roof: of the copy kernel (kiln-bench/1) or of the measured peak (/2)."""
    if not c:
        return None
    v = c.get("pct_of_copy")
    return v if v is not None else c.get("pct_of_peak_bandwidth")


def peer_gbps(c, name="torch.eager"):
    p = (c or {}).get("peers") or {}
    p = p.get(name) if isinstance(p, dict) else None
    return p.get("gb_per_s") if isinstance(p, dict) and p.get("ok", True) else None


def elements_of(d):
    cfg = (d or {}).get("config", {})
    if cfg.get("elements"):
        return cfg["elements"]
    sizes = cfg.get("sizes") or []
    return max(sizes) if sizes else (d or {}).get("elements", "?")


def cmd_bench_brief(a):
    d = load(a.file)
    if d is None:
        return 1
    cases = list(cases_by_name(d).values())
    copy = next((c for c in cases if c.get("kind") == "copy"), None)
    parts = [f"{d.get('device', {}).get('name', '?')}"]
    if copy and copy.get("gb_per_s"):
        g = copy["gb_per_s"]
        parts.append(f"copy {g:.0f} GB/s" if g >= 10 else f"copy {g:.2f} GB/s")
    pcts = [(pct_of(c), c["name"]) for c in cases
            if pct_of(c) is not None and c.get("kind") not in ("copy", "contract")]
    fl = [(c["pct_of_peak_flops"], c["name"]) for c in cases
          if c.get("kind") == "contract" and isinstance(c.get("pct_of_peak_flops"), (int, float))]
    if pcts:
        lo = min(pcts)
        roof = "copy" if any(c.get("pct_of_copy") is not None for c in cases) else "peak bandwidth"
        parts.append(f"ops {min(p for p, _ in pcts):.0f}-{max(p for p, _ in pcts):.0f}% of {roof} (lowest {lo[1]})")
    if fl:
        parts.append(f"contractions {min(fl)[0]:.0f}-{max(fl)[0]:.0f}% of the FLOP/s peak (lowest {min(fl)[1]})")
    failed = [c["name"] for c in cases if c.get("failed")]
    if failed:
        parts.append("failed: " + ",".join(failed))
    print(", ".join(parts))
    return 0


def cmd_compare(a):
    kiln, vk, torch = load(a.kiln), load(a.vulkan), load(a.torch)
    if not (kiln or vk or torch):
        return 0
    K, V, T = cases_by_name(kiln), cases_by_name(vk), cases_by_name(torch)
    names = list(K) + [n for n in V if n not in K] + [n for n in T if n not in K and n not in V]

    def pct(c):
        v = pct_of(c)
        return f"{v:5.1f}%" if v is not None else "     -"

    print()
    head = []
    for label, d in (("Kiln CUDA", kiln), ("Kiln Vulkan", vk), ("PyTorch", torch)):
        if d:
            dev = d.get("device", {})
            head.append(f"{label}: {dev.get('name', '?') if isinstance(dev, dict) else dev}, "
                        f"{elements_of(d)} elements")
    print("Bandwidth (GB/s, bytes read + written; % of that device's copy or bandwidth peak):  " + " | ".join(head))
    print("eager / compile: the same expression through PyTorch eager and torch.compile (kiln-bench --peer torch);"
          " torch op: PyTorch's own kernel for the op (torch_peer.py)")
    print(f"{'case':<22} {'cuda GB/s':>9} {'%roof':>6} {'vk GB/s':>8} {'%roof':>6} {'vk/cuda':>7} {'eager':>8} "
          f"{'compile':>8} {'torch op':>8} {'cuda/eager':>10} {'cuda/compile':>12} {'cuda/op':>7}")

    def num(v, w, f="8.1f"):
        return f"{v:{w}.{f.split('.')[1]}}" if isinstance(v, (int, float)) else " " * (w - 1) + "-"

    for n in names:
        k, v, t = K.get(n), V.get(n), T.get(n)
        kg = (k or {}).get("gb_per_s")
        vg = (v or {}).get("gb_per_s")
        eg, cg, tg = peer_gbps(k, "torch.eager"), peer_gbps(k, "torch.compile"), (t or {}).get("gb_per_s")
        ratio = lambda a, b: a / b if a and b else None  # noqa: E731
        flag = ""
        for label, c in (("cuda", k), ("vk", v)):
            if c and c.get("failed"):
                flag += f" [{label} {c.get('check', 'failed')}]"
        print(f"{n:<22} {num(kg, 9)} {pct(k):>6} {num(vg, 8)} {pct(v):>6} {num(ratio(vg, kg), 7, '.2f')} {num(eg, 8)} "
              f"{num(cg, 8)} {num(tg, 8)} {num(ratio(kg, eg), 10, '.2f')} {num(ratio(kg, cg), 12, '.2f')} "
              f"{num(ratio(kg, tg), 7, '.2f')}{flag}")
    # Compute-bound cases (contractions, convolutions): TFLOP/s against the FLOP/s peak of the
    # same run, and against PyTorch's cuBLAS GEMM of the same dtype (torch_peer.py) where there is one.
    gemm = {g.get("dtype"): g for g in (torch or {}).get("gemm", []) if g.get("tflops")}
    flops_names = [n for n in names if any((c or {}).get("kind") in ("contract", "conv", "shaped")
                                           or ((c or {}).get("flops") or 0) > 4 * ((c or {}).get("bytes") or 1)
                                           for c in (K.get(n), V.get(n)))]
    if flops_names:
        print()
        print("Compute (TFLOP/s; % of that device's FLOP/s peak; vs cuBLAS: of PyTorch's torch.matmul 8192^3 peak of "
              "the output dtype)")
        print(f"{'case':<22} {'cuda TF/s':>9} {'%peak':>6} {'vk TF/s':>8} {'%peak':>6} {'vk/cuda':>7} {'vs cuBLAS':>9}")
        for n in flops_names:
            k, v = K.get(n), V.get(n)
            kt = (k or {}).get("gflop_per_s")
            vt = (v or {}).get("gflop_per_s")
            kt, vt = (kt / 1e3 if kt else None), (vt / 1e3 if vt else None)

            def fpct(c):
                x = (c or {}).get("pct_of_peak_flops")
                return f"{x:5.1f}%" if isinstance(x, (int, float)) else "     -"
            g = gemm.get((k or v or {}).get("output"))
            vs = kt / g["tflops"] if kt and g else None
            print(f"{n:<22} {num(kt, 9)} {fpct(k):>6} {num(vt, 8)} {fpct(v):>6} "
                  f"{num(vt / kt if vt and kt else None, 7, '.2f')} {num(vs, 9, '.2f')}")
    for g in (torch or {}).get("gemm", []):
        print(f"GEMM peak (PyTorch/cuBLAS) {g['name']:<18} {g.get('tflops', 0):8.1f} TFLOP/s  "
              f"({g.get('time_us', {}).get('median', 0):.0f} us)")
    return 0


def cmd_results(a):
    """Merges one run's files into the single JSON committed under bench/results/."""
    d = a.dir
    tar = os.path.join(d, "results.tar")
    if os.path.isfile(tar):  # gpu-run.sh packs its result files (the device tool returns 8 files)
        import tarfile
        import tempfile
        tmp = tempfile.mkdtemp(prefix="kiln-gpu-results-")
        import atexit
        import shutil
        atexit.register(shutil.rmtree, tmp, True)
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                name = os.path.basename(m.name)
                if m.isfile() and name and re.fullmatch(r"[A-Za-z0-9._-]+", name):
                    with t.extractfile(m) as src, open(os.path.join(tmp, name), "wb") as dst:
                        dst.write(src.read())
        if os.path.isfile(os.path.join(d, "summary.txt")):  # the newest summary is the one beside the tar
            with open(os.path.join(d, "summary.txt"), "rb") as src, open(os.path.join(tmp, "summary.txt"), "wb") as dst:
                dst.write(src.read())
        d = tmp
    doc = {"schema": "kiln-gpu-run/1"}
    summary = os.path.join(d, "summary.txt")
    if os.path.isfile(summary):
        with open(summary, errors="replace") as f:
            doc["summary"] = f.read().splitlines()
    tests = {}
    for name in ("unit", "cuda", "vulkan"):
        t = load(os.path.join(d, f"tests-{name}.json"))
        if t is None:
            continue
        p = f = s = 0
        failed = []
        for tn, tc in gtest_tests(t):
            if tc.get("failures"):
                f += 1
                failed.append(tn)
            elif tc.get("result") == "SKIPPED":
                s += 1
            else:
                p += 1
        tests[name] = {"passed": p, "failed": f, "skipped": s, "failed_tests": failed[:200],
                       "seconds": t.get("time"), "timestamp": t.get("timestamp")}
    doc["tests"] = tests
    for key, fname in (("kiln_cuda", "bench-cuda.json"), ("kiln_vulkan", "bench-vulkan.json"),
                       ("torch", "torch-peer.json"), ("accuracy", "accuracy.json")):
        b = load(os.path.join(d, fname))
        if b is not None:
            doc[key] = b
    gpu = "gpu"
    for key in ("kiln_cuda", "torch", "kiln_vulkan"):
        dev = doc.get(key, {}).get("device")
        if isinstance(dev, dict) and dev.get("name"):
            gpu = dev["name"]
            break
    if gpu == "gpu":  # a run without benches: the summary's machine line names the GPU
        m = re.search(r"^machine: ([^|]+?) \|", "\n".join(doc.get("summary", [])), re.M)
        if m and m.group(1) != "no GPU":
            gpu = m.group(1)
    if "summary" not in doc and not tests and not any(k in doc for k in ("kiln_cuda", "kiln_vulkan", "torch", "accuracy")):
        print(f"gpu_report.py results: no run's files in {a.dir} (summary.txt, results.tar, tests-*.json, bench-*.json)",
              file=sys.stderr)
        return 2
    text = "\n".join(doc.get("summary", []))
    started = re.search(r"started (\d{4}-\d\d-\d\dT[\d:]+Z)", text)
    bundle = re.search(r"bundle: (\S+) built", text)
    ts = next((doc[k].get("timestamp") for k in ("kiln_cuda", "torch", "kiln_vulkan") if k in doc), None)
    date = (started.group(1) if started else ts or "")[:10] or __import__("time").strftime("%Y-%m-%d")
    commit = next((doc[k].get("kiln", {}).get("commit") for k in ("kiln_cuda", "kiln_vulkan") if k in doc), None)
    if not commit:
        commit = bundle.group(1) if bundle else "unknown"
    # Files of another run (an older folder's leftovers) must not pass as this run's.
    mixed = []
    def rev(text):  # the hex part of "11ade99+dirty" / "11ade99819db-dirty"
        m_ = re.match(r"[0-9a-f]+", text or "")
        return m_.group(0) if m_ else ""
    if bundle and rev(bundle.group(1)):
        b_ = rev(bundle.group(1))
        for k in ("kiln_cuda", "kiln_vulkan"):
            c = doc.get(k, {}).get("kiln", {}).get("commit")
            if c and rev(c) and not (rev(c).startswith(b_) or b_.startswith(rev(c))):
                mixed.append(f"{k}: commit {c}, the bundle's {bundle.group(1)}")
    if started:
        for k in ("kiln_cuda", "kiln_vulkan", "torch"):
            t = doc.get(k, {}).get("timestamp")
            if isinstance(t, str) and t[:10] and t[:19] < started.group(1)[:19]:
                mixed.append(f"{k}: timestamp {t}, before the run started ({started.group(1)})")
    if mixed:
        doc["mixed_runs"] = mixed
        for m_ in mixed:
            print(f"gpu_report.py results: warning: {m_}", file=sys.stderr)
    doc["gpu"], doc["date"], doc["commit"] = gpu, date, commit
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.lower().replace("nvidia", "")).strip("-") or "gpu"
    out = a.out
    if os.path.isdir(out):
        out = os.path.join(out, f"{date}-{slug}-{re.sub(r'[^A-Za-z0-9]+', '-', commit).strip('-')}.json")
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(out + ".tmp", out)
    print(out)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("gtest-counts"); s.add_argument("file"); s.set_defaults(fn=cmd_gtest_counts)
    s = sub.add_parser("gtest-failures"); s.add_argument("file"); s.add_argument("n", type=int, nargs="?", default=5)
    s.set_defaults(fn=cmd_gtest_failures)
    s = sub.add_parser("gtest-skips"); s.add_argument("file"); s.add_argument("n", type=int, nargs="?", default=3)
    s.set_defaults(fn=cmd_gtest_skips)
    s = sub.add_parser("gtest-merge"); s.add_argument("out"); s.add_argument("inputs", nargs="+")
    s.set_defaults(fn=cmd_gtest_merge)
    s = sub.add_parser("bench-brief"); s.add_argument("file"); s.set_defaults(fn=cmd_bench_brief)
    s = sub.add_parser("compare"); s.add_argument("--kiln"); s.add_argument("--vulkan"); s.add_argument("--torch")
    s.set_defaults(fn=cmd_compare)
    s = sub.add_parser("results", help="merge a run's files into one JSON for bench/results/")
    s.add_argument("dir", help="the folder the run's files came back to")
    s.add_argument("--out", default="bench/results", help="file, or folder for <date>-<gpu>.json")
    s.set_defaults(fn=cmd_results)
    a = p.parse_args()
    sys.exit(a.fn(a))


if __name__ == "__main__":
    main()
