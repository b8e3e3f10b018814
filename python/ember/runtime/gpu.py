"""What the CUDA and ROCm backends share: everything but the driver calls.

A GPU artifact holds a module of kernels and a launch plan (gpu_plan.py). `GpuBackend` loads
the module and resolves its kernels once, uploads the bound constants once (all runtimes of the
Model's pool share them), and checks every call's tensors; each `GpuRuntime` owns what a call in
flight needs to itself: a stream, a completion event, the workspace, staging buffers for numpy
arguments and its packed kernel arguments, all allocated once.

Every device operation goes through one driver object (cuda.py's `CudaDriver`, hip.py's
`HipDriver`, or a test's fake) with these methods, so the two backends differ only there:

    ordinal, describe()                          the device and a name for messages
    activate()                                   make the device current in this thread
    load_module(image) / unload_module(m)        a module from its bytes (cubin, PTX, HSACO)
    get_function(module, name)                   a kernel handle (DriverError if absent)
    malloc(nbytes) -> int / free(ptr)            device memory
    copy_htod(dst, src, nbytes, stream)          asynchronous copies on `stream`
    copy_dtoh(dst, src, nbytes, stream)
    create_stream() -> int / destroy_stream(s) / synchronize(s) / synchronize_device()
    create_event() / destroy_event(e) / record_event(e, s) / wait_event(s, e)
    launch(function, grid, block, shared_bytes, stream, params)   params: kernelParams address
    begin_capture(s) / end_capture(s) -> graph / instantiate(graph) -> exec
    graph_root_nodes(graph) / graph_dependent_nodes(node)          node handles
    set_kernel_node_params(exec, node, function, grid, block, shared_bytes, params)
    launch_graph(exec, s) / destroy_graph(graph) / destroy_graph_exec(exec)
    caller_stream()                              the stream of the caller's framework (torch)

Where a call runs: with torch CUDA tensors, on `torch.cuda.current_stream()`, in its order and
without waiting for the result (as torch ops do); with numpy arrays (copied through the
runtime's staging buffers), on the runtime's own stream, returning once the outputs are on the
host. A runtime used on one stream after another first makes the new stream wait for its last
call (an event), because both calls use the same workspace.

Graph mode: a runtime's first call captures its launches into a graph (on its own stream; the
legacy default stream cannot capture) and instantiates it; later calls launch that graph. The
graph holds the argument values of its capture, so when a call's pointers differ (other torch
tensors, a constant replaced by set_constant) the runtime updates the changed kernel nodes'
parameters in the instantiated graph, never re-instantiating it. numpy calls go through
staging buffers whose pointers never change, so they never need an update.
"""
from __future__ import annotations

import json
import math
import os
import sys
import warnings
import weakref
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ember.artifact.store import ArtifactError
from ember.artifact.weights_file import SAFETENSORS_DTYPES
from ember.runtime.errors import (ArgumentError, EmberRuntimeError, ExecutionError,
                                  UnboundConstantError)
from ember.runtime.gpu_plan import ROLES, LaunchPlan, PackedArguments, read_plan, tensor_bytes
from ember.runtime.shapes import bind_symbols
from ember.runtime.tensors import Buffer
from ember.tensor_spec import Shape, TensorSpec


class DriverError(ExecutionError):
    """A GPU driver call failed, or no usable GPU driver or device is present; the message
    names the call and the driver's error."""


class Driver:
    """Base of the real drivers: what they share beyond their own calls (see the module
    docstring for the whole protocol)."""

    ordinal = 0

    def caller_stream(self) -> int:
        """torch's current stream on this device: a call with torch tensors runs in its order.
        (A torch tensor was passed, so torch is imported.)"""
        torch = sys.modules["torch"]
        return torch.cuda.current_stream(self.ordinal).cuda_stream


def driver_call(name: str, *trailing):
    """A protocol method that is one driver function: `name(*args, *trailing)` through the
    driver's checked `_call` (`trailing`: flags the protocol does not expose)."""
    def method(self, *args):
        return self._call(name, *args, *trailing)
    method.__name__ = method.__qualname__ = name
    return method


class Allocation:
    """Device memory freed when the last reference goes. The free waits for the device first:
    a replaced constant may still be read by work queued on another stream."""

    def __init__(self, driver, nbytes: int):
        self.ptr = driver.malloc(max(nbytes, 1))  # drivers refuse zero-byte allocations
        self.nbytes = nbytes
        _finalize(self, driver, _free, driver, self.ptr)


def _free(driver, ptr: int) -> None:
    driver.synchronize_device()
    driver.free(ptr)


