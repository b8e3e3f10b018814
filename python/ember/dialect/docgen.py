"""Generates dialect/README.md, the ember op reference, from ember.irdl.mlir.

The IRDL file is parsed (not scraped) for each op's operands, results and attributes; the `///`
comment block above each `irdl.operation` is its description. Run:

    python -m ember.dialect.docgen > python/ember/dialect/README.md

tests/test_dialect.py checks the committed README is up to date.
"""
from __future__ import annotations

import re
import sys
from typing import Dict, List

from mlir import ir

from ember.dialect import irdl_source

_OP_LINE = re.compile(r"^\s*irdl\.operation @(\w+)")


def _descriptions(source: str) -> Dict[str, List[str]]:
    """op name -> its `///` comment lines, read from the text just above each op."""
    out, pending = {}, []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("///"):
            pending.append(stripped[3:].strip())
            continue
        m = _OP_LINE.match(line)
        if m:
            out[m.group(1)] = pending
        if stripped:
            pending = [] if not stripped.startswith("///") else pending
    return out


def _signature(op_def) -> Dict[str, List[str]]:
    """Operand/result/attribute names of one `irdl.operation`, from the parsed IRDL."""
    sig = {"operands": [], "results": [], "attributes": []}
    for child in op_def.regions[0].blocks[0].operations:
        name = child.operation.name
        if name in ("irdl.operands", "irdl.results"):
            names = [ir.StringAttr(a).value for a in child.attributes["names"]]
            variadicity = re.findall(r"\b(single|optional|variadic)\b",
                                     str(child.attributes["variadicity"])) \
                if "variadicity" in child.attributes else []
            key = "operands" if name == "irdl.operands" else "results"
            for i, n in enumerate(names):
                optional = i < len(variadicity) and "optional" in variadicity[i]
                sig[key].append(n + (" (optional)" if optional else ""))
        elif name == "irdl.attributes":
            sig["attributes"] = [ir.StringAttr(a).value
                                 for a in child.attributes["attributeValueNames"]]
    return sig


def generate() -> str:
    source = irdl_source()
    docs = _descriptions(source)
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(source)
        dialect = module.body.operations[0]
        ops = [(ir.StringAttr(op.attributes["sym_name"]).value, _signature(op))
               for op in dialect.regions[0].blocks[0].operations]
    lines = ["# The ember dialect", "",
             "Generated from `ember.irdl.mlir` by `python -m ember.dialect.docgen`; do not edit.",
             "IRDL checks each op's structure; `verifier.py` checks its meaning (shapes, enum "
             "values).", ""]
    for name, sig in ops:
        lines += [f"## `ember.{name}`", ""]
        lines += [" ".join(docs.get(name, [])), ""]
        for key in ("operands", "attributes", "results"):
            if sig[key]:
                lines.append(f"- {key}: " + ", ".join(f"`{v}`" for v in sig[key]))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
