"""ember-label-kernels: numbers the steps of the model so that the code made from each can be
timed (ember-time-kernels) and a profile's rows named after them.

Every op of the public function that is a step of the program (`program_steps`: the same ops,
in the same order, as `ember explain` numbers) gets its location wrapped in a name,
`loc("ember.kernel.7"(<its location>))`. Lowering keeps an op's location on everything made
from it (linalg ops, loops, kernel calls, copies), so after code generation the label still
tells which step an op belongs to; the source line and aten op inside are left as they were.
Run last in the graph stage (a profile build), after every pass that fuses or splits ops; run
again, it numbers the steps afresh."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.kit.ir_queries import program_steps, public_function
from ember.pipeline.pass_base import EmberPass, PassContext, register

#: The name a label gives a location, and how to read it back from a location's text.
LABEL_PREFIX = "ember.kernel."
_LABEL = re.compile(r'"ember\.kernel\.(\d+)"\(')


def kernel_label(location) -> Optional[int]:
    """The step number a location was labelled with (the outermost label), or None."""
    found = _LABEL.search(str(location))
    return int(found.group(1)) if found else None


@register
@dataclass
class LabelKernels(EmberPass):
    """Labels each step of the model (`loc("ember.kernel.N"(...))`) for per-kernel timing."""
    name = "ember-label-kernels"

    def run(self, module, ctx: PassContext) -> None:
        fn = public_function(module)
        if fn is None:
            return
        for number, op in enumerate(program_steps(fn)):
            location = op.location
            if location.is_a_name() and location.name_str.startswith(LABEL_PREFIX):
                location = location.child_loc       # labelled before: numbered again
            op.location = ir.Location.name(f"{LABEL_PREFIX}{number}", childLoc=location,
                                           context=op.context)
