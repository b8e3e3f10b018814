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
through a transpose of its last two dims, a reshape merging dims -4 and -3 of an
ember.broadcast of a size-1 dim -3; static shapes. An ember.attention whose key and value are
both such repeats is folded the same way when it is not causal (its rows' positions change),
in the default layout, and its mask, if any, is shared by all heads and rows (a decode step's
[.., 1, 1, N]) or given per head and row (then viewed like the query); there the keys' count
may be dynamic (a cache that grows), with the views of dynamic shapes (tensor.expand_shape /
collapse_shape).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.dialect.ops import Attention, Broadcast, Gemm, Reshape, Transpose
from ember.dialect.shapes import last_two_swapped, shape_of
from ember.kit.ir_queries import defined_by
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register


def _same(a, b) -> bool:
    """Shapes equal, a dynamic dim matching only a dynamic one (the same tensor's dim seen
    through views)."""
    return a is not None and b is not None and len(a) == len(b) and \
        all(x == y for x, y in zip(a, b))


def _merged_source(value) -> Optional[object]:
    """The tensor [..., A, B, N, D] that `value` [..., A * B, N, D] views with dims -4 and -3
    merged (an ember.reshape; with dynamic dims, a tensor.collapse_shape), else None."""
    reshape = Reshape.defining(value)
    if reshape is not None:
        return reshape.input
    collapse = defined_by(value, "tensor.collapse_shape")
    if collapse is None:
        return None
    groups = [[ir.IntegerAttr(d).value for d in ir.ArrayAttr(g)]
              for g in ir.ArrayAttr(collapse.attributes["reassociation"])]
    rank = len(groups) + 1
    expected = [[d] for d in range(rank - 4)] + [[rank - 4, rank - 3], [rank - 2], [rank - 1]]
    return collapse.operands[0] if groups == expected else None


def _without_unit_dim(value, axis: int, build: bool = False) -> Optional[object]:
    """x when `value` is a view of x with a size-1 dim inserted at `axis` (an ember.reshape or
    tensor.expand_shape), else None. With `build`, a static `value` that is no such view
    gets one (an ember.reshape at the insertion point); without, it is only checked for."""
    shape = shape_of(value)
    dropped = shape[:axis] + shape[axis + 1:]
    reshape = Reshape.defining(value)
    expand = defined_by(value, "tensor.expand_shape")
    source = reshape.input if reshape is not None else \
        expand.operands[0] if expand is not None else None
    if source is not None and _same(shape_of(source), dropped):
        return source
    if None in shape:
        return None
    if not build:
        return value
    return Reshape.build(value, ir.RankedTensorType.get(
        dropped, ir.RankedTensorType(value.type).element_type))


def _repeated_heads(value) -> Optional[tuple]:
    """(y, G) when `value` [..., Hkv * G, N, D] repeats each head of x [..., Hkv, N, D] G
    times: y [..., Hkv, 1, N, D] (x with a size-1 dim -3) broadcast along that dim, merged
    into the heads; else None. `_without_unit_dim(y, -3 + rank(y), build=True)` is x."""
    repeated = _merged_source(value)
    broadcast = None if repeated is None else Broadcast.defining(repeated)
    if broadcast is None:
        return None
    single, shape, merged = shape_of(broadcast.input), shape_of(repeated), shape_of(value)
    if single is None or shape is None or merged is None or len(merged) < 3 or \
            shape[-4] is None or shape[-3] is None or single[-3] != 1 or \
            not _same(single[:-3] + single[-2:], shape[:-3] + shape[-2:]) or \
            not _same(shape[:-4] + [shape[-4] * shape[-3]] + shape[-2:], merged) or \
            _without_unit_dim(broadcast.input, len(single) - 3) is None:
        return None
    return broadcast.input, shape[-3]


def _unrepeated(found):
    """x of `_repeated_heads`'s (y, G), built at the insertion point where needed."""
    y = found[0]
    return _without_unit_dim(y, len(shape_of(y)) - 3, build=True)


def _static(*values) -> Optional[list]:
    """The static shapes of `values`, or None when one is unknown or dynamic."""
    shapes = [shape_of(v) for v in values]
    return None if any(s is None or None in s for s in shapes) else shapes


def _grouped_type(value, group: int):
    """The type of [..., H, M, X] `value` with each `group` heads as rows: [..., H / group,
    group * M, X] (static shape)."""
    shape = shape_of(value)
    return ir.RankedTensorType.get(
        shape[:-3] + [shape[-3] // group, group * shape[-2], shape[-1]],
        ir.RankedTensorType(value.type).element_type)


def _as_rows(value, group: int):
    """[..., H, M, X] viewed as [..., H / group, group * M, X]."""
    return Reshape.build(value, _grouped_type(value, group))


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
    if transpose is not None and list(transpose.permutation) == last_two_swapped(rank):
        rhs, transposed = transpose.input, True
    found = _repeated_heads(rhs)
    if found is None:
        return NOT_APPLIED
    group = found[1]
    with rewriter.ip, op.location:
        x = _unrepeated(found)
        if transposed:
            x_shape = shape_of(x)
            x = Transpose.build(x, ir.RankedTensorType.get(
                [x_shape[p] for p in last_two_swapped(rank)],
                ir.RankedTensorType(x.type).element_type), permutation=last_two_swapped(rank))
        product = Gemm.build(_as_rows(gemm.lhs, group), x,
                             _grouped_type(gemm.result, group),
                             activation=gemm.activation)
        rewriter.replace_op(op, [Reshape.build(product, gemm.result.type)])
    return APPLIED


def _grouped_mask(mask, scores: list, group: int):
    """The mask for the grouped scores [..., H / group, group * M, N]: None (no mask), the mask
    itself when every head and row shares it, its [..., H, M, N] viewed as rows when given per
    head and row, else False (not foldable)."""
    if mask is None:
        return None
    shape = shape_of(mask)
    if shape is None:
        return False
    shape = [1] * (len(scores) - len(shape)) + shape
    if shape[-3:-1] == [1, 1]:
        return mask
    if None not in shape + scores and shape[-3:-1] == scores[-3:-1] and \
            len(shape_of(mask)) == len(scores):
        return _as_rows(mask, group)
    return False


def fold_grouped_attention(op, rewriter) -> bool:
    attention = Attention(op)
    if attention.causal or attention.int8 or attention.layout is not None:
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
        grouped = Attention.build(_as_rows(attention.query, group), _unrepeated(keys),
                                  _unrepeated(values),
                                  _grouped_type(attention.result, group), mask=mask,
                                  scale=attention.scale)
        rewriter.replace_op(op, [Reshape.build(grouped, attention.result.type)])
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
