"""ember-plan-buffers: a static memory plan for each function's intermediate buffers.

After bufferization every intermediate tensor of a model is a `memref.alloc`. This pass gives
the statically shaped ones of each function's body (outside loops) offsets in one arena, a
single 64-byte-aligned `memref<Bytes x i8>` allocated at the function's start: each alloc
becomes a `memref.view` of the arena at its offset. Two buffers share bytes only when their
live ranges are disjoint: a buffer is live from its alloc to the last op of the body that uses
it or any view of it (ember.kit.memref_views; uses inside a loop or region count at the op
holding them). The offsets come from ember.kit.memory_plan (largest buffer first, each at the
lowest aligned offset clear of its live neighbours). The arena is then one allocation per call
(the caching allocator of cpu_support.c returns the same block every call), its peak is the
plan's, not the sum of the buffers, and buffers written late reuse memory that is still in
cache.

Left to the allocator: dynamically shaped allocs, allocs inside loops and regions, i1 buffers
(widened to bytes later by ember-widen-bool-memrefs), and buffers that escape (returned, or
reaching an op that is neither a known view nor a user the pass understands: every op taking
the buffer must produce no memref results other than views). Runs on bufferized code, after
buffer-results-to-out-params and before buffer-deallocation-pipeline (which then frees the
arena only). Functions with an `ember.gemm_kernel` spec are skipped (they allocate nothing).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from mlir import ir
from mlir.dialects import arith, memref

from ember.kit.gemm_kernel_spec import KERNEL_ATTR

from ember.kit.builders import i64
from ember.kit.memory_plan import LiveBuffer, plan_offsets
from ember.kit.memref_views import VIEW_OPS
from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register

#: Byte alignment of the arena and of every offset in it (a cache line, AVX-512 vectors).
ALIGNMENT = 64


def _byte_size(memref_type) -> Optional[int]:
    """Bytes of a static, identity-layout memref of a whole-byte element type, else None."""
    t = ir.MemRefType(memref_type)
    if not t.has_static_shape:
        return None
    strides, offset = t.get_strides_and_offset()
    if offset != 0 or list(strides) != [math.prod(t.shape[i + 1:]) for i in range(t.rank)]:
        return None
    element = t.element_type
    if isinstance(element, ir.IntegerType):
        bits = ir.IntegerType(element).width
    elif isinstance(element, ir.FloatType):
        bits = ir.FloatType(element).width
    else:
        return None
    if bits % 8:
        return None
    return max(1, math.prod(t.shape)) * bits // 8


def _top_level(op, body) -> Optional[object]:
    """The ancestor of `op` (or op itself) that sits directly in `body`."""
    while op is not None:
        parent = op.parent
        if parent is None:
            return None
        if op.operation.block == body:
            return op
        op = parent
    return None


def _last_use(alloc, body, position: Dict[object, int]) -> Optional[int]:
    """The position of the last top-level op using `alloc` or a view of it, or None when the
    buffer escapes (returned, or taken by an op that makes other memrefs of it)."""
    last = position[alloc.operation]
    pending = [alloc.result]
    while pending:
        value = pending.pop()
        for use in value.uses:
            user = use.owner
            name = user.name
            if name == "func.return":
                return None
            results = [r for r in user.results if isinstance(r.type, ir.MemRefType)]
            if results:
                if name not in VIEW_OPS:
                    return None
                pending.extend(results)
            top = _top_level(user, body)
            if top is None:
                return None
            last = max(last, position[top.operation])
    return last


def plan_function(fn) -> Tuple[int, int]:
    """Plans `fn`'s body; returns (bytes planned, arena bytes) (0, 0 when nothing to plan)."""
    body = fn.regions[0].blocks[0]
    ops = list(body.operations)
    position = {op.operation: i for i, op in enumerate(ops)}
    allocs: List[Tuple[object, LiveBuffer]] = []     # (alloc op, its buffer), in program order
    for op in ops:
        if op.operation.name != "memref.alloc" or list(op.operands):
            continue
        size = _byte_size(op.result.type)
        if size is None:
            continue
        end = _last_use(op, body, position)
        if end is not None:
            allocs.append((op, LiveBuffer(size, position[op.operation], end)))
    if len(allocs) < 2:
        return 0, 0
    arena_size = plan_offsets([buffer for _, buffer in allocs], ALIGNMENT)
    i8 = ir.IntegerType.get_signless(8)
    index = ir.IndexType.get()
    with ir.InsertionPoint.at_block_begin(body), fn.location:
        arena = memref.AllocOp(ir.MemRefType.get([arena_size], i8), [], [],
                               alignment=i64(ALIGNMENT)).result
    for alloc, buffer in allocs:
        with ir.InsertionPoint(alloc), alloc.location:
            view = memref.ViewOp(alloc.result.type, arena,
                                 arith.constant(index, buffer.offset), []).result
        alloc.result.replace_all_uses_with(view)
        alloc.operation.erase()
    return sum(buffer.size for _, buffer in allocs), arena_size


@register
@dataclass
class PlanBuffers(EmberPass):
    """Places each function's static intermediate buffers in one arena by live range."""
    name = "ember-plan-buffers"

    def run(self, module, ctx: PassContext) -> None:
        for fn in walk_ops(module.operation, ["func.func"]):
            if KERNEL_ATTR in fn.attributes or not fn.regions[0].blocks:
                continue
            plan_function(fn)
