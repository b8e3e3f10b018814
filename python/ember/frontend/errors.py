"""Errors the frontend raises, phrased so a user can act on them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional


@dataclass
class UnsupportedOp:
    aten_op: str               # the op the user's call became ("aten.linear", "aten.nonzero")
    source: Optional[str]      # "file.py:line" of the user's code, when known
    reason: str = ""
    call: str = ""             # how the user called it ("called as linear in module 'fc' (Linear)")

    def describe(self) -> str:
        where = self.source or "unknown source location"
        call = f" ({self.call})" if self.call else ""
        return f"  {self.aten_op}{call} at {where}" + (f": {self.reason}" if self.reason else "")


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

