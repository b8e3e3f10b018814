"""ember-canonicalize: local simplifications of ember ops.

Removes no-op data movement so later passes (fusion, folding) see through it: identity
transposes and reshapes, transpose-of-transpose (composed or cancelled), reshape-of-reshape,
and transposes that only move size-1 dims (reshapes in disguise); merges duplicate
`ember.weight` ops of one name.
Dead ember ops are erased. Numerics never change.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.dialect.ops import Reshape, Transpose

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.transforms.duplicate_weights import merge_duplicate_weights


def fold_transpose(op, rewriter) -> bool:
    """transpose(x, identity) -> x; transpose(transpose(x, p), q) -> transpose(x, p o q)."""
    transpose = Transpose(op)
    perm, source = transpose.permutation, transpose.input
    inner = Transpose.defining(source)
    if inner is not None:
        inner_perm = inner.permutation
        perm = [inner_perm[i] for i in perm]
        source = inner.input
    elif perm != list(range(len(perm))):
        return NOT_APPLIED
    with rewriter.ip, op.location:
        if perm == list(range(len(perm))):
            rewriter.replace_op(op, [source])
        else:
            rewriter.replace_op(op, [Transpose.build(source, op.results[0].type,
                                                     permutation=perm)])
    return APPLIED


def transpose_of_unit_dims(op, rewriter) -> bool:
    """A static transpose that only moves size-1 dims is a reshape (no data moves)."""
    transpose = Transpose(op)
    t = ir.RankedTensorType(transpose.input.type)
    if not t.has_static_shape:
        return NOT_APPLIED
    moved = [p for p in transpose.permutation if t.shape[p] != 1]
    if moved != sorted(moved):
        return NOT_APPLIED
    with rewriter.ip, op.location:
        rewriter.replace_op(op, [Reshape.build(transpose.input, op.results[0].type)])
    return APPLIED


def fold_reshape(op, rewriter) -> bool:
    """reshape(x) to x's own type -> x; reshape(reshape(x)) -> reshape(x)."""
    source = Reshape(op).input
    inner = Reshape.defining(source)
    if inner is not None:
        source = inner.input
    elif source.type != op.results[0].type:
        return NOT_APPLIED
    with rewriter.ip, op.location:
        if source.type == op.results[0].type:
            rewriter.replace_op(op, [source])
        else:
            rewriter.replace_op(op, [Reshape.build(source, op.results[0].type)])
    return APPLIED


#: op name -> canonicalization patterns (shared with passes that must keep IR canonical).
CANONICALIZATIONS = {Transpose.op_name: [fold_transpose, transpose_of_unit_dims],
                     Reshape.op_name: [fold_reshape]}


@register
@dataclass
class Canonicalize(EmberPass):
    """Simplifies ember ops: drops identity/cancelling transposes and reshapes, erases dead ops."""
    name = "ember-canonicalize"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, CANONICALIZATIONS)
        merge_duplicate_weights(module)
