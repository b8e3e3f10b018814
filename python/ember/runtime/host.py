"""The host backend: code that is a shared library for the CPU running this process.

The library exports the ember C runtime API (`ember_runtime.h`, bound in capi.py): the Python
runtime creates the model through it (the C side maps weights.safetensors and binds the
constants), and every call goes through `ember_model_run`, which validates the arguments, builds
the memref descriptors and calls the compiled code. C programs use the same functions, so there
is one runtime. The C side's errors come back as the runtime's usual exceptions, its messages
unchanged.

Loading checks before it runs anything (ember.artifact.store describes the chain of trust; the
C loader, ember_loader.h, makes the same checks on the same files): model.so is read once into
memory, its size, sha256 and seal are checked on those bytes, and only those bytes are loaded,
from a private copy (loading a library runs its constructors, so checking the file and then
loading the path would run whatever the path held by then; and the dynamic loader returns an
already loaded library for a path it has seen, which would keep running stale code after the
artifact directory was rewritten in the same process). The weights are read and checked
against the manifest's sha256 by the C runtime itself (ember_model_create_verified). Names are
fixed: the library, its API functions and the thread hook (capi.THREADS_SYMBOL) are never taken
from the manifest.
"""
from __future__ import annotations

import ctypes
import os
import platform
import tempfile
import threading
import warnings
import weakref
from typing import List, Mapping, Optional, Sequence

from ember.artifact.store import WEIGHTS, ArtifactError, read_library
from ember.runtime import capi
from ember.runtime.errors import (ArgumentError, ArgumentTypeError, DivisionByZeroError,
                                  EmberRuntimeError, ExecutionError, IndexOutOfRangeError,
                                  UnboundConstantError)
from ember.tensor_spec import Shape

ABI = capi.ABI
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}
_ERRORS = {capi.ERROR_ARGUMENT: ArgumentError, capi.ERROR_DTYPE: ArgumentTypeError,
           capi.ERROR_UNBOUND: UnboundConstantError, capi.ERROR_EXECUTION: ExecutionError,
           capi.ERROR_ARTIFACT: ArtifactError, capi.ERROR_MEMORY: MemoryError,
           capi.ERROR_INDEX: IndexOutOfRangeError, capi.ERROR_ZERO_DIVISION: DivisionByZeroError}


class HostBackend:
    """One C model (`ember_model *`) of the artifact's library: every CPU target's artifacts
    (host, aarch64), whose code section is the same; the library's triple must be this
    machine's.

    Buffers passed in are `ember.runtime.tensors.Buffer`s already checked on the Python side
    (kind of object, dtype, device, layout); their dtypes are the declared ones."""

    device = "cpu"
    #: The backend reads and checks its files itself (open_backend does not hash them first).
    checks_its_files = True

    def __init__(self, directory: str, manifest: Mapping, *, manifest_bytes: bytes,
                 verify: bool = True, num_threads: Optional[int] = None):
        """`manifest_bytes`: manifest.json as read (the library's seal is checked against these
        bytes); `verify`: check the weights' sha256 (the library is always checked: it is code,
        and small)."""
        code = manifest["code"][manifest["target"]["kind"]]
        if code.get("abi") != ABI:
            raise ArtifactError(f"host code ABI {code.get('abi')!r} is not supported "
                                f"(this runtime speaks {ABI!r}); recompile the model")
        _check_architecture(manifest["target"])
        self.library = _load_private_copy(read_library(directory, manifest_bytes, manifest))
        try:
            self.api = capi.Library(self.library)
        except LookupError as exc:
            raise ArtifactError(f"the host library does not export the ember C runtime "
                                f"function {exc.args[0]!r}; recompile the model") from None
        version = self.api.abi_version()
        if version != capi.ABI_VERSION:
            raise ArtifactError(f"the host library implements C runtime ABI version {version}; "
                                f"this runtime speaks {capi.ABI_VERSION}; recompile the model")
        self._in_dtypes = [capi.DTYPE_CODES[e["dtype"]] for e in manifest["inputs"]]
        self._out_dtypes = [capi.DTYPE_CODES[e["dtype"]] for e in manifest["outputs"]]
        self._out_ranks = [len(e["shape"]) for e in manifest["outputs"]]
        handle = ctypes.c_void_p()
        err = _error_buffer()
        weights_sha256 = manifest["files"][WEIGHTS]["sha256"].encode() if verify else None
        _check(self.api.model_create_verified(os.fsencode(directory), weights_sha256,
                                              ctypes.byref(handle), err, capi.ERROR_BUFFER), err)
        self.handle = handle
        self._finalizer = weakref.finalize(self, self.api.model_destroy, handle)
        _check_signature(self.api, handle, manifest)
        if num_threads is not None:
            self._set_num_threads(num_threads)

    def new_runtime(self) -> "HostBackend":
        """The C model is reentrant and keeps no per-call state, so every runtime of the pool
        is the backend itself (ctypes releases the GIL while the code runs)."""
        return self

    def pack_inputs(self, inputs: Sequence) -> capi.Tensors:
        """The inputs as the C side takes them (build once, use for shapes and the run)."""
        return capi.Tensors([(b.ptr, code, b.shape) for b, code in zip(inputs, self._in_dtypes)],
                            owners=inputs)

    def output_shapes(self, inputs) -> List[Shape]:
        """Validates the inputs' dtypes and shapes (C side) and returns the outputs' shapes.
        `inputs`: Buffers, or what pack_inputs made of them."""
        ins = inputs if isinstance(inputs, capi.Tensors) else self.pack_inputs(inputs)
        slots = capi.ShapeSlots(self._out_ranks)
        err = _error_buffer()
        _check(self.api.model_output_shapes(self.handle, ins.address, ins.count, slots.address,
                                            err, capi.ERROR_BUFFER), err)
        return slots.shapes()

    def run(self, inputs, outputs: Sequence) -> List[Shape]:
        """Runs on `outputs` (at least this call's size) and returns the actual output shapes.
        `inputs`: Buffers, or what pack_inputs made of them."""
        ins = inputs if isinstance(inputs, capi.Tensors) else self.pack_inputs(inputs)
        outs = capi.Tensors([(b.ptr, code, b.shape)
                             for b, code in zip(outputs, self._out_dtypes)])
        slots = capi.ShapeSlots(self._out_ranks)
        err = _error_buffer()
        _check(self.api.model_run(self.handle, ins.address, ins.count, outs.address, outs.count,
                                  slots.address, err, capi.ERROR_BUFFER), err)
        return slots.shapes()

    def set_constant(self, name: str, buffer, dtype: str) -> None:
        """Binds constant `name` to `buffer`'s memory (referenced, not copied; the caller keeps
        it alive while any run may use it)."""
        value = capi.Tensors([(buffer.ptr, capi.DTYPE_CODES[dtype], buffer.shape)])
        err = _error_buffer()
        _check(self.api.model_set_constant(self.handle, name.encode(), value.address, err,
                                           capi.ERROR_BUFFER), err)

    def profile_counters(self, slots: int):
        """(nanoseconds, entries) per slot of a profile build's timers since the last reset
        (cpu_support.c, in every CPU library; a build without timers never counts)."""
        read = self.library.ember_profile_read
        read.argtypes = [ctypes.POINTER(ctypes.c_int64)] * 2 + [ctypes.c_int32]
        read.restype = ctypes.c_int32
        ns, calls = (ctypes.c_int64 * slots)(), (ctypes.c_int64 * slots)()
        read(ns, calls, slots)
        return list(ns), list(calls)

    def reset_profile(self) -> None:
        reset = self.library.ember_profile_reset
        reset.argtypes, reset.restype = [], None
        reset()

    def _set_num_threads(self, num_threads: int) -> None:
        try:
            fn = getattr(self.library, capi.THREADS_SYMBOL)
        except AttributeError:
            warnings.warn(f"num_threads={num_threads} is ignored: this artifact's code exports "
                          f"no thread-count hook", RuntimeWarning, stacklevel=5)
            return
        fn.argtypes, fn.restype = [ctypes.c_int32], ctypes.c_int32
        status = fn(num_threads)
        if status:
            raise ExecutionError(f"{capi.THREADS_SYMBOL}({num_threads}) returned status {status}")


