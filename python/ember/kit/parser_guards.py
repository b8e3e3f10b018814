"""MLIR text that the bindings' parser aborts on instead of diagnosing, refused first.

The MLIR build ember runs on has assertions enabled, and a few malformed inputs reach an
assertion inside the parser (the process dies of SIGABRT, a user's Python session with it)
instead of a parse error. Each such pattern is refused here with a located error, before the
text reaches `ir.Module.parse` / `ir.Operation.parse`:

  array<index: ...>   a dense array of `index` (DenseArrayAttr holds fixed-width integers and
                      floats; its parser asks `index` for a bit width and asserts)
"""
from __future__ import annotations

import re

_ABORTS = [
    (re.compile(r"array\s*<\s*index\b"),
     "a dense array cannot hold index elements: write array<i64: ...>"),
]


def refuse_parser_aborts(text: str, filename: str = "<string>", first_line: int = 1) -> None:
    """Raises ValueError `loc("file":line:col): message` (the form ember's tools print as a
    located error) at the first pattern of `text` that would abort MLIR's parser; comments
    (after `//` on a line) are not looked at."""
    for number, line in enumerate(text.splitlines(), first_line):
        code = line.split("//", 1)[0]
        for pattern, message in _ABORTS:
            found = pattern.search(code)
            if found:
                raise ValueError(f'loc("{filename}":{number}:{found.start() + 1}): {message}')
