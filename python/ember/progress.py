"""Where a compile is: each frontend step, stage and pass says so here as it starts.

Native code (MLIR, LLVM, torch-mlir) can kill the process it runs in. `ember.compile` therefore
compiles in a worker process (ember.isolation), which listens here and passes every
announcement to its parent; when the worker dies, the parent knows the stage and pass that
were running and holds the input and pipeline that replay that stage in ember-opt. With no
listener (a compile in this process, ember-opt) an announcement costs one function call.

Announcements are keyword fields: `stage` (a stage name, "frontend" for torch-mlir's part),
`step` (what the frontend is doing), `pass_name`, and for a pass stage `pipeline`,
`ir_input` (its input text) and `target` (the target string its passes read).
"""
from __future__ import annotations

from typing import Callable, Optional

_listener: Optional[Callable[[dict], None]] = None


def listen(listener: Optional[Callable[[dict], None]]) -> None:
    """Sends every later announcement to `listener` (None: to nobody)."""
    global _listener
    _listener = listener


def announce(**fields) -> None:
    """Tells the listener, if any, what starts now."""
    if _listener is not None:
        _listener(fields)
