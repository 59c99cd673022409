#!/usr/bin/env python3
"""The PyTorch peer of kiln-bench: times the same elementwise ops through PyTorch's CUDA kernels,
with CUDA events, counting bytes the way kiln-bench does (every input read once, the output written
once), and a cuBLAS matrix product (torch.matmul) as the compute peak. Writes JSON:

  {"device": {"name", "sm_count", "l2_bytes", ...}, "torch": ..., "config": {"elements", "repeats"},
   "cases": [{"name": "add.f32", "bytes", "time_us": {"median","min","max"}, "gb_per_s",
              "batch_gb_per_s", "pct_of_copy", "note"}],
   "gemm":  [{"name": "bf16.8192", "m","n","k", "time_us": {...}, "tflops"}]}

  python3 torch_peer.py --json torch-peer.json [--size N] [--repeats R] [--no-gemm]
Case names match kiln-bench's, so gpu_report.py can put them side by side.
"""
import argparse
import json
import os
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True)
    ap.add_argument("--size", type=int, default=1 << 26, help="elements per case (kiln-bench's GPU default: 2^26)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--gemm-size", type=int, default=8192)
    ap.add_argument("--no-gemm", action="store_true")
    a = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("torch_peer: PyTorch sees no CUDA device", file=sys.stderr)
        return 2
    dev = torch.device("cuda:0")
    props = torch.cuda.get_device_properties(dev)
    n = a.size
    gen = torch.Generator(device=dev)
    gen.manual_seed(1234)

    def rnd(dtype, lo=0.5, hi=1.5, signed=True):
        # Random, never zero: |x| in [lo, hi], random sign.
        x = torch.rand(n, device=dev, generator=gen, dtype=torch.float32) * (hi - lo) + lo
        if signed:
            x = torch.where(torch.rand(n, device=dev, generator=gen) < 0.5, -x, x)
        return x.to(dtype)

    def timed(fn, repeats=None):
        repeats = repeats or a.repeats
        for _ in range(a.warmup):
            fn()
        torch.cuda.synchronize()
        samples = []
        for _ in range(repeats):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            samples.append(s.elapsed_time(e) * 1000.0)
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(repeats):
            fn()
        e.record()
        e.synchronize()
        batch = s.elapsed_time(e) * 1000.0 / repeats
        return samples, batch

    # name, input makers, the op writing into `out`, output dtype, note
    f32, f16, s32 = torch.float32, torch.float16, torch.int32

    def cases():
        yield "copy.f32", [lambda: rnd(f32)], lambda x, out: out.copy_(x), f32, "Tensor.copy_ (device-to-device)"
        yield "add.f32", [lambda: rnd(f32), lambda: rnd(f32)], lambda x, y, out: torch.add(x, y, out=out), f32, ""
        yield "multiply.f32", [lambda: rnd(f32), lambda: rnd(f32)], lambda x, y, out: torch.mul(x, y, out=out), f32, ""
        yield "multiply.f16", [lambda: rnd(f16), lambda: rnd(f16)], lambda x, y, out: torch.mul(x, y, out=out), f16, ""
        yield "exp.f32", [lambda: rnd(f32)], lambda x, out: torch.exp(x, out=out), f32, ""
        yield "divide.f32", [lambda: rnd(f32), lambda: rnd(f32)], lambda x, y, out: torch.div(x, y, out=out), f32, ""
        yield "as_type.f32_f16", [lambda: rnd(f32)], lambda x, out: out.copy_(x), f16, "Tensor.copy_ with conversion"
        yield ("select.f32", [lambda: torch.rand(n, device=dev, generator=gen) < 0.5, lambda: rnd(f32), lambda: rnd(f32)],
               lambda c, x, y, out: torch.where(c, x, y, out=out), f32, "torch.where (bool condition)")
        yield ("bitwise_xor.s32", [lambda: torch.randint(-2**31, 2**31 - 1, (n,), device=dev, generator=gen, dtype=s32)] * 2,
               lambda x, y, out: torch.bitwise_xor(x, y, out=out), s32, "")
        yield "less.f32", [lambda: rnd(f32), lambda: rnd(f32)], lambda x, y, out: torch.lt(x, y, out=out), torch.bool, ""
        yield ("fused.gelu_tanh.f32", [lambda: rnd(f32)],
               lambda x, out: torch.ops.aten.gelu.out(x, approximate="tanh", out=out),
               f32, "F.gelu(approximate='tanh'): one PyTorch kernel")
        yield ("fused.mix.f32", [lambda: rnd(f32), lambda: rnd(f32)],
               lambda x, y, out: out.copy_(x * torch.sigmoid(x) + y * 0.5 - torch.abs(x) / (1 + y * y)),
               f32, "eager PyTorch: several kernels and temporaries (unfused)")

    results = []
    copy_gbps = None
    for name, makers, op, out_dtype, note in cases():
        row = {"name": name, "elements": n, "note": note}
        try:
            ins = [m() for m in makers]
            out = torch.empty(n, device=dev, dtype=out_dtype)
            nbytes = sum(t.element_size() * t.numel() for t in ins) + out.element_size() * out.numel()
            row["bytes"] = nbytes
            samples, batch = timed(lambda: op(*ins, out))
            med = statistics.median(samples)
            row["time_us"] = {"median": med, "min": min(samples), "max": max(samples)}
            row["batch_us_per_run"] = batch
            row["gb_per_s"] = nbytes / (med * 1e-6) / 1e9
            row["batch_gb_per_s"] = nbytes / (batch * 1e-6) / 1e9
            if name == "copy.f32":
                copy_gbps = row["gb_per_s"]
            row["pct_of_copy"] = 100.0 * row["gb_per_s"] / copy_gbps if copy_gbps else None
            del ins, out
        except Exception as e:  # keep going: one op's failure must not lose the others
            row["error"] = f"{type(e).__name__}: {e}"
        torch.cuda.empty_cache()
        results.append(row)
        print(f"{name:<22} {row.get('gb_per_s', 0):9.1f} GB/s  {row.get('time_us', {}).get('median', 0):9.1f} us"
              f"  {'' if row.get('pct_of_copy') is None else '%.1f%% of copy' % row['pct_of_copy']}"
              f"{'  ERROR ' + row['error'] if 'error' in row else ''}", flush=True)

    gemms = []
    if not a.no_gemm:
        m = a.gemm_size
        for dtype, label, tf32 in ((torch.bfloat16, "bf16", False), (torch.float16, "f16", False),
                                   (torch.float32, "tf32", True), (torch.float32, "f32", False)):
            row = {"name": f"{label}.{m}", "m": m, "n": m, "k": m, "dtype": label}
            try:
                torch.backends.cuda.matmul.allow_tf32 = tf32
                x = torch.randn(m, m, device=dev, dtype=dtype, generator=gen)
                y = torch.randn(m, m, device=dev, dtype=dtype, generator=gen)
                o = torch.empty(m, m, device=dev, dtype=dtype)
                reps = a.repeats if dtype != torch.float32 or tf32 else max(3, a.repeats // 4)
                samples, batch = timed(lambda: torch.matmul(x, y, out=o), reps)
                med = statistics.median(samples)
                row["time_us"] = {"median": med, "min": min(samples), "max": max(samples)}
                row["tflops"] = 2.0 * m * m * m / (med * 1e-6) / 1e12
                row["batch_tflops"] = 2.0 * m * m * m / (batch * 1e-6) / 1e12
                del x, y, o
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}"
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.cuda.empty_cache()
            gemms.append(row)
            print(f"gemm {row['name']:<16} {row.get('tflops', 0):8.1f} TFLOP/s"
                  f"{'  ERROR ' + row['error'] if 'error' in row else ''}", flush=True)

    doc = {
        "peer": "pytorch",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": {"name": props.name, "id": "cuda:0", "sm_count": props.multi_processor_count,
                   "memory_bytes": props.total_memory, "l2_bytes": getattr(props, "L2_cache_size", None),
                   "capability": f"{props.major}.{props.minor}"},
        "config": {"elements": n, "repeats": a.repeats, "warmup": a.warmup, "timer": "CUDA events"},
        "cases": results,
        "gemm": gemms,
    }
    with open(a.json + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(a.json + ".tmp", a.json)
    print(f"wrote {a.json}")
    return 1 if any("error" in r for r in results + gemms) else 0


if __name__ == "__main__":
    sys.exit(main())
