"""ember-implicit-precision: an fp32 model's chosen Linear layers run from 16-bit weights.

Ampere's optimized PyTorch calls it the implicit FP16 transform (AIO_IMPLICIT_FP16_TRANSFORM_
FILTER): the user keeps an fp32 model, and the compiler stores the chosen layers' weights in
16 bits. Here an `ember.gemm` on a constant f32 weight [K, N] whose kind ("Linear") or module
path matches `filter` (and not `exclude`; the rule of ember.quant.Int8's filter) gets its weight
rounded once, at compile time, to `precision` (bf16 or f16, round to nearest even): the weights
table gains `<name>.bf16` and drops the f32 original where nothing else reads it, so the
artifact's weights and the GEMM's weight traffic halve. The activations, the sums (f32, in
registers: the kernel widens each weight vector as it reads it), the epilogue and everything
outside the GEMMs (LayerNorm and softmax statistics among them) stay f32.

Left alone: GEMMs on run-time operands (attention's products), convolutions (implicit im2col
GEMMs), batched or packed weights, GEMMs that are not f32, and layers the filter leaves out.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.dialect.ops import Gemm, Weight
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.quant import selects
from ember.transforms.quantize import linear_weight, module_path

#: precision option -> (MLIR element type, numpy dtype name; bfloat16 is ml_dtypes').
PRECISIONS = {"bf16": ("bf16", "bfloat16"), "f16": ("f16", "float16")}


def _rounded(dtype_name: str):
    def convert(w):
        if dtype_name == "bfloat16":
            import ml_dtypes
            return w.astype(ml_dtypes.bfloat16)
        return w.astype(dtype_name)
    return convert


@dataclass
class _SixteenBitWeight:
    ctx: PassContext
    chosen: "ImplicitPrecision"

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        weight = linear_weight(gemm, self.chosen)
        if weight is None:
            return NOT_APPLIED
        rhs_type = ir.RankedTensorType(gemm.rhs.type)
        element, dtype_name = PRECISIONS[self.chosen.precision]
        name = self.ctx.weights.derive(f"{weight.name}.{element}", _rounded(dtype_name),
                                       [weight.name], key=(element, weight.name))
        with rewriter.ip, op.location:
            narrow = Weight.build(ir.RankedTensorType.get(rhs_type.shape,
                                                          ir.Type.parse(element)), name=name)
            rewriter.replace_op(op, [gemm.rebuild(gemm.result.type, rhs=narrow)])
        return APPLIED


@register
@dataclass
class ImplicitPrecision(EmberPass):
    """Stores the f32 weights of the GEMMs that filter/exclude choose in bf16 or f16 (sums,
    activations and the rest of the model stay f32)."""
    name = "ember-implicit-precision"
    #: The weights' 16-bit type: "bf16" or "f16".
    precision: str = "bf16"
    #: Regular expression over op kinds ("Linear") and module paths: which layers.
    filter: str = ".*"
    #: Regular expression over the same names: which layers keep f32 weights.
    exclude: str = ""

    def selects(self, kind: str, weight_name: str) -> bool:
        return selects(self.filter, self.exclude, kind, module_path(weight_name))

    def run(self, module, ctx: PassContext) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"ember-implicit-precision: precision must be one of "
                             f"{sorted(PRECISIONS)}, got {self.precision!r}")
        apply_patterns(module, {Gemm.op_name: [_SixteenBitWeight(ctx, self)]})
