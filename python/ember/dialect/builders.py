"""The function-style builder API that lowering/ and backends/ still call.

Builders are derived from the op table (`Gemm.build(...)`, see dialect/definition.py) and
operands and attributes are read through typed views (`Gemm(op).bias`); these five names keep
the older calls in lowering/ and backends/ working until those folders move to the views, after
which this module goes.
"""
from __future__ import annotations

from typing import Dict, Optional

from ember.dialect.ops import Conv2d, Gemm, Pool2d, Weight, view

#: `gemm(lhs, rhs, result_type, *, bias=None, residual=None, activation="none",
#: rhs_panel=None, lhs_patches=None)`.
gemm = Gemm.build


def weight(ir, name: str, tensor_type):
    """`ember.weight {name}`. `ir` (the caller's MLIR build) is unused: `tensor_type` implies it."""
    return Weight.build(tensor_type, name=name)


def optional_operand(op, name: str) -> Optional[object]:
    """The value of optional operand `name` of an ember op, or None."""
    return view(op).operand_values()[name]


def conv2d_attributes(op) -> Dict[str, object]:
    """The attributes of an ember.conv2d as Python values."""
    return Conv2d(op).attribute_values()


def pool2d_attributes(op) -> Dict[str, object]:
    """The attributes of an ember.pool2d as Python values."""
    return Pool2d(op).attribute_values()
