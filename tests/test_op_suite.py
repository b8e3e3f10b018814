"""The operator-suite harness (benchmarks/op_suite*.py), never anyone's coverage numbers.

The suite itself is a measurement (hours); these check the parts its numbers rest on: that
torch-mlir's path really executes (several results, bf16, dynamic shapes) and names the stage
that failed, that a worker which dies or hangs is counted as a crash or a timeout and replaced,
that the cases cover each mode, that random ops (OpInfo reseeds them on every call) and
uninitialized results are checked for shapes only, and that the summary groups ember's
failures by op family.
"""
from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest
import torch

from compare import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import op_suite, op_suite_report  # noqa: E402
from benchmarks.op_suite_refbackend import StageError, run_torch_mlir  # noqa: E402


class _Pair(torch.nn.Module):
    def forward(self, x, y):
        return x + y, x > y, x.sum()


def test_torch_mlir_path_runs_several_results_in_bf16_with_dynamic_shapes():
    from torch.export import Dim
    x, y = torch.randn(6, 4).bfloat16(), torch.randn(6, 4).bfloat16()
    dynamic = {"x": {0: Dim.AUTO(max=64)}, "y": {0: Dim.AUTO(max=64)}}
    outputs = run_torch_mlir(_Pair(), [x, y], dynamic)
    assert_close(outputs, _Pair()(x, y))


class _DataDependent(torch.nn.Module):
    def forward(self, x):
        return x + 1 if x.sum() > 0 else x - 1


def test_torch_mlir_failure_names_its_stage():
    with pytest.raises(StageError) as failure:
        run_torch_mlir(_DataDependent(), [torch.randn(3)])
    assert failure.value.stage == "export"


# A stand-in worker speaking op_suite_worker.py's protocol: the case's "op" says what to do.
FAKE_WORKER = textwrap.dedent("""
    import json, os, sys, time
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        if case["op"] == "abort":
            print("LLVM ERROR: pretend", file=sys.stderr, flush=True)
            os.abort()
        if case["op"] == "hang":
            time.sleep(60)
        print(json.dumps({"id": case["id"], "outcome": "pass"}), flush=True)
""")


def test_worker_counts_crashes_and_timeouts_and_restarts(tmp_path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    worker = op_suite.Worker("ember", str(tmp_path / "worker.log"), timeout_s=2,
                             argv=[sys.executable, str(script)])
    try:
        outcomes = [worker.run({"id": op, "op": op})["outcome"]
                    for op in ("ok", "abort", "ok", "hang", "ok")]
        crash = worker.run({"id": "abort", "op": "abort"})
    finally:
        worker.close()
    assert outcomes == ["pass", "crash", "pass", "timeout", "pass"]
    assert crash["detail"] == "signal SIGABRT: LLVM ERROR: pretend"


def test_cases_cover_dtypes_and_modes():
    from benchmarks.op_suite_cases import enumerate_cases
    ids = {c["id"] for c in enumerate_cases(["^add$"])}
    assert {"add|float32|0|static", "add|float16|0|static", "add|bfloat16|0|static",
            "add|int64|0|static", "add|complex64|0|static", "add|float32|0|dynamic",
            "add|float32|0|inplace"} == ids


@pytest.mark.parametrize("op, unchecked", [("rand_like", "random op"),
                                            ("empty_like", "uninitialized result"),
                                            ("add", "")])
def test_values_of_random_and_uninitialized_results_are_not_compared(op, unchecked):
    from benchmarks.op_suite_cases import build_case, eager_reference
    module, inputs, _ = build_case({"op": op, "variant": "", "dtype": "float32", "sample": 0,
                                    "mode": "static"})
    assert eager_reference(module, inputs, op)[1] == unchecked


def _result(case, path, outcome, detail=""):
    return {"id": case, "path": path, "outcome": outcome, "detail": detail, "stage": "compile",
            "lowered": True, "op": case.split("|")[0], "dtype": case.split("|")[1],
            "mode": case.split("|")[3]}


def test_summary_groups_ember_failures_by_family():
    results = [
        _result("add|float32|0|static", "ember", "pass"),
        _result("add|float32|0|static", "torch-mlir", "pass"),
        _result("erf|float16|0|static", "ember", "error", "UnsupportedOpsError: aten.erf 3x"),
        _result("erf|float16|0|static", "torch-mlir", "pass"),
        _result("erf|float32|0|static", "ember", "crash", "signal SIGSEGV: boom"),
        _result("erf|float32|0|static", "torch-mlir", "error", "TypeError: no"),
    ]
    summary = op_suite_report.render(results, 3, ["python benchmarks/op_suite.py"])
    assert "| ember | 1 | 0 | 1 | 1 | 0 | 0 | 3 | **33.3%** |" in summary
    assert "| torch-mlir | 2 | 0 | 1 | 0 | 0 | 0 | 3 | **66.7%** |" in summary
    assert "| erf | 2 / 2 | error 1, crash 1 | 1 |" in summary
    assert "error: UnsupportedOpsError: aten.erf Nx" in summary
    assert "| erf|float16|0|static | error |" in summary  # torch-mlir passes, ember fails


def test_rerun_runs_one_path_again_and_keeps_the_others_results(tmp_path, monkeypatch):
    """--resume --rerun ember drops ember's results of the selected cases (not of others) and
    runs them again; torch-mlir's stay and are not rerun."""
    out = tmp_path / "suite"
    old = [{"id": f"{op}|float32|0|static", "path": path, "outcome": "error", "detail": "old",
            "op": op, "dtype": "float32", "sample": 0, "mode": "static"}
           for op in ("add", "sub") for path in op_suite.PATHS]
    (tmp_path / "suite.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    seen = {}
    monkeypatch.setattr(op_suite, "run_cases",
                        lambda cases, args, path, done: seen.update(done=done))
    op_suite.main(["--ops", "^add$", "--resume", "--rerun", "ember", "--output", str(out)])
    assert ("add|float32|0|static", "torch-mlir") in seen["done"]
    assert not any(path == "ember" and i.startswith("add|") for i, path in seen["done"])
    kept = [(r["id"], r["path"]) for r in map(json.loads, open(tmp_path / "suite.jsonl"))]
    assert ("sub|float32|0|static", "ember") in kept
    assert ("add|float32|0|static", "ember") not in kept
    with pytest.raises(SystemExit):
        op_suite.main(["--rerun", "ember", "--output", str(out)])
