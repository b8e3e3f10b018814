"""The artifact: a directory the compiler writes and the runtime loads.

    manifest.json          what the code computes and how to call it (schema below)
    weights.safetensors    the bound constants, by name (no pickle; safe to load), each one
                           64-byte aligned (ember.artifact.weights_file)
    model.so               the code: for target kind "host" a shared library exporting the
                           ember C runtime API (ember_runtime.h; the Python runtime uses it too)
                           and the compiled entry point
                           `int32_t ember_entry(void **args, int64_t *fault)`
    ember_runtime.h        (compiled CPU artifacts) the C API's header, for C programs

The manifest is the contract between the two halves, so it is versioned (`format_version`) and
self-checking (`files` holds the sha256 of every other file): a runtime refuses an artifact it
does not understand or whose files changed since they were written, instead of running it.

An artifact is untrusted data until verified. The chain of trust needs no key (so it catches
corrupted, truncated, planted and edited files and artifacts mixed from two, not someone who
rewrites every file consistently):
  - the manifest lists the size and sha256 of the code library; a loader reads the library
    once into memory and checks them before loading those very bytes (loading runs code);
  - the library carries a seal (SEAL_MAGIC, then a sha256) that `write_artifact` sets to the
    sha256 of the manifest's bytes with the library's own sha256 written as zeros (the one part
    of the manifest that depends on the seal), so every other byte of the manifest is covered;
    the loaders check it on the library's bytes, before loading them;
  - the weights' sha256 comes from that manifest and is checked by the C runtime on the bytes
    it binds.
File names and entry points are fixed by the format (LIBRARY, WEIGHTS, and the C runtime's own
symbols): the manifest names nothing a loader opens or calls. Every file is read only when it
is a regular file of sane size (never a FIFO or a device), and the manifest's JSON only when it
is small and shallow enough, so a hostile artifact gets an ArtifactError, never a hang, a
MemoryError or a RecursionError. The Python loader (ember.runtime.host) and the C loader
(runtime/c/ember_loader.h) read the same files and make the same checks.

Code is packaged per target kind: `target.kind` names the runtime backend that loads the
artifact and `code[target.kind]` is that backend's section (host: library, symbol, abi).
Another target (CUDA PTX/cubin plus a launch plan, ROCm HSACO) adds its own kind and section
without changing the rest of the format.

Schema (format_version 1):

    format, format_version, ember_version
    target     {"kind": "host", "triple": "x86_64-unknown-linux-gnu", "cpu": "haswell", ...}
    code       {"host": {"library": "model.so", "symbol": "ember_entry",
                         "abi": "ember-c-runtime-v1",
                         "threads_symbol": "ember_set_num_threads" (optional)}}
               abi "ember-c-runtime-v1": the library exports ember_runtime.h's API, version 1
               (it replaced "ember-memref-v1", a bare entry point, which is no longer loaded);
               its library and symbols are fixed names, stated here for readers: a manifest
               naming others is malformed
    symbols    {"s0": {"min": 1, "max": 4096}}           ranges of the dynamic dims
    inputs     [{"name", "dtype", "shape"}]              shape: ints and symbol expressions
    constants  [{"name", "dtype", "shape", "bound"}]     static shapes; bound: data in weights
    outputs    [{"name", "dtype", "shape", "max_shape", "writes_back" (optional)}]
               writes_back {"input": name} or {"constant": name}: this output is the new value
               of that input or constant, which the model changes in place (`x.copy_(y)`, a
               buffer updated in forward); the runtime copies it there after each run, so the
               caller's input changes and the next run reads the new constant. Same dtype and
               shape as its target.
    output_tree  optional (ember.output_tree): what forward returns around the outputs (a dict,
               dataclass, tuple with constants or None); outputs it leaves out (the mutations)
               are not returned by a call
    weights    "weights.safetensors" (fixed)
    files      {"model.so": {"sha256": hex, "size": bytes}, "weights.safetensors": {...}, ...}
    metadata   optional, free-form (the compiler's own notes; the runtime ignores it)

dtypes are numpy dtype names. Every symbol must appear bare or in a solvable (affine) input
dimension, so the runtime can bind it from the input shapes; outputs use only those symbols.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import sys
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ember._version import __version__
from ember.artifact.publish import staged_directory
from ember.artifact.weights_file import save_weights
from ember.output_tree import OutputTreeError, validate as validate_output_tree
from ember.symbolic import Dim, SymbolicError

FORMAT = "ember-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
HOST_CODE_DEFAULTS = {"library": "model.so", "symbol": "ember_entry", "abi": "ember-c-runtime-v1"}
DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                    "uint64", "float16", "bfloat16", "float32", "float64", "complex64",
                    "complex128"})
_HASH_CHUNK = 1 << 20
#: The ember C runtime's ABI; its library and symbols have fixed names.
C_RUNTIME_ABI = HOST_CODE_DEFAULTS["abi"]
LIBRARY = HOST_CODE_DEFAULTS["library"]
C_RUNTIME_NAMES = {"library": LIBRARY, "symbol": HOST_CODE_DEFAULTS["symbol"],
                   "threads_symbol": "ember_set_num_threads"}
#: Sane limits for what a loader reads into memory (ember_loader.h has the same).
MAX_MANIFEST_BYTES = 64 << 20
MAX_LIBRARY_BYTES = 1 << 30
MAX_JSON_DEPTH = 64
#: The first bytes of the seal in a C runtime library (EMBER_SEAL_MAGIC in ember_runtime.h);
#: the sha256 of the manifest follows.
SEAL_MAGIC = bytes.fromhex("e00198278cc46b9b99f133c05fab6ef0")
_SEAL_SIZE = len(SEAL_MAGIC) + 32
_UNSEALED = "0" * 64


class ArtifactError(ValueError):
    """An artifact that is missing, malformed, of an unsupported version, or was modified."""


def write_artifact(path, *, manifest: Mapping, weights: Mapping[str, np.ndarray],
                   files: Mapping[str, str]) -> None:
    """Writes the artifact directory `path` (an old artifact there is replaced atomically: the
    new one is built beside it, ember.artifact.publish, so a failure leaves the old one intact).

    `manifest` holds target, code (optional: defaults fill the host section), symbols, inputs,
    constants and outputs. Missing pieces are derived: an output's `max_shape` from its shape
    and the symbol ranges; a constant's `bound` from whether `weights` holds it, and a bound
    constant's dtype and shape from its array. `files` (artifact file name ->
    path) are the target's code and anything shipped with it (e.g. the C runtime's header);
    they are copied in and listed in `files` with their hashes. The code section's `library`,
    when it names one, must be among them; a C runtime library (abi C_RUNTIME_ABI) is sealed
    with the manifest's sha256 (see the module docstring), so it must carry the seal.
    """
    weights = {name: np.asarray(array) for name, array in weights.items()}
    manifest = _guarded(_complete, manifest, weights)
    validate_manifest(manifest)
    files = dict(files)
    for name in files:
        if not _is_basename(name) or name in (WEIGHTS, MANIFEST):
            raise ArtifactError(f"artifact file name {name!r} must be a plain file name other "
                                f"than {WEIGHTS} and {MANIFEST}")
    library = LIBRARY if _runs_c_runtime(manifest) else \
        manifest["code"][manifest["target"]["kind"]].get("library")
    if library is not None and library not in files:
        raise ArtifactError(f"the code library {library!r} is not among the artifact's files "
                            f"{sorted(files)}")
    sealed = LIBRARY if _runs_c_runtime(manifest) else None
    with staged_directory(path) as stage:
        for name, source in files.items():
            shutil.copyfile(source, os.path.join(stage, name))
        save_weights(os.path.join(stage, WEIGHTS), weights, metadata={"format": FORMAT})
        manifest["files"] = {name: _describe_file(os.path.join(stage, name))
                             for name in (*files, WEIGHTS)}
        if sealed is not None:
            manifest["files"][sealed]["sha256"] = _UNSEALED
            _write_seal(os.path.join(stage, sealed), hashlib.sha256(_dump(manifest)).digest())
            manifest["files"][sealed] = _describe_file(os.path.join(stage, sealed))
        with open(os.path.join(stage, MANIFEST), "wb") as f:
            f.write(_dump(manifest))


def _dump(manifest: Mapping) -> bytes:
    """The manifest file's bytes (ASCII JSON; the seal covers exactly these)."""
    return (json.dumps(manifest, indent=2) + "\n").encode("ascii")


