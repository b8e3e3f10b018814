"""ember-fuse-attention: recognizes scaled dot-product attention written out in ops.

Models written with plain torch ops (BERT-style encoders) compute attention as
`matmul(softmax(matmul(q, k^T) * scale + mask), v)`; the frontend maps each op 1:1. This pass
finds that chain, each intermediate used once, and replaces it with one `ember.attention`, so
the scores never need a pass over memory of their own and the code generator sees the whole
computation. Recognized: a batched GEMM of q with transpose(k) (last two dims swapped), an
optional multiply or divide by a scalar constant, an optional additive mask, a softmax over the
last dim, and a batched GEMM with v.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from mlir import ir

from ember.dialect import builders as eb
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.transforms.fold_constants import scalar_constant
from ember.kit.patterns import APPLIED, NOT_APPLIED, apply_patterns, defined_by, int_attr, string_attr
from ember.kit.patterns import use_count


def _single_use(value, name: str):
    op = defined_by(value, name)
    return op if op is not None and use_count(value) == 1 else None


def _plain_gemm(op) -> bool:
    return op is not None and string_attr(op, "activation") == "none" and all(
        eb.optional_operand(op, n) is None for n in ("bias", "residual"))


def _scores(value) -> Optional[Tuple[object, float, Optional[object]]]:
    """(q @ k^T gemm, scale, mask) when `value` is `(q @ k^T) (*|/) c (+ mask)`."""
    scale, mask = 1.0, None
    add = _single_use(value, "ember.binary")
    if add is not None and string_attr(add, "kind") == "add":
        for side in (0, 1):
            inner = add.operands[side]
            if defined_by(inner, "ember.binary") or defined_by(inner, "ember.gemm"):
                value, mask = inner, add.operands[1 - side]
                break
    scaled = _single_use(value, "ember.binary")
    if scaled is not None and string_attr(scaled, "kind") in ("mul", "div"):
        c = scalar_constant(scaled.operands[1])
        if c is None or c == 0:
            return None
        scale = c if string_attr(scaled, "kind") == "mul" else 1.0 / c
        value = scaled.operands[0]
    gemm = _single_use(value, "ember.gemm")
    if not _plain_gemm(gemm):
        return None
    return gemm, scale, mask


def fuse_attention(op, rewriter) -> bool:
    """gemm(softmax(scores), v) -> ember.attention."""
    if not _plain_gemm(op):
        return NOT_APPLIED
    softmax = _single_use(op.operands[0], "ember.softmax")
    if softmax is None:
        return NOT_APPLIED
    rank = len(shape_of(softmax.results[0]))
    if int_attr(softmax, "axis") != rank - 1:
        return NOT_APPLIED
    found = _scores(softmax.operands[0])
    if found is None:
        return NOT_APPLIED
    qk, scale, mask = found
    q, kt, v = qk.operands[0], qk.operands[1], op.operands[1]
    if not (len(shape_of(q)) == len(shape_of(kt)) == len(shape_of(v)) == rank):
        return NOT_APPLIED
    transpose = defined_by(kt, "ember.transpose")
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    with rewriter.ip, op.location:
        if transpose is not None and list(transpose.attributes["permutation"]) == swap:
            k = transpose.operands[0]
        else:
            t = ir.RankedTensorType(kt.type)
            shape = list(t.shape)
            shape[-2], shape[-1] = shape[-1], shape[-2]
            k = eb.transpose(kt, swap, ir.RankedTensorType.get(shape, t.element_type))
        rewriter.replace_op(op, [eb.attention(q, k, v, op.results[0].type, mask=mask,
                                              scale=scale)])
    return APPLIED


@register
@dataclass
class FuseAttention(EmberPass):
    """Replaces matmul-softmax-matmul attention chains with one ember.attention op."""
    name = "ember-fuse-attention"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {"ember.gemm": [fuse_attention]})
