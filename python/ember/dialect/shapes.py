"""Shape arithmetic shared by the op verifiers and the passes: dims as lists with None for `?`.

Works on values and types of either MLIR build (see builds.py).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from ember.dialect.builds import ir_of

Shape = List[Optional[int]]


def shape_of(value) -> Optional[Shape]:
    """The dims of a ranked tensor value (None for `?`), or None when unranked."""
    return type_shape(value.type)


def type_shape(t) -> Optional[Shape]:
    """The dims of a ranked tensor type (None for `?`), or None when it is not one."""
    ir = ir_of(t)
    if not isinstance(t, ir.RankedTensorType):
        return None
    rt = ir.RankedTensorType(t)
    return [None if rt.is_dynamic_dim(i) else rt.shape[i] for i in range(rt.rank)]


def element_type(value):
    return ir_of(value.type).ShapedType(value.type).element_type


def dims_compatible(a: Optional[int], b: Optional[int]) -> bool:
    return a is None or b is None or a == b


def shapes_compatible(a: Sequence[Optional[int]], b: Sequence[Optional[int]]) -> bool:
    return len(a) == len(b) and all(dims_compatible(x, y) for x, y in zip(a, b))


def broadcast_shape(a: Sequence[Optional[int]], b: Sequence[Optional[int]]) -> Optional[Shape]:
    """numpy broadcasting of two dim lists (None = dynamic); None when incompatible."""
    out = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        else:
            return None
    return out[::-1]


def last_two_swapped(rank: int) -> List[int]:
    """The permutation of `rank` dims that swaps the last two (a batched matrix transpose)."""
    return list(range(rank - 2)) + [rank - 1, rank - 2]


def heads_seq_swapped(rank: int) -> List[int]:
    """The permutation of `rank` dims that swaps dims -3 and -2 ([.., S, H, D] <-> [.., H, S,
    D]: a projection's output split into heads, and attention's output merged back)."""
    return list(range(rank - 3)) + [rank - 2, rank - 3, rank - 1]


def heads_major(shape: Optional[Sequence], layout: str) -> Optional[list]:
    """An ember.attention operand's shape as [..., H, S, D] (layout "bhsd" as it is; "bshd"
    with dims -3 and -2 swapped): the shape its verifier and cost model reason about."""
    if shape is None or layout == "bhsd" or len(shape) < 3:
        return None if shape is None else list(shape)
    return [shape[d] for d in heads_seq_swapped(len(shape))]


def format_shape(shape: Sequence[Optional[int]]) -> str:
    """`4x?x8` (as MLIR writes tensor shapes), `scalar` for no dims: for verifier messages."""
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def conv2d_output_size(size, kernel, stride, pad, dilation):
    """One spatial output size of a convolution or pooling window (None stays dynamic)."""
    if size is None:
        return None
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def patch_matrix_shape(padded, geometry) -> Shape:
    """The patch matrix [N, OH, OW, KH*KW*C] that a padded NHWC input [N, Hp, Wp, C] stands for
    under `geometry` (KH, KW, SH, SW, DH, DW); None entries stay dynamic."""
    n, hp, wp, c = padded
    kh, kw, sh, sw, dh, dw = geometry
    return [n, conv2d_output_size(hp, kh, sh, 0, dh), conv2d_output_size(wp, kw, sw, 0, dw),
            None if c is None else kh * kw * c]