def _finalize(owner, driver, release, *args) -> None:
    """Calls `release(*args)` with the device current when `owner` goes; not at interpreter
    exit, where the driver may already be gone (the process's device state goes with it)."""
    weakref.finalize(owner, _release, driver, release, args).atexit = False


def _release(driver, release, args) -> None:
    driver.activate()
    release(*args)


class GpuBackend:
    """The backend protocol (backends.py) for GPU artifacts. Subclasses set `kind` (the
    manifest's target kind), `Driver` (a class built from the device ordinal) and
    `fallback_modules` (code keys naming modules to try when `module` does not load)."""

    device = "cuda"  # torch's device type, on CUDA and on ROCm builds alike
    supports_graph_mode = True
    default_num_runtimes = 1  # each runtime holds a workspace; AITemplate's default too
    kind = ""
    Driver = Driver
    fallback_modules: Tuple[str, ...] = ()

    def __init__(self, directory: str, manifest: Mapping, *, num_threads: Optional[int] = None,
                 graph_mode: bool = False):
        if num_threads is not None:
            warnings.warn(f"num_threads={num_threads} is ignored by the {self.kind} backend "
                          f"(the GPU runs the kernels)", RuntimeWarning, stacklevel=4)
        code = manifest["code"][self.kind]
        self.plan: LaunchPlan = read_plan(directory, manifest, self.kind)
        self.graph_mode = graph_mode
        self.specs = {role: tuple(TensorSpec.from_manifest(role, e)
                                  for e in manifest[role + "s"]) for role in ROLES}
        self.nbytes = {role: tuple(tensor_bytes(e) for e in manifest[role + "s"])
                       for role in ROLES}
        self.driver = self.Driver(0)
        self.driver.activate()
        self.module = self._load_module(directory, manifest, code)
        _finalize(self, self.driver, self.driver.unload_module, self.module)
        self.kernels = self._resolve_kernels(code["module"])
        self._upload_stream = self.driver.create_stream()
        _finalize(self, self.driver, self.driver.destroy_stream, self._upload_stream)
        # The constants as one immutable snapshot (pointers, and what keeps their memory),
        # replaced whole by set_constant, so a call sees either the old or the new set.
        self._constants: Tuple[Tuple[Optional[int], ...], Tuple] = \
            ((None,) * len(self.specs["constant"]), (None,) * len(self.specs["constant"]))
        self._upload_weights(directory, manifest)

    # -- the backend protocol ----------------------------------------------------------------

    def new_runtime(self) -> "GpuRuntime":
        return GpuRuntime(self)

    def pack_inputs(self, inputs: Sequence[Buffer]) -> Tuple[Buffer, ...]:
        return tuple(inputs)

    def output_shapes(self, inputs: Sequence[Buffer]) -> List[Shape]:
        """Validates the input shapes (all static) and returns the output shapes."""
        bind_symbols(self.specs["input"], [b.shape for b in inputs], {})
        return [spec.shape({}) for spec in self.specs["output"]]

    def set_constant(self, name: str, buffer: Buffer, dtype: str) -> None:
        """Binds constant `name`: a torch tensor on this GPU is used in place (referenced, not
        copied); a numpy array is copied into new device memory."""
        specs = self.specs["constant"]
        index = [s.name for s in specs].index(name)
        spec = specs[index]
        if tuple(buffer.shape) != spec.shape({}):
            raise ArgumentError(f"{spec.label}: expected shape {list(spec.shape({}))}, got "
                                f"{list(buffer.shape)}")
        if _on_host(buffer):
            memory = self._upload(buffer.ptr, self.nbytes["constant"][index])
            pointer = memory.ptr
        else:
            self.check_device(spec, buffer)
            memory, pointer = buffer.owner, buffer.ptr
        pointers, owners = self._constants
        self._constants = (pointers[:index] + (pointer,) + pointers[index + 1:],
                           owners[:index] + (memory,) + owners[index + 1:])

    # -- what runtimes use -------------------------------------------------------------------

    def constants(self) -> Tuple[Tuple[int, ...], Tuple]:
        """This call's snapshot of the constants (keep the second item while the call runs)."""
        pointers, owners = self._constants
        unset = [s.name for s, p in zip(self.specs["constant"], pointers) if p is None]
        if unset:
            raise UnboundConstantError(f"constants {unset} are not bound; set them with "
                                       f"set_constant before running")
        return pointers, owners

    def check_call(self, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> List[Shape]:
        """Checks shapes, output sizes and devices; returns the output shapes."""
        shapes = self.output_shapes(inputs)
        for spec, buffer, shape in zip(self.specs["output"], outputs, shapes):
            if math.prod(buffer.shape) < math.prod(shape):
                raise ArgumentError(f"{spec.label}: the buffer of shape {list(buffer.shape)} is "
                                    f"smaller than the output's shape {list(shape)}")
        for role, buffers in (("input", inputs), ("output", outputs)):
            for spec, buffer in zip(self.specs[role], buffers):
                if not _on_host(buffer):
                    self.check_device(spec, buffer)
        return shapes

    def check_device(self, spec: TensorSpec, buffer: Buffer) -> None:
        index = buffer.owner.device.index
        if index is not None and index != self.driver.ordinal:
            raise ArgumentError(f"{spec.label}: the tensor is on {buffer.owner.device}; this "
                                f"model runs on cuda:{self.driver.ordinal} "
                                f"({self.driver.describe()})")

    # -- loading -----------------------------------------------------------------------------

    def _load_module(self, directory: str, manifest: Mapping, code: Mapping):
        """The module from `code["module"]`, else from the first fallback that loads (a PTX
        module JIT-compiles for a newer GPU than the cubin's)."""
        names = list(dict.fromkeys(code[k] for k in ("module", *self.fallback_modules)
                                   if k in code))
        failures = []
        for name in names:
            if name not in manifest["files"]:
                raise ArtifactError(f"the {self.kind} module {name!r} is not listed in the "
                                    f"manifest's files, so it cannot be verified")
            with open(os.path.join(directory, name), "rb") as f:
                image = f.read()
            try:
                return self.driver.load_module(image + b"\0" if name.endswith(".ptx") else image)
            except DriverError as exc:
                failures.append(f"{name}: {exc}")
        raise ArtifactError(f"no module of this artifact (compiled for "
                            f"{manifest['target'].get('arch', '?')}) loads on "
                            f"{self.driver.describe()}: {'; '.join(failures)}")

    def _resolve_kernels(self, module_name: str) -> list:
        """The kernel handle of each launch, each symbol looked up once."""
        handles = {}
        for name in self.plan.kernel_names:
            try:
                handles[name] = self.driver.get_function(self.module, name)
            except DriverError as exc:
                raise ArtifactError(f"the launch plan launches kernel {name!r}, which "
                                    f"{module_name} does not define ({exc})") from None
        return [handles[launch.kernel] for launch in self.plan.launches]

    def _upload(self, host_ptr: int, nbytes: int) -> Allocation:
        memory = Allocation(self.driver, nbytes)
        self.driver.copy_htod(memory.ptr, host_ptr, nbytes, self._upload_stream)
        self.driver.synchronize(self._upload_stream)
        return memory

    def _upload_weights(self, directory: str, manifest: Mapping) -> None:
        """Copies every bound constant from the weights file to the device, once."""
        tensors = _read_safetensors(os.path.join(directory, manifest["weights"]))
        for spec, entry in zip(self.specs["constant"], manifest["constants"]):
            if not entry["bound"]:
                continue
            found = tensors.get(spec.name)
            expected = (SAFETENSORS_DTYPES[entry["dtype"]], list(entry["shape"]))
            if found is None or (found[0], found[1]) != expected:
                raise ArtifactError(f"weights file: {spec.label} is "
                                    f"{found[:2] if found else 'missing'}, the manifest says "
                                    f"{expected}; the artifact is inconsistent")
            self.set_constant(spec.name, Buffer(found[2].ctypes.data, tuple(entry["shape"]),
                                                found[2]), entry["dtype"])


def _read_safetensors(path: str) -> Dict[str, Tuple[str, list, np.ndarray]]:
    """name -> (dtype code, shape, bytes as a uint8 array mapped from the file). Read raw, so
    any dtype (bfloat16 too) goes to the device as the bytes the compiler wrote."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        size = int.from_bytes(data[:8].tobytes(), "little")
        header = json.loads(data[8:8 + size].tobytes())
        tensors = {}
        for name, e in header.items():
            if name != "__metadata__":
                begin, end = (8 + size + o for o in e["data_offsets"])
                if not 8 + size <= begin <= end <= len(data):
                    raise ValueError(f"{name!r} lies outside the file")
                tensors[name] = (e["dtype"], e["shape"], data[begin:end])
        return tensors
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"malformed safetensors file {path}: {exc}") from None


def _on_host(buffer: Buffer) -> bool:
    """numpy arrays live on the host; the Model lets through only torch tensors on the
    backend's device type besides them."""
    return isinstance(buffer.owner, np.ndarray)


class GpuRuntime:
    """What one call in flight owns (see the module docstring). The Model's pool lends a
    runtime to one call at a time."""

    def __init__(self, backend: GpuBackend):
        self.backend = backend
        d = self.driver = backend.driver
        d.activate()
        self.stream = d.create_stream()
        self.done = d.create_event()
        _finalize(self, d, d.destroy_stream, self.stream)
        _finalize(self, d, d.destroy_event, self.done)
        self.workspace = Allocation(d, backend.plan.workspace_bytes)
        self.args = PackedArguments(backend.plan, self.workspace.ptr)
        self._staging: Dict[Tuple[str, int], Allocation] = {}
        self._graph: Optional[_Graph] = None
        self._last_stream: Optional[int] = None

    def run(self, inputs: Sequence[Buffer], outputs: Sequence[Buffer]) -> List[Shape]:
        b, d = self.backend, self.driver
        shapes = b.check_call(inputs, outputs)
        constants, owners = b.constants()  # noqa: F841 (owners: alive while we launch)
        on_host = any(_on_host(x) for x in (*inputs, *outputs))
        d.activate()
        stream = self.stream if all(_on_host(x) for x in (*inputs, *outputs)) \
            else d.caller_stream()
        if self._last_stream not in (None, stream):
            d.wait_event(stream, self.done)  # the last call may still use the workspace
        pointers = {"input": [self._stage_in(i, x, stream) for i, x in enumerate(inputs)],
                    "constant": constants,
                    "output": [self._staging_for("output", i).ptr if _on_host(x) else x.ptr
                               for i, x in enumerate(outputs)]}
        changed = self.args.bind(pointers)
        if b.graph_mode:
            self._run_graph(changed, stream)
        else:
            self._launch_all(stream)
        for i, x in enumerate(outputs):
            if _on_host(x):
                d.copy_dtoh(x.ptr, pointers["output"][i], b.nbytes["output"][i], stream)
        d.record_event(self.done, stream)
        self._last_stream = stream
        if on_host:
            d.synchronize(stream)
        return shapes

    def _stage_in(self, index: int, buffer: Buffer, stream: int) -> int:
        if not _on_host(buffer):
            return buffer.ptr
        staging = self._staging_for("input", index)
        self.driver.copy_htod(staging.ptr, buffer.ptr, staging.nbytes, stream)
        return staging.ptr

    def _staging_for(self, role: str, index: int) -> Allocation:
        """The device copy of a numpy argument, allocated on its first use (torch-only callers
        never pay for it) and kept."""
        key = (role, index)
        if key not in self._staging:
            self._staging[key] = Allocation(self.driver, self.backend.nbytes[role][index])
        return self._staging[key]

    def _launch_all(self, stream: int) -> None:
        plan, d = self.backend.plan, self.driver
        for launch, kernel, params in zip(plan.launches, self.backend.kernels, self.args.params):
            d.launch(kernel, launch.grid, launch.block, launch.shared_bytes, stream, params)

    def _run_graph(self, changed, stream: int) -> None:
        if self._graph is None:
            self._graph = _Graph(self.driver, self.stream, self._launch_all,
                                 len(self.backend.plan.launches))
        else:
            plan = self.backend.plan
            for i in sorted(changed):
                launch = plan.launches[i]
                self.driver.set_kernel_node_params(
                    self._graph.exec, self._graph.nodes[i], self.backend.kernels[i],
                    launch.grid, launch.block, launch.shared_bytes, self.args.params[i])
        self.driver.launch_graph(self._graph.exec, stream)


class _Graph:
    """The launch sequence captured on `stream` and instantiated, with its kernel nodes in
    launch order (captured from one stream, they form a chain)."""

    def __init__(self, driver, stream: int, launch_all, count: int):
        driver.begin_capture(stream)
        try:
            launch_all(stream)
        finally:
            graph = driver.end_capture(stream)  # also on failure: the stream leaves capture
        _finalize(self, driver, driver.destroy_graph, graph)
        self.exec = driver.instantiate(graph)
        _finalize(self, driver, driver.destroy_graph_exec, self.exec)
        self.nodes = []
        frontier = driver.graph_root_nodes(graph)
        while len(frontier) == 1 and len(self.nodes) <= count:
            self.nodes.append(frontier[0])
            frontier = driver.graph_dependent_nodes(frontier[0])
        if frontier or len(self.nodes) != count:
            raise EmberRuntimeError(f"the captured graph is not a chain of {count} kernel "
                                    f"nodes; run without graph_mode")
