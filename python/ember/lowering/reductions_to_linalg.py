"""ember.reduce and the normalizations (layer_norm, rms_norm, softmax) -> reducing linalg ops.

Each reduction is one linalg.generic into a tensor of the kept dims, followed by the
elementwise ops that use it; softmax is numerically stable (max, then sum of exps).
"""
from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import arith, math as mmath

from ember.dialect.ops import LayerNorm, Reduce, RmsNorm, Softmax
from ember.kit.builders import constant
from ember.kit.epilogue import accumulator_type, narrowed, widened
from ember.kit.structured import LOWEST_F32, PARALLEL, REDUCTION, element_type, elementwise, \
    empty_like, filled, generic, identity_map, reduce_trailing, tensor_dim, tensor_shape


_REDUCE_START = {"sum": 0.0, "mean": 0.0, "max": LOWEST_F32, "min": -LOWEST_F32}


_REDUCE_COMBINE = {"sum": arith.addf, "mean": arith.addf, "max": arith.maximumf,
                   "min": arith.minimumf}


def lower_reduce(op: Reduce):
    """One reducing generic; `mean` then divides by the reduced element count."""
    x, kind, axes, keepdim = op.input, op.kind, op.axes, op.keepdim
    shape = tensor_shape(x)
    rank = len(shape)
    out_type = op.result.type
    kept = [d for d in range(rank) if d not in axes]
    exprs = [ir.AffineConstantExpr.get(0) if d in axes else ir.AffineDimExpr.get(d)
             for d in range(rank)] if keepdim else [ir.AffineDimExpr.get(d) for d in kept]
    out_map = ir.AffineMap.get(rank, 0, exprs)
    sources = [None if d in axes else (x, d) for d in range(rank)] if keepdim else \
        [(x, d) for d in kept]
    init = filled(out_type, sources, _REDUCE_START[kind])
    iterators = [REDUCTION if d in axes else PARALLEL for d in range(rank)]
    combine = _REDUCE_COMBINE[kind]
    total = generic([x], init, [identity_map(rank), out_map], iterators,
                    lambda v, acc: combine(acc, v))
    if kind != "mean":
        return total
    count = arith.constant(ir.IndexType.get(), 1)
    for d in axes:
        count = arith.muli(count, tensor_dim(x, d))
    count_f = arith.sitofp(element_type(x),
                           arith.index_cast(ir.IntegerType.get_signless(64), count))
    return elementwise([total], out_type, lambda v: arith.divf(v, count_f))


def _inverse_std(sum_of_squares, inv_n: float, eps: float):
    """1 / sqrt(sum_of_squares / n + eps), elementwise: a normalization's scale."""
    return elementwise([sum_of_squares], sum_of_squares.type,
                       lambda s: mmath.rsqrt(arith.addf(arith.mulf(s, constant(inv_n, s.type)),
                                                        constant(eps, s.type))))


def _normalized_dims(op, kind: str):
    """(x, its shape, the leading dims kept, 1 / the count of normalized elements) of a
    normalization (a LayerNorm or RmsNorm view) over the trailing `normalized_ndim` dims of x,
    which must be static."""
    x = op.input
    shape = tensor_shape(x)
    keep = len(shape) - op.normalized_ndim
    if None in shape[keep:]:
        raise NotImplementedError(f"{kind} over dynamic normalized dims")
    return x, shape, keep, 1.0 / math.prod(shape[keep:])


def _statistics_type(x) -> ir.Type:
    """The float type a normalization's statistics are computed in: f32 for f16 and bf16
    inputs, as PyTorch's CPU kernels do (a sum of squares of f16 values above ~256 overflows
    f16's 65504 and the row came out all zeros), else x's own."""
    return ir.RankedTensorType(accumulator_type(x.type)).element_type


