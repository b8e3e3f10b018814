"""ember-parallelize-loops: spreads the big linalg ops and copies outside GEMM kernels over
OpenMP threads.

GEMMs and convolutions run in parallel micro-kernels and attention runs its batch entries in an
scf.forall, but everything else a model does between them (LayerNorm, softmax, GELU and other
elementwise ops, reductions such as mean pooling, the fill and copy of tensor.pad, transposes,
concat and slice copies) would lower to one thread's loops: on two cores that serial part is a
large fraction of a small model's run time. This pass runs on bufferized code (memrefs), before
linalg is lowered to loops, and tiles each such op by 1 along its outermost parallel loop
dims with upstream linalg tiling (`transform.structured.tile_using_forall`): an scf.forall over
those dims whose body is the same op on a slice, which the CPU stage table's loop and OpenMP
stages turn into an OpenMP work-sharing loop. Only the outer dims are split, until there are
`min-chunks` slices (a batch of 8 gives 8), so each slice keeps its innermost dims whole and its
inner loops vectorize as before; the last loop dim and reduction dims are never split. A big
memref.copy (tensor.pad's interior, concat, inserts) is split the same way, each slice still a
memref.copy (one memcpy per contiguous run in cpu_support.c's memrefCopy).

An op is split only when its iteration space has at least `min-elements` points, so that the
work pays for an OpenMP fork/join (a few microseconds); when that size depends on dynamic dims
the op is duplicated under an `scf.if` on its run-time size (the serial copy runs below it).
Left alone, so that no parallel loop nests inside another: GEMM kernel functions (those with
an `ember.gemm_kernel` spec), every function they call (their task functions), functions called
from parallel code, and any op already inside an scf.forall or scf.parallel (attention's body).
It splits linalg.generic ops (which give every op's loops and maps in one form) and copies: the
CPU stage table runs linalg-generalize-named-ops before it; convert-linalg-to-loops lowers both
forms alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

from mlir import ir
from mlir.dialects import arith, linalg, memref, scf

from ember.kit.gemm_kernel_spec import KERNEL_ATTR

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import PARALLEL_LOOPS, in_parallel_loop, walk_ops
from ember.kit.rewrite import apply_transform_script

#: Marks an op to split: its tile sizes (1 for a split dim, 0 for a whole one), removed after.
TILES_ATTR = "ember.parallel_tiles"


@dataclass
class LoopNest:
    """What the pass reads of an op's loops: extents (None where dynamic, with the memref and
    dim that give it at run time), whether each is parallel, and which loop dims index each
    output operand plainly (a split dim must, or two slices would write the same element)."""
    extents: List[Optional[int]]
    dynamic_sources: List[Optional[tuple]]
    parallel: List[bool]
    output_dims: List[set]

    def static_elements(self) -> int:
        return math.prod(e for e in self.extents if e is not None)


def _generic_nest(op) -> Optional[LoopNest]:
    """The loop nest of a linalg.generic on memrefs, or None when a loop's extent is not the
    size of some operand dim (e.g. a convolution window)."""
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
    rank = len(iterators)
    extents, sources = [None] * rank, [None] * rank
    known = [False] * rank
    outputs = []
    num_inputs = len(op.operands) - len(op.opview.outputs)
    for i, (value, amap) in enumerate(zip(op.operands, maps)):
        plain = set()
        if isinstance(value.type, ir.MemRefType):
            shape = ir.MemRefType(value.type)
            for position, expr in enumerate(amap.results):
                if not isinstance(expr, ir.AffineDimExpr):
                    continue
                dim = expr.position
                plain.add(dim)
                if not known[dim]:
                    known[dim] = True
                    if not shape.is_dynamic_dim(position):
                        extents[dim] = shape.shape[position]
                    else:
                        sources[dim] = (value, position)
        if i >= num_inputs:
            outputs.append(plain)
    if not all(known):
        return None
    return LoopNest(extents, sources, ["parallel" in it for it in iterators], outputs)


def _copy_nest(op) -> LoopNest:
    """memref.copy as a loop nest: one parallel loop per dim of the copied shape."""
    source = ir.MemRefType(op.operands[0].type)
    rank = source.rank
    return LoopNest([None if source.is_dynamic_dim(d) else source.shape[d] for d in range(rank)],
                    [(op.operands[0], d) if source.is_dynamic_dim(d) else None
                     for d in range(rank)],
                    [True] * rank, [set(range(rank))])


def _split_sizes(nest: LoopNest, min_chunks: int) -> Optional[List[int]]:
    """Tile sizes splitting the fewest outermost dims that give `min_chunks` slices (a dynamic
    dim counts as enough): only parallel dims that index every output, never the last dim.
    None when not even the outermost dim qualifies."""
    sizes = [0] * len(nest.extents)
    chunks = 1
    for dim in range(len(nest.extents) - 1):
        if not nest.parallel[dim] or any(dim not in out for out in nest.output_dims):
            break
        sizes[dim] = 1
        extent = nest.extents[dim]
        chunks = min_chunks if extent is None else chunks * extent
        if chunks >= min_chunks:
            break
    return sizes if any(sizes) else None


def _guard(op, nest: LoopNest, min_elements: int):
    """Puts `op` in the then-branch of `scf.if (iteration points >= min_elements)` and a clone
    of it in the else-branch; returns the op (now in the then-branch)."""
    index = ir.IndexType.get()
    with ir.InsertionPoint(op), op.location:
        total = arith.constant(index, nest.static_elements())
        for value, position in filter(None, nest.dynamic_sources):
            total = arith.muli(total, memref.dim(value, arith.constant(index, position)))
        big = arith.cmpi(arith.CmpIPredicate.uge, total, arith.constant(index, min_elements))
        branch = scf.IfOp(big, has_else=True)
        with ir.InsertionPoint(branch.then_block):
            then_yield = scf.YieldOp([])
        with ir.InsertionPoint(branch.else_block):
            else_yield = scf.YieldOp([])
    op.operation.clone(ir.InsertionPoint(else_yield))
    op.move_before(then_yield)
    return op


def _as_linalg_copy(op):
    """memref.copy -> linalg.copy (tileable); `_restore_copies` turns its slices back."""
    with ir.InsertionPoint(op), op.location:
        copy = linalg.copy(op.operands[0], outs=[op.operands[1]]).owner
    op.erase()
    return copy


def _restore_copies(module) -> None:
    """Each marked linalg.copy (a slice of a split memref.copy) back to memref.copy."""
    for op in walk_ops(module.operation, ["linalg.copy"]):
        if TILES_ATTR in op.attributes:
            with ir.InsertionPoint(op), op.location:
                memref.CopyOp(op.operands[0], op.operands[1])
            op.erase()


def _tile_marked(module, tile_sizes) -> None:
    """Tiles every op marked with one of `tile_sizes` to an scf.forall over its slices."""
    steps = []
    for i, sizes in enumerate(tile_sizes):
        listed = ", ".join(map(str, sizes))
        steps.append(
            f"%m{i} = transform.structured.match attributes{{{TILES_ATTR} = array<i64: {listed}>}} "
            f"in %root : (!transform.any_op) -> !transform.any_op\n"
            f"%t{i}, %f{i} = transform.structured.tile_using_forall %m{i} tile_sizes [{listed}] "
            f": (!transform.any_op) -> (!transform.any_op, !transform.any_op)\n")
    apply_transform_script(module, "".join(steps))


def _callees(op) -> List[str]:
    return [ir.FlatSymbolRefAttr(call.attributes["callee"]).value
            for call in walk_ops(op, ["func.call"])]


def _serial_functions(module) -> List[object]:
    """The functions whose ops may be split: all but kernel functions, functions they call and
    functions called from parallel code (transitively), so that no split nests in a thread."""
    functions = {ir.StringAttr(op.attributes["sym_name"]).value: op
                 for op in module.body.operations if op.operation.name == "func.func"}
    excluded = set()
    pending = [name for name, fn in functions.items() if KERNEL_ATTR in fn.attributes]
    for loop in walk_ops(module.operation, PARALLEL_LOOPS):
        pending += _callees(loop)
    while pending:
        name = pending.pop()
        if name in excluded or name not in functions:
            continue
        excluded.add(name)
        pending += _callees(functions[name])
    return [fn for name, fn in functions.items()
            if name not in excluded and fn.regions[0].blocks]


@register
@dataclass
class ParallelizeLoops(EmberPass):
    """Splits big linalg ops and copies outside GEMM kernels into OpenMP-parallel slices."""
    name = "ember-parallelize-loops"
    #: Iteration points an op needs before it is split (smaller ones stay serial).
    min_elements: int = 32768
    #: Slices to aim for: outer dims are split until their product reaches this (balance).
    min_chunks: int = 8

    def run(self, module, ctx: PassContext) -> None:
        tile_sizes = []
        for fn in _serial_functions(module):
            for op in walk_ops(fn, ["linalg.generic", "memref.copy"]):
                if in_parallel_loop(op) or list(op.results):
                    continue
                nest = _generic_nest(op) if op.name == "linalg.generic" else _copy_nest(op)
                sizes = None if nest is None else _split_sizes(nest, self.min_chunks)
                if sizes is None:
                    continue
                if nest.static_elements() < self.min_elements:
                    if None not in nest.extents:
                        continue
                    op = _guard(op, nest, self.min_elements)
                if op.name == "memref.copy":
                    op = _as_linalg_copy(op)
                op.attributes[TILES_ATTR] = ir.DenseI64ArrayAttr.get(sizes)
                if sizes not in tile_sizes:
                    tile_sizes.append(sizes)
        if not tile_sizes:
            return
        _tile_marked(module, tile_sizes)
        _restore_copies(module)
        for op in walk_ops(module.operation, ["linalg.generic"]):
            if TILES_ATTR in op.attributes:
                del op.attributes[TILES_ATTR]
