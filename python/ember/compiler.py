"""`ember.compile`: the one entry point from a torch model to a loaded, runnable artifact.

    frontend (torch -> ember text) -> parse in MLIR 22 -> the target's stage table (graph passes,
    lowering, code generation) -> artifact directory -> runtime Model

`compile_mlir` starts from ember-dialect MLIR text instead of a torch model, and
`compile_to_stage` stops after a named stage and returns the IR (for tests and tools). A failing
pass reports the ember-opt command line, target included, that reproduces it from its saved
input.

`compile` and `compile_mlir` run everything after torch.export's capture in a worker process
(ember.isolation): MLIR, LLVM and torch-mlir abort the process on internal errors, and there that
becomes a CompileError instead of the caller's death. `compile_to_stage`, which hands back a live
module, runs in the calling process.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import shutil
import tempfile
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from ember import progress

#: Environment variable naming a directory that keeps every stage's output (like `dump_dir`).
DUMP_DIR_VARIABLE = "EMBER_DUMP_DIR"


@dataclass(frozen=True)
class CompileOptions:
    """How to compile: inputs only (what a compile measured comes back on the result)."""
    target: Any = "host"                # a target string (`"aarch64:preset=graviton3"`) or Target
    dynamic_shapes: Any = None          # as torch.export's, e.g. {"x": {0: Dim("b", max=64)}}
    #: A textual pipeline replacing the graph passes (stage 0); None: ember's graph pipeline.
    graph_pipeline: Optional[str] = None
    #: Merge GEMMs that share an input (Q/K/V) into one; false keeps the original weights
    #: (no concatenated copies), trading that speed-up for memory.
    merge_parallel_linears: bool = True
    #: Quantization (an `ember.quant.Int8` or `ember.quant.WeightOnly`), or None for the
    #: model's own floating point.
    quantize: Any = None
    #: Implicit precision: "bf16" or "fp16" stores the weights of an fp32 model's Linear
    #: layers that `precision_filter` matches (kind "Linear" or module path, as Int8's filter;
    #: `precision_exclude` keeps matches in f32) in 16 bits; sums and activations stay f32
    #: (ember-implicit-precision). None: the model's own.
    precision: Optional[str] = None
    precision_filter: str = ".*"
    precision_exclude: str = ""
    #: Names of passes to leave out of the stage table (optimizations one can do without,
    #: e.g. "ember-vectorize-generics"; a name in no stage is an error).
    disabled_passes: Tuple[str, ...] = ()
    #: Options of passes in the stage table, by pass name and option field, e.g.
    #: {"ember-conv-winograd": {"tile": 4}}.
    pass_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    dump_dir: Optional[str] = None      # keep every stage's output here ($EMBER_DUMP_DIR)
    repro_dir: Optional[str] = None     # where failing pipelines save their input
    workdir: Optional[str] = None       # where the artifact is built (default: a temp dir)
    #: A profile build: per-kernel timers compiled into the code (CPU targets), read by
    #: `CompiledModel.profile` / `Model.profile` and `ember profile`.
    profile: bool = False
    #: Compile in a worker process, so that native code dying raises CompileError instead of
    #: killing the caller; EMBER_ISOLATE=0 turns it off everywhere (e.g. for a debugger).
    isolate: bool = True


def resolve_options(options: Optional[CompileOptions], overrides: Mapping[str, Any]
                    ) -> CompileOptions:
    """`options` (or the defaults) with keyword `overrides` applied on top: both count. The
    target comes back built (a Target), so a bad target string fails before the frontend runs
    and the target (which may ask the C compiler where libomp is) is made once per compile."""
    from ember.targets import get_target
    base = options or CompileOptions()
    known = {f.name for f in dataclasses.fields(CompileOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown compile option(s) {unknown}; CompileOptions has "
                        f"{sorted(known)}")
    resolved = dataclasses.replace(base, **overrides)
    from ember.quant import Int8, WeightOnly
    if resolved.quantize is not None and not isinstance(resolved.quantize, (Int8, WeightOnly)):
        raise TypeError(f"quantize must be an ember.quant.Int8 or ember.quant.WeightOnly (or "
                        f"None), got {type(resolved.quantize).__name__}")
    if resolved.precision not in (None, "bf16", "fp16"):
        raise ValueError(f"precision must be 'bf16', 'fp16' or None, got {resolved.precision!r}")
    target = get_target(resolved.target)
    if resolved.profile and not target.times_kernels:
        raise ValueError(f"profile builds time kernels on CPU targets (host, aarch64); target "
                         f"'{target.kind}' has no per-kernel timers: profile on a CPU target")
    return dataclasses.replace(resolved, target=target)


class CompiledModel:
    """A compiled model: callable like the torch module, backed by a runtime `Model`.
    `compile_timings` holds the seconds each part of the compile took."""

    def __init__(self, artifact_dir: str, runtime, *, owns_dir: bool, timings=None,
                 not_loaded_because: Optional[str] = None):
        self.artifact_dir = artifact_dir
        self.runtime = runtime
        self.not_loaded_because = not_loaded_because
        self.compile_timings = dict(timings or {})
        #: How the model was quantized (an ember.quant.report.QuantizationRecord), or None.
        self.quantization = None
        #: What `explain` recompiles: (weak reference to the model, example inputs' (shape,
        #: dtype), options), set by ember.compile.
        self._explain_source = None
        self._profiled: Optional["CompiledModel"] = None     # its profile build, when made
        if owns_dir:
            self._cleanup = weakref.finalize(self, shutil.rmtree, artifact_dir, True)

    def __call__(self, *inputs):
        if self.runtime is None:
            raise RuntimeError(f"the artifact in {self.artifact_dir} cannot run in this process: "
                               f"{self.not_loaded_because}; save() it and run it on its target")
        return self.runtime(*inputs)

    forward = __call__

    def save(self, path: str) -> str:
        """Copies the artifact directory to `path` (which must not exist); returns `path`. The
        copy is made beside `path` and renamed into place: an interrupted save leaves nothing
        at `path`."""
        from ember.artifact.publish import staged_directory
        if os.path.lexists(path):
            raise FileExistsError(f"cannot save the artifact: {path} exists")
        with staged_directory(path) as stage:
            shutil.copytree(self.artifact_dir, stage, dirs_exist_ok=True)
        return path

    def explain(self) -> str:
        """The fused graph this model was compiled from, one line per op with its kernel and
        source line (`explain` on the model, with inputs of the example inputs' shapes and
        dtypes and the same options)."""
        model, inputs, options = self._source("explain", "use ember.explain(model, inputs)")
        return explain(model, inputs, **{f.name: getattr(options, f.name)
                                         for f in dataclasses.fields(options)
                                         if f.name not in ("workdir", "repro_dir")})

    def profile(self, *inputs, runs: int = 20, warmup: int = 3):
        """Where the time goes, per step of the fused graph (an ember.runtime.profile.Profile;
        see `Model.profile`), on `inputs` (default: random ones of the largest shapes). A
        profile build is profiled itself; otherwise a profile build of the same model and
        options is compiled first (from the compile cache when it has one)."""
        if self.runtime is None:
            raise RuntimeError(f"the artifact in {self.artifact_dir} cannot run in this process: "
                               f"{self.not_loaded_because}")
        if "profile" not in self.runtime.manifest:
            if self._profiled is None:
                model, examples, options = self._source(
                    "profile", "compile it with profile=True and call profile() on that")
                self._profiled = compile(model, examples,
                                         options=dataclasses.replace(options, profile=True))
            return self._profiled.profile(*inputs, runs=runs, warmup=warmup)
        return self.runtime.profile(list(inputs) if inputs else None, runs=runs, warmup=warmup)

    def _source(self, what: str, otherwise: str):
        """(model, example inputs of the compile's shapes and dtypes, options) to compile
        again; the model must still be alive."""
        model = self._explain_source and self._explain_source[0]()
        if model is None:
            raise ValueError(f"{what}() needs the model this was compiled from, still alive in "
                             f"this process (ember.compile's result); {otherwise} otherwise")
        _, specs, options = self._explain_source
        import torch
        return model, [torch.zeros(shape, dtype=dtype) for shape, dtype in specs], options

    def __repr__(self) -> str:
        return f"CompiledModel({self.artifact_dir!r})"


def compile(model, example_inputs: Sequence[Any], *, options: Optional[CompileOptions] = None,
            **overrides) -> CompiledModel:
    """Compiles `model` for `options.target` and loads it.

    Options come as a CompileOptions, as keywords (`target=`, `dynamic_shapes=`, ... any of its
    fields), or both (keywords win). `dynamic_shapes` follows torch.export (e.g.
    `{"x": {0: torch.export.Dim("b", max=1024)}}`); declare a `max` so the runtime knows the
    maximum output sizes.
    """
    options = resolve_options(options, overrides)
    start = time.perf_counter()
    from ember.frontend import import_exported
    record = None
    if options.quantize is not None:
        from ember.quant.report import QuantizationRecord
        record = QuantizationRecord(options.quantize,
                                    options.target.int8_activation_encoding())
    key = _cache_key(model, example_inputs, options)
    cached = key and _from_cache(key, start)
    if cached:
        cached.quantization = record
        cached._explain_source = _explain_source(model, example_inputs, options)
        return cached
    exported = _capture(model, example_inputs, options, record)
    captured = time.perf_counter() - start

    def build(artifact_dir: str) -> Dict[str, float]:
        began = time.perf_counter()
        source = import_exported(exported)
        timings = {"frontend": captured + time.perf_counter() - began}
        timings.update(build_artifact(source, artifact_dir, options))
        return timings
    compiled = _compile_and_load(build, options, start)
    compiled.quantization = record
    compiled._explain_source = _explain_source(model, example_inputs, options)
    if key:
        from ember.artifact import cache
        cache.insert(key, compiled.artifact_dir)
    return compiled


def _capture(model, example_inputs: Sequence[Any], options: CompileOptions, record=None):
    """The torch.export capture of `model` for `options`: static int8 quantizes it first
    (PT2E, calibrated; its layers' parameters go into `record`, an
    ember.quant.report.QuantizationRecord, when given), and a WeightOnly scheme with the
    user's codes adds them to the weights. `model` itself is left as it was."""
    from ember.frontend.export import export_model
    if getattr(options.quantize, "mode", None) == "static":
        from ember.frontend.static_quantization import layer_parameters, quantize_static
        model = quantize_static(model, example_inputs, options.quantize, options.dynamic_shapes,
                                codes=options.target.static_activation_codes())
        if record is not None:
            record.static_layers = layer_parameters(model)
    exported = export_model(model, example_inputs, options.dynamic_shapes)
    if getattr(options.quantize, "weights", None):          # WeightOnly with the user's codes
        exported.weights.update(options.quantize.provided_entries(model))
    return exported


def explain(model, example_inputs: Sequence[Any], **compile_options) -> str:
    """The fused graph of `model` compiled with `compile_options` (ember.compile's): one line per
    op of the graph stage, with its kernel from the kernels stage and its source line (see
    ember.explanation)."""
    from ember.backends.base import run_stages, stage_names
    from ember.explanation import format_explanation, graph_lines
    from ember.frontend import import_exported
    options = resolve_options(None, compile_options)
    source = import_exported(_capture(model, example_inputs, options))
    module, ctx = parse_module(source.module_text, source.weights, options.target)
    stages = stage_table(options.target, options)
    run_stages(stages[:1], module, ctx)
    lines = graph_lines(module, source.symbolic_shapes,
                        [tuple(d.text for d in spec.dims) for spec in source.inputs])
    run_stages(stages[1:stage_names(stages).index("kernels") + 1], module, ctx, first_index=1)
    return format_explanation(lines, module, options.target.info, source.fallbacks)


def _explain_source(model, example_inputs, options: CompileOptions):
    """What CompiledModel.explain needs: the model (weakly: the compiled model must not keep
    it alive), the example inputs' shapes and dtypes (not their data), the options."""
    try:
        reference = weakref.ref(model)
    except TypeError:
        return None
    specs = [(tuple(x.shape), x.dtype) for x in example_inputs if hasattr(x, "shape")]
    return (reference, specs, options) if len(specs) == len(example_inputs) else None


def _cache_key(model, example_inputs, options: CompileOptions) -> Optional[str]:
    """The compile cache's key for this compile (ember.frontend.fingerprint), or None when it
    is not cached: the cache is off (EMBER_CACHE=0), stages are dumped, the artifact goes to
    a chosen workdir, static quantization calibrates (its record needs the calibrated model),
    or the model has no fingerprint."""
    from ember.artifact import cache
    if not cache.enabled() or options.dump_dir or os.environ.get(DUMP_DIR_VARIABLE) or \
            options.workdir or getattr(options.quantize, "mode", None) == "static":
        return None
    from ember.frontend.fingerprint import fingerprint
    keyed = dataclasses.replace(options, target=None, repro_dir=None, isolate=True)
    return fingerprint(model, example_inputs, keyed, repr(options.target.info))


def _from_cache(key: str, start: float) -> Optional[CompiledModel]:
    """The cached artifact of `key`, loaded, or None on a miss."""
    from ember.artifact import cache
    from ember.runtime import Model
    path = cache.lookup(key)
    if path is None:
        return None
    progress.logger.info("compile cache hit %s", path)
    return CompiledModel(path, Model(path), owns_dir=False,
                         timings={"cache": "hit", "total": time.perf_counter() - start})


def compile_mlir(text: str, *, weights: Optional[Mapping[str, Any]] = None,
                 options: Optional[CompileOptions] = None, **overrides) -> CompiledModel:
    """Compiles an ember-dialect module (static shapes; its `@main` takes and returns ranked
    tensors, inputs named arg0.., outputs out0..; `ember.weight` ops name entries of
    `weights`) and loads it, like `compile`."""
    from ember.frontend import FrontendResult
    options = resolve_options(options, overrides)

    def build(artifact_dir: str) -> Dict[str, float]:
        inputs, outputs = _main_signature(text)
        source = FrontendResult(text, dict(weights or {}), inputs, outputs, {})
        return build_artifact(source, artifact_dir, options)
    return _compile_and_load(build, options, time.perf_counter())


def compile_to_stage(text: str, stage: str, *, weights: Optional[Mapping[str, Any]] = None,
                     options: Optional[CompileOptions] = None, **overrides):
    """Runs the target's pass stages on ember-dialect `text` up to and including `stage`;
    returns the module (an `mlir.ir.Module`) at that point."""
    from ember.targets import get_target
    from ember.backends.base import CodegenStage, run_stages, stage_names
    options = resolve_options(options, overrides)
    target = get_target(options.target)
    stages = stage_table(target, options)
    names = stage_names(stages)
    if stage not in names:
        raise ValueError(f"target '{target.kind}' has no stage '{stage}'; its stages: "
                         f"{', '.join(names)}")
    upto = stages[:names.index(stage) + 1]
    if any(isinstance(s, CodegenStage) for s in upto):
        raise ValueError(f"stage '{stage}' comes after code generation began; compile_to_stage "
                         f"stops at a pass stage before it")
    module, ctx = parse_module(text, weights or {}, target)
    run_stages(upto, module, ctx, repro_dir=_repro_dir(options))
    return module


def stage_table(target, options: CompileOptions) -> list:
    """The target's stage table for these options: the graph pipeline (ember's, or the
    options' replacement) as stage 0, the passes' options set, the disabled passes left out."""
    from ember.backends.base import configure_passes, disable_passes
    from ember.pipeline.pipeline import Pipeline
    from ember.registry import REGISTRY  # noqa: F401  (a replacement may name any pass)
    from ember.transforms.graph_pipeline import graph_pipeline
    precision = None if options.precision is None else dict(
        precision={"fp16": "f16"}.get(options.precision, options.precision),
        filter=options.precision_filter, exclude=options.precision_exclude)
    graph = graph_pipeline(merge_parallel_gemms=options.merge_parallel_linears,
                           quantize=options.quantize, precision=precision,
                           label_kernels=options.profile) \
        if options.graph_pipeline is None else Pipeline.parse(
            options.graph_pipeline + (",ember-label-kernels" if options.profile else ""))
    stages = configure_passes(target.stages(graph), options.pass_options)
    return disable_passes(stages, options.disabled_passes)


#: The modules a compile worker runs, imported by the caller before it forks one (see
#: `_prepare_caller`).
WORKER_MODULES = ("ember.registry", "ember.frontend.importer", "ember.artifact.store",
                  "ember.transforms.graph_pipeline", "mlir.passmanager", "mlir.dialects.irdl",
                  "mlir.dialects.builtin", "torch_mlir.extras.fx_importer",
                  "torch_mlir.extras.meta", "torch_mlir.passmanager",
                  "torch_mlir.dialects.builtin", "torch_mlir.dialects.irdl",
                  "torch_mlir.dialects.torch")


def _compile_and_load(build: Callable[[str], Dict[str, float]], options: CompileOptions,
                      start: float) -> CompiledModel:
    """`build(artifact_dir)` (its timings) in a compile worker or, with isolation off, here;
    then the artifact loaded. A failed build leaves no temporary artifact directory."""
    from ember.isolation import isolation_enabled, run_isolated
    from ember.runtime import Model
    artifact_dir = options.workdir or tempfile.mkdtemp(prefix="ember-artifact-")
    try:
        progress.configure_logging()
        if isolation_enabled(options.isolate):
            _prepare_caller()
            options.target.prepare_process()
            timings = run_isolated(lambda: build(artifact_dir), repro_dir=_repro_dir(options))
        else:
            with progress.CompileProgress() as shown:
                progress.listen(shown)
                try:
                    timings = build(artifact_dir)
                finally:
                    progress.listen(None)
    except BaseException:
        if options.workdir is None:
            shutil.rmtree(artifact_dir, ignore_errors=True)
        raise
    timings["total"] = time.perf_counter() - start
    progress.logger.info("compiled in %.2f s (%s) into %s", timings["total"],
                         ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()
                                   if k != "total" and isinstance(v, (int, float))),
                         artifact_dir)
    reason = options.target.why_not_loadable()
    runtime = None if reason else Model(artifact_dir)
    return CompiledModel(artifact_dir, runtime, owns_dir=options.workdir is None,
                         timings=timings, not_loaded_because=reason)


