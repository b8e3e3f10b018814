"""The ops that move data without arithmetic -> linalg.transpose and tensor ops.

ember.transpose, ember.reshape (an expand_shape of a slice, so that it stays a strided view,
else tensor.reshape), ember.slice (tensor.extract_slice), ember.concat (insert_slices into
one tensor.empty) and ember.embedding (a linalg.generic gathering table rows with
tensor.extract, dequantizing an int8 table's rows as it reads them).
"""
from __future__ import annotations

import functools
from typing import List, Optional, Sequence, Union

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ember.dialect.ops import Broadcast, Concat, Embedding, Reshape, Slice, Transpose
from ember.kit.builders import i64
from ember.kit.structured import PARALLEL, broadcast_map, empty_like, generic, identity_map, \
    tensor_dim, tensor_shape


def lower_transpose(op: Transpose):
    x, perm = op.input, op.permutation
    init = empty_like(op.result.type, [(x, p) for p in perm])
    return linalg.transpose(x, outs=[init], permutation=perm).results[0]


def lower_broadcast(op: Broadcast):
    """A copy whose input map reads index 0 along each repeated dim."""
    x, out = op.input, ir.RankedTensorType(op.result.type)
    rank = out.rank
    init = empty_like(out, [(x, d) for d in range(rank)])
    return generic([x], init, [broadcast_map(x, rank, out.shape), identity_map(rank)],
                   [PARALLEL] * rank, lambda v, _: v)


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
    # The result type may leave a size dynamic that the slice knows (torch-mlir's roll types
    # its slices `?`): extract_slice's type must state it, a cast gives the declared one.
    element = ir.RankedTensorType(op.result.type).element_type
    sliced_type = ir.RankedTensorType.get(sizes, element)
    if 0 in sizes:  # an empty result (a batch of 0): extract_slice's verifier refuses offset 0
        runtime = iter(dynamic)
        sliced = tensor.empty([next(runtime) if n == ir.ShapedType.get_dynamic_size() else n
                               for n in sizes], element)
    else:
        sliced = tensor.ExtractSliceOp(sliced_type, x, [], dynamic, [], offsets, sizes,
                                       [1] * rank).result
    return sliced if sliced.type == op.result.type else tensor.cast(op.result.type, sliced)


def _size(value, dim: int) -> Union[int, ir.Value]:
    """Dim `dim` of a tensor value: an int when static, else its run-time size."""
    n = tensor_shape(value)[dim]
    return n if n is not None else tensor_dim(value, dim)


def _index_sum(a: Union[int, ir.Value], b: Union[int, ir.Value]) -> Union[int, ir.Value]:
    """a + b, folded when both are ints."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    as_value = [arith.constant(ir.IndexType.get(), x) if isinstance(x, int) else x
                for x in (a, b)]
    return arith.addi(*as_value)


def lower_concat(op: Concat):
    """tensor.empty of the result, then one insert_slice per input at its running offset (a
    run-time value once an input's size along the axis is dynamic)."""
    axis = op.axis
    values = [op.lhs, op.rhs]
    out_type = ir.RankedTensorType(op.result.type)
    rank = out_type.rank
    extents = [_size(v, axis) for v in values]
    total = functools.reduce(_index_sum, extents)
    sizes = [out_type.shape[d] if not out_type.is_dynamic_dim(d) else
             total if d == axis else tensor_dim(values[0], d) for d in range(rank)]
    result = tensor.empty(sizes, out_type.element_type)
    offset: Union[int, ir.Value] = 0
    dynamic_index = ir.ShapedType.get_dynamic_size()
    for v, extent in zip(values, extents):
        sizes = [extent if d == axis else _size(v, d) for d in range(rank)]
        offsets = [offset if d == axis else 0 for d in range(rank)]
        result = tensor.InsertSliceOp(
            v, result, [o for o in offsets if not isinstance(o, int)],
            [n for n in sizes if not isinstance(n, int)], [],
            [o if isinstance(o, int) else dynamic_index for o in offsets],
            [n if isinstance(n, int) else dynamic_index for n in sizes], [1] * rank).result
        offset = _index_sum(offset, extent)
    return result


def lower_embedding(op: Embedding):
    """result[i..., d] = table[indices[i...], d] (times scales[indices[i...]] for an int8
    table): one generic over the result, the row read with tensor.extract (whose index
    ember-runtime-checks guards once bufferized)."""
    table, indices, scales = op.table, op.indices, op.scales
    rank = len(tensor_shape(indices)) + 1
    init = empty_like(op.result.type, [(indices, d) for d in range(rank - 1)] + [(table, 1)])

    def body(i, _):
        row = arith.index_cast(ir.IndexType.get(), i)
        value = tensor.extract(table, [row, linalg.IndexOp(rank - 1).result])
        if scales is None:
            return value
        return arith.mulf(arith.sitofp(ir.F32Type.get(), value), tensor.extract(scales, [row]))
    return generic([indices], init, [identity_map(rank, range(rank - 1)), identity_map(rank)],
                   [PARALLEL] * rank, body)
