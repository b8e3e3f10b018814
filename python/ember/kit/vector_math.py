"""Polynomial expansions of f32 `math` ops, so activations vectorize instead of calling libm.

`convert-math-to-llvm` turns `math.exp` / `math.tanh` on vectors into LLVM intrinsics that the
backend scalarizes into one libm call per lane, which costs more than the GEMM feeding them. This
module rewrites those ops (scalar or vector f32) into arith code: exp by Cody-Waite range
reduction, a degree-5 polynomial and an exponent-bit shift (about 1 ulp); tanh by the odd/even
13/6 rational minimax interpolant on [-9, 9] (a few ulp, +-1 beyond). Other element types and
other ops are left alone. It must not change results beyond those ulps. `exp_to_codes`, for
exps that only become 8-bit codes, trades precision a code cannot show for half the work.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath
from mlir.rewrite import RewritePatternSet, walk_and_apply_patterns

from ember.kit.builders import constant
from ember.kit.rewrite import APPLIED, NOT_APPLIED

LOG2E = 1.44269504088896341
LN2_HI = 0.693359375             # ln 2 split in two so x - n ln2 is exact for |n| < 2^9
LN2_LO = -2.12194440e-4
EXP_CLAMP = 88.3762626647949     # largest x whose 2^n (n <= 127) stays a normal float
EXP_OVERFLOW = 88.72283935546875  # ln(FLT_MAX): exp of anything larger is +inf in f32
EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
            1.6666665459e-1, 5.0000001201e-1)
#: 2^f on [-1/2, 1/2] to 3.2e-6 relative (least squares on Chebyshev nodes, f32 Horner).
EXP2_POLY4 = (9.600409306585789e-3, 5.591697618365288e-2, 2.4023719131946564e-1,
              6.931219696998596e-1, 1.0)
TANH_CLAMP = 7.90531110763549805  # tanh(x) rounds to +-1 beyond this
TANH_NUM = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
            5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
            4.89352455891786e-03)
TANH_DEN = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
            4.89352518554385e-03)


#: Lets LLVM fuse a multiply and the add after it into one FMA where the target has one (the
#: rounding of the product skipped: more accurate, not less).
CONTRACT = "#arith.fastmath<contract>"


def horner(x, coefficients: Sequence[float]):
    """c0 x^n + c1 x^(n-1) + ... + cn, one FMA per coefficient."""
    flags = ir.Attribute.parse(CONTRACT)
    acc = constant(coefficients[0], x.type)
    for c in coefficients[1:]:
        acc = arith.addf(arith.mulf(acc, x, fastmath=flags), constant(c, x.type),
                         fastmath=flags)
    return acc


def at_least(x, lo):
    """max(x, lo) with a NaN x kept, built as `x < lo ? lo : x`: one vmaxps on x86 (whose NaN
    rule that is), where arith.maximumf costs a compare and a blend more. `lo`: a value or a
    float."""
    lo = constant(float(lo), x.type) if isinstance(lo, (int, float)) else lo
    return arith.select(arith.cmpf(arith.CmpFPredicate.OLT, x, lo), lo, x)


def clamp(x, lo, hi):
    """min(max(x, lo), hi), a NaN x kept (see at_least): two instructions on x86."""
    y = at_least(x, lo)
    hi = constant(float(hi), x.type) if isinstance(hi, (int, float)) else hi
    return arith.select(arith.cmpf(arith.CmpFPredicate.OGT, y, hi), hi, y)


def _int_type_like(t: ir.Type) -> ir.Type:
    i32 = ir.IntegerType.get_signless(32)
    return ir.VectorType.get(t.shape, i32) if isinstance(t, ir.VectorType) else i32


def exp_f32(x):
    """exp(x) for f32 scalars or vectors, without libm; +inf past ln(FLT_MAX), as PyTorch's
    (clamped alone, exp(89) and exp(inf) came out as 2.4e38). Between the clamp and ln(FLT_MAX)
    (0.35 wide) the result stays exp(EXP_CLAMP)."""
    t = x.type
    overflow = arith.cmpf(arith.CmpFPredicate.OGT, x, constant(EXP_OVERFLOW, t))
    x = clamp(x, -EXP_CLAMP, EXP_CLAMP)
    n = mmath.floor(arith.addf(arith.mulf(x, constant(LOG2E, t)), constant(0.5, t)))
    n = clamp(n, -127.0, 127.0)
    r = arith.subf(x, arith.mulf(n, constant(LN2_HI, t)))
    r = arith.subf(r, arith.mulf(n, constant(LN2_LO, t)))
    p = horner(r, EXP_POLY)
    y = arith.addf(arith.addf(arith.mulf(p, arith.mulf(r, r)), r), constant(1.0, t))
    return arith.select(overflow, constant(float("inf"), t), arith.mulf(y, _power_of_two(n)))


def exp_to_codes(x):
    """exp(x) for x <= 0 (or NaN: NaN) to about 1e-5 relative, for values that become 8-bit
    codes (a softmax's exp(s - max), coded as round(e * 255)): 2^(x log2 e) as 2^n times a
    degree-4 polynomial of the fraction, 2^n as exponent bits; below 2^-127, 0. Eight vector
    instructions fewer than exp_f32 (no Cody-Waite split, no overflow, a shorter polynomial),
    at an error 400 times smaller than a code's rounding."""
    t = x.type
    scaled = at_least(arith.mulf(x, constant(LOG2E, t)), -127.0)
    n = mmath.roundeven(scaled)
    return arith.mulf(horner(arith.subf(scaled, n), EXP2_POLY4), _power_of_two(n))


def _power_of_two(n):
    """2^n for whole floats n in [-127, 127] (scalar or vector f32), built as float bits
    (n + 127) << 23: n = -127 gives 0 (exp's denormal range flushed)."""
    t = n.type
    it = _int_type_like(t)
    bits = arith.shli(arith.addi(arith.fptosi(it, n), constant(127, it)), constant(23, it))
    return arith.bitcast(t, bits)


def tanh_f32(x):
    """tanh(x) for f32 scalars or vectors: a 13/6 rational interpolant, +-1 beyond the clamp."""
    x = clamp(x, -TANH_CLAMP, TANH_CLAMP)
    x2 = arith.mulf(x, x)
    p = arith.mulf(horner(x2, TANH_NUM), x)
    q = horner(x2, TANH_DEN)
    return arith.divf(p, q)


#: math op name -> expansion of its single operand.
EXPANSIONS: Dict[str, Callable] = {
    "math.exp": exp_f32,
    "math.tanh": tanh_f32,
}


def _is_f32(t: ir.Type) -> bool:
    element = ir.VectorType(t).element_type if isinstance(t, ir.VectorType) else t
    return isinstance(element, ir.F32Type)


def _expansion_pattern(fn: Callable):
    def rewrite(op, rewriter) -> bool:
        if not _is_f32(op.results[0].type):
            return NOT_APPLIED
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [fn(op.operands[0])])
        return APPLIED
    return rewrite


def expand_math(root) -> None:
    """Rewrites every f32 math.exp / math.tanh under `root` (an op) into polynomial arith."""
    ps = RewritePatternSet()
    for name, fn in EXPANSIONS.items():
        ps.add(name, _expansion_pattern(fn))
    walk_and_apply_patterns(root, ps.freeze())
