"""What the GPU targets (cuda.py, rocm.py) share: options, facts, the stage table, the artifact.

Stages (graph-level ember IR -> kernels -> the target's binary):
  graph      the graph passes (ember.transforms.graph_pipeline)
  lower      ember-conv-to-gemm, ember-gpu-outline-gemms (GEMMs become tiled-kernel calls;
             dynamic shapes are refused here), ember-lower-to-linalg, ember-bind-weights. The
             CPU-only weight packing and micro-kernels are not used.
  kernels    one kernel per op in one gpu.module (backends/gpu/kernels.py), after bufferization
  plan       the host function becomes the launch plan of ember.artifact.launch_plan (extracted
             by plan.py) and is removed, leaving the gpu.module
  prepare    the kernels without affine or scf, as the NVVM/ROCDL conversions expect
  ...        the target's own conversion (NVVM -> PTX -> cubin, or ROCDL -> HSACO)
  artifact   kernel files, plan, manifest sections
Codegen stages pass a `GpuProgram` along.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from mlir import ir

from ember.artifact.launch_plan import ABI, PLAN_FILE, validate_plan, write_plan
from ember.backends.base import (CodegenResult, CodegenStage, CompileJob, PassStage, Stage,
                                 Target, TargetOptions)
from ember.backends.bufferize import bufferize_passes
from ember.backends.gpu.kernels import (CopiesToLinalg, FinishKernels, LaunchGemms, LaunchLoops,
                                        LaunchRows, NameKernels, UnrollForalls)
from ember.backends.gpu.outline_gemms import GpuOutlineGemms
from ember.backends.gpu.plan import PlanError, extract_plan
from ember.lowering.bind_weights import BindWeights
from ember.lowering.conv_to_gemm import ConvToGemm
from ember.lowering.copy_repeated_results import CopyRepeatedResults
from ember.lowering.lower_to_linalg import LowerToLinalg
from ember.pipeline.pipeline import Pipeline, nest, upstream
from ember.pipeline.target_info import TargetInfo


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


class GpuTarget(Target):
    """Base of the GPU targets: subclasses set `kind`, `triple`, `default_arch`, `archs`,
    `warp_size`, `tensor_cores` and `convert_stages()` (the stages from the prepared gpu.module
    to the kernels' binary, adding files and code entries to the GpuProgram)."""
    default_arch = ""
    archs: tuple = ()
    triple = ""
    #: Lanes of a warp (wavefront) sharing a row in row kernels.
    warp_size = 32
    #: f16/bf16, int8 and low-bit GEMMs on tensor cores (mma.sync, NVIDIA sm_80+; mma_gemm.py).
    tensor_cores = False

    def __init__(self, options: GpuOptions):
        super().__init__(options)
        self.arch = options.arch or self.default_arch
        if self.archs and self.arch not in self.archs:
            raise ValueError(f"target '{self.kind}': arch '{self.arch}' is not supported; "
                             f"choose one of {', '.join(self.archs)}")

    def describe(self) -> dict:
        return {"kind": self.kind, "arch": self.arch}

    @functools.cached_property
    def info(self) -> TargetInfo:
        return TargetInfo(kind=self.kind, spec=self.spec, triple=self.triple, arch=self.arch,
                          warp_size=self.warp_size, tensor_cores=self.tensor_cores)

    def stages(self, graph: Pipeline) -> List[Stage]:
        return [
            PassStage("graph", graph),
            PassStage("lower", Pipeline.of([
                ConvToGemm(), GpuOutlineGemms(), LowerToLinalg(), upstream("canonicalize"),
                upstream("cse"), BindWeights()])),
            PassStage("kernels", Pipeline.of([
                UnrollForalls(), upstream("canonicalize"), CopyRepeatedResults(),
                *bufferize_passes(),   # no deallocation: the launch plan places memory
                LaunchGemms(), CopiesToLinalg(),
                nest("func.func", upstream("linalg-generalize-named-ops")), LaunchRows(),
                nest("func.func", upstream("convert-linalg-to-parallel-loops")), LaunchLoops(),
                NameKernels(), upstream("gpu-launch-sink-index-computations"),
                upstream("gpu-kernel-outlining"), upstream("canonicalize"), upstream("cse"),
                FinishKernels()])),
            CodegenStage("plan", self._plan),
            PassStage("prepare", Pipeline.of([nest("gpu.module", upstream(name)) for name in (
                "lower-affine", "convert-scf-to-cf", "canonicalize", "cse")])),
            *self.convert_stages(),
            CodegenStage("artifact", self._artifact),
        ]

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
                             target=self.describe())

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
