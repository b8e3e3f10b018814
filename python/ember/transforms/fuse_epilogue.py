"""ember-fuse-epilogue: GEMM/conv + bias + activation + residual into one op.

The frontend maps torch ops 1:1, so `Linear -> GELU -> Linear -> + x` arrives as a GEMM, a bias
add, a unary GELU, a GEMM, a bias add and a residual add. This pass folds each chain into the
GEMM's epilogue, in the epilogue's order `residual + act(lhs @ rhs + bias)`, so the code
generator applies it on the output tile instead of making extra passes over memory. A step
applies only when the GEMM result has no other user (otherwise the unfused value is still
needed) and the epilogue slot is free and comes later in the order.
"""
from __future__ import annotations

from dataclasses import dataclass

from ember.dialect.enums import ACTIVATIONS
from ember.dialect.ops import Binary, Conv2d, Gemm, Unary
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import use_count
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns

#: Ops with a fusable epilogue (bias, activation, residual).
PRODUCERS = (Gemm, Conv2d)


def _single_use_gemm(value):
    """The GEMM or conv (view) producing `value` when `value` has no other user."""
    for kind in PRODUCERS:
        producer = kind.defining(value)
        if producer is not None and use_count(value) == 1:
            return producer
    return None


def _rebuild(rewriter, op, gemm, **changes):
    with rewriter.ip, op.location:
        rewriter.replace_op(op, [gemm.rebuild(op.results[0].type, **changes)])


def _is_bias_for(value, gemm) -> bool:
    """A [N] vector added to a GEMM's [..., N] result (conv biases arrive per channel and are
    folded by ember-fold-batch-norm)."""
    if not isinstance(gemm, Gemm):
        return False
    shape, n = shape_of(value), shape_of(gemm.result)[-1]
    return shape is not None and len(shape) == 1 and shape[0] is not None and shape[0] == n


@dataclass
class _AddFusion:
    """Fuses `gemm + b` as the bias (b is [N]) or the residual (b has the result's shape)."""
    bias: bool
    residual: bool

    def __call__(self, op, rewriter) -> bool:
        if Binary(op).kind != "add":
            return NOT_APPLIED
        for gemm_side in (0, 1):
            gemm = _single_use_gemm(op.operands[gemm_side])
            other = op.operands[1 - gemm_side]
            if gemm is None:
                continue
            if self.bias and gemm.bias is None and gemm.activation == "none" and \
                    gemm.residual is None and _is_bias_for(other, gemm):
                _rebuild(rewriter, op, gemm, bias=other)
                return APPLIED
            if self.residual and gemm.residual is None and \
                    other.type == gemm.result.type == op.results[0].type:
                _rebuild(rewriter, op, gemm, residual=other)
                return APPLIED
        return NOT_APPLIED


def fuse_activation(op, rewriter) -> bool:
    """act(gemm) -> gemm{activation=act} when the GEMM has no activation or residual yet."""
    unary = Unary(op)
    kind = unary.kind
    gemm = _single_use_gemm(unary.input)
    if kind not in ACTIVATIONS or gemm is None:
        return NOT_APPLIED
    if gemm.activation != "none" or gemm.residual is not None:
        return NOT_APPLIED
    _rebuild(rewriter, op, gemm, activation=kind)
    return APPLIED


@register
@dataclass
class FuseEpilogue(EmberPass):
    """Fuses bias adds, activations and residual adds into the producing ember.gemm."""
    name = "ember-fuse-epilogue"
    bias: bool = True
    activation: bool = True
    residual: bool = True

    def run(self, module, ctx: PassContext) -> None:
        patterns = {Binary.op_name: [_AddFusion(self.bias, self.residual)]}
        if self.activation:
            patterns[Unary.op_name] = [fuse_activation]
        apply_patterns(module, patterns)