def lower_layer_norm(op: LayerNorm):
    x, shape, keep, inv_n = _normalized_dims(op, "layer_norm")
    eps = op.epsilon
    compute = _statistics_type(x)
    total = reduce_trailing(x, keep, 0.0, arith.addf, accumulate=compute)
    mean = elementwise([total], total.type, lambda s: arith.mulf(s, constant(inv_n, s.type)))

    def centered_square(v, m):
        d = arith.subf(v, m)
        return arith.mulf(d, d)
    sq = reduce_trailing(x, keep, 0.0, arith.addf, extra=(mean,), pre=centered_square,
                         accumulate=compute)
    rstd = _inverse_std(sq, inv_n, eps)
    weight, bias = op.weight, op.bias
    rank = len(shape)
    lead = identity_map(rank, range(keep))
    trail = identity_map(rank, range(keep, rank))
    inputs, maps = [x, mean, rstd], [identity_map(rank), lead, lead]
    for v in (weight, bias):
        if v is not None:
            inputs.append(v)
            maps.append(trail)

    def normalize(v, m, r, *rest):
        rest = list(rest)
        y = arith.mulf(arith.subf(widened(v, compute), m), r)
        if weight is not None:
            y = arith.mulf(y, widened(rest.pop(0), compute))
        if bias is not None:
            y = arith.addf(y, widened(rest.pop(0), compute))
        return narrowed(y, element_type(op.result))
    init = empty_like(op.result.type, [(x, i) for i in range(rank)])
    return generic(inputs, init, maps + [identity_map(rank)], [PARALLEL] * rank,
                   lambda *args: normalize(*args[:-1]))


def lower_rms_norm(op: RmsNorm):
    x, shape, keep, inv_n = _normalized_dims(op, "rms_norm")
    eps = op.epsilon
    compute = _statistics_type(x)
    sq = reduce_trailing(x, keep, 0.0, arith.addf, pre=lambda v: arith.mulf(v, v),
                         accumulate=compute)
    rstd = _inverse_std(sq, inv_n, eps)
    rank = len(shape)
    inputs, maps = [x, rstd], [identity_map(rank), identity_map(rank, range(keep))]
    weight = op.weight
    if weight is not None:
        inputs.append(weight)
        maps.append(identity_map(rank, range(keep, rank)))
    init = empty_like(op.result.type, [(x, i) for i in range(rank)])
    def normalize(v, r, *rest):
        y = arith.mulf(widened(v, compute), r)
        if len(rest) == 2:
            y = arith.mulf(y, widened(rest[0], compute))
        return narrowed(y, element_type(op.result))
    return generic(inputs, init, maps + [identity_map(rank)], [PARALLEL] * rank, normalize)


def softmax_along(x, axis: int, zero_empty_rows: bool = False):
    """Numerically stable softmax of `x` along `axis`: max, then sum of exps, then divide.

    A row of only -inf sums to 0 and gives NaN, as torch.softmax does; with `zero_empty_rows`
    it gives zeros instead, as PyTorch's attention does for fully masked queries."""
    shape = tensor_shape(x)
    rank = len(shape)
    kept = [d for d in range(rank) if d != axis]
    reduced_type = ir.RankedTensorType.get(
        [ir.ShapedType.get_dynamic_size() if shape[d] is None else shape[d] for d in kept],
        element_type(x))
    full = identity_map(rank)
    reduced = identity_map(rank, kept)
    iterators = [REDUCTION if d == axis else PARALLEL for d in range(rank)]
    lowest = filled(reduced_type, [(x, d) for d in kept], LOWEST_F32)
    mx = generic([x], lowest, [full, reduced], iterators, lambda v, acc: arith.maximumf(acc, v))
    total = generic([x, mx], filled(reduced_type, [(x, d) for d in kept], 0.0),
                    [full, reduced, reduced], iterators,
                    lambda v, m, acc: arith.addf(acc, mmath.exp(arith.subf(v, m))))
    init = empty_like(x.type, [(x, i) for i in range(rank)])

    def normalize(v, m, s, _):
        p = arith.divf(mmath.exp(arith.subf(v, m)), s)
        if not zero_empty_rows:
            return p
        return arith.select(arith.cmpf(arith.CmpFPredicate.OGT, s, constant(0.0, s.type)), p,
                            constant(0.0, s.type))
    return generic([x, mx, total], init, [full, reduced, reduced, full], [PARALLEL] * rank,
                   normalize)


def lower_softmax(op: Softmax):
    return softmax_along(op.input, op.axis)
