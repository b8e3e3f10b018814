"""ember-lower-to-linalg: ember ops -> linalg / tensor / arith / math on tensors.

This is the portable lowering every target starts from: each ember op becomes a few structured
linalg ops (a GEMM becomes a matmul-like contraction plus one elementwise epilogue op that the
target pipeline fuses into the GEMM's tiles). Math is done in the tensor's own element type (no
f64 detours); GELU's erf uses a polynomial (Abramowitz-Stegun 7.1.28, |error| < 2e-6 in f32) so it
vectorizes like any other elementwise code. `ember.weight` is left alone: binding weights is the
target's business (see ember-bind-weights).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from mlir import ir
from mlir.dialects import arith, func, linalg, math as mmath, scf, tensor

from ember.backends.cpu.gemm_kernel_spec import KERNEL_ATTR, KERNEL_PREFIX, GemmKernelSpec
from ember.backends.cpu.packed_panels import PANEL_ATTR
from ember.dialect import builders as eb
from ember.dialect.verifier import patch_geometry, patch_matrix_shape

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.patterns import APPLIED, apply_patterns, float_attr, int_attr, kernel_function, \
    string_attr

PARALLEL, REDUCTION = "parallel", "reduction"
#: The identity of max: the lowest finite f32 (padding for max pooling, start of softmax's max).
_LOWEST_F32 = -3.4028234663852886e38


# ----------------------------------------------------------------------------- scalar math
def _const(value: float, like):
    """A constant of `like`'s type: a scalar, or a splat when `like` is a vector (the GEMM
    micro-kernel applies these scalar builders to whole vectors of accumulators)."""
    if isinstance(like.type, ir.VectorType):
        vt = ir.VectorType(like.type)
        return arith.constant(vt, ir.DenseElementsAttr.get_splat(
            vt, ir.FloatAttr.get(vt.element_type, value)))
    return arith.constant(like.type, value)


def _erf(x):
    """erf(x) for floats, A&S 7.1.28: 1 - 1 / (1 + a1|x| + ... + a6|x|^6)^16, sign restored.

    One division and no exp (7.1.26's exp(-x^2) doubled the cost of a GELU epilogue on the
    GEMM tile); |error| < 2e-6 in f32, GELU's < 7e-7. Past |x| ~ 1e6 the power overflows to
    inf and the result is exactly +-1."""
    ax = mmath.absf(x)
    poly = _const(4.30638e-5, x)
    for c in (2.765672e-4, 1.520143e-4, 9.2705272e-3, 4.22820123e-2, 7.05230784e-2, 1.0):
        poly = arith.addf(arith.mulf(poly, ax), _const(c, x))
    for _ in range(4):                          # poly^16
        poly = arith.mulf(poly, poly)
    y = arith.subf(_const(1.0, x), arith.divf(_const(1.0, x), poly))
    return mmath.copysign(y, x)


def _sigmoid(x):
    one = _const(1.0, x)
    return arith.divf(one, arith.addf(one, mmath.exp(arith.negf(x))))


def _gelu(x):
    half = _const(0.5, x)
    inner = _erf(arith.mulf(x, _const(1 / math.sqrt(2.0), x)))
    return arith.mulf(arith.mulf(half, x), arith.addf(_const(1.0, x), inner))


def _gelu_tanh(x):
    cube = arith.mulf(arith.mulf(x, x), x)
    inner = arith.mulf(_const(math.sqrt(2 / math.pi), x),
                       arith.addf(x, arith.mulf(_const(0.044715, x), cube)))
    return arith.mulf(arith.mulf(_const(0.5, x), x), arith.addf(_const(1.0, x), mmath.tanh(inner)))


#: Unary kinds (and GEMM activations) as scalar builders.
UNARY: Dict[str, Callable] = {
    "none": lambda x: x,
    "relu": lambda x: arith.maximumf(x, _const(0.0, x)),
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "silu": lambda x: arith.mulf(x, _sigmoid(x)),
    "sigmoid": _sigmoid,
    "tanh": mmath.tanh,
    "exp": mmath.exp,
    "log": mmath.log,
    "neg": arith.negf,
    "sqrt": mmath.sqrt,
    "rsqrt": mmath.rsqrt,
    "abs": mmath.absf,
    "reciprocal": lambda x: arith.divf(_const(1.0, x), x),
}

#: Binary kinds as scalar builders.
BINARY: Dict[str, Callable] = {
    "add": arith.addf, "sub": arith.subf, "mul": arith.mulf, "div": arith.divf,
    "max": arith.maximumf, "min": arith.minimumf, "pow": mmath.powf,
}


# ----------------------------------------------------------------------------- structured ops
def _identity_map(rank: int, dims: Optional[Sequence[int]] = None) -> ir.AffineMap:
    dims = range(rank) if dims is None else dims
    return ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(d) for d in dims])


def _shape(value) -> List[Optional[int]]:
    t = ir.RankedTensorType(value.type)
    return [None if t.is_dynamic_dim(i) else t.shape[i] for i in range(t.rank)]


def _element(value):
    return ir.RankedTensorType(value.type).element_type


def _dim(value, index: int):
    return tensor.dim(value, arith.constant(ir.IndexType.get(), index))


def _empty_like(result_type, dim_sources: Sequence[Optional[tuple]]):
    """tensor.empty of `result_type`; dynamic dim i is read as tensor.dim(*dim_sources[i])."""
    t = ir.RankedTensorType(result_type)
    sizes = [t.shape[i] if not t.is_dynamic_dim(i) else _dim(*dim_sources[i])
             for i in range(t.rank)]
    return tensor.empty(sizes, t.element_type)


def generic_into(inputs, inits, maps, iterators, body: Callable) -> list:
    """linalg.generic over `inputs` into `inits`; `body(*input scalars, *out scalars)` -> one
    scalar per init (several for e.g. a Winograd transform writing a whole tile at once)."""
    op = linalg.GenericOp_(inputs, list(inits), list(maps), list(iterators))
    block = op.regions[0].blocks[0]
    with ir.InsertionPoint(block):
        linalg.YieldOp(list(body(*block.arguments)))
    return list(op.results)


def _generic(inputs, init, maps, iterators, body: Callable):
    """generic_into with one init; `body(*input scalars, out scalar)` -> scalar."""
    return generic_into(inputs, [init], maps, iterators, lambda *args: [body(*args)])[0]


def _filled(result_type, dim_sources, value: float):
    init = _empty_like(result_type, dim_sources)
    fill = arith.constant(ir.RankedTensorType(result_type).element_type, value)
    return linalg.fill(fill, outs=[init])


def _broadcast_map(operand, result_rank: int, result_shape) -> ir.AffineMap:
    """Indexing map reading `operand` numpy-broadcast against a result of `result_rank`."""
    shape = _shape(operand)
    offset = result_rank - len(shape)
    exprs = [ir.AffineConstantExpr.get(0) if d == 1 and result_shape[offset + i] != 1
             else ir.AffineDimExpr.get(offset + i) for i, d in enumerate(shape)]
    return ir.AffineMap.get(result_rank, 0, exprs)


def _broadcast_dim_source(operands, result_shape, i):
    """A (value, dim) whose runtime size gives dynamic result dim i."""
    rank = len(result_shape)
    for v in operands:
        s = _shape(v)
        j = i - (rank - len(s))
        if j >= 0 and s[j] is None:
            return (v, j)
    return None


def elementwise(operands, result_type, body: Callable):
    """Broadcasting elementwise linalg.generic of `operands` producing `result_type`."""
    result_shape = _shape_of_type(result_type)
    rank = len(result_shape)
    init = _empty_like(result_type, [_broadcast_dim_source(operands, result_shape, i)
                                     for i in range(rank)])
    maps = [_broadcast_map(v, rank, result_shape) for v in operands] + [_identity_map(rank)]
    return _generic(list(operands), init, maps, [PARALLEL] * rank,
                    lambda *args: body(*args[:-1]))


def _shape_of_type(t) -> List[Optional[int]]:
    rt = ir.RankedTensorType(t)
    return [None if rt.is_dynamic_dim(i) else rt.shape[i] for i in range(rt.rank)]


def reduce_trailing(x, keep: int, init_value: float, combine: Callable, extra=(), pre=None):
    """Reduces `x` over its dims after the first `keep` into a tensor of its leading dims.

    `pre(x_scalar, *extra_scalars)` maps each element before `combine(acc, v)`; `extra` are
    tensors of the leading dims (e.g. a mean) read alongside.
    """
    rank = len(_shape(x))
    out_type = ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size() if d is None else d
                                        for d in _shape(x)[:keep]], _element(x))
    init = _filled(out_type, [(x, i) for i in range(keep)], init_value)
    maps = [_identity_map(rank)] + [_identity_map(rank, range(keep))] * (len(extra) + 1)
    iterators = [PARALLEL] * keep + [REDUCTION] * (rank - keep)

    def body(v, *rest):
        *extras, acc = rest
        return combine(acc, pre(v, *extras) if pre else v)
    return _generic([x, *extra], init, maps, iterators, body)


# ----------------------------------------------------------------------------- op lowerings
def _gather_map(strides, dilations) -> ir.AffineMap:
    """(n, oh, ow, kh, kw, c) -> (n, oh*SH + kh*DH, ow*SW + kw*DW, c)."""
    d = [ir.AffineDimExpr.get(i) for i in range(6)]
    return ir.AffineMap.get(6, 0, [d[0], d[1] * strides[0] + d[3] * dilations[0],
                                   d[2] * strides[1] + d[4] * dilations[1], d[5]])


def materialize_patches(padded, geometry):
    """The [N, OH, OW, KH*KW*C] im2col matrix of a padded NHWC input, for a GEMM with
    `lhs_patches = geometry` (KH, KW, SH, SW, DH, DW) that is not lowered to the CPU kernel
    (which reads the patches in place)."""
    kh, kw, sh, sw, dh, dw = geometry
    shape = patch_matrix_shape(_shape(padded), geometry)
    c = _shape(padded)[3]
    dyn = ir.ShapedType.get_dynamic_size()
    lead = [dyn if d is None else d for d in shape[:3]]
    element = _element(padded)
    patches_type = ir.RankedTensorType.get(lead + [kh, kw, c], element)
    init = _empty_like(patches_type, [(padded, 0)] + [None] * 5)
    patches = _generic([padded], init, [_gather_map((sh, sw), (dh, dw)), _identity_map(6)],
                       [PARALLEL] * 6, lambda v, _: v)
    matrix_type = ir.RankedTensorType.get(lead + [kh * kw * c], element)
    return tensor.CollapseShapeOp(matrix_type, patches, [[0], [1], [2], [3, 4, 5]]).result


def lower_gemm(op):
    if PANEL_ATTR in op.attributes:
        return lower_packed_gemm(op)
    lhs, rhs = op.operands[0], op.operands[1]
    geometry = patch_geometry(op)
    if geometry is not None:
        lhs = materialize_patches(lhs, geometry)
    out_type = op.results[0].type
    lhs_shape, rhs_shape = _shape(lhs), _shape(rhs)
    rank = len(lhs_shape)
    dim_sources = [(lhs, i) for i in range(rank - 1)] + [(rhs, len(rhs_shape) - 1)]
    acc = _filled(out_type, dim_sources, 0.0)
    if rank == 2:
        product = linalg.matmul(lhs, rhs, outs=[acc])
    else:
        # Iteration space (batch..., m, n, k).
        n_dims = rank + 1
        b = list(range(rank - 2))
        m, n, k = rank - 2, rank - 1, rank
        lhs_map = _identity_map(n_dims, b + [m, k])
        rhs_map = _identity_map(n_dims, ([] if len(rhs_shape) == 2 else b) + [k, n])
        out_map = _identity_map(n_dims, b + [m, n])
        product = _generic([lhs, rhs], acc, [lhs_map, rhs_map, out_map],
                           [PARALLEL] * rank + [REDUCTION],
                           lambda a, w, c: arith.addf(c, arith.mulf(a, w)))
    bias = eb.optional_operand(op, "bias")
    residual = eb.optional_operand(op, "residual")
    activation = string_attr(op, "activation")
    if bias is None and residual is None and activation == "none":
        return product
    operands = [product] + [v for v in (bias, residual) if v is not None]
    return elementwise(operands, out_type,
                       _gemm_epilogue(activation, bias is not None, residual is not None))


def _gemm_epilogue(activation: str, has_bias: bool, has_residual: bool) -> Callable:
    """`(y, *[bias], *[residual]) -> residual + act(y + bias)` on scalars."""
    def epilogue(y, *rest):
        rest = list(rest)
        if has_bias:
            y = arith.addf(y, rest.pop(0))
        y = UNARY[activation](y)
        if has_residual:
            y = arith.addf(y, rest.pop(0))
        return y
    return epilogue


def lower_packed_gemm(op):
    """A panel-packed GEMM (`rhs_panel`, see ember-pack-weights) -> a kernel function call.

    The GEMM becomes `func.call @ember_gemm_<i>(lhs, packed, [bias], [residual], init)` in
    destination-passing style: the private kernel function writes its result into `init` and
    returns it, so one-shot bufferization writes the caller's buffer in place. Its body is a
    linalg reference (any target can run it); its `ember.gemm_kernel` attribute describes it,
    so a target replaces the body after bufferization (ember-cpu-gemm-kernels). Leading batch
    dims of lhs are collapsed into M. Identical kernels are shared.
    """
    lhs, packed = op.operands[0], op.operands[1]
    bias, residual = eb.optional_operand(op, "bias"), eb.optional_operand(op, "residual")
    out_type = ir.RankedTensorType(op.results[0].type)
    element = out_type.element_type
    geometry = patch_geometry(op)
    logical = patch_matrix_shape(_shape(lhs), geometry) if geometry else _shape(lhs)
    rank, k, n = len(logical), logical[-1], out_type.shape[-1]
    lead = logical[:-1]
    m = None if None in lead else math.prod(lead)
    dyn = ir.ShapedType.get_dynamic_size()
    lhs2_type = ir.RankedTensorType.get([dyn if m is None else m, k], element)
    out2_type = ir.RankedTensorType.get([dyn if m is None else m, n], element)
    rows = ir.ArrayAttr.get([ir.ArrayAttr.get([_i64(d) for d in range(rank - 1)]),
                             ir.ArrayAttr.get([_i64(rank - 1)])])
    if rank > 2:
        if geometry is None:        # a patch lhs stays the padded input the kernel reads
            lhs = tensor.collapse_shape(lhs2_type, lhs, rows)
        if residual is not None:
            residual = tensor.collapse_shape(out2_type, residual, rows)
    patches = None if geometry is None else tuple(_shape(lhs)[1:]) + tuple(geometry)
    spec = GemmKernelSpec(m=m, n=n, k=k, nr=ir.IntegerAttr(op.attributes[PANEL_ATTR]).value,
                          activation=string_attr(op, "activation"), bias=bias is not None,
                          residual=residual is not None, patches=patches)
    operands = [v for v in (lhs, packed, bias, residual) if v is not None]
    callee = _kernel_function(op, spec, [v.type for v in operands] + [out2_type], out2_type)
    if m is not None:
        init = tensor.empty([m, n], element)
    elif geometry is None:
        init = _empty_like(out2_type, [(lhs, 0), None])
    else:                           # M = N * OH * OW, only N dynamic
        rows_per_image = arith.constant(ir.IndexType.get(), math.prod(lead[1:]))
        init = tensor.empty([arith.muli(_dim(lhs, 0), rows_per_image), n], element)
    result = func.call([out2_type], callee, operands + [init])
    if rank == 2:
        return result
    sizes = [_dim(op.operands[0], d) if lead[d] is None else None for d in range(rank - 1)]
    output_shape = [v for v in sizes if v is not None]
    return tensor.expand_shape(out_type, result, rows, output_shape,
                               ir.DenseI64ArrayAttr.get(list(out_type.shape)))


def _i64(value: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


def _kernel_function(op, spec, arg_types, result_type) -> str:
    """The name of the kernel function for `spec` in op's module, created on first use."""
    module_op = op.operation
    while module_op.name != "builtin.module":
        module_op = module_op.parent
    return kernel_function(module_op.regions[0].blocks[0], KERNEL_ATTR, spec.attr(),
                           ir.FunctionType.get(arg_types, [result_type]), KERNEL_PREFIX,
                           lambda args: [_reference_gemm(spec, *args)])


