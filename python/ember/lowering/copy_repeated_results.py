"""ember-copy-repeated-results: a tensor returned twice gets its own copy for each extra return.

MLIR 22's buffer-results-to-out-params{hoist-static-allocs} crashes (segfault) when one
allocation is returned twice (`return %y, %y`, e.g. after CSE of identical outputs); every
target bufferizes its results into out-parameters, so every target runs this first."""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.dialects import bufferization

from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register


@register
@dataclass
class CopyRepeatedResults(EmberPass):
    """Returns a copy for each repeated tensor result of a function (bufferization.alloc_tensor)."""
    name = "ember-copy-repeated-results"

    def run(self, module, ctx: PassContext) -> None:
        for ret in walk_ops(module.operation, ["func.return"]):
            seen = []
            for i, value in enumerate(list(ret.operands)):
                if not isinstance(value.type, ir.RankedTensorType):
                    continue
                if any(value == other for other in seen):
                    with ir.InsertionPoint(ret), ret.location:
                        ret.operands[i] = bufferization.AllocTensorOp(value.type, [],
                                                                      copy=value).result
                else:
                    seen.append(value)
