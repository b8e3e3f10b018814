"""ember-mark-kernel-destinations: GEMM kernel functions write their destination in place.

Inputs of GEMM kernel functions are read-only and their last argument, the destination, is
writable, whatever an earlier pass marked: that is what lets one-shot bufferization write the
caller's buffer in place instead of copying it."""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.kit.gemm_kernel_spec import kernel_functions
from ember.pipeline.pass_base import EmberPass, PassContext, register


@register
@dataclass
class MarkKernelDestinations(EmberPass):
    """Marks GEMM kernel arguments read-only except the destination (bufferization.writable)."""
    name = "ember-mark-kernel-destinations"

    def run(self, module, ctx: PassContext) -> None:
        for fn in kernel_functions(module):
            count = len(fn.regions[0].blocks[0].arguments)
            attrs = [ir.DictAttr.get({"bufferization.writable": ir.BoolAttr.get(i == count - 1)})
                     for i in range(count)]
            fn.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)
