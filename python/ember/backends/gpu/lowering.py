"""What the GPU targets (cuda.py, rocm.py) share: the lowering, the plan stage, the artifact.

Lowering (graph-level ember IR -> one gpu.module of kernels plus a host function of launches):
ember-conv-to-gemm, ember-gpu-outline-gemms (GEMMs become tiled-kernel calls; dynamic shapes
are refused here), ember-lower-to-linalg, ember-bind-weights, ember-gpu-kernels (bufferize,
one kernel per op, outlining). The CPU-only weight packing and micro-kernels are not used.

A GPU target's stages then start with `plan` (the host function becomes the launch plan of
ember.artifact.launch_plan, extracted by gpu_plan.py, and is removed, leaving the gpu.module), go through the target's own conversion
(NVVM/PTX or ROCDL/HSACO) and end with `artifact` (kernel files, plan, manifest sections).
Stages pass a `GpuProgram` along.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from mlir import ir
from mlir.passmanager import PassManager

from ember.artifact.launch_plan import ABI, PLAN_FILE, validate_plan, write_plan

from ember.backends.base import CodegenResult, CompileJob, Target, TargetOptions
from ember.backends.gpu.plan import PlanError, extract_plan

GPU_LOWERING = ("ember-conv-to-gemm,ember-gpu-outline-gemms,ember-lower-to-linalg,canonicalize,"
                "cse,ember-bind-weights,ember-gpu-kernels")
#: Cleanup of the kernels before the NVVM/ROCDL conversion (which expects no affine or scf).
PREPARE_KERNELS = "gpu.module(lower-affine,convert-scf-to-cf,canonicalize,cse)"


@dataclass(frozen=True)
class GpuOptions(TargetOptions):
    arch: str = ""          # chip (sm_90, gfx942); "" means the target's default
    opt_level: int = 3


@dataclass
class GpuProgram:
    """What GPU stages hand on: the module (kernels), the plan and the files made so far."""
    module: ir.Module
    plan: dict
    kernels: List[str]          # kernel symbols, as the plan names them
    files: Dict[str, str] = field(default_factory=dict)
    code: Dict[str, str] = field(default_factory=dict)
    #: The latest stage's output besides the module (LLVM IR text, object bytes), if any.
    intermediate: Union[str, bytes, None] = None

    def __str__(self) -> str:          # the stage dump
        return f"{self.module}\n// launch plan:\n// {json.dumps(self.plan)}\n"


def run_passes(module: ir.Module, pipeline: str) -> None:
    PassManager.parse(f"builtin.module({pipeline})", module.context).run(module.operation)


class GpuTarget(Target):
    """Base of the GPU targets: subclasses set `kind`, `default_arch`, `archs`,
    `kernel_options` (options of ember-gpu-kernels) and `convert_stages()` (GpuProgram ->
    GpuProgram, adding files and code entries)."""
    default_arch = ""
    archs: tuple = ()
    kernel_options = ""

    def __init__(self, options: GpuOptions):
        super().__init__(options)
        self.arch = options.arch or self.default_arch
        if self.archs and self.arch not in self.archs:
            raise ValueError(f"target '{self.kind}': arch '{self.arch}' is not supported; "
                             f"choose one of {', '.join(self.archs)}")

    def describe(self) -> dict:
        return {"kind": self.kind, "arch": self.arch}

    def lowering_pipeline(self) -> str:
        return GPU_LOWERING + (f"{{{self.kernel_options}}}" if self.kernel_options else "")

    def stages(self):
        return [("plan", self._plan), *self.convert_stages(), ("artifact", self._artifact)]

    def convert_stages(self):
        raise NotImplementedError

    def _plan(self, module: ir.Module, job: CompileJob) -> GpuProgram:
        hosts = [op for op in module.body.operations if op.operation.name == "func.func"]
        if len(hosts) != 1:
            raise PlanError(f"expected one host function after the GPU lowering, found "
                            f"{len(hosts)}")
        with module.context:
            plan = extract_plan(hosts[0], job.num_inputs)
            hosts[0].erase()
            run_passes(module, PREPARE_KERNELS)
        kernels = [ir.StringAttr(fn.attributes["sym_name"]).value
                   for op in module.body.operations if op.operation.name == "gpu.module"
                   for fn in op.regions[0].blocks[0].operations]
        return GpuProgram(module, plan, kernels)

    def _artifact(self, program: GpuProgram, job: CompileJob) -> CodegenResult:
        counts = {"input": job.num_inputs, "constant": job.num_weights,
                  "output": job.num_outputs}
        problems = validate_plan(program.plan, program.kernels, counts)
        if problems:
            raise PlanError("invalid launch plan:\n  " + "\n  ".join(problems))
        path = os.path.join(job.workdir, PLAN_FILE)
        write_plan(program.plan, path)
        return CodegenResult(files={**program.files, PLAN_FILE: path},
                             code={**program.code, "plan": PLAN_FILE, "abi": ABI},
                             target=self.describe(),
                             stage_outputs={"plan": program.plan})

    def write(self, program: GpuProgram, job: CompileJob, name: str, data) -> str:
        """Writes `data` (bytes or text) to `name` in the work dir, as one of the files."""
        path = os.path.join(job.workdir, name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        program.files[name] = path
        return path


def why_no_device(probe) -> Optional[str]:
    """Runs `probe()` (returns None or a reason); any exception becomes the reason."""
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - a missing driver raises anything
        return f"{type(exc).__name__}: {exc}"