def _reference_gemm(spec, lhs, rhs, *rest):
    """The kernel's linalg body: fill, the contraction (B read through the panel layout when
    packed, A through the patch map for patches; a leading batch dim when batched), epilogue."""
    *epilogue_operands, init = rest
    zero = arith.constant(_element(init), 0.0)
    acc = linalg.fill(zero, outs=[init])
    lead = 1 if spec.batch else 0                   # iteration space ([b,] m, n, k)
    rank = lead + 3
    b = list(range(lead))
    m, n, k = lead, lead + 1, lead + 2
    if spec.rhs_packed:
        nr = ir.AffineConstantExpr.get(spec.nr)
        d_n, d_k = ir.AffineDimExpr.get(n), ir.AffineDimExpr.get(k)
        rhs_map = ir.AffineMap.get(rank, 0, [ir.AffineExpr.get_floor_div(d_n, nr), d_k,
                                             ir.AffineExpr.get_mod(d_n, nr)])
    else:
        rhs_map = _identity_map(rank, b + [k, n])
    lhs_map = _identity_map(rank, b + [m, k]) if spec.patches is None else _patch_map(spec)
    product = _generic([lhs, rhs], acc, [lhs_map, rhs_map, _identity_map(rank, b + [m, n])],
                       [PARALLEL] * (rank - 1) + [REDUCTION],
                       lambda x, w, c: arith.addf(c, arith.mulf(x, w)))
    if not epilogue_operands and spec.activation == "none":
        return product
    out_rank = rank - 1
    maps = ([_identity_map(out_rank, [out_rank - 1])] if spec.bias else []) + \
        ([_identity_map(out_rank)] if spec.residual else []) + [_identity_map(out_rank)]
    epilogue = _gemm_epilogue(spec.activation, spec.bias, spec.residual)
    return _generic(list(epilogue_operands), product, maps, [PARALLEL] * out_rank,
                    lambda *args: epilogue(args[-1], *args[:-1]))


