"""MLIR's C-interface memref descriptors, built with ctypes.

The compiled entry point takes `void **args`, one pointer per argument to the struct that MLIR's
`llvm.emit_c_interface` expects for a ranked strided memref:
`{T *allocated; T *aligned; int64_t offset; int64_t sizes[R]; int64_t strides[R];}`
(rank 0 has no size or stride arrays). Strides count elements, row-major contiguous; the code
never frees `allocated`, so both pointers are the buffer's data pointer. The element type is not
in the struct, which is why dtypes are checked before a descriptor is built.
"""
from __future__ import annotations

import ctypes
import functools
from typing import Sequence


@functools.lru_cache(maxsize=None)
def descriptor_type(rank: int) -> type:
    """The ctypes Structure for a rank-`rank` descriptor (one class per rank, shared)."""
    fields = [("allocated", ctypes.c_void_p), ("aligned", ctypes.c_void_p),
              ("offset", ctypes.c_int64)]
    if rank:
        fields += [("sizes", ctypes.c_int64 * rank), ("strides", ctypes.c_int64 * rank)]
    return type(f"MemRefDescriptor{rank}D", (ctypes.Structure,), {"_fields_": fields})


def describe(ptr: int, shape: Sequence[int]) -> ctypes.Structure:
    """A descriptor of the contiguous row-major `shape` starting at address `ptr`."""
    desc = descriptor_type(len(shape))()
    desc.allocated = desc.aligned = ptr
    if shape:
        desc.sizes[:] = shape
        desc.strides[:] = contiguous_strides(shape)
    return desc


def contiguous_strides(shape: Sequence[int]) -> list:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return strides[::-1]


def pack(descriptors: Sequence[ctypes.Structure]) -> ctypes.Array:
    """The `void **args` array pointing at `descriptors` (which the caller keeps alive)."""
    return (ctypes.c_void_p * len(descriptors))(*map(ctypes.addressof, descriptors))