@functools.lru_cache(maxsize=None)
def _prepare_caller() -> None:
    """Does once in the caller what every compile worker would otherwise do again, and lose
    when it exits: import the modules it runs, and the one-time setup of a process's first
    torch-mlir context, first compiler context and pass manager, and first LLVM code
    generation (a few tens of milliseconds per compile otherwise). Fixed, empty inputs: nothing
    a user gives runs here."""
    from mlir import ir
    from mlir.passmanager import PassManager
    from torch_mlir import ir as torch_mlir_ir

    from ember.backends.llvm import emit_object, host_cpu
    from ember.dialect import new_context
    for name in WORKER_MODULES:
        importlib.import_module(name)
    torch_mlir_ir.Context()
    with new_context():
        PassManager.parse("builtin.module(canonicalize)").run(
            ir.Module.parse("module {}").operation)
    triple, cpu, features = host_cpu()
    emit_object("", triple=triple, cpu=cpu, features=features)


def build_artifact(source, artifact_dir: str, options: CompileOptions) -> Dict[str, float]:
    """Runs the target's stages on `source` (an ember.frontend.FrontendResult) and writes the
    artifact to `artifact_dir`; returns the seconds spent passing and generating code.

    The pass stages run first; once they have bound the weights, the model's signature (which
    the C runtime compiled into CPU libraries needs) is known, and the code generation stages
    follow."""
    from ember.artifact.store import write_artifact
    from ember.targets import get_target
    from ember.backends.base import CompileJob

    target = get_target(options.target)
    timings: Dict[str, float] = {}
    state = _state_constants(source, target)
    # The passes see a mutated buffer as a constant without data, so none folds its value
    # into the code: each run reads the value the previous one wrote back.
    module, ctx = parse_module(source.module_text,
                               {n: None if n in state else a for n, a in source.weights.items()},
                               target)
    with tempfile.TemporaryDirectory(prefix="ember-build-") as workdir:
        job = CompileJob(workdir=workdir, num_inputs=len(source.inputs),
                         num_outputs=len(source.outputs), num_weights=0,
                         dump_dir=options.dump_dir or os.environ.get(DUMP_DIR_VARIABLE))
        result = generate_code(module, ctx, options, job, timings=timings,
                               signature=lambda names, weights: _signature(
                                   source, names, _with_state(weights, source, state)))
        weights = _with_state({n: ctx.weights.get(n) for n in ctx.bound_weights.get("main", [])},
                              source, state)
        manifest = {"target": result.target, "code": {target.kind: result.code},
                    **job.signature}
        if job.profile_steps is not None:
            manifest["profile"] = {"steps": job.profile_steps}
        write_artifact(artifact_dir, manifest=manifest, weights=weights, files=result.files)
    return timings