def _patch_map(spec) -> ir.AffineMap:
    """(m, n, k) -> the padded input element of patch row m, column k (see ember.gemm's
    lhs_patches): (m / (OH*OW), (m % (OH*OW)) / OW * SH + k / (KW*C) * DH,
    m % OW * SW + k / C % KW * DW, k % C)."""
    _, _, c, _, kw, sh, sw, dh, dw = spec.patches
    oh, ow = spec.patch_output
    m, k = ir.AffineDimExpr.get(0), ir.AffineDimExpr.get(2)

    def div(e, d):
        return ir.AffineExpr.get_floor_div(e, ir.AffineConstantExpr.get(d))

    def mod(e, d):
        return ir.AffineExpr.get_mod(e, ir.AffineConstantExpr.get(d))
    return ir.AffineMap.get(3, 0, [div(m, oh * ow), div(mod(m, oh * ow), ow) * sh +
                                   div(k, kw * c) * dh, mod(m, ow) * sw + mod(div(k, c), kw) * dw,
                                   mod(k, c)])


def lower_layer_norm(op):
    x = op.operands[0]
    n = int_attr(op, "normalized_ndim")
    eps = float_attr(op, "epsilon")
    shape = _shape(x)
    keep = len(shape) - n
    count = math.prod(shape[keep:]) if None not in shape[keep:] else None
    if count is None:
        raise NotImplementedError("layer_norm over dynamic normalized dims")
    total = reduce_trailing(x, keep, 0.0, arith.addf)
    inv_n = 1.0 / count
    mean = elementwise([total], total.type, lambda s: arith.mulf(s, _const(inv_n, s)))

    def centered_square(v, m):
        d = arith.subf(v, m)
        return arith.mulf(d, d)
    sq = reduce_trailing(x, keep, 0.0, arith.addf, extra=(mean,), pre=centered_square)
    rstd = elementwise([sq], sq.type,
                       lambda s: mmath.rsqrt(arith.addf(arith.mulf(s, _const(inv_n, s)),
                                                        _const(eps, s))))
    weight, bias = eb.optional_operand(op, "weight"), eb.optional_operand(op, "bias")
    rank = len(shape)
    lead = _identity_map(rank, range(keep))
    trail = _identity_map(rank, range(keep, rank))
    inputs, maps = [x, mean, rstd], [_identity_map(rank), lead, lead]
    for v in (weight, bias):
        if v is not None:
            inputs.append(v)
            maps.append(trail)

    def normalize(v, m, r, *rest):
        rest = list(rest)
        y = arith.mulf(arith.subf(v, m), r)
        if weight is not None:
            y = arith.mulf(y, rest.pop(0))
        if bias is not None:
            y = arith.addf(y, rest.pop(0))
        return y
    init = _empty_like(op.results[0].type, [(x, i) for i in range(rank)])
    return _generic(inputs, init, maps + [_identity_map(rank)], [PARALLEL] * rank,
                    lambda *args: normalize(*args[:-1]))


