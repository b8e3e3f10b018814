"""Semantic verification of ember ops: the rules IRDL cannot state.

IRDL already rejects, at parse time, a wrong operand count, attribute kind or enum value. This
module checks what each op means, in this order, all derived from the op's declaration
(dialect/ops/): its element types (`element_types`), the kind of each optional attribute
present (which IRDL cannot check), the values of enum attributes (again, for ops built in memory,
which no parser saw), and the op's own rule (`verify`: matching GEMM contraction dims, a valid
permutation...). Every rule returns a message that names the rule broken, so a user sees *why*
an op is malformed. `verify_module` is run by ember-opt after parsing and after every ember pass.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from ember.dialect.attributes import OneOf
from ember.dialect.builds import ir_of
from ember.dialect.definition import ElementTypes, EmberOp
from ember.dialect.enums import FLOAT_TYPES
from ember.dialect.ops import OPS_BY_NAME
from ember.dialect.shapes import element_type



def _element_types_error(view: EmberOp) -> Optional[str]:
    if view.element_types is ElementTypes.ANY:
        return None
    types = [str(element_type(v)) for v in list(view.operation.operands) + [view.result]]
    if view.element_types is ElementTypes.SAME:
        return None if len(set(types)) == 1 else "result must have the inputs' element type"
    if len(set(types)) != 1:
        return f"operands and result must share one element type, got {sorted(set(types))}"
    if types[0] not in FLOAT_TYPES:
        return f"computes in floating point ({', '.join(FLOAT_TYPES)}); got {types[0]}"
    return None


def _attribute_error(view: EmberOp) -> Optional[str]:
    for attribute in view.declared_attributes:
        raw = attribute.raw(view)
        if raw is None:
            continue
        if attribute.optional and not attribute.has_kind(view.ir, raw):
            return f"{attribute.name} must be {attribute.type_doc}, got {raw}"
        if isinstance(attribute, OneOf):
            error = attribute.unknown_value_message(attribute.to_python(view.ir, raw))
            if error:
                return error
    return None


def verify_op(op) -> Optional[str]:
    """The broken rule's message for one ember op, or None when it is well formed."""
    declaration = OPS_BY_NAME.get(op.name)
    if declaration is None:
        return None
    view = declaration(op)
    return _element_types_error(view) or _attribute_error(view) or view.verify()


def verify_module(module_op) -> List[Tuple[object, str]]:
    """(op, message) for every malformed ember op under `module_op`."""
    ir = ir_of(module_op)
    errors = []

    def visit(op):
        if op.name.startswith("ember."):
            msg = verify_op(op.opview if hasattr(op, "opview") else op)
            if msg:
                errors.append((op, f"'{op.name}' op {msg}"))
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
    return errors

