"""Small MLIR builders that lowerings and kernel generators share.

Constants (index, i64 attributes, and one typed constant that splats itself over a vector
type, so that math written for scalars runs unchanged on the micro-kernels' vectors),
structured control flow with bodies given as Python callables, the operands of a GEMM kernel,
and `Ix`: index values with Python arithmetic, so that index math written once runs both on
ints (host models in the tests) and on MLIR values (the emitters).
Nothing here knows about a target or a pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from mlir import ir
from mlir.dialects import arith, scf


def index(value: int):
    """An index constant."""
    return arith.constant(ir.IndexType.get(), value)


def i64(value: int) -> ir.IntegerAttr:
    """An i64 attribute (alignments, reassociation indices)."""
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


def constant(value, like: ir.Type):
    """`value` as a constant of type `like`: a float or integer scalar, or a splat when `like`
    is a vector type, so a builder written for scalars also works on whole vectors."""
    if isinstance(like, ir.VectorType):
        vt = ir.VectorType(like)
        element = vt.element_type
        attr = ir.FloatAttr.get(element, float(value)) if isinstance(element, ir.FloatType) \
            else ir.IntegerAttr.get(element, int(value))
        return arith.constant(vt, ir.DenseElementsAttr.get_splat(vt, attr))
    if isinstance(like, ir.FloatType):
        return arith.constant(like, float(value))
    return arith.constant(like, int(value))


def _value(v):
    return v if isinstance(v, ir.Value) else index(v)


def if_(cond, results=(), build_then: Optional[Callable] = None,
        build_else: Optional[Callable] = None):
    """scf.if with `results` types; `build_*()` return the values to yield. A None `cond`
    means always: `build_then` is emitted inline."""
    if cond is None:
        return list(build_then() or []) if build_then else []
    op = scf.IfOp(cond, list(results), has_else=bool(results) or build_else is not None)
    with ir.InsertionPoint(op.then_block):
        scf.YieldOp(list(build_then() or []) if build_then else [])
    if op.regions[1].blocks:
        with ir.InsertionPoint(op.else_block):
            scf.YieldOp(list(build_else() or []) if build_else else [])
    return list(op.results)


def for_(lb, ub, step=1, iter_args=(), body: Optional[Callable] = None):
    """scf.for over [lb, ub) (ints or index values); `body(iv, *iter_args)` returns the values
    to yield; returns the loop's results."""
    loop = scf.ForOp(_value(lb), _value(ub), _value(step), list(iter_args))
    with ir.InsertionPoint(loop.body):
        out = body(loop.induction_variable, *loop.inner_iter_args)
        scf.YieldOp(list(out or []))
    return list(loop.results)


@dataclass
class GemmOperands:
    """The memrefs of one GEMM kernel: C = residual + act(A @ B + bias)."""
    a: ir.Value
    b: ir.Value
    bias: Optional[ir.Value]
    residual: Optional[ir.Value]
    c: ir.Value
    #: An int8 kernel's row scales, column scales and compensation (see GemmKernelSpec.int8);
    #: a low-bit kernel's group scales in `b_scale`.
    a_scale: Optional[ir.Value] = None
    b_scale: Optional[ir.Value] = None
    compensation: Optional[ir.Value] = None
    #: A low-bit kernel's group offsets (its group scales are `b_scale`; GemmKernelSpec.weights).
    b_offset: Optional[ir.Value] = None

    @classmethod
    def from_args(cls, spec, args) -> "GemmOperands":
        """From a kernel's arguments, named by `spec.arg_names()` (a kit.gemm_spec.GemmSpec)."""
        named = dict(zip(spec.arg_names(), args))
        return cls(named["lhs"], named["rhs"], named.get("bias"), named.get("residual"),
                   named["out"], named.get("lhs_scale"), named.get("rhs_scale"),
                   named.get("rhs_compensation"), named.get("rhs_offset"))

    def to_args(self, spec) -> list:
        """The kernel's arguments in `spec.arg_names()` order: from_args' inverse."""
        fields = dict(lhs=self.a, rhs=self.b, bias=self.bias, residual=self.residual,
                      out=self.c, lhs_scale=self.a_scale, rhs_scale=self.b_scale,
                      rhs_compensation=self.compensation, rhs_offset=self.b_offset)
        return [fields[name] for name in spec.arg_names()]


class Ix:
    """An index value with +, *, //, % (unsigned; non-negative operands only) that folds
    constants: `Ix(tid) // 32 * 16 + 3`. `.value` is the ir.Value (an index constant for a
    folded one)."""

    def __init__(self, v):
        self._v = v

    @property
    def value(self):
        return index(self._v) if isinstance(self._v, int) else self._v

    @staticmethod
    def _lift(other):
        return other._v if isinstance(other, Ix) else other

    def _binary(self, other, fold, op, identity=None):
        a, b = self._v, self._lift(other)
        if isinstance(a, int) and isinstance(b, int):
            return Ix(fold(a, b))
        if isinstance(b, int) and b == identity:
            return self
        return Ix(op(_value(a), _value(b)))

    def __add__(self, other):
        if isinstance(self._v, int) and self._v == 0:
            return other if isinstance(other, Ix) else Ix(other)
        return self._binary(other, int.__add__, arith.addi, identity=0)

    def __mul__(self, other):
        return self._binary(other, int.__mul__, arith.muli, identity=1)

    def __floordiv__(self, other):
        return self._binary(other, int.__floordiv__, arith.divui, identity=1)

    def __mod__(self, other):
        return self._binary(other, int.__mod__, arith.remui)

    __radd__ = __add__
    __rmul__ = __mul__
