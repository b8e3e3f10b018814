"""Memref views: the ops whose result names (part of) operand 0's buffer without moving data.

Whoever reasons about buffers follows them: forward to find every use of a buffer
(ember-plan-buffers: a buffer is live until the last use of any view of it), backward to find
the buffer a value names (the GPU row kernels' race rules, the launch plan's buffer names).
"""
from __future__ import annotations

from mlir import ir

#: Every memref op whose memref result aliases its operand 0: subviews, reshapes of any kind
#: (expand_shape, collapse_shape, reshape), casts (cast, reinterpret_cast), transposes, and
#: `memref.view` (a typed view of a byte buffer, as ember-plan-buffers makes of its arena).
VIEW_OPS = frozenset({"memref.subview", "memref.expand_shape", "memref.collapse_shape",
                      "memref.reshape", "memref.cast", "memref.reinterpret_cast",
                      "memref.transpose", "memref.view"})


def viewed_buffer(value):
    """The buffer a memref value views: back through VIEW_OPS to the first value not made by
    one (the value itself when it is a buffer)."""
    while isinstance(value.owner, ir.OpView) and value.owner.operation.name in VIEW_OPS:
        value = value.owner.operands[0]
    return value
