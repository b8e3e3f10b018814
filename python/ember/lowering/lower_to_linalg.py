"""ember-lower-to-linalg: ember ops -> linalg / tensor / arith / math on tensors.

This is the portable lowering every target starts from: each ember op becomes a few structured
linalg ops (a GEMM becomes a matmul-like contraction plus one elementwise epilogue op that the
target pipeline fuses into the GEMM's tiles, or a call of a GEMM kernel function when its
weight is packed). The lowerings live by kind of op in the `*_to_linalg` modules of this
package and build their ops with ember.kit; math is done in the tensor's own element type (see
ember.kit.scalar_math). `ember.weight` is left alone: binding weights is the target's business
(see ember-bind-weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict

from ember.kit.patterns import APPLIED, apply_patterns
from ember.lowering.attention_to_linalg import lower_attention
from ember.lowering.conv_pool_to_linalg import lower_conv2d, lower_pool2d
from ember.lowering.elementwise_to_linalg import lower_binary, lower_rotary_embedding, \
    lower_unary
from ember.lowering.gemm_to_linalg import lower_gemm
from ember.lowering.reductions_to_linalg import lower_layer_norm, lower_reduce, lower_rms_norm, \
    lower_softmax
from ember.lowering.shape_ops_to_linalg import lower_concat, lower_reshape, lower_slice, \
    lower_transpose
from ember.pipeline.pass_base import EmberPass, PassContext, register

#: ember op -> lowering (returns the replacement value).
LOWERINGS: Dict[str, Callable] = {
    "ember.gemm": lower_gemm,
    "ember.conv2d": lower_conv2d,
    "ember.pool2d": lower_pool2d,
    "ember.attention": lower_attention,
    "ember.rms_norm": lower_rms_norm,
    "ember.rotary_embedding": lower_rotary_embedding,
    "ember.slice": lower_slice,
    "ember.reduce": lower_reduce,
    "ember.concat": lower_concat,
    "ember.layer_norm": lower_layer_norm,
    "ember.softmax": lower_softmax,
    "ember.unary": lower_unary,
    "ember.binary": lower_binary,
    "ember.transpose": lower_transpose,
    "ember.reshape": lower_reshape,
}


def _pattern(lowering: Callable):
    def rewrite(op, rewriter) -> bool:
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [lowering(op)])
        return APPLIED
    return rewrite


@register
@dataclass
class LowerToLinalg(EmberPass):
    """Lowers ember ops (all but ember.weight) to linalg, tensor, arith and math on tensors."""
    name = "ember-lower-to-linalg"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {name: [_pattern(fn)] for name, fn in LOWERINGS.items()},
                       erase_dead=False)