def softmax_along(x, axis: int, zero_empty_rows: bool = False):
    """Numerically stable softmax of `x` along `axis`: max, then sum of exps, then divide.

    A row of only -inf sums to 0 and gives NaN, as torch.softmax does; with `zero_empty_rows`
    it gives zeros instead, as PyTorch's attention does for fully masked queries."""
    shape = _shape(x)
    rank = len(shape)
    kept = [d for d in range(rank) if d != axis]
    reduced_type = ir.RankedTensorType.get(
        [ir.ShapedType.get_dynamic_size() if shape[d] is None else shape[d] for d in kept],
        _element(x))
    full = _identity_map(rank)
    reduced = _identity_map(rank, kept)
    iterators = [REDUCTION if d == axis else PARALLEL for d in range(rank)]
    lowest = _filled(reduced_type, [(x, d) for d in kept], _LOWEST_F32)
    mx = _generic([x], lowest, [full, reduced], iterators, lambda v, acc: arith.maximumf(acc, v))
    total = _generic([x, mx], _filled(reduced_type, [(x, d) for d in kept], 0.0),
                     [full, reduced, reduced], iterators,
                     lambda v, m, acc: arith.addf(acc, mmath.exp(arith.subf(v, m))))
    init = _empty_like(x.type, [(x, i) for i in range(rank)])

    def normalize(v, m, s, _):
        p = arith.divf(mmath.exp(arith.subf(v, m)), s)
        if not zero_empty_rows:
            return p
        return arith.select(arith.cmpf(arith.CmpFPredicate.OGT, s, _const(0.0, s)), p,
                            _const(0.0, s))
    return _generic([x, mx, total], init, [full, reduced, reduced, full], [PARALLEL] * rank,
                    normalize)


