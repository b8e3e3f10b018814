"""The C runtime compiled into every CPU artifact (host, AArch64): its sources and the model's
signature tables, generated here as C.

A CPU target's library stage adds `cc_args(job.signature, job.workdir, cc=...)` to its link
command and `artifact_files(job.signature)` to its files; the library then exports the C runtime
API of `ember_runtime.h` (ember.runtime.capi), which the Python runtime and C programs both use.

The tables give the runtime everything the manifest says about calling the model, with no JSON
parser in C: names, dtype codes, static dims, maximum dims, each dynamic dim's symbols and its
expression as a C function over int64 symbol values (checked arithmetic with Python's floor
division and modulo), the symbols' ranges, the entry point, and which outputs the runtime writes
back into which input or constant (a model's in-place changes).
"""
from __future__ import annotations

import ast
import atexit
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ember.runtime import capi
from ember.symbolic import Dim, SymbolicError, format_shape
from ember.user_cache import cache_root

HEADER = capi.HEADER
TABLES = "ember_tables.c"
INT64_MAX = 2**63 - 1

#: `cc` flags the runtime needs: threads (its mutex), and binding the library's own symbols to
#: its own definitions, so that two artifacts' libraries in one process never mix.
LINK_FLAGS = ("-pthread", "-Wl,-Bsymbolic")


class SignatureError(ValueError):
    """A signature the C runtime cannot represent."""


def cc_args(signature: Optional[Mapping], workdir: str, entry: str = "ember_entry",
            cc: str = "cc") -> List[str]:
    """Arguments to add to a CPU library's `cc -shared` command (`cc` is that compiler): the
    include directory, the generated tables (written into `workdir`) and the runtime's
    objects (runtime_objects: compiled once per compiler, cached on disk). [] without a
    signature (a bare library exporting only the entry point, as a job without a signature
    builds)."""
    if signature is None:
        return []
    path = os.path.join(workdir, TABLES)
    with open(path, "w") as f:
        f.write(generate_tables(signature, entry))
    return ["-I", capi.source_dir(), path, *runtime_objects(cc), *LINK_FLAGS]


_objects: Dict[Tuple[str, str], List[str]] = {}
_objects_lock = threading.Lock()
_process_dir: List[str] = []


def _compiler_identity(cc: str) -> str:
    """The compiler as a cache key: its resolved path, size and modification time (an
    upgraded compiler gets new objects)."""
    path = shutil.which(cc) or cc
    try:
        stat = os.stat(os.path.realpath(path))
        return f"{os.path.realpath(path)}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        return path


def _object_names() -> List[str]:
    """The runtime's object file names, one per C source ("ember_runtime.o")."""
    return [f"{os.path.basename(source)[:-2]}.o" for source in capi.source_paths()]


def _compile_into(directory: str, cc: str) -> List[str]:
    objects = []
    for source, name in zip(capi.source_paths(), _object_names()):
        obj = os.path.join(directory, name)
        cmd = [cc, "-c", "-fPIC", "-O2", "-I", capi.source_dir(), "-o", obj, source]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling the ember C runtime failed:\n"
                               f"{proc.stderr.strip()}\nrerun with:\n  {shlex.join(cmd)}")
        objects.append(obj)
    return objects


def _cached_on_disk(key: str, cc: str) -> List[str]:
    """The objects under cache_root()/runtime/<key> (ember.user_cache), compiled there first if missing: built in
    a private directory and renamed into place, so concurrent processes never see half of a
    set (the loser of a race discards its copy). Where the cache cannot be written, a
    directory of this process's is used instead."""
    names = _object_names()
    parent = os.path.join(cache_root(), "runtime")
    final = os.path.join(parent, key)
    if all(os.path.isfile(os.path.join(final, n)) for n in names):
        return [os.path.join(final, n) for n in names]
    try:
        os.makedirs(parent, exist_ok=True)
        building = tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=parent)
    except OSError:
        if not _process_dir:
            _process_dir.append(tempfile.mkdtemp(prefix="ember-runtime-"))
            atexit.register(shutil.rmtree, _process_dir[0], True)
        directory = os.path.join(_process_dir[0], key)
        os.makedirs(directory, exist_ok=True)
        return _compile_into(directory, cc)
    try:
        _compile_into(building, cc)
        try:
            os.rename(building, final)
        except OSError:  # another process renamed its copy first (or left a broken one)
            if not all(os.path.isfile(os.path.join(final, n)) for n in names):
                shutil.rmtree(final, ignore_errors=True)
                os.rename(building, final)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return [os.path.join(final, n) for n in names]


