"""The GPU launch plan: what a GPU runtime does to run a compiled model, as data.

This is the contract between the GPU targets (cuda.py, rocm.py) and the GPU runtimes. Only
static shapes are compiled for GPU targets (ember-gpu-outline-gemms refuses dynamic dims).

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
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from mlir import ir

ABI = "ember-gpu-plan-v1"
PLAN_FILE = "launch_plan.json"
ALIGNMENT = 256

#: Ops that name a buffer without moving data: their result is a view of operand 0.
VIEW_OPS = frozenset({"memref.collapse_shape", "memref.expand_shape", "memref.subview",
                      "memref.cast", "memref.reinterpret_cast", "memref.reshape"})
#: Host ops that need no runtime action (their values are only used by views or kernels).
INERT_OPS = frozenset({"arith.constant", "memref.get_global", "func.return"})
ALLOC_OPS = frozenset({"memref.alloc", "memref.alloca"})


class PlanError(ValueError):
    """The host code cannot be expressed as a launch plan, or a plan is inconsistent."""


def buffer_bytes(memref_type) -> int:
    t = ir.MemRefType(memref_type)
    element = t.element_type
    bits = element.width if hasattr(element, "width") else ir.FloatType(element).width
    size = 1
    for d in t.shape:
        size *= d
    return size * max(1, bits // 8)


@dataclass
class _Workspace:
    bytes: int
    first: int = -1
    last: int = -1


def _constant(value):
    """The python value of a scalar kernel argument defined by arith.constant."""
    owner = value.owner
    if not (isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant"):
        raise PlanError(f"kernel argument {value} is not a buffer or a constant")
    attr = owner.attributes["value"]
    if isinstance(value.type, ir.FloatType):
        return {"f32": ir.FloatAttr(attr).value}
    kind = "i32" if isinstance(value.type, ir.IntegerType) and \
        ir.IntegerType(value.type).width == 32 else "i64"
    return {kind: ir.IntegerAttr(attr).value}


def extract_plan(fn, num_inputs: int) -> dict:
    """The launch plan of host function `fn` (after ember-gpu-kernels): arguments are the
    inputs, then the bound constants (`ember.weight` argument attribute), then the outputs."""
    block = fn.regions[0].blocks[0]
    arg_attrs = list(ir.ArrayAttr(fn.attributes["arg_attrs"])) if "arg_attrs" in fn.attributes \
        else [ir.DictAttr.get({})] * len(block.arguments)
    roots: Dict[object, str] = {}          # value -> buffer name
    buffers: Dict[str, dict] = {}
    counts = {"input": 0, "constant": 0, "output": 0}
    for i, (arg, attrs) in enumerate(zip(block.arguments, arg_attrs)):
        kind = "input" if i < num_inputs else \
            "constant" if "ember.weight" in ir.DictAttr(attrs) else "output"
        name = f"{kind}{counts[kind]}"
        buffers[name] = {"kind": kind, "index": counts[kind]}
        counts[kind] += 1
        roots[arg] = name
    workspace: Dict[str, _Workspace] = {}
    launches: List[dict] = []
    for op in block.operations:
        name = op.operation.name
        if name in ALLOC_OPS:
            buf = f"ws{len(workspace)}"
            workspace[buf] = _Workspace(buffer_bytes(op.results[0].type))
            roots[op.results[0]] = buf
        elif name in VIEW_OPS:
            roots[op.results[0]] = _root(roots, op.operands[0], op)
        elif name == "gpu.launch_func":
            launches.append(_launch(op, roots, workspace, len(launches)))
        elif name not in INERT_OPS:
            raise PlanError(f"{op.location}: '{name}' is left in the host function; GPU "
                            f"targets only run kernels (run ember-gpu-kernels first)")
    used = {n: w for n, w in workspace.items() if w.first >= 0}
    offsets, total = plan_memory({n: (w.bytes, w.first, w.last) for n, w in used.items()})
    for n, w in used.items():
        buffers[n] = {"kind": "workspace", "offset": offsets[n], "bytes": w.bytes}
    return {"abi": ABI, "workspace_bytes": total, "buffers": buffers, "launches": launches}


def _root(roots, value, op) -> str:
    try:
        return roots[value]
    except KeyError:
        raise PlanError(f"{op.location}: {value} is not a view of an input, constant, output "
                        f"or allocation") from None


def _launch(op, roots, workspace, position: int) -> dict:
    if list(op.asyncDependencies):
        raise PlanError(f"{op.location}: asynchronous launches are not planned")
    grid = [_int_of(v) for v in (op.gridSizeX, op.gridSizeY, op.gridSizeZ)]
    block = [_int_of(v) for v in (op.blockSizeX, op.blockSizeY, op.blockSizeZ)]
    shared = op.dynamicSharedMemorySize
    args = []
    for value in op.kernelOperands:
        if isinstance(value.type, ir.MemRefType):
            name = _root(roots, value, op)
            args.append({"buffer": name})
            if name in workspace:
                w = workspace[name]
                w.first = position if w.first < 0 else w.first
                w.last = position
        else:
            args.append(_constant(value))
    kernel = ir.SymbolRefAttr(op.attributes["kernel"]).value[-1]
    return {"kernel": kernel, "grid": grid, "block": block,
            "shared_bytes": 0 if shared is None else _int_of(shared), "args": args}


def _int_of(value) -> int:
    owner = value.owner
    if not (isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant"):
        raise PlanError(f"launch size {value} is not a constant; GPU targets need static shapes")
    return ir.IntegerAttr(owner.attributes["value"]).value


def _align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def plan_memory(buffers: Dict[str, Tuple[int, int, int]]) -> Tuple[Dict[str, int], int]:
    """Offsets for buffers {name: (bytes, first launch, last launch)} in one workspace, and its
    size: largest first, each at the lowest aligned offset that no buffer live at the same
    time occupies."""
    placed: List[Tuple[int, int, int, int]] = []       # (offset, end, first, last)
    offsets: Dict[str, int] = {}
    for name, (size, first, last) in sorted(buffers.items(), key=lambda kv: (-kv[1][0], kv[0])):
        busy = sorted((o, e) for o, e, f, l in placed if f <= last and first <= l)
        offset = 0
        for o, e in busy:
            if offset + size <= o:
                break
            offset = max(offset, _align(e))
        offsets[name] = offset
        placed.append((offset, offset + size, first, last))
    return offsets, _align(max((e for _, e, _, _ in placed), default=0))


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
