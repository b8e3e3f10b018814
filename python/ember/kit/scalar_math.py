"""Elementwise math as builders that take and return one value, scalar or vector alike.

The ember dialect's unary kinds (the GEMM and conv activations among them) and binary kinds.
Linalg bodies apply them to scalars, the CPU micro-kernel to whole vectors of accumulators and
the GPU kernels to f32 registers, so each is written once, on whatever type its operand has
(constants splat to it). Math is done in that type (no f64 detours); GELU's erf is a
polynomial (Abramowitz-Stegun 7.1.28, |error| < 2e-6 in f32) so it vectorizes like any other
elementwise code.
"""
from __future__ import annotations

import math
from typing import Callable, Dict

from mlir import ir
from mlir.dialects import arith, llvm, math as mmath

from ember.kit.builders import constant
from ember.kit.vector_math import at_least, clamp, horner


#: A&S 7.1.28's a6 .. a1, 1.
ERF_POLY = (4.30638e-5, 2.765672e-4, 1.520143e-4, 9.2705272e-3, 4.22820123e-2, 7.05230784e-2,
            1.0)


def erf(x):
    """erf(x) for floats, A&S 7.1.28: 1 - 1 / (1 + a1|x| + ... + a6|x|^6)^16, sign restored.

    One division and no exp (7.1.26's exp(-x^2) doubled the cost of a GELU epilogue on the
    GEMM tile); |error| < 2e-6 in f32, GELU's < 7e-7. Past |x| ~ 1e6 the power overflows to
    inf and the result is exactly +-1. (The divide as a reciprocal estimate, arcp with |x|
    clamped for ninf, measured no faster in the GEMM epilogue, and LLVM then mis-evaluated
    huge |x|.)"""
    poly = horner(mmath.absf(x), ERF_POLY)
    for _ in range(4):                          # poly^16
        poly = arith.mulf(poly, poly)
    y = arith.subf(constant(1.0, x.type), arith.divf(constant(1.0, x.type), poly))
    return mmath.copysign(y, x)


def sigmoid(x):
    one = constant(1.0, x.type)
    return arith.divf(one, arith.addf(one, mmath.exp(arith.negf(x))))


#: ERF_POLY for erf(x / sqrt 2): its k-th power's coefficient divided by sqrt(2)^k.
GELU_POLY = tuple(c / math.sqrt(2.0) ** (len(ERF_POLY) - 1 - i) for i, c in enumerate(ERF_POLY))


def gelu(x):
    """x (1 + erf(x / sqrt 2)) / 2 as (x + |x| erf(|x| / sqrt 2)) / 2, erf by erf's formula
    on |x| with 1 / sqrt 2 folded into the polynomial: no sign to restore and no scaling of
    x (five vector instructions fewer than through erf, a quarter of a GELU epilogue's).
    +-inf: as x (1 + erf(x / sqrt 2)) / 2 (inf, NaN)."""
    ax = mmath.absf(x)
    poly = horner(ax, GELU_POLY)
    for _ in range(4):                          # poly^16
        poly = arith.mulf(poly, poly)
    one = constant(1.0, x.type)
    magnitude = arith.mulf(ax, arith.subf(one, arith.divf(one, poly)))
    return arith.mulf(constant(0.5, x.type), arith.addf(x, magnitude))


def gelu_tanh(x):
    cube = arith.mulf(arith.mulf(x, x), x)
    inner = arith.mulf(constant(math.sqrt(2 / math.pi), x.type),
                       arith.addf(x, arith.mulf(constant(0.044715, x.type), cube)))
    return arith.mulf(arith.mulf(constant(0.5, x.type), x),
                      arith.addf(constant(1.0, x.type), mmath.tanh(inner)))


#: The activations of a GEMM or conv epilogue (ember.dialect.ACTIVATIONS), as builders.
ACTIVATIONS: Dict[str, Callable] = {
    "none": lambda x: x,
    "relu": lambda x: at_least(x, 0.0),
    "gelu": gelu,
    "gelu_tanh": gelu_tanh,
    "silu": lambda x: arith.mulf(x, sigmoid(x)),
    "sigmoid": sigmoid,
    "tanh": mmath.tanh,
}

