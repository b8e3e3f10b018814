"""The ROCm target: ROCDL -> LLVM IR -> AMDGPU object (llvmlite) -> HSACO (ld.lld -shared).

`target="rocm"` or `"rocm:arch=gfx90a"`. Its own stages after the shared GPU ones
(lowering.py): rocdl (ember-rocdl-expand-floor, convert-gpu-to-rocdl for the chipset, bare-pointer kernel
arguments) -> llvm-ir (the gpu.module's body translated as a module of its own; MLIR 22's
gpu-module-to-binary cannot serialize ROCDL here, its LLVM has no AMDGPU backend) -> object
(llvmlite's LLVM 22, triple amdgcn-amd-amdhsa, cpu = arch) -> hsaco (`ld.lld -shared`) ->
artifact. The code object is version 4: Debian's lld 14 links nothing newer, and every ROCm
that runs gfx90a/gfx942 loads it. Kernels call no device library (`--no-undefined` checks; exp/tanh are polynomials
and floor is expanded first).
"""
from __future__ import annotations

import ctypes
import os
import shutil
from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.backends.base import CodegenStage, CompileJob, PassStage
from ember.backends.external_tools import ToolError, run_tool
from ember.backends.gpu.expand_floor import ExpandFloor
from ember.backends.gpu.lowering import GpuOptions, GpuProgram, GpuTarget, why_no_device
from ember.backends.llvm import emit_object, translate_to_llvm_ir
from ember.pipeline.pipeline import Pipeline, nest, upstream

TRIPLE = "amdgcn-amd-amdhsa"
CODE_OBJECT_VERSION = 400


@dataclass(frozen=True)
class RocmOptions(GpuOptions):
    lld: str = "ld.lld"


def hip_device_reason() -> Optional[str]:
    try:
        hip = ctypes.CDLL("libamdhip64.so")
    except OSError:
        return "libamdhip64.so (the HIP runtime) is not installed"
    count = ctypes.c_int(0)
    if hip.hipGetDeviceCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "no ROCm device"
    return None


class RocmTarget(GpuTarget):
    kind = "rocm"
    Options = RocmOptions
    default_arch = "gfx942"
    archs = ("gfx90a", "gfx942")
    triple = TRIPLE
    #: gfx90a and gfx942 run wavefronts of 64 lanes: a row kernel's warp is a wavefront.
    warp_size = 64

    def why_not_loadable(self) -> Optional[str]:
        return why_no_device(hip_device_reason)

    def convert_stages(self):
        return [
            PassStage("rocdl", Pipeline.of([
                ExpandFloor(),
                nest("gpu.module", upstream("convert-gpu-to-rocdl", chipset=self.arch,
                                            use_bare_ptr_memref_call_conv=True)),
                upstream("reconcile-unrealized-casts")])),
            CodegenStage("llvm-ir", self._llvm_ir),
            CodegenStage("object", self._object),
            CodegenStage("hsaco", self._hsaco),
        ]

    def _llvm_ir(self, program: GpuProgram, job: CompileJob) -> GpuProgram:
        with program.module.context, ir.Location.unknown():
            device = ir.Module.create()
            for op in program.module.body.operations:
                if op.operation.name == "gpu.module":
                    for inner in op.regions[0].blocks[0].operations:
                        inner.clone(ip=ir.InsertionPoint(device.body))
            ir.Operation.parse('llvm.module_flags [#llvm.mlir.module_flag<error, '
                               f'"amdhsa_code_object_version", {CODE_OBJECT_VERSION} : i32>]'
                               ).clone(ip=ir.InsertionPoint(device.body))
            program.intermediate = translate_to_llvm_ir(device)
        return program

    def _object(self, program: GpuProgram, job: CompileJob) -> GpuProgram:
        program.intermediate = emit_object(program.intermediate, triple=TRIPLE, cpu=self.arch,
                                           opt_level=self.options.opt_level)
        return program

    def _hsaco(self, program: GpuProgram, job: CompileJob) -> GpuProgram:
        lld = shutil.which(self.options.lld)
        if lld is None:
            raise ToolError(f"{self.options.lld} is needed to link the ROCm code object "
                            f"(apt-get install lld)")
        obj_path = os.path.join(job.workdir, "kernels.o")
        with open(obj_path, "wb") as f:
            f.write(program.intermediate)
        hsaco = os.path.join(job.workdir, "kernels.hsaco")
        run_tool([lld, "-shared", "--no-undefined", obj_path, "-o", hsaco])
        program.files["kernels.hsaco"] = hsaco
        program.code["module"] = "kernels.hsaco"
        return program
