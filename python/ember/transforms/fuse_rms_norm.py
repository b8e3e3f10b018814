"""ember-fuse-rms-norm: recognizes RMSNorm written out in ops (LLaMA-style modules).

`x * rsqrt(mean(x * x, -1, keepdim) + eps) * weight` (or `pow(x, 2)`, or `x / sqrt(...)`)
becomes one `ember.rms_norm`, computed in one pass over each row instead of five elementwise
ops and a reduction. A trailing multiply by a weight vector of the normalized shape is folded
into the op too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ember.dialect.ops import Binary, Reduce, RmsNorm, Unary
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.transforms.fold_constants import scalar_constant
from ember.kit.ir_queries import binary_of_kind
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns


def _is_square_of(value, x) -> bool:
    mul = binary_of_kind(value, "mul")
    if mul is not None and mul.operands[0] == x and mul.operands[1] == x:
        return True
    power = binary_of_kind(value, "pow")
    return power is not None and power.operands[0] == x and \
        scalar_constant(power.operands[1]) == 2.0


def _mean_square_plus_eps(value, x) -> Optional[float]:
    """eps when `value` is `mean(x^2 over the last dim, keepdim) + eps`."""
    add = binary_of_kind(value, "add")
    if add is None:
        return None
    for side in (0, 1):
        eps = scalar_constant(add.operands[1 - side])
        mean = Reduce.defining(add.operands[side])
        if eps is None or mean is None or mean.kind != "mean":
            continue
        rank = len(shape_of(x))
        if mean.axes == [rank - 1] and mean.keepdim and _is_square_of(mean.input, x):
            return eps
    return None


def _rms_factor(value, x) -> Optional[float]:
    """eps when `value` is rsqrt(mean(x^2) + eps)."""
    rsqrt = Unary.defining(value)
    if rsqrt is None or rsqrt.kind != "rsqrt":
        return None
    return _mean_square_plus_eps(rsqrt.input, x)


def fuse_normalization(op, rewriter) -> bool:
    """x * rsqrt(mean(x^2) + eps) and x / sqrt(mean(x^2) + eps) -> rms_norm(x)."""
    kind = Binary(op).kind
    candidates = []
    if kind == "mul":
        candidates = [(op.operands[s], _rms_factor(op.operands[1 - s], op.operands[s]))
                      for s in (0, 1)]
    elif kind == "div":
        sqrt = Unary.defining(op.operands[1])
        if sqrt is not None and sqrt.kind == "sqrt":
            candidates = [(op.operands[0], _mean_square_plus_eps(sqrt.input, op.operands[0]))]
    for x, eps in candidates:
        if eps is not None and op.results[0].type == x.type:
            with rewriter.ip, op.location:
                rewriter.replace_op(op, [RmsNorm.build(x, x.type, epsilon=eps)])
            return APPLIED
    return NOT_APPLIED


def fold_weight(op, rewriter) -> bool:
    """rms_norm(x) * w, w of the normalized shape -> rms_norm(x, w)."""
    if Binary(op).kind != "mul":
        return NOT_APPLIED
    for side in (0, 1):
        norm = RmsNorm.defining(op.operands[side])
        weight = op.operands[1 - side]
        if norm is None or norm.weight is not None or len(list(norm.result.uses)) != 1:
            continue
        x = norm.input
        n = norm.normalized_ndim
        if shape_of(weight) != shape_of(x)[-n:] or op.results[0].type != x.type:
            continue
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [norm.rebuild(x.type, weight=weight)])
        return APPLIED
    return NOT_APPLIED


@register
@dataclass
class FuseRmsNorm(EmberPass):
    """Replaces written-out RMSNorm (x * rsqrt(mean(x^2) + eps) * w) with ember.rms_norm."""
    name = "ember-fuse-rms-norm"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Binary.op_name: [fuse_normalization, fold_weight]})
