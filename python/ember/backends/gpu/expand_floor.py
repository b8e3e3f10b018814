"""ember-rocdl-expand-floor: f32 math.floor -> arith, before convert-gpu-to-rocdl.

convert-gpu-to-rocdl would call __ocml_floor_f32 (it marks the LLVM intrinsic illegal), and
ember's ROCm kernels link no device library."""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith
from mlir.dialects import math as mmath

from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register


@register
@dataclass
class ExpandFloor(EmberPass):
    """Rewrites f32 math.floor into arith (exact: floats of magnitude >= 2^23 are integers)."""
    name = "ember-rocdl-expand-floor"

    def run(self, module, ctx: PassContext) -> None:
        f32 = ir.F32Type.get()
        for op in walk_ops(module.operation, ["math.floor"]):
            x = op.operands[0]
            if x.type != f32:
                continue
            with ir.InsertionPoint(op), op.location:
                t = arith.sitofp(f32, arith.fptosi(ir.IntegerType.get_signless(32), x))
                down = arith.select(arith.cmpf(arith.CmpFPredicate.OGT, t, x),
                                    arith.subf(t, arith.constant(f32, 1.0)), t)
                small = arith.cmpf(arith.CmpFPredicate.OLT, mmath.absf(x),
                                   arith.constant(f32, 2.0 ** 23))
                op.results[0].replace_all_uses_with(arith.select(small, down, x))
            op.erase()
