"""The ember dialect's IRDL definition, generated from the op table (dialect/ops/).

IRDL is how both MLIR builds learn the dialect (`irdl.load_dialects`): it checks each op's
structure at parse time (operand and result counts, tensors, attribute kinds, and the values of
enum attributes through `irdl.any_of`). Each operand gets its own constraint variable, since one
variable binds one type. Attributes declared optional are left out (IRDL in MLIR 22 has no
optional attributes; the verifier checks them). For tools that read IRDL files
(`mlir-opt --irdl-file`), `python -m ember.dialect.docgen --irdl > ember.irdl.mlir` writes it.
"""
from __future__ import annotations

from typing import List, Type

from ember.dialect.definition import EmberOp
from ember.dialect.ops import OPS

_TENSOR = '"!builtin.tensor"'


def irdl_source() -> str:
    """The text of the dialect's IRDL definition."""
    lines = ["irdl.dialect @ember {"]
    for op in OPS:
        lines += ["  " + line for line in _operation(op)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _operation(op: Type[EmberOp]) -> List[str]:
    body, operands, attributes = [], [], []
    for operand in op.declared_operands:
        variable = f"%operand_{operand.name}"
        body.append(f"{variable} = irdl.base {_TENSOR}")
        operands.append(f"{operand.name}: {'optional ' if operand.optional else ''}{variable}")
    for attribute in op.declared_attributes:
        if attribute.optional:
            continue
        variable = f"%attr_{attribute.name}"
        body += attribute.irdl_constraint(variable)
        attributes.append(f'"{attribute.name}" = {variable}')
    body.append(f"%result = irdl.base {_TENSOR}")
    if operands:
        body.append(f"irdl.operands({', '.join(operands)})")
    if attributes:
        body.append(f"irdl.attributes {{ {', '.join(attributes)} }}")
    body.append("irdl.results(result: %result)")
    short_name = op.op_name.split(".", 1)[1]
    return [f"irdl.operation @{short_name} {{"] + ["  " + line for line in body] + ["}"]
