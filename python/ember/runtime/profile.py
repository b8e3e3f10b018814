"""Where a model's time goes: per-kernel profiles of a profile build.

A profile build (`ember.compile(..., profile=True)`, `ember compile --profile`) carries timers in
its code (ember-label-kernels, ember-time-kernels, cpu_support.c): every step of the fused graph
(the lines `ember explain` prints) is charged the time its code ran, measured inside the code
with a monotonic clock, never sampled. `Model.profile` runs the model and turns the counters into
a `Profile`: per step, calls and milliseconds per run, its share of the run and, from the step's
cost (ember.kit.op_costs), the GFLOP/s (contractions) and GB/s it achieved, each also as a
fraction of this machine's f32 peak (`machine_peak`). FLOPs are the direct algorithm's: a
Winograd convolution or an int8 GEMM (VNNI: four multiplies per lane) can pass 100%. `table()` prints it sorted by time,
`save_json` and `save_chart` (PNG, or a self-contained HTML page with the chart and the table;
matplotlib, the `ember[profile]` extra) write it for later.

The steps' times add up to the model function's time; the end-to-end time (`end_to_end_ms`,
measured around each run from Python) adds the C runtime's argument checks and the call.
"""
from __future__ import annotations

import base64
import functools
import html
import io
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np


@dataclass(frozen=True)
class StepTime:
    """One step of the fused graph in a profile: per run, its calls and time."""
    step: int
    op: str                         # "ember.gemm"
    epilogue: str                   # what it fused: "bias+gelu", or ""
    text: str                       # the step's pseudo-code line (ember explain's)
    origin: str                     # "aten.linear at model.py:12"
    calls: float                    # times its code began, per run
    ms: float                       # time per run
    share: float                    # fraction of the steps' total
    gflops: Optional[float] = None  # achieved, contractions only
    gbps: Optional[float] = None    # achieved, operands and results moved once

    @property
    def label(self) -> str:
        """"gemm bias+gelu": the op and its epilogue."""
        return " ".join(filter(None, (self.op.replace("ember.", "", 1), self.epilogue)))

    @property
    def short_origin(self) -> str:
        """The origin with the file's directory left out: "aten.gelu at models.py:91"."""
        head, at, place = self.origin.rpartition(" at ")
        return f"{head}{at}{os.path.basename(place)}" if at else self.origin


@dataclass(frozen=True)
class MachinePeak:
    """What this machine reaches, measured, as the yardstick of achieved rates."""
    gflops: float
    gbps: float
    how: str


