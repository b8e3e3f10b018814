"""ember-quantize: GEMMs on weights become int8 GEMMs (`ember.qgemm`) and embedding tables int8
tables, chosen by a filter.

An `ember.gemm` whose rhs is a constant f32 weight [K, N] (a Linear after ember-fold-constants
folded its transpose, possibly merged with its Q/K/V siblings) is *quantizable*. It is
quantized when `filter` matches its kind or its module path and `exclude` matches neither
(Python `re.search`): the kind is "Linear", the module path is the weight's name up to
".weight" ("encoder.layer.0.attention.self.query"). The weight is
quantized once, here, per output channel (ember.quant.schemes.quantize_weight): the weights
table gains the int8 matrix and its f32 scales and loses the f32 original where nothing else
reads it. The epilogue (bias, activation, residual) moves to the qgemm unchanged; the
activation is quantized per row when the qgemm runs (mode "dynamic").

An `ember.embedding` on a constant f32 table [V, D] (Embedding and EmbeddingBag; kind
"Embedding", the table's module path) gets an int8 table with one symmetric scale per row,
in both modes (static mode's PT2E flow quantizes only Linear and Conv2d): a looked-up row is
dequantized as it is read, so the table is 4x smaller and nothing else changes.

An `ember.attention` (kind "Attention"; it has no module path) is marked `int8`, in both modes:
its two products then run on the int8 kernel with q and the probabilities quantized per row,
k per key and v per channel at run time (lowering/qattention_to_linalg.py).

Mode "weight-only" (ember.quant.WeightOnly) quantizes only the chosen Linear GEMMs, and only
their weights: `rhs_bits`-bit codes with a scale (and offset) per `group_size` rows of K and
column (ember.quant.low_bit.quantize_groups), the lhs, the sums and the epilogue staying f32;
the GEMM remains an `ember.gemm` whose rhs is the codes (`rhs_scale`, `rhs_offset`,
`rhs_bits`, `rhs_group`). A layer with K below the group size gets one group; a 4-bit layer
with an odd K stays f32 (its kernel reads codes in pairs of k). A weight whose parameter came
with user-supplied codes (`WeightOnly(weights=...)`, entries "<param>#codes", "#scale",
"#offset" of the weights table; WeightTable.provided_codes) takes those instead of being
quantized here. Tables and attention are left alone.

Left alone: batched or non-weight rhs other than attention's products, f16/bf16/f64 GEMMs, implicit
im2col GEMMs (convolutions), an rhs already packed, mutable weights. In static mode the GEMMs
are left to the model's own quantize/dequantize ops (ember-fold-quantized-ops).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.dialect.ops import Attention, Embedding, Gemm, QGemm, Weight
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.quant import selects
from ember.quant.low_bit import groups_of, quantize_groups
from ember.quant.schemes import quantize_table, quantize_weight

#: A parameter's name ("fc.weight"), then what ember's passes appended when deriving from it
#: (".transpose", ".merged3", ...).
_PARAMETER = re.compile(r"^(.*?)\.(weight|bias)(\..*)?$")


def module_path(weight_name: str) -> str:
    """The module path a weight belongs to: "encoder.layer.0.fc.weight.transpose.merged3" ->
    "encoder.layer.0.fc" (a constant not named after a parameter is its own path)."""
    match = _PARAMETER.match(weight_name)
    return match.group(1) if match else weight_name


def linear_weight(gemm: Gemm, chosen) -> Optional[Weight]:
    """The f32 weight [K, N] of a GEMM that is a Linear layer's (a plain lhs, the rhs a 2-D
    `ember.weight` not yet packed; an f32 rhs means an f32 GEMM) that `chosen.selects` as kind
    "Linear", or None: what ember-quantize and ember-implicit-precision rewrite."""
    weight = Weight.defining(gemm.rhs)
    rhs_type = ir.RankedTensorType(gemm.rhs.type)
    if weight is None or gemm.rhs_panel is not None or gemm.lhs_patches is not None or \
            rhs_type.rank != 2 or not isinstance(rhs_type.element_type, ir.F32Type) or \
            not chosen.selects("Linear", weight.name):
        return None
    return weight


def _int8_weights(ctx: PassContext, name: str, quantize, suffix: str, shape, scales: int):
    """`ember.weight`s of weight `name` quantized by `quantize` (f32 array -> (int8 codes,
    f32 scales)): the codes `<name>.<suffix>` of `shape` and the scales
    `<name>.<suffix>_scale` [scales], derived once in the weights table."""
    weights = ctx.weights
    codes = weights.derive(f"{name}.{suffix}", lambda w: quantize(w)[0], [name],
                           key=(suffix, name))
    scale = weights.derive(f"{name}.{suffix}_scale", lambda w: quantize(w)[1], [name],
                           key=(f"{suffix}-scale", name))
    return (Weight.build(ir.RankedTensorType.get(list(shape), ir.IntegerType.get_signless(8)),
                         name=codes),
            Weight.build(ir.RankedTensorType.get([scales], ir.F32Type.get()), name=scale))


@dataclass
class _QuantizePattern:
    ctx: PassContext
    chosen: "Quantize"

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        weight = linear_weight(gemm, self.chosen)
        if weight is None:
            return NOT_APPLIED
        k, n = ir.RankedTensorType(gemm.rhs.type).shape
        if k == 0:
            return NOT_APPLIED
        with rewriter.ip, op.location:
            q, scale = _int8_weights(self.ctx, weight.name, quantize_weight, "int8", [k, n], n)
            rewriter.replace_op(op, [QGemm.build(
                gemm.lhs, q, scale, gemm.result.type, bias=gemm.bias, residual=gemm.residual,
                activation=gemm.activation, **gemm.result_code_settings())])
        return APPLIED


@dataclass
class _LowBitWeightPattern:
    ctx: PassContext
    chosen: "Quantize"

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        weight = linear_weight(gemm, self.chosen)
        if weight is None:
            return NOT_APPLIED
        k, n = ir.RankedTensorType(gemm.rhs.type).shape
        bits, symmetric = self.chosen.bits, self.chosen.symmetric
        if k == 0 or (bits == 4 and k % 2):
            return NOT_APPLIED
        group = min(self.chosen.group_size, k)
        provided = self.ctx.weights.provided_codes(weight.name)
        tag = f"w{bits}{'p' if provided else 's' if symmetric else 'a'}g{group}"
        quantized = {}          # codes, scales and offsets come from one quantization

        def part(i):
            def derive(w):
                if not quantized:
                    quantized["parts"] = provided or quantize_groups(w, bits, group, symmetric)
                return quantized["parts"][i]
            return derive
        with_offsets = provided[2] is not None if provided else not (symmetric and bits == 8)
        names = [self.ctx.weights.derive(f"{weight.name}.{tag}{suffix}", part(i), [weight.name],
                                         key=(tag, suffix, weight.name))
                 for i, suffix in enumerate(("", "_scale", "_offset"))
                 if i < 2 or with_offsets]
        groups = [groups_of(k, group), n]
        f32 = ir.F32Type.get()
        with rewriter.ip, op.location:
            codes = Weight.build(ir.RankedTensorType.get([k, n], ir.IntegerType.get_signless(8)),
                                 name=names[0])
            scale, *offset = [Weight.build(ir.RankedTensorType.get(groups, f32), name=name)
                              for name in names[1:]]
            rewriter.replace_op(op, [gemm.rebuild(
                gemm.result.type, rhs=codes, rhs_scale=scale,
                rhs_offset=offset[0] if offset else None, rhs_bits=bits, rhs_group=group)])
        return APPLIED


@dataclass
class _QuantizeTablePattern:
    ctx: PassContext
    chosen: "Quantize"

    def __call__(self, op, rewriter) -> bool:
        lookup = Embedding(op)
        table = Weight.defining(lookup.table)
        table_type = ir.RankedTensorType(lookup.table.type)
        if table is None or lookup.scales is not None or \
                not isinstance(table_type.element_type, ir.F32Type) or \
                not self.chosen.selects("Embedding", table.name):
            return NOT_APPLIED
        rows, _ = table_type.shape
        with rewriter.ip, op.location:
            q, scales = _int8_weights(self.ctx, table.name, quantize_table, "int8_rows",
                                      table_type.shape, rows)
            rewriter.replace_op(op, [Embedding.build(q, lookup.indices, lookup.result.type,
                                                     scales=scales)])
        return APPLIED


@dataclass
class _QuantizeAttentionPattern:
    chosen: "Quantize"

    def __call__(self, op, rewriter) -> bool:
        attention = Attention(op)
        if attention.int8 or not self.chosen.selects("Attention", ""):
            return NOT_APPLIED
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [attention.rebuild(attention.result.type, int8=True)])
        return APPLIED


@register
@dataclass
class Quantize(EmberPass):
    """Replaces GEMMs on f32 weights (dynamic mode) and embedding tables (dynamic and static
    modes), chosen by filter/exclude, with int8 GEMMs (ember.qgemm) and int8 tables, and marks
    attention's products int8; or gives the chosen GEMMs low-bit weights (weight-only mode)."""
    name = "ember-quantize"
    #: "dynamic": GEMM activations quantized per row at run time; "static": the model's own
    #: quantize/dequantize ops carry its GEMMs (PT2E), this pass quantizes only the tables;
    #: "weight-only": Linear weights as int8/int4 codes with group scales, nothing else.
    mode: str = "dynamic"
    #: weight-only: the codes' width, 8 or 4.
    bits: int = 4
    #: weight-only: rows of K per scale (even).
    group_size: int = 128
    #: weight-only: codes centred on 0 without an offset (int8), or zero point 8 (int4);
    #: false: each group's [min, max] with its zero point.
    symmetric: bool = False
    #: Regular expression over op kinds ("Linear") and module paths: what to quantize.
    filter: str = ".*"
    #: Regular expression over the same names: what to keep in floating point.
    exclude: str = ""

    def selects(self, kind: str, weight_name: str) -> bool:
        return selects(self.filter, self.exclude, kind, module_path(weight_name))

    def run(self, module, ctx: PassContext) -> None:
        if self.mode not in ("dynamic", "static", "weight-only"):
            raise ValueError(f"ember-quantize: mode must be 'dynamic', 'static' or "
                             f"'weight-only', got {self.mode!r}")
        if self.mode == "weight-only" and (self.bits not in (4, 8) or self.group_size < 2 or
                                           self.group_size % 2):
            raise ValueError(f"ember-quantize: weight-only mode takes bits 8 or 4 and an even "
                             f"group-size >= 2, got bits={self.bits} "
                             f"group-size={self.group_size}")
        for what in (self.filter, self.exclude):
            re.compile(what)
        if self.mode == "weight-only":
            apply_patterns(module, {Gemm.op_name: [_LowBitWeightPattern(ctx, self)]})
            return
        patterns = {Embedding.op_name: [_QuantizeTablePattern(ctx, self)],
                    Attention.op_name: [_QuantizeAttentionPattern(self)]}
        if self.mode == "dynamic":
            patterns[Gemm.op_name] = [_QuantizePattern(ctx, self)]
        apply_patterns(module, patterns)
