"""Attribute kinds for ember op declarations: one class per kind of attribute an op can carry.

An op declares an attribute as a class field (`activation = OneOf(ACTIVATIONS, what=...)`).
The kind knows everything the rest of the dialect derives from that line: its IRDL constraint
(so the generated IRDL checks it at parse time), how to read it as a Python value (the field is
a descriptor, so `Gemm(op).activation` is a str), how to write a Python value back as an MLIR
attribute (for the builders), and how to name its type in the op reference. Every method takes
the native `ir` module of the op's build, so one declaration serves both MLIR builds.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

#: `default` of an attribute the builders require (it has no sensible default value).
REQUIRED = object()


class Field:
    """A field of an op declaration (an operand or an attribute): it learns its name from the
    class it is declared in, and reads that part of the op on a view (`Gemm(op).bias`)."""

    def __init__(self, *, optional: bool = False):
        self.optional = optional
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, view, owner=None):
        return self if view is None else self.read(view)

    def read(self, view):  # pragma: no cover - interface
        raise NotImplementedError


class Attribute(Field):
    """Base of the attribute kinds. `optional` attributes may be absent: IRDL in MLIR 22 cannot
    say so, so they stay out of the generated IRDL and the verifier checks their kind instead;
    on a view they read as None when absent."""
    #: The IRDL base constraint (`irdl.base`) of the kind.
    irdl_base = ""
    #: The name of the bindings' attribute class this kind is read through.
    ir_class = ""
    #: The kind as the op reference writes it.
    type_doc = ""

    def __init__(self, *, default: Any = REQUIRED, optional: bool = False, doc: str = ""):
        super().__init__(optional=optional)
        self.default = None if optional else default
        self.doc = doc

    def read(self, view):
        attr = self.raw(view)
        return None if attr is None else self.to_python(view.ir, attr)

    def raw(self, view):
        """The MLIR attribute on the viewed op, or None when absent (for messages that quote it)."""
        attributes = view.operation.attributes
        return attributes[self.name] if self.name in attributes else None

    def has_kind(self, ir, attr) -> bool:
        return isinstance(attr, getattr(ir, self.ir_class))

    def irdl_constraint(self, variable: str) -> List[str]:
        """IRDL lines that define `variable` as this kind's constraint."""
        return [f'{variable} = irdl.base "{self.irdl_base}"']

    def to_python(self, ir, attr):
        raise NotImplementedError

    def to_attribute(self, ir, value):
        raise NotImplementedError


class String(Attribute):
    irdl_base, ir_class, type_doc = "#builtin.string", "StringAttr", "string"

    def to_python(self, ir, attr) -> str:
        return ir.StringAttr(attr).value

    def to_attribute(self, ir, value: str):
        return ir.StringAttr.get(value)


class OneOf(String):
    """A string attribute with a fixed vocabulary; `what` names it in the verifier's message
    ("unknown unary kind 'swish'")."""

    def __init__(self, values: Sequence[str], *, what: str, **kwargs):
        super().__init__(**kwargs)
        self.values = tuple(values)
        self.what = what

    @property
    def type_doc(self) -> str:
        return "one of " + ", ".join(f"`{v}`" for v in self.values)

    def irdl_constraint(self, variable: str) -> List[str]:
        choices = [f"{variable}_{i}" for i in range(len(self.values))]
        return [f'{choice} = irdl.is "{value}"' for choice, value in zip(choices, self.values)] + \
            [f"{variable} = irdl.any_of({', '.join(choices)})"]

    def unknown_value_message(self, value: str) -> Optional[str]:
        """The broken rule when `value` is outside the vocabulary, else None."""
        if value in self.values:
            return None
        return f"unknown {self.what} '{value}'; expected one of {', '.join(self.values)}"


class I64(Attribute):
    irdl_base, ir_class, type_doc = "#builtin.integer", "IntegerAttr", "i64"

    def to_python(self, ir, attr) -> int:
        return ir.IntegerAttr(attr).value

    def to_attribute(self, ir, value: int):
        return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


class Bool(Attribute):
    irdl_base, ir_class, type_doc = "#builtin.integer", "BoolAttr", "bool (i1: `true`/`false`)"

    def to_python(self, ir, attr) -> bool:
        return ir.BoolAttr(attr).value

    def to_attribute(self, ir, value: bool):
        return ir.BoolAttr.get(value)


class F32(Attribute):
    irdl_base, ir_class, type_doc = "#builtin.float", "FloatAttr", "f32"

    def to_python(self, ir, attr) -> float:
        return ir.FloatAttr(attr).value

    def to_attribute(self, ir, value: float):
        return ir.FloatAttr.get(ir.F32Type.get(), value)


class I64Array(Attribute):
    irdl_base, ir_class, type_doc = "#builtin.dense_array", "DenseI64ArrayAttr", "array<i64>"

    def to_python(self, ir, attr) -> List[int]:
        return list(attr)

    def to_attribute(self, ir, value: Sequence[int]):
        return ir.DenseI64ArrayAttr.get(list(value))
