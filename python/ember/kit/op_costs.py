"""What an ember op costs, from its types: the arithmetic it does and the bytes it must move.

A profile (ember.runtime.profile) divides these by the time a kernel took to give its achieved
GFLOP/s and GB/s. FLOPs are counted for the contractions only (a multiply and an add are two),
where they are the measure of the work; for every other op the bytes are (elementwise ops,
norms, softmax and data movement are bound by memory). Bytes are the op's operands and results
once each: what any implementation must read and write at least, weights included. Both are
None when a shape is dynamic (`?`): a graph-stage type does not say how large it will be.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from mlir import ir

from ember.dialect.ops import Attention
from ember.dialect.shapes import heads_major, shape_of


def op_cost(op) -> Tuple[Optional[int], Optional[int]]:
    """(FLOPs, bytes) of one run of a graph-stage ember op."""
    values = list(op.operands) + list(op.results)
    sizes = [_tensor_bytes(v.type) for v in values]
    moved = None if any(s is None for s in sizes) else sum(sizes)
    return _flops(op), moved


def _flops(op) -> Optional[int]:
    name = op.operation.name
    operands = list(op.operands)
    result = shape_of(op.results[0]) if len(op.results) else None
    shapes = [shape_of(v) for v in operands[:3]]
    if result is None or None in result or any(s is None or None in s for s in shapes):
        return None
    if name in ("ember.gemm", "ember.qgemm"):
        k = shapes[0][-1]
        if "lhs_patches" in op.attributes:      # a conv's patches: KH * KW taps of C each
            kh, kw = list(ir.DenseI64ArrayAttr(op.attributes["lhs_patches"]))[:2]
            k *= kh * kw
        return 2 * math.prod(result) * k
    if name == "ember.conv2d":
        layout = str(op.attributes["layout"]).strip('"') if "layout" in op.attributes \
            else "nchw"
        filters = shapes[1][0] if layout == "nchw" else shapes[1][-1]
        return 2 * math.prod(result) * math.prod(shapes[1]) // filters
    if name == "ember.qdepthwise_conv2d":
        return 2 * math.prod(result) * math.prod(shapes[1]) // max(result[-1], 1)
    if name == "ember.attention":
        layout = Attention(op).layout_name
        query, key, value = (heads_major(s, layout) for s in shapes[:3])
        return 2 * math.prod(query[:-1]) * key[-2] * (query[-1] + value[-1])
    return None


def _tensor_bytes(t) -> Optional[int]:
    if not isinstance(t, ir.RankedTensorType):
        return 0
    rt = ir.RankedTensorType(t)
    if not rt.has_static_shape:
        return None
    element = rt.element_type
    bits = element.width if hasattr(element, "width") else 32
    return (math.prod(rt.shape) * bits + 7) // 8
