"""The artifact: a directory the compiler writes and the runtime loads.

    manifest.json          what the code computes and how to call it (schema below)
    weights.safetensors    the bound constants, by name (no pickle; safe to load)
    model.so               the code: for target kind "host" a shared library exporting the
                           ember C runtime API (ember_runtime.h; the Python runtime uses it too)
                           and the compiled entry point `int32_t ember_entry(void **args)`
    ember_runtime.h        (compiled CPU artifacts) the C API's header, for C programs

The manifest is the contract between the two halves, so it is versioned (`format_version`) and
self-checking (`files` holds the sha256 of every other file): a runtime refuses an artifact it
does not understand or whose files changed since they were written, instead of running it.

Code is packaged per target kind: `target.kind` names the runtime backend that loads the
artifact and `code[target.kind]` is that backend's section (host: library, symbol, abi).
Another target (CUDA PTX/cubin plus a launch plan, ROCm HSACO) adds its own kind and section
without changing the rest of the format.

Schema (format_version 1):

    format, format_version, ember_version
    target     {"kind": "host", "triple": "x86_64-unknown-linux-gnu", "cpu": "haswell", ...}
    code       {"host": {"library": "model.so", "symbol": "ember_entry",
                         "abi": "ember-c-runtime-v1",
                         "threads_symbol": optional name of `int32_t f(int32_t num_threads)`}}
               abi "ember-c-runtime-v1": the library exports ember_runtime.h's API, version 1
               (it replaced "ember-memref-v1", a bare entry point, which is no longer loaded)
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
    weights    "weights.safetensors"
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
from typing import Dict, Mapping

import numpy as np
from safetensors.numpy import save_file

from ember._version import __version__
from ember.artifact.publish import staged_directory
from ember.output_tree import OutputTreeError, validate as validate_output_tree
from ember.symbolic import Dim, SymbolicError

FORMAT = "ember-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
HOST_CODE_DEFAULTS = {"library": "model.so", "symbol": "ember_entry", "abi": "ember-c-runtime-v1"}
DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                    "uint64", "float16", "bfloat16", "float32", "float64"})
_HASH_CHUNK = 1 << 20


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
    when it names one, must be among them.
    """
    weights = {name: np.asarray(array) for name, array in weights.items()}
    manifest = _guarded(_complete, manifest, weights)
    validate_manifest(manifest)
    files = dict(files)
    for name in files:
        if not _is_basename(name) or name in (WEIGHTS, MANIFEST):
            raise ArtifactError(f"artifact file name {name!r} must be a plain file name other "
                                f"than {WEIGHTS} and {MANIFEST}")
    library = manifest["code"][manifest["target"]["kind"]].get("library")
    if library is not None and library not in files:
        raise ArtifactError(f"the code library {library!r} is not among the artifact's files "
                            f"{sorted(files)}")
    with staged_directory(path) as stage:
        for name, source in files.items():
            shutil.copyfile(source, os.path.join(stage, name))
        save_file({name: np.require(a, requirements=("C", "A")) for name, a in weights.items()},
                  os.path.join(stage, WEIGHTS), metadata={"format": FORMAT})
        manifest["files"] = {name: _describe_file(os.path.join(stage, name))
                             for name in (*files, WEIGHTS)}
        with open(os.path.join(stage, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")


def read_manifest(path, verify: bool = True) -> dict:
    """The validated manifest of the artifact at `path`; with `verify`, every file is hashed.

    Raises ArtifactError when the manifest is missing or malformed, its format_version is not
    supported, or (with `verify`) a listed file is missing or its sha256 differs.
    """
    manifest_path = os.path.join(path, MANIFEST)
    try:
        with open(manifest_path) as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise ArtifactError(f"{os.fspath(path)!r} is not an ember artifact: no {MANIFEST}") \
            from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {manifest_path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{manifest_path}: not an {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{manifest_path}: format_version {manifest.get('format_version')!r} "
                            f"is not supported (this ember {__version__} reads {FORMAT_VERSION}); "
                            f"recompile the model")
    validate_manifest(manifest)
    _guarded(_validate_files, manifest)
    if verify:
        for name, expected in manifest["files"].items():
            _verify_file(path, name, expected["sha256"])
    return manifest


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
        if not _is_basename(name) or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]):
            raise TypeError(f"files[{name!r}]: need a plain file name and a sha256 hex digest")
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


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _describe_file(path: str) -> Dict[str, object]:
    return {"sha256": _sha256(path), "size": os.path.getsize(path)}


def _verify_file(directory, name: str, expected: str) -> None:
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise ArtifactError(f"artifact file {name!r} listed in the manifest is missing from "
                            f"{os.fspath(directory)!r}")
    actual = _sha256(path)
    if actual != expected:
        raise ArtifactError(f"artifact file {name!r} was modified or corrupted: sha256 is "
                            f"{actual}, the manifest expects {expected}")
