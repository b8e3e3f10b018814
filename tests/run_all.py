"""Runs pytest and lit, streaming their progress, and prints one combined closing line.

    python tests/run_all.py [--lit PATH]... [pytest arguments]

pytest writes its dots (`-q`, one line per file) and lit one line per test (`-v`, with the
output of failing tests) to the terminal as they run, so a long run shows where it is. The
counts come from the reports they write, not from their terminal output: pytest's junit XML
and lit's JSON (`-o`). CI reads the last line, `N passed, N failed, N skipped`, with both
suites added up (lit's PASS/XFAIL count as passed, UNSUPPORTED as skipped, everything else as
failed; pytest's errors as failed, xfails as skipped); the exit code is non-zero when anything
failed or nothing passed.

Arguments other than `--lit` go to pytest (default: pyproject.toml's testpaths, i.e. tests/);
`--lit` names the lit tests to run (default: lit_tests).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: pytest's exit codes for "all passed", "some failed" and "no tests were collected"; the others
#: (interrupted, e.g. by a collection error; internal error; usage error) count as a failure.
PYTEST_RAN = (0, 1, 5)

Counts = Tuple[int, int, int]  # passed, failed, skipped


def _banner(text: str) -> None:
    print(f"==== {text}", flush=True)  # before the child writes to the same terminal


def pytest_counts(report: str) -> Counts:
    """(passed, failed, skipped) from pytest's junit XML; errors (collection, fixtures) fail."""
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {key: sum(int(s.get(key, 0)) for s in suites)
             for key in ("tests", "failures", "errors", "skipped")}
    failed = total["failures"] + total["errors"]
    return total["tests"] - failed - total["skipped"], failed, total["skipped"]


def run_pytest(args: List[str], tmp: str) -> Counts:
    _banner("pytest")
    report = os.path.join(tmp, "pytest.xml")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"--junitxml={report}", *args], cwd=ROOT)
    passed, failed, skipped = pytest_counts(report) if os.path.exists(report) else (0, 0, 0)
    if proc.returncode not in PYTEST_RAN:  # interrupted, internal or usage error
        failed = max(failed, 1)
    return passed, failed, skipped


def lit_counts(report: str) -> Counts:
    """(passed, failed, skipped) from lit's JSON report."""
    with open(report) as f:
        codes = [t["code"] for t in json.load(f)["tests"]]
    passed = sum(c in ("PASS", "XFAIL") for c in codes)
    skipped = sum(c == "UNSUPPORTED" for c in codes)
    return passed, len(codes) - passed - skipped, skipped


def run_lit(paths: List[str], tmp: str) -> Counts:
    _banner("lit")
    report = os.path.join(tmp, "lit.json")
    proc = subprocess.run([sys.executable, "-c", "from lit.main import main; main()", "-v",
                           "-o", report, *paths], cwd=ROOT)
    if not os.path.exists(report):
        print(f"lit itself failed (exit code {proc.returncode})", flush=True)
        return 0, 1, 0
    return lit_counts(report)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--lit", action="append", metavar="PATH",
                        help="lit tests to run (repeatable; default: lit_tests)")
    options, pytest_args = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        py = run_pytest(pytest_args, tmp)
        lit = run_lit(options.lit or ["lit_tests"], tmp)
    print(f"pytest: {py[0]} passed, {py[1]} failed, {py[2]} skipped")
    print(f"lit: {lit[0]} passed, {lit[1]} failed, {lit[2]} skipped")
    passed, failed, skipped = py[0] + lit[0], py[1] + lit[1], py[2] + lit[2]
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
