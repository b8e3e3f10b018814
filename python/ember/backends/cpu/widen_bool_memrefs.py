"""ember-widen-bool-memrefs: store booleans as bytes, so code with i1 buffers reaches LLVM.

MLIR 22's memref-to-LLVM lowering rejects memrefs of sub-byte elements (an assertion in its
load/store patterns, which kills the process). Boolean tensors are common in models (masks,
comparisons feeding `torch.where`), and bufferization turns each one into a `memref<...xi1>`.
This pass runs after bufferization and the lowering of linalg to loops, when only scalar
memref.load/store touch elements: every `memref<...xi1>` becomes `memref<...xi8>` (values,
function signatures, globals), loads are followed by `arith.trunci` and stores preceded by
`arith.extui`. A byte per boolean is also numpy's and PyTorch's layout, so function arguments
keep their ABI. It must not run while linalg (or vector) ops still read i1 buffers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import arith

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import walk_ops


def _widened(t):
    """The i8 counterpart of an i1 memref type, or None for any other type."""
    i1 = ir.IntegerType.get_signless(1)
    i8 = ir.IntegerType.get_signless(8)
    if isinstance(t, ir.MemRefType) and t.element_type == i1:
        return ir.MemRefType.get(t.shape, i8, t.layout, t.memory_space)
    if isinstance(t, ir.UnrankedMemRefType) and t.element_type == i1:
        return ir.UnrankedMemRefType.get(i8, t.memory_space)
    return None


def _widen_value(value) -> None:
    new = _widened(value.type)
    if new is not None:
        value.set_type(new)


def _widen_global(op) -> None:
    """memref.global of i1: its type and initial value become i8."""
    t = ir.TypeAttr(op.attributes["type"]).value
    new = _widened(t)
    if new is None:
        return
    op.attributes["type"] = ir.TypeAttr.get(new)
    old = op.attributes["initial_value"] if "initial_value" in op.attributes else None
    if isinstance(old, ir.DenseIntElementsAttr):
        shape = list(ir.MemRefType(new).shape)
        tensor_type = ir.RankedTensorType.get(shape, ir.IntegerType.get_signless(8))
        values = [old[0]] * int(np.prod(shape)) if old.is_splat else list(old)
        data = np.array([1 if v else 0 for v in values], dtype=np.int8).reshape(shape)
        op.attributes["initial_value"] = ir.DenseElementsAttr.get(data, type=tensor_type)


def _retype_function(fn) -> None:
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    inputs = [_widened(t) or t for t in fn_type.inputs]
    results = [_widened(t) or t for t in fn_type.results]
    fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(inputs, results))


def widen_bool_memrefs(module) -> None:
    """Rewrites every i1 memref in `module` to i8 (see the module docstring)."""
    i1 = ir.IntegerType.get_signless(1)
    i8 = ir.IntegerType.get_signless(8)
    for op in walk_ops(module.operation):
        for region in op.regions:
            for block in region.blocks:
                for arg in block.arguments:
                    _widen_value(arg)
        name = op.name
        if name == "memref.load" and op.results[0].type == i1:
            loaded = op.results[0]
            loaded.set_type(i8)
            with ir.InsertionPoint.after(op), op.location:
                narrow = arith.trunci(i1, loaded)
            loaded.replace_all_uses_except(narrow, narrow.owner.operation)
            continue
        if name == "memref.store" and op.operands[0].type == i1:
            with ir.InsertionPoint(op), op.location:
                op.operands[0] = arith.extui(i8, op.operands[0])
        if name == "memref.global":
            _widen_global(op)
        elif name in ("func.func", "llvm.func") and "function_type" in op.attributes:
            _retype_function(op)
        for result in op.results:
            _widen_value(result)


@register
@dataclass
class WidenBoolMemrefs(EmberPass):
    """Stores booleans as bytes: i1 memrefs become i8 (after linalg is lowered to loops)."""
    name = "ember-widen-bool-memrefs"

    def run(self, module, ctx: PassContext) -> None:
        widen_bool_memrefs(module)