def lower_softmax(op):
    return softmax_along(op.operands[0], int_attr(op, "axis"))


def _batched_contraction(a, b, out_type, dim_sources, a_dims, b_dims):
    """out[..., i, j] = sum_r a[a_dims] * b[b_dims] over iteration space (..., i, j, r)."""
    rank = len(_shape_of_type(out_type))
    acc = _filled(out_type, dim_sources, 0.0)
    maps = [_identity_map(rank + 1, a_dims), _identity_map(rank + 1, b_dims),
            _identity_map(rank + 1, range(rank))]
    return _generic([a, b], acc, maps, [PARALLEL] * rank + [REDUCTION],
                    lambda x, y, c: arith.addf(c, arith.mulf(x, y)))


def _causal_mask(scores):
    """scores with -inf-like values where key j > query i + (Sk - Sq)."""
    rank = len(_shape(scores))
    index = ir.IndexType.get()
    offset = arith.subi(_dim(scores, rank - 1), _dim(scores, rank - 2))
    init = _empty_like(scores.type, [(scores, i) for i in range(rank)])

    def body(s, _):
        i = linalg.IndexOp(rank - 2).result
        j = linalg.IndexOp(rank - 1).result
        allowed = arith.cmpi(arith.CmpIPredicate.sle, j, arith.addi(i, offset))
        return arith.select(allowed, s, _const(_LOWEST_F32, s))
    del index
    return _generic([scores], init, [_identity_map(rank)] * 2, [PARALLEL] * rank, body)


def _attention(q, k, v, mask, scale: float, causal: bool, out_type):
    """softmax(q k^T * scale + mask) v on tensors of any rank >= 2."""
    qs, ks = _shape(q), _shape(k)
    rank = len(qs)
    lead = list(range(rank - 2))
    i, j, r = rank - 2, rank - 1, rank
    scores_type = ir.RankedTensorType.get(
        [ir.ShapedType.get_dynamic_size() if d is None else d for d in qs[:-1] + [ks[-2]]],
        _element(q))
    scores = _batched_contraction(q, k, scores_type,
                                  [(q, d) for d in range(rank - 1)] + [(k, rank - 2)],
                                  lead + [i, r], lead + [j, r])
    operands = [scores] + ([mask] if mask is not None else [])
    scores = elementwise(operands, scores_type,
                         lambda s, *m: arith.addf(arith.mulf(s, _const(scale, s)), m[0]) if m
                         else arith.mulf(s, _const(scale, s)))
    if causal:
        scores = _causal_mask(scores)
    probs = softmax_along(scores, rank - 1, zero_empty_rows=True)
    vs = _shape(v)
    # Iteration space (..., i, r, j): the innermost loop runs along rows of v and of the
    # output (contiguous), so it vectorizes without reassociating the sum.
    acc = _filled(out_type, [(q, d) for d in range(rank - 1)] + [(v, len(vs) - 1)], 0.0)
    maps = [_identity_map(rank + 1, lead + [i, j]), _identity_map(rank + 1, lead + [j, r]),
            _identity_map(rank + 1, lead + [i, r])]
    return _generic([probs, v], acc, maps, [PARALLEL] * (rank - 1) + [REDUCTION, PARALLEL],
                    lambda x, y, c: arith.addf(c, arith.mulf(x, y)))


def _same_leading_dim(a, b) -> bool:
    """Whether dim 0 of a and b is provably the same size (equal static, or both dynamic)."""
    da, db = _shape(a)[0], _shape(b)[0]
    return da == db


def _slice_leading(x, index):
    """x[index] (dim 0 dropped) as a rank-reduced tensor.extract_slice."""
    shape = _shape(x)
    dyn = ir.ShapedType.get_dynamic_size()
    sizes = [1] + [dyn if d is None else d for d in shape[1:]]
    dynamic = [_dim(x, d) for d in range(1, len(shape)) if shape[d] is None]
    out_type = ir.RankedTensorType.get(sizes[1:], _element(x))
    static_offsets = [dyn] + [0] * (len(shape) - 1) if not isinstance(index, int) \
        else [index] + [0] * (len(shape) - 1)
    offsets = [] if isinstance(index, int) else [index]
    return tensor.ExtractSliceOp(out_type, x, offsets, dynamic, [], static_offsets, sizes,
                                 [1] * len(shape)).result


