"""One persistent worker of the operator suite: `python benchmarks/op_suite_worker.py PATH`.

PATH is `ember` or `torch-mlir`. The worker imports everything once, writes `{"ready": true}`,
then reads one case (JSON) per line on stdin and answers one result (JSON) per line. It writes
its answers on a private copy of stdout and points fd 1 at stderr, so nothing a compiler prints
can corrupt the protocol. If the process dies (a signal, an abort, exit) or stops answering,
the driver (op_suite.py) records the case as a crash or a timeout and starts a new worker: that
is how a case that would kill a user's Python process is counted instead of ending the run.

A result: `{"id", "path", "outcome", "detail", "stage", "seconds", "lowered"}` with outcome
`pass`, `wrong` (ran, output differs from eager), `error` (an exception; detail is its class
and first line), or `skip` (case.NotApplicable). `lowered` (torch-mlir only) says whether the
linalg-on-tensors import succeeded.
"""
from __future__ import annotations

import gc
import json
import os
import sys
import time
import warnings

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_ember(module, inputs, dynamic, result, expected):
    import ember
    compiled = ember.compile(module, [t.clone() for t in inputs], dynamic_shapes=dynamic)
    result["stage"] = "run"
    outputs = compiled(*[t.clone() for t in inputs])
    return list(outputs) if isinstance(outputs, tuple) else [outputs]


def run_torch_mlir(module, inputs, dynamic, result, expected):
    import torch
    from benchmarks.op_suite_refbackend import run_torch_mlir as run

    def lowered():
        result["lowered"] = True
    outputs = run(module, [t.clone() for t in inputs], dynamic, lowered_callback=lowered)
    result["stage"] = "run"
    # torch-mlir's linalg types are signless: a uint8 result comes back as i8 bytes.
    return [a.view(torch.uint8) if a.dtype == torch.int8 and e.dtype == torch.uint8 else a
            for a, e in zip(outputs, expected)]


RUNNERS = {"ember": run_ember, "torch-mlir": run_torch_mlir}


def run_case(path: str, case: dict) -> dict:
    from benchmarks.op_suite_cases import (NotApplicable, build_case, compare, eager_reference,
                                           error_summary)
    result = {"id": case["id"], "path": path, "outcome": "error", "detail": "",
              "stage": "build", "lowered": False}
    start = time.perf_counter()
    try:
        module, inputs, dynamic = build_case(case)
        full_name = case["op"] + (f".{case['variant']}" if case["variant"] else "")
        expected, unchecked = eager_reference(module, inputs, full_name)
        result["stage"] = "compile"
        actual = RUNNERS[path](module, inputs, dynamic, result, expected)
        result["stage"] = "compare"
        compare(actual, expected, unchecked)
        result.update(outcome="pass",
                      detail=f"{unchecked}: shapes and dtypes only" if unchecked else "")
    except NotApplicable as e:
        result.update(outcome="skip", detail=str(e)[:300])
    except AssertionError as e:
        wrong = result["stage"] == "compare"
        result.update(outcome="wrong" if wrong else "error",
                      detail=error_summary(e) if wrong else f"AssertionError: {error_summary(e)}")
    except Exception as e:
        stage = getattr(e, "stage", None)
        if stage:
            result["stage"] = stage
        detail = error_summary(e) if stage else f"{type(e).__name__}: {error_summary(e)}"
        result.update(outcome="error", detail=detail)
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def main() -> None:
    path = sys.argv[1]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    warnings.simplefilter("ignore")
    import torch
    torch.set_num_threads(1)
    from benchmarks.op_suite_cases import op_infos
    op_infos()
    if path == "ember":
        import ember.compiler  # noqa: F401  (load the heavy imports before the first case)
    else:
        import torch_mlir.fx  # noqa: F401
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        case = json.loads(line)
        os.ftruncate(2, 0)  # the driver reads this case's stderr tail after a crash
        print(f"case {case['id']}", file=sys.stderr, flush=True)
        protocol.write(json.dumps(run_case(path, case)) + "\n")
        gc.collect()


if __name__ == "__main__":
    main()
