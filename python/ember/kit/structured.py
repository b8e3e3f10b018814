"""Builders of structured ops on tensors: linalg.generic with Python bodies, fills, broadcasts,
reductions, padding, and the shape queries they need.

Every lowering to linalg (ember-lower-to-linalg's op lowerings, ember-conv-winograd's
transforms, ember-cpu-contractions' kernel calls) builds its ops with these, so a dynamic dim
is always read the same way (`tensor.dim` of the operand that has it) and a body is always a
Python callable on the block's scalars.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ember.kit.builders import constant

PARALLEL, REDUCTION = "parallel", "reduction"
#: The identity of max: the lowest finite f32 (padding for max pooling, start of softmax's max).
LOWEST_F32 = -3.4028234663852886e38


def identity_map(rank: int, dims: Optional[Sequence[int]] = None) -> ir.AffineMap:
    """(d0 .. d{rank-1}) -> (d[dims]...), all of them when `dims` is None."""
    dims = range(rank) if dims is None else dims
    return ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(d) for d in dims])


def type_shape(t) -> List[Optional[int]]:
    """A ranked tensor type's sizes, None for dynamic dims."""
    rt = ir.RankedTensorType(t)
    return [None if rt.is_dynamic_dim(i) else rt.shape[i] for i in range(rt.rank)]


def tensor_shape(value) -> List[Optional[int]]:
    """A tensor value's sizes, None for dynamic dims."""
    return type_shape(value.type)


def element_type(value):
    return ir.RankedTensorType(value.type).element_type


def tensor_dim(value, index: int):
    """The run-time size of dim `index` of a tensor value."""
    return tensor.dim(value, arith.constant(ir.IndexType.get(), index))


def empty_like(result_type, dim_sources: Sequence[Optional[tuple]]):
    """tensor.empty of `result_type`; dynamic dim i is read as tensor.dim(*dim_sources[i])."""
    t = ir.RankedTensorType(result_type)
    sizes = [t.shape[i] if not t.is_dynamic_dim(i) else tensor_dim(*dim_sources[i])
             for i in range(t.rank)]
    return tensor.empty(sizes, t.element_type)


def filled(result_type, dim_sources, value: float):
    """`empty_like(result_type, dim_sources)` filled with `value`."""
    init = empty_like(result_type, dim_sources)
    return linalg.fill(constant(value, ir.RankedTensorType(result_type).element_type),
                       outs=[init])


def generic_into(inputs, inits, maps, iterators, body: Callable) -> list:
    """linalg.generic over `inputs` into `inits`; `body(*input scalars, *out scalars)` -> one
    scalar per init (several for e.g. a Winograd transform writing a whole tile at once)."""
    op = linalg.GenericOp_(inputs, list(inits), list(maps), list(iterators))
    block = op.regions[0].blocks[0]
    with ir.InsertionPoint(block):
        linalg.YieldOp(list(body(*block.arguments)))
    return list(op.results)


def generic(inputs, init, maps, iterators, body: Callable):
    """generic_into with one init; `body(*input scalars, out scalar)` -> scalar."""
    return generic_into(inputs, [init], maps, iterators, lambda *args: [body(*args)])[0]


def broadcast_map(operand, result_rank: int, result_shape) -> ir.AffineMap:
    """Indexing map reading `operand` numpy-broadcast against a result of `result_rank`."""
    shape = tensor_shape(operand)
    offset = result_rank - len(shape)
    exprs = [ir.AffineConstantExpr.get(0) if d == 1 and result_shape[offset + i] != 1
             else ir.AffineDimExpr.get(offset + i) for i, d in enumerate(shape)]
    return ir.AffineMap.get(result_rank, 0, exprs)


def _broadcast_dim_source(operands, result_shape, i):
    """A (value, dim) whose runtime size gives dynamic result dim i."""
    rank = len(result_shape)
    for v in operands:
        s = tensor_shape(v)
        j = i - (rank - len(s))
        if j >= 0 and s[j] is None:
            return (v, j)
    return None


def elementwise(operands, result_type, body: Callable):
    """Broadcasting elementwise linalg.generic of `operands` producing `result_type`;
    `body(*operand scalars)` -> scalar."""
    result_shape = type_shape(result_type)
    rank = len(result_shape)
    init = empty_like(result_type, [_broadcast_dim_source(operands, result_shape, i)
                                    for i in range(rank)])
    maps = [broadcast_map(v, rank, result_shape) for v in operands] + [identity_map(rank)]
    return generic(list(operands), init, maps, [PARALLEL] * rank,
                   lambda *args: body(*args[:-1]))


def reduce_trailing(x, keep: int, init_value: float, combine: Callable, extra=(), pre=None,
                    accumulate: Optional[ir.Type] = None, init=None):
    """Reduces `x` over its dims after the first `keep` into a tensor of its leading dims.

    `pre(x_scalar, *extra_scalars)` maps each element before `combine(acc, v)`; `extra` are
    tensors of the leading dims (e.g. a mean) read alongside. With `accumulate` (a float type
    wider than x's), each element is extended to it first and the result is of it. `init`: the
    destination, already holding `init_value` (a slice to reduce into in place).
    """
    rank = len(tensor_shape(x))
    accumulate = accumulate or element_type(x)
    out_type = ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size() if d is None else d
                                        for d in tensor_shape(x)[:keep]], accumulate)
    if init is None:
        init = filled(out_type, [(x, i) for i in range(keep)], init_value)
    maps = [identity_map(rank)] + [identity_map(rank, range(keep))] * (len(extra) + 1)
    iterators = [PARALLEL] * keep + [REDUCTION] * (rank - keep)

    def body(v, *rest):
        *extras, acc = rest
        v = v if v.type == acc.type else arith.extf(acc.type, v)
        return combine(acc, pre(v, *extras) if pre else v)
    return generic([x, *extra], init, maps, iterators, body)


def pad_spatial(x, spatial_dims, pads, value: float = 0.0):
    """Pads `x` with `value` symmetrically by pads[i] on dim spatial_dims[i] (no-op if none)."""
    if not any(pads):
        return x
    low = [0] * len(tensor_shape(x))
    for d, p in zip(spatial_dims, pads):
        low[d] = p
    return pad(x, low, low, value)


def pad(x, low: Sequence[int], high: Sequence[int], value: float = 0.0):
    """tensor.pad of `x` by low[i] before and high[i] after dim i, with `value`."""
    shape = tensor_shape(x)
    padded = [None if s is None else s + lo + hi for s, lo, hi in zip(shape, low, high)]
    result_type = ir.RankedTensorType.get(
        [ir.ShapedType.get_dynamic_size() if s is None else s for s in padded], element_type(x))
    op = tensor.PadOp(result_type, x, [], [], list(low), list(high))
    block = op.regions[0].blocks.append(*[ir.IndexType.get()] * len(shape))
    with ir.InsertionPoint(block):
        tensor.YieldOp(arith.constant(element_type(x), value))
    return op.result