def lower_attention(op):
    """softmax(q k^T * scale + mask) v, as two batched contractions around a softmax.

    With a leading (batch) dim shared by q, k, v (and the mask, or a mask broadcast over it),
    the batch entries are the iterations of an scf.forall (OpenMP threads on the host), each
    computing one entry's attention in cache-sized pieces."""
    q, k, v = op.operands[0], op.operands[1], op.operands[2]
    mask = eb.optional_operand(op, "mask")
    scale = float_attr(op, "scale")
    causal = ir.BoolAttr(op.attributes["causal"]).value
    out_type = ir.RankedTensorType(op.results[0].type)
    rank = len(_shape(q))
    split = rank >= 3 and _same_leading_dim(q, k) and _same_leading_dim(q, v)
    mask_rank = len(_shape(mask)) if mask is not None else 0
    if split and mask_rank == rank:
        split = _shape(mask)[0] == 1 or _same_leading_dim(q, mask)
    if not split:
        return _attention(q, k, v, mask, scale, causal, out_type)
    init = _empty_like(out_type, [(q, d) for d in range(rank - 1)] + [(v, rank - 1)])
    batch = _shape(q)[0]
    forall = scf.ForallOp([0], [batch if batch is not None else _dim(q, 0)], [1], [init])
    with ir.InsertionPoint(forall.body):
        b = forall.induction_variables[0]
        dest = forall.inner_iter_args[0]
        sub_mask = mask
        if mask is not None and mask_rank == rank:
            sub_mask = _slice_leading(mask, 0 if _shape(mask)[0] == 1 else b)
        sub_type = ir.RankedTensorType.get(list(out_type.shape)[1:], out_type.element_type)
        part = _attention(_slice_leading(q, b), _slice_leading(k, b), _slice_leading(v, b),
                          sub_mask, scale, causal, sub_type)
        dyn = ir.ShapedType.get_dynamic_size()
        out_shape = _shape(op.results[0])
        sizes = [1] + [dyn if d is None else d for d in out_shape[1:]]
        dynamic = [_dim(part, d - 1) for d in range(1, rank) if out_shape[d] is None]
        with ir.InsertionPoint(forall.terminator().block):
            tensor.ParallelInsertSliceOp(part, dest, [b], dynamic, [],
                                         [dyn] + [0] * (rank - 1), sizes, [1] * rank)
    return forall.results[0]


def lower_rms_norm(op):
    x = op.operands[0]
    n = int_attr(op, "normalized_ndim")
    eps = float_attr(op, "epsilon")
    shape = _shape(x)
    keep = len(shape) - n
    if None in shape[keep:]:
        raise NotImplementedError("rms_norm over dynamic normalized dims")
    inv_n = 1.0 / math.prod(shape[keep:])
    sq = reduce_trailing(x, keep, 0.0, arith.addf, pre=lambda v: arith.mulf(v, v))
    rstd = elementwise([sq], sq.type,
                       lambda s: mmath.rsqrt(arith.addf(arith.mulf(s, _const(inv_n, s)),
                                                        _const(eps, s))))
    rank = len(shape)
    inputs, maps = [x, rstd], [_identity_map(rank), _identity_map(rank, range(keep))]
    weight = eb.optional_operand(op, "weight")
    if weight is not None:
        inputs.append(weight)
        maps.append(_identity_map(rank, range(keep, rank)))
    init = _empty_like(op.results[0].type, [(x, i) for i in range(rank)])
    return _generic(inputs, init, maps + [_identity_map(rank)], [PARALLEL] * rank,
                    lambda v, r, *rest: arith.mulf(arith.mulf(v, r), rest[0])
                    if len(rest) == 2 else arith.mulf(v, r))


def lower_rotary_embedding(op):
    """x * cos + rotate_half(x) * sin, rotate_half(x) = concat(-x2, x1) built with slices."""
    x, cos, sin = op.operands[0], op.operands[1], op.operands[2]
    shape = _shape(x)
    rank = len(shape)
    half = shape[-1] // 2
    sizes = [ir.ShapedType.get_dynamic_size() if d is None else d for d in shape[:-1]]
    half_type = ir.RankedTensorType.get(sizes + [half], _element(x))
    dyn = [_dim(x, d) for d in range(rank - 1) if shape[d] is None]
    dynamic = ir.ShapedType.get_dynamic_size()
    static_sizes = sizes + [half]

    def piece(offset):
        return tensor.ExtractSliceOp(half_type, x, [], dyn, [], [0] * (rank - 1) + [offset],
                                     static_sizes, [1] * rank).result
    x1, x2 = piece(0), piece(half)
    neg_x2 = elementwise([x2], half_type, arith.negf)
    rotated = _empty_like(x.type, [(x, d) for d in range(rank)])
    for value, offset in ((neg_x2, 0), (x1, half)):
        rotated = tensor.InsertSliceOp(value, rotated, [], dyn, [], [0] * (rank - 1) + [offset],
                                       static_sizes, [1] * rank).result
    del dynamic
    return elementwise([x, cos, rotated, sin], op.results[0].type,
                       lambda a, c, r, s: arith.addf(arith.mulf(a, c), arith.mulf(r, s)))


def lower_unary(op):
    fn = UNARY[string_attr(op, "kind")]
    return elementwise([op.operands[0]], op.results[0].type, fn)


def lower_binary(op):
    fn = BINARY[string_attr(op, "kind")]
    return elementwise([op.operands[0], op.operands[1]], op.results[0].type, fn)


def lower_transpose(op):
    x = op.operands[0]
    perm = list(op.attributes["permutation"])
    init = _empty_like(op.results[0].type, [(x, p) for p in perm])
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


