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
[.., M, K] x [K, N] product (no packed or im2col operand). Anything else keeps its fp32 form,
which computes exactly what the model states.

`quantize(dequantize(c))` with the same parameters and storage is `c` and is folded too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from mlir import ir

from ember.dialect.ops import Dequantize, Gemm, QGemm, Quantize, Transpose, Weight
from ember.dialect.ops.quantization import storage_range
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


@dataclass
class _Int8Weight:
    """An int8 weight as a qgemm reads it: the codes [K, N] and their scales [N]."""
    codes: ir.Value
    scales: ir.Value


def _int8_weight(rhs, weights: WeightTable) -> Optional[Tuple[Weight, Dequantize, bool]]:
    """(int8 weight, its dequantize, whether the weight is stored [N, K]) when `rhs` is a
    symmetric int8 weight dequantized (per output channel or per tensor), possibly
    transposed; else None."""
    transpose = Transpose.defining(rhs)
    transposed = transpose is not None
    if transposed:
        if transpose.permutation != [1, 0]:
            return None
        rhs = transpose.input
    dq = Dequantize.defining(rhs)
    weight = Weight.defining(dq.input) if dq is not None else None
    if weight is None or str(dq.input.type.element_type) != "i8" or \
            len(ir.RankedTensorType(dq.input.type).shape) != 2:
        return None
    if dq.per_channel:
        if dq.axis != (0 if transposed else 1) or Weight.defining(dq.scales) is None or \
                not _zero_constant(dq.zero_points, weights):
            return None
    elif dq.zero_point != 0:
        return None
    return weight, dq, transposed


def _materialize(weight: Weight, dq: Dequantize, transposed: bool,
                 weights: WeightTable) -> _Int8Weight:
    """The codes [K, N] and scales [N] as weights (derived in the table where the model
    stores them otherwise), built at the current insertion point."""
    k, n = ir.RankedTensorType(weight.result.type).shape[::-1] if transposed else \
        ir.RankedTensorType(weight.result.type).shape
    name = weight.name
    if transposed:
        name = weights.derive(f"{weight.name}.transpose", np.transpose, [weight.name],
                              key=("transpose", weight.name))
    codes = Weight.build(ir.RankedTensorType.get([k, n], ir.IntegerType.get_signless(8)),
                         name=name)
    if dq.per_channel:
        scales = dq.scales
    else:
        scale = dq.scale
        scales = Weight.build(ir.RankedTensorType.get([n], ir.F32Type.get()), name=weights.derive(
            f"{weight.name}.scales", lambda: np.full(n, scale, np.float32), [],
            key=("scales", weight.name, scale, n)))
    return _Int8Weight(codes, scales)


@dataclass
class _FoldGemm:
    ctx: PassContext

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        lhs = Dequantize.defining(gemm.lhs)
        if gemm.rhs_panel is not None or gemm.lhs_patches is not None or lhs is None or \
                lhs.per_channel or len(ir.RankedTensorType(gemm.rhs.type).shape) != 2:
            return NOT_APPLIED
        found = _int8_weight(gemm.rhs, self.ctx.weights)
        if found is None:
            return NOT_APPLIED
        with rewriter.ip, op.location:
            weight = _materialize(*found, self.ctx.weights)
            rewriter.replace_op(op, [QGemm.build(
                lhs.input, weight.codes, weight.scales, gemm.result.type, bias=gemm.bias,
                residual=gemm.residual, activation=gemm.activation, lhs_scale=lhs.scale,
                lhs_zero_point=lhs.zero_point)])
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
        apply_patterns(module, {Gemm.op_name: [_FoldGemm(ctx)],
                                Quantize.op_name: [_fold_requantize]})
