"""The op table (issue 4): each op's path through ember, rendered from what the tests saw.

    python tests/ops/op_table.py --run > docs/op_table.md     # runs tests/ops, then renders
    python tests/ops/op_table.py report.json > docs/op_table.md

`ROWS` states each op's path; the tests covering a row (`@pytest.mark.covers(row)`) record the
ember ops the frontend produced and their outcome (see conftest.py), and the rendered table
shows both. A row whose stated ember op the tests did not see, or without a passing test, is
marked **unverified**.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

FALLBACK = "fallback (torch-mlir linalg)"
#: torch-mlir lowers these only to TMTensor ops, which the frontend turns into scf loops over
#: tensors (python/ember/frontend/tm_tensor_to_loops.py).
TMTENSOR = "fallback (torch-mlir TMTensor, as loops)"

#: (row, status, ember op the status claims or None, note). Statuses: "ember op <name>",
#: FALLBACK, TMTENSOR, or "decomposed to ...".
ROWS: List[Tuple[str, str, Optional[str], str]] = [
    ("Conv1d", FALLBACK, None, ""),
    ("Conv2d", "ember op conv2d", "conv2d",
     "dense and depthwise with symmetric padding; grouped (1 < groups < C) and asymmetric "
     "padding (`padding='same'`, even kernel) take the fallback"),
    ("Conv3d", FALLBACK, None, ""),
    ("ConvTranspose2d", FALLBACK, None, ""),
    ("ConvTranspose3d", FALLBACK, None, ""),
    ("Linear", "ember op gemm", "gemm",
     "weight transpose folded at compile time, bias fused as epilogue; a 1-D input takes the "
     "fallback"),
    ("MaxPool2d", "ember op pool2d", "pool2d",
     "ceil_mode and dilation take the fallback; AdaptiveMaxPool2d: evenly dividing sizes as "
     "max_pool2d, uneven windows decomposed to window gathers and a max"),
    ("AvgPool2d", "ember op pool2d", "pool2d",
     "ceil_mode, count_include_pad=False and divisor_override take the fallback"),
    ("AdaptiveAvgPool2d", "ember op pool2d", "pool2d",
     "global (1x1); other evenly dividing sizes: fallback; uneven windows: decomposed to "
     "gathers and a masked mean (PyTorch's decomposition), since torch-mlir's lowering aborts"),
    ("ReLU", "ember op unary (relu)", "unary:relu", ""),
    ("ReLU6", "decomposed to clamp: ember binary (max, min)", "binary:max", "hardtanh -> clamp"),
    ("LeakyReLU", "decomposed to ember binary ops (max, min, mul, add)", "binary:mul", ""),
    ("Softmax", "ember op softmax", "softmax", ""),
    ("LogSoftmax", "decomposed: max and sum reductions (fallback), ember exp, log, sub",
     "unary:log", ""),
    ("GELU", "ember op unary (gelu, gelu_tanh)", "unary:gelu", "exact and tanh"),
    ("SiLU", "ember op unary (silu)", "unary:silu", ""),
    ("Sigmoid", "ember op unary (sigmoid)", "unary:sigmoid", ""),
    ("Tanh", "ember op unary (tanh)", "unary:tanh", ""),
    ("Hardswish", "decomposed to ember binary ops and a fallback clamp", "binary:mul", ""),
    ("Hardsigmoid", "decomposed to ember binary ops and a fallback clamp", "binary:div", ""),
    ("transpose", "ember op transpose", "transpose", ""),
    ("permute", "ember op transpose", "transpose", ""),
    ("BatchNorm", "decomposed to scale and shift (ember elementwise ops)", "binary:mul",
     "inference form; folded into a preceding conv/linear by ember-fold-batch-norm"),
    ("LayerNorm", "ember op layer_norm", "layer_norm", ""),
    ("GroupNorm", "decomposed to mean/variance reductions (fallback) and ember binary ops",
     None, ""),
    ("InstanceNorm", "decomposed to mean/variance reductions (fallback) and ember binary ops",
     None, ""),
    ("RMSNorm", "ember op rms_norm", "rms_norm", "torch.nn.RMSNorm and F.rms_norm, kept whole"),
    ("add", "ember op binary (add)", "binary:add", "float; integer tensors take the fallback"),
    ("sub", "ember op binary (sub)", "binary:sub", "float; integer tensors take the fallback"),
    ("mul", "ember op binary (mul)", "binary:mul", "float; integer tensors take the fallback"),
    ("div", "ember op binary (div)", "binary:div", ""),
    ("pow", "ember op binary (pow)", "binary:pow",
     "tensor ** tensor and tensor ** scalar; scalar ** tensor takes the fallback"),
    ("neg", "ember op unary (neg)", "unary:neg", ""),
    ("sqrt", "ember op unary (sqrt)", "unary:sqrt", ""),
    ("rsqrt", "ember op unary (rsqrt)", "unary:rsqrt", ""),
    ("exp", "ember op unary (exp)", "unary:exp", ""),
    ("log", "ember op unary (log)", "unary:log", ""),
    ("matmul", "ember op gemm", "gemm",
     "2-D, batched with equal batch dims, batched x 2-D; 1-D operands, broadcast batch dims "
     "and integers take the fallback"),
    ("mm", "ember op gemm", "gemm", ""),
    ("bmm", "ember op gemm", "gemm", ""),
    ("baddbmm", "decomposed to bmm (ember gemm) and scaled add (ember binary ops)", "gemm", ""),
    ("PixelShuffle", "decomposed to ember reshape and transpose", "transpose", ""),
    ("view", "ember op reshape", "reshape", "static shapes; dynamic shapes take the fallback"),
    ("reshape", "ember op reshape", "reshape", "static shapes; dynamic shapes take the fallback"),
    ("squeeze", "ember op reshape", "reshape", "static shapes"),
    ("unsqueeze", "ember op reshape", "reshape", "static shapes"),
    ("flatten", "ember op reshape", "reshape", "static shapes"),
    ("contiguous", "no-op (removed by torch.export)", None, ""),
    ("expand", "ember op broadcast", "broadcast",
     "size-1 dims repeated (Hugging Face's repeat_kv, then read in place by "
     "ember-fold-grouped-heads); new leading dims take the fallback"),
    ("Embedding", "ember op embedding", "embedding",
     "int8 tables (one scale per row) under quantize="),
    ("EmbeddingBag (sum, mean)", "decomposed to ember embedding and an index_add", "embedding",
     "offsets, 2-D input, per_sample_weights, padding_idx; mode max takes the fallback"),
    ("split", FALLBACK, None, "slices"),
    ("split_with_sizes", FALLBACK, None, "slices"),
    ("chunk", FALLBACK, None, "slices"),
    ("slice", FALLBACK, None, "incl. steps and negative bounds"),
    ("select", FALLBACK, None, ""),
    ("index (basic)", FALLBACK, None, "integer tensor indices, gather"),
    ("cat", "ember op concat", "concat",
     "two float inputs, static or dynamic along the axis; three or more, and integers, take "
     "the fallback"),
    ("mean", FALLBACK, None, "a sum reduction; the division is an ember binary div"),
    ("sum", FALLBACK, None, "float and integer"),
    ("max", "ember op binary (max) elementwise; reductions: fallback", "binary:max",
     "amax, max(dim) values and indices, argmax"),
    ("min", "ember op binary (min) elementwise; reductions: fallback", "binary:min",
     "amin, min(dim) values and indices, argmin"),
    ("UpsampleNearest2d", FALLBACK, None, ""),
    ("index_add", TMTENSOR, None, "index_put with accumulate: a scatter that adds row by row"),
    ("scatter", TMTENSOR, None,
     "scatter.src, scatter.value, scatter_add; duplicate indices: the last writer (PyTorch's "
     "CPU order)"),
    ("scatter_reduce", TMTENSOR, None,
     "sum, prod, mean, amax, amin, include_self or not; float and integer"),
    ("index_put", TMTENSOR, None,
     "accumulate or not, several index tensors, negative indices, boolean-mask assignment "
     "(`x[mask] = v`)"),
    ("masked_scatter", TMTENSOR, None, "the mask's cumsum (a scan) numbers the source elements"),
    ("max_unpool2d", TMTENSOR, None, ""),
    ("max_pool2d_with_indices_backward", TMTENSOR, None,
     "a training-graph op; overlapping windows add up"),
    ("cumsum", TMTENSOR, None, "any dim, float and integer, dynamic length"),
    ("cumprod", TMTENSOR, None, ""),
    ("logcumsumexp", TMTENSOR, None, "a scan of log-add-exp"),
    ("repeat_interleave", TMTENSOR, None, "int repeats, and tensor repeats with output_size"),
    ("sort", TMTENSOR, None,
     "ascending, descending, stable (a bubble sort: O(n^2) along the sorted dim)"),
    ("argsort", TMTENSOR, None, "sort's indices"),
    ("kthvalue", TMTENSOR, None, "a sort and TMTensor's topk"),
    ("where", FALLBACK, None, "boolean tensors are stored as bytes (ember-widen-bool-memrefs)"),
    ("zeros", "constant (no code)", None, ""),
    ("zeros_like", "constant (no code)", None, "static shapes"),
    ("topk", "decomposed to k argmax passes and a gather (fallback)", None,
     "torch-mlir's topk is a full sort (O(n^2) as TMTensor loops); k passes are O(k n)"),
    ("scaled_dot_product_attention", "ember op attention", "attention",
     "no mask, float and bool masks (bool -> additive 0/-inf), causal (non-square: explicit "
     "top-left mask), GQA (heads repeated); fully masked queries give zeros as in PyTorch"),
]


def _tests_by_row(report: Dict[str, dict]) -> Dict[str, List[Tuple[str, dict]]]:
    rows: Dict[str, List[Tuple[str, dict]]] = {}
    for nodeid, record in sorted(report.items()):
        for row in record.get("rows", []):
            rows.setdefault(row, []).append((nodeid, record))
    return rows


def _ops_seen(records: List[dict], key: str = "ember_ops") -> List[str]:
    """Ops in the records, `unary:gelu` rather than also `unary`, without `weight`."""
    ops = {op for r in records for op in r.get(key, [])} - {"weight"}
    return sorted(op for op in ops if not any(o.startswith(op + ":") for o in ops))


def render(report: Dict[str, dict]) -> str:
    by_row = _tests_by_row(report)
    known = {row for row, *_ in ROWS}
    lines = [
        "# Op table",
        "",
        "Generated by `python tests/ops/op_table.py --run > docs/op_table.md` from a run of "
        "`tests/ops` (fp32 unless noted; each test compares ember with PyTorch eager, max abs "
        "error <= 1e-4 relative to the output scale). *Status* is the op's path through ember: "
        "an ember op, torch-mlir's linalg lowering (the fallback), or a decomposition. *Ember "
        "ops* and *fallback ops* are what the frontend produced for the tests of that op alone "
        "(for all its tests if none is its own): ember ops (`unary:gelu` is ember.unary of kind "
        "gelu) and the linalg/tensor ops of torch-mlir's lowering (plumbing such as "
        "tensor.empty left out).",
        "",
        "| op | status | notes | tests (passed/total) | ember ops | fallback ops |",
        "|---|---|---|---|---|---|",
    ]
    unverified = []
    for row, status, claimed, note in ROWS:
        tests = by_row.get(row, [])
        passed = sum(r.get("outcome") == "passed" for _, r in tests)
        own = [r for _, r in tests if r.get("rows") == [row]] or [r for _, r in tests]
        seen, fallback = _ops_seen(own), _ops_seen(own, "fallback_ops")
        names = ", ".join(f"`{nodeid.split('/')[-1]}`" for nodeid, _ in tests[:4])
        if len(tests) > 4:
            names += f" (+{len(tests) - 4})"
        everything = _ops_seen([r for _, r in tests])
        ok = passed and passed == len(tests) and (
            claimed is None or any(op == claimed or op.startswith(claimed + ":")
                                   for op in everything))
        if not ok:
            unverified.append(row)
        shown = status if ok else f"{status} **unverified**"
        lines.append(f"| {row} | {shown} | {note} | {names} ({passed}/{len(tests)}) | "
                     f"{', '.join(seen) or '-'} | {', '.join(fallback) or '-'} |")
    extra = sorted(set(by_row) - known)
    total = len(report)
    passed = sum(r.get("outcome") == "passed" for r in report.values())
    lines += ["", f"{passed} of {total} tests passed; {len(ROWS) - len(unverified)} of "
                  f"{len(ROWS)} ops verified."]
    if unverified:
        lines.append(f"Unverified: {', '.join(unverified)}.")
    if extra:
        lines.append(f"Rows covered by tests but missing from the table: {', '.join(extra)}.")
    return "\n".join(lines) + "\n"


def main(argv: List[str]) -> int:
    if argv and argv[0] == "--run":
        here = os.path.dirname(os.path.abspath(__file__))
        root = os.path.dirname(os.path.dirname(here))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "report.json")
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            here, *argv[1:]], cwd=root, env={**os.environ,
                                                              "EMBER_OP_TABLE": path},
                           stdout=sys.stderr)
            with open(path) as f:
                report = json.load(f)
    elif argv:
        with open(argv[0]) as f:
            report = json.load(f)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