def _write_seal(library: str, digest: bytes) -> None:
    with open(library, "r+b") as f:
        at = _seal_offset(f.read(), library)
        f.seek(at + len(SEAL_MAGIC))
        f.write(digest)


def _seal_offset(library: bytes, where: str) -> int:
    """Where the library's seal starts; ArtifactError unless it has exactly one."""
    at = library.find(SEAL_MAGIC)
    if at < 0 or at + _SEAL_SIZE > len(library) or library.find(SEAL_MAGIC, at + 1) >= 0:
        raise ArtifactError(f"{where} carries {'no' if at < 0 else 'more than one'} manifest seal"
                            f" (it was not built by this ember's C runtime); recompile the model")
    return at


def check_seal(directory, manifest_bytes: bytes, manifest: Mapping, library: bytes) -> None:
    """The library's seal must be the sha256 of the manifest's bytes with the library's sha256
    (spelled exactly once) written as zeros: every other byte of the manifest is then covered
    by the library's hash. Raises ArtifactError."""
    where = os.path.join(os.fspath(directory), LIBRARY)
    at = _seal_offset(library, where)
    quoted = f'"{manifest["files"][LIBRARY]["sha256"]}"'.encode()
    if manifest_bytes.count(quoted) != 1:
        raise ArtifactError(f"{os.path.join(os.fspath(directory), MANIFEST)} must spell "
                            f"{LIBRARY}'s sha256 exactly once")
    digest = hashlib.sha256(manifest_bytes.replace(quoted, f'"{_UNSEALED}"'.encode())).digest()
    if library[at + len(SEAL_MAGIC):at + _SEAL_SIZE] != digest:
        raise ArtifactError(f"{os.path.join(os.fspath(directory), MANIFEST)} does not match the "
                            f"seal in {LIBRARY}: the manifest was edited after the artifact was "
                            f"written, or belongs to another library; restore it or recompile "
                            f"the model")


