"""ember-fold-grouped-heads: grouped-query attention without copies of the keys and values.

Hugging Face's `repeat_kv` gives each of the Hkv key/value heads to its G = H / Hkv query
heads by materializing the repeat: x[B, Hkv, N, D] -> expand [B, Hkv, G, N, D] -> reshape
[B, H, N, D], a copy G times the cache's size per product, every decode step. Since query head
h = kv * G + g uses kv head h // G, the G query heads of one kv head can instead be the rows of
one product against the unrepeated x:

    q[B, H, M, D] @ repeat(x)^T  ==  reshape(reshape(q)[B, Hkv, G*M, D] @ x^T, [B, H, M, N])
    p[B, H, M, N] @ repeat(x)    ==  reshape(reshape(p)[B, Hkv, G*M, N] @ x,   [B, H, M, D])

(both reshapes are views: rows (g, m) of one kv head are contiguous). A decode step's product
then has G query rows instead of one, which the GEMM kernel's tiles use, and reads the cache
once. Matched: a plain ember.gemm (no bias, residual or weight formats) whose rhs is, possibly
through a transpose of its last two dims, an ember.reshape merging dims -4 and -3 of a
`linalg.generic` that copies its one input along dim -3; static shapes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.dialect.ops import Gemm, Reshape, Transpose
from ember.dialect.shapes import shape_of
from ember.kit.ir_queries import defined_by
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register


def _copies_along(generic, axis: int) -> bool:
    """Whether `generic` copies its one input into every index of its result's dim `axis`
    (the input map is the identity without that dim; the body yields the input)."""
    if len(generic.inputs) != 1 or len(generic.outputs) != 1:
        return False
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(generic.attributes["indexing_maps"])]
    rank = maps[1].n_dims
    if any("parallel" not in str(t) for t in ir.ArrayAttr(generic.attributes["iterator_types"])):
        return False
    expected_in = [d for d in range(rank) if d != axis]
    dims = [[ir.AffineDimExpr(e).position if isinstance(e, ir.AffineDimExpr) else None
             for e in m.results] for m in maps]
    if dims != [expected_in, list(range(rank))]:
        return False
    block = generic.regions[0].blocks[0]
    ops = list(block.operations)
    return len(ops) == 1 and ops[0].name == "linalg.yield" and \
        ops[0].operands[0] == block.arguments[0]


def _repeated_heads(value) -> Optional[tuple]:
    """(x, G) when `value` [..., Hkv * G, N, D] is x [..., Hkv, N, D] with each head repeated G
    times (expand on a new dim -3, then a reshape merging it into the heads), else None."""
    reshape = Reshape.defining(value)
    if reshape is None:
        return None
    repeated, merged = shape_of(reshape.input), shape_of(value)
    if repeated is None or merged is None or None in repeated or None in merged or \
            len(repeated) != len(merged) + 1 or len(merged) < 3 or \
            repeated[:-4] + [repeated[-4] * repeated[-3]] + repeated[-2:] != merged:
        return None
    generic = defined_by(reshape.input, "linalg.generic")
    if generic is None or not _copies_along(generic, len(repeated) - 3):
        return None
    return generic.inputs[0], repeated[-3]


def _swap_last_two(rank: int) -> list:
    return list(range(rank - 2)) + [rank - 1, rank - 2]


def fold_grouped_heads(op, rewriter) -> bool:
    gemm = Gemm(op)
    if gemm.bias is not None or gemm.residual is not None or gemm.rhs_scale is not None or \
            gemm.rhs_panel is not None or gemm.lhs_patches is not None:
        return NOT_APPLIED
    lhs_shape, out_shape = shape_of(gemm.lhs), shape_of(gemm.result)
    if lhs_shape is None or out_shape is None or None in lhs_shape or None in out_shape or \
            len(lhs_shape) < 3:
        return NOT_APPLIED
    rank = len(lhs_shape)
    rhs, transposed = gemm.rhs, False
    transpose = Transpose.defining(rhs)
    if transpose is not None and list(transpose.permutation) == _swap_last_two(rank):
        rhs, transposed = transpose.input, True
    found = _repeated_heads(rhs)
    if found is None:
        return NOT_APPLIED
    x, group = found
    heads, m = lhs_shape[-3], lhs_shape[-2]
    lead = lhs_shape[:-3] + [heads // group]
    element = ir.RankedTensorType(gemm.lhs.type).element_type
    out_element = ir.RankedTensorType(gemm.result.type).element_type
    with rewriter.ip, op.location:
        rows = Reshape.build(gemm.lhs, ir.RankedTensorType.get(
            lead + [group * m, lhs_shape[-1]], element))
        if transposed:
            x_shape = shape_of(x)
            x = Transpose.build(x, ir.RankedTensorType.get(
                [x_shape[p] for p in _swap_last_two(rank)],
                ir.RankedTensorType(x.type).element_type), permutation=_swap_last_two(rank))
        product = Gemm.build(rows, x, ir.RankedTensorType.get(
            lead + [group * m, out_shape[-1]], out_element), activation=gemm.activation)
        rewriter.replace_op(op, [Reshape.build(product, gemm.result.type)])
    return APPLIED


@register
@dataclass
class FoldGroupedHeads(EmberPass):
    """Multiplies grouped-query heads against the unrepeated keys and values (no repeat_kv
    copies): the G query heads of a kv head become G times the rows of one product."""
    name = "ember-fold-grouped-heads"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Gemm.op_name: [fold_grouped_heads]})
