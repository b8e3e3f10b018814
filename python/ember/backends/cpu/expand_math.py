"""ember-expand-math: f32 exp and tanh left in loop bodies become polynomials.

Softmax, LayerNorm-free activations and the like keep `math.exp` / `math.tanh` in linalg bodies;
as libm calls their loops would not vectorize (one call per element). The polynomials are
ember.kit.vector_math's, the same the GEMM epilogues use."""
from __future__ import annotations

from dataclasses import dataclass

from ember.kit.vector_math import expand_math
from ember.pipeline.pass_base import EmberPass, PassContext, register


@register
@dataclass
class ExpandMath(EmberPass):
    """Expands f32 math.exp and math.tanh into vectorizable polynomials."""
    name = "ember-expand-math"

    def run(self, module, ctx: PassContext) -> None:
        expand_math(module.operation)
