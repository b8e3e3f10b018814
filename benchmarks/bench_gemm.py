"""ember's CPU GEMM code generation against PyTorch, side by side in one process.

    python benchmarks/bench_gemm.py                       # sgemm + MLP block, 1 and all threads
    python benchmarks/bench_gemm.py --workloads sgemm --sizes 1024 --threads 2 --runs 50
    python benchmarks/bench_gemm.py --json out.json

Workloads: the square sgemm `x @ W` (W a weight, so ember packs it at compile time) at n = 256,
512, 1024, 2048, reported in GFLOP/s (2 n^3) and as the fraction of torch.matmul's GFLOP/s; the
MLP block of examples/mlp_block.py at batch 1, 64, 256, 1024, reported in ms and as ember's
time over eager's. Each case is compiled by `ember.compile` for its static shape and run through
the runtime's `Model.run` into a preallocated output; torch runs eager under `no_grad`.

Method: the two are timed in alternating blocks within one process (torch, pause, ember, pause,
... `--rounds` times), so both see the same machine state; the pause lets the other library's
OpenMP workers stop spinning (two OpenMP runtimes live in this process: torch's libgomp and
ember's libomp). At least `--runs` timed calls each after warm-up; median and min. Outputs are
cross-checked against torch first. The 1-minute load average is printed per row: other
processes on the cores make the multi-threaded numbers of both unreliable. This measures, it
does not assert: the bars of issue 3 are printed next to the numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
from mlp_block import MLPBlock  # noqa: E402


class SGEMM(torch.nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(n, n) / math.sqrt(n))

    def forward(self, x):
        return x @ self.weight


def build(workload: str, size: int):
    """(torch module, input, flops) for one case, seeded."""
    torch.manual_seed(0)
    if workload == "sgemm":
        return SGEMM(size).eval(), torch.randn(size, size), 2.0 * size ** 3
    model = MLPBlock().eval()
    return model, torch.randn(size, 512), 2.0 * size * 512 * 2048 * 2


def compile_ember(model, x, workdir: str):
    import ember
    compiled = ember.compile(model, (x,), workdir=workdir)
    return compiled


def _block(fn, count: int, inner: int):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return times


def measure(torch_fn, ember_fn, *, runs: int, rounds: int, pause: float, flops: float):
    """Alternating blocks of torch and ember; per-call times in seconds."""
    # One timed sample is >~ 1 ms of work and each block starts with warm-up samples: after
    # a pause, idle cores clock down and sleeping OpenMP workers need waking, which would
    # otherwise land in the timed samples of the small cases.
    inner = max(1, int(2e8 // max(flops, 1.0)))
    per_round = max(1, -(-runs // rounds))
    t_torch, t_ember = [], []
    for _ in range(rounds):
        _block(torch_fn, 3, inner)
        t_torch += _block(torch_fn, per_round, inner)
        time.sleep(pause)
        _block(ember_fn, 3, inner)
        t_ember += _block(ember_fn, per_round, inner)
        time.sleep(pause)
    return t_torch, t_ember


def run_case(workload: str, size: int, threads: int, args, compiled_cache: dict) -> dict:
    from ember.runtime import Model
    model, x, flops = build(workload, size)
    key = (workload, size)
    if key not in compiled_cache:
        workdir = tempfile.mkdtemp(prefix=f"bench-{workload}-{size}-")
        start = time.perf_counter()
        compiled_cache[key] = (compile_ember(model, x, workdir), time.perf_counter() - start)
    compiled, compile_s = compiled_cache[key]
    runtime = Model(compiled.artifact_dir, num_threads=threads)
    torch.set_num_threads(threads)
    with torch.no_grad():
        expected = model(x)
    out = torch.empty_like(expected)
    runtime.run([x], [out])
    err = float((out - expected).abs().max())
    ok = err <= 1e-4 + 1e-4 * float(expected.abs().max())

    def torch_fn():
        with torch.no_grad():
            model(x)

    def ember_fn():
        runtime.run([x], [out])
    t_torch, t_ember = measure(torch_fn, ember_fn, runs=args.runs, rounds=args.rounds,
                               pause=args.pause, flops=flops)
    med_t, med_e = statistics.median(t_torch), statistics.median(t_ember)
    return {
        "workload": workload, "size": size, "threads": threads, "runs": len(t_ember),
        "compile_s": round(compile_s, 3), "max_abs_err": err, "check": "ok" if ok else "MISMATCH",
        "ember_median_ms": med_e * 1e3, "ember_min_ms": min(t_ember) * 1e3,
        "torch_median_ms": med_t * 1e3, "torch_min_ms": min(t_torch) * 1e3,
        "ember_gflops": flops / med_e / 1e9, "torch_gflops": flops / med_t / 1e9,
        "ember_over_torch_time": med_e / med_t,
        "loadavg_1min": os.getloadavg()[0],
    }


def print_row(r: dict) -> None:
    if r["workload"] == "sgemm":
        print(f"sgemm n={r['size']:<5} T={r['threads']}  ember {r['ember_gflops']:7.1f} GF/s "
              f"(min {2.0 * r['size'] ** 3 / r['ember_min_ms'] / 1e6:6.1f})  "
              f"torch {r['torch_gflops']:7.1f} GF/s "
              f"(min {2.0 * r['size'] ** 3 / r['torch_min_ms'] / 1e6:6.1f})  ember/torch GF/s "
              f"{r['torch_median_ms'] / r['ember_median_ms']:5.2f}  [{r['check']}] "
              f"load {r['loadavg_1min']:.1f}", flush=True)
    else:
        print(f"mlp   b={r['size']:<5} T={r['threads']}  ember {r['ember_median_ms']:8.3f} ms "
              f"(min {r['ember_min_ms']:7.3f})  torch {r['torch_median_ms']:8.3f} ms "
              f"(min {r['torch_min_ms']:7.3f})  ember/torch time "
              f"{r['ember_over_torch_time']:5.2f}  [{r['check']}] load {r['loadavg_1min']:.1f}",
              flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="sgemm,mlp")
    p.add_argument("--sizes", default="", help="comma list (default: all of each workload)")
    p.add_argument("--threads", default=f"1,{os.cpu_count() or 1}")
    p.add_argument("--runs", type=int, default=40, help="timed calls per backend (>= 30)")
    p.add_argument("--rounds", type=int, default=4, help="alternating blocks per backend")
    p.add_argument("--pause", type=float, default=0.3, help="seconds between blocks")
    p.add_argument("--json", default="", help="also write the rows to this file")
    args = p.parse_args(argv)
    defaults = {"sgemm": [256, 512, 1024, 2048], "mlp": [1, 64, 256, 1024]}
    threads = sorted({int(t) for t in args.threads.split(",") if t})
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"torch {torch.__version__}; median of {args.runs} runs in {args.rounds} "
          f"alternating blocks", flush=True)
    rows, cache = [], {}
    for workload in args.workloads.split(","):
        sizes = [int(s) for s in args.sizes.split(",") if s] or defaults[workload]
        for size in sizes:
            for t in threads:
                row = run_case(workload, size, t, args, cache)
                rows.append(row)
                print_row(row)
    bars = [r for r in rows if r["threads"] == max(threads)]
    for r in bars:
        if r["workload"] == "sgemm" and r["size"] == 1024:
            print(f"# bar sgemm 1024 >= 0.8x torch GFLOP/s: "
                  f"{r['torch_median_ms'] / r['ember_median_ms']:.2f}x")
        if r["workload"] == "mlp" and r["size"] == 256:
            print(f"# bar MLP batch 256 <= 1.0x eager latency: {r['ember_over_torch_time']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.platform(), "rows": rows}, f, indent=1)
    return 0 if all(r["check"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
