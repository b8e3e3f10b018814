"""Errors the frontend raises, phrased so a user can act on them."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

#: Frames inside these packages are never "the user's line".
_LIBRARY_MARKERS = ("/torch/", "/torch_mlir/", "/ember/", "site-packages/", "<frozen")


@dataclass
class UnsupportedOp:
    aten_op: str
    source: Optional[str]      # "file.py:line" of the user's code, when known
    reason: str = ""

    def describe(self) -> str:
        where = self.source or "unknown source location"
        return f"  {self.aten_op} at {where}" + (f": {self.reason}" if self.reason else "")


class UnsupportedOpsError(RuntimeError):
    """The model uses ops that neither ember's conversion nor torch-mlir's lowering handles."""

    def __init__(self, ops: List[UnsupportedOp]):
        self.ops = ops
        lines = [f"ember cannot compile {len(ops)} op(s) of this model:"]
        lines += [op.describe() for op in ops]
        lines.append("hint: rewrite these calls with supported ops (docs/op_table.md lists them), "
                     "or file an issue naming the op; the fallback covers what torch-mlir "
                     "lowers (TorchToLinalg and TorchToTMTensor).")
        super().__init__("\n".join(lines))


class ExportError(RuntimeError):
    """torch.export could not capture the model."""


_FILE_LINE = re.compile(r'"([^"]+)":(\d+):(\d+)')
_TRACE_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _is_user_frame(path: str) -> bool:
    return not any(m in path for m in _LIBRARY_MARKERS)


def user_source_line(location_text: str) -> Optional[str]:
    """The innermost user frame ("file.py:12") from an MLIR location's text, if any.

    torch-mlir encodes an FX node's stack as nested `callsite(callee at caller)` locations;
    frames inside torch, torch-mlir or ember are library code, not the line to show.
    """
    frames = [(f, int(line)) for f, line, _ in _FILE_LINE.findall(location_text)]
    user = [fr for fr in frames if _is_user_frame(fr[0])]
    chosen = user[0] if user else (frames[0] if frames else None)
    return f"{chosen[0]}:{chosen[1]}" if chosen else None


def user_frame(traceback) -> Optional[str]:
    """The innermost user frame of a Python traceback, as "file.py:12: <source line>"."""
    import traceback as tb
    frames = [f for f in tb.extract_tb(traceback) if _is_user_frame(f.filename)]
    if not frames:
        return None
    f = frames[-1]
    return f"{f.filename}:{f.lineno}" + (f" ({f.line.strip()})" if f.line else "")


def user_line_in_stack_trace(stack_trace: Optional[str]) -> Optional[str]:
    """The innermost user frame ("file.py:12") of an FX node's `stack_trace` (Python's
    traceback text, outermost frame first), if any."""
    frames = _TRACE_FRAME.findall(stack_trace or "")
    user = [f"{path}:{line}" for path, line in frames if _is_user_frame(path)]
    return user[-1] if user else None
