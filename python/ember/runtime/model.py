"""`Model`: a loaded artifact with AITemplate's calling conventions.

Loading reads the manifest once and opens the backend, which checks the artifact's files on the
bytes it uses (ember.artifact.store: the chain of trust); for host code the backend is the ember
C runtime compiled into the artifact's library (host.py): it reads and hashes the weights and
binds the constants. A call checks the Python objects it is given (tensors.py: kind, dtype,
device, layout) and hands pointers and shapes to the C runtime, which validates counts, shapes,
symbol ranges, output sizes and bound constants (the messages come back as exceptions) and runs
the code through a runtime borrowed from a pool. GPU artifacts (gpu.py) upload their constants
once and give each runtime of the pool its own stream and workspace.

Concurrency: a call keeps all its state in locals, so `run` may be called from many threads at
once (the host code is reentrant and runs without the GIL). The pool of `num_runtimes` runtimes
bounds how many calls run at a time; further calls wait for a free runtime, as in AITemplate's
ModelContainer. Constants are shared by all runtimes and swapped as one immutable snapshot by
`set_constant` (in C), so a call in flight sees either the old or the new set, never a mix.
"""
from __future__ import annotations

import copy
import math
import os
import queue
import statistics
import threading
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ember.artifact.store import load_manifest
from ember.output_tree import rebuild
from ember.runtime.backends import open_backend
from ember.runtime.errors import ArgumentError, ArgumentTypeError
from ember.runtime.shapes import max_input_shapes
from ember.runtime.tensors import (Buffer, allocate, as_buffer, check_writable, copy_into,
                                   is_torch, numpy_dtype)
from ember.tensor_spec import Shape, TensorSpec

Tensors = Union[Sequence, Mapping[str, object]]


