"""ember's CPU benchmark driver (`make bench`).

For each workload, size, thread count and backend it starts a fresh worker process
(worker.py) so that thread pools, JIT caches and warm weights never leak from one backend into
another, collects the worker's JSON record, prints a table per workload and writes everything
(machine info, settings, every timing) to benchmarks/results/<timestamp>.json.

    python benchmarks/run_all.py                        # everything, 1 thread and all cores
    python benchmarks/run_all.py --quick                # fewer sizes and runs (smoke test)
    python benchmarks/run_all.py --workloads mlp,sgemm --backends eager,ort,ember --threads 2

A backend that fails (missing package, compile error, crash, timeout) becomes a row with the
error's first line; the run goes on.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.backends import EMBER_TARGET_VARIABLE, BACKENDS  # noqa: E402
from benchmarks.models import WORKLOADS  # noqa: E402
from benchmarks.report import (BUSY, annotate, format_header, format_table,  # noqa: E402
                               machine_info)
from benchmarks.worker import _cpu_snapshot  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
#: environment variables that size the thread pools of every library a worker may load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "EMBER_NUM_THREADS")
#: (runs, warmup, min_time_s) for a full and a --quick run.
#: --quick still times for 0.25 s so that the "other load" figure (see worker.py) means something.
PROFILES = {"full": (30, 5, 1.0), "quick": (10, 2, 0.25)}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--backends", default=",".join(BACKENDS),
                   help=f"comma-separated subset of {','.join(BACKENDS)}")
    p.add_argument("--threads", default="1,all",
                   help="comma-separated thread counts; 'all' = every usable core")
    p.add_argument("--sizes", default=None,
                   help="comma-separated sizes (batch, or n for sgemm) instead of the defaults")
    p.add_argument("--quick", action="store_true", help="fewer sizes and runs (smoke tests)")
    p.add_argument("--runs", type=int, default=None, help="minimum timed runs (default 30)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 5)")
    p.add_argument("--min-time", type=float, default=None, dest="min_time",
                   help="keep timing until this many seconds passed (default 1.0)")
    p.add_argument("--timeout", type=float, default=900,
                   help="seconds one worker may take, compile included")
    p.add_argument("--quiet-wait", type=float, default=0, dest="quiet_wait",
                   help="before each worker, wait up to this many seconds for the machine to "
                        "go quiet (other processes < %.2f cores); for shared machines" % BUSY)
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every row of a workload this many times, round-robin (all its "
                        "rows, then all again), and report the median of the rounds' medians: "
                        "a machine whose speed drifts over minutes then slows every backend alike")
    p.add_argument("--retries", type=int, default=0,
                   help="re-measure a row timed on a busy machine up to this many times, "
                        "keeping the quietest measurement")
    p.add_argument("--ember-target", default="host", dest="ember_target",
                   help="the target ember compiles for (e.g. host:cpu=haswell: the AVX2 "
                        "kernels on a newer CPU); other backends are unaffected")
    p.add_argument("--output", default=None,
                   help="JSON path (default benchmarks/results/<timestamp>.json)")
    args = p.parse_args(argv)
    runs, warmup, min_time = PROFILES["quick" if args.quick else "full"]
    args.runs = runs if args.runs is None else args.runs
    args.warmup = warmup if args.warmup is None else args.warmup
    args.min_time = min_time if args.min_time is None else args.min_time
    args.workloads = _choose(args.workloads, WORKLOADS, "workload")
    args.backends = _choose(args.backends, BACKENDS, "backend")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    args.threads = sorted({cores if t.strip() == "all" else int(t)
                           for t in args.threads.split(",")})
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    return args


def _choose(text: str, table: dict, what: str) -> list:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown {what}(s) {unknown}; choose from {list(table)}")
    return [n for n in table if n in names]  # table order, so tables read the same every run


def run_worker(spec: dict, timeout: float) -> dict:
    """Runs one measurement in a fresh interpreter and returns its record, or an error
    record built from the crash, the timeout or the worker's last stderr line."""
    env = dict(os.environ, **{v: str(spec["threads"]) for v in THREAD_VARIABLES})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (ROOT, env.get("PYTHONPATH"))))
    env[EMBER_TARGET_VARIABLE] = spec.get("ember_target", "host")
    with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
        out = os.path.join(tmp, "record.json")
        try:
            proc = subprocess.run([sys.executable, os.path.join(HERE, "worker.py"),
                                   json.dumps(spec), out], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"worker took longer than {timeout:.0f} s"}
        if os.path.exists(out):
            with open(out) as f:
                return json.load(f)
    tail = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    return {"status": "error", "error": f"worker exited with status {proc.returncode}: "
                                        f"{tail[-1] if tail else 'no output'}"[:300],
            "stderr_tail": "\n".join(tail[-20:])}


