"""The host backend: code that is a shared library for the CPU running this process.

The library exports `int32_t <symbol>(void **args)` (see descriptors.py for the argument
structs) and, optionally, `int32_t <threads_symbol>(int32_t num_threads)`. It is loaded from a
private copy: the dynamic loader returns an already loaded library for a path it has seen, so
loading the artifact path itself would keep running stale code after the artifact directory
was rewritten in the same process.
"""
from __future__ import annotations

import ctypes
import os
import platform
import shutil
import tempfile
import warnings
from typing import Callable, Mapping, Optional

from ember.artifact import ArtifactError
from ember.runtime.errors import ExecutionError

ABI = "ember-memref-v1"
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


class HostBackend:
    device = "cpu"

    def __init__(self, directory: str, manifest: Mapping, *, num_threads: Optional[int] = None):
        code = manifest["code"]["host"]
        if code.get("abi") != ABI:
            raise ArtifactError(f"host code ABI {code.get('abi')!r} is not supported "
                                f"(this runtime speaks {ABI!r}); recompile the model")
        if code["library"] not in manifest["files"]:
            raise ArtifactError(f"host library {code['library']!r} is not listed in the "
                                f"manifest's files, so it cannot be verified")
        _check_architecture(manifest["target"])
        self.library = _load_private_copy(os.path.join(directory, code["library"]))
        self._entry = _function(self.library, code["symbol"], ctypes.c_void_p)
        if num_threads is not None:
            self._set_num_threads(code.get("threads_symbol"), num_threads)

    def new_runtime(self) -> Callable[[ctypes.Array], int]:
        """Host code is reentrant and keeps no per-call state, so each runtime is the entry
        point itself (ctypes releases the GIL while it runs)."""
        return self._entry

    def _set_num_threads(self, symbol: Optional[str], num_threads: int) -> None:
        if symbol is None:
            warnings.warn(f"num_threads={num_threads} is ignored: this artifact's code exports "
                          f"no thread-count hook", RuntimeWarning, stacklevel=5)
            return
        status = _function(self.library, symbol, ctypes.c_int32)(num_threads)
        if status:
            raise ExecutionError(f"{symbol}({num_threads}) returned status {status}")


def _check_architecture(target: Mapping) -> None:
    triple = target.get("triple")
    if not triple:
        return
    wanted = triple.split("-")[0].lower()
    here = platform.machine().lower()
    if _ARCH_ALIASES.get(wanted, wanted) != _ARCH_ALIASES.get(here, here):
        raise ArtifactError(f"the artifact was compiled for {triple}; this machine is "
                            f"{platform.machine()}")


def _load_private_copy(path: str) -> ctypes.CDLL:
    fd, copy = tempfile.mkstemp(prefix="ember-", suffix=".so")
    try:
        with os.fdopen(fd, "wb") as dst, open(path, "rb") as src:
            shutil.copyfileobj(src, dst)
        return ctypes.CDLL(copy)
    except OSError as exc:
        raise ArtifactError(f"cannot load the host library {path}: {exc}") from None
    finally:
        os.unlink(copy)


def _function(library: ctypes.CDLL, symbol: str, argtype) -> Callable:
    try:
        fn = getattr(library, symbol)
    except AttributeError:
        raise ArtifactError(f"the host library does not export {symbol!r}") from None
    fn.argtypes, fn.restype = [argtype], ctypes.c_int32
    return fn
