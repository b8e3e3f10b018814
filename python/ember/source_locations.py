"""Where an op of the compiled model came from: the user's source line and the aten op the user
called, read from the text of an MLIR location, an FX node's stack trace or a Python traceback.

The frontend names every location after its aten op (`loc("aten.embedding"(callsite(...)))`,
see ember.frontend.importer) and torch-mlir encodes an FX node's stack as nested
`callsite(callee at caller)` locations; the ops lowered from a node keep its location. Plain
text parsing, no MLIR: the frontend's errors and the compiler's run-time checks both use it.
"""
from __future__ import annotations

import re
from typing import Optional

#: Frames inside these packages are never "the user's line".
_LIBRARY_MARKERS = ("/torch/", "/torch_mlir/", "/ember/", "site-packages/", "<frozen")
_FILE_LINE = re.compile(r'"([^"]+)":(\d+):(\d+)')
_TRACE_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_ATEN_OP = re.compile(r'"(aten\.\w+)"\(')


def _is_user_frame(path: str) -> bool:
    return not any(m in path for m in _LIBRARY_MARKERS)


def user_source_line(location_text: str) -> Optional[str]:
    """The innermost user frame ("file.py:12") from an MLIR location's text, if any; frames
    inside torch, torch-mlir or ember are library code, not the line to show."""
    return user_line(location_frames(location_text))


def user_line(frames: tuple) -> Optional[str]:
    """"file.py:12" of the innermost user frame among (file, line) frames, innermost first
    (else of the innermost frame), if any."""
    user = [fr for fr in frames if _is_user_frame(fr[0])]
    chosen = user[0] if user else (frames[0] if frames else None)
    return f"{chosen[0]}:{chosen[1]}" if chosen else None


def location_frames(location_text: str) -> tuple:
    """Every frame ((file, line), innermost first) of an MLIR location's text."""
    return tuple((f, int(line)) for f, line, _ in _FILE_LINE.findall(location_text))


def stack_trace_frames(stack_trace: Optional[str]) -> tuple:
    """Every frame ((file, line), innermost first, as in a location) of an FX node's
    `stack_trace` (Python's traceback text, outermost first)."""
    return tuple((f, int(line)) for f, line in reversed(_TRACE_FRAME.findall(stack_trace or "")))


def user_line_in_stack_trace(stack_trace: Optional[str]) -> Optional[str]:
    """The innermost user frame ("file.py:12") of an FX node's `stack_trace` (Python's
    traceback text, outermost frame first), if any."""
    frames = _TRACE_FRAME.findall(stack_trace or "")
    user = [f"{path}:{line}" for path, line in frames if _is_user_frame(path)]
    return user[-1] if user else None


def user_frame(traceback) -> Optional[str]:
    """The innermost user frame of a Python traceback, as "file.py:12 (<source line>)"."""
    import traceback as tb
    frames = [f for f in tb.extract_tb(traceback) if _is_user_frame(f.filename)]
    if not frames:
        return None
    f = frames[-1]
    return f"{f.filename}:{f.lineno}" + (f" ({f.line.strip()})" if f.line else "")


def aten_op(location_text: str) -> Optional[str]:
    """The aten op ("aten.embedding") a location is named after, if any."""
    found = _ATEN_OP.search(location_text)
    return found.group(1) if found else None


def describe_origin(location_text: str) -> str:
    """"aten.embedding at model.py:12", as much of it as the location tells."""
    op, line = aten_op(location_text), user_source_line(location_text)
    if op and line:
        return f"{op} at {line}"
    return op or (f"the op at {line}" if line else "an op of the model")
