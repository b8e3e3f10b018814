"""What every target declares: its options, its facts, its ordered stage table, its code.

In the style of Triton's backends: a frozen options dataclass, and one ordered table of stages
from graph-level ember IR to the target's binary. A stage is either a named Pipeline of
registered passes (run on the module) or a function of the previous stage's output (LLVM IR,
an object, a library). The graph pipeline is stage 0 of every table. `run_stages` is the one
runner: it gives passes the target's facts (TargetInfo), verifies the module between stages,
names the failing pass with an ember-opt repro of that stage only, and keeps every stage's
output in `dump_dir`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from mlir import ir

from ember.pipeline import PassContext
from ember.pipeline.pass_base import REGISTRY, parse_option_value
from ember.pipeline.pipeline import Pipeline
from ember.pipeline.target_info import TargetInfo
from ember.progress import announce


@dataclass(frozen=True)
class TargetOptions:
    """Options common to all targets; targets subclass this with their own fields."""


@dataclass
class CodegenResult:
    """A target's code for the artifact: files to copy in and the manifest's `code` entry."""
    files: Dict[str, str]           # artifact file name -> path on disk
    code: Dict[str, Any]            # this target kind's manifest code section, e.g. {"library"}
    target: Dict[str, Any]          # manifest "target" section


@dataclass(frozen=True)
class PassStage:
    """A stage of registered passes, run on the module in place."""
    name: str
    pipeline: Pipeline


@dataclass(frozen=True)
class CodegenStage:
    """A stage that turns the previous stage's output into the next (`fn(payload, job)`)."""
    name: str
    fn: Callable[[Any, "CompileJob"], Any]


Stage = Union[PassStage, CodegenStage]


@dataclass
class CompileJob:
    """What stages share while compiling one module: a work dir, dump hook, signature."""
    workdir: str
    num_inputs: int
    num_outputs: int
    num_weights: int
    entry_name: str = "main"
    dump_dir: Optional[str] = None
    #: The model's manifest-shaped signature (symbols, inputs, constants, outputs) for the C
    #: runtime compiled into CPU libraries (backends/cpu/c_runtime.py); None: a bare entry point.
    signature: Optional[Dict[str, Any]] = None
    #: A profile build's steps (ember.explanation.step_table): the artifact's profile table.
    profile_steps: Optional[List[Dict[str, Any]]] = None

    def dump(self, index: int, stage: str, payload: Any) -> None:
        """Keeps a stage's output as `<index>-<stage>.<ext>` in `dump_dir` (if set)."""
        if not self.dump_dir:
            return
        os.makedirs(self.dump_dir, exist_ok=True)
        base = os.path.join(self.dump_dir, f"{index:02d}-{stage}")
        if isinstance(payload, (bytes, bytearray)):
            with open(base + ".bin", "wb") as f:
                f.write(payload)
            return
        suffix = ".mlir" if isinstance(payload, ir.Module) else \
            ".ll" if stage == "llvm-ir" else ".txt"
        with open(base + suffix, "w") as f:
            f.write(str(payload))