def read_library(directory, manifest_bytes: bytes, manifest: Mapping) -> bytes:
    """The bytes of the artifact's C runtime library, checked before anything loads them: a
    regular file of the listed size (at most MAX_LIBRARY_BYTES) with the listed sha256, whose
    seal matches `manifest_bytes` (the manifest as read, parsed into `manifest`)."""
    entry = manifest["files"].get(LIBRARY)
    if entry is None:
        raise ArtifactError(f"{LIBRARY} is not listed in the manifest's files, so it cannot be "
                            f"verified")
    path = os.path.join(os.fspath(directory), LIBRARY)
    if entry["size"] > MAX_LIBRARY_BYTES:
        raise ArtifactError(f"{MANIFEST} lists a {LIBRARY} of {entry['size']} bytes, more than "
                            f"the {MAX_LIBRARY_BYTES} a library may have")
    library = read_regular_file(path, MAX_LIBRARY_BYTES, entry)
    check_seal(directory, manifest_bytes, manifest, library)
    return library


def read_regular_file(path: str, limit: int, entry: Optional[Mapping] = None) -> bytes:
    """The bytes of `path` when it is a regular file of at most `limit` bytes (a FIFO or device
    is never opened, so reading cannot hang or run forever); with a manifest `entry`, its size
    and sha256 must be the listed ones."""
    fd, size = _open_regular(path, limit)
    with os.fdopen(fd, "rb") as f:
        if entry is not None:
            _check_size(path, size, entry)
        data = f.read(size)
    if len(data) != size:
        raise ArtifactError(f"cannot read {path}: the file was truncated while being read")
    if entry is not None:
        _check_digest(path, hashlib.sha256(data).hexdigest(), entry)
    return data


