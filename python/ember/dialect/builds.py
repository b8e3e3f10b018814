"""Which of the two MLIR builds an object belongs to.

The frontend builds ember ops in torch-mlir's context and every later stage in the compiler's
`mlir` 22; the dialect's code serves both by asking each value, type or op for the native `ir`
module it came from instead of importing one.
"""
from __future__ import annotations

import sys


def ir_of(obj):
    """The native `ir` module (of either MLIR build) that `obj` (a value, type, attribute or op)
    belongs to."""
    return sys.modules[type(obj).__module__]
