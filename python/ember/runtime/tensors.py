"""Numpy arrays and torch tensors as raw buffers for the compiled code.

The compiled code sees only a pointer and the sizes in a descriptor, so this is where anything
that would make that pointer wrong is caught: the wrong kind of object, dtype, device, layout,
alignment or a read-only output. Inputs that are merely non-contiguous are copied (correctness
first; the copy is the caller's cost); outputs must be written in place, so they raise instead.
torch is optional: a tensor can only exist if torch is imported, so it is never imported here.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from ember.runtime.errors import ArgumentError, ArgumentTypeError
from ember.tensor_spec import TensorSpec, numpy_dtype


@dataclass(frozen=True)
class Buffer:
    """A validated argument: its data pointer and shape, and the object owning the memory
    (kept referenced for as long as the pointer may be used)."""

    ptr: int
    shape: Tuple[int, ...]
    owner: object


def is_torch(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def as_buffer(spec: TensorSpec, obj, *, device: str, writable: bool) -> Buffer:
    """`obj` checked against `spec` as a buffer the code reads (or, if `writable`, writes)."""
    if is_torch(obj):
        return _torch_buffer(spec, obj, device, writable)
    if isinstance(obj, np.ndarray):
        return _numpy_buffer(spec, obj, writable)
    raise ArgumentTypeError(f"{spec.label}: expected a numpy.ndarray or torch.Tensor, "
                            f"got {type(obj).__name__}")


def check_writable(spec: TensorSpec, obj) -> None:
    """An input the model changes in place must be memory the runtime may write."""
    if isinstance(obj, np.ndarray) and not obj.flags.writeable:
        raise ArgumentError(f"{spec.label}: the model changes this input in place, so it must "
                            f"be writable; got a read-only array")


def copy_into(target, source) -> None:
    """Copies `source` into `target` (same kind, dtype and shape; any layout), as the runtime
    writes: outside autograd (a leaf that requires grad is written too)."""
    if is_torch(target):
        target.detach().copy_(source)
    else:
        np.copyto(target, source)


def allocate(dtype: str, shape: Sequence[int], like_torch: bool, device=None):
    """An uninitialized output: a torch tensor (on `device`, default CPU) if `like_torch`,
    else a numpy array."""
    if like_torch:
        torch = sys.modules["torch"]
        return torch.empty(tuple(shape), dtype=getattr(torch, dtype), device=device)
    return np.empty(tuple(shape), dtype=numpy_dtype(dtype))


def _layout_error(spec: TensorSpec, detail: str) -> ArgumentError:
    return ArgumentError(f"{spec.label}: the code writes into this buffer in place, so it must be "
                         f"C-contiguous, aligned and writable; {detail}")


def _numpy_buffer(spec: TensorSpec, array: np.ndarray, writable: bool) -> Buffer:
    if array.dtype != numpy_dtype(spec.dtype):
        raise ArgumentTypeError(f"{spec.label}: expected dtype {spec.dtype}, got {array.dtype.str}"
                                f" ({array.dtype})")
    if not (array.flags.c_contiguous and array.flags.aligned):
        if writable:
            raise _layout_error(spec, f"got strides {array.strides} "
                                      f"(aligned={array.flags.aligned})")
        array = np.require(array, requirements=("C", "A"))
    if writable and not array.flags.writeable:
        raise _layout_error(spec, "got a read-only array")
    return Buffer(array.ctypes.data, array.shape, array)


def _torch_buffer(spec: TensorSpec, tensor, device: str, writable: bool) -> Buffer:
    torch = sys.modules["torch"]
    if tensor.layout != torch.strided:
        raise ArgumentError(f"{spec.label}: expected a dense tensor, got layout {tensor.layout}")
    if tensor.device.type != device:
        raise ArgumentError(f"{spec.label}: expected a tensor on device '{device}', "
                            f"got one on '{tensor.device}'")
    if tensor.dtype != getattr(torch, spec.dtype, None):
        raise ArgumentTypeError(f"{spec.label}: expected dtype {spec.dtype}, got {tensor.dtype}")
    try:
        ptr = tensor.data_ptr()
    except RuntimeError as exc:  # fake, functional or otherwise storage-less tensors
        raise ArgumentError(f"{spec.label}: the tensor has no data to read ({exc})") from None
    if not tensor.is_contiguous() or ptr % tensor.element_size():
        if writable:
            raise _layout_error(spec, f"got strides {tuple(tensor.stride())} at address {ptr:#x}")
        tensor = tensor.detach().clone(memory_format=torch.contiguous_format)
        ptr = tensor.data_ptr()
    return Buffer(ptr, tuple(tensor.shape), tensor)
