"""The epilogue of every GEMM and convolution, `residual + act(y + bias)`, built once.

ember.gemm and ember.conv2d carry a fused epilogue (ember-fuse-epilogue puts it there) that
every path applies to the product before its only store: linalg bodies on scalars
(ember-lower-to-linalg's GEMMs and convolutions, the GEMM kernels' reference bodies,
ember-conv-winograd's output transform), the CPU micro-kernel on vectors of accumulators, the
GPU GEMM kernels on f32 registers. `apply_epilogue` is that arithmetic on one value of any of
those types; `epilogue_op` wraps it in a linalg.generic over a whole tensor.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith

from ember.kit.scalar_math import ACTIVATIONS, quantize_code
from ember.kit.structured import PARALLEL, empty_like, generic, identity_map, type_shape


def accumulator_type(result_type):
    """The tensor type a contraction producing `result_type` accumulates in: f32 for f16 and
    bf16 results (PyTorch's CPU GEMMs and convolutions sum half-precision products in f32 and
    round once; summing in the half type loses about log2(K) bits), else `result_type`."""
    t = ir.RankedTensorType(result_type)
    if not isinstance(t.element_type, (ir.F16Type, ir.BF16Type)):
        return result_type
    return ir.RankedTensorType.get(t.shape, ir.F32Type.get(), t.encoding)


def widened(value, to_type):
    """A float `value` (scalar or vector) extended to `to_type` (itself when already of it)."""
    return value if value.type == to_type else arith.extf(to_type, value)


def narrowed(value, to_type):
    """A scalar float `value` rounded to `to_type` (itself when already of it): a result
    computed in the accumulator type, stored in the op's own."""
    return value if value.type == to_type else arith.truncf(to_type, value)


def apply_epilogue(y, activation: str, bias=None, residual=None):
    """`residual + act(y + bias)` on a scalar or vector `y`; `activation` is one of
    ember.dialect.ACTIVATIONS, `bias` a value of y's type or None. `residual` is a value, None,
    or a function emitting the load of one: a kernel passes a function so that the residual is
    read only after the activation, not kept live in a register all through its polynomial."""
    if bias is not None:
        y = arith.addf(y, bias)
    y = ACTIVATIONS[activation](y)
    if residual is not None:
        y = arith.addf(y, residual() if callable(residual) else residual)
    return y


def epilogue_op(value, result_type, *, bias, residual, activation: str, channel_axis: int,
                init=None, quant=None):
    """`residual + act(value + bias)` as one elementwise linalg.generic over tensor `value`
    (bias read along `channel_axis`, residual of the result's shape), written into `init`
    (default: a new tensor). A `value` wider than the result (an f32 accumulator, see
    `accumulator_type`) gets its epilogue in its own type and is rounded to the result's once,
    at the end; with `quant` (inverse scale, zero point, lo, hi) the result is i8 codes of it
    (a GEMM writing codes). Returns `value` unchanged when there is nothing to apply."""
    wide = ir.RankedTensorType(value.type).element_type
    narrow = ir.RankedTensorType(result_type).element_type
    if bias is None and residual is None and activation == "none" and wide == narrow:
        return value
    rank = len(type_shape(result_type))
    operands, maps = [value], [identity_map(rank)]
    if bias is not None:
        operands.append(bias)
        maps.append(identity_map(rank, [channel_axis]))
    if residual is not None:
        operands.append(residual)
        maps.append(identity_map(rank))
    if init is None:
        init = empty_like(result_type, [(value, i) for i in range(rank)])

    def body(y, *rest):
        rest = [widened(v, wide) for v in rest[:-1]]
        b = rest.pop(0) if bias is not None else None
        r = rest.pop(0) if residual is not None else None
        y = apply_epilogue(y, activation, b, r)
        if quant is not None:
            return quantize_code(y, *quant)
        return y if wide == narrow else arith.truncf(narrow, y)
    return generic(operands, init, maps + [identity_map(rank)], [PARALLEL] * rank, body)
