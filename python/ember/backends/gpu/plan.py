"""Launch-plan extraction: the host function left by the GPU lowering -> the launch plan.

The plan's format and checks are MLIR-free and live in ember.artifact.launch_plan (shared with
the runtime); this module reads the host function (allocations, views, constants and
gpu.launch_func ops) into that format, placing the intermediates in the workspace with
ember.kit.memory_plan.
"""
from __future__ import annotations

from typing import Dict, List

from mlir import ir

from ember.artifact.launch_plan import ABI, ALIGNMENT
from ember.kit.memory_plan import LiveBuffer, align_up, plan_offsets
from ember.kit.memref_views import VIEW_OPS

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
    """The launch plan of host function `fn` (after the GPU targets' `kernels` stage): arguments are the
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
    workspace: Dict[str, LiveBuffer] = {}          # live from its first to last launch
    launches: List[dict] = []
    for op in block.operations:
        name = op.operation.name
        if name in ALLOC_OPS:
            buf = f"ws{len(workspace)}"
            workspace[buf] = LiveBuffer(buffer_bytes(op.results[0].type), -1, -1)
            roots[op.results[0]] = buf
        elif name in VIEW_OPS:
            if name == "memref.view" and not _is_zero(op.operands[1]):
                raise PlanError(f"{op.location}: a memref.view at a byte offset is not its "
                                f"buffer's first byte, which is what a kernel gets passed")
            roots[op.results[0]] = _root(roots, op.operands[0], op)
        elif name == "gpu.launch_func":
            launches.append(_launch(op, roots, workspace, len(launches)))
        elif name not in INERT_OPS:
            raise PlanError(f"{op.location}: '{name}' is left in the host function; GPU "
                            f"targets only run kernels (run the GPU targets' `kernels` stage first)")
    used = {n: w for n, w in workspace.items() if w.first >= 0}
    # Equal sizes are placed in name order.
    total = align_up(plan_offsets([used[n] for n in sorted(used)], ALIGNMENT), ALIGNMENT)
    for n, w in used.items():
        buffers[n] = {"kind": "workspace", "offset": w.offset, "bytes": w.size}
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


def _is_zero(value) -> bool:
    owner = value.owner
    return isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant" and \
        ir.IntegerAttr(owner.attributes["value"]).value == 0


def _int_of(value) -> int:
    owner = value.owner
    if not (isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant"):
        raise PlanError(f"launch size {value} is not a constant; GPU targets need static shapes")
    return ir.IntegerAttr(owner.attributes["value"]).value
