"""The ops that move data without arithmetic -> linalg.transpose and tensor ops.

ember.transpose, ember.reshape (an expand_shape of a slice, so that it stays a strided view,
else tensor.reshape), ember.slice (tensor.extract_slice) and ember.concat (insert_slices into
one tensor.empty).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ember.dialect.ops import Concat, Reshape, Slice, Transpose
from ember.kit.builders import i64
from ember.kit.structured import empty_like, tensor_dim, tensor_shape


def lower_transpose(op: Transpose):
    x, perm = op.input, op.permutation
    init = empty_like(op.result.type, [(x, p) for p in perm])
    return linalg.transpose(x, outs=[init], permutation=perm).results[0]


def _expansion_groups(src: Sequence[int], dst: Sequence[int]) -> Optional[List[List[int]]]:
    """The reassociation of `dst` splitting each dim of `src` (static shapes), or None."""
    groups, j = [], 0
    for size in src:
        group, prod = [], 1
        while j < len(dst) and (prod < size or not group):
            group.append(j)
            prod *= dst[j]
            j += 1
        if not group or prod != size:
            return None
        groups.append(group)
    if j != len(dst) or not groups:
        return None
    return groups


def lower_reshape(op: Reshape):
    out = ir.RankedTensorType(op.result.type)
    if not out.has_static_shape:
        raise NotImplementedError("ember.reshape to a dynamic shape")
    x = op.input
    src = ir.RankedTensorType(x.type)
    owner = x.owner.operation if isinstance(x.owner, ir.OpView) else x.owner
    if src.has_static_shape and isinstance(owner, ir.Operation) and \
            owner.name in ("tensor.extract_slice", "ember.slice"):
        # A slice (e.g. Q/K/V of a merged projection) is a strided view: splitting its dims
        # keeps it one (expand_shape), where tensor.reshape would copy it into a new buffer.
        groups = _expansion_groups(list(src.shape), list(out.shape))
        if groups is not None:
            rows = ir.ArrayAttr.get([ir.ArrayAttr.get([i64(d) for d in g]) for g in groups])
            return tensor.expand_shape(out, x, rows, [],
                                       ir.DenseI64ArrayAttr.get(list(out.shape)))
    shape_type = ir.RankedTensorType.get([out.rank], ir.IndexType.get())
    shape = arith.constant(shape_type, ir.DenseElementsAttr.get(
        np.array(out.shape, dtype=np.int64), type=shape_type))
    return tensor.reshape(out, x, shape)


def lower_slice(op: Slice):
    x, axis, start, size = op.input, op.axis, op.start, op.size
    shape = tensor_shape(x)
    rank = len(shape)
    dynamic = [tensor_dim(x, d) for d in range(rank) if d != axis and shape[d] is None]
    sizes = [size if d == axis else (ir.ShapedType.get_dynamic_size() if shape[d] is None
                                     else shape[d]) for d in range(rank)]
    offsets = [start if d == axis else 0 for d in range(rank)]
    return tensor.ExtractSliceOp(op.result.type, x, [], dynamic, [], offsets, sizes,
                                 [1] * rank).result


def lower_concat(op: Concat):
    """tensor.empty of the result, then one insert_slice per input at its running offset."""
    axis = op.axis
    values = [op.lhs, op.rhs]
    out_type = ir.RankedTensorType(op.result.type)
    rank = out_type.rank
    first = values[0]
    dim_sources = [(first, d) if d != axis else None for d in range(rank)]
    if out_type.is_dynamic_dim(axis):
        raise NotImplementedError("ember.concat with a dynamic result size along its axis")
    result = empty_like(out_type, dim_sources)
    offset = 0
    for v in values:
        shape = tensor_shape(v)
        dynamic = [tensor_dim(v, d) for d in range(rank) if shape[d] is None]
        sizes = [ir.ShapedType.get_dynamic_size() if n is None else n for n in shape]
        offsets = [offset if d == axis else 0 for d in range(rank)]
        result = tensor.InsertSliceOp(v, result, [], dynamic, [], offsets, sizes,
                                      [1] * rank).result
        offset += shape[axis]
    return result