class Model:
    """A compiled model loaded from an artifact directory.

    `num_threads`: threads the code may use per call (honored when the code exports a
    thread-count hook). `num_runtimes`: how many calls may run at once (default: CPU count;
    1 for GPU artifacts, whose runtimes each hold a workspace). `graph_mode` (GPU artifacts
    only): each runtime captures its kernel launches into a CUDA/HIP graph on its first call
    and replays it. `verify`: hash the weights (and a GPU artifact's code) before using them
    (skip only for trusted, huge artifacts). A CPU artifact's library and manifest are always
    checked before the library is loaded (ember.artifact.store: the chain of trust).
    """

    def __init__(self, path, num_threads: Optional[int] = None,
                 num_runtimes: Optional[int] = None, verify: bool = True,
                 graph_mode: bool = False):
        for option, value in (("num_threads", num_threads), ("num_runtimes", num_runtimes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ArgumentError(f"{option} must be a positive int, got {value!r}")
        if not isinstance(graph_mode, bool):
            raise ArgumentError(f"graph_mode must be True or False, got {graph_mode!r}")
        self.path = os.fspath(path)
        manifest_bytes, self._manifest = load_manifest(self.path)
        m = self._manifest
        self._inputs = tuple(TensorSpec.from_manifest("input", e) for e in m["inputs"])
        self._outputs = tuple(TensorSpec.from_manifest("output", e) for e in m["outputs"])
        self._constant_specs = tuple(TensorSpec.from_manifest("constant", e)
                                     for e in m["constants"])
        self._bound = {c["name"]: c["bound"] for c in m["constants"]}
        self._output_tree = m.get("output_tree")
        written = [spec.writes_back for spec in self._outputs if spec.writes_back]
        self._mutated_inputs = tuple(i for i, spec in enumerate(self._inputs)
                                     if ("input", spec.name) in written)
        self._state_constants = frozenset(name for kind, name in written if kind == "constant")
        self._ranges = {s: (r["min"], r["max"]) for s, r in m["symbols"].items()}
        self.backend = open_backend(self.path, m, num_threads=num_threads, graph_mode=graph_mode,
                                    manifest_bytes=manifest_bytes, verify=verify)
        # The memory of constants set from Python, kept alive while the C side may use it: a
        # call holds the tuple it saw, which covers whatever snapshot its run takes.
        self._constant_owners: Tuple = (None,) * len(self._constant_specs)
        self._constants_lock = threading.Lock()
        self._profile_lock = threading.Lock()
        self._runtimes: queue.SimpleQueue = queue.SimpleQueue()
        default = getattr(self.backend, "default_num_runtimes", None) or os.cpu_count() or 1
        for _ in range(num_runtimes or default):
            self._runtimes.put(self.backend.new_runtime())

    # -- calling ---------------------------------------------------------------------------

    def run(self, inputs: Tensors, outputs: Tensors) -> List[Shape]:
        """Runs on caller-allocated `outputs` and returns the actual output shapes.

        `inputs`/`outputs`: lists in manifest order, or dicts name -> tensor; numpy arrays or
        torch tensors on the model's device (CPU, or the GPU of a GPU artifact, which copies
        numpy arrays to the device and back). An output buffer may be larger than this call's
        output (allocate it at `get_output_maximum_shape`): the result fills its leading
        elements, contiguous.
        """
        return self._run(inputs, outputs)[1]

    def run_with_tensors(self, inputs: Tensors, outputs: Tensors):
        """Like `run`, but returns the outputs as views of the actual shapes (a list, or a dict
        when `outputs` is one)."""
        buffers, shapes = self._run(inputs, outputs)
        views = [_leading_view(b.owner, shape) for b, shape in zip(buffers, shapes)]
        if isinstance(outputs, Mapping):
            return {spec.name: view for spec, view in zip(self._outputs, views)}
        return views

    def __call__(self, *inputs, **named_inputs):
        """Allocates the outputs and returns what the compiled torch model's forward returned
        (the manifest's `output_tree`: a tensor, a tuple, a dict or dataclass, with its
        constants and None); without an output tree, one tensor or a tuple for several. Torch
        inputs give torch outputs, numpy inputs numpy outputs. Inputs and constants the model
        changes in place are written back; their new values are not returned."""
        if inputs and named_inputs:
            raise ArgumentError("pass the inputs either positionally or by name, not both")
        values = named_inputs or list(inputs)
        in_buffers = self._input_buffers(values)
        like = next((b.owner for b in in_buffers if is_torch(b.owner)), None)
        packed = self.backend.pack_inputs(in_buffers)
        shapes = self.backend.output_shapes(packed)
        outputs = [allocate(spec.dtype, shape, like is not None,
                            device=None if like is None else like.device)
                   for spec, shape in zip(self._outputs, shapes)]
        self._execute(packed, self._output_buffers(outputs))
        self._write_back_copies(values, in_buffers)
        if self._output_tree is not None:
            return rebuild(self._output_tree, outputs)
        returned = [out for out, spec in zip(outputs, self._outputs) if not spec.writes_back]
        return returned[0] if len(returned) == 1 else tuple(returned)

    forward = __call__

    def output_shapes(self, inputs: Tensors) -> List[Shape]:
        """The output shapes a run on `inputs` would give, after the checks a run makes (kind
        of object, dtype, shapes, symbol ranges; ArgumentError / ArgumentTypeError otherwise),
        without running: what a server checks a request with before it joins a batch."""
        return self.backend.output_shapes(self._input_buffers(inputs))

    def set_constant(self, name: str, tensor) -> None:
        """Binds (or overrides) constant `name`. The tensor is referenced, not copied (unless it
        must be made contiguous): later in-place changes to it are seen by later runs. (A GPU
        artifact copies a numpy array to the device; a torch tensor on its GPU is referenced.)"""
        index = self._index(self._constant_specs, name)
        spec = self._constant_specs[index]
        # A constant the model changes in place is written by every run, into this memory.
        buffer = as_buffer(spec, tensor, device=self.backend.device,
                           writable=name in self._state_constants)
        with self._constants_lock:  # the C side checks the shape and swaps the snapshot
            self.backend.set_constant(spec.name, buffer, spec.dtype)
            owners = self._constant_owners
            self._constant_owners = owners[:index] + (buffer,) + owners[index + 1:]

    def benchmark(self, inputs: Optional[Tensors] = None, count: int = 100, warmup: int = 10,
                  symbols: Optional[Mapping[str, int]] = None) -> Dict[str, object]:
        """Times `count` calls after `warmup` and returns median/mean/min/max in ms and all times.

        Without `inputs`, uses `random_inputs(symbols)`. The Python-side checks happen once,
        outside the timed region; each timed call is one C runtime call (its argument checks,
        descriptors and the compiled code).
        """
        times = self._timed_runs(inputs, count, warmup, symbols)
        return {"count": count, "median_ms": statistics.median(times),
                "mean_ms": statistics.fmean(times), "min_ms": min(times), "max_ms": max(times),
                "times_ms": times}

    def profile(self, inputs: Optional[Tensors] = None, runs: int = 20, warmup: int = 3,
                symbols: Optional[Mapping[str, int]] = None):
        """Where the time goes: runs a profile build (`ember.compile(..., profile=True)`)
        `runs` times after `warmup` and returns an ember.runtime.profile.Profile (per step of
        the fused graph: calls, ms per run, share, achieved GFLOP/s and GB/s against this
        machine's peak; `.table()`, `.save_json()`, `.save_chart()`). Inputs as `benchmark`'s.
        Profiled runs take the model's runtimes one at a time."""
        from ember.runtime.profile import build_profile, machine_peak
        steps = self._manifest.get("profile", {}).get("steps")
        if steps is None or not hasattr(self.backend, "profile_counters"):
            raise ArgumentError(f"{self.path} has no per-kernel timers: profile a profile "
                                f"build (ember.compile(..., profile=True), or `ember compile "
                                f"--profile`; CPU targets)")
        with self._profile_lock:
            times = self._timed_runs(inputs, runs, warmup, symbols,
                                     after_warmup=self.backend.reset_profile)
            ns, calls = self.backend.profile_counters(len(steps) + 1)
        return build_profile(steps, ns, calls, runs, times, machine_peak())

    def random_inputs(self, symbols: Optional[Mapping[str, int]] = None,
                      seed: int = 0) -> List[np.ndarray]:
        """Inputs with each symbol at `symbols[name]` or its maximum: standard normal floats;
        zeros for integer and bool inputs, which are often indices (zero is always valid)."""
        rng = np.random.default_rng(seed)
        result = []
        for spec, shape in zip(self._inputs, max_input_shapes(self._inputs, self._ranges, symbols)):
            dtype = numpy_dtype(spec.dtype)
            result.append(rng.standard_normal(shape).astype(dtype)
                          if spec.dtype.startswith(("float", "bfloat")) else np.zeros(shape, dtype))
        return result

    # -- introspection (AITemplate's names) ------------------------------------------------

    def get_input_names(self) -> List[str]:
        return [spec.name for spec in self._inputs]

    def get_output_names(self) -> List[str]:
        return [spec.name for spec in self._outputs]

    def get_input_name_to_index_map(self) -> Dict[str, int]:
        return {spec.name: i for i, spec in enumerate(self._inputs)}

    def get_output_name_to_index_map(self) -> Dict[str, int]:
        return {spec.name: i for i, spec in enumerate(self._outputs)}

    def get_output_maximum_shape(self, output: Union[str, int]) -> Shape:
        return self._outputs[self._index(self._outputs, output)].max_shape

    def get_output_dtype(self, output: Union[str, int]) -> str:
        return self._outputs[self._index(self._outputs, output)].dtype

    def get_constant_names(self, unbound_only: bool = False) -> List[str]:
        """All constant names, or only those the artifact leaves for `set_constant`."""
        return [name for name, bound in self._bound.items() if not (unbound_only and bound)]

    @property
    def manifest(self) -> dict:
        """A copy of the artifact's manifest."""
        return copy.deepcopy(self._manifest)

    def __repr__(self) -> str:
        return (f"Model({self.path!r}, inputs=({', '.join(map(str, self._inputs))}), "
                f"outputs=({', '.join(map(str, self._outputs))}))")

    # -- internals -------------------------------------------------------------------------

    def _run(self, inputs: Tensors, outputs: Tensors) -> Tuple[List[Buffer], List[Shape]]:
        in_buffers = self._input_buffers(inputs)
        out_buffers = self._output_buffers(_ordered(outputs, self._outputs, "output"))
        shapes = self._execute(in_buffers, out_buffers)
        self._write_back_copies(inputs, in_buffers)
        return out_buffers, shapes

    def _input_buffers(self, inputs: Tensors) -> List[Buffer]:
        values = _ordered(inputs, self._inputs, "input")
        for i in self._mutated_inputs:
            check_writable(self._inputs[i], values[i])
        return [as_buffer(spec, value, device=self.backend.device, writable=False)
                for spec, value in zip(self._inputs, values)]

    def _write_back_copies(self, inputs: Tensors, buffers: List[Buffer]) -> None:
        """The runtime writes a mutated input's new value into the buffer the code was given;
        where that was a contiguous copy of the caller's tensor, copy it on into the tensor."""
        if not self._mutated_inputs:
            return
        values = _ordered(inputs, self._inputs, "input")
        for i in self._mutated_inputs:
            if buffers[i].owner is not values[i]:
                copy_into(values[i], buffers[i].owner)

    def _output_buffers(self, outputs: Sequence) -> List[Buffer]:
        return [as_buffer(spec, obj, device=self.backend.device, writable=True)
                for spec, obj in zip(self._outputs, outputs)]

    def _timed_runs(self, inputs: Optional[Tensors], count: int, warmup: int,
                    symbols: Optional[Mapping[str, int]], after_warmup=None) -> List[float]:
        """Milliseconds of each of `count` runs after `warmup` (see `benchmark`), calling
        `after_warmup()` in between."""
        if count < 1 or warmup < 0:
            raise ArgumentError(f"need count >= 1 and warmup >= 0, got {count} and {warmup}")
        in_buffers = self.backend.pack_inputs(self._input_buffers(
            self.random_inputs(symbols) if inputs is None else inputs))
        shapes = self.backend.output_shapes(in_buffers)
        outputs = [allocate(spec.dtype, shape, False) for spec, shape in zip(self._outputs, shapes)]
        out_buffers = self._output_buffers(outputs)
        for _ in range(warmup):
            self._execute(in_buffers, out_buffers)
        if after_warmup is not None:
            after_warmup()
        times = []
        for _ in range(count):
            start = time.perf_counter()
            self._execute(in_buffers, out_buffers)
            times.append((time.perf_counter() - start) * 1e3)
        return times

    def _execute(self, inputs, outputs: List[Buffer]) -> List[Shape]:
        """One run on the backend (which validates shapes, symbol ranges, output sizes and bound
        constants); returns the actual output shapes. `inputs`: Buffers, or the backend's
        packed form of them (pack_inputs)."""
        owners = self._constant_owners  # noqa: F841 (keeps this call's constants alive)
        runtime = self._runtimes.get()  # blocks while every runtime is busy
        try:
            return runtime.run(inputs, outputs)
        finally:
            self._runtimes.put(runtime)

    @staticmethod
    def _index(specs: Sequence[TensorSpec], key: Union[str, int]) -> int:
        names = [spec.name for spec in specs]
        if isinstance(key, int) and not isinstance(key, bool):
            if 0 <= key < len(names):
                return key
        elif key in names:
            return names.index(key)
        role = specs[0].role if specs else "tensor"
        raise ArgumentError(f"no {role} {key!r}; the model's {role}s are {names}")


def _ordered(values: Tensors, specs: Sequence[TensorSpec], role: str) -> list:
    """`values` as a list in manifest order, from a list or a dict name -> tensor."""
    names = [spec.name for spec in specs]
    if isinstance(values, Mapping):
        unknown = [k for k in values if k not in names]
        missing = [n for n in names if n not in values]
        if unknown or missing:
            problems = [f"{label} {role} names {found}" for label, found in
                        (("unknown", unknown), ("missing", missing)) if found]
            raise ArgumentError(f"{' and '.join(problems)}; the model's {role}s are {names}")
        return [values[n] for n in names]
    if isinstance(values, (list, tuple)):
        if len(values) != len(names):
            raise ArgumentError(f"expected {len(names)} {role}s {names}, got {len(values)}")
        return list(values)
    raise ArgumentTypeError(f"{role}s must be a list or a dict name -> tensor, "
                            f"got {type(values).__name__}")


def _leading_view(buffer, shape: Shape):
    """The first prod(shape) elements of a contiguous array or tensor, viewed as `shape`."""
    flat = buffer.reshape(-1)[:math.prod(shape)]
    return flat.reshape(shape)