def _open_regular(path: str, limit: int) -> Tuple[int, int]:
    """A descriptor for `path` and its size, if it is a regular file of at most `limit` bytes:
    its type is checked before opening (no FIFO or device is ever opened) and on the open file
    (opened non-blocking, so a FIFO swapped in between cannot block)."""
    try:
        before = os.stat(path)
    except OSError as exc:
        raise ArtifactError(f"cannot open {path}: {exc.strerror}") from None
    if not stat.S_ISREG(before.st_mode):
        raise ArtifactError(f"{path} is not a regular file (a FIFO, device, socket or "
                            f"directory); refusing to read it")
    if before.st_size > limit:
        raise ArtifactError(f"{path} has {before.st_size} bytes, more than the {limit} this "
                            f"file of an artifact may have; refusing to read it")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ArtifactError(f"cannot open {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_ino, st.st_dev) != (before.st_ino, before.st_dev) \
            or st.st_size > limit:
        os.close(fd)
        raise ArtifactError(f"{path} changed while being opened; refusing to read it")
    return fd, st.st_size


def _check_size(path: str, size: int, entry: Mapping) -> None:
    if size != entry["size"]:
        raise ArtifactError(f"artifact file {path} was modified or corrupted: it has {size} "
                            f"bytes, the manifest lists {entry['size']}")


def _check_digest(path: str, actual: str, entry: Mapping) -> None:
    if actual != entry["sha256"]:
        raise ArtifactError(f"artifact file {path} was modified or corrupted: sha256 is "
                            f"{actual}, the manifest expects {entry['sha256']}")


def read_manifest(path, verify: bool = True) -> dict:
    """The validated manifest of the artifact at `path`; with `verify`, every listed file is
    hashed (and a C runtime library's seal checked).

    Raises ArtifactError when the manifest is missing or malformed, its format_version is not
    supported, or (with `verify`) a listed file is missing or its sha256 differs.
    """
    manifest_bytes, manifest = load_manifest(path)
    if verify:
        verify_files(path, manifest_bytes, manifest)
    return manifest


def load_manifest(path) -> Tuple[bytes, dict]:
    """The bytes of the artifact's manifest.json (read once: checks of the artifact use these
    bytes) and the validated manifest they hold. The file must be a regular file of at most
    MAX_MANIFEST_BYTES holding JSON nested at most MAX_JSON_DEPTH levels."""
    manifest_path = os.path.join(os.fspath(path), MANIFEST)
    if not os.path.lexists(manifest_path):
        raise ArtifactError(f"{os.fspath(path)!r} is not an ember artifact: no {MANIFEST}")
    raw = read_regular_file(manifest_path, MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(raw)
    except RecursionError:
        manifest = None  # deeper than the recursion limit: refused as too deep below
    except ValueError as exc:
        raise ArtifactError(f"cannot read {manifest_path}: {exc}") from None
    if manifest is None or _depth(manifest) > MAX_JSON_DEPTH:
        raise ArtifactError(f"cannot read {manifest_path}: JSON nested deeper than "
                            f"{MAX_JSON_DEPTH} levels")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{manifest_path}: not an {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{manifest_path}: format_version {manifest.get('format_version')!r} "
                            f"is not supported (this ember {__version__} reads {FORMAT_VERSION}); "
                            f"recompile the model")
    validate_manifest(manifest)
    _guarded(_validate_files, manifest)
    return raw, manifest


def verify_files(directory, manifest_bytes: bytes, manifest: Mapping) -> None:
    """Hashes every file the manifest lists (regular files of the listed sizes) and checks a C
    runtime library's seal against `manifest_bytes`. For loaders that read their files
    themselves, a loader checks what it reads instead (ember.runtime.host)."""
    for name, entry in manifest["files"].items():
        _verify_file(directory, name, entry)
    if _runs_c_runtime(manifest):
        check_seal(directory, manifest_bytes, manifest,
                   read_regular_file(os.path.join(os.fspath(directory), LIBRARY),
                                     MAX_LIBRARY_BYTES))


def _depth(value) -> int:
    """How deep JSON containers nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else \
            node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level)
            if level <= MAX_JSON_DEPTH:
                stack.extend((child, level + 1) for child in children)
    return deepest


def _runs_c_runtime(manifest: Mapping) -> bool:
    return manifest["code"][manifest["target"]["kind"]].get("abi") == C_RUNTIME_ABI


def validate_manifest(manifest: Mapping) -> None:
    """Checks the schema and cross-references of everything but `files` (which only a written
    artifact has); raises ArtifactError naming the bad field."""
    _guarded(_validate, manifest)


def _guarded(check, *args):
    """Runs a schema walk, turning the lookup and type errors of malformed input into one
    ArtifactError."""
    try:
        return check(*args)
    except (KeyError, TypeError, AttributeError, SymbolicError, OutputTreeError) as exc:
        detail = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
        raise ArtifactError(f"malformed manifest: {detail}") from None


def _complete(manifest: Mapping, weights: Mapping[str, np.ndarray]) -> dict:
    """The full manifest from the compiler's fields: version stamps and derived entries."""
    stamps = {"format": FORMAT, "format_version": FORMAT_VERSION, "ember_version": __version__}
    # A deep copy in JSON's types (tuples become lists), with the stamps first for readers.
    manifest = {**stamps, **json.loads(json.dumps(manifest)), **stamps, "weights": WEIGHTS}
    kind = manifest["target"]["kind"]
    manifest.setdefault("code", {})
    if kind == "host":
        manifest["code"]["host"] = {**HOST_CODE_DEFAULTS, **manifest["code"].get("host", {})}
    declared = {c["name"] for c in manifest["constants"]}
    stray = sorted(set(weights) - declared)
    if stray:
        raise ArtifactError(f"weights {stray} have no entry in the manifest's constants")
    for const in manifest["constants"]:
        array = weights.get(const["name"])
        const.setdefault("bound", array is not None)
        if const["bound"] and array is None:
            raise ArtifactError(f"constant {const['name']!r} is bound but has no weights array")
        if array is None and not {"dtype", "shape"} <= const.keys():
            raise ArtifactError(f"constant {const['name']!r} has no weights array (it is unbound),"
                                f" so the manifest must give its dtype and shape")
        if array is not None:
            const.setdefault("dtype", array.dtype.name)
            const.setdefault("shape", list(array.shape))
            if (const["dtype"], list(const["shape"])) != (array.dtype.name, list(array.shape)):
                raise ArtifactError(
                    f"constant {const['name']!r}: manifest says {const['dtype']}{const['shape']}, "
                    f"its weights array is {array.dtype.name}{list(array.shape)}")
    ranges = {s: (r["min"], r["max"]) for s, r in manifest["symbols"].items()}
    for out in manifest["outputs"]:
        dims = [Dim(d) for d in out["shape"]]
        if "max_shape" not in out and set().union(*(d.symbols for d in dims)) <= ranges.keys():
            try:  # (undeclared symbols are left for validate_manifest to report)
                out["max_shape"] = [d.bounds(ranges)[1] for d in dims]
            except SymbolicError as exc:
                raise ArtifactError(f"output {out['name']!r}: cannot derive max_shape ({exc}); "
                                    f"give it explicitly") from None
    return manifest


def _validate(m: Mapping) -> None:
    if not isinstance(m["target"], dict) or not isinstance(m["target"]["kind"], str):
        raise TypeError("target must be a dict with a string 'kind'")
    if not isinstance(m["code"].get(m["target"]["kind"]), dict):
        raise TypeError(f"code has no section for target kind {m['target']['kind']!r}")
    code = m["code"][m["target"]["kind"]]
    if code.get("abi") == C_RUNTIME_ABI:
        for field, fixed in C_RUNTIME_NAMES.items():
            if code.get(field, fixed) != fixed:
                raise TypeError(f"code.{m['target']['kind']}.{field} is {code[field]!r}; the C "
                                f"runtime's loaders open and call only fixed names, so it must be "
                                f"{fixed!r}")
    if m.get("weights", WEIGHTS) != WEIGHTS:
        raise TypeError(f"weights is {m['weights']!r}; the weights file is always {WEIGHTS}")
    for name, r in m["symbols"].items():
        if not (name.isidentifier() and Dim(name).symbol == name):
            raise TypeError(f"symbol name {name!r} is not an identifier")
        if not (_is_int(r["min"]) and _is_int(r["max"]) and 0 <= r["min"] <= r["max"]):
            raise TypeError(f"symbol {name}: need integers 0 <= min <= max, got {r}")
    input_symbols = _validate_tensors(m, "inputs", set(m["symbols"]))
    unused = set(m["symbols"]) - input_symbols
    if unused:
        raise TypeError(f"symbols {sorted(unused)} appear in no input shape")
    _validate_tensors(m, "constants", set())
    _validate_tensors(m, "outputs", input_symbols)
    _validate_write_backs(m)
    if "output_tree" in m:
        validate_output_tree(m["output_tree"], len(m["outputs"]))


def _validate_write_backs(m: Mapping) -> None:
    targets = {"input": {t["name"]: t for t in m["inputs"]},
               "constant": {t["name"]: t for t in m["constants"]}}
    written = set()
    for out in m["outputs"]:
        if "writes_back" not in out:
            continue
        where = f"output {out['name']!r}: writes_back {out['writes_back']!r}"
        if not isinstance(out["writes_back"], dict) or len(out["writes_back"]) != 1:
            raise TypeError(f"{where} must be {{\"input\": name}} or {{\"constant\": name}}")
        (kind, name), = out["writes_back"].items()
        target = targets.get(kind, {}).get(name)
        if target is None:
            raise TypeError(f"{where} names no {kind} of the model")
        if (target["dtype"], target["shape"]) != (out["dtype"], out["shape"]):
            raise TypeError(f"{where}: the {kind} is {target['dtype']}{target['shape']}, the "
                            f"output {out['dtype']}{out['shape']}")
        if (kind, name) in written:
            raise TypeError(f"{where}: written back by two outputs")
        written.add((kind, name))


def _validate_files(m: Mapping) -> None:
    for name, entry in m["files"].items():
        if not _is_basename(name) or not isinstance(entry["sha256"], str) or \
                not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) or not _is_int(entry["size"]) \
                or entry["size"] < 0:
            raise TypeError(f"files[{name!r}]: need a plain file name, a sha256 hex digest and a "
                            f"size")
    if m["weights"] not in m["files"]:
        raise TypeError(f"weights file {m['weights']!r} is not listed in files")


def _validate_tensors(m: Mapping, kind: str, allowed: set) -> set:
    """Checks the `kind` list (its shapes may use only `allowed` symbols); returns the used ones."""
    required = {"name", "dtype", "shape"} | ({"bound"} if kind == "constants" else set())
    for i, t in enumerate(m[kind]):
        if not required <= t.keys():
            raise TypeError(f"{kind}[{i}] lacks {sorted(required - t.keys())}")
    names = [t["name"] for t in m[kind]]
    if len(set(names)) != len(names):
        raise TypeError(f"{kind}: duplicate names in {names}")
    used = set()
    for t in m[kind]:
        where = f"{kind[:-1]} {t['name']!r}"
        if t["dtype"] not in DTYPES:
            raise TypeError(f"{where}: dtype {t['dtype']!r} is not one of {sorted(DTYPES)}")
        if not isinstance(t["shape"], list):
            raise TypeError(f"{where}: shape must be a list, got {t['shape']!r}")
        dims = [Dim(d) for d in t["shape"]]
        if any(d.constant is not None and d.constant < 0 for d in dims):
            raise TypeError(f"{where}: shape {t['shape']} has a negative dim")
        symbols = set().union(*(d.symbols for d in dims))
        if symbols - allowed:
            raise TypeError(f"{where}: shape {t['shape']} uses {sorted(symbols - allowed)}; "
                            f"allowed here: {sorted(allowed)}")
        used |= symbols
        if kind == "constants" and not isinstance(t["bound"], bool):
            raise TypeError(f"{where}: 'bound' must be true or false")
        if kind == "outputs":
            _validate_max_shape(where, dims, t.get("max_shape"))
    return used


def _validate_max_shape(where: str, dims, max_shape) -> None:
    if not isinstance(max_shape, list) or len(max_shape) != len(dims) or \
            not all(_is_int(n) and n >= 0 for n in max_shape):
        raise TypeError(f"{where}: max_shape {max_shape} needs {len(dims)} non-negative ints")
    for dim, n in zip(dims, max_shape):
        if dim.constant is not None and dim.constant != n:
            raise TypeError(f"{where}: max_shape {max_shape} disagrees with static dim {dim.text}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_basename(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..", MANIFEST) and \
        os.path.basename(name) == name and "\\" not in name


def _describe_file(path: str) -> Dict[str, object]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return {"sha256": digest.hexdigest(), "size": os.path.getsize(path)}


def _verify_file(directory, name: str, entry: Mapping) -> None:
    path = os.path.join(os.fspath(directory), name)
    if not os.path.lexists(path):
        raise ArtifactError(f"artifact file {name!r} listed in the manifest is missing from "
                            f"{os.fspath(directory)!r}")
    fd, size = _open_regular(path, sys.maxsize)  # (the size is checked before reading)
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        _check_size(path, size, entry)
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    _check_digest(path, digest.hexdigest(), entry)
