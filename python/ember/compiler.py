"""`ember.compile`: the one entry point from a torch model to a loaded, runnable artifact.

    frontend (torch -> ember text) -> parse in MLIR 22 -> graph passes -> target lowering
    -> target codegen stages -> artifact directory -> runtime Model

The same pipelines are available to ember-opt, and a failing pass reports the ember-opt command
line that reproduces it from the saved input.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from ember.pipeline.pipeline import Pipeline

#: Graph passes: simplify, fold weight-only math and BatchNorm, convert conv nets to NHWC
#: (transposes of filters fold; those between layers cancel), recognize attention, RMSNorm
#: and rotary embeddings, fuse
#: GEMM/conv epilogues, merge GEMMs sharing an input (Q/K/V).
GRAPH_PIPELINE = ("ember-canonicalize,ember-fold-constants,ember-fold-batch-norm,"
                  "ember-convert-layout,ember-fold-constants,ember-fuse-attention,"
                  "ember-fuse-rms-norm,ember-fuse-rotary-embedding,"
                  "ember-fuse-epilogue,ember-merge-parallel-gemms,ember-canonicalize,"
                  "canonicalize,cse")


@dataclass
class CompileOptions:
    target: Any = "host"
    dynamic_shapes: Any = None
    graph_pipeline: str = GRAPH_PIPELINE
    #: Merge GEMMs that share an input (Q/K/V) into one; false keeps the original weights
    #: (no concatenated copies), trading that speed-up for memory.
    merge_parallel_linears: bool = True
    dump_dir: Optional[str] = None      # keep every stage's output here
    repro_dir: Optional[str] = None     # where failing pipelines save their input
    workdir: Optional[str] = None       # where the artifact is built (default: a temp dir)
    timings: Dict[str, float] = field(default_factory=dict)


class CompiledModel:
    """A compiled model: callable like the torch module, backed by a runtime `Model`."""

    def __init__(self, artifact_dir: str, runtime, *, owns_dir: bool, timings=None,
                 not_loaded_because: Optional[str] = None):
        self.artifact_dir = artifact_dir
        self.runtime = runtime
        self.not_loaded_because = not_loaded_because
        self.compile_timings = dict(timings or {})
        if owns_dir:
            self._cleanup = weakref.finalize(self, shutil.rmtree, artifact_dir, True)

    def __call__(self, *inputs):
        if self.runtime is None:
            raise RuntimeError(f"the artifact in {self.artifact_dir} cannot run in this process: "
                               f"{self.not_loaded_because}; save() it and run it on its target")
        return self.runtime(*inputs)

    forward = __call__

    def save(self, path: str) -> str:
        """Copies the artifact directory to `path` (which must not exist); returns `path`."""
        shutil.copytree(self.artifact_dir, path)
        return path

    def __repr__(self) -> str:
        return f"CompiledModel({self.artifact_dir!r})"


def compile(model, example_inputs: Sequence[Any], *, target="host", dynamic_shapes=None,
            options: Optional[CompileOptions] = None, **kwargs) -> CompiledModel:
    """Compiles `model` for `target` and loads it.

    `dynamic_shapes` follows torch.export (e.g. `{"x": {0: torch.export.Dim("b", max=1024)}}`);
    declare a `max` so the runtime knows the maximum output sizes.
    """
    options = options or CompileOptions(**kwargs)
    options.target, options.dynamic_shapes = target, dynamic_shapes
    timings = options.timings
    start = time.perf_counter()

    from ember.frontend import import_model
    imported = import_model(model, example_inputs, dynamic_shapes)
    timings["frontend"] = time.perf_counter() - start

    artifact_dir = options.workdir or tempfile.mkdtemp(prefix="ember-artifact-")
    owns = options.workdir is None
    build_artifact(imported, artifact_dir, options)
    timings["total"] = time.perf_counter() - start

    from ember.runtime import Model
    from ember.backends import get_target
    reason = get_target(options.target).why_not_loadable()
    runtime = None if reason else Model(artifact_dir)
    return CompiledModel(artifact_dir, runtime, owns_dir=owns, timings=timings,
                         not_loaded_because=reason)


def build_artifact(imported, artifact_dir: str, options: CompileOptions) -> None:
    """Runs the compiler on a frontend result and writes the artifact to `artifact_dir`."""
    from mlir import ir

    from ember.artifact.store import write_artifact
    from ember.dialect import new_context
    from ember.pipeline import PassContext
    from ember.backends import get_target
    from ember.backends.base import CompileJob
    from ember.weights import WeightTable

    timings = options.timings
    target = get_target(options.target)
    repro_dir = options.repro_dir or os.path.join(tempfile.gettempdir(), "ember-repro")
    context = new_context()
    t0 = time.perf_counter()
    with context:
        module = ir.Module.parse(imported.module_text)
    pass_ctx = PassContext(weights=WeightTable(imported.weights), target=target)
    graph = options.graph_pipeline if options.merge_parallel_linears else \
        options.graph_pipeline.replace("ember-merge-parallel-gemms",
                                       "ember-merge-parallel-gemms{enabled=false}")
    pipeline = Pipeline.parse(graph, context) + \
        Pipeline.parse(target.lowering_pipeline(), context)
    pipeline.run(module, pass_ctx, repro_dir=repro_dir)
    timings["passes"] = time.perf_counter() - t0
    constant_names = pass_ctx.bound_weights.get("main", [])
    weights = {n: pass_ctx.weights.get(n) for n in constant_names}
    signature = _signature(imported, constant_names, weights)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ember-build-") as workdir:
        job = CompileJob(workdir=workdir, num_inputs=len(imported.inputs),
                         num_outputs=len(imported.outputs), num_weights=len(constant_names),
                         dump_dir=options.dump_dir, signature=signature)
        result = target.codegen(module, job)
        timings["codegen"] = time.perf_counter() - t1
        manifest = {"target": result.target, "code": {target.kind: result.code}, **signature}
        write_artifact(artifact_dir, manifest=manifest, weights=weights, files=result.files)


#: The maximum assumed for a dynamic dim declared without one (torch.export.Dim's default).
UNBOUNDED_MAX = 2**31 - 1


def _bounded(symbols: dict) -> dict:
    """Symbol ranges with every max set; an undeclared max becomes UNBOUNDED_MAX (warned)."""
    out = {}
    for name, bounds in symbols.items():
        if bounds["max"] is None:
            warnings.warn(f"dynamic dim {name} has no declared max; declare one "
                          f"(torch.export.Dim(..., max=N)) so the runtime can size outputs")
        out[name] = {"min": bounds["min"],
                     "max": UNBOUNDED_MAX if bounds["max"] is None else bounds["max"]}
    return out


def _signature(imported, constant_names, weights) -> dict:
    """The manifest's description of how to call the model (which the C runtime compiled into
    the library also needs, so it is known before code generation)."""
    return {
        "inputs": [s.to_json() for s in imported.inputs],
        "outputs": [s.to_json() for s in imported.outputs],
        "symbols": _bounded(imported.symbols),
        "constants": [{"name": n, "dtype": str(weights[n].dtype), "shape": list(weights[n].shape),
                       "bound": True} for n in constant_names],
    }
