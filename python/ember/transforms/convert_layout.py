"""ember-convert-layout: NCHW convolution networks to NHWC, with transpose sinking.

Each NCHW conv2d/pool2d becomes `transpose -> NHWC op -> transpose back` (filters are
transposed to [KH, KW, C, F], which ember-fold-constants does at compile time). Transposes are
then sunk toward the outputs, through elementwise ops (unary, binary with both sides transposed
alike, or with a constant side, which is permuted instead), until each NHWC op's input transpose
meets the previous op's output transpose and ember-canonicalize cancels the pair. What remains
is one transpose at each boundary to NCHW code (the model's inputs and outputs, or ops that
have no NHWC form), and none between convolutions.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.dialect import builders as eb
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.transforms.canonicalize import CANONICALIZATIONS
from ember.transforms.fold_constants import constant_source
from ember.kit.patterns import APPLIED, NOT_APPLIED, apply_patterns, defined_by, string_attr

TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]
FILTER_TO_HWCF = [2, 3, 1, 0]


def _permuted_type(value, perm):
    t = ir.RankedTensorType(value.type)
    return ir.RankedTensorType.get([t.shape[p] for p in perm], t.element_type)


def _transpose(value, perm):
    return eb.transpose(value, perm, _permuted_type(value, perm))


def _to_nhwc(op, rewriter) -> bool:
    """conv2d/pool2d in NCHW -> transposes around the same op in NHWC."""
    if string_attr(op, "layout") != "nchw":
        return NOT_APPLIED
    with rewriter.ip, op.location:
        x = _transpose(op.operands[0], TO_NHWC)
        result_type = _permuted_type(op.results[0], TO_NHWC)
        if op.name == "ember.pool2d":
            settings = {**eb.pool2d_attributes(op), "layout": "nhwc"}
            y = eb.pool2d(string_attr(op, "kind"), x, result_type, **settings)
        else:
            settings = {**eb.conv2d_attributes(op), "layout": "nhwc"}
            residual = eb.optional_operand(op, "residual")
            y = eb.conv2d(x, _transpose(op.operands[1], FILTER_TO_HWCF), result_type,
                          bias=eb.optional_operand(op, "bias"),
                          residual=None if residual is None else _transpose(residual, TO_NHWC),
                          **settings)
        rewriter.replace_op(op, [_transpose(y, TO_NCHW)])
    return APPLIED


def _sink_through_unary(op, rewriter) -> bool:
    """unary(transpose(x)) -> transpose(unary(x))."""
    t = defined_by(op.operands[0], "ember.transpose")
    if t is None:
        return NOT_APPLIED
    perm = list(t.attributes["permutation"])
    with rewriter.ip, op.location:
        inner = eb.unary(string_attr(op, "kind"), t.operands[0])
        rewriter.replace_op(op, [_transpose(inner, perm)])
    return APPLIED


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _sink_through_binary(op, rewriter) -> bool:
    """binary(transpose(a, p), transpose(b, p)) -> transpose(binary(a, b), p), and likewise
    when one side is a constant (the constant is permuted instead, folded at compile time)."""
    sides = [defined_by(v, "ember.transpose") for v in op.operands]
    rank = len(shape_of(op.results[0]))
    perms = [list(t.attributes["permutation"]) if t is not None else None for t in sides]
    full = [t for t, p in zip(sides, perms) if t is not None and len(p) == rank]
    if not full:
        return NOT_APPLIED
    perm = list(full[0].attributes["permutation"])
    inv = _inverse(perm)
    new_operands = []
    for value, t, p in zip(op.operands, sides, perms):
        if t is not None and p == perm:
            new_operands.append(t.operands[0])
        elif constant_source(value) is not None or not shape_of(value):
            new_operands.append(value)
        else:
            return NOT_APPLIED
    with rewriter.ip, op.location:
        for i, value in enumerate(op.operands):
            if new_operands[i] is value and shape_of(value):
                new_operands[i] = _align_constant(value, rank, inv)
        result_type = _permuted_type(op.results[0], inv)
        inner = eb.binary(string_attr(op, "kind"), new_operands[0], new_operands[1], result_type)
        rewriter.replace_op(op, [_transpose(inner, perm)])
    return APPLIED


def _align_constant(value, rank: int, inv):
    """A broadcasting operand reshaped to full rank and permuted by `inv`."""
    t = ir.RankedTensorType(value.type)
    full = [1] * (rank - t.rank) + list(t.shape)
    if len(full) != t.rank:
        value = eb.reshape(value, ir.RankedTensorType.get(full, t.element_type))
    return _transpose(value, inv)


@register
@dataclass
class ConvertLayout(EmberPass):
    """Converts NCHW conv2d/pool2d to NHWC and sinks the transposes so they cancel."""
    name = "ember-convert-layout"
    layout: str = "nhwc"

    def run(self, module, ctx: PassContext) -> None:
        if self.layout == "nchw":
            return
        if self.layout != "nhwc":
            raise ValueError(f"ember-convert-layout: unknown layout '{self.layout}' "
                             f"(expected nhwc or nchw)")
        apply_patterns(module, {"ember.conv2d": [_to_nhwc], "ember.pool2d": [_to_nhwc],
                                "ember.unary": [_sink_through_unary],
                                "ember.binary": [_sink_through_binary],
                                **CANONICALIZATIONS})
