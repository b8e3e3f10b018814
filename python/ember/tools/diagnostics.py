"""Diagnostics for tools: collecting, printing, and checking them against expectations.

Diagnostics reach a tool three ways: through the context's handler (a Python pass calling
`location.emit_error`), inside an `ir.MLIRError` (parse, verifier and PassManager failures), or
only as an exception's text (`loc("f.mlir":3:5): message`). All become `Diag`s, printed like
mlir-opt's (`f.mlir:3:5: error: message`). `verify` implements MLIR's --verify-diagnostics:
every `// expected-error {{...}}` (and -warning, -remark, -note; `-re` for regexes; `@+N`,
`@-N`, `@above`, `@below`, `@unknown`) must match a produced diagnostic on its line by
substring, and every produced diagnostic must be expected. Nothing here runs passes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

from mlir import ir

_SEVERITY = {
    ir.DiagnosticSeverity.ERROR: "error",
    ir.DiagnosticSeverity.WARNING: "warning",
    ir.DiagnosticSeverity.REMARK: "remark",
    ir.DiagnosticSeverity.NOTE: "note",
}

#: The note MLIR attaches to verifier errors; mlir-opt turns it off under --verify-diagnostics.
_CURRENT_OPERATION_NOTE = "see current operation:"


@dataclass
class Diag:
    """One diagnostic; `file` is None when its location names no file (e.g. `loc(unknown)`)."""
    severity: str
    message: str
    file: Optional[str] = None
    line: int = 0
    col: int = 0
    notes: List["Diag"] = field(default_factory=list)

    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.file is not None else "<unknown>"

    def format(self) -> str:
        """mlir-opt's form, `file:line:col: severity: message`, one line per note after it."""
        return "\n".join([f"{self.where()}: {self.severity}: {self.message}"] +
                         [note.format() for note in self.notes])


def file_line_col(location) -> Optional[Tuple[str, int, int]]:
    """The first file:line:col inside `location` (through name, call-site and fused locations)."""
    if location.is_a_file():
        return location.filename, location.start_line, location.start_col
    if location.is_a_name():
        return file_line_col(location.child_loc)
    if location.is_a_callsite():
        return file_line_col(location.callee) or file_line_col(location.caller)
    if location.is_a_fused():
        for inner in location.locations:
            found = file_line_col(inner)
            if found:
                return found
    return None


def at(location, message: str, severity: str = "error") -> Diag:
    """A diagnostic at an `ir.Location`."""
    file, line, col = file_line_col(location) or (None, 0, 0)
    return Diag(severity, message, file, line, col)


def from_mlir(diagnostic) -> Diag:
    """A `Diag` from an `ir.Diagnostic` (handler) or `ir.DiagnosticInfo` (MLIRError)."""
    diag = at(diagnostic.location, diagnostic.message, _SEVERITY[diagnostic.severity])
    diag.notes = [from_mlir(note) for note in diagnostic.notes]
    return diag


def from_exception(exc: BaseException) -> List[Diag]:
    """The diagnostics of every `ir.MLIRError` in `exc`'s chain of causes."""
    found, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ir.MLIRError):
            found += [from_mlir(d) for d in exc.error_diagnostics]
        exc = exc.__cause__ or exc.__context__
    return found


_FILE_LINE_COL = re.compile(r'"((?:[^"\\]|\\.)*)":(\d+):(\d+)')


def from_text(text: str) -> Diag:
    """An error from an exception's text; `loc(...): message` gives it that location."""
    text = text.strip()
    if text.startswith("loc("):
        end = _closing_paren(text, len("loc"))
        if end is not None and text[end + 1:end + 3] == ": ":
            found = _FILE_LINE_COL.search(text[:end])
            if found:
                return Diag("error", text[end + 3:], found.group(1), int(found.group(2)),
                            int(found.group(3)))
    return Diag("error", text)


def _closing_paren(text: str, open_at: int) -> Optional[int]:
    depth, quoted = 0, False
    for i in range(open_at, len(text)):
        c = text[i]
        if c == '"' and text[i - 1] != "\\":
            quoted = not quoted
        elif not quoted and c in "()":
            depth += 1 if c == "(" else -1
            if depth == 0:
                return i
    return None


