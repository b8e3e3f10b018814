"""Ops that only move data: `ember.transpose`, `ember.reshape`, `ember.slice` and
`ember.concat`. Any element type, the same in and out."""
from __future__ import annotations

import math
from typing import Optional

from ember.dialect.attributes import I64, I64Array
from ember.dialect.definition import ElementTypes, EmberOp, Operand
from ember.dialect.shapes import format_shape, shape_of, shapes_compatible


class Transpose(EmberOp):
    """Permutes dims: result dim i is input dim permutation[i]."""
    op_name = "ember.transpose"
    element_types = ElementTypes.SAME

    input = Operand()
    permutation = I64Array(doc="a permutation of [0, rank)")

    def verify(self) -> Optional[str]:
        x, res = shape_of(self.input), shape_of(self.result)
        perm = self.permutation
        if sorted(perm) != list(range(len(x))):
            return f"permutation {perm} is not a permutation of [0, {len(x)})"
        permuted = [x[p] for p in perm]
        if not shapes_compatible(res, permuted):
            return f"result shape {format_shape(res)} must be the permuted input shape " \
                   f"{format_shape(permuted)}"
        return None


class Reshape(EmberOp):
    """Reinterprets a tensor's elements (row-major) with the result's static shape; element
    counts must match."""
    op_name = "ember.reshape"
    element_types = ElementTypes.SAME

    input = Operand()

    def verify(self) -> Optional[str]:
        x, res = shape_of(self.input), shape_of(self.result)
        if None in x or None in res:
            return None
        if math.prod(x) != math.prod(res):
            return f"element counts differ: {format_shape(x)} has {math.prod(x)}, " \
                   f"{format_shape(res)} has {math.prod(res)}"
        return None


class Slice(EmberOp):
    """A contiguous slice along one axis: `result = input[..., start:start+size, ...]` (every
    other dim whole). How merged GEMMs hand each consumer its part of the result."""
    op_name = "ember.slice"
    element_types = ElementTypes.SAME

    input = Operand()
    axis = I64()
    start = I64()
    size = I64()

    def verify(self) -> Optional[str]:
        x, res = shape_of(self.input), shape_of(self.result)
        axis, start, size = self.axis, self.start, self.size
        if x is None or res is None or not 0 <= axis < len(x):
            return f"axis {axis} out of range for rank {len(x or [])}"
        if start < 0 or size < 0 or (x[axis] is not None and start + size > x[axis]):
            return f"slice [{start}, {start + size}) is outside dim {axis} of size {x[axis]}"
        expected = list(x)
        expected[axis] = size
        if not shapes_compatible(res, expected):
            return f"result shape {format_shape(res)} must be {format_shape(expected)}"
        return None


class Concat(EmberOp):
    """Concatenation of two tensors along `axis`; every other dim equal. (Two operands, not a
    variadic list: an IRDL variadic operand binds one type for all its values, and the inputs'
    sizes along `axis` differ. Wider concatenations stay with the fallback.)"""
    op_name = "ember.concat"
    element_types = ElementTypes.SAME

    lhs = Operand()
    rhs = Operand()
    axis = I64()

    def verify(self) -> Optional[str]:
        shapes = [shape_of(self.lhs), shape_of(self.rhs)]
        res = shape_of(self.result)
        axis = self.axis
        if res is None or any(s is None or len(s) != len(res) for s in shapes):
            return "inputs and result must be ranked tensors of one rank"
        if not 0 <= axis < len(res):
            return f"axis {axis} out of range for rank {len(res)}"
        for s in shapes:
            if not shapes_compatible([d for i, d in enumerate(s) if i != axis],
                                     [d for i, d in enumerate(res) if i != axis]):
                return f"input shape {format_shape(s)} differs from the result " \
                       f"{format_shape(res)} off axis {axis}"
        sizes = [s[axis] for s in shapes]
        if None not in sizes and res[axis] is not None and sum(sizes) != res[axis]:
            return f"inputs add up to {sum(sizes)} along axis {axis}, result has {res[axis]}"
        return None
