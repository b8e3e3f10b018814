"""ember-convert-layout: NCHW convolution networks to NHWC, with transpose sinking.

Each NCHW conv2d/pool2d becomes `transpose -> NHWC op -> transpose back` (filters are
transposed to [KH, KW, C, F], which ember-fold-constants does at compile time). Transposes are
then sunk toward the outputs, through elementwise ops (unary, binary with both sides transposed
alike, or with a constant side, which is permuted instead; per-tensor quantize and dequantize)
and into reductions (which then reduce the NHWC dims),
until each NHWC op's input transpose
meets the previous op's output transpose and ember-canonicalize cancels the pair. What remains
is one transpose at each boundary to NCHW code (the model's inputs and outputs, or ops that
have no NHWC form), and none between convolutions.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.dialect.ops import Binary, Conv2d, Dequantize, Pool2d, Quantize, Reduce, Reshape, \
    Transpose, Unary, view
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.transforms.canonicalize import CANONICALIZATIONS
from ember.transforms.fold_constants import constant_source
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns

TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]
FILTER_TO_HWCF = [2, 3, 1, 0]


def _permuted_type(value, perm):
    t = ir.RankedTensorType(value.type)
    return ir.RankedTensorType.get([t.shape[p] for p in perm], t.element_type)


def _transpose(value, perm):
    return Transpose.build(value, _permuted_type(value, perm), permutation=perm)


def _to_nhwc(op, rewriter) -> bool:
    """conv2d/pool2d in NCHW -> transposes around the same op in NHWC."""
    window = view(op)
    if window.layout != "nchw":
        return NOT_APPLIED
    with rewriter.ip, op.location:
        x = _transpose(window.input, TO_NHWC)
        result_type = _permuted_type(op.results[0], TO_NHWC)
        if isinstance(window, Pool2d):
            y = window.rebuild(result_type, input=x, layout="nhwc")
        else:
            residual = window.residual
            y = window.rebuild(result_type, input=x,
                               filter=_transpose(window.filter, FILTER_TO_HWCF),
                               residual=None if residual is None else _transpose(residual, TO_NHWC),
                               layout="nhwc")
        rewriter.replace_op(op, [_transpose(y, TO_NCHW)])
    return APPLIED


def _sink_through_unary(op, rewriter) -> bool:
    """unary(transpose(x)) -> transpose(unary(x))."""
    unary = Unary(op)
    t = Transpose.defining(unary.input)
    if t is None:
        return NOT_APPLIED
    with rewriter.ip, op.location:
        inner = Unary.build(t.input, kind=unary.kind)
        rewriter.replace_op(op, [_transpose(inner, t.permutation)])
    return APPLIED


def _sink_through_quantization(op, rewriter) -> bool:
    """quantize(transpose(x)) -> transpose(quantize(x)), and likewise for a per-tensor
    dequantize: both are elementwise, so a quantized network's transposes cancel too."""
    quant = view(op)
    t = Transpose.defining(quant.input)
    if t is None or (isinstance(quant, Dequantize) and quant.per_channel):
        return NOT_APPLIED
    with rewriter.ip, op.location:
        inner = quant.rebuild(_permuted_type(op.results[0], _inverse(t.permutation)),
                              input=t.input)
        rewriter.replace_op(op, [_transpose(inner, t.permutation)])
    return APPLIED


def _sink_into_reduce(op, rewriter) -> bool:
    """reduce(transpose(x, p), axes) -> reduce(x, p[axes]): the reduction reads x's own
    layout (a CNN's global average pool over NHWC H and W, not a transpose back to NCHW
    first). The kept dims come out in x's order: a transpose of the (smaller) result puts
    them in p's where that differs (with keepdim, the size-1 dims stay and p applies)."""
    reduce = Reduce(op)
    t = Transpose.defining(reduce.input)
    if t is None:
        return NOT_APPLIED
    perm = t.permutation
    axes = sorted(perm[a] for a in reduce.axes)
    x_shape = ir.RankedTensorType(t.input.type).shape
    element = ir.RankedTensorType(op.results[0].type).element_type
    if reduce.keepdim:
        order = list(perm)
        shape = [1 if d in axes else n for d, n in enumerate(x_shape)]
    else:
        kept = [perm[d] for d in range(len(perm)) if d not in reduce.axes]
        order = [sorted(kept).index(d) for d in kept]
        shape = [n for d, n in enumerate(x_shape) if d not in axes]
    with rewriter.ip, op.location:
        inner = reduce.rebuild(ir.RankedTensorType.get(shape, element), input=t.input,
                               axes=axes)
        moved = inner if order == sorted(order) else _transpose(inner, order)
        rewriter.replace_op(op, [moved])
    return APPLIED


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _sink_through_binary(op, rewriter) -> bool:
    """binary(transpose(a, p), transpose(b, p)) -> transpose(binary(a, b), p), and likewise
    when one side is a constant (the constant is permuted instead, folded at compile time)."""
    binary = Binary(op)
    operands = [binary.lhs, binary.rhs]
    sides = [Transpose.defining(v) for v in operands]
    rank = len(shape_of(op.results[0]))
    perms = [t.permutation if t is not None else None for t in sides]
    full = [p for p in perms if p is not None and len(p) == rank]
    if not full:
        return NOT_APPLIED
    perm = full[0]
    inv = _inverse(perm)
    new_operands = []
    for value, t, p in zip(operands, sides, perms):
        if t is not None and p == perm:
            new_operands.append(t.input)
        elif constant_source(value) is not None or not shape_of(value):
            new_operands.append(value)
        else:
            return NOT_APPLIED
    with rewriter.ip, op.location:
        for i, value in enumerate(operands):
            if new_operands[i] is value and shape_of(value):
                new_operands[i] = _align_constant(value, rank, inv)
        result_type = _permuted_type(op.results[0], inv)
        inner = Binary.build(new_operands[0], new_operands[1], result_type, kind=binary.kind)
        rewriter.replace_op(op, [_transpose(inner, perm)])
    return APPLIED


def _align_constant(value, rank: int, inv):
    """A broadcasting operand reshaped to full rank and permuted by `inv`."""
    t = ir.RankedTensorType(value.type)
    full = [1] * (rank - t.rank) + list(t.shape)
    if len(full) != t.rank:
        value = Reshape.build(value, ir.RankedTensorType.get(full, t.element_type))
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
        apply_patterns(module, {Conv2d.op_name: [_to_nhwc], Pool2d.op_name: [_to_nhwc],
                                Unary.op_name: [_sink_through_unary],
                                Reduce.op_name: [_sink_into_reduce],
                                Binary.op_name: [_sink_through_binary],
                                Quantize.op_name: [_sink_through_quantization],
                                Dequantize.op_name: [_sink_through_quantization],
                                **CANONICALIZATIONS})