class Target:
    """A code generation target. Subclasses set `kind`, `Options` and the stage methods."""
    kind: str = ""
    Options = TargetOptions
    #: Whether this target's runtime writes the outputs marked `writes_back` (the new values
    #: of inputs and buffers the model changes in place) back after each run.
    writes_back: bool = False
    #: Whether the stage table compiles per-kernel timers into a profile build's code
    #: (ember-time-kernels on the steps ember-label-kernels numbered).
    times_kernels: bool = False

    def __init__(self, options: TargetOptions):
        self.options = options

    @classmethod
    def from_options(cls, **options) -> "Target":
        """The target from option values, text ones (from a target string) converted to
        their fields' types."""
        fields = {f.name: f for f in dataclasses.fields(cls.Options)}
        unknown = set(options) - set(fields)
        if unknown:
            raise ValueError(f"target '{cls.kind}' has no option(s) {sorted(unknown)}; "
                             f"options: {sorted(fields)}")
        values = {}
        for name, value in options.items():
            try:
                values[name] = parse_option_value(value, fields[name].type) \
                    if isinstance(value, str) else value
            except ValueError as e:
                raise ValueError(f"target '{cls.kind}': option {name} {e}") from None
        return cls(cls.Options(**values))

    def why_not_loadable(self) -> Optional[str]:
        """None when this process can load and run the target's artifacts (so `ember.compile`
        returns a callable model); otherwise the reason, e.g. a cross-compiled CPU or a GPU
        that is not present. The artifact is still written and can be run where it belongs."""
        return None

    def prepare_process(self) -> None:
        """Makes, in this process, what the target makes once and reuses: its facts, and
        whatever its code generation caches per process. `ember.compile` calls it before it
        forks a compile worker, which inherits all this, where what a worker makes is lost
        with it."""
        _ = self.info       # built once, cached on the target

    @property
    def info(self) -> TargetInfo:
        """The facts passes and code generators read (built once per target)."""
        raise NotImplementedError

    def int8_activation_encoding(self) -> str:
        """How this target's int8 GEMMs store dynamically quantized activations (an
        ember.quant.schemes encoding: s8, u8 or u7)."""
        return "s8"

    def static_activation_codes(self) -> tuple:
        """The unsigned code range [lo, hi] static int8 quantization gives activations for
        this target: 7 bits where its integer dot product reads u7 (vpmaddubsw, whose int16
        pair sums saturate on full-range bytes; u7 x s8 pairs never do), else all 8."""
        return (0, 127) if self.int8_activation_encoding() == "u7" else (0, 255)

    @property
    def spec(self) -> str:
        """The target string that rebuilds this target: `kind:key=value,...` with every option
        that differs from its default (what `ember-opt --target=` takes). Commas separate
        options there, so a feature list is written joined by its `+` signs."""
        changed = [f"{f.name}={_spec_value(getattr(self.options, f.name))}"
                   for f in dataclasses.fields(self.options)
                   if getattr(self.options, f.name) != f.default]
        return self.kind + (":" + ",".join(changed) if changed else "")

    def stages(self, graph: Pipeline) -> List[Stage]:
        """The ordered stage table from graph-level ember IR (`graph` is stage 0) to a
        CodegenResult."""
        raise NotImplementedError


def _spec_value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value).replace(",", "")


def stage_names(stages: Sequence[Stage]) -> List[str]:
    return [s.name for s in stages]


def first_codegen_stage(stages: Sequence[Stage]) -> int:
    """The index of the first code generation stage (where the passes have done their work)."""
    return next(i for i, s in enumerate(stages) if isinstance(s, CodegenStage))


def disable_passes(stages: Sequence[Stage], names: Sequence[str]) -> List[Stage]:
    """`stages` without the passes named in `names`; a name no stage holds is an error."""
    present = {n for s in stages if isinstance(s, PassStage) for n in s.pipeline.names()}
    unknown = sorted(set(names) - present)
    if unknown:
        raise ValueError(f"cannot disable {unknown}: not in the stage table "
                         f"(its passes: {', '.join(sorted(present))})")
    return [dataclasses.replace(s, pipeline=s.pipeline.without(names))
            if isinstance(s, PassStage) else s for s in stages]


def configure_passes(stages: Sequence[Stage],
                     pass_options: Mapping[str, Mapping[str, Any]]) -> List[Stage]:
    """`stages` with the named ember passes' options set (`{"ember-conv-winograd": {"tile":
    4}}`); a pass in no stage, or an option the pass lacks, is an error."""
    stages = list(stages)
    for name, options in pass_options.items():
        if not any(isinstance(s, PassStage) and name in s.pipeline.names() for s in stages):
            raise ValueError(f"cannot set options of '{name}': not in the stage table")
        cls = REGISTRY[name]
        fields = {f.name for f in cls.options()}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise ValueError(f"pass '{name}' has no option(s) {unknown} (options: "
                             f"{sorted(fields)})")
        stages = [dataclasses.replace(s, pipeline=s.pipeline.with_options(name, options))
                  if isinstance(s, PassStage) else s for s in stages]
    return stages


def run_stages(stages: Sequence[Stage], module: ir.Module, ctx: PassContext,
               job: Optional["CompileJob"] = None, *, first_index: int = 0,
               repro_dir: Optional[str] = None) -> Any:
    """Runs `stages` in order on `module`; returns the last stage's output.

    Pass stages run on the module in place (the same module object stays the IR of every later
    pass stage, whatever codegen stages hand on); the module is verified after each. With
    `job.dump_dir`, every stage's output is kept there, numbered from `first_index` (when a
    table runs in parts). A failing pass raises
    ember.pipeline.pipeline.PipelineFailure."""
    payload: Any = module
    if ctx.target is not None:
        ctx.target.stamp(module)
    for index, stage in enumerate(stages, first_index):
        if isinstance(stage, PassStage):
            stage.pipeline.run(module, ctx, repro_dir=repro_dir, stage=stage.name)
            module.operation.verify()
            output = module
        else:
            announce(stage=stage.name)
            payload = output = stage.fn(payload, job)
        if job is not None:
            job.dump(index, stage.name, output)
    return payload
