"""A model's tensors as its manifest declares them: one `TensorSpec` for every stage.

The frontend records the inputs and outputs it exports, the compiler writes them into the
manifest (`to_json`), and the runtime reads them back (`from_manifest`) to check and bind the
shapes of every call. Dims are `ember.symbolic.Dim`: an int or an expression over the input
symbols. Like ember.symbolic this lives outside ember.runtime and imports neither MLIR nor
torch, so every stage can use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

import numpy as np

from ember.symbolic import Dim, format_shape

Shape = Tuple[int, ...]

#: The numpy dtype name (a manifest's dtype) of each MLIR element type a model's tensors have.
ELEMENT_DTYPES = {"f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16",
                  "i64": "int64", "i32": "int32", "i16": "int16", "i8": "int8", "ui8": "uint8",
                  "i1": "bool", "complex<f32>": "complex64", "complex<f64>": "complex128"}


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a manifest dtype name; bfloat16 comes from ml_dtypes."""
    try:
        return np.dtype(name)
    except TypeError:
        import ml_dtypes
        return np.dtype(getattr(ml_dtypes, name))


@dataclass(frozen=True)
class TensorSpec:
    """An input, output or constant: its name, numpy dtype name and dims."""

    role: str  # "input", "output" or "constant", for messages
    name: str
    dtype: str
    dims: Tuple[Dim, ...]
    max_shape: Optional[Shape] = None  # outputs only
    #: Outputs only: this output is the new value of an input or constant that the model
    #: changes in place, which the runtime writes back after each run: ("input", name) or
    #: ("constant", name); in the manifest {"input": name} or {"constant": name}.
    writes_back: Optional[Tuple[str, str]] = None

    @classmethod
    def from_manifest(cls, role: str, entry: Mapping) -> "TensorSpec":
        max_shape = entry.get("max_shape")
        return cls(role, entry["name"], entry["dtype"], tuple(Dim(d) for d in entry["shape"]),
                   None if max_shape is None else tuple(max_shape),
                   next(iter(entry["writes_back"].items()), None) if "writes_back" in entry
                   else None)

    def to_json(self) -> dict:
        """The manifest entry `from_manifest` reads: static dims as ints, the others as their
        expressions."""
        entry = {"name": self.name, "dtype": self.dtype,
                 "shape": [d.text if d.symbols else d.constant for d in self.dims]}
        if self.max_shape is not None:
            entry["max_shape"] = list(self.max_shape)
        if self.writes_back is not None:
            entry["writes_back"] = dict([self.writes_back])
        return entry

    @property
    def label(self) -> str:
        return f"{self.role} {self.name!r}"

    def shape(self, env: Mapping[str, int]) -> Shape:
        """The concrete shape under the symbol bindings `env`."""
        return tuple(d.evaluate(env) for d in self.dims)

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype}{format_shape(self.dims)}"
