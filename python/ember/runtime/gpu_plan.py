"""The GPU launch plan (`launch_plan.json`) as the runtime reads it, and its kernel arguments.

A GPU artifact's code is a module of kernels plus this plan: a static memory plan (one workspace
per runtime for every intermediate) and the kernel launches in order on one stream. The schema
is ember.artifact.launch_plan's (which documents it); this module reads a plan into
typed launches, checks it against the manifest so that no launch can address memory outside
the buffers it names or pass a scalar its kernel cannot hold, and packs each launch's arguments
the way cuLaunchKernel and hipModuleLaunchKernel take them (`kernelParams`: an array of
pointers to the argument values).

The checks are split, never repeated: the types and shapes of every field, the scalars, the
launch dimensions and the outputs' coverage here; buffer indices, workspace alignment and
bounds and live-range overlaps in ember.artifact.launch_plan's `validate_plan`, which the compiler runs
before writing a plan and this module on every load.

Nothing here calls a driver, which lets the CUDA and ROCm backends share it and the tests
check it on machines without a GPU.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, Sequence, Tuple, Union

from ember.artifact.store import ArtifactError
from ember.artifact.launch_plan import ABI, validate_plan
from ember.tensor_spec import numpy_dtype

#: Buffers bound per call, by their index in the manifest's list of that role.
ROLES = ("input", "constant", "output")
#: Threads per block no GPU ember targets exceeds.
MAX_BLOCK_THREADS = 1024
#: Scalar argument kinds: the C type the kernel takes and the range of values it can hold.
SCALARS = {"i32": (ctypes.c_int32, -2 ** 31, 2 ** 31 - 1),
           "i64": (ctypes.c_int64, -2 ** 63, 2 ** 63 - 1),
           "f32": (ctypes.c_float, None, None)}


@dataclass(frozen=True)
class BufferRef:
    """A named buffer of the plan: a manifest tensor (`index` into its role's list) or a slice
    of the workspace (`offset`, `nbytes`)."""

    name: str
    kind: str
    index: int = 0
    offset: int = 0
    nbytes: int = 0


@dataclass(frozen=True)
class Scalar:
    kind: str  # a key of SCALARS
    value: Union[int, float]


@dataclass(frozen=True)
class Launch:
    kernel: str
    grid: Tuple[int, int, int]
    block: Tuple[int, int, int]
    shared_bytes: int
    args: Tuple[Union[BufferRef, Scalar], ...]


@dataclass(frozen=True)
class LaunchPlan:
    workspace_bytes: int
    buffers: Mapping[str, BufferRef]
    launches: Tuple[Launch, ...]

    @property
    def kernel_names(self) -> List[str]:
        """Every kernel the plan launches, once each, in first-use order."""
        return list(dict.fromkeys(launch.kernel for launch in self.launches))


def read_plan(directory: str, manifest: Mapping, kind: str) -> LaunchPlan:
    """The validated plan of the artifact at `directory`, from `manifest["code"][kind]`."""
    code = manifest["code"][kind]
    if code.get("abi") != ABI:
        raise ArtifactError(f"{kind} code ABI {code.get('abi')!r} is not supported (this runtime "
                            f"speaks {ABI!r}); recompile the model")
    name = code.get("plan")
    if name not in manifest["files"]:
        raise ArtifactError(f"the launch plan {name!r} is not listed in the manifest's files, "
                            f"so it cannot be verified")
    try:
        with open(os.path.join(directory, name)) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read the launch plan {name}: {exc}") from None
    return parse_plan(data, manifest)


def parse_plan(data, manifest: Mapping) -> LaunchPlan:
    """`data` (the plan's JSON) checked against `manifest`; raises ArtifactError naming the
    field at fault."""
    try:
        plan = _parse(data, manifest)
        problems = _compiler_checks(data, plan, manifest)
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else exc.args[0]
        raise ArtifactError(f"launch plan: {detail}") from None
    if problems:
        raise ArtifactError(f"launch plan: {'; '.join(problems)}")
    return plan


def _compiler_checks(data, plan: LaunchPlan, manifest: Mapping) -> list:
    """The compiler's own consistency checks (see the module docstring), the ABI among them.
    Kernels are resolved against the loaded module by the backend, so every kernel the plan
    names counts here."""
    return validate_plan(data, set(plan.kernel_names),
                         {role: len(manifest[role + "s"]) for role in ROLES})


def tensor_bytes(entry: Mapping) -> int:
    """The size of a static manifest tensor in bytes."""
    return math.prod(entry["shape"]) * numpy_dtype(entry["dtype"]).itemsize


def _parse(data, manifest: Mapping) -> LaunchPlan:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {data!r}")
    if manifest["symbols"]:
        raise ValueError(f"GPU code is compiled for static shapes, but the manifest declares "
                         f"dynamic dims {sorted(manifest['symbols'])}")
    workspace = data["workspace_bytes"]
    if not _is_int(workspace) or workspace < 0:
        raise ValueError(f"workspace_bytes must be a non-negative int, got {workspace!r}")
    buffers = {name: _buffer(name, entry) for name, entry in data["buffers"].items()}
    written = {b.index for b in buffers.values() if b.kind == "output"}
    unwritten = [o["name"] for i, o in enumerate(manifest["outputs"]) if i not in written]
    if unwritten:
        raise ValueError(f"outputs {unwritten} have no buffer, so no kernel writes them")
    if not isinstance(data["launches"], list) or not data["launches"]:
        raise ValueError("launches must be a non-empty list (without a launch nothing writes "
                         "the outputs)")
    launches = tuple(_launch(i, entry, buffers) for i, entry in enumerate(data["launches"]))
    return LaunchPlan(workspace, buffers, launches)


def _buffer(name: str, entry: Mapping) -> BufferRef:
    where = f"buffer {name!r}"
    kind = entry["kind"]
    if kind in ROLES:
        index = entry["index"]
        if not (_is_int(index) and index >= 0):
            raise ValueError(f"{where}: {kind} index must be an int >= 0, got {index!r}")
        return BufferRef(name, kind, index=index)
    if kind != "workspace":
        raise ValueError(f"{where}: kind {kind!r} is not one of {[*ROLES, 'workspace']}")
    offset, nbytes = entry["offset"], entry["bytes"]
    if not (_is_int(offset) and _is_int(nbytes) and offset >= 0 and nbytes > 0):
        raise ValueError(f"{where}: need an int offset >= 0 and bytes > 0, got offset "
                         f"{offset!r}, bytes {nbytes!r}")
    return BufferRef(name, kind, offset=offset, nbytes=nbytes)


def _launch(i: int, entry: Mapping, buffers: Mapping[str, BufferRef]) -> Launch:
    where = f"launch {i}"
    kernel = entry["kernel"]
    if not isinstance(kernel, str) or not kernel:
        raise ValueError(f"{where}: kernel must be a symbol name, got {kernel!r}")
    where = f"launch {i} ({kernel})"
    grid, block = (_dim3(f"{where}: {key}", entry[key]) for key in ("grid", "block"))
    if math.prod(block) > MAX_BLOCK_THREADS:
        raise ValueError(f"{where}: block {list(block)} has more than {MAX_BLOCK_THREADS} threads")
    shared = entry["shared_bytes"]
    if not _is_int(shared) or shared < 0:
        raise ValueError(f"{where}: shared_bytes must be a non-negative int, got {shared!r}")
    args = tuple(_argument(f"{where} arg {j}", arg, buffers)
                 for j, arg in enumerate(entry["args"]))
    return Launch(kernel, grid, block, shared, args)


def _dim3(where: str, value) -> Tuple[int, int, int]:
    if not (isinstance(value, list) and len(value) == 3
            and all(_is_int(v) and 0 < v < 2 ** 31 for v in value)):
        raise ValueError(f"{where} must be three positive ints, got {value!r}")
    return tuple(value)


def _argument(where: str, arg: Mapping, buffers: Mapping[str, BufferRef]):
    if not isinstance(arg, dict) or len(arg) != 1:
        raise ValueError(f"{where}: expected one of {{'buffer': name}}, "
                         f"{', '.join('{%r: value}' % k for k in SCALARS)}; got {arg!r}")
    (kind, value), = arg.items()
    if kind == "buffer":
        if value not in buffers:
            raise ValueError(f"{where}: unknown buffer {value!r}; the plan's buffers are "
                             f"{sorted(buffers)}")
        return buffers[value]
    if kind not in SCALARS:
        raise ValueError(f"{where}: unknown argument kind {kind!r}")
    _, lo, hi = SCALARS[kind]
    number = _is_int(value) or (lo is None and isinstance(value, float))
    if not number or (lo is not None and not lo <= value <= hi):
        raise ValueError(f"{where}: {value!r} is not a valid {kind}")
    return Scalar(kind, value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- kernel arguments -------------------------------------------------------------------------

class PackedArguments:
    """One runtime's kernel arguments, as the drivers' `kernelParams` take them.

    Every argument has a value cell (a ctypes scalar; pointers are 64-bit); each launch has an
    array of the addresses of its cells, and `params[i]` is that array's address. The drivers
    copy the values at launch, so a runtime rewrites the cells of input, constant and output
    pointers before each call (`bind`) and reuses everything else. Workspace pointers and
    scalars are written once. Each runtime owns its own instance: two calls in flight on
    different runtimes never share a cell.
    """

    def __init__(self, plan: LaunchPlan, workspace: int):
        self._keep: List[object] = []  # the cells and arrays `params` point into
        self._slots: List[Tuple[str, int, ctypes.c_uint64, int]] = []  # role, index, cell, launch
        self._bound: Dict[str, Tuple[int, ...]] = {}
        self.params: List[int] = []
        for i, launch in enumerate(plan.launches):
            cells = [self._cell(i, arg, workspace) for arg in launch.args]
            array = (ctypes.c_void_p * len(cells))(*(ctypes.addressof(c) for c in cells))
            self._keep += [*cells, array]
            self.params.append(ctypes.addressof(array))

    def _cell(self, launch: int, arg, workspace: int):
        if isinstance(arg, Scalar):
            return SCALARS[arg.kind][0](arg.value)
        if arg.kind == "workspace":
            return ctypes.c_uint64(workspace + arg.offset)
        cell = ctypes.c_uint64(0)
        self._slots.append((arg.kind, arg.index, cell, launch))
        return cell

    def bind(self, pointers: Mapping[str, Sequence[int]]) -> FrozenSet[int]:
        """Writes this call's device pointers (role -> pointers in manifest order) into their
        cells; returns the indices of the launches whose arguments changed since the last
        call (all of those that take a bound buffer, on the first)."""
        pointers = {role: tuple(pointers[role]) for role in ROLES}
        if pointers == self._bound:
            return frozenset()
        changed = set()
        for role, index, cell, launch in self._slots:
            if cell.value != pointers[role][index] or not self._bound:
                cell.value = pointers[role][index]
                changed.add(launch)
        self._bound = pointers
        return frozenset(changed)
