"""Ops that only move data: `ember.transpose`, `ember.broadcast`, `ember.reshape`, `ember.slice`,
`ember.concat` (any element type, the same in and out) and `ember.embedding` (rows picked by
indices, of a float table or of an int8 one with its row scales)."""
from __future__ import annotations

import math
from typing import Optional

from ember.dialect.attributes import I64, I64Array
from ember.dialect.definition import ElementTypes, EmberOp, Operand
from ember.dialect.shapes import dims_compatible, format_shape, shape_of, shapes_compatible


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


class Broadcast(EmberOp):
    """Repeats size-1 dims (torch's expand / broadcast_to at equal rank): result dim i is input
    dim i, or any static size where the input's dim is 1. Consumers that can index the input
    instead (ember-fold-grouped-heads) never materialize the copy."""
    op_name = "ember.broadcast"
    element_types = ElementTypes.SAME

    input = Operand()

    def verify(self) -> Optional[str]:
        x, res = shape_of(self.input), shape_of(self.result)
        if x is None or res is None:
            return None
        if len(x) != len(res):
            return f"result rank {len(res)} must be the input's {len(x)}"
        for i, (a, b) in enumerate(zip(x, res)):
            if a == 1 and b is None:
                return f"dim {i}: a repeated dim's size must be static"
            if a != 1 and not dims_compatible(a, b):
                return f"dim {i}: only a size-1 dim can be repeated ({a} -> {b})"
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


class Embedding(EmberOp):
    """Rows of a table picked by integer indices, torch.nn.Embedding's forward:
    `result[i..., :] = table[indices[i...], :]`, result shape = indices' shape + [D] for a
    table [V, D]. With `scales` (f32 [V]) the table holds int8 codes with one symmetric scale
    per row (ember-quantize's int8 tables): `result = f32(table[idx]) * scales[idx]`. An index
    outside [0, V) is reported at run time (ember-runtime-checks), as PyTorch's IndexError."""
    op_name = "ember.embedding"
    element_types = ElementTypes.ANY

    table = Operand()
    indices = Operand()
    scales = Operand(optional=True)

    def verify(self) -> Optional[str]:
        table, idx, res = shape_of(self.table), shape_of(self.indices), shape_of(self.result)
        if table is None or len(table) != 2:
            return "table must be a rank-2 tensor [V, D]"
        index_type = str(self.indices.type.element_type)
        if index_type not in ("i32", "i64"):
            return f"indices must be i32 or i64, got {index_type}"
        if res is None or not shapes_compatible(res, list(idx) + [table[1]]):
            return f"result shape {format_shape(res or [])} must be the indices' shape " \
                   f"followed by D: {format_shape(list(idx) + [table[1]])}"
        element, out = str(self.table.type.element_type), str(self.result.type.element_type)
        if self.scales is None:
            if element != out:
                return f"result must have the table's element type {element}, got {out}"
            return None
        if element != "i8" or out != "f32":
            return f"an int8 table (with scales) is i8 and its rows f32, got {element} -> {out}"
        if str(self.scales.type.element_type) != "f32" or \
                not shapes_compatible(shape_of(self.scales) or [], [table[0]]):
            return f"scales must be f32 [{table[0]}] (one per row)"
        return None
