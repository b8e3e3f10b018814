"""The ember dialect: loading its IRDL definition, its vocabulary, builders and verifier.

The op definitions live in `ember.irdl.mlir` (one source of truth). This package loads them into
an MLIR context of either build (the compiler's `mlir` package or torch-mlir's, whose `ir` module
is passed in), and holds the tables every later stage shares: which activations, unary and
binary kinds exist (declared in enums.py). It must not import torch or torch_mlir.
"""
from __future__ import annotations

from importlib import resources

from ember.dialect.enums import (ACTIVATIONS, BINARY_KINDS, CONV_LAYOUTS, POOL_KINDS,  # noqa: F401
                                 REDUCE_KINDS, UNARY_KINDS)


def irdl_source() -> str:
    """The text of the dialect's IRDL definition."""
    return resources.files(__package__).joinpath("ember.irdl.mlir").read_text()


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
