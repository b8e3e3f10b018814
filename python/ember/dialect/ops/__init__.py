"""The ember dialect's op table: every op declared once, as an `EmberOp` subclass.

`OPS` is the dialect, in reference order; everything else about an op (its IRDL, builder,
typed view, verifier registration, reference entry and the check against the lowering table)
is derived from its class. To add an op, declare it in the module of its family, list it here,
and give it a lowering in lowering/lower_to_linalg.py's LOWERINGS or a `not_lowered` reason
(tests/test_dialect.py checks both ways).
"""
from __future__ import annotations

from typing import Dict, Tuple, Type

from ember.dialect.definition import EmberOp
from ember.dialect.ops.constants import Weight
from ember.dialect.ops.contractions import Attention, Gemm, QGemm
from ember.dialect.ops.convolutions import Conv2d, Pool2d, QDepthwiseConv2d
from ember.dialect.ops.data_movement import Broadcast, Concat, Embedding, Reshape, Slice, \
    Transpose
from ember.dialect.ops.elementwise import Binary, RotaryEmbedding, Unary
from ember.dialect.ops.quantization import Dequantize, Quantize
from ember.dialect.ops.reductions import LayerNorm, Reduce, RmsNorm, Softmax

OPS: Tuple[Type[EmberOp], ...] = (
    Weight, Gemm, LayerNorm, Softmax, Unary, Binary, Transpose, Reshape, Conv2d, Pool2d,
    Attention, RmsNorm, RotaryEmbedding, Slice, Reduce, Concat, QGemm, Quantize, Dequantize,
    Embedding, QDepthwiseConv2d, Broadcast)
#: Every ember op's name ("ember.gemm", ...).
OP_NAMES: Tuple[str, ...] = tuple(op.op_name for op in OPS)
OPS_BY_NAME: Dict[str, Type[EmberOp]] = {op.op_name: op for op in OPS}


def view(op) -> EmberOp:
    """The typed view of any ember op (`Gemm`, `Conv2d`, ...), for code that handles several."""
    return OPS_BY_NAME[op.name](op)


__all__ = ["OPS", "OP_NAMES", "OPS_BY_NAME", "view", *(op.__name__ for op in OPS)]
