"""Machine info, derived ratios and the printed tables.

Ratios are taken only between rows of one run that share workload, size and thread count,
because numbers from different runs of a shared, boosting, virtualized CPU do not compare.
Time ratios are backend / reference: below 1.00x is faster. "best peer" is the fastest
backend in backends.PEERS whose output passed the cross-check; for an int8 row (a backend named
"*-int8*") the fastest of backends.INT8_PEERS; for a 16-bit row ("*-bf16", "*-fp16") eager in
that dtype; for a weight-only row ("*-w8", "*-w4") the same width's WEIGHT_ONLY_PEERS. "vs
ember" is against ember's fp32 row, the figure int8, 16-bit and weight-only speed-ups are
stated in.
"""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Dict, Iterable, List

from benchmarks.backends import INT8_PEERS, PEERS, SIXTEEN_BIT_PEERS, WEIGHT_ONLY_PEERS

#: packages whose versions go into the JSON; the first few also into the table header.
PACKAGES = ("torch", "onnxruntime", "iree-base-compiler", "openvino", "onnx", "onnxscript",
            "iree-base-runtime", "nncf", "numpy", "ember")
HEADER_PACKAGES = {"torch": "torch", "onnxruntime": "ort", "iree-base-compiler": "iree",
                   "openvino": "ov"}
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "asimd", "sve")


