"""Runs pytest and lit and prints one combined closing line: `N passed, N failed`.

pytest's own summary counts only pytest; lit's is in another format. CI reads the last line, so
this wrapper adds both up (lit's PASS/XFAIL count as passed, FAIL/XPASS/UNRESOLVED/TIMEOUT as
failed, UNSUPPORTED as skipped) and exits non-zero when anything failed.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_pytest(extra) -> tuple:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests", *extra], cwd=ROOT, capture_output=True, text=True)
    sys.stdout.write(proc.stdout[-20000:])
    sys.stderr.write(proc.stderr[-5000:])
    counts = {k: 0 for k in ("passed", "failed", "error", "skipped")}
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    for number, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary):
        counts["error" if word.startswith("error") else word] += int(number)
    if proc.returncode not in (0, 1, 5) and not counts["failed"] + counts["error"]:
        counts["error"] += 1  # pytest itself broke (usage/internal error)
    return counts["passed"], counts["failed"] + counts["error"], counts["skipped"]


def run_lit() -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "lit.json")
        proc = subprocess.run([sys.executable, "-c", "from lit.main import main; main()", "-q",
                               "-o", report, "lit_tests"],
                              cwd=ROOT, capture_output=True, text=True)
        sys.stdout.write(proc.stdout[-20000:])
        sys.stderr.write(proc.stderr[-5000:])
        if not os.path.exists(report):
            return 0, 1, 0
        with open(report) as f:
            tests = json.load(f)["tests"]
    codes = [t["code"] for t in tests]
    passed = sum(c in ("PASS", "XFAIL") for c in codes)
    skipped = sum(c == "UNSUPPORTED" for c in codes)
    return passed, len(codes) - passed - skipped, skipped


def main() -> int:
    py = run_pytest(sys.argv[1:])
    print(f"pytest: {py[0]} passed, {py[1]} failed, {py[2]} skipped")
    lit = run_lit()
    print(f"lit: {lit[0]} passed, {lit[1]} failed, {lit[2]} skipped")
    passed, failed, skipped = py[0] + lit[0], py[1] + lit[1], py[2] + lit[2]
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
