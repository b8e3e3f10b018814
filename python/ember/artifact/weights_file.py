"""weights.safetensors as the kernels want it: every tensor's data 64-byte aligned.

The kernels read weights with 64-byte vector and AMX tile loads. The safetensors library
aligns a tensor only to its element size, so one tensor whose size is not a multiple of 64
bytes shifts every tensor after it off the cache lines: each 64-byte row load then touches two
lines. (The ResNet-style CNN's packed convolution weights sat 40 bytes off after its
classifier's 10-float bias; its AMX convolutions ran 1.6x slower than the same kernels on
aligned weights, Emerald Rapids.)

The format stores tensors back to back (readers reject gaps, and the data must be covered
exactly), so a gap is a tensor of its own: uint8 entries named ALIGN_PAD<n>, which no model
binds (every loader binds tensors by their constant's name and skips the rest). The header is
padded with spaces, which the format allows, so that the data section starts aligned too: the
C runtime and numpy's memmap then find every tensor aligned at its offset.
"""
from __future__ import annotations

import json
import struct
from typing import Mapping

import numpy as np

#: Byte alignment of each tensor's data, and of the data section, in the file.
WEIGHTS_ALIGN = 64
#: Name prefix of the gap entries.
ALIGN_PAD = "__ember_align_"
#: numpy (and manifest) dtype name -> safetensors dtype code (bfloat16 arrays are
#: ml_dtypes', as ember.frontend.export and ember-implicit-precision make them).
SAFETENSORS_DTYPES = {"bool": "BOOL", "int8": "I8", "int16": "I16", "int32": "I32",
                      "int64": "I64", "uint8": "U8", "uint16": "U16", "uint32": "U32",
                      "uint64": "U64", "float16": "F16", "bfloat16": "BF16", "float32": "F32",
                      "float64": "F64", "complex64": "C64"}


def save_weights(path: str, arrays: Mapping[str, np.ndarray],
                 metadata: Mapping[str, str]) -> None:
    """Writes `arrays` (by name, in name order) to the safetensors file `path`, each one's
    data WEIGHTS_ALIGN-aligned from the file's start."""
    clash = sorted(name for name in arrays if name.startswith(ALIGN_PAD))
    if clash:
        raise ValueError(f"weight names starting with {ALIGN_PAD!r} are reserved: {clash}")
    header = {"__metadata__": dict(metadata)}
    tensors, offset = [], 0
    for name in sorted(arrays):
        array = np.require(arrays[name], requirements=("C", "A"))   # keeps a 0-d shape
        if array.dtype.name not in SAFETENSORS_DTYPES:
            raise ValueError(f"weight {name!r}: dtype {array.dtype} has no safetensors code")
        gap = -offset % WEIGHTS_ALIGN
        if gap:
            header[f"{ALIGN_PAD}{len(tensors)}"] = {"dtype": "U8", "shape": [gap],
                                                    "data_offsets": [offset, offset + gap]}
            tensors.append(np.zeros(gap, np.uint8))
            offset += gap
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        header[name] = {"dtype": SAFETENSORS_DTYPES[array.dtype.name],
                        "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        tensors.append(array)
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % WEIGHTS_ALIGN)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for array in tensors:
            f.write(memoryview(array.reshape(-1).view(np.uint8)))
