"""Generates dialect/README.md, the ember op reference, from the op table (dialect/ops/).

Each op's section is its class docstring, its operands and attributes (kinds, allowed values,
docs) and its element-type rule, so the reference cannot drift from what the IRDL, builders and
verifier do. Run (or `make docs`):

    python -m ember.dialect.docgen > python/ember/dialect/README.md

tests/test_dialect.py checks the committed README is up to date. With `--irdl` it prints the
generated IRDL definition instead, for tools that read IRDL files (`mlir-opt --irdl-file`).
"""
from __future__ import annotations

import inspect
import sys
from typing import List, Type

from ember.dialect.definition import EmberOp
from ember.dialect.irdl_text import irdl_source
from ember.dialect.ops import OPS

_HEADER = """# The ember dialect

Generated from the op table (`python/ember/dialect/ops/`) by `python -m ember.dialect.docgen`;
do not edit. Each op is one class there; its IRDL (which checks structure and enum values at
parse time), builder (`Gemm.build`), typed view (`Gemm(op).bias`) and semantic verifier are
derived from the same declaration. Ops work on ranked tensors; `?` dims are allowed everywhere
unless an op says otherwise. Optional attributes are checked by the verifier (IRDL in MLIR 22
has no optional attributes).
"""


def _paragraphs(docstring: str) -> List[str]:
    """The docstring's paragraphs, each on one line."""
    return [" ".join(p.split()) for p in inspect.cleandoc(docstring).split("\n\n")]


def _section(op: Type[EmberOp]) -> List[str]:
    lines = [f"## `{op.op_name}`", ""]
    for paragraph in _paragraphs(op.__doc__):
        lines += [paragraph, ""]
    if op.declared_operands:
        lines.append("- operands: " + ", ".join(
            f"`{o.name}`" + (" (optional)" if o.optional else "") for o in op.declared_operands))
    if op.declared_attributes:
        lines.append("- attributes:")
        for a in op.declared_attributes:
            optional = " (optional)" if a.optional else ""
            doc = f"; {a.doc}" if a.doc else ""
            lines.append(f"  - `{a.name}`{optional}: {a.type_doc}{doc}")
    lines.append("- result: `result`")
    lines.append(f"- element types: {op.element_types.value}")
    if op.not_lowered:
        lines.append(f"- not lowered by ember-lower-to-linalg: {op.not_lowered}")
    return lines + [""]


def generate() -> str:
    lines = [_HEADER]
    for op in OPS:
        lines += _section(op)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(irdl_source() if sys.argv[1:] == ["--irdl"] else generate())
