"""External tools a backend runs (C compilers, ptxas, ld.lld): a failure quotes the exact
command to rerun, as Triton's backends do."""
from __future__ import annotations

import shlex
import subprocess
from typing import List


class ToolError(RuntimeError):
    """An external tool failed; the message quotes the command to rerun."""


def run_tool(cmd: List[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolError(f"{cmd[0]} failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n"
                        f"rerun with:\n  {shlex.join(cmd)}")
