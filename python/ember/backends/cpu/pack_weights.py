"""ember-pack-weights: stores GEMM weights in the CPU micro-kernel's panel layout.

An `ember.gemm` whose rhs is an `ember.weight` [K, N] (after ember-fold-constants has folded
`linear`'s transpose) gets, in its place, a weight [ceil(N/NR), K, NR] holding the same matrix in
NR-column panels (zero-padded past N; see `ember.kit.packed_panels`) and the
attribute `rhs_panel = NR`. The packing is done once, at compile time, on the weights table
(`WeightTable.derive`), so the artifact stores the weight packed and no run-time code ever
transposes or packs it. On an abstract table the IR is rewritten the same way and the packed
entry is left without data. GEMMs with a non-weight rhs, a batched rhs, an element type other than
f32, or an rhs already packed are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.backends.cpu.gemm_schedule import default_panel
from ember.backends.cpu.microkernel import CpuTraits
from ember.dialect.ops import Gemm, Weight
from ember.kit.packed_panels import pack_panels, packed_shape
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register


@dataclass
class _PackPattern:
    ctx: PassContext
    panel: int

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        if gemm.rhs_panel is not None:
            return NOT_APPLIED
        weight = Weight.defining(gemm.rhs)
        rhs_type = ir.RankedTensorType(gemm.rhs.type)
        if weight is None or rhs_type.rank != 2 or \
                not isinstance(rhs_type.element_type, ir.F32Type):
            return NOT_APPLIED
        k, n = rhs_type.shape
        if k == 0:                          # an empty product: the linalg reference is just
            return NOT_APPLIED              # the epilogue on zeros, no kernel needed
        nr = self.panel
        name = self.ctx.weights.derive(f"{weight.name}.packed{nr}",
                                       lambda w: pack_panels(w, nr), [weight.name])
        packed_type = ir.RankedTensorType.get(packed_shape(k, n, nr), rhs_type.element_type)
        with rewriter.ip, op.location:
            packed = Weight.build(packed_type, name=name)
            rewriter.replace_op(op, [gemm.rebuild(gemm.result.type, rhs=packed, rhs_panel=nr)])
        return APPLIED


@register
@dataclass
class PackWeights(EmberPass):
    """Packs GEMM weight operands into the CPU micro-kernel's NR-column panel layout."""
    name = "ember-pack-weights"
    #: Panel width NR (columns); 0 means the target's (two vector registers of f32).
    panel: int = 0

    def run(self, module, ctx: PassContext) -> None:
        nr = self.panel or \
            default_panel(CpuTraits.from_target(ctx.require_target(self.name)))
        if nr <= 0:
            raise ValueError(f"ember-pack-weights: panel must be positive, got {nr}")
        apply_patterns(module, {Gemm.op_name: [_PackPattern(ctx, nr)]})
