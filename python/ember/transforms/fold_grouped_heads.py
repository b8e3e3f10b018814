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
`linalg.generic` that copies its one input along dim -3; static shapes. An ember.attention
whose key and value are both such repeats is folded the same way when it is not causal (its
rows' positions change) and its mask, if any, is shared by all heads and rows (a decode
step's [.., 1, 1, N]) or given per head and row (then viewed like the query).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.dialect.ops import Attention, Gemm, Reshape, Transpose
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


def _static(*values) -> Optional[list]:
    """The static shapes of `values`, or None when one is unknown or dynamic."""
    shapes = [shape_of(v) for v in values]
    return None if any(s is None or None in s for s in shapes) else shapes


def _as_rows(value, group: int):
    """[..., H, M, X] viewed as [..., H / group, group * M, X] (static shape)."""
    shape = shape_of(value)
    return Reshape.build(value, ir.RankedTensorType.get(
        shape[:-3] + [shape[-3] // group, group * shape[-2], shape[-1]],
        ir.RankedTensorType(value.type).element_type))


def _as_heads(value, result_type):
    return Reshape.build(value, result_type)


def _grouped_result_type(result, group: int):
    shape = shape_of(result)
    return ir.RankedTensorType.get(
        shape[:-3] + [shape[-3] // group, group * shape[-2], shape[-1]],
        ir.RankedTensorType(result.type).element_type)


def fold_grouped_heads(op, rewriter) -> bool:
    gemm = Gemm(op)
    if gemm.bias is not None or gemm.residual is not None or gemm.rhs_scale is not None or \
            gemm.rhs_panel is not None or gemm.lhs_patches is not None:
        return NOT_APPLIED
    shapes = _static(gemm.lhs, gemm.result)
    if shapes is None or len(shapes[0]) < 3:
        return NOT_APPLIED
    rank = len(shapes[0])
    rhs, transposed = gemm.rhs, False
    transpose = Transpose.defining(rhs)
    if transpose is not None and list(transpose.permutation) == _swap_last_two(rank):
        rhs, transposed = transpose.input, True
    found = _repeated_heads(rhs)
    if found is None:
        return NOT_APPLIED
    x, group = found
    with rewriter.ip, op.location:
        if transposed:
            x_shape = shape_of(x)
            x = Transpose.build(x, ir.RankedTensorType.get(
                [x_shape[p] for p in _swap_last_two(rank)],
                ir.RankedTensorType(x.type).element_type), permutation=_swap_last_two(rank))
        product = Gemm.build(_as_rows(gemm.lhs, group), x,
                             _grouped_result_type(gemm.result, group),
                             activation=gemm.activation)
        rewriter.replace_op(op, [_as_heads(product, gemm.result.type)])
    return APPLIED


def _grouped_mask(mask, scores: list, group: int):
    """The mask for the grouped scores [..., H / group, group * M, N]: None (no mask), the mask
    itself when every head and row shares it, its [..., H, M, N] viewed as rows when given per
    head and row, else False (not foldable)."""
    if mask is None:
        return None
    shape = shape_of(mask)
    if shape is None or None in shape:
        return False
    shape = [1] * (len(scores) - len(shape)) + shape
    if shape[-3:-1] == [1, 1]:
        return mask
    if shape[-3:-1] == scores[-3:-1] and len(shape_of(mask)) == len(scores):
        return _as_rows(mask, group)
    return False


def fold_grouped_attention(op, rewriter) -> bool:
    attention = Attention(op)
    if attention.causal or attention.int8:
        return NOT_APPLIED
    shapes = _static(attention.query, attention.result)
    if shapes is None or len(shapes[0]) < 3:
        return NOT_APPLIED
    keys, values = _repeated_heads(attention.key), _repeated_heads(attention.value)
    if keys is None or values is None or keys[1] != values[1]:
        return NOT_APPLIED
    group = keys[1]
    scores = shapes[0][:-1] + [shape_of(attention.key)[-2]]
    with rewriter.ip, op.location:
        mask = _grouped_mask(attention.mask, scores, group)
        if mask is False:
            return NOT_APPLIED
        grouped = Attention.build(_as_rows(attention.query, group), keys[0], values[0],
                                  _grouped_result_type(attention.result, group), mask=mask,
                                  scale=attention.scale)
        rewriter.replace_op(op, [_as_heads(grouped, attention.result.type)])
    return APPLIED


@register
@dataclass
class FoldGroupedHeads(EmberPass):
    """Multiplies grouped-query heads against the unrepeated keys and values (no repeat_kv
    copies): the G query heads of a kv head become G times the rows of one product."""
    name = "ember-fold-grouped-heads"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Gemm.op_name: [fold_grouped_heads],
                                Attention.op_name: [fold_grouped_attention]})