def wait_for_quiet(max_wait: float) -> None:
    """Samples machine-wide CPU use over 1 s windows until it is below BUSY cores (this
    process is idle meanwhile) or `max_wait` seconds have passed."""
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        before = _cpu_snapshot()
        time.sleep(1.0)
        after = _cpu_snapshot()
        if before is None or after is None or after[0] - before[0] < BUSY:
            return


def measure(spec: dict, args) -> dict:
    """One row: a worker run, repeated up to --retries times while it reads as disturbed by
    other processes; the quietest attempt is kept and the attempt count recorded."""
    attempts = []
    for _ in range(1 + max(0, args.retries)):
        if args.quiet_wait > 0:
            wait_for_quiet(args.quiet_wait)
        start = time.perf_counter()
        record = {**spec, **run_worker(spec, args.timeout), "wall_s": time.perf_counter() - start}
        attempts.append(record)
        if record["status"] != "ok" or (record.get("other_load") or 0) <= BUSY:
            break
    best = min(attempts, key=lambda r: (r["status"] != "ok", r.get("other_load") or 0))
    best["attempts"] = len(attempts)
    return best


def main(argv=None) -> int:
    args = parse_args(argv)
    machine = machine_info()
    settings = {k: getattr(args, k) for k in ("workloads", "backends", "threads", "sizes",
                                              "quick", "runs", "warmup", "min_time", "timeout",
                                              "quiet_wait", "retries", "rounds", "ember_target")}
    settings["min_time_s"] = settings.pop("min_time")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    output = args.output or os.path.join(RESULTS_DIR, f"{stamp}.json")
    document = {"schema": 1, "timestamp": stamp, "command": [sys.executable, *sys.argv],
                "machine": machine, "settings": settings, "results": []}
    rows = {w: [(size, threads, backend)
                for size in (args.sizes or (WORKLOADS[w].quick_sizes if args.quick
                                            else WORKLOADS[w].sizes))
                for threads in args.threads for backend in args.backends]
            for w in args.workloads}
    rounds = max(1, args.rounds)
    total = rounds * sum(len(r) for r in rows.values())
    print(format_header(machine, settings), flush=True)
    began = time.perf_counter()
    done = 0
    for w, plan in rows.items():
        measured = {row: [] for row in plan}
        for round_ in range(rounds):
            for size, threads, backend in plan:
                spec = {"workload": w, "size": size, "backend": backend, "threads": threads,
                        "runs": args.runs, "warmup": args.warmup, "min_time_s": args.min_time,
                        "ember_target": args.ember_target}
                record = measure(spec, args)
                record["size_name"] = WORKLOADS[w].size_name
                measured[size, threads, backend].append(record)
                done += 1
                print(_progress(done, total, record, round_ if rounds > 1 else None),
                      file=sys.stderr, flush=True)
        results = [merge_rounds(records) for records in measured.values()]
        flops = {}
        for record in results:
            if record["status"] == "ok":
                if record["size"] not in flops:
                    flops[record["size"]] = WORKLOADS[w].count_flops(record["size"])
                record["flops"] = flops[record["size"]]
        document["results"] += results
        annotate(document["results"], WORKLOADS)
        print("\n" + format_table(WORKLOADS[w], results, machine), flush=True)
        document["elapsed_s"] = time.perf_counter() - began
        _save(document, output)
    shown = os.path.relpath(output)
    print(f"\nwrote {output if shown.startswith('..') else shown} "
          f"({time.perf_counter() - began:.0f} s)")
    return 0


def merge_rounds(records: list) -> dict:
    """One row from its rounds' records: the first successful one's fields, with median_ms
    the median of the successful rounds' medians, every round's median kept
    (`round_medians_ms`) and the other statistics over all their runs; the first failure when
    no round succeeded."""
    good = [r for r in records if r["status"] == "ok"]
    if len(records) == 1 or not good:
        return records[0]
    medians = [r["median_ms"] for r in good]
    times = [t for r in good for t in r["times_ms"]]
    return {**good[0], "median_ms": statistics.median(medians), "times_ms": times,
            "min_ms": min(times), "max_ms": max(times), "mean_ms": statistics.fmean(times),
            "stdev_ms": statistics.pstdev(times), "runs": len(times),
            "round_medians_ms": medians, "rounds": len(records),
            "other_load": max(r.get("other_load") or 0 for r in good),
            "attempts": sum(r["attempts"] for r in records)}


def _progress(i: int, total: int, r: dict, round_=None) -> str:
    what = f"[{i}/{total}]{' round %d' % (round_ + 1) if round_ is not None else ''} " \
           f"{r['workload']} {r['size_name']}={r['size']} t={r['threads']} " \
           f"{r['backend']}{' (%d attempts)' % r['attempts'] if r['attempts'] > 1 else ''}:"
    if r["status"] != "ok":
        return f"{what} {r['status']}: {r.get('error', '')} ({r['wall_s']:.0f} s)"
    return (f"{what} {r['median_ms']:.3f} ms, check {r['check']}, "
            f"prepare {r['prepare_s']:.1f} s ({r['wall_s']:.0f} s)")


def _save(document: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(document, f, indent=1)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
