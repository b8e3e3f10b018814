"""What every target declares: its options, its ordered stages, and its code in the artifact.

In the style of Triton's backends: a frozen options dataclass (its hash keys compile caches), an
ordered stage table from ember IR to the target's binary, where each stage is a function of the
previous stage's output, and a `dump_dir` hook that keeps every stage's output on disk.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from mlir import ir


@dataclass(frozen=True)
class TargetOptions:
    """Options common to all targets; targets subclass this with their own fields."""

    def key(self) -> str:
        return repr(self)


@dataclass
class CodegenResult:
    """A target's code for the artifact: files to copy in and the manifest's `code` entry."""
    files: Dict[str, str]           # artifact file name -> path on disk
    code: Dict[str, Any]            # this target kind's manifest code section, e.g. {"library"}
    target: Dict[str, Any]          # manifest "target" section
    stage_outputs: Dict[str, Any] = field(default_factory=dict)


Stage = Tuple[str, Callable[[Any, "CompileJob"], Any]]


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
    #: runtime compiled into CPU libraries (targets/cpu_runtime.py); None: a bare entry point.
    signature: Optional[Dict[str, Any]] = None

    def dump(self, stage: str, payload: Any) -> None:
        if not self.dump_dir:
            return
        os.makedirs(self.dump_dir, exist_ok=True)
        suffix = {"ll": ".ll"}.get(stage, ".mlir" if isinstance(payload, ir.Module) else ".txt")
        if isinstance(payload, (bytes, bytearray)):
            with open(os.path.join(self.dump_dir, stage + ".bin"), "wb") as f:
                f.write(payload)
            return
        with open(os.path.join(self.dump_dir, stage + suffix), "w") as f:
            f.write(str(payload))


class Target:
    """A code generation target. Subclasses set `kind`, `Options` and the stage methods."""
    kind: str = ""
    Options = TargetOptions

    def __init__(self, options: TargetOptions):
        self.options = options

    @classmethod
    def from_options(cls, **options) -> "Target":
        names = {f.name for f in dataclasses.fields(cls.Options)}
        unknown = set(options) - names
        if unknown:
            raise ValueError(f"target '{cls.kind}' has no option(s) {sorted(unknown)}; "
                             f"options: {sorted(names)}")
        return cls(cls.Options(**options))

    def why_not_loadable(self) -> Optional[str]:
        """None when this process can load and run the target's artifacts (so `ember.compile`
        returns a callable model); otherwise the reason, e.g. a cross-compiled CPU or a GPU
        that is not present. The artifact is still written and can be run where it belongs."""
        return None

    def lowering_pipeline(self) -> str:
        """The pipeline from graph-level ember IR to this target's LLVM dialect module."""
        raise NotImplementedError

    def stages(self) -> List[Stage]:
        """Ordered (name, fn) stages turning the LLVM-dialect module into a CodegenResult."""
        raise NotImplementedError

    def codegen(self, module: ir.Module, job: CompileJob) -> CodegenResult:
        payload: Any = module
        for name, stage in self.stages():
            payload = stage(payload, job)
            job.dump(name, payload)
        return payload