def runtime_objects(cc: str = "cc") -> List[str]:
    """The runtime sources compiled by `cc` into position-independent objects. Compiling them
    costs about 0.75 s, which every fresh process's first compile used to pay: they are cached
    on disk (`cache_root()`), keyed by the compiler and the sources' contents."""
    digest = hashlib.sha256(_compiler_identity(cc).encode())
    for path in [capi.header_path(), capi.header_path("ember_verify.h"),
                 os.path.join(capi.source_dir(), "ember_signature.h"), *capi.source_paths()]:
        with open(path, "rb") as f:
            digest.update(f.read())
    key = (cc, digest.hexdigest())
    with _objects_lock:
        cached = _objects.get(key)
        if cached and all(os.path.exists(p) for p in cached):
            return cached
        _objects[key] = _cached_on_disk(key[1][:32], cc)
        return _objects[key]


def artifact_files(signature: Optional[Mapping]) -> Dict[str, str]:
    """Files the artifact carries for C users, next to the library: the API's header and the
    loader's (ember_load checks the artifact before loading the library)."""
    if signature is None:
        return {}
    return {name: capi.header_path(name) for name in (HEADER, *capi.LOADER_HEADERS)}


def generate_tables(signature: Mapping, entry: str = "ember_entry") -> str:
    """The C source defining `ember_model_signature` for `signature`, a manifest-shaped mapping
    with `symbols`, `inputs`, `constants` (each with dtype, shape and `bound`) and `outputs`
    (`max_shape` optional)."""
    return _Tables(signature, entry).source()


