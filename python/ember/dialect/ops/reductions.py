"""The ops that reduce along dims: `ember.reduce`, `ember.softmax`, `ember.layer_norm` and
`ember.rms_norm`."""
from __future__ import annotations

from typing import Optional

from ember.dialect.attributes import I64, Bool, F32, I64Array, OneOf
from ember.dialect.definition import EmberOp, Operand
from ember.dialect.enums import REDUCE_KINDS
from ember.dialect.shapes import format_shape, shape_of, shapes_compatible

_NORMALIZED_NDIM_DOC = ">= 1: how many trailing dims are normalized"


def _normalized_dims_error(x, n: int, **operands) -> Optional[str]:
    """The broken rule of a norm over x's trailing `n` dims whose `operands` (weight, bias;
    None when absent) have the normalized dims' shape, or None."""
    if x is None or not 1 <= n <= len(x):
        return f"normalized_ndim must be in [1, rank], got {n}"
    for name, value in operands.items():
        if value is not None and not shapes_compatible(shape_of(value) or [], x[-n:]):
            return f"{name} shape {format_shape(shape_of(value) or [])} must equal the " \
                   f"normalized dims {format_shape(x[-n:])}"
    return None


class Reduce(EmberOp):
    """Reduction over `axes` (sorted, distinct). With keepdim the reduced dims stay as size 1."""
    op_name = "ember.reduce"

    input = Operand()
    kind = OneOf(REDUCE_KINDS, what="reduction kind")
    axes = I64Array(doc="sorted, distinct, in [0, rank)")
    keepdim = Bool()

    def verify(self) -> Optional[str]:
        x, res = shape_of(self.input), shape_of(self.result)
        axes = self.axes
        if x is None or res is None:
            return "input and result must be ranked tensors"
        if not axes or axes != sorted(set(axes)) or axes[0] < 0 or axes[-1] >= len(x):
            return f"axes {axes} must be sorted, distinct and in [0, {len(x)})"
        expected = [1 if d in axes else n for d, n in enumerate(x)] if self.keepdim else \
            [n for d, n in enumerate(x) if d not in axes]
        if not shapes_compatible(res, expected):
            return f"result shape {format_shape(res)} must be {format_shape(expected)}"
        return None


class Softmax(EmberOp):
    """Softmax along one axis, numerically stable (subtracts the running max)."""
    op_name = "ember.softmax"
    result_like_input = True

    input = Operand()
    axis = I64(doc="in [0, rank)")

    def verify(self) -> Optional[str]:
        x = shape_of(self.input)
        if x is None or not 0 <= self.axis < len(x):
            return f"axis {self.axis} out of range for rank {len(x or [])}"
        if not shapes_compatible(x, shape_of(self.result) or []):
            return "result must have the input's shape"
        return None


class LayerNorm(EmberOp):
    """Layer normalization over the trailing `normalized_ndim` dims, computed in the input's
    precision (f32 stays f32): `(x - mean) / sqrt(var + epsilon) * weight + bias`. weight and
    bias, when present, have the normalized dims' shape."""
    op_name = "ember.layer_norm"
    result_like_input = True

    input = Operand()
    weight = Operand(optional=True)
    bias = Operand(optional=True)
    epsilon = F32(default=1e-5)
    normalized_ndim = I64(default=1, doc=_NORMALIZED_NDIM_DOC)

    def verify(self) -> Optional[str]:
        x = shape_of(self.input)
        error = _normalized_dims_error(x, self.normalized_ndim, weight=self.weight,
                                       bias=self.bias)
        if error:
            return error
        if not shapes_compatible(x, shape_of(self.result) or []):
            return "result must have the input's shape"
        return None


class RmsNorm(EmberOp):
    """RMS normalization over the trailing `normalized_ndim` dims:
    `x / sqrt(mean(x^2) + epsilon) * weight`. weight, when present, has the normalized dims'
    shape."""
    op_name = "ember.rms_norm"
    result_like_input = True

    input = Operand()
    weight = Operand(optional=True)
    epsilon = F32()
    normalized_ndim = I64(default=1, doc=_NORMALIZED_NDIM_DOC)

    def verify(self) -> Optional[str]:
        x = shape_of(self.input)
        error = _normalized_dims_error(x, self.normalized_ndim, weight=self.weight)
        if error:
            return error
        if not shapes_compatible(x, shape_of(self.result) or []):
            return "result must have the input's shape"
        return None