class DiagnosticCollector:
    """Records every diagnostic `context` emits while the `with` block runs."""

    def __init__(self, context: ir.Context):
        self.context = context
        self.diags: List[Diag] = []
        self._handler = None

    def __enter__(self) -> "DiagnosticCollector":
        self._handler = self.context.attach_diagnostic_handler(self._record)
        return self

    def __exit__(self, *exc_info) -> None:
        self._handler.detach()

    def _record(self, diagnostic) -> bool:
        self.diags.append(from_mlir(diagnostic))
        return True  # handled: MLIR must not also print it

    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diags)


# ----------------------------------------------------------------------------- expectations
_EXPECTED = re.compile(r"expected-(error|warning|remark|note)(-re)? *"
                       r"(?:@([+-]\d+|above|below|unknown))? *\{\{(.*)\}\}\s*$")


@dataclass
class Expected:
    """One `expected-<severity>` comment and the line it expects a diagnostic on."""
    severity: str
    text: str
    file: str
    line: Optional[int]  # None: @unknown (a diagnostic without a file location)
    comment_line: int
    comment_col: int
    regex: bool = False
    matched: bool = False

    def matches_text(self, message: str) -> bool:
        if not self.regex:
            return self.text in message
        parts = re.split(r"\{\{(.*?)\}\}", self.text)
        pattern = "".join(part if i % 2 else re.escape(part) for i, part in enumerate(parts))
        return re.search(pattern, message) is not None

    def matches_place(self, diag: Diag) -> bool:
        if self.line is None:
            return diag.file is None
        return diag.file == self.file and diag.line == self.line

    def where(self) -> str:
        return f"{self.file}:{self.comment_line}:{self.comment_col}"


def parse_expectations(text: str, filename: str,
                       first_line: int = 1) -> Tuple[List[Expected], List[str]]:
    """The expectations written in `text` (which starts at `first_line` of `filename`), and
    errors for designators that point at no line."""
    lines = text.splitlines()
    found = [(i, _EXPECTED.search(line)) for i, line in enumerate(lines)]
    designators = {i for i, m in found if m}
    expectations, errors = [], []
    for i, match in found:
        if not match:
            continue
        severity, is_regex, offset, message = match.groups()
        target: Optional[int] = i
        if offset == "unknown":
            target = None
        elif offset == "above":
            target = next((j for j in range(i - 1, -1, -1) if j not in designators), -1)
        elif offset == "below":
            target = next((j for j in range(i + 1, len(lines)) if j not in designators), -1)
        elif offset:
            target = i + int(offset)
        comment = (first_line + i, match.start() + 1)
        if target is not None and not 0 <= target < len(lines):
            errors.append(f"{filename}:{comment[0]}:{comment[1]}: error: expected "
                          f"diagnostic designator @{offset} points outside the input")
            continue
        expectations.append(Expected(severity, message, filename,
                                     None if target is None else first_line + target,
                                     *comment, regex=bool(is_regex)))
    return expectations, errors


def verify(expectations: List[Expected], produced: Iterable[Diag]) -> List[str]:
    """Matches produced diagnostics (and their notes) to expectations; returns the problems,
    each an mlir-opt style error line. An empty list means the check passed."""
    problems = []
    for diag in _flatten(produced):
        candidates = [e for e in expectations
                      if e.matches_place(diag) and e.matches_text(diag.message)]
        same_kind = [e for e in candidates if e.severity == diag.severity]
        if same_kind:
            # Prefer an expectation not used yet; two identical diagnostics may share one.
            chosen = next((e for e in same_kind if not e.matched), same_kind[0])
            chosen.matched = True
        elif candidates:
            problems.append(f"{candidates[0].where()}: error: '{diag.severity}' diagnostic "
                            f"emitted when expecting a '{candidates[0].severity}'")
        else:
            problems.append(f"{diag.where()}: error: unexpected {diag.severity}: {diag.message}")
    for e in expectations:
        if not e.matched:
            problems.append(f"{e.where()}: error: expected {e.severity} \"{e.text}\" was not "
                            f"produced")
    return problems


def _flatten(diags: Iterable[Diag]) -> List[Diag]:
    out = []
    for diag in diags:
        out.append(diag)
        out += [n for n in _flatten(diag.notes) if not n.message.startswith(
            _CURRENT_OPERATION_NOTE)]
    return out
