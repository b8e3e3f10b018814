"""Where ember keeps what it can reuse across processes: `$EMBER_CACHE_DIR`, else
`$XDG_CACHE_HOME/ember`, else `~/.cache/ember`. Subdirectories: `runtime/` (the C runtime's
compiled objects, ember.backends.cpu.c_runtime) and `artifacts/` (the compile cache,
ember.artifact.cache)."""
from __future__ import annotations

import os

DIR_VARIABLE = "EMBER_CACHE_DIR"


def cache_root() -> str:
    return os.environ.get(DIR_VARIABLE) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "ember")
