"""The GPU launch plan: what a GPU runtime does to run a compiled model, as data.

This is the contract between the GPU targets (ember.backends.gpu.cuda / rocm, which extract the plan
in ember.backends.gpu.plan) and the GPU runtimes (ember.runtime.gpu_plan reads it). It needs
neither MLIR nor a driver: the format and its consistency checks, once, for both sides (the
compiler places the workspace buffers with ember.kit.memory_plan). Only static shapes are compiled for GPU targets (ember-gpu-outline-gemms
refuses dynamic dims).

Manifest sections:
    target  {"kind": "cuda", "arch": "sm_90", ...} or {"kind": "rocm", "arch": "gfx942", ...}
    code    {"cuda": {"module": "kernels.cubin" (when ptxas made one) or "kernels.ptx",
                      "ptx": "kernels.ptx", "plan": "launch_plan.json", "abi": ABI}}
            {"rocm": {"module": "kernels.hsaco", "plan": "launch_plan.json", "abi": ABI}}
    (kernels.hsaco is an AMDGPU code object, version 4, linked with ld.lld -shared)

launch_plan.json ("ember-gpu-plan-v1"):
    {"abi": "ember-gpu-plan-v1",
     "workspace_bytes": <int>,     one device allocation per runtime holding every intermediate
     "buffers": {"<name>": {"kind": "input", "index": i}
                         | {"kind": "constant", "index": i}
                         | {"kind": "output", "index": i}
                         | {"kind": "workspace", "offset": <bytes>, "bytes": <bytes>}},
     "launches": [{"kernel": "<symbol in the module>", "grid": [gx, gy, gz],
                   "block": [bx, by, bz], "shared_bytes": <int>,
                   "args": [{"buffer": "<name>"} | {"i32": <int>} | {"i64": <int>}
                            | {"f32": <float>}]}]}

- Inputs, constants and outputs are indexed as in the manifest's `inputs`, `constants` and
  `outputs`; workspace offsets are 256-byte aligned, and buffers whose lifetimes (first to last
  launch using them) do not overlap share bytes.
- Kernels take bare pointers (`use-bare-ptr-memref-call-conv`): each {"buffer"} argument is the
  device address of the buffer's first byte (workspace base + offset for workspace buffers),
  scalars are passed by value, in the order of `args`. Views of a buffer (reshapes, slices) are
  passed as that buffer: the view's static offset is compiled into the kernel.
- Launches run in order on one stream. An output may be written by several launches; an output
  that is just a copy of an input or constant gets a copy kernel (no aliasing).
- `shared_bytes` is dynamic shared memory (kernels here use static shared memory only: 0).
"""
from __future__ import annotations

import json
from typing import Dict, List, Optional, Tuple

#: The plan format this compiler writes and its runtimes read.
ABI = "ember-gpu-plan-v1"
#: The plan's file name in an artifact.
PLAN_FILE = "launch_plan.json"
#: Alignment of workspace offsets in bytes.
ALIGNMENT = 256


def validate_plan(plan: dict, kernels, counts: Optional[Dict[str, int]] = None) -> List[str]:
    """Problems of `plan` (empty when consistent): unknown buffers or kernels, workspace
    buffers outside the workspace or overlapping while both live, indices beyond `counts`
    ({"input": n, "constant": n, "output": n})."""
    problems = []
    if plan.get("abi") != ABI:
        problems.append(f"abi is {plan.get('abi')!r}, expected {ABI!r}")
    buffers, size = plan["buffers"], plan["workspace_bytes"]
    for name, buf in buffers.items():
        if buf["kind"] == "workspace":
            if buf["offset"] % ALIGNMENT or buf["offset"] + buf["bytes"] > size:
                problems.append(f"buffer {name} [{buf['offset']}, +{buf['bytes']}) does not "
                                f"fit the {size}-byte workspace aligned")
        elif counts is not None and not 0 <= buf["index"] < counts[buf["kind"]]:
            problems.append(f"buffer {name}: {buf['kind']} index {buf['index']} out of range")
    live: Dict[str, Tuple[int, int]] = {}
    for i, launch in enumerate(plan["launches"]):
        if launch["kernel"] not in kernels:
            problems.append(f"launch {i}: kernel {launch['kernel']!r} is not in the module")
        for arg in launch["args"]:
            name = arg.get("buffer")
            if name is None:
                continue
            if name not in buffers:
                problems.append(f"launch {i}: unknown buffer {name!r}")
            elif buffers[name]["kind"] == "workspace":
                live[name] = (live.get(name, (i, i))[0], i)
    names = sorted(live)
    for x, a in enumerate(names):
        for b in names[x + 1:]:
            (fa, la), (fb, lb) = live[a], live[b]
            ba, bb = buffers[a], buffers[b]
            if fa <= lb and fb <= la and ba["offset"] < bb["offset"] + bb["bytes"] and \
                    bb["offset"] < ba["offset"] + ba["bytes"]:
                problems.append(f"buffers {a} and {b} overlap while both are live")
    return problems


def write_plan(plan: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(plan, f, indent=1)
        f.write("\n")
