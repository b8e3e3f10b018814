"""The CUDA target: NVVM -> PTX (MLIR's NVPTX backend) -> cubin (ptxas, when installed).

`target="cuda"` or `"cuda:arch=sm_80,ptx=ptx80,opt_level=3"`. Stages after the shared GPU
lowering (gpu_lowering.py): plan -> nvvm (convert-gpu-to-nvvm with bare-pointer kernel
arguments, then gpu-module-to-binary{format=isa} for `#nvvm.target<chip=arch>`) -> ptx (the
binary's PTX text) -> cubin (`ptxas --gpu-name <arch>`; skipped when ptxas is not on PATH, and
the runtime then JIT-compiles the PTX) -> artifact. f16/bf16 GEMMs run on the tensor cores
(mma.sync m16n8k16 with f32 accumulation, ember.backends.gpu.mma_gemm; every arch here is sm_80 or
later), f32 GEMMs on the CUDA cores. convert-nvgpu-to-nvvm lowers the kernels' ldmatrix and
cp.async before convert-gpu-to-nvvm.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Optional

from mlir import ir
from mlir.dialects import gpu

from ember.backends.base import CompileJob
from ember.backends.gpu.lowering import GpuOptions, GpuProgram, GpuTarget, run_passes, why_no_device
from ember.backends.cpu.target import run_tool


@dataclass(frozen=True)
class CudaOptions(GpuOptions):
    ptx: str = ""           # PTX ISA feature, e.g. "ptx80"; "" picks one the arch needs
    ptxas: str = "ptxas"    # the assembler; "" or not on PATH: ship PTX only


#: The PTX ISA version each arch needs at least (CUDA 11.0: 7.0 for sm_80; 12.0: 8.0 for sm_90).
_PTX = {"sm_80": "ptx70", "sm_86": "ptx71", "sm_89": "ptx78", "sm_90": "ptx80",
        "sm_90a": "ptx80"}


def cuda_device_reason() -> Optional[str]:
    from cuda.bindings import driver
    err, = driver.cuInit(0)
    if err != driver.CUresult.CUDA_SUCCESS:
        return f"no usable CUDA driver (cuInit: {err.name})"
    err, count = driver.cuDeviceGetCount()
    if err != driver.CUresult.CUDA_SUCCESS or count == 0:
        return "no CUDA device"
    return None


class CudaTarget(GpuTarget):
    kind = "cuda"
    Options = CudaOptions
    default_arch = "sm_80"
    archs = tuple(_PTX)
    kernel_options = "tensor-cores"

    def describe(self) -> dict:
        return {**super().describe(), "ptx": self.ptx_feature}

    @property
    def ptx_feature(self) -> str:
        return self.options.ptx or _PTX[self.arch]

    def why_not_loadable(self) -> Optional[str]:
        return why_no_device(cuda_device_reason)

    def convert_stages(self):
        return [("nvvm", self._nvvm), ("ptx", self._ptx), ("cubin", self._cubin)]

    def _nvvm(self, program: GpuProgram, job: CompileJob) -> GpuProgram:
        module = program.module
        with module.context:
            target = ir.Attribute.parse(f'[#nvvm.target<chip = "{self.arch}", features = '
                                        f'"+{self.ptx_feature}", O = {self.options.opt_level}>]')
            for op in module.body.operations:
                if op.operation.name == "gpu.module":
                    op.attributes["targets"] = target
            run_passes(module, "gpu.module(convert-nvgpu-to-nvvm,"
                               "convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=1}),"
                               "reconcile-unrealized-casts,gpu-module-to-binary{format=isa}")
        return program

    def _ptx(self, program: GpuProgram, job: CompileJob) -> GpuProgram:
        texts = [gpu.ObjectAttr(obj).object.decode()
                 for op in program.module.body.operations if op.operation.name == "gpu.binary"
                 for obj in op.attributes["objects"]]
        if len(texts) != 1:
            raise RuntimeError(f"expected one PTX object from gpu-module-to-binary, got "
                               f"{len(texts)}")
        self.write(program, job, "kernels.ptx", texts[0])
        program.code.update(module="kernels.ptx", ptx="kernels.ptx")
        return program

    def _cubin(self, program: GpuProgram, job: CompileJob) -> GpuProgram:
        ptxas = shutil.which(self.options.ptxas) if self.options.ptxas else None
        if ptxas is None:
            return program
        ptx = program.files["kernels.ptx"]
        cubin = ptx[:-len(".ptx")] + ".cubin"
        run_tool([ptxas, "--gpu-name", self.arch, f"-O{min(3, int(self.options.opt_level))}",
                  ptx, "-o", cubin])
        program.files["kernels.cubin"] = cubin
        program.code["module"] = "kernels.cubin"
        return program
