"""Runtime backends, one per artifact target kind (`manifest["target"]["kind"]`).

A backend is built as `Backend(directory, manifest, num_threads=...)`, reads its own
`manifest["code"][kind]` section, binds the bound constants, and offers (buffers are
`ember.runtime.tensors.Buffer`s the Model has checked against the declared dtypes):
  device                            the torch device type the model's tensors must live on;
  pack_inputs(inputs)               the inputs in the backend's call form (keeps them alive);
  output_shapes(inputs)             validates the input shapes, returns the output shapes;
  set_constant(name, buffer, dtype) binds a constant to the buffer's memory (not copied);
  new_runtime()                     an object whose `run(inputs, outputs)` validates, runs and
                                    returns the actual output shapes, raising the runtime's
                                    exceptions.
The Model keeps a pool of runtimes and lends one to each call (AITemplate's ModelContainer), so
a backend with per-call state (a CUDA stream and workspace) gives each runtime its own, while
the constants stay shared. Only the host backend exists so far (the ember C runtime inside the
artifact's library); CUDA and ROCm add entries here.
"""
from __future__ import annotations

from typing import Mapping, Optional

from ember.artifact import ArtifactError
from ember.runtime.host import HostBackend

BACKENDS = {"host": HostBackend}


def open_backend(directory: str, manifest: Mapping, *, num_threads: Optional[int]):
    kind = manifest["target"]["kind"]
    if kind not in BACKENDS:
        raise ArtifactError(f"no runtime backend for target kind {kind!r} "
                            f"(available: {sorted(BACKENDS)})")
    return BACKENDS[kind](directory, manifest, num_threads=num_threads)
