"""How an ember op is declared: `EmberOp`, whose subclasses (in dialect/ops/) are the dialect.

Like MLIR's ODS or xDSL's `@irdl_op_definition`, one class per op says everything about it:
its name, its operands (`Operand()`, optional ones included) and attributes (dialect/attributes.py
kinds, with allowed values and builder defaults) as fields in order, its doc (the docstring),
the element types it accepts, its semantic rule (`verify`) and whether ember-lower-to-linalg
lowers it. From that one declaration the rest is derived: the IRDL text loaded into both MLIR
builds (irdl_text.py), the builder `build`, the typed view (an instance wraps one op, and its
fields read that op's operands and attributes: `Gemm(op).bias`, `Conv2d(op).strides`), the
verifier's registry (verifier.py) and the op reference (docgen.py).
"""
from __future__ import annotations

import enum
import inspect
from typing import ClassVar, Dict, Optional, Tuple

from ember.dialect.attributes import REQUIRED, Attribute, Field
from ember.dialect.builds import ir_of

#: The attribute through which IRDL ops with optional operands say which are present.
SEGMENT_SIZES = "operandSegmentSizes"


class Operand(Field):
    """An operand field. An `optional` operand reads as None on a view when absent; the builders
    take it as a keyword (default None) and write `operandSegmentSizes`."""

    def read(self, view):
        return view.operand_values()[self.name]


class ElementTypes(enum.Enum):
    """Which element types an op accepts (checked by the verifier, stated in the reference)."""
    FLOAT = "every tensor operand and the result share one floating-point type " \
            "(f16, bf16, f32, f64)"
    SAME = "the result has the inputs' element type (any)"
    ANY = "any"


class EmberOp:
    """Base of the op declarations, and the typed view of one op: `Gemm(op)` wraps an
    `ember.gemm` (of either MLIR build) so passes read `Gemm(op).activation` instead of looking
    attributes up by string."""
    #: The op's full name, e.g. "ember.gemm".
    op_name: ClassVar[str] = ""
    element_types: ClassVar[ElementTypes] = ElementTypes.FLOAT
    #: Whether `build` may omit result_type because the result has the first operand's type.
    result_like_input: ClassVar[bool] = False
    #: Why ember-lower-to-linalg has no lowering for the op (None: it has one).
    not_lowered: ClassVar[Optional[str]] = None
    #: The operand and attribute fields, in declaration order (filled in for each subclass).
    declared_operands: ClassVar[Tuple[Operand, ...]] = ()
    declared_attributes: ClassVar[Tuple[Attribute, ...]] = ()
    #: The derived builder's signature.
    build_signature: ClassVar[inspect.Signature]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        fields = list(vars(cls).values())
        cls.declared_operands = tuple(f for f in fields if isinstance(f, Operand))
        cls.declared_attributes = tuple(f for f in fields if isinstance(f, Attribute))
        clashes = {f.name for f in cls.declared_operands + cls.declared_attributes} & \
            set(dir(EmberOp))
        if clashes:
            raise TypeError(f"{cls.__name__}: field names {sorted(clashes)} hide EmberOp's own")
        cls.build_signature = _build_signature(cls)

    # ------------------------------------------------------------------ the view
    def __init__(self, op):
        if op.name != self.op_name:
            raise TypeError(f"{type(self).__name__} views {self.op_name}, not {op.name}")
        self.operation = op.operation

    @classmethod
    def defining(cls, value) -> Optional["EmberOp"]:
        """The view of the op defining `value` when that op is one of `cls`, else None (also for
        block arguments)."""
        ir = ir_of(value)
        owner = value.owner
        if isinstance(owner, (ir.Operation, ir.OpView)) and owner.name == cls.op_name:
            return cls(owner)
        return None

    @property
    def ir(self):
        """The native `ir` module of the viewed op's MLIR build."""
        return ir_of(self.operation)

    @property
    def result(self):
        return self.operation.results[0]

    def operand_values(self) -> Dict[str, Optional[object]]:
        """Operand name -> value (None for an absent optional operand)."""
        attributes = self.operation.attributes
        sizes = list(attributes[SEGMENT_SIZES]) if SEGMENT_SIZES in attributes else \
            [1] * len(self.declared_operands)
        values, index = {}, 0
        for operand, size in zip(self.declared_operands, sizes):
            values[operand.name] = self.operation.operands[index] if size else None
            index += size
        return values

    def attribute_values(self) -> Dict[str, object]:
        """Attribute name -> Python value (None for an absent optional attribute)."""
        return {a.name: getattr(self, a.name) for a in self.declared_attributes}

    def verify(self) -> Optional[str]:
        """The op's semantic rule: the message of the broken rule, or None when it holds. Runs
        after the element-type and attribute checks the verifier derives from the fields."""
        return None

    # ------------------------------------------------------------------ the builder
    @classmethod
    def build(cls, *args, **kwargs):
        """Creates the op at the current insertion point and returns its result. Required
        operands come first (positional), then `result_type`, then keywords: optional operands
        (default None) and attributes (Python values; the declared defaults apply). See
        `build_signature`, e.g. `Gemm.build(lhs, rhs, result_type, *, bias=None, residual=None,
        activation='none', rhs_panel=None, lhs_patches=None)`."""
        bound = cls.build_signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = bound.arguments
        operands = [values[o.name] for o in cls.declared_operands]
        result_type = values["result_type"]
        if result_type is None and cls.result_like_input:
            result_type = operands[0].type
        ir = ir_of(operands[0] if operands else result_type)
        attributes = {a.name: a.to_attribute(ir, values[a.name])
                      for a in cls.declared_attributes if values[a.name] is not None}
        if any(o.optional for o in cls.declared_operands):
            attributes[SEGMENT_SIZES] = ir.DenseI32ArrayAttr.get(
                [int(v is not None) for v in operands])
        op = ir.Operation.create(cls.op_name, results=[result_type],
                                 operands=[v for v in operands if v is not None],
                                 attributes=attributes)
        return op.result

    def rebuild(self, result_type, **changes):
        """A copy of the viewed op (built at the current insertion point) with the operands and
        attributes named in `changes` replaced: how a fusion grows an op's epilogue without
        repeating every other setting."""
        values = {**self.operand_values(), **self.attribute_values(), **changes}
        return type(self).build(result_type=result_type, **values)


def _build_signature(cls) -> inspect.Signature:
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(o.name, positional)
              for o in cls.declared_operands if not o.optional]
    params.append(inspect.Parameter("result_type", positional,
                                    default=None if cls.result_like_input else
                                    inspect.Parameter.empty))
    params += [inspect.Parameter(o.name, keyword, default=None)
               for o in cls.declared_operands if o.optional]
    params += [inspect.Parameter(a.name, keyword, default=inspect.Parameter.empty
                                 if a.default is REQUIRED else a.default)
               for a in cls.declared_attributes]
    return inspect.Signature(params)
