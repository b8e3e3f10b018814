"""The function-style builder API, kept while callers move to the derived builders.

Builders are derived from the op table (`Gemm.build(...)`, see dialect/definition.py) and
operands and attributes are read through typed views (`Gemm(op).bias`); these names keep the
older calls working until their callers move to the views.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from ember.dialect.ops import (Attention, Binary, Concat, Conv2d, Gemm, LayerNorm, Pool2d, Reduce,
                               Reshape, RmsNorm, RotaryEmbedding, Slice, Softmax, Transpose,
                               Unary, Weight, view)

gemm = Gemm.build
layer_norm = LayerNorm.build
softmax = Softmax.build
reshape = Reshape.build
conv2d = Conv2d.build
attention = Attention.build
rms_norm = RmsNorm.build
rotary_embedding = RotaryEmbedding.build
slice_ = Slice.build
concat = Concat.build


def weight(ir, name: str, tensor_type):
    """`ember.weight {name}`. `ir` (the caller's MLIR build) is unused: `tensor_type` implies it."""
    return Weight.build(tensor_type, name=name)


def unary(kind: str, x, result_type=None):
    return Unary.build(x, result_type, kind=kind)


def binary(kind: str, lhs, rhs, result_type):
    return Binary.build(lhs, rhs, result_type, kind=kind)


def transpose(x, permutation: Sequence[int], result_type):
    return Transpose.build(x, result_type, permutation=permutation)


def pool2d(kind: str, x, result_type, **settings):
    return Pool2d.build(x, result_type, kind=kind, **settings)


def reduce(kind: str, x, result_type, *, axes: Sequence[int], keepdim: bool):
    return Reduce.build(x, result_type, kind=kind, axes=sorted(axes), keepdim=keepdim)


def rebuild(op, result_type, **changes):
    """A copy of an ember.gemm or ember.conv2d with some operands/settings replaced."""
    target = view(op)
    if "rhs" in changes and isinstance(target, Conv2d):
        changes["filter"] = changes.pop("rhs")
    return target.rebuild(result_type, **changes)


def optional_operand(op, name: str) -> Optional[object]:
    """The value of optional operand `name` of an ember op, or None."""
    return view(op).operand_values()[name]


def conv2d_attributes(op) -> Dict[str, object]:
    """The attributes of an ember.conv2d as Python values."""
    return Conv2d(op).attribute_values()


def pool2d_attributes(op) -> Dict[str, object]:
    """The attributes of an ember.pool2d but its kind, as Python values."""
    settings = Pool2d(op).attribute_values()
    del settings["kind"]
    return settings
