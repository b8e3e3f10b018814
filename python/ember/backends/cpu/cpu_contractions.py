"""ember-cpu-contractions: run-time matrix products (attention's Q K^T and P V) on the GEMM
micro-kernel.

ember-lower-to-linalg lowers products whose rhs is not a weight, such as the two contractions
of ember.attention, to plain `linalg.generic` contractions. LLVM vectorizes those loops, but a
dot product per output element (Q K^T) or a load and store of C per k step (P V) runs at a
fraction of the FMA peak. This pass recognizes them and calls a GEMM kernel function instead
(the same machinery as packed-weight GEMMs, see ember.kit.gemm_kernel_spec) whose B is read
row-major in place, batched over the leading dim:

    %c = linalg.generic {(b, m, n, k): A (b, m, k), B (b, k, n) or (b, n, k) -> C (b, m, n)}
           ins(%a, %b) outs(linalg.fill 0.0)   with body  c + a * b
    ->  %c = call @ember_gemm_<i>(%a, %b_kn, %init)  {batch, rhs_packed = false}

A B given as (b, n, k) (Q K^T reads K [n, k]) is transposed to (b, k, n) first: a copy of
N*K elements that the N*M*K product amortizes. Where it would not (a decode step's query has
at most `GEMV_ROWS` rows against a cache of N keys) the product is computed transposed instead,
C^T = B A^T: the keys, contiguous in k, are the kernel's A, read in place, and only the few
query rows and the result are transposed. Several batch dims (attention's batch and heads)
are collapsed into the kernel's one. A plain `linalg.matmul` (a 2-D product of two run-time
tensors) is taken the same way. Matched: an f32 zero-filled accumulator, f32 operands or
16-bit ones widened in the body (a half model's products, summed in f32: the kernel widens
them in registers), A contiguous in k (its last index), a mul-add body; anything else is left
alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

from mlir import ir
from mlir.dialects import func, linalg, tensor

from ember.dialect.shapes import last_two_swapped
from ember.kit.gemm_kernel_spec import KERNEL_ATTR, GemmKernelSpec
from ember.backends.cpu.gemm_schedule import GEMV_ROWS, default_panel
from ember.backends.cpu.microkernel import CpuTraits
from ember.kit.ir_queries import defined_by
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.kit.builders import i64
from ember.kit.structured import tensor_dim
from ember.lowering.gemm_to_linalg import gemm_kernel_function
from ember.pipeline.pass_base import EmberPass, PassContext, register


def _map_dims(attr) -> Optional[List[int]]:
    """The dims an affine map's results name, when each is a plain dim, else None."""
    amap = ir.AffineMapAttr(attr).value
    dims = []
    for expr in amap.results:
        if not isinstance(expr, ir.AffineDimExpr):
            return None
        dims.append(ir.AffineDimExpr(expr).position)
    return dims


def _is_mul_add(generic) -> bool:
    """Whether the body is `yield c + a * b` (either operand order) on its block arguments,
    a and b possibly widened first (16-bit operands summed in f32)."""
    block = generic.regions[0].blocks[0]
    ops = list(block.operations)
    a, b, c = block.arguments
    widened = [op for op in ops if op.name == "arith.extf"]
    if len(widened) == 2 and [op.name for op in ops[:2]] == ["arith.extf"] * 2 and \
            {widened[0].operands[0], widened[1].operands[0]} == {a, b}:
        a, b = widened[0].results[0], widened[1].results[0]
        ops = ops[2:]
    if [op.name for op in ops] != ["arith.mulf", "arith.addf", "linalg.yield"]:
        return False
    mul, add, yield_ = ops
    return {mul.operands[0], mul.operands[1]} == {a, b} and \
        {add.operands[0], add.operands[1]} == {c, mul.results[0]} and \
        yield_.operands[0] == add.results[0]


@dataclass
class _Contraction:
    """How a matched generic maps to the kernel: which dims are batch, m, n, k and whether B
    must be transposed."""
    batch: List[int]
    m: int
    n: int
    k: int
    transpose_b: bool


def _match(generic) -> Optional[_Contraction]:
    if "indexing_maps" in generic.attributes:
        maps = [_map_dims(a) for a in ir.ArrayAttr(generic.attributes["indexing_maps"])]
    else:                                   # a named matmul built without explicit maps
        maps = [[0, 2], [2, 1], [0, 1]]
    if None in maps or len(maps) != 3:
        return None
    a_dims, b_dims, c_dims = maps
    if generic.name == "linalg.matmul":     # iteration space (m, n, k)
        k = 2
    else:
        iterators = [str(t) for t in ir.ArrayAttr(generic.attributes["iterator_types"])]
        reductions = [d for d, t in enumerate(iterators) if "reduction" in t]
        if len(reductions) != 1 or not _is_mul_add(generic):
            return None
        k = reductions[0]
    if len(c_dims) < 2 or len(set(c_dims)) != len(c_dims):
        return None
    *batch, m, n = c_dims
    if a_dims != batch + [m, k]:
        return None
    if b_dims == batch + [k, n]:
        return _Contraction(batch, m, n, k, transpose_b=False)
    if b_dims == batch + [n, k]:
        return _Contraction(batch, m, n, k, transpose_b=True)
    return None


def _zero_filled(value) -> Optional[ir.Value]:
    """The destination a `linalg.fill 0.0` fills, when `value` is that fill's result."""
    fill = defined_by(value, "linalg.fill")
    zero = None if fill is None else defined_by(fill.operands[0], "arith.constant")
    if zero is None or not isinstance(zero.attributes["value"], ir.FloatAttr) or \
            ir.FloatAttr(zero.attributes["value"]).value != 0.0:
        return None
    return fill.operands[1]


