"""The operator suite's markdown summary, from its per-case results (op_suite.py).

Sections: totals per path (pass rates over the cases that are not skipped, and over the cases
torch-mlir lowers to linalg), pass rates by mode and dtype, ember's crashes and timeouts,
ember's failures grouped by op family with the reason (the error's message with numbers
folded, so one cause reads as one pattern), the reasons across families, and the cases
torch-mlir passes that ember fails.
"""
from __future__ import annotations

import collections
import datetime
import re
from typing import Dict, List

OUTCOMES = ("pass", "wrong", "error", "crash", "timeout", "skip")
FAILURES = ("wrong", "error", "crash", "timeout")


def reason_pattern(result: dict) -> str:
    """The failure's reason with the case-specific parts folded: source locations become
    <src>, temporary paths <tmp>, numbers N, long bracketed lists [...], so one cause of one
    op reads as one pattern (the aten op it names stays)."""
    detail = result.get("detail", "")
    detail = re.sub(r"Lowering (.+?) failed with the following diagnostics: python exception: "
                    r"Failure while executing pass pipeli\w*( \| )?", r"lowering \1: ", detail)
    # torch-mlir's "failed to legalize" diagnostic prints the whole op; keep its aten name.
    detail = re.sub(r'%[\w:]+ = "torch\.operator"\(.*?\) <\{name = "([\w.]+)".*',
                    r'torch.operator "\1"', detail)
    detail = re.sub(r"(failed to legalize operation '[\w.]+')( that was explicitly marked "
                    r"illegal)?: %.*", r"\1", detail)
    detail = re.sub(r'loc\("[^"]*"(:\d+)*\)|"?/[\w./-]+\.py"?(:\d+)*', "<src>", detail)
    detail = re.sub(r"/tmp/\S+", "<tmp>", detail)
    detail = re.sub(r"\[[^\[\]]{40,}\]", "[...]", detail)
    detail = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", detail)
    pattern = f"{result['outcome']}: {detail}".strip()
    stage = result.get("stage")
    if result["path"] == "torch-mlir" and stage in ("export", "lower to linalg",
                                                       "lower to llvm", "execute"):
        pattern = f"[{stage}] {pattern}"
    return pattern[:220]


def reason_class(result: dict) -> str:
    """reason_pattern with the op names folded too (aten.cumsum, 'math.log', tensors_N), for
    counting causes across op families."""
    pattern = reason_pattern(result)
    pattern = re.sub(r"\b(torch\.aten|torch\.prim|aten|prims)\.[\w.]+", "<op>", pattern)
    pattern = re.sub(r"'[\w.]+' op", "'<op>' op", pattern)
    return re.sub(r"'\w+_N'", "'<input>'", pattern)


def _by_path(results: List[dict]) -> Dict[str, Dict[str, dict]]:
    table = collections.defaultdict(dict)
    for r in results:
        table[r["path"]][r["id"]] = r
    return table


def _rate(n: int, d: int) -> str:
    return f"{100.0 * n / d:.1f}%" if d else "-"


def _totals_rows(table, ids=None) -> List[str]:
    rows = []
    for path in ("ember", "torch-mlir"):
        cases = [r for i, r in table.get(path, {}).items() if ids is None or i in ids]
        counts = collections.Counter(r["outcome"] for r in cases)
        ran = len(cases) - counts["skip"]
        rows.append(f"| {path} | " + " | ".join(str(counts[o]) for o in OUTCOMES) +
                    f" | {ran} | **{_rate(counts['pass'], ran)}** |")
    return rows


def totals_text(results: List[dict], planned: int) -> str:
    table = _by_path(results)
    lines = [f"{planned} cases planned"]
    for path in ("ember", "torch-mlir"):
        cases = list(table.get(path, {}).values())
        counts = collections.Counter(r["outcome"] for r in cases)
        ran = len(cases) - counts["skip"]
        lines.append(f"{path}: {len(cases)} results, " +
                     ", ".join(f"{o} {counts[o]}" for o in OUTCOMES) +
                     f"; pass rate {_rate(counts['pass'], ran)} of {ran} run")
    return "\n".join(lines)


def _header() -> List[str]:
    return ["| path | " + " | ".join(OUTCOMES) + " | run (not skipped) | pass rate |",
            "|---|" + "---|" * (len(OUTCOMES) + 2)]