def generate_code(module, ctx, options: CompileOptions, job, *, signature=None,
                  timings: Optional[Dict[str, float]] = None):
    """Runs `options.target`'s stage table on `module` (with `ctx`, both from
    `parse_module`);
    returns the target's CodegenResult.

    The pass stages run first; once they have bound the weights, `job.num_weights` is set and,
    with `signature(constant_names, weights)`, `job.signature` (the C runtime compiled into CPU
    libraries needs it); the code generation stages follow. `timings` receives the seconds of
    each half ("passes", "codegen"). A profile build's steps, read after the graph stage, go
    to `job.profile_steps`."""
    from ember.targets import get_target
    from ember.backends.base import first_codegen_stage, run_stages
    stages = stage_table(get_target(options.target), options)
    split = first_codegen_stage(stages)
    t0 = time.perf_counter()
    run_stages(stages[:1], module, ctx, job, repro_dir=_repro_dir(options))
    if options.profile:
        from ember.explanation import step_table
        job.profile_steps = step_table(module)
    run_stages(stages[1:split], module, ctx, job, first_index=1, repro_dir=_repro_dir(options))
    t1 = time.perf_counter()
    names = ctx.bound_weights.get("main", [])
    job.num_weights = len(names)
    if signature is not None:
        job.signature = signature(names, {n: ctx.weights.get(n) for n in names})
    result = run_stages(stages[split:], module, ctx, job, first_index=split,
                        repro_dir=_repro_dir(options))
    if timings is not None:
        timings.update(passes=t1 - t0, codegen=time.perf_counter() - t1)
    return result