@dataclass
class _ToKernel:
    panel: int
    lanes: int

    def __call__(self, generic, rewriter) -> bool:
        if _in_kernel_function(generic):
            return NOT_APPLIED              # a kernel's own linalg reference body
        match = _match(generic)
        if match is None:
            return NOT_APPLIED
        a, b = generic.inputs
        out_type = ir.RankedTensorType(generic.results[0].type)
        types = [ir.RankedTensorType(v.type) for v in (a, b)]
        operands = types[0].element_type
        filled = _zero_filled(generic.outputs[0])
        if filled is None or \
                not isinstance(out_type.element_type, ir.F32Type) or \
                types[1].element_type != operands or \
                not isinstance(operands, (ir.F32Type, ir.F16Type, ir.BF16Type)):
            return NOT_APPLIED
        m_size, n_size = out_type.shape[-2:]
        k_size = types[0].shape[-1]
        dynamic = ir.ShapedType.is_dynamic_size
        swapped = match.transpose_b and not dynamic(m_size) and m_size <= GEMV_ROWS and \
            (dynamic(n_size) or n_size > m_size)
        if dynamic(m_size if swapped else n_size) or dynamic(k_size) or \
                k_size == 0:                # an empty product: the zero fill is the result
            return NOT_APPLIED
        with rewriter.ip, generic.location:
            batched = len(match.batch) > 1
            if batched:                     # one batch dim of all the leading ones
                a, b = _collapse_batch(a), _collapse_batch(b)
            if swapped:                     # C^T = B A^T: the long side as the kernel's rows
                a, b = b, _transpose_last_two(a)
                m_size, n_size = n_size, m_size
            elif match.transpose_b:
                b = _transpose_last_two(b)
            lead = list(ir.RankedTensorType(a.type).shape[:-2])
            call_type = ir.RankedTensorType.get(lead + [m_size, n_size], out_type.element_type)
            # The kernel writes every element of its destination: the fill's, or an empty one.
            init = filled if not (batched or swapped) else tensor.empty(
                [tensor_dim(a, d) if dynamic(s) else s
                 for d, s in enumerate(lead + [m_size])] + [n_size], out_type.element_type)
            spec = GemmKernelSpec(
                m=None if dynamic(m_size) else m_size, n=n_size, k=k_size,
                nr=self.lanes if swapped else self.panel,
                batch=0 if not lead else -1 if dynamic(lead[0]) else lead[0], rhs_packed=False,
                operands="" if isinstance(operands, ir.F32Type) else str(operands))
            callee = gemm_kernel_function(generic, spec, [a.type, b.type, call_type],
                                          call_type)
            result = func.call([call_type], callee, [a, b, init])
            if swapped:
                result = _transpose_last_two(result)
            if batched:
                result = _expand_batch(result, out_type, generic.inputs[0])
            rewriter.replace_op(generic, [result])
        return APPLIED


def _batch_groups(rank: int) -> ir.ArrayAttr:
    """The reassociation [[0 .. rank-3], [rank-2], [rank-1]]: the batch dims into one."""
    return ir.ArrayAttr.get([ir.ArrayAttr.get([i64(d) for d in range(rank - 2)]),
                             ir.ArrayAttr.get([i64(rank - 2)]),
                             ir.ArrayAttr.get([i64(rank - 1)])])


def _collapse_batch(value):
    t = ir.RankedTensorType(value.type)
    lead = t.shape[:-2]
    batch = ir.ShapedType.get_dynamic_size() \
        if any(ir.ShapedType.is_dynamic_size(s) for s in lead) else math.prod(lead)
    return tensor.collapse_shape(ir.RankedTensorType.get([batch] + t.shape[-2:],
                                                         t.element_type),
                                 value, _batch_groups(t.rank))


def _expand_batch(value, out_type, lhs):
    """The collapsed-batch result back in `out_type`, its dynamic batch dims read from the
    original `lhs` (which shares them), M and N from `value`."""
    rank = out_type.rank
    sizes = [tensor_dim(lhs, d) if d < rank - 2 else tensor_dim(value, d - rank + 3)
             for d in range(rank) if out_type.is_dynamic_dim(d)]
    return tensor.expand_shape(out_type, value, _batch_groups(rank), sizes,
                               ir.DenseI64ArrayAttr.get(list(out_type.shape)))


def _in_kernel_function(op) -> bool:
    parent = op.operation.parent
    while parent is not None and parent.name != "func.func":
        parent = parent.parent
    return parent is not None and KERNEL_ATTR in parent.attributes


def _transpose_last_two(value):
    t = ir.RankedTensorType(value.type)
    perm = last_two_swapped(t.rank)
    shape = [t.shape[p] for p in perm]
    sizes = [tensor_dim(value, p) if ir.ShapedType.is_dynamic_size(s) else s
             for p, s in zip(perm, shape)]
    init = tensor.empty(sizes, t.element_type)
    return linalg.transpose(value, outs=[init], permutation=perm).results[0]


@register
@dataclass
class CpuContractions(EmberPass):
    """Routes batched matmul-shaped linalg.generic contractions to the CPU GEMM kernel."""
    name = "ember-cpu-contractions"
    #: Columns per register tile (the kernel's NR); 0: the target's (two vector registers).
    panel: int = 0

    def run(self, module, ctx: PassContext) -> None:
        traits = CpuTraits.from_target(ctx.require_target(self.name))
        pattern = _ToKernel(self.panel or default_panel(traits), traits.lanes)
        apply_patterns(module, {"linalg.generic": [pattern], "linalg.matmul": [pattern]},
                       erase_dead=False)