def _breakdown(table, key: str) -> List[str]:
    values = sorted({r[key] for p in table.values() for r in p.values()}, key=str)
    lines = [f"| {key} | ember pass / run | torch-mlir pass / run |", "|---|---|---|"]
    for v in values:
        cells = []
        for path in ("ember", "torch-mlir"):
            cases = [r for r in table.get(path, {}).values() if r[key] == v]
            ran = [r for r in cases if r["outcome"] != "skip"]
            passed = sum(r["outcome"] == "pass" for r in ran)
            cells.append(f"{passed} / {len(ran)} ({_rate(passed, len(ran))})")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(results: List[dict], planned: int, runs: List[str]) -> str:
    """The markdown summary of `results` (of `planned` cases), produced by the command lines
    `runs`."""
    import torch
    # Only cases with a result on both paths count (a partial run advances them unevenly).
    both = set.intersection(*(set(r["id"] for r in results if r["path"] == p)
                              for p in ("ember", "torch-mlir")))
    results = [r for r in results if r["id"] in both]
    table = _by_path(results)
    ember, ref = table.get("ember", {}), table.get("torch-mlir", {})
    covered = len(both)
    lowered = {i for i, r in ref.items() if r.get("lowered")}
    out = [
        "# Operator suite: ember vs torch-mlir's linalg path",
        "",
        f"Generated by `benchmarks/op_suite.py` on {datetime.date.today()} "
        f"(torch {torch.__version__}) from the results of: "
        + "; ".join(f"`{run}`" for run in runs) + ".",
        f"Cases: {planned} planned, {covered} with a result on both paths"
        + ("" if covered == planned else " (**partial run**: the cases run are a fixed "
           "shuffle of all, so every op family is sampled)") + "; everything below counts "
        "those.",
        "",
        "Each case is one OpInfo sample of PyTorch's op_db wrapped in a module (tensors as "
        "inputs, everything else constant), run through `ember.compile` and through "
        "`torch_mlir.fx.export_and_import(output_type=\"linalg-on-tensors\")` lowered and run "
        "with RefBackend's pipeline in torch-mlir's ExecutionEngine, and compared with eager "
        "(tests/compare.py's rule). `skip`: the case cannot be built or eager itself fails. "
        "`crash`: the worker process died (this would have killed the user's Python). Pass "
        "rates are over the cases run (not skipped).",
        "",
        "## Totals",
        "",
        *_header(), *_totals_rows(table),
        "",
        f"On the {len(lowered)} cases torch-mlir lowers to linalg-on-tensors "
        "(its import succeeded):",
        "",
        *_header(), *_totals_rows(table, lowered),
        "",
        "## By mode",
        "",
        *_breakdown(table, "mode"),
        "",
        "## By dtype",
        "",
        *_breakdown(table, "dtype"),
        "",
    ]

    severe = [r for r in ember.values() if r["outcome"] in ("crash", "timeout")]
    out += [f"## ember crashes and timeouts ({len(severe)})", ""]
    if severe:
        out += ["| case | outcome | detail | torch-mlir |", "|---|---|---|---|"]
        out += [f"| {r['id']} | {r['outcome']} | {_cell(r['detail'][:200])} | "
                f"{ref[r['id']]['outcome']} |" for r in sorted(severe, key=lambda r: r["id"])]
    else:
        out.append("None.")
    out.append("")

    families = collections.defaultdict(list)
    for r in ember.values():
        families[r["op"]].append(r)
    failing = {op: rs for op, rs in families.items() if any(r["outcome"] in FAILURES
                                                             for r in rs)}
    out += [f"## ember failures by op family ({len(failing)} families)", "",
            "Family = the OpInfo. `torch-mlir` = how many of the same cases torch-mlir passes. "
            "Reason = the most common failure pattern of the family (numbers folded to N).",
            "", "| op family | failed / run | outcomes | torch-mlir passes | reason |",
            "|---|---|---|---|---|"]

    def sort_key(item):
        op, rs = item
        return (-sum(r["outcome"] in FAILURES for r in rs), op)
    for op, rs in sorted(failing.items(), key=sort_key):
        failed = [r for r in rs if r["outcome"] in FAILURES]
        ran = [r for r in rs if r["outcome"] != "skip"]
        kinds = collections.Counter(r["outcome"] for r in failed)
        ref_pass = sum(ref.get(r["id"], {}).get("outcome") == "pass" for r in failed)
        reason, n = collections.Counter(reason_pattern(r) for r in failed).most_common(1)[0]
        more = "" if n == len(failed) else f" (+{len(failed) - n} other)"
        out.append(f"| {op} | {len(failed)} / {len(ran)} | "
                   + ", ".join(f"{k} {v}" for k, v in kinds.most_common())
                   + f" | {ref_pass} | {_cell(reason)}{more} |")
    out.append("")

    patterns = collections.defaultdict(list)
    for r in ember.values():
        if r["outcome"] in FAILURES:
            patterns[reason_class(r)].append(r["op"])
    out += ["## ember failure reasons across families", "",
            "The reasons above with the op names folded to `<op>`.", "",
            "| cases | reason | op families |", "|---|---|---|"]
    for pattern, ops in sorted(patterns.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        names = sorted(set(ops))
        shown = ", ".join(names[:8]) + (f", ... ({len(names)} families)" if len(names) > 8
                                        else "")
        out.append(f"| {len(ops)} | {_cell(pattern)} | {_cell(shown)} |")
    out.append("")

    gap = sorted((i for i, r in ref.items() if r["outcome"] == "pass"
                  and ember.get(i, {}).get("outcome") in FAILURES))
    out += [f"## Cases torch-mlir passes and ember fails ({len(gap)})", "",
            "| case | ember outcome | detail |", "|---|---|---|"]
    out += [f"| {i} | {ember[i]['outcome']} | {_cell(ember[i]['detail'][:160])} |" for i in gap]
    out.append("")

    ref_fail = collections.Counter(reason_class(r) for r in ref.values()
                                   if r["outcome"] in FAILURES)
    out += ["## torch-mlir's failure reasons (top 25)", "", "| cases | reason |", "|---|---|"]
    out += [f"| {n} | {_cell(p)} |" for p, n in ref_fail.most_common(25)]
    out.append("")
    return "\n".join(out)