_local = threading.local()


def _error_buffer():
    """This thread's buffer for the C side's messages."""
    try:
        return _local.buffer
    except AttributeError:
        _local.buffer = ctypes.create_string_buffer(capi.ERROR_BUFFER)
        return _local.buffer


def _check(status: int, err) -> None:
    if status:
        message = err.value.decode("utf-8", "replace") or f"C runtime status {status}"
        raise _ERRORS.get(status, EmberRuntimeError)(message)


def _check_signature(api: capi.Library, handle, manifest: Mapping) -> None:
    """The tables compiled into the library must describe the manifest's model."""
    roles = (("input", "inputs", api.model_num_inputs, api.model_input_info),
             ("output", "outputs", api.model_num_outputs, api.model_output_info),
             ("constant", "constants", api.model_num_constants, api.model_constant_info))
    for role, key, count, info_of in roles:
        entries = manifest[key]
        if count(handle) != len(entries):
            raise ArtifactError(f"the host library's model has {count(handle)} {role}s, the "
                                f"manifest {len(entries)}; the artifact is inconsistent")
        info = capi.TensorInfo()
        for i, entry in enumerate(entries):
            info_of(handle, i, ctypes.byref(info))
            library = (info.name.decode(), info.dtype, info.shape_text.decode())
            expected = (entry["name"], capi.DTYPE_CODES[entry["dtype"]],
                        "[" + ", ".join(str(d) for d in entry["shape"]) + "]")
            if library != expected or (role == "constant" and
                                       bool(info.bound) != entry["bound"]):
                raise ArtifactError(f"the host library's {role} {i} is {library}, the manifest "
                                    f"says {expected}; the artifact is inconsistent")
    if api.model_num_symbols(handle) != len(manifest["symbols"]):
        raise ArtifactError("the host library's symbols differ from the manifest's")


def _check_architecture(target: Mapping) -> None:
    triple = target.get("triple")
    if not triple:
        return
    wanted = triple.split("-")[0].lower()
    here = platform.machine().lower()
    if _ARCH_ALIASES.get(wanted, wanted) != _ARCH_ALIASES.get(here, here):
        raise ArtifactError(f"the artifact was compiled for {triple}; this machine is "
                            f"{platform.machine()}")


def _load_private_copy(library: bytes) -> ctypes.CDLL:
    """Loads the checked `library` bytes from a private file of this process (see the module
    docstring); the file is gone once loaded."""
    fd, copy = tempfile.mkstemp(prefix="ember-", suffix=".so")
    try:
        with os.fdopen(fd, "wb") as dst:
            dst.write(library)
        return ctypes.CDLL(copy)
    except OSError as exc:
        raise ArtifactError(f"cannot load the checked host library: {exc}") from None
    finally:
        os.unlink(copy)