def parse_module(text: str, weights: Mapping[str, Any], target):
    """The module parsed in a fresh compiler context, and the pass context for `target`."""
    from mlir import ir

    from ember.dialect import new_context
    from ember.kit.parser_guards import refuse_parser_aborts
    from ember.pipeline import PassContext
    from ember.weights import WeightTable
    refuse_parser_aborts(text)
    with new_context():
        module = ir.Module.parse(text)
    return module, PassContext(weights=WeightTable(dict(weights)), target=target.info)


def _repro_dir(options: CompileOptions) -> str:
    return options.repro_dir or os.path.join(tempfile.gettempdir(), "ember-repro")


def _main_signature(text: str) -> Tuple[list, list]:
    """TensorSpecs of the inputs and outputs of `@main` in `text` (static shapes)."""
    from mlir import ir

    from ember.dialect import new_context
    from ember.symbolic import Dim
    from ember.kit.parser_guards import refuse_parser_aborts
    from ember.tensor_spec import ELEMENT_DTYPES, TensorSpec
    refuse_parser_aborts(text)
    with new_context():
        module = ir.Module.parse(text)
        mains = [op for op in module.body.operations if "sym_name" in op.attributes and
                 ir.StringAttr(op.attributes["sym_name"]).value == "main"]
        if not mains:
            raise ValueError("the module has no @main function")
        fn_type = ir.FunctionType(ir.TypeAttr(mains[0].attributes["function_type"]).value)

        def entries(types, role, prefix):
            out = []
            for i, t in enumerate(types):
                t = ir.RankedTensorType(t)
                if not t.has_static_shape:
                    raise ValueError(f"@main's {prefix}{i} has a dynamic shape ({t}); "
                                     f"compile_mlir takes static shapes")
                out.append(TensorSpec(role, f"{prefix}{i}", ELEMENT_DTYPES[str(t.element_type)],
                                      tuple(Dim(d) for d in t.shape)))
            return out
        return entries(fn_type.inputs, "input", "arg"), entries(fn_type.results, "output", "out")


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


