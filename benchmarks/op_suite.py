"""The operator suite: every OpInfo of PyTorch's op_db through ember and through torch-mlir's
own linalg path, as a new user would run them; a measurement tool, not part of `make test`.

    python benchmarks/op_suite.py                                  # everything (hours on 2 cores)
    python benchmarks/op_suite.py --ops '^add$' '^nn.functional.conv' --limit 20
    python benchmarks/op_suite.py --resume --output benchmarks/results/op_suite   # carry on
    python benchmarks/op_suite.py --report-only --output ...       # rewrite the summary only
    python benchmarks/op_suite.py --resume --rerun ember --output ...  # ember again, after a
                                                   # change (torch-mlir's results stay)

Cases (op_suite_cases.py): for each OpInfo, the first float32 sample(s), the first float16,
bfloat16, integer and complex64 sample where the op supports the dtype, one dynamic-shape case
and one in-place-variant case. Each case is a module calling the op, run through
  ember       `ember.compile(module, inputs)`, then called;
  torch-mlir  `torch_mlir.fx.export_and_import(..., output_type="linalg-on-tensors")`, lowered
              with RefBackend's pipeline and run in torch-mlir's ExecutionEngine
              (op_suite_refbackend.py);
and compared with eager by tests/compare.py's rule.

Every case runs in a persistent worker process (op_suite_worker.py; `--workers` per path, the
two paths side by side); a worker that dies is restarted and its case counted as `crash` (with
the signal and its last stderr line), one that runs past `--timeout` is killed and counted as
`timeout`. Outcomes: pass, wrong, error, crash, timeout, skip (the case cannot be built or eager
itself fails; counted for neither path).

Results are appended to `<output>.jsonl` as they come (so `--resume` carries on and a partial
run is still a result) and each run's command line to `<output>.commands`; at the end
`<output>.json` (all results, by case) and `<output>.md` (the summary: op_suite_report.py,
naming the runs) are written.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import random
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if __package__ in (None, ""):
    sys.path.insert(0, ROOT)

PATHS = ("ember", "torch-mlir")
#: seconds a fresh worker may take to import torch, the OpInfo database and its compiler.
STARTUP_TIMEOUT_S = 300
#: bytes of a dead worker's stderr kept as the crash's detail.
CRASH_TAIL_BYTES = 2000


def _worker_env() -> Dict[str, str]:
    env = dict(os.environ)
    paths = [os.path.join(ROOT, "python"), os.path.join(ROOT, "tests"), ROOT]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for knob in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                 "EMBER_NUM_THREADS"):
        env[knob] = "1"
    return env


class Worker:
    """One worker process of one path; `run(case)` returns its result dict, whatever happens
    to the process (it is restarted on the next call after a crash or a timeout). `argv` is
    the worker's command line (op_suite_worker.py's protocol), the real worker by default."""

    def __init__(self, path: str, log_path: str, timeout_s: float, argv=None):
        self.path, self.log_path, self.timeout_s = path, log_path, timeout_s
        self.argv = argv or [sys.executable, os.path.join(HERE, "op_suite_worker.py"), path]
        self.process = None

    def _start(self) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=_worker_env(),
            text=True, bufsize=1, start_new_session=True)
        log.close()
        ready = self._read_line(STARTUP_TIMEOUT_S)
        if not ready or not json.loads(ready).get("ready"):
            self._stop()
            raise RuntimeError(f"{self.path} worker did not start: {self._stderr_tail()}")

    def _read_line(self, timeout_s: float):
        """The next protocol line; "" if the process closed its end (it is dying), None if
        `timeout_s` passed without an answer."""
        readable, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not readable:
            return None
        return self.process.stdout.readline()

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the worker's own session only
        if self.process is not None:
            self.process.wait()
        self.process = None

    def _stderr_tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - CRASH_TAIL_BYTES))
                lines = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return ""
        # The most telling line: an LLVM/MLIR fatal error or assertion if there is one.
        for marker in ("LLVM ERROR", "Assertion", "error:", "Error"):
            hit = [ln for ln in lines if marker in ln and not ln.startswith("case ")]
            if hit:
                return hit[-1].strip()[:300]
        return (lines[-1].strip() if lines else "")[:300]

    def run(self, case: dict) -> dict:
        if self.process is None:
            self._start()
        start = time.perf_counter()
        try:
            self.process.stdin.write(json.dumps(case) + "\n")
            self.process.stdin.flush()
            line = self._read_line(self.timeout_s)
        except BrokenPipeError:
            line = ""
        if line:
            return json.loads(line)
        seconds = round(time.perf_counter() - start, 3)
        if line is None:  # no answer in time
            self._stop()
            outcome, detail = "timeout", f"no result after {self.timeout_s:g} s"
        else:  # the process closed the pipe: it is exiting (an abort may take a while)
            try:
                code = self.process.wait(timeout=STARTUP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = -signal.SIGKILL  # _stop() below kills it
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            outcome, detail = "crash", f"{how}: {self._stderr_tail()}"
            self._stop()
        return {"id": case["id"], "path": self.path, "outcome": outcome, "detail": detail,
                "stage": "?", "lowered": False, "seconds": seconds}

    def close(self) -> None:
        self._stop()


def run_cases(cases: List[dict], args, results_path: str, done: set) -> None:
    """Runs every (case, path) not in `done` on `args.workers` workers per path, in a fixed
    shuffled order, appending each result to `results_path` as it arrives."""
    lock = threading.Lock()
    total = sum(1 for c in cases for p in PATHS if (c["id"], p) not in done)
    finished = [0]
    started = time.time()
    log_dir = os.path.dirname(os.path.abspath(results_path))

    def drain(path: str, work: "queue.Queue", index: int):
        worker = Worker(path, os.path.join(log_dir, f"worker-{path}-{index}.log"), args.timeout)
        try:
            while True:
                try:
                    case = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    result = worker.run(case)
                except Exception as e:  # the worker cannot even start: record, carry on
                    result = {"id": case["id"], "path": path, "outcome": "error",
                              "detail": f"harness: {e}", "stage": "harness", "lowered": False,
                              "seconds": 0.0}
                result["op"] = case["op"] + (f".{case['variant']}" if case["variant"] else "")
                result.update({k: case[k] for k in ("dtype", "sample", "mode")})
                with lock:
                    with open(results_path, "a") as f:
                        f.write(json.dumps(result) + "\n")
                    finished[0] += 1
                    if finished[0] % args.progress == 0 or result["outcome"] in ("crash",
                                                                                   "timeout"):
                        rate = finished[0] / max(time.time() - started, 1e-9)
                        print(f"[{finished[0]}/{total} {rate:.2f}/s] {path} {case['id']}: "
                              f"{result['outcome']} {result['detail'][:120]}", flush=True)
        finally:
            worker.close()

    # A fixed shuffle: a run stopped early still covers all op families, evenly.
    order = list(cases)
    random.Random(0).shuffle(order)
    threads = []
    for path in PATHS:
        work = queue.Queue()
        for case in order:
            if (case["id"], path) not in done:
                work.put(case)
        for i in range(args.workers):
            threads.append(threading.Thread(target=drain, args=(path, work, i), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def load_results(results_path: str) -> List[dict]:
    if not os.path.exists(results_path):
        return []
    with open(results_path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", nargs="*", default=[],
                        help="regexes on the op's full name (e.g. '^add$' 'linalg'); any match")
    parser.add_argument("--limit", type=int, default=None, help="only the first N ops")
    parser.add_argument("--fp32-samples", type=int, default=1,
                        help="float32 samples per op (other dtypes: 1)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per path")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "op_suite"),
                        help="prefix of the .jsonl/.json/.md outputs")
    parser.add_argument("--summary", default=None,
                        help="also write the markdown summary here (e.g. docs/op_suite.md)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the results already in <output>.jsonl, run the rest")
    parser.add_argument("--rerun", choices=PATHS, default=None,
                        help="with --resume: drop this path's results for the selected cases "
                             "and run them again, keeping the other path's (ember after a "
                             "change: torch-mlir's results do not depend on it)")
    parser.add_argument("--report-only", action="store_true",
                        help="write the .json/.md from <output>.jsonl without running")
    parser.add_argument("--progress", type=int, default=25, help="print every N results")
    args = parser.parse_args(argv)
    if args.rerun and not args.resume:
        parser.error("--rerun keeps the other path's results: use it with --resume")

    from benchmarks.op_suite_cases import enumerate_cases
    from benchmarks import op_suite_report
    cases = enumerate_cases(args.ops, args.limit, fp32_samples=args.fp32_samples)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    results_path, commands_path = args.output + ".jsonl", args.output + ".commands"
    if not (args.resume or args.report_only):
        for stale in (results_path, commands_path):
            if os.path.exists(stale):
                os.remove(stale)
    command = "python benchmarks/op_suite.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:])
    if args.rerun and not args.report_only:
        selected = {c["id"] for c in cases}
        kept = [r for r in load_results(results_path)
                if r["path"] != args.rerun or r["id"] not in selected]
        with open(results_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
    if not args.report_only:
        with open(commands_path, "a") as f:  # the runs whose results the .jsonl holds
            f.write(command + "\n")
        done = {(r["id"], r["path"]) for r in load_results(results_path)}
        print(f"{len(cases)} cases x {len(PATHS)} paths, {len(done)} results already there",
              flush=True)
        run_cases(cases, args, results_path, done)
    results = load_results(results_path)
    wanted = {c["id"] for c in cases}
    results = [r for r in results if r["id"] in wanted]
    runs = []
    if os.path.exists(commands_path):
        with open(commands_path) as f:
            runs = [line.strip() for line in f if line.strip()]
    with open(args.output + ".json", "w") as f:
        json.dump({"runs": runs, "cases": len(cases), "results": results}, f, indent=1)
    summary = op_suite_report.render(results, len(cases), runs)
    for path in filter(None, (args.output + ".md", args.summary)):
        with open(path, "w") as f:
            f.write(summary)
    print(op_suite_report.totals_text(results, len(cases)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
