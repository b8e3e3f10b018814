"""ember-fold-quantized-ops: a quantized model's dequantize -> GEMM chains become int8 GEMMs.

A model quantized ahead of time (PT2E's `convert_pt2e`, or ember's static mode) reaches the
graph passes as fp32 ops between ember.dequantize / ember.quantize: each Linear reads
`dequantize(codes)` and a weight `dequantize(int8 weight)` (transposed, for `linear`). The
arithmetic that states is an integer product scaled once:

    gemm(dequantize(a; s_a, z_a), dequantize(w; s_w[n], 0)) = s_a * s_w[n] * sum_k (a - z_a) w

so the GEMM becomes an `ember.qgemm` on the codes themselves (static: `lhs_scale`,
`lhs_zero_point`), its weight the int8 matrix [K, N] (a transposed copy derived in the weights
table when the model stores it [N, K]) and its bias, activation and residual kept. The
activations then travel between layers as the bytes the previous `ember.quantize` wrote; no
fp32 copy of them is made.

Folded when: the lhs is dequantized per tensor; the weight is an `ember.weight` of signed
bytes dequantized per output channel (or per tensor) with zero points that are provably 0
(symmetric: a weights-table entry or dense constant of zeros); the GEMM is a plain
[.., M, K] x [K, N] product (no packed or im2col operand). An NHWC conv2d (groups 1) on
dequantized codes becomes a qgemm over the codes' patches (`lhs_patches`, padded with the
zero point), its filter [KH, KW, C, F] the [KH*KW*C, F] matrix; a depthwise one (groups = C
= F, no residual) becomes an `ember.qdepthwise_conv2d` on the codes, its filter [KH, KW, C];
grouped convs are left. A transpose of dequantized codes (the NCHW -> NHWC layout change, a weight's
transpose) moves onto the bytes first. Anything else keeps its fp32 form, which computes
exactly what the model states.

A quantize reading an int8 GEMM or depthwise conv (its only user) moves into it: the op
requantizes its results in the epilogue (result_scale, result_zero_point, result_range) and
writes codes; so does an activation applied after the GEMM's residual (output_activation: a
residual block's closing ReLU). A layer left in floating point before an int8 one (an f32
GEMM on a weight; a convolution once ember-conv-to-gemm made it one, which is why the CPU
targets run this pass again after it) writes the codes the same way.

A residual block's shortcut: an int8 (or float layer's) GEMM whose f32 result is quantized
for the next layer and also added as the residual of later int8 GEMMs (a ResNet stem's
output) writes the codes alone, and the residuals read them dequantized, as PyTorch's X86 and
OpenVINO's int8 graphs quantize both inputs of such an add: a quarter of the bytes written
and read, no f32 copy (the residual then carries the codes' rounding, at most half a step:
on the benchmark CNN the int8 argmax agrees with fp32 on 97.9% of 1024 inputs where the
model's own PT2E graph, shortcut in f32, agrees on 98.8%). A residual that is a
per-tensor `dequantize(codes)` becomes codes of the GEMM (residual_scale,
residual_zero_point), dequantized in its epilogue.
`quantize(dequantize(c))` with the same parameters and storage is `c` and is folded too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from mlir import ir

from ember.dialect.enums import ACTIVATIONS
from ember.dialect.ops import Conv2d, Dequantize, Gemm, QDepthwiseConv2d, QGemm, Quantize, \
    Reshape, Transpose, Unary, Weight
from ember.dialect.ops.quantization import storage_range, unsigned_codes
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.weights import WeightTable


def _zero_constant(value, weights: WeightTable) -> bool:
    """Whether `value` is provably all zeros: a weight whose data is zeros, or a dense
    arith.constant of zeros."""
    weight = Weight.defining(value)
    if weight is not None:
        data = weights.get(weight.name)
        return data is not None and not np.any(data)
    owner = value.owner
    if isinstance(owner, (ir.Operation, ir.OpView)) and owner.name == "arith.constant":
        attr = owner.attributes["value"]
        if isinstance(attr, ir.DenseElementsAttr) and attr.is_splat:
            return ir.IntegerAttr(attr.get_splat_value()).value == 0
    return False


def _int8_weight(value, weights: WeightTable, channel_axis: int) -> Optional[Dequantize]:
    """The dequantize of `value` when it is a symmetric int8 `ember.weight` quantized per
    channel along `channel_axis` (or per tensor); else None."""
    dq = Dequantize.defining(value)
    if dq is None or Weight.defining(dq.input) is None or \
            str(dq.input.type.element_type) != "i8":
        return None
    if dq.per_channel:
        if dq.axis != channel_axis or Weight.defining(dq.scales) is None or \
                not _zero_constant(dq.zero_points, weights):
            return None
    elif dq.zero_point != 0:
        return None
    return dq


def _weight_matrix(dq: Dequantize, weights: WeightTable):
    """(codes [K, N], scales [N]) of an int8 weight [..., N] seen as a matrix (its leading
    dims flattened into K, a conv filter's [KH, KW, C, F] as [KH*KW*C, F]), built at the
    current insertion point; the reshape is derived in the weights table where needed."""
    weight = Weight.defining(dq.input)
    shape = ir.RankedTensorType(dq.input.type).shape
    k, n = int(np.prod(shape[:-1])), shape[-1]
    name = weight.name if len(shape) == 2 else weights.derive(
        f"{weight.name}.matrix", lambda w: w.reshape(k, n), [weight.name],
        key=("matrix", weight.name))
    codes = Weight.build(ir.RankedTensorType.get([k, n], ir.IntegerType.get_signless(8)),
                         name=name)
    return codes, _channel_scales(dq, weights)


def _channel_scales(dq: Dequantize, weights: WeightTable):
    """The f32 [N] scales of an int8 weight [..., N] (its per-channel scales, or its one scale
    repeated in a derived weight), built at the current insertion point."""
    if dq.per_channel:
        return dq.scales
    weight, scale = Weight.defining(dq.input), dq.scale
    n = ir.RankedTensorType(dq.input.type).shape[-1]
    return Weight.build(ir.RankedTensorType.get([n], ir.F32Type.get()), name=weights.derive(
        f"{weight.name}.scales", lambda: np.full(n, scale, np.float32), [],
        key=("scales", weight.name, scale, n)))


def _codes_of(value) -> Optional[Dequantize]:
    """The per-tensor dequantize producing `value`, if any."""
    dq = Dequantize.defining(value)
    return dq if dq is not None and not dq.per_channel else None


def _encoding_of(codes) -> str:
    """How an int8 kernel may read `codes`: "u7" when they are unsigned and the quantize that
    wrote them (through data movement) kept them below 128, else by their storage."""
    value = codes
    while True:
        mover = Transpose.defining(value) or Reshape.defining(value)
        if mover is None:
            break
        value = mover.input
    q = Quantize.defining(value)
    if unsigned_codes(codes) and q is not None and q.quant_min >= 0 and q.quant_max <= 127:
        return "u7"
    return "u8" if unsigned_codes(codes) else "s8"


@dataclass
class _FoldGemm:
    ctx: PassContext

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        lhs = _codes_of(gemm.lhs)
        if gemm.rhs_panel is not None or gemm.lhs_patches is not None or lhs is None or \
                len(ir.RankedTensorType(gemm.rhs.type).shape) != 2:
            return NOT_APPLIED
        rhs = _int8_weight(gemm.rhs, self.ctx.weights, channel_axis=1)
        if rhs is None:
            return NOT_APPLIED
        with rewriter.ip, op.location:
            codes, scales = _weight_matrix(rhs, self.ctx.weights)
            rewriter.replace_op(op, [QGemm.build(
                lhs.input, codes, scales, gemm.result.type, bias=gemm.bias,
                residual=gemm.residual, activation=gemm.activation, lhs_scale=lhs.scale,
                lhs_zero_point=lhs.zero_point, lhs_encoding=_encoding_of(lhs.input),
                **gemm.result_code_settings())])
        return APPLIED


@dataclass
class _FoldConv:
    """An NHWC conv2d (groups 1) on dequantized codes and an int8 HWIO filter: a qgemm over
    the codes' patches (padded with the zero point), its filter the [KH*KW*C, F] matrix."""
    ctx: PassContext

    def __call__(self, op, rewriter) -> bool:
        conv = Conv2d(op)
        lhs = _codes_of(conv.input)
        if conv.layout != "nhwc" or lhs is None:
            return NOT_APPLIED
        shape = ir.RankedTensorType(conv.input.type).shape
        if any(ir.ShapedType.is_dynamic_size(d) for d in shape[1:]):
            return NOT_APPLIED
        rhs = _int8_weight(conv.filter, self.ctx.weights, channel_axis=3)
        if rhs is None:
            return NOT_APPLIED
        if conv.groups != 1:
            return self._depthwise(conv, lhs, rhs, op, rewriter)
        kh, kw = ir.RankedTensorType(conv.filter.type).shape[:2]
        with rewriter.ip, op.location:
            codes, scales = _weight_matrix(rhs, self.ctx.weights)
            rewriter.replace_op(op, [QGemm.build(
                lhs.input, codes, scales, conv.result.type, bias=conv.bias,
                residual=conv.residual, activation=conv.activation, lhs_scale=lhs.scale,
                lhs_zero_point=lhs.zero_point, lhs_encoding=_encoding_of(lhs.input),
                lhs_patches=[kh, kw, *conv.strides, *conv.dilations, *conv.padding])])
        return APPLIED

    def _depthwise(self, conv: Conv2d, lhs: Dequantize, rhs: Dequantize, op, rewriter) -> bool:
        """groups = C = F: an ember.qdepthwise_conv2d on the codes, its filter [KH, KW, 1, C]
        as [KH, KW, C] (derived in the weights table)."""
        if conv.residual is not None:
            return NOT_APPLIED
        weight = Weight.defining(rhs.input)
        kh, kw, _, c = ir.RankedTensorType(rhs.input.type).shape
        with rewriter.ip, op.location:
            filt = Weight.build(
                ir.RankedTensorType.get([kh, kw, c], ir.IntegerType.get_signless(8)),
                name=self.ctx.weights.derive(f"{weight.name}.depthwise",
                                             lambda w: w.reshape(kh, kw, c), [weight.name],
                                             key=("depthwise", weight.name)))
            rewriter.replace_op(op, [QDepthwiseConv2d.build(
                lhs.input, filt, _channel_scales(rhs, self.ctx.weights), conv.result.type, bias=conv.bias,
                strides=conv.strides, padding=conv.padding, dilations=conv.dilations,
                input_scale=lhs.scale, input_zero_point=lhs.zero_point,
                activation=conv.activation)])
        return APPLIED


@dataclass
class _TransposeCodes:
    """transpose(dequantize(c)) -> dequantize(transpose(c)): layout changes move to the
    bytes (a quarter of the traffic), and the int8 op folds see the codes. A weight's
    transposed copy is derived in the weights table; a per-channel axis follows the
    permutation."""
    ctx: PassContext

    def __call__(self, op, rewriter) -> bool:
        transpose = Transpose(op)
        dq = Dequantize.defining(transpose.input)
        if dq is None:
            return NOT_APPLIED
        perm = transpose.permutation
        codes_type = ir.RankedTensorType(dq.input.type)
        moved = ir.RankedTensorType.get(ir.RankedTensorType(transpose.result.type).shape,
                                        codes_type.element_type)
        weight = Weight.defining(dq.input)
        with rewriter.ip, op.location:
            if weight is not None:
                codes = Weight.build(moved, name=self.ctx.weights.derive(
                    f"{weight.name}.transpose", lambda w: np.transpose(w, perm), [weight.name],
                    key=("transpose", weight.name, tuple(perm))))
            else:
                codes = Transpose.build(dq.input, moved, permutation=perm)
            extra = {"axis": perm.index(dq.axis)} if dq.per_channel else {}
            rewriter.replace_op(op, [dq.rebuild(transpose.result.type, input=codes, **extra)])
        return APPLIED


def _activation_after_residual(op, rewriter) -> bool:
    """unary(qgemm with a residual) -> the qgemm applying it last (output_activation), for the
    activations an epilogue computes, when the unary is the qgemm's only user: a residual
    block's closing ReLU, which then lets its quantize move into the GEMM too."""
    unary = Unary(op)
    qgemm = QGemm.defining(unary.input)
    if qgemm is None or qgemm.residual is None or qgemm.output_activation or \
            qgemm.quantized_result or unary.kind not in ACTIVATIONS or \
            len(list(qgemm.result.uses)) != 1:
        return NOT_APPLIED
    with rewriter.ip, op.location:
        rewriter.replace_op(op, [qgemm.rebuild(qgemm.result.type,
                                               output_activation=unary.kind)])
    return APPLIED


def _epilogue_owner(value):
    """The op computing `value` in an epilogue that can quantize it too: a qgemm, a
    qdepthwise_conv2d, or a layer's f32 GEMM (f32 rows times a weight: a layer left in
    floating point before an int8 one); None for anything else or a result already codes."""
    op = QGemm.defining(value) or QDepthwiseConv2d.defining(value) or Gemm.defining(value)
    if op is None or op.quantized_result:
        return None
    if isinstance(op, Gemm) and not (
            str(op.lhs.type.element_type) == "f32" == str(op.result.type.element_type) and
            Weight.defining(op.rhs) is not None):
        return None
    return op


def _quantize_in_epilogue(op, rewriter) -> bool:
    """quantize(qgemm, qdepthwise_conv2d or f32 GEMM) -> the op writing the codes itself
    (result_scale, result_zero_point, result_range), when the quantize is its only user: the
    tile goes through the epilogue and is quantized in registers, and the f32 result is never
    written."""
    q = Quantize(op)
    owner = _epilogue_owner(q.input)
    if owner is None or len(list(owner.result.uses)) != 1:
        return NOT_APPLIED
    with rewriter.ip, op.location:
        rewriter.replace_op(op, [_writing_codes(owner, q)])
    return APPLIED


def _writing_codes(op, q: Quantize):
    """A copy of `op` (see `_epilogue_owner`) that quantizes its results as quantize `q` does
    and writes the codes."""
    return op.rebuild(q.result.type, result_scale=q.scale, result_zero_point=q.zero_point,
                      result_range=[q.quant_min, q.quant_max])


def _codes_for_residuals(op, rewriter) -> bool:
    """qgemm or f32 GEMM A read by one quantize q and otherwise only as int8 GEMMs'
    residuals -> A writes q's codes; its residual readers get `dequantize(codes)` (which
    `_residual_codes` then moves into them)."""
    a = _epilogue_owner(op.results[0])
    if a is None:
        return NOT_APPLIED
    quantizes, residuals = [], 0
    for use in a.result.uses:
        user = use.owner
        if user.name == Quantize.op_name:
            quantizes.append(user)
        elif user.name == QGemm.op_name and QGemm(user).residual == a.result and \
                list(user.operands).count(a.result) == 1:
            residuals += 1
        else:
            return NOT_APPLIED
    if len(quantizes) != 1 or not residuals:
        return NOT_APPLIED
    q = Quantize(quantizes[0])
    with rewriter.ip, op.location:
        codes = _writing_codes(a, q)
        shortcut = Dequantize.build(codes, a.result.type, scale=q.scale,
                                    zero_point=q.zero_point)
    rewriter.replace_op(q.operation, [codes])
    rewriter.replace_op(op, [shortcut])
    return APPLIED


def _residual_codes(op, rewriter) -> bool:
    """qgemm(.., residual = dequantize(codes) per tensor) -> the qgemm reading the codes
    (residual_scale, residual_zero_point) and dequantizing them in its epilogue."""
    qgemm = QGemm(op)
    dq = None if qgemm.residual is None or qgemm.residual_codes else \
        _codes_of(qgemm.residual)
    if dq is None:
        return NOT_APPLIED
    with rewriter.ip, op.location:
        rewriter.replace_op(op, [qgemm.rebuild(
            qgemm.result.type, residual=dq.input, residual_scale=dq.scale,
            residual_zero_point=dq.zero_point)])
    return APPLIED


def _fold_requantize(op, rewriter) -> bool:
    """quantize(dequantize(c)) -> c when both use c's scale, zero point and full range."""
    q = Quantize(op)
    dq = Dequantize.defining(q.input)
    if dq is None or dq.per_channel or dq.input.type != q.result.type or \
            (dq.scale, dq.zero_point) != (q.scale, q.zero_point):
        return NOT_APPLIED
    if (q.quant_min, q.quant_max) != storage_range(q.result):
        return NOT_APPLIED
    rewriter.replace_op(op, [dq.input])
    return APPLIED


@register
@dataclass
class FoldQuantizedOps(EmberPass):
    """Folds dequantize -> GEMM chains of quantized models into int8 GEMMs (ember.qgemm on the
    codes), and quantize(dequantize(c)) into c."""
    name = "ember-fold-quantized-ops"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Transpose.op_name: [_TransposeCodes(ctx)],
                                Gemm.op_name: [_FoldGemm(ctx), _codes_for_residuals],
                                Conv2d.op_name: [_FoldConv(ctx)],
                                QGemm.op_name: [_codes_for_residuals, _residual_codes],
                                Unary.op_name: [_activation_after_residual],
                                Quantize.op_name: [_fold_requantize, _quantize_in_epilogue]})