#: The unary kinds of ember.unary (ember.dialect.UNARY_KINDS): the activations and the rest.
UNARY: Dict[str, Callable] = {
    **ACTIVATIONS,
    "exp": mmath.exp,
    "log": mmath.log,
    "neg": arith.negf,
    "sqrt": mmath.sqrt,
    "rsqrt": mmath.rsqrt,
    "abs": mmath.absf,
    "reciprocal": lambda x: arith.divf(constant(1.0, x.type), x),
}

#: The binary kinds of ember.binary, as builders of two values.
BINARY: Dict[str, Callable] = {
    "add": arith.addf, "sub": arith.subf, "mul": arith.mulf, "div": arith.divf,
    "max": arith.maximumf, "min": arith.minimumf, "pow": mmath.powf,
}


def signed_byte(word, j: int):
    """Byte j (0 = least significant) of an i32 `word` (scalar or vector), sign-extended:
    shifted to the top, then arithmetically back down."""
    up = arith.shli(word, constant(24 - 8 * j, word.type))
    return arith.shrsi(up, constant(24, word.type))


def dequantize_code(code, scale, zero_point, unsigned: bool):
    """f32 (code - zero_point) * scale of an i8 code (a scalar or a vector) read unsigned if
    `unsigned`, as ember.dequantize computes it; scale and zero point are numbers or f32
    values (a per-channel dequantize's)."""
    f32 = ir.VectorType.get(ir.VectorType(code.type).shape, ir.F32Type.get()) \
        if isinstance(code.type, ir.VectorType) else ir.F32Type.get()
    x = arith.uitofp(f32, code) if unsigned else arith.sitofp(f32, code)
    if not isinstance(zero_point, ir.Value):
        zero_point = constant(float(zero_point), f32)
    if not isinstance(scale, ir.Value):
        scale = constant(float(scale), f32)
    return arith.mulf(arith.subf(x, zero_point), scale)


def relu_before_is_redundant(zero_point: int, lo: int) -> bool:
    """Whether quantizing with this zero point and lowest code gives the same codes with or
    without a ReLU before it: every negative value's code (at most the zero point) is clamped
    up to `lo`, the code ReLU's 0.0 gets."""
    return lo >= zero_point


def quantize_code(x, inverse_scale: float, zero_point: int, lo: int, hi: int):
    """The i8 code byte(s) of f32 x (a scalar or a vector), as PyTorch's quantize_per_tensor
    computes them: clamp(roundeven(x * inverse) + zp, lo, hi)."""
    y = mmath.roundeven(arith.mulf(x, constant(inverse_scale, x.type)))
    if zero_point:      # adding 0.0 would only turn -0.0 into 0.0, the same code
        y = arith.addf(y, constant(float(zero_point), x.type))
    y = clamp(y, lo, hi)
    return arith.trunci(_integers_like(x.type, 8), arith.fptosi(_integers_like(x.type, 32), y))


def quantize_unsigned_code(x, inverse_scale: float, zero_point: int, lo: int, hi: int):
    """quantize_code's code for an unsigned range (0 <= lo), in the form a CPU narrows
    fastest: max(x * inverse, lo - zp) rounded to an integer in the current rounding mode
    (llvm.lrint: cvtps2dq, to nearest even as PyTorch's roundeven), + zp, then an unsigned
    min with hi, which x86 folds into its saturating narrow (vpmovusdb): three instructions
    where quantize_code's round, clamp, convert and truncate take five. The same codes for
    every number x (a NaN's code is unspecified in both): the bounds are integers, so clamping
    before rounding equals clamping after, and an x * inverse past 2^31, whose conversion
    overflows (to INT_MIN on x86, INT_MAX on AArch64), reads as unsigned above hi and is
    narrowed to hi, as quantize_code clamps it."""
    if lo < 0:
        raise ValueError(f"quantize_unsigned_code needs an unsigned range, got [{lo}, {hi}]")
    y = at_least(arith.mulf(x, constant(inverse_scale, x.type)), float(lo - zero_point))
    wide = _integers_like(x.type, 32)
    code = llvm.intr_lrint(wide, y)
    if zero_point:
        code = arith.addi(code, constant(zero_point, wide))
    return arith.trunci(_integers_like(x.type, 8), arith.minui(code, constant(hi, wide)))


def _integers_like(t: ir.Type, width: int) -> ir.Type:
    """The integer type of `width` bits with t's shape (a scalar for a scalar t)."""
    element = ir.IntegerType.get_signless(width)
    return ir.VectorType.get(ir.VectorType(t).shape, element) \
        if isinstance(t, ir.VectorType) else element
