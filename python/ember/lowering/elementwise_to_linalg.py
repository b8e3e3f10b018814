"""ember.unary, ember.binary and ember.rotary_embedding -> broadcasting elementwise linalg ops."""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, tensor

from ember.dialect.ops import Binary, RotaryEmbedding, Unary
from ember.kit.scalar_math import BINARY, UNARY
from ember.kit.structured import element_type, elementwise, empty_like, tensor_dim, tensor_shape


def lower_rotary_embedding(op: RotaryEmbedding):
    """x * cos + rotate_half(x) * sin, rotate_half(x) = concat(-x2, x1) built with slices."""
    x, cos, sin = op.input, op.cos, op.sin
    shape = tensor_shape(x)
    rank = len(shape)
    half = shape[-1] // 2
    sizes = [ir.ShapedType.get_dynamic_size() if d is None else d for d in shape[:-1]]
    half_type = ir.RankedTensorType.get(sizes + [half], element_type(x))
    dyn = [tensor_dim(x, d) for d in range(rank - 1) if shape[d] is None]
    static_sizes = sizes + [half]

    def piece(offset):
        return tensor.ExtractSliceOp(half_type, x, [], dyn, [], [0] * (rank - 1) + [offset],
                                     static_sizes, [1] * rank).result
    x1, x2 = piece(0), piece(half)
    neg_x2 = elementwise([x2], half_type, arith.negf)
    rotated = empty_like(x.type, [(x, d) for d in range(rank)])
    for value, offset in ((neg_x2, 0), (x1, half)):
        rotated = tensor.InsertSliceOp(value, rotated, [], dyn, [], [0] * (rank - 1) + [offset],
                                       static_sizes, [1] * rank).result
    return elementwise([x, cos, rotated, sin], op.result.type,
                       lambda a, c, r, s: arith.addf(arith.mulf(a, c), arith.mulf(r, s)))


def lower_unary(op: Unary):
    return elementwise([op.input], op.result.type, UNARY[op.kind])


def lower_binary(op: Binary):
    return elementwise([op.lhs, op.rhs], op.result.type, BINARY[op.kind])
