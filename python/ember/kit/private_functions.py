"""Private kernel functions shared by identical call sites.

Lowerings that outline work into a `func.func` (GEMM kernels, GPU GEMMs) describe each kernel
by a spec attribute; `kernel_function` finds the function already made for that spec and type or
creates it, so a model with many identical GEMMs gets one kernel that a target replaces once.
"""
from __future__ import annotations

import itertools
from typing import Callable

from mlir import ir
from mlir.dialects import func


def kernel_function(module_block, attr: str, spec, fn_type, prefix: str,
                    build_body: Callable) -> str:
    """The name of the private func.func of `module_block` whose `attr` attribute is `spec`
    and whose type is `fn_type`, so that identical kernels share one function. Created on
    first use as `<prefix><i>` (the lowest free i); `build_body(arguments)` emits its body
    and returns the values it returns."""
    names = set()
    for op in module_block.operations:
        if op.operation.name != "func.func":
            continue
        name = ir.StringAttr(op.attributes["sym_name"]).value
        names.add(name)
        if attr in op.attributes and str(op.attributes[attr]) == str(spec) and \
                str(op.attributes["function_type"]) == str(ir.TypeAttr.get(fn_type)):
            return name
    name = next(f"{prefix}{i}" for i in itertools.count() if f"{prefix}{i}" not in names)
    with ir.InsertionPoint(module_block), ir.Location.name(name):
        fn = func.FuncOp(name, fn_type, visibility="private")
        fn.attributes[attr] = spec
        entry = fn.add_entry_block()
        with ir.InsertionPoint(entry):
            func.ReturnOp(list(build_body(entry.arguments)))
    return name


def declare_external(module_block, name: str, fn_type) -> None:
    """Declares external (private, bodiless) function `name` in the module once: a function of
    the C support code that generated code calls."""
    for op in module_block.operations:
        if "sym_name" in op.attributes and ir.StringAttr(op.attributes["sym_name"]).value == name:
            return
    with ir.InsertionPoint.at_block_begin(module_block):
        func.FuncOp(name, fn_type, visibility="private")