def machine_info() -> Dict[str, object]:
    cpuinfo = _read("/proc/cpuinfo")
    field = lambda key: next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                              if line.split(":")[0].strip() == key), None)
    flags = set((field("flags") or field("Features") or "").split())
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": field("model name") or platform.processor() or platform.machine(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "isa": [f for f in ISA_FLAGS if f in flags],
        "caches": _caches(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "ember_commit": _git("rev-parse", "--short", "HEAD"),
        "ember_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def annotate(results: List[dict], workloads: Dict[str, object]) -> None:
    """Adds ratio_vs_eager, ratio_vs_best_peer, best_peer, gflops and frac_torch_gflops."""
    groups: Dict[tuple, List[dict]] = {}
    for r in results:
        groups.setdefault((r["workload"], r["size"], r["threads"]), []).append(r)
    for rows in groups.values():
        good = [r for r in rows if r["status"] == "ok" and r.get("check") == "ok"]
        eager = next((r["median_ms"] for r in good if r["backend"] == "eager"), None)
        ember = next((r["median_ms"] for r in good if r["backend"] == "ember"), None)
        for r in rows:
            if r["status"] != "ok":
                continue
            peers = [p for p in good if p["backend"] in _peers_of(r["backend"])]
            best = min(peers, key=lambda p: p["median_ms"], default=None)
            median = r["median_ms"]
            r["ratio_vs_eager"] = median / eager if eager else None
            r["ratio_vs_ember"] = median / ember if ember else None
            r["best_peer"] = best["backend"] if best else None
            r["ratio_vs_best_peer"] = median / best["median_ms"] if best else None
            flops = r.get("flops") or 0
            r["gflops"] = flops / (median * 1e-3) / 1e9 if flops else None
            r["frac_torch_gflops"] = eager / median if eager else None


def _peers_of(backend: str) -> tuple:
    """The backends a row's "vs best peer" compares with: int8 peers for an int8 row, eager in
    the same dtype for a 16-bit one, else the fp32 peers."""
    if "-int8" in backend:
        return INT8_PEERS
    if backend.endswith(("-w8", "-w4")):       # the same width's weight compression
        return tuple(p for p in WEIGHT_ONLY_PEERS if p.endswith(backend[-3:]))
    if "implicit" in backend:           # an fp32 model (16-bit weights inside): fp32 peers
        return PEERS
    for suffix in ("-bf16", "-fp16"):
        if backend.endswith(suffix):
            return tuple(p for p in SIXTEEN_BIT_PEERS if p.endswith(suffix))
    return PEERS


def format_header(machine: dict, settings: dict) -> str:
    versions = ", ".join(f"{short} {machine['versions'].get(pkg) or 'n/a'}"
                         for pkg, short in HEADER_PACKAGES.items())
    return (f"{machine['cpu']} ({machine['arch']}, {machine['usable_cpus']} usable cpus, "
            f"{' '.join(machine['isa'])}) | {versions} | ember {machine['ember_commit']}"
            f"{'+dirty' if machine['ember_dirty'] else ''}\n"
            f"each backend in a fresh process; {settings['warmup']} warm-up calls, then "
            f">= {settings['runs']} timed calls (>= {settings['min_time_s']} s); "
            f"times in ms; ratios are time / reference (< 1.00x is faster)"
            f"{'' if settings.get('ember_target', 'host') == 'host' else '; ember target ' + settings['ember_target']}")


#: (title, width, format of the value from a row) for the numeric columns of a table.
COLUMNS = (
    ("median", 9, lambda r: f"{r['median_ms']:.3f}"),
    ("min", 9, lambda r: f"{r['min_ms']:.3f}"),
    ("max", 9, lambda r: f"{r['max_ms']:.3f}"),
    ("vs eager", 8, lambda r: _ratio(r.get("ratio_vs_eager"))),
    ("vs best peer", 12, lambda r: _ratio(r.get("ratio_vs_best_peer"))),
    ("vs ember", 8, lambda r: _ratio(r.get("ratio_vs_ember"))),
    ("GFLOP/s", 8, lambda r: f"{r['gflops']:.1f}" if r.get("gflops") else "-"),
    ("of torch", 8, lambda r: f"{r['frac_torch_gflops']:.2f}" if r.get("frac_torch_gflops")
     else "-"),
    ("max|err|", 8, lambda r: f"{r['max_abs_err']:.1e}" if r.get("max_abs_err") is not None
     else "-"),
    ("cosine", 8, lambda r: f"{r['cosine']:.5f}" if r.get("cosine") is not None else "-"),
    ("check", 10, lambda r: "ok" if r.get("check") == "ok" else "!!MISMATCH"),
    ("prep s", 7, lambda r: f"{r['prepare_s']:.1f}"),
    ("other load", 10, lambda r: "-" if r.get("other_load") is None else
     f"{r['other_load']:.2f}{'!' if r['other_load'] > BUSY else ''}"),
)
#: other_load (cores' worth of other processes' CPU while timing) above which a row is flagged.
BUSY = 0.25


def machine_tag(machine: dict) -> str:
    """The short machine line repeated in every table's title, so a pasted table says where
    it ran."""
    versions = ", ".join(f"{short} {machine['versions'].get(pkg) or 'n/a'}"
                         for pkg, short in HEADER_PACKAGES.items())
    return f"{machine['cpu']}, {machine['usable_cpus']} cpus; {versions}"


def format_table(workload, rows: Iterable[dict], machine: dict) -> str:
    """One table per workload: a row per (size, threads, backend); failures as text rows."""
    rows = list(rows)
    columns = [c for c in COLUMNS if workload.report_gflops or c[0] not in ("GFLOP/s",
                                                                             "of torch")]
    lead = f"{workload.size_name:>6} {'thr':>3} {'backend':<13}"
    lines = [f"== {workload.name}: {workload.description}  [{machine_tag(machine)}]",
             lead + " " + " ".join(f"{title:>{width}}" for title, width, _ in columns)]
    previous = None
    for r in rows:
        key = (r["size"], r["threads"])
        if previous is not None and key != previous:
            lines.append("")
        previous = key
        head = f"{r['size']:>6} {r['threads']:>3} {r['backend']:<13}"
        if r["status"] != "ok":
            lines.append(f"{head} {r['status'].upper()}: {r.get('error', '')}")
        else:
            lines.append(head + " " + " ".join(f"{fmt(r):>{width}}"
                                               for _, width, fmt in columns))
    busy = [r for r in rows if (r.get("other_load") or 0) > BUSY]
    if busy:
        lines.append(f"! {len(busy)} row(s) timed while other processes used > {BUSY} cores "
                     f"('other load' column): rerun on a quiet machine before trusting them")
    bad = [r for r in rows if r["status"] == "ok" and r.get("check") != "ok"]
    for r in bad:
        lines.append(f"!!! CROSS-CHECK FAILED: {r['backend']} {workload.size_name}={r['size']} "
                     f"threads={r['threads']}: max|err| {r.get('max_abs_err')} > tolerance "
                     f"{r.get('tolerance')} {r.get('check_detail', '')}".rstrip())
    return "\n".join(lines)


def _ratio(value) -> str:
    return f"{value:.2f}x" if value else "-"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _caches() -> Dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines()
                                              if ":" in line) if "cache" in k}


def _git(*args) -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
