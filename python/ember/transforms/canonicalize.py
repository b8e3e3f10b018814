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

from ember.dialect import builders as eb

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.patterns import APPLIED, NOT_APPLIED, apply_patterns, defined_by, merge_duplicate_weights


def _permutation(op):
    return list(op.attributes["permutation"])


def fold_transpose(op, rewriter) -> bool:
    """transpose(x, identity) -> x; transpose(transpose(x, p), q) -> transpose(x, p o q)."""
    perm = _permutation(op)
    source = op.operands[0]
    inner = defined_by(source, "ember.transpose")
    if inner is not None:
        inner_perm = _permutation(inner)
        perm = [inner_perm[i] for i in perm]
        source = inner.operands[0]
    elif perm != list(range(len(perm))):
        return NOT_APPLIED
    with rewriter.ip, op.location:
        if perm == list(range(len(perm))):
            rewriter.replace_op(op, [source])
        else:
            rewriter.replace_op(op, [eb.transpose(source, perm, op.results[0].type)])
    return APPLIED


def transpose_of_unit_dims(op, rewriter) -> bool:
    """A static transpose that only moves size-1 dims is a reshape (no data moves)."""
    t = ir.RankedTensorType(op.operands[0].type)
    if not t.has_static_shape:
        return NOT_APPLIED
    perm = _permutation(op)
    moved = [p for p in perm if t.shape[p] != 1]
    if moved != sorted(moved):
        return NOT_APPLIED
    with rewriter.ip, op.location:
        rewriter.replace_op(op, [eb.reshape(op.operands[0], op.results[0].type)])
    return APPLIED


def fold_reshape(op, rewriter) -> bool:
    """reshape(x) to x's own type -> x; reshape(reshape(x)) -> reshape(x)."""
    source = op.operands[0]
    inner = defined_by(source, "ember.reshape")
    if inner is not None:
        source = inner.operands[0]
    elif source.type != op.results[0].type:
        return NOT_APPLIED
    with rewriter.ip, op.location:
        if source.type == op.results[0].type:
            rewriter.replace_op(op, [source])
        else:
            rewriter.replace_op(op, [eb.reshape(source, op.results[0].type)])
    return APPLIED


#: op name -> canonicalization patterns (shared with passes that must keep IR canonical).
CANONICALIZATIONS = {"ember.transpose": [fold_transpose, transpose_of_unit_dims],
                     "ember.reshape": [fold_reshape]}


@register
@dataclass
class Canonicalize(EmberPass):
    """Simplifies ember ops: drops identity/cancelling transposes and reshapes, erases dead ops."""
    name = "ember-canonicalize"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, CANONICALIZATIONS)
        merge_duplicate_weights(module)
