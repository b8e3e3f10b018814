"""Reading .mlir input for tools: `// -----` chunks, and parsing that keeps the file's lines.

A chunk is parsed under the input's file name and padded with blank lines, so every location
(a diagnostic, `loc(...)` in printed debug info) names the line of the whole file, as the user
sees it in an editor. Like mlir-opt, a source whose only top-level op is a `builtin.module` is
that module; anything else is wrapped in an implicit one. This module parses; it runs no passes
and prints nothing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List

from mlir import ir

from ember.kit.parser_guards import refuse_parser_aborts

#: The line that separates chunks under --split-input-file (and separates their outputs).
SPLIT_MARKER = "// -----"

_TOP_LEVEL_COUNT = re.compile(r"source must contain a single top-level operation, found: (\d+)")
_IMPLICIT_MODULE = "module {"


@dataclass(frozen=True)
class Chunk:
    """A piece of the input and the 1-based line of the whole input where it starts."""
    text: str
    first_line: int = 1


def split_input(text: str, marker: str = SPLIT_MARKER) -> List[Chunk]:
    """Splits `text` on lines starting with `marker`; each chunk remembers where it started."""
    chunks, lines, start = [], [], 1
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if line.lstrip().startswith(marker):
            chunks.append(Chunk("".join(lines), start))
            lines, start = [], number + 1
        else:
            lines.append(line)
    chunks.append(Chunk("".join(lines), start))
    return chunks


def parse_module(chunk: Chunk, context: ir.Context, filename: str) -> ir.Module:
    """Parses and verifies `chunk` into a module; raises ir.MLIRError with located diagnostics
    (ValueError for text MLIR's parser would abort on, ember.kit.parser_guards).

    Several top-level ops are wrapped in an implicit module written on the line before the
    chunk; for a chunk starting on line 1 the wrapper shares that line, so columns on line 1
    are shifted by its width (only when line 1 holds code and the chunk has several ops).
    """
    refuse_parser_aborts(chunk.text, filename, chunk.first_line)
    padding = "\n" * (chunk.first_line - 1)
    with context:
        try:
            op = ir.Operation.parse(padding + chunk.text, source_name=filename)
        except ir.MLIRError as e:
            count = _top_level_count(e)
            if count is None:
                raise
            if count == 0:
                return ir.Module.create(ir.Location.file(filename, chunk.first_line, 1))
            wrapped = (padding[:-1] + _IMPLICIT_MODULE + "\n" if padding else _IMPLICIT_MODULE) \
                + chunk.text + "\n}"
            op = ir.Operation.parse(wrapped, source_name=filename)
        return _as_module(op)


def _top_level_count(error: ir.MLIRError):
    for diagnostic in error.error_diagnostics:
        match = _TOP_LEVEL_COUNT.search(diagnostic.message)
        if match:
            return int(match.group(1))
    return None


def _as_module(op) -> ir.Module:
    """An `ir.Module` holding `op`, or `op`'s own contents when it is a builtin.module."""
    module = ir.Module.create(op.location)
    if op.operation.name != "builtin.module":
        module.body.append(op)
        return module
    attributes = op.operation.attributes
    for i in range(len(attributes)):
        module.operation.attributes[attributes[i].name] = attributes[i].attr
    for child in list(op.regions[0].blocks[0].operations):
        module.body.append(child)
    return module
