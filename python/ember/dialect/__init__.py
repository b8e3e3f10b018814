"""The ember dialect: its op table, and loading it into an MLIR context of either build.

Each op is declared once, as a class in `ember.dialect.ops` (operands, attributes with their
allowed values, doc, semantic rule); the IRDL loaded here, the builders (`Gemm.build`), the
typed views (`Gemm(op).bias`), the verifier and the op reference README.md are derived from it.
This package loads the dialect into the compiler's `mlir` context or torch-mlir's (whose `ir`
module is passed in) and re-exports the enum vocabularies every later stage shares. It must not
import torch or torch_mlir.
"""
from __future__ import annotations

from ember.dialect.enums import (ACTIVATIONS, BINARY_KINDS, CONV_LAYOUTS, POOL_KINDS,
                                 REDUCE_KINDS, UNARY_KINDS)
from ember.dialect.irdl_text import irdl_source

__all__ = ["ACTIVATIONS", "BINARY_KINDS", "CONV_LAYOUTS", "POOL_KINDS", "REDUCE_KINDS",
           "UNARY_KINDS", "irdl_source", "load", "new_context"]


def load(context, ir_module=None, irdl_module=None) -> None:
    """Registers the ember dialect in `context`.

    `ir_module`/`irdl_module` default to the compiler's `mlir.ir` / `mlir.dialects.irdl`; the
    frontend passes torch-mlir's so the same definition serves both builds. Loading twice into
    one context is a no-op.
    """
    if ir_module is None:
        from mlir import ir as ir_module
        from mlir.dialects import irdl as irdl_module
    marker = "_ember_dialect_loaded"
    if getattr(context, marker, False):
        return
    with context, ir_module.Location.unknown():
        definition = ir_module.Module.parse(irdl_source())
        irdl_module.load_dialects(definition)
    # The definition module must outlive the context's use of the dialect.
    setattr(context, marker, True)
    setattr(context, "_ember_irdl_module", definition)


def new_context():
    """A compiler context with the ember dialect loaded."""
    from mlir import ir
    context = ir.Context()
    load(context)
    return context