class _Tables:
    def __init__(self, signature: Mapping, entry: str):
        if not entry.isidentifier():
            raise SignatureError(f"entry symbol {entry!r} is not a C identifier")
        self.entry = entry
        self.symbols = sorted(signature["symbols"])
        self.index = {name: i for i, name in enumerate(self.symbols)}
        self.ranges = {name: (int(r["min"]), int(r["max"]))
                       for name, r in signature["symbols"].items()}
        self.lines: List[str] = []
        self.cases: List[str] = []
        self.next_dim = 0
        self.signature = signature

    def source(self) -> str:
        sig = self.signature
        out = self.lines
        out += ["/* Generated by ember.backends.cpu.c_runtime: this model's signature for the C",
                " * runtime (see ember_signature.h). Do not edit. */",
                '#include "ember_signature.h"', "",
                f"extern int32_t {self.entry}(void **args, int64_t *fault);", ""]
        if self.symbols:
            out.append(f"static const char *const symbol_names[] = "
                       f"{{{', '.join(map(_c_string, self.symbols))}}};")
            out.append(f"static const int64_t symbol_min[] = "
                       f"{{{', '.join(_int(self.ranges[s][0]) for s in self.symbols)}}};")
            out.append(f"static const int64_t symbol_max[] = "
                       f"{{{', '.join(_int(self.ranges[s][1]) for s in self.symbols)}}};")
        tables = {role: self._tensors(role, sig[role])
                  for role in ("inputs", "constants", "outputs")}
        out += ["", "static int eval_dim(int32_t id, const int64_t *s, int64_t *out) {",
                "  int e = 0;", "  int64_t v = 0;", "  (void)s;", "  switch (id) {",
                *self.cases, "    default: return 1;", "  }", "  *out = v;", "  return e;",
                "}", ""]
        none = "NULL"
        out += ["EMBER_INTERNAL const ember_signature ember_model_signature = {",
                "    .version = EMBER_SIGNATURE_VERSION,",
                f"    .num_symbols = {len(self.symbols)},",
                f"    .symbol_names = {'symbol_names' if self.symbols else none},",
                f"    .symbol_min = {'symbol_min' if self.symbols else none},",
                f"    .symbol_max = {'symbol_max' if self.symbols else none},",
                f"    .num_inputs = {len(sig['inputs'])},",
                f"    .num_constants = {len(sig['constants'])},",
                f"    .num_outputs = {len(sig['outputs'])},",
                f"    .inputs = {tables['inputs']},",
                f"    .constants = {tables['constants']},",
                f"    .outputs = {tables['outputs']},",
                "    .eval_dim = eval_dim,",
                f"    .entry = {self.entry},",
                '    .weights_file = "weights.safetensors",',
                "};", ""]
        return "\n".join(out)

    def _tensors(self, role: str, entries: Sequence[Mapping]) -> str:
        if not entries:
            return "NULL"
        rows = []
        for i, entry in enumerate(entries):
            rows.append(self._tensor(role, f"{role[:-1]}{i}", entry))
        self.lines += [f"static const ember_sig_tensor {role}[] = {{", *rows, "};", ""]
        return role

    def _tensor(self, role: str, prefix: str, entry: Mapping) -> str:
        name, dtype = entry["name"], entry["dtype"]
        if dtype not in capi.DTYPE_CODES:
            raise SignatureError(f"{role[:-1]} {name!r}: dtype {dtype!r} has no C runtime code")
        dims = [Dim(d) for d in entry["shape"]]
        where = f"{role[:-1]} {name!r}"
        unknown = set().union(*(d.symbols for d in dims)) - set(self.index)
        if unknown:
            raise SignatureError(f"{where}: shape {format_shape(dims)} uses undeclared symbols "
                                 f"{sorted(unknown)}")
        if role == "constants" and any(d.symbols for d in dims):
            raise SignatureError(f"{where}: constants must have static shapes")
        static = [d.constant if d.constant is not None else -1 for d in dims]
        if role == "outputs" and entry.get("max_shape") is not None:
            max_dims = [int(n) for n in entry["max_shape"]]
        else:
            max_dims = [self._max(d, where) for d in dims]
        first = self.next_dim
        self.next_dim += len(dims)
        for k, d in enumerate(dims):
            if d.constant is None:
                self.cases.append(f"    case {first + k}: v = {self._expr(d)}; break;"
                                  f"  /* {_comment(d.text)} */")
        rank = len(dims)
        fields = {"bound": int(bool(entry.get("bound", False)))}
        if rank:
            syms = []
            for k, d in enumerate(dims):
                ids = sorted(self.index[s] for s in d.symbols)
                self.lines.append(f"static const int32_t {prefix}_d{k}_symbols[] = "
                                  f"{{{', '.join(map(str, ids + [-1]))}}};")
                syms.append(f"{prefix}_d{k}_symbols")
            bare = [self.index[d.symbol] if d.symbol is not None else -1 for d in dims]
            self.lines += [
                f"static const int64_t {prefix}_dims[] = {{{', '.join(map(_int, static))}}};",
                f"static const int64_t {prefix}_max[] = {{{', '.join(map(_int, max_dims))}}};",
                f"static const int32_t {prefix}_bare[] = {{{', '.join(map(str, bare))}}};",
                f"static const int32_t *const {prefix}_symbols[] = {{{', '.join(syms)}}};",
                f"static const char *const {prefix}_text[] = "
                f"{{{', '.join(_c_string(d.text) for d in dims)}}};",
            ]
            arrays = (f"{prefix}_dims", f"{prefix}_max", f"{prefix}_bare", f"{prefix}_symbols",
                      f"{prefix}_text")
        else:
            arrays = ("NULL",) * 5
        kind, target = self._write_back(entry)
        return (f"    {{{_c_string(name)}, {capi.DTYPE_CODES[dtype]}, {rank}, {first}, "
                f"{fields['bound']}, {', '.join(arrays)}, {_c_string(format_shape(dims))}, "
                f"{kind}, {target}}},")

    def _write_back(self, entry: Mapping) -> Tuple[int, int]:
        """An output's (ember_write_back kind, index of the input or constant it writes)."""
        if "writes_back" not in entry:
            return 0, -1
        (kind, name), = entry["writes_back"].items()
        role = {"input": "inputs", "constant": "constants"}[kind]
        names = [t["name"] for t in self.signature[role]]
        if name not in names:
            raise SignatureError(f"output {entry['name']!r} writes back to {kind} {name!r}, "
                                 f"which the model does not have")
        return capi.WRITE_BACK_CODES[kind], names.index(name)

    def _max(self, dim: Dim, where: str) -> int:
        if dim.constant is not None:
            return dim.constant
        try:
            return max(0, min(dim.bounds(self.ranges)[1], INT64_MAX))
        except SymbolicError:
            return INT64_MAX  # unbounded (e.g. a divisor that may be zero)

    def _expr(self, dim: Dim) -> str:
        return self._node(ast.parse(dim.text.strip(), mode="eval").body)

    def _node(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return _int(node.value)
        if isinstance(node, ast.Name):
            return f"s[{self.index[node.id]}]"
        if isinstance(node, ast.UnaryOp):
            inner = self._node(node.operand)
            return f"ember_x_sub(0, {inner}, &e)" if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            fn = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.FloorDiv: "floordiv",
                  ast.Mod: "mod"}[type(node.op)]
            return f"ember_x_{fn}({self._node(node.left)}, {self._node(node.right)}, &e)"
        if isinstance(node, ast.Call):  # Max / Min (Dim has checked the grammar)
            fn = "ember_x_max" if node.func.id == "Max" else "ember_x_min"
            args = [self._node(a) for a in node.args]
            result = args[-1]
            for arg in reversed(args[:-1]):
                result = f"{fn}({arg}, {result})"
            return result
        raise SignatureError(f"unsupported dim expression {ast.unparse(node)!r}")


def _int(value: int) -> str:
    value = int(value)
    if not -INT64_MAX <= value <= INT64_MAX:
        raise SignatureError(f"{value} does not fit in int64")
    return f"INT64_C({value})"


def _c_string(text: str) -> str:
    """A C string literal for `text` (UTF-8; anything but plain printable ASCII escaped)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        out.append(ch if 32 <= byte < 127 and ch not in '"\\?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _comment(text: str) -> str:
    return text.replace("*/", "* /")
