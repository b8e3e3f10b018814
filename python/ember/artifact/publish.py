"""Publishing an artifact directory atomically.

An artifact is built in a fresh directory beside its destination and then renamed into place,
so a failure while writing it (a full disk, a kill) leaves the previous artifact intact and
loadable, and a reader never sees a half-written one. Replacing an existing directory uses
Linux's renameat2(RENAME_EXCHANGE), one atomic swap; where the kernel or filesystem lacks it,
the old directory is renamed aside first (a reader then may briefly find no artifact, never a
partial one).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from typing import Iterator

#: renameat2's flag and the "current directory" fd (linux/fcntl.h).
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextlib.contextmanager
def staged_directory(path: str) -> Iterator[str]:
    """Yields an empty directory beside `path` to build into; when the block succeeds it
    replaces `path`, when it raises it is removed and `path` is left as it was."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(stage, 0o777 & ~umask)          # mkdtemp's 0700 would hide it from other users
    try:
        yield stage
        _replace(stage, path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)   # the failed build, or the replaced artifact


def _replace(new: str, path: str) -> None:
    """Puts directory `new` at `path`; afterwards `new` holds the old artifact (if any)."""
    if not os.path.lexists(path):
        os.rename(new, path)
        return
    if _exchange(new, path):
        return
    aside = new + ".old"
    os.rename(path, aside)
    os.rename(new, path)
    os.rename(aside, new)


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps the entries `a` and `b`; False where renameat2 is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0
