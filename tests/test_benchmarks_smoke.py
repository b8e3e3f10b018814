"""Smoke test of the benchmark harness (benchmarks/run_all.py), never of anyone's speed.

Runs the real driver, as `make bench` does, on the smallest MLP size with eager and ember at
one thread, and checks the JSON it writes: its structure, that both rows measured, and that
ember's output passed the cross-check against eager. Takes ~15 s (two fresh worker
processes, one ember compile). The harness's own failure handling (a backend that cannot
load becomes an error row) is checked with the cheap case below (eager only, no compile).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_ALL = os.path.join(ROOT, "benchmarks", "run_all.py")
RECORD_KEYS = {"workload", "size", "size_name", "backend", "threads", "status", "median_ms",
               "min_ms", "max_ms", "runs", "times_ms", "prepare_s", "max_abs_err",
               "tolerance", "check", "flops", "gflops", "ratio_vs_eager", "ratio_vs_best_peer"}


def _run(tmp_path, *options):
    output = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, RUN_ALL, "--quick", "--workloads", "mlp",
                           "--sizes", "1", "--threads", "1", "--output", str(output),
                           *options], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(output) as f:
        return json.load(f), proc.stdout


def test_quick_mlp_eager_and_ember(tmp_path):
    document, printed = _run(tmp_path, "--backends", "eager,ember")
    assert document["schema"] == 1
    assert {"cpu", "usable_cpus", "versions", "ember_commit"} <= set(document["machine"])
    assert document["settings"]["backends"] == ["eager", "ember"]
    results = {r["backend"]: r for r in document["results"]}
    assert set(results) == {"eager", "ember"}
    for backend, record in results.items():
        assert record["status"] == "ok", f"{backend}: {record.get('error')}"
        assert RECORD_KEYS <= set(record), RECORD_KEYS - set(record)
        assert (record["workload"], record["size"], record["threads"]) == ("mlp", 1, 1)
        assert record["runs"] == len(record["times_ms"]) >= 10
        assert 0 < record["min_ms"] <= record["median_ms"] <= record["max_ms"]
        assert record["flops"] == 2 * 2 * 512 * 2048  # two 512x2048 GEMMs at batch 1
    assert results["eager"]["ratio_vs_eager"] == pytest.approx(1.0)
    ember = results["ember"]
    assert ember["check"] == "ok", ember
    assert ember["max_abs_err"] <= ember["tolerance"]
    assert "== mlp" in printed and "ember" in printed


def test_rounds_alternate_and_report_the_median_of_their_medians(tmp_path):
    """--rounds 3 measures the row three times (eager only: no compile) and reports the
    median of the three medians, the other statistics over all the runs."""
    document, printed = _run(tmp_path, "--backends", "eager", "--rounds", "3")
    assert document["settings"]["rounds"] == 3
    [row] = document["results"]
    assert row["status"] == "ok" and row["rounds"] == 3
    medians = sorted(row["round_medians_ms"])
    assert len(medians) == 3 and row["median_ms"] == medians[1]
    assert row["runs"] == len(row["times_ms"]) >= 30
    assert row["min_ms"] == min(row["times_ms"]) and row["max_ms"] == max(row["times_ms"])
    assert "== mlp" in printed


def test_unavailable_backend_is_an_error_row(tmp_path, monkeypatch):
    """A backend whose package cannot be imported yields an error row, not a crash."""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    shadow = tmp_path / "shadow" / "onnxruntime"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('onnxruntime hidden by the test')\n")
    document, printed = _run(tmp_path, "--backends", "eager,ort")
    rows = {r["backend"]: r for r in document["results"]}
    assert rows["eager"]["status"] == "ok"
    assert rows["ort"]["status"] == "error"
    assert "onnxruntime hidden by the test" in rows["ort"]["error"]
    assert "ERROR: ImportError: onnxruntime hidden by the test" in printed


def test_runtime_checks_cost_compiles_both_and_prints_a_ratio():
    script = os.path.join(ROOT, "benchmarks", "runtime_checks_cost.py")
    proc = subprocess.run([sys.executable, script, "--workload", "mlp", "--size", "1",
                           "--rounds", "2", "--runs", "2"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.fullmatch(r"mlp size 1: checked [\d.]+ ms, unchecked [\d.]+ ms, ratio [\d.]+\n",
                        proc.stdout), proc.stdout
