"""The ember C runtime API (`c/ember_runtime.h`) as seen from Python: ctypes declarations, the
dtype and status codes, and where the C sources live.

The C runtime is compiled into every CPU artifact's library (see ember.backends.cpu.c_runtime), so
the host backend and a C program load and run a model through the very same code. This module
only imports ctypes, so the compiler can use its constants without loading the runtime.
"""
from __future__ import annotations

import ctypes
from importlib import resources
from typing import Dict, List

#: The manifest's `code.<kind>.abi` for libraries exporting this API, and its version number
#: (`ember_abi_version()`, EMBER_ABI_VERSION in the header).
ABI = "ember-c-runtime-v1"
ABI_VERSION = 1

HEADER = "ember_runtime.h"
#: For C programs: ember_load, which checks an artifact before loading its library, and the
#: file-reading, SHA-256 and JSON helpers it shares with the runtime.
LOADER_HEADERS = ("ember_loader.h", "ember_verify.h")
SOURCES = ("ember_runtime.c", "ember_weights.c")
#: Exported by every ember-compiled CPU library: `int32_t ember_set_num_threads(int32_t)`.
THREADS_SYMBOL = "ember_set_num_threads"

#: ember_dtype codes by manifest dtype name.
DTYPE_CODES: Dict[str, int] = {
    "float32": 1, "float16": 2, "bfloat16": 3, "float64": 4, "int8": 5, "int16": 6, "int32": 7,
    "int64": 8, "uint8": 9, "uint16": 10, "uint32": 11, "uint64": 12, "bool": 13,
    "complex64": 14, "complex128": 15,
}

#: ember_write_back codes (`ember_model_output_write_back`) by the manifest's writes_back kind.
WRITE_BACK_CODES: Dict[str, int] = {"input": 1, "constant": 2}

OK, ERROR_ARGUMENT, ERROR_DTYPE, ERROR_UNBOUND, ERROR_EXECUTION, ERROR_ARTIFACT, \
    ERROR_MEMORY, ERROR_INDEX, ERROR_ZERO_DIVISION = range(9)

#: The fault record the compiled code's run-time checks fill (`ember_signature.h`, which this
#: mirrors): its size in int64 words, the position of each word, the kinds of fault, and the
#: entry point's status when a check failed.
FAULT_WORDS = 8
FAULT_CLAIMED, FAULT_KIND, FAULT_VALUE, FAULT_BOUND, FAULT_DIM, FAULT_ORIGIN, FAULT_TENSOR, \
    FAULT_SOURCE = range(FAULT_WORDS)
FAULT_INDEX, FAULT_DIVISION, FAULT_ASSERT = 1, 2, 3
ENTRY_FAULT = 4

#: Room for a message from the C side.
ERROR_BUFFER = 2048


def source_dir() -> str:
    """The directory holding the header and the runtime's C sources."""
    return str(resources.files("ember.runtime").joinpath("c"))


def header_path(name: str = HEADER) -> str:
    return str(resources.files("ember.runtime").joinpath("c", name))


def source_paths() -> List[str]:
    return [str(resources.files("ember.runtime").joinpath("c", name)) for name in SOURCES]


class Tensor(ctypes.Structure):
    """`ember_tensor` (`shape` is an `const int64_t *`, held here as an address)."""
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_void_p)]


class TensorInfo(ctypes.Structure):
    """`ember_tensor_info`."""
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("dims", ctypes.POINTER(ctypes.c_int64)),
                ("max_dims", ctypes.POINTER(ctypes.c_int64)),
                ("dim_exprs", ctypes.POINTER(ctypes.c_char_p)), ("shape_text", ctypes.c_char_p),
                ("bound", ctypes.c_int32)]


_P = ctypes.c_void_p
_I32, _I64, _SIZE, _STR = ctypes.c_int32, ctypes.c_int64, ctypes.c_size_t, ctypes.c_char_p
_INFO = ctypes.POINTER(TensorInfo)

#: name -> (restype, argtypes) of every function the Python runtime calls. Array arguments
#: (tensors, shape slots, the error buffer) are passed as addresses.
FUNCTIONS = {
    "ember_abi_version": (_I32, []),
    "ember_model_create_verified": (ctypes.c_int, [_STR, _STR, ctypes.POINTER(_P), _P, _SIZE]),
    "ember_model_destroy": (None, [_P]),
    "ember_model_num_inputs": (_I32, [_P]),
    "ember_model_num_outputs": (_I32, [_P]),
    "ember_model_num_constants": (_I32, [_P]),
    "ember_model_num_symbols": (_I32, [_P]),
    "ember_model_input_info": (ctypes.c_int, [_P, _I32, _INFO]),
    "ember_model_output_info": (ctypes.c_int, [_P, _I32, _INFO]),
    "ember_model_constant_info": (ctypes.c_int, [_P, _I32, _INFO]),
    "ember_model_symbol": (ctypes.c_int, [_P, _I32, ctypes.POINTER(_STR), ctypes.POINTER(_I64),
                                          ctypes.POINTER(_I64)]),
    "ember_model_output_shapes": (ctypes.c_int, [_P, _P, _I32, _P, _P, _SIZE]),
    "ember_model_set_constant": (ctypes.c_int, [_P, _STR, _P, _P, _SIZE]),
    "ember_model_run": (ctypes.c_int, [_P, _P, _I32, _P, _I32, _P, _P, _SIZE]),
}


class Library:
    """The runtime functions of a loaded library, with their ctypes signatures declared.

    Raises LookupError naming the first missing function."""

    def __init__(self, library: ctypes.CDLL):
        self.library = library
        for name, (restype, argtypes) in FUNCTIONS.items():
            try:
                fn = getattr(library, name)
            except AttributeError:
                raise LookupError(name) from None
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name[len("ember_"):], fn)


class Tensors:
    """An `ember_tensor[]` built from (data pointer, dtype code, shape) triples; `address` is
    what the C functions take. It owns the shape storage (and references `owners`, the objects
    owning the data), so keep it referenced during a call."""

    __slots__ = ("count", "array", "dims", "address", "owners")

    def __init__(self, items, owners=None):
        self.owners = owners
        self.count = len(items)
        flat = [n for _, _, shape in items for n in shape]
        self.dims = (ctypes.c_int64 * (len(flat) or 1))(*flat)
        base, offset, rows = ctypes.addressof(self.dims), 0, []
        for ptr, code, shape in items:
            rows.append((ptr, code, len(shape), base + 8 * offset))
            offset += len(shape)
        self.array = (Tensor * (self.count or 1))(*rows)
        self.address = ctypes.addressof(self.array)


class ShapeSlots:
    """An `int64_t *[]` with room for one shape per rank (`address` for the C side); `shapes()`
    reads them back as tuples."""

    __slots__ = ("ranks", "flat", "pointers", "address")

    def __init__(self, ranks):
        self.ranks = ranks
        self.flat = (ctypes.c_int64 * (sum(ranks) or 1))()
        base, offset, rows = ctypes.addressof(self.flat), 0, []
        for rank in ranks:
            rows.append(base + 8 * offset)
            offset += rank
        self.pointers = (ctypes.c_void_p * (len(ranks) or 1))(*rows)
        self.address = ctypes.addressof(self.pointers)

    def shapes(self) -> list:
        values, out, offset = self.flat[:], [], 0
        for rank in self.ranks:
            out.append(tuple(values[offset:offset + rank]))
            offset += rank
        return out
