"""ember: an ahead-of-time inference compiler for PyTorch models, built on MLIR.

    compiled = ember.compile(model, example_inputs, target="host")
    compiled(x)                      # like the module
    compiled.save("mlp.ember")       # an artifact directory
    model = ember.load("mlp.ember")  # the runtime Model (AITemplate-style API)

Heavy dependencies (torch, torch-mlir, the MLIR bindings) load on first use, so the runtime and
the tools start quickly.
"""
from __future__ import annotations

from ember._version import __version__

__all__ = ["compile", "explain", "load", "CompileOptions", "CompiledModel", "CompileError",
           "__version__"]


def __getattr__(name):
    if name in ("compile", "explain", "CompileOptions", "CompiledModel"):
        from ember import compiler
        return getattr(compiler, name)
    if name == "CompileError":
        from ember.isolation import CompileError
        return CompileError
    if name == "quant":         # ember.quant.Int8(), ember.quant.WeightOnly()
        import importlib
        return importlib.import_module("ember.quant")
    if name == "load":
        from ember.runtime import load
        return load
    raise AttributeError(name)
