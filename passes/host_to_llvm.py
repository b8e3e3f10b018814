"""ember-host-to-llvm: the host CPU pipeline from linalg-on-tensors down to the LLVM dialect.

Bufferizes (results become caller-provided out-parameters, so the runtime owns every output
buffer and no result is allocated for the caller), lowers structured ops to loops, and converts
everything to the LLVM dialect with C-interface wrappers (`_mlir_ciface_<fn>`) on public
functions, which the artifact's entry stub calls. Expects ember.weight to be bound already.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.passmanager import PassManager

from .base import EmberPass, PassContext, register
from .patterns import walk_ops

#: Upstream passes, in order (verified on MLIR 22.1.8; see DESIGN.md section 3).
BUFFERIZE = (
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map}",
    "buffer-results-to-out-params{hoist-static-allocs modify-public-functions}",
    "buffer-deallocation-pipeline",
)
TO_LOOPS = ("func.func(convert-linalg-to-loops)",)
TO_LLVM = (
    "convert-bufferization-to-memref",
    "convert-scf-to-cf",
    "expand-strided-metadata",
    "lower-affine",
    "finalize-memref-to-llvm",
    "convert-math-to-llvm",
    "convert-math-to-libm",
    "convert-arith-to-llvm",
    "convert-cf-to-llvm",
    "convert-func-to-llvm",
    "convert-index-to-llvm",
    "convert-ub-to-llvm",
    "reconcile-unrealized-casts",
)


def mark_c_interface(module) -> None:
    """Asks func-to-llvm for `_mlir_ciface_` wrappers on every public function."""
    for fn in walk_ops(module.operation, ["func.func"]):
        visibility = fn.attributes["sym_visibility"] if "sym_visibility" in fn.attributes else None
        if fn.regions[0].blocks and (visibility is None or
                                     ir.StringAttr(visibility).value == "public"):
            fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()


@register
@dataclass
class HostToLLVM(EmberPass):
    """Lowers bound linalg-on-tensors code to the LLVM dialect for the host CPU."""
    name = "ember-host-to-llvm"

    def run(self, module, ctx: PassContext) -> None:
        mark_c_interface(module)
        text = ",".join(BUFFERIZE + TO_LOOPS + TO_LLVM)
        PassManager.parse(f"builtin.module({text})").run(module.operation)