@dataclass
class Profile:
    """A model's per-step times over `runs` runs (see the module docstring)."""
    steps: List[StepTime]           # the steps whose code ran, slowest first
    runs: int
    end_to_end_ms: float            # mean of the runs timed from Python
    end_to_end_median_ms: float
    peak: MachinePeak
    steps_without_code: int = 0     # views and reshapes: no code of their own
    meta: Dict[str, object] = field(default_factory=dict)

    @property
    def kernels_ms(self) -> float:
        """The steps' time per run: the model function's own."""
        return sum(s.ms for s in self.steps)

    def table(self, top: Optional[int] = None) -> str:
        """The profile as a text table, slowest step first (`top`: only that many)."""
        rows = self.steps[:top] if top else self.steps
        header = (f"# ember profile: {self.runs} runs, end to end {self.end_to_end_ms:.3f} ms "
                  f"(median {self.end_to_end_median_ms:.3f}), kernels {self.kernels_ms:.3f} ms "
                  f"({self.kernels_ms / self.end_to_end_ms:.1%} of it)\n"
                  f"# peak {self.peak.gflops:.0f} GFLOP/s, {self.peak.gbps:.1f} GB/s "
                  f"({self.peak.how}; FLOPs of the direct algorithm, so Winograd and int8 "
                  f"may pass 100%)\n")
        lines = [f"{'step':>4}  {'kernel':<24} {'calls':>5} {'ms/run':>8} {'%':>6} "
                 f"{'GFLOP/s':>8} {'%peak':>6} {'GB/s':>7} {'%peak':>6}  source"]
        for s in rows:
            lines.append(
                f"{s.step:>4}  {s.label:<24} {s.calls:>5.0f} {s.ms:>8.3f} {s.share:>6.1%} "
                f"{_rate(s.gflops, 0):>8} {_fraction(s.gflops, self.peak.gflops):>6} "
                f"{_rate(s.gbps, 1):>7} {_fraction(s.gbps, self.peak.gbps):>6}  {s.short_origin}")
        hidden = len(self.steps) - len(rows)
        footer = [f"# ... {hidden} more steps"] if hidden else []
        if self.steps_without_code:
            footer.append(f"# {self.steps_without_code} steps ran no code of their own (views)")
        return header + "\n".join(lines + footer)

    def as_dict(self) -> dict:
        return {"runs": self.runs, "end_to_end_ms": self.end_to_end_ms,
                "end_to_end_median_ms": self.end_to_end_median_ms,
                "kernels_ms": self.kernels_ms, "peak": asdict(self.peak),
                "steps_without_code": self.steps_without_code, "meta": self.meta,
                "steps": [asdict(s) for s in self.steps]}

    def save_json(self, path: str) -> str:
        with open(path, "w") as f:
            json.dump(self.as_dict(), f, indent=1)
        return path

    def save_chart(self, path: str, top: int = 25) -> str:
        """The `top` slowest steps as a bar chart: a PNG (`.png`) or a self-contained HTML page
        (`.html`: the chart embedded, and the table)."""
        if not path.endswith((".png", ".html")):
            raise ValueError(f"a profile chart is a .png or an .html file, not {path!r}")
        png = self._chart_png(top)
        if path.endswith(".png"):
            with open(path, "wb") as f:
                f.write(png)
            return path
        image = base64.b64encode(png).decode()
        with open(path, "w") as f:
            f.write("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                    "<title>ember profile</title></head><body>\n"
                    f"<img alt=\"time per step\" src=\"data:image/png;base64,{image}\">\n"
                    f"<pre>{html.escape(self.table())}</pre>\n</body></html>\n")
        return path

    def _chart_png(self, top: int) -> bytes:
        try:
            import matplotlib
            matplotlib.use("Agg")
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("profile charts are drawn with matplotlib: pip install "
                              "'ember[profile]' (or matplotlib)") from None
        rows = self.steps[:top][::-1]
        figure = Figure(figsize=(10, 0.3 * len(rows) + 1.5))
        axes = figure.subplots()
        axes.barh([f"{s.step} {s.label} ({s.short_origin})" for s in rows],
                  [s.ms for s in rows], color="#d9531e")
        axes.set_xlabel("ms per run")
        axes.set_title(f"ember profile: {self.kernels_ms:.2f} ms of kernels, "
                       f"{self.end_to_end_ms:.2f} ms end to end", fontsize=10)
        axes.tick_params(axis="y", labelsize=7)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=100)
        return out.getvalue()


def build_profile(steps: List[dict], ns: List[int], calls: List[int], runs: int,
                  run_ms: List[float], peak: MachinePeak) -> Profile:
    """A Profile from the artifact's steps (manifest "profile"), the code's counters (one slot
    per step, then one for work of no step) and the end-to-end times of the runs."""
    named = steps + [{"step": len(steps), "op": "(not a step)", "epilogue": "", "text": "",
                      "origin": "copies and checks outside the model's ops",
                      "flops": None, "bytes": None}]
    total = sum(ns) or 1
    rows = []
    for info, spent, count in zip(named, ns, calls):
        if not count:
            continue
        seconds = spent / 1e9 / runs
        rows.append(StepTime(
            step=info["step"], op=info["op"], epilogue=info["epilogue"], text=info["text"],
            origin=info["origin"],
            calls=count / runs, ms=seconds * 1e3, share=spent / total,
            gflops=info["flops"] / seconds / 1e9 if info["flops"] and seconds else None,
            gbps=info["bytes"] / seconds / 1e9 if info["bytes"] and seconds else None))
    rows.sort(key=lambda s: -s.ms)
    return Profile(steps=rows, runs=runs, end_to_end_ms=statistics.fmean(run_ms),
                   end_to_end_median_ms=statistics.median(run_ms), peak=peak,
                   steps_without_code=sum(1 for c in calls[:len(steps)] if not c))


@functools.lru_cache(maxsize=None)
def machine_peak() -> MachinePeak:
    """This machine's reachable rates, measured once per process: f32 GEMM GFLOP/s of numpy's
    BLAS (1024^3, best of 10, its threads) and the GB/s of copying 256 MiB (read + write, best
    of 5). Measured rather than computed from clock and vector width: a VM's clock and its
    memory system are what the code actually gets."""
    a = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    gemm = min(_seconds(lambda: a @ a) for _ in range(10))
    source = np.ones(64 << 20, dtype=np.float32)
    target = np.empty_like(source)
    copy = min(_seconds(lambda: np.copyto(target, source)) for _ in range(5))
    return MachinePeak(gflops=2 * 1024 ** 3 / gemm / 1e9, gbps=2 * source.nbytes / copy / 1e9,
                       how="measured: numpy f32 GEMM 1024^3, copy of 256 MiB")


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rate(value: Optional[float], digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fraction(value: Optional[float], peak: float) -> str:
    return "-" if value is None or not peak else f"{value / peak:.0%}"
