#!/usr/bin/env python3
"""kiln-bench's PyTorch peer: times the cases kiln-bench sends through PyTorch eager and
torch.compile, the way kiln-bench times Kiln (warm-up, then one pair of CUDA events per run, then
batches of the repeats back to back between one pair of events; the host clock on the CPU).

  python3 torch_peer.py --request request.json --out response.json

The request (written by kiln-bench --peer torch):
  {"device": "cuda:0" | "cpu", "repeats": R, "warmup": W, "batches": B,
   "cases": [{"index", "name", "elements", "inputs": [{"dtype": "torch.float32", "lo", "hi"[, "elements"]}],
              "body": "t0 = x0\\nt1 = torch.exp(t0)\\nreturn t1\\n"}]}
The response:
  {"torch": version, "device": name,
   "cases": [{"index", "name", "eager": {"per_run": [us...], "batch": [us...]} | {"error": why},
              "compile": ...}]}
Exit status 2, with the reason as the last line on stderr, when PyTorch or the device is missing.
"""
import argparse
import json
import sys
import time


def fail(msg):
    print(f"torch_peer: {msg}", file=sys.stderr)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--request", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(a.request) as f:
        req = json.load(f)
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        fail(f"PyTorch is not installed for {sys.executable} ({type(e).__name__}: {e})")

    dev = torch.device(req["device"])
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        fail(f"PyTorch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
    repeats, warmup, batches = req["repeats"], max(1, req["warmup"]), req["batches"]
    gen = torch.Generator(device=dev)
    gen.manual_seed(1234)

    def make_input(spec, n):
        dtype = eval(spec["dtype"], {"torch": torch})
        lo, hi = spec["lo"], spec["hi"]
        if dtype == torch.bool:
            return torch.rand(n, device=dev, generator=gen) < 0.5
        if dtype.is_floating_point:
            x = torch.rand(n, device=dev, generator=gen, dtype=torch.float32) * (hi - lo) + lo
            x = torch.where(x.abs() < 1e-3, torch.ones_like(x), x)  # never zero, like kiln-bench
            return x.to(dtype)
        x = torch.randint(int(lo), int(hi) + 1, (n,), device=dev, generator=gen, dtype=torch.int64)
        return x.to(dtype)

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    def interval():
        # (start, stop) -> microseconds; CUDA events on the GPU, the host clock on the CPU.
        if cuda:
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            return lambda: (e.record(), e.synchronize(), s.elapsed_time(e) * 1000.0)[2]
        t0 = time.perf_counter()
        return lambda: (time.perf_counter() - t0) * 1e6

    def timed(fn, sets):
        for r in range(warmup):
            fn(*sets[r % len(sets)])
        sync()
        per_run = []
        for r in range(repeats):
            stop = interval()
            fn(*sets[r % len(sets)])
            per_run.append(stop())
        batch = []
        for _ in range(batches):
            stop = interval()
            for r in range(repeats):
                fn(*sets[r % len(sets)])
            batch.append(stop() / repeats)
        return {"per_run": per_run, "batch": batch}

    helpers = {"torch": torch, "quotient": lambda a, b: torch.div(a, b, rounding_mode="trunc")}
    out = {"torch": torch.__version__,
           "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
           "cases": []}
    for c in req["cases"]:
        res = {"index": c["index"], "name": c["name"]}
        n = c["elements"]
        args = ", ".join(f"x{k}" for k in range(len(c["inputs"])))
        src = f"def f({args}):\n" + "".join("    " + line + "\n" for line in c["body"].splitlines())
        try:
            scope = dict(helpers)
            exec(src, scope)
            fn = scope["f"]
            # Rotating input sets (different addresses), as kiln-bench does, within memory.
            sets = [[make_input(s, s.get("elements", n)) for s in c["inputs"]] for _ in range(3 if cuda else 1)]
        except Exception as e:
            res["eager"] = res["compile"] = {"error": f"{type(e).__name__}: {e}"}
            out["cases"].append(res)
            continue
        for which in ("eager", "compile"):
            try:
                g = fn if which == "eager" else torch.compile(fn, dynamic=False)
                res[which] = timed(g, sets)
            except Exception as e:
                msg = str(e).strip().splitlines()
                res[which] = {"error": f"{type(e).__name__}: {msg[0] if msg else ''}"[:300]}
        del sets
        if cuda:
            torch.cuda.empty_cache()
        out["cases"].append(res)
        print(f"torch_peer: {c['name']} done", file=sys.stderr)
    with open(a.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
