"""ember on a GPU against PyTorch eager on the same GPU, with and without graph mode.

    python benchmarks/bench_gpu.py                       # mlp (fp16, batch 1024) and bert
    python benchmarks/bench_gpu.py --workloads mlp --runs 100

The models and inputs are run_all.py's (benchmarks/models.py WORKLOADS: the MLP block
512->2048->512 at batch 1024, the 4-layer BERT-style encoder at batch 8, seq 128), seeded, cast
to fp16. ember compiles each for target "cuda" (this GPU's arch when the target knows it) and
runs it with `Model.run_with_tensors` on torch's current stream into a preallocated output;
"ember-graph" loads the same artifact with graph_mode=True. Each timed step ends with
torch.cuda.synchronize(), so a time is the whole GPU work of one call as a caller waiting for it
sees it. Warm-up calls, then at least --runs timed calls (worker.time_step: median, min, max);
each backend's output is cross-checked against eager's (fp16 tolerance). Writes
benchmarks/results/gpu-<timestamp>.json. Exits with a message when no GPU is usable.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
import tempfile
from datetime import datetime

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks.models import WORKLOADS  # noqa: E402
from benchmarks.report import machine_info  # noqa: E402
from benchmarks.run_all import RESULTS_DIR, _save  # noqa: E402
from benchmarks.worker import cross_check, time_step  # noqa: E402

#: workload -> the size measured (the batch).
SIZES = {"mlp": 1024, "bert": 8}
#: fp16 cross-check: |err| <= ATOL + RTOL * max|reference| (fp16 has ~3 decimal digits).
ATOL, RTOL = 2e-2, 1e-2


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(SIZES),
                   help=f"comma-separated subset of {','.join(SIZES)}")
    p.add_argument("--runs", type=int, default=30, help="minimum timed runs (at least 30)")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    p.add_argument("--min-time", type=float, default=1.0, dest="min_time_s",
                   help="keep timing until this many seconds passed")
    p.add_argument("--output", default=None,
                   help="JSON path (default benchmarks/results/gpu-<timestamp>.json)")
    args = p.parse_args(argv)
    args.workloads = [w for w in args.workloads.split(",") if w]
    unknown = sorted(set(args.workloads) - set(SIZES))
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {list(SIZES)}")
    args.runs = max(args.runs, 30)
    return args


def why_no_gpu():
    """Why this machine cannot run the benchmark, or None."""
    if not torch.cuda.is_available():
        return "no CUDA GPU is usable here (torch.cuda.is_available() is False)"
    from ember.targets import TARGETS
    if "cuda" not in TARGETS:
        return "this ember has no 'cuda' compile target"
    return None


def cuda_target() -> str:
    from ember.targets import TARGETS
    major, minor = torch.cuda.get_device_capability()
    arch = f"sm_{major}{minor}"
    return f"cuda:arch={arch}" if arch in TARGETS["cuda"].archs else "cuda"


def measure_workload(name: str, args, workdir: str) -> list:
    """Rows for eager, ember and ember-graph on one workload."""
    import ember
    from ember.runtime import Model

    workload = WORKLOADS[name]
    size = SIZES[name]
    model = workload.make_model(size).half()
    inputs = tuple(x.half() for x in workload.make_inputs(size))
    checker = dataclasses.replace(workload, atol=ATOL, rtol=RTOL)
    compiled = ember.compile(model, inputs, target=cuda_target(),
                             workdir=os.path.join(workdir, name))
    gpu_model = copy.deepcopy(model).cuda()
    gpu_inputs = [x.cuda() for x in inputs]
    with torch.no_grad():
        reference = [gpu_model(*gpu_inputs).float().cpu().numpy()]

    def eager():
        with torch.no_grad():
            return gpu_model(*gpu_inputs)

    steps = {"eager": eager}
    for backend, graph_mode in (("ember", False), ("ember-graph", True)):
        runtime = Model(compiled.artifact_dir, graph_mode=graph_mode)
        outputs = [torch.empty(runtime.get_output_maximum_shape(i), device="cuda",
                               dtype=getattr(torch, runtime.get_output_dtype(i)))
                   for i in range(len(runtime.get_output_names()))]
        steps[backend] = lambda runtime=runtime, outputs=outputs: \
            runtime.run_with_tensors(gpu_inputs, outputs)[0]

    rows = []
    for backend, step in steps.items():
        first = step()
        torch.cuda.synchronize()
        row = {"workload": name, "size": size, "dtype": "float16", "backend": backend,
               **cross_check(checker, reference, [first.float().cpu().numpy()])}

        def synchronized(step=step):
            step()
            torch.cuda.synchronize()
        row.update(time_step(synchronized, vars(args)))
        rows.append(row)
    eager_ms = rows[0]["median_ms"]
    for row in rows:
        row["ratio_vs_eager"] = row["median_ms"] / eager_ms
    return rows


def format_row(row: dict) -> str:
    check = row["check"] if row["check"] == "ok" else \
        f"!!MISMATCH (max err {row['max_abs_err']}, tolerance {row['tolerance']})"
    return (f"{row['workload']:<10}{row['backend']:<13}{row['median_ms']:>10.3f}"
            f"{row['min_ms']:>9.3f}{row['ratio_vs_eager']:>10.2f}  {check}")


def main(argv=None) -> int:
    args = parse_args(argv)
    reason = why_no_gpu()
    if reason:
        print(f"bench_gpu.py: {reason}; run it on a machine with an NVIDIA GPU",
              file=sys.stderr)
        return 1
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    output = args.output or os.path.join(RESULTS_DIR, f"gpu-{stamp}.json")
    document = {"schema": 1, "timestamp": stamp, "command": [sys.executable, *sys.argv],
                "machine": {**machine_info(), "gpu": torch.cuda.get_device_name(),
                            "cuda": torch.version.cuda, "target": cuda_target()},
                "settings": {k: v for k, v in vars(args).items() if k != "output"},
                "results": []}
    print(f"{document['machine']['gpu']} (torch {torch.__version__}, CUDA "
          f"{torch.version.cuda}, ember target {cuda_target()})")
    print(f"{'workload':<10}{'backend':<13}{'median ms':>10}{'min ms':>9}{'vs eager':>10}  check")
    with tempfile.TemporaryDirectory(prefix="ember-bench-gpu-") as workdir:
        for name in args.workloads:
            for row in measure_workload(name, args, workdir):
                document["results"].append(row)
                print(format_row(row), flush=True)
            _save(document, output)
    print(f"wrote {os.path.relpath(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
