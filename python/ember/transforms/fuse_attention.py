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

from ember.dialect.ops import Attention, Binary, Gemm, Softmax, Transpose
from ember.dialect.shapes import last_two_swapped, shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.transforms.fold_constants import scalar_constant
from ember.kit.ir_queries import use_count
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns


def _single_use(value, kind):
    """The `kind` view of the op defining `value` when `value` has no other user, else None."""
    op = kind.defining(value)
    return op if op is not None and use_count(value) == 1 else None


def _plain_gemm(gemm) -> bool:
    return gemm is not None and gemm.activation == "none" and gemm.bias is None and \
        gemm.residual is None


def _scores(value) -> Optional[Tuple[Gemm, float, Optional[object]]]:
    """(q @ k^T gemm, scale, mask) when `value` is `(q @ k^T) (*|/) c (+ mask)`."""
    scale, mask = 1.0, None
    add = _single_use(value, Binary)
    if add is not None and add.kind == "add":
        for inner, other in ((add.lhs, add.rhs), (add.rhs, add.lhs)):
            if Binary.defining(inner) or Gemm.defining(inner):
                value, mask = inner, other
                break
    scaled = _single_use(value, Binary)
    if scaled is not None and scaled.kind in ("mul", "div"):
        c = scalar_constant(scaled.rhs)
        if c is None or c == 0:
            return None
        scale = c if scaled.kind == "mul" else 1.0 / c
        value = scaled.lhs
    gemm = _single_use(value, Gemm)
    if not _plain_gemm(gemm):
        return None
    return gemm, scale, mask


def fuse_attention(op, rewriter) -> bool:
    """gemm(softmax(scores), v) -> ember.attention."""
    gemm = Gemm(op)
    if not _plain_gemm(gemm):
        return NOT_APPLIED
    softmax = _single_use(gemm.lhs, Softmax)
    if softmax is None:
        return NOT_APPLIED
    rank = len(shape_of(softmax.result))
    if softmax.axis != rank - 1:
        return NOT_APPLIED
    found = _scores(softmax.input)
    if found is None:
        return NOT_APPLIED
    qk, scale, mask = found
    q, kt, v = qk.lhs, qk.rhs, gemm.rhs
    if not (len(shape_of(q)) == len(shape_of(kt)) == len(shape_of(v)) == rank):
        return NOT_APPLIED
    transpose = Transpose.defining(kt)
    swap = last_two_swapped(rank)
    with rewriter.ip, op.location:
        if transpose is not None and transpose.permutation == swap:
            k = transpose.input
        else:
            t = ir.RankedTensorType(kt.type)
            shape = list(t.shape)
            shape[-2], shape[-1] = shape[-1], shape[-2]
            k = Transpose.build(kt, ir.RankedTensorType.get(shape, t.element_type),
                                permutation=swap)
        rewriter.replace_op(op, [Attention.build(q, k, v, op.results[0].type, mask=mask,
                                                 scale=scale)])
    return APPLIED


@register
@dataclass
class FuseAttention(EmberPass):
    """Replaces matmul-softmax-matmul attention chains with one ember.attention op."""
    name = "ember-fuse-attention"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Gemm.op_name: [fuse_attention]})