def lower_reshape(op):
    out = ir.RankedTensorType(op.results[0].type)
    if not out.has_static_shape:
        raise NotImplementedError("ember.reshape to a dynamic shape")
    x = op.operands[0]
    src = ir.RankedTensorType(x.type)
    owner = x.owner.operation if isinstance(x.owner, ir.OpView) else x.owner
    if src.has_static_shape and isinstance(owner, ir.Operation) and \
            owner.name in ("tensor.extract_slice", "ember.slice"):
        # A slice (e.g. Q/K/V of a merged projection) is a strided view: splitting its dims
        # keeps it one (expand_shape), where tensor.reshape would copy it into a new buffer.
        groups = _expansion_groups(list(src.shape), list(out.shape))
        if groups is not None:
            rows = ir.ArrayAttr.get([ir.ArrayAttr.get([_i64(d) for d in g]) for g in groups])
            return tensor.expand_shape(out, x, rows, [],
                                       ir.DenseI64ArrayAttr.get(list(out.shape)))
    shape_type = ir.RankedTensorType.get([out.rank], ir.IndexType.get())
    shape = arith.constant(shape_type, ir.DenseElementsAttr.get(
        np.array(out.shape, dtype=np.int64), type=shape_type))
    return tensor.reshape(out, op.operands[0], shape)


def _pad_spatial(x, spatial_dims, pads, value: float = 0.0):
    """Pads `x` with `value` symmetrically by pads[i] on dim spatial_dims[i] (no-op if none)."""
    if not any(pads):
        return x
    shape = _shape(x)
    rank = len(shape)
    low = [0] * rank
    for d, p in zip(spatial_dims, pads):
        low[d] = p
    padded = [None if s is None else s + 2 * low[i] for i, s in enumerate(shape)]
    result_type = ir.RankedTensorType.get(
        [ir.ShapedType.get_dynamic_size() if s is None else s for s in padded], _element(x))
    op = tensor.PadOp(result_type, x, [], [], low, low)
    block = op.regions[0].blocks.append(*[ir.IndexType.get()] * rank)
    with ir.InsertionPoint(block):
        tensor.YieldOp(arith.constant(_element(x), value))
    return op.result


def _collapse_depthwise_filter(w, layout: str):
    """[C, 1, KH, KW] -> [C, KH, KW] (nchw) or [KH, KW, 1, C] -> [KH, KW, C] (nhwc)."""
    shape = _shape(w)
    if layout == "nchw":
        kept, groups = [shape[0], shape[2], shape[3]], [[0, 1], [2], [3]]
    else:
        kept, groups = [shape[0], shape[1], shape[3]], [[0], [1], [2, 3]]
    result_type = ir.RankedTensorType.get(kept, _element(w))
    return tensor.CollapseShapeOp(result_type, w, groups).result


#: (layout, depthwise) -> linalg named convolution builder.
_CONVOLUTIONS = {
    ("nchw", False): linalg.conv_2d_nchw_fchw,
    ("nhwc", False): linalg.conv_2d_nhwc_hwcf,
    ("nchw", True): linalg.depthwise_conv_2d_nchw_chw,
    ("nhwc", True): linalg.depthwise_conv_2d_nhwc_hwc,
}


def apply_epilogue(value, result_type, *, bias, residual, activation: str, channel_axis: int):
    """`residual + act(value + bias)` as one elementwise generic (bias along channel_axis).

    Returns `value` unchanged when there is nothing to apply.
    """
    if bias is None and residual is None and activation == "none":
        return value
    rank = len(_shape_of_type(result_type))
    shape = _shape_of_type(result_type)
    operands, maps = [value], [_identity_map(rank)]
    if bias is not None:
        operands.append(bias)
        maps.append(_identity_map(rank, [channel_axis]))
    if residual is not None:
        operands.append(residual)
        maps.append(_identity_map(rank))
    init = _empty_like(result_type, [_broadcast_dim_source([value], shape, i)
                                     for i in range(rank)])

    def body(y, *rest):
        rest = list(rest[:-1])
        if bias is not None:
            y = arith.addf(y, rest.pop(0))
        y = UNARY[activation](y)
        if residual is not None:
            y = arith.addf(y, rest.pop(0))
        return y
    return _generic(operands, init, maps + [_identity_map(rank)], [PARALLEL] * rank, body)


def lower_conv2d(op):
    x, w = op.operands[0], op.operands[1]
    settings = eb.conv2d_attributes(op)
    layout = settings["layout"]
    spatial, channel = ((2, 3), 1) if layout == "nchw" else ((1, 2), 3)
    depthwise = settings["groups"] != 1
    padded = _pad_spatial(x, spatial, settings["padding"])
    out_type = op.results[0].type
    acc = _filled(out_type, [(x, 0), None, None, None], 0.0)
    filt = _collapse_depthwise_filter(w, layout) if depthwise else w
    conv = _CONVOLUTIONS[(layout, depthwise)](padded, filt, outs=[acc],
                                              strides=settings["strides"],
                                              dilations=settings["dilations"])
    return apply_epilogue(conv, out_type, bias=eb.optional_operand(op, "bias"),
                          residual=eb.optional_operand(op, "residual"),
                          activation=settings["activation"], channel_axis=channel)


def lower_slice(op):
    x = op.operands[0]
    axis, start, size = (int_attr(op, k) for k in ("axis", "start", "size"))
    shape = _shape(x)
    rank = len(shape)
    dynamic = [_dim(x, d) for d in range(rank) if d != axis and shape[d] is None]
    sizes = [size if d == axis else (ir.ShapedType.get_dynamic_size() if shape[d] is None
                                     else shape[d]) for d in range(rank)]
    offsets = [start if d == axis else 0 for d in range(rank)]
    return tensor.ExtractSliceOp(op.results[0].type, x, [], dynamic, [], offsets, sizes,
                                 [1] * rank).result


