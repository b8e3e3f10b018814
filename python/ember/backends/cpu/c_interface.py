"""ember-mark-c-interface: asks convert-func-to-llvm for `_mlir_ciface_<fn>` wrappers.

The library's entry stub (backends/cpu/target.py) calls the model through the C interface,
which takes each memref as one descriptor pointer."""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register


@register
@dataclass
class MarkCInterface(EmberPass):
    """Marks every public function with a body for C-interface wrappers (llvm.emit_c_interface)."""
    name = "ember-mark-c-interface"

    def run(self, module, ctx: PassContext) -> None:
        for fn in walk_ops(module.operation, ["func.func"]):
            visibility = fn.attributes["sym_visibility"] \
                if "sym_visibility" in fn.attributes else None
            if fn.regions[0].blocks and (visibility is None or
                                         ir.StringAttr(visibility).value == "public"):
                fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
