"""Frozen dataclasses as MLIR dictionary attributes and back: the one codec of kernel specs.

A kernel function states what it computes in a dictionary attribute that a later pass reads to
generate its body (`ember.gemm_kernel` for the CPU GEMM kernels, `ember.gpu_gemm` for the GPU
ones), and a generated CPU kernel records its schedule the same way, so the attribute is
derived from the dataclass instead of being written out per class. Each field is encoded by
its declared type: int -> i64 (Optional[int]: -1 for None), bool -> BoolAttr,
float -> f64 FloatAttr, str -> StringAttr, Tuple[int, ...] -> DenseI64ArrayAttr. A field declared with
`omitted_at_default` is left out while it holds its default and read back as the default when
absent, which keeps the common attributes short and older ones readable.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Type, TypeVar

from mlir import ir

T = TypeVar("T")
_OMITTED_AT_DEFAULT = "omitted_at_default"


def omitted_at_default(default):
    """A dataclass field that the attribute leaves out while it equals `default`."""
    return dataclasses.field(default=default, metadata={_OMITTED_AT_DEFAULT: True})


def to_attr(obj) -> ir.DictAttr:
    """The dictionary attribute of dataclass instance `obj`."""
    hints = typing.get_type_hints(type(obj))
    entries = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get(_OMITTED_AT_DEFAULT) and value == f.default:
            continue
        entries[f.name] = _encode(hints[f.name], value)
    return ir.DictAttr.get(entries)


def from_attr(cls: Type[T], attr) -> T:
    """The `cls` instance that `to_attr` encoded as `attr` (absent fields take defaults)."""
    d = ir.DictAttr(attr)
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _decode(hints[f.name], d[f.name])
                  for f in dataclasses.fields(cls) if f.name in d})


def _optional_of(tp):
    """X for Optional[X], else None."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Union and type(None) in args:
        return next(a for a in args if a is not type(None))
    return None


def _encode(tp, value) -> ir.Attribute:
    inner = _optional_of(tp)
    if inner is int and value is None:
        return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), -1)
    tp = inner or tp
    if tp is bool:
        return ir.BoolAttr.get(value)
    if tp is int:
        return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)
    if tp is float:
        return ir.FloatAttr.get(ir.F64Type.get(), value)
    if tp is str:
        return ir.StringAttr.get(value)
    if typing.get_origin(tp) is tuple:
        return ir.DenseI64ArrayAttr.get(list(value))
    raise TypeError(f"no attribute encoding for a field of type {tp}")


def _decode(tp, attr):
    inner = _optional_of(tp)
    if inner is int:
        value = ir.IntegerAttr(attr).value
        return None if value < 0 else value
    tp = inner or tp
    if tp is bool:
        return ir.BoolAttr(attr).value
    if tp is int:
        return ir.IntegerAttr(attr).value
    if tp is float:
        return ir.FloatAttr(attr).value
    if tp is str:
        return ir.StringAttr(attr).value
    if typing.get_origin(tp) is tuple:
        return tuple(ir.DenseI64ArrayAttr(attr))
    raise TypeError(f"no attribute decoding for a field of type {tp}")
