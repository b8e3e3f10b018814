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

from ember.dialect.ops import Attention, Binary, Broadcast, Concat, Conv2d, Dequantize, \
    Embedding, Gemm, LayerNorm, Pool2d, QDepthwiseConv2d, QGemm, Quantize, Reduce, Reshape, \
    RmsNorm, RotaryEmbedding, Slice, Softmax, Transpose, Unary, view
from ember.kit.rewrite import APPLIED, apply_patterns
from ember.lowering.attention_to_linalg import lower_attention
from ember.lowering.conv_pool_to_linalg import lower_conv2d, lower_pool2d
from ember.lowering.elementwise_to_linalg import lower_binary, lower_rotary_embedding, \
    lower_unary
from ember.lowering.gemm_to_linalg import lower_gemm
from ember.lowering.qdepthwise_to_linalg import lower_qdepthwise_conv2d
from ember.lowering.qgemm_to_linalg import lower_qgemm
from ember.lowering.quantize_to_linalg import drop_unsigned_types, lower_dequantize, \
    lower_quantize
from ember.lowering.reductions_to_linalg import lower_layer_norm, lower_reduce, lower_rms_norm, \
    lower_softmax
from ember.lowering.shape_ops_to_linalg import lower_broadcast, lower_concat, lower_embedding, \
    lower_reshape, lower_slice, lower_transpose
from ember.pipeline.pass_base import EmberPass, PassContext, register

#: ember op -> lowering (takes the op's typed view, returns the replacement value).
LOWERINGS: Dict[str, Callable] = {
    Gemm.op_name: lower_gemm,
    QGemm.op_name: lower_qgemm,
    QDepthwiseConv2d.op_name: lower_qdepthwise_conv2d,
    Quantize.op_name: lower_quantize,
    Dequantize.op_name: lower_dequantize,
    Conv2d.op_name: lower_conv2d,
    Pool2d.op_name: lower_pool2d,
    Attention.op_name: lower_attention,
    RmsNorm.op_name: lower_rms_norm,
    RotaryEmbedding.op_name: lower_rotary_embedding,
    Slice.op_name: lower_slice,
    Reduce.op_name: lower_reduce,
    Concat.op_name: lower_concat,
    LayerNorm.op_name: lower_layer_norm,
    Softmax.op_name: lower_softmax,
    Unary.op_name: lower_unary,
    Binary.op_name: lower_binary,
    Transpose.op_name: lower_transpose,
    Broadcast.op_name: lower_broadcast,
    Reshape.op_name: lower_reshape,
    Embedding.op_name: lower_embedding,
}


def _pattern(lowering: Callable):
    def rewrite(op, rewriter) -> bool:
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [lowering(view(op))])
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
        drop_unsigned_types(module)