_REDUCE_START = {"sum": 0.0, "mean": 0.0, "max": _LOWEST_F32, "min": -_LOWEST_F32}
_REDUCE_COMBINE = {"sum": arith.addf, "mean": arith.addf, "max": arith.maximumf,
                   "min": arith.minimumf}


def lower_reduce(op):
    """One reducing generic; `mean` then divides by the reduced element count."""
    x = op.operands[0]
    kind = string_attr(op, "kind")
    axes = list(op.attributes["axes"])
    keepdim = ir.BoolAttr(op.attributes["keepdim"]).value
    shape = _shape(x)
    rank = len(shape)
    out_type = op.results[0].type
    kept = [d for d in range(rank) if d not in axes]
    exprs = [ir.AffineConstantExpr.get(0) if d in axes else ir.AffineDimExpr.get(d)
             for d in range(rank)] if keepdim else [ir.AffineDimExpr.get(d) for d in kept]
    out_map = ir.AffineMap.get(rank, 0, exprs)
    sources = [None if d in axes else (x, d) for d in range(rank)] if keepdim else \
        [(x, d) for d in kept]
    init = _filled(out_type, sources, _REDUCE_START[kind])
    iterators = [REDUCTION if d in axes else PARALLEL for d in range(rank)]
    combine = _REDUCE_COMBINE[kind]
    total = _generic([x], init, [_identity_map(rank), out_map], iterators,
                     lambda v, acc: combine(acc, v))
    if kind != "mean":
        return total
    index = ir.IndexType.get()
    count = arith.constant(index, 1)
    for d in axes:
        count = arith.muli(count, _dim(x, d))
    count_f = arith.sitofp(_element(x), arith.index_cast(ir.IntegerType.get_signless(64), count))
    return elementwise([total], out_type, lambda v: arith.divf(v, count_f))


def lower_concat(op):
    """tensor.empty of the result, then one insert_slice per input at its running offset."""
    axis = int_attr(op, "axis")
    values = list(op.operands)
    out_type = ir.RankedTensorType(op.results[0].type)
    rank = out_type.rank
    first = values[0]
    dim_sources = [(first, d) if d != axis else None for d in range(rank)]
    if out_type.is_dynamic_dim(axis):
        raise NotImplementedError("ember.concat with a dynamic result size along its axis")
    result = _empty_like(out_type, dim_sources)
    offset = 0
    for v in values:
        shape = _shape(v)
        dynamic = [_dim(v, d) for d in range(rank) if shape[d] is None]
        sizes = [ir.ShapedType.get_dynamic_size() if n is None else n for n in shape]
        offsets = [offset if d == axis else 0 for d in range(rank)]
        result = tensor.InsertSliceOp(v, result, [], dynamic, [], offsets, sizes,
                                      [1] * rank).result
        offset += shape[axis]
    return result


#: (kind, layout) -> linalg named pooling builder.
_POOLINGS = {
    ("max", "nchw"): linalg.pooling_nchw_max,
    ("max", "nhwc"): linalg.pooling_nhwc_max,
    ("avg", "nchw"): linalg.pooling_nchw_sum,
    ("avg", "nhwc"): linalg.pooling_nhwc_sum,
}

def lower_pool2d(op):
    x = op.operands[0]
    kind = string_attr(op, "kind")
    settings = eb.pool2d_attributes(op)
    layout = settings["layout"]
    spatial = (2, 3) if layout == "nchw" else (1, 2)
    init_value = _LOWEST_F32 if kind == "max" else 0.0
    padded = _pad_spatial(x, spatial, settings["padding"], init_value)
    out_type = op.results[0].type
    acc = _filled(out_type, [(x, 0), None, None, (x, 3)], init_value)
    window = tensor.empty(settings["kernel"], _element(x))
    pooled = _POOLINGS[(kind, layout)](padded, window, outs=[acc], strides=settings["strides"],
                                       dilations=[1, 1])
    if kind == "max":
        return pooled
    area = float(settings["kernel"][0] * settings["kernel"][1])
    return elementwise([pooled], out_type, lambda v: arith.divf(v, _const(area, v)))


#: ember op -> lowering (returns the replacement value).
LOWERINGS: Dict[str, Callable] = {
    "ember.gemm": lower_gemm,
    "ember.conv2d": lower_conv2d,
    "ember.pool2d": lower_pool2d,
    "ember.attention": lower_attention,
    "ember.rms_norm": lower_rms_norm,
    "ember.rotary_embedding": lower_rotary_embedding,
    "ember.slice": lower_slice,
    "ember.reduce": lower_reduce,
    "ember.concat": lower_concat,
    "ember.layer_norm": lower_layer_norm,
    "ember.softmax": lower_softmax,
    "ember.unary": lower_unary,
    "ember.binary": lower_binary,
    "ember.transpose": lower_transpose,
    "ember.reshape": lower_reshape,
}


def _pattern(lowering: Callable):
    def rewrite(op, rewriter) -> bool:
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [lowering(op)])
        return APPLIED
    return rewrite


@register
@dataclass
class LowerToLinalg(EmberPass):
    """Lowers ember ops (all but ember.weight) to linalg, tensor, arith and math on tensors."""
    name = "ember-lower-to-linalg"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {name: [_pattern(fn)] for name, fn in LOWERINGS.items()},
                       erase_dead=False)
