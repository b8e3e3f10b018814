"""One measurement in a fresh process: `python benchmarks/worker.py SPEC_JSON OUT_JSON`.

run_all.py starts one worker per (workload, size, threads, backend), so no backend inherits
another's thread pools, JIT caches, allocator state or warm weights. The worker builds the
seeded model and inputs, computes eager's reference, prepares the backend, cross-checks one
call, warms up, times, and writes one JSON record. Any failure is caught and written as an error record, so the
driver always gets a row back.

SPEC: {"workload", "size", "backend", "threads", "runs", "warmup", "min_time_s"}.
"""
from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import tempfile
import time
import traceback

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Upper bound on timed runs when --min-time asks for more than --runs (fast, tiny cases).
MAX_RUNS = 5000
#: the shortest timing window for which the "other load" figure is reported.
MIN_LOAD_WINDOW_S = 0.2


def measure(spec: dict) -> dict:
    import torch

    from benchmarks.backends import BACKENDS, to_numpy
    from benchmarks.models import WORKLOADS

    threads = spec["threads"]
    torch.set_num_threads(threads)
    workload = WORKLOADS[spec["workload"]]
    model = workload.make_model(spec["size"])
    inputs = workload.make_inputs(spec["size"])
    with torch.no_grad():
        reference = to_numpy(model(*inputs))
    record = {}

    with tempfile.TemporaryDirectory(prefix="ember-bench-") as workdir:
        start = time.perf_counter()
        prepared = BACKENDS[spec["backend"]](model, inputs, threads, workdir)
        first = to_numpy(prepared.step())
        record["prepare_s"] = time.perf_counter() - start
        record["info"] = prepared.info
        record.update(cross_check(workload, reference, first, prepared.quantized))
        record.update(time_step(prepared.step, spec))
    return record


#: A quantized backend passes its cross-check when every output's cosine similarity to eager's
#: is at least this (its error is quantization noise, not a bug, up to this point).
QUANTIZED_MIN_COSINE = 0.99


def cross_check(workload, reference, outputs, quantized: bool = False) -> dict:
    """Max abs error against eager over all outputs, judged by the workload's tolerance (a
    quantized backend: by cosine similarity, reported too); a shape mismatch is a failed
    check."""
    import numpy as np
    if len(outputs) != len(reference) or any(o.shape != r.shape
                                             for o, r in zip(outputs, reference)):
        return {"check": "mismatch", "max_abs_err": None, "tolerance": None,
                "check_detail": f"output shapes {[o.shape for o in outputs]} != "
                                f"{[r.shape for r in reference]}"}
    err = max(float(np.max(np.abs(o - r))) if o.size else 0.0
              for o, r in zip(outputs, reference))
    tol = workload.tolerance(max(float(np.max(np.abs(r))) if r.size else 0.0
                                 for r in reference))
    if quantized:
        cosine = min(_cosine(o, r) for o, r in zip(outputs, reference))
        ok = cosine >= QUANTIZED_MIN_COSINE  # NaN compares false
        return {"check": "ok" if ok else "mismatch", "max_abs_err": err, "cosine": cosine,
                "tolerance": f"cosine >= {QUANTIZED_MIN_COSINE}"}
    ok = err <= tol  # NaN compares false: a NaN output is a mismatch
    return {"check": "ok" if ok else "mismatch", "max_abs_err": err, "tolerance": tol}


def _cosine(a, b) -> float:
    import numpy as np
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm else float(np.array_equal(a, b))


def time_step(step, spec) -> dict:
    """`warmup` untimed calls, then at least `runs` timed ones (more, up to MAX_RUNS, until
    `min_time_s` has passed, so sub-millisecond cases are not decided by a few samples).
    The GC is off while timing, as in timeit."""
    for _ in range(spec["warmup"]):
        step()
    times = []
    gc.collect()
    gc.disable()
    before = _cpu_snapshot()
    try:
        begin = time.perf_counter()
        while len(times) < spec["runs"] or (time.perf_counter() - begin < spec["min_time_s"]
                                            and len(times) < MAX_RUNS):
            start = time.perf_counter_ns()
            step()
            times.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        wall = time.perf_counter() - begin
        after = _cpu_snapshot()
        gc.enable()
    return {"other_load": _other_load(before, after, wall), "runs": len(times), "median_ms": statistics.median(times),
            "mean_ms": statistics.fmean(times), "min_ms": min(times), "max_ms": max(times),
            "stdev_ms": statistics.pstdev(times), "times_ms": times}


def _cpu_snapshot():
    """(busy CPU seconds of the whole machine, CPU seconds of this process), from /proc/stat
    (user+nice+system+irq+softirq+steal) and os.times(); None where /proc is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields))
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


def _other_load(before, after, wall: float):
    """How busy the rest of the machine was while we timed: CPU-seconds used by other
    processes (and stolen by the hypervisor) per second of wall time, i.e. ~1.0 means one
    core's worth of competition. A multi-threaded backend sharing its cores with that waits
    at every barrier, so rows with a high value are not trustworthy."""
    if before is None or after is None or wall < MIN_LOAD_WINDOW_S:
        return None  # /proc/stat counts in ticks (10 ms): a shorter window is mostly noise
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / wall)


def summarize(exc: BaseException) -> str:
    """One line for the table: the first line that reads like a diagnostic ("error:"), as
    compilers bury theirs under a banner, else the message's first line. A failed tool's
    stderr counts as part of the message."""
    text = "\n".join(filter(None, (str(exc), getattr(exc, "stderr", None) or "")))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = next((l for l in lines if "error:" in l.lower()), lines[0] if lines else "")
    return f"{type(exc).__name__}: {line}"[:300]


def main(argv) -> int:
    spec_json, out_path = argv[1], argv[2]
    spec = json.loads(spec_json)
    start = time.perf_counter()
    try:
        record = {"status": "ok", **measure(spec)}
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a row
        record = {"status": "error", "error": summarize(exc),
                  "traceback": traceback.format_exc()}
    record["worker_s"] = time.perf_counter() - start
    with open(out_path, "w") as f:
        json.dump(record, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