def _signature(source, constant_names, weights) -> dict:
    """The manifest's description of how to call the model (which the C runtime compiled into
    the library also needs, so it is known before code generation). A mutated buffer the code
    no longer reads (it only writes it, or a pass removed the read) has nothing to write back
    to: its output stays, unreturned, and the runtime drops it."""
    outputs = [dataclasses.replace(s, writes_back=None)
               if s.writes_back and s.writes_back[0] == "constant" and
               s.writes_back[1] not in constant_names else s for s in source.outputs]
    signature = {
        "inputs": [s.to_json() for s in source.inputs],
        "outputs": [s.to_json() for s in outputs],
        "symbols": _bounded(source.symbols),
        "constants": [{"name": n, "dtype": str(weights[n].dtype), "shape": list(weights[n].shape),
                       "bound": True} for n in constant_names],
    }
    if source.output_tree is not None:
        signature["output_tree"] = source.output_tree
    return signature


def _state_constants(source, target) -> frozenset:
    """The constants the model writes back to (buffers forward changes in place); refused
    for a target whose runtime cannot write back."""
    state = frozenset(s.writes_back[1] for s in source.outputs
                      if s.writes_back and s.writes_back[0] == "constant")
    changed = [s.writes_back[1] for s in source.outputs if s.writes_back]
    if changed and not target.writes_back:
        raise NotImplementedError(
            f"the model changes {changed} in place, and the '{target.kind}' runtime does not "
            f"write such changes back yet; compile it for a CPU target, or return the new "
            f"values instead of assigning them")
    return state


def _with_state(weights: Dict[str, Any], source, state: frozenset) -> Dict[str, Any]:
    """`weights` (the bound constants, by name, from the passes' table) with each mutated
    buffer's initial value from the frontend. Every other constant must have data: one without
    was derived from a mutated buffer at compile time, which would freeze its first value."""
    missing = sorted(n for n, a in weights.items() if a is None and n not in state)
    if missing:
        raise NotImplementedError(
            f"the buffers {sorted(state)}, which the model changes in place, are used where "
            f"ember precomputes constants at compile time (giving {missing}); compiling that "
            f"would freeze their first value. Keep such buffers out of weight-only "
            f"computations (e.g. pass the running value as an input)")
    return {n: source.weights[n] if n in state else a for n, a in weights.items()}
