"""Runtime backends, one per artifact target kind (`manifest["target"]["kind"]`).

A backend is built as `Backend(directory, manifest, num_threads=...)` (plus `graph_mode=...`
where it declares `supports_graph_mode`, and `manifest_bytes=..., verify=...` where it declares
`checks_its_files`: it then checks the files it reads on the bytes it uses, and open_backend
does not hash them beforehand), reads its own `manifest["code"][kind]` section, binds the bound
constants, and offers (buffers are `ember.runtime.tensors.Buffer`s the Model has
checked against the declared dtypes):
  device                            the torch device type the model's tensors must live on
                                    (numpy arrays are host memory, which GPU backends copy);
  default_num_runtimes              optional: the pool size when the caller gives none (the
                                    Model uses the CPU count for backends without one);
  pack_inputs(inputs)               the inputs in the backend's call form (keeps them alive);
  output_shapes(inputs)             validates the input shapes, returns the output shapes;
  set_constant(name, buffer, dtype) binds a constant to the buffer's memory (not copied);
  new_runtime()                     an object whose `run(inputs, outputs)` validates, runs and
                                    returns the actual output shapes, raising the runtime's
                                    exceptions.
The Model keeps a pool of runtimes and lends one to each call (AITemplate's ModelContainer), so
a backend with per-call state (a CUDA stream and workspace) gives each runtime its own, while
the constants stay shared: host and aarch64 (the ember C runtime inside the artifact's
library), cuda and
rocm (gpu.py, with their drivers in cuda.py and hip.py).

`graph_mode` (capture the launches once, replay them) exists only where a runtime launches
kernels; the host backend calls compiled code directly, so asking for it there is an error
rather than an option silently ignored.
"""
from __future__ import annotations

from typing import Mapping, Optional

from ember.artifact.store import ArtifactError, verify_files
from ember.runtime.cuda import CudaBackend
from ember.runtime.errors import ArgumentError
from ember.runtime.hip import HipBackend
from ember.runtime.host import HostBackend

BACKENDS = {"host": HostBackend, "aarch64": HostBackend, "cuda": CudaBackend,
            "rocm": HipBackend}


def open_backend(directory: str, manifest: Mapping, *, num_threads: Optional[int],
                 graph_mode: bool = False, manifest_bytes: bytes = b"", verify: bool = True):
    """The backend for `manifest` (read from `manifest_bytes`); with `verify`, the artifact's
    files are checked against the manifest's hashes before the backend uses them."""
    kind = manifest["target"]["kind"]
    if kind not in BACKENDS:
        raise ArtifactError(f"no runtime backend for target kind {kind!r} "
                            f"(available: {sorted(BACKENDS)})")
    backend = BACKENDS[kind]
    options = {"num_threads": num_threads}
    if getattr(backend, "supports_graph_mode", False):
        options["graph_mode"] = graph_mode
    elif graph_mode:
        raise ArgumentError(f"graph_mode applies to GPU artifacts; this artifact's target "
                            f"is {kind!r}, which runs without graphs")
    if getattr(backend, "checks_its_files", False):
        options.update(manifest_bytes=manifest_bytes, verify=verify)
    elif verify:
        verify_files(directory, manifest_bytes, manifest)
    return backend(directory, manifest, **options)
