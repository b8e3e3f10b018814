"""ember-reassociate-reductions: lets LLVM vectorize reduction loops.

Marks the float arithmetic inside reducing linalg ops `fastmath<reassoc, contract>`: a strict
left-to-right f32 sum runs one add per FMA latency (~4 cycles per element). The sum is then
taken in vector-lane partial sums, as every BLAS and PyTorch do; the result differs from the
strict order by rounding only."""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register

#: Float ops whose reassociation (and contraction into FMA) is allowed in reduction bodies.
REASSOCIABLE = ("arith.addf", "arith.mulf", "arith.subf", "arith.maximumf", "arith.minimumf")


@register
@dataclass
class ReassociateReductions(EmberPass):
    """Allows reassociation (fastmath reassoc, contract) in the bodies of reducing linalg ops."""
    name = "ember-reassociate-reductions"

    def run(self, module, ctx: PassContext) -> None:
        flags = ir.Attribute.parse("#arith.fastmath<reassoc,contract>")
        for op in walk_ops(module.operation, ["linalg.generic"]):
            iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
            if not any("reduction" in it for it in iterators):
                continue
            for inner in walk_ops(op, REASSOCIABLE):
                inner.attributes["fastmath"] = flags
