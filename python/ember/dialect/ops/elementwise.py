"""Elementwise ops: `ember.unary`, `ember.binary` and `ember.rotary_embedding`."""
from __future__ import annotations

from typing import Optional

from ember.dialect.attributes import OneOf
from ember.dialect.definition import EmberOp, Operand
from ember.dialect.enums import BINARY_KINDS, UNARY_KINDS
from ember.dialect.shapes import broadcast_shape, format_shape, shape_of, shapes_compatible


class Unary(EmberOp):
    """Elementwise unary function; the result has the input's type."""
    op_name = "ember.unary"
    result_like_input = True

    input = Operand()
    kind = OneOf(UNARY_KINDS, what="unary kind")

    def verify(self) -> Optional[str]:
        if not shapes_compatible(shape_of(self.input) or [], shape_of(self.result) or []):
            return "result must have the input's shape"
        return None


class Binary(EmberOp):
    """Elementwise binary function with numpy broadcasting (trailing dims aligned; a dim of 1
    stretches). The result's shape is the broadcast shape."""
    op_name = "ember.binary"

    lhs = Operand()
    rhs = Operand()
    kind = OneOf(BINARY_KINDS, what="binary kind")

    def verify(self) -> Optional[str]:
        lhs, rhs, res = shape_of(self.lhs), shape_of(self.rhs), shape_of(self.result)
        expected = broadcast_shape(lhs, rhs)
        if expected is None:
            return f"operand shapes {format_shape(lhs)} and {format_shape(rhs)} do not broadcast"
        if not shapes_compatible(res, expected):
            return f"result shape {format_shape(res)} must be the broadcast shape " \
                   f"{format_shape(expected)}"
        return None


class RotaryEmbedding(EmberOp):
    """Rotary position embedding (RoPE), "rotate half" form: with the input's last dim D split
    into halves x1, x2: `result = x * cos + concat(-x2, x1) * sin`. cos and sin broadcast to
    the input."""
    op_name = "ember.rotary_embedding"
    result_like_input = True

    input = Operand()
    cos = Operand()
    sin = Operand()

    def verify(self) -> Optional[str]:
        x = shape_of(self.input)
        if x is None or not x or (x[-1] is not None and x[-1] % 2):
            return "input's last dim must be even (it is rotated in halves)"
        for name, value in (("cos", self.cos), ("sin", self.sin)):
            shape = shape_of(value) or []
            b = broadcast_shape(shape, x)
            if b is None or not shapes_compatible(b, x):
                return f"{name} shape {format_shape(shape)} does not broadcast to the input " \
                       f"{format_shape(x)}"
        if not shapes_compatible(x, shape_of(self.result) or []):
            return "result must have the input's shape"
        return None
