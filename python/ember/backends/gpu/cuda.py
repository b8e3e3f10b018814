"""The CUDA target: NVVM -> PTX (MLIR's NVPTX backend) -> cubin (ptxas, when installed).

`target="cuda"` or `"cuda:arch=sm_80,ptx=ptx80,opt_level=3"`. Its own stages after the shared
GPU ones (lowering.py): nvvm (nvvm-attach-target for the arch, convert-gpu-to-nvvm with
bare-pointer kernel arguments, gpu-module-to-binary{format=isa}) -> ptx (the
binary's PTX text) -> cubin (`ptxas --gpu-name <arch>`; skipped when ptxas is not on PATH, and
the runtime then JIT-compiles the PTX) -> artifact. f16/bf16 and weight-only low-bit GEMMs run on
the tensor cores (mma.sync m16n8k16 with f32 accumulation), int8 GEMMs too (m16n8k32, i32
accumulation; ember.backends.gpu.mma_gemm; every arch here is sm_80 or later), f32 GEMMs on the
CUDA cores. convert-nvgpu-to-nvvm lowers the kernels' ldmatrix and
cp.async before convert-gpu-to-nvvm.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Optional

from mlir.dialects import gpu

from ember.backends.base import CodegenStage, CompileJob, PassStage
from ember.backends.external_tools import run_tool
from ember.backends.gpu.lowering import GpuOptions, GpuProgram, GpuTarget, why_no_device
from ember.pipeline.pipeline import Pipeline, nest, upstream


@dataclass(frozen=True)
class CudaOptions(GpuOptions):
    ptx: str = ""           # PTX ISA feature, e.g. "ptx80"; "" picks one the arch needs
    ptxas: str = "ptxas"    # the assembler; "" or not on PATH: ship PTX only
    tensor_cores: bool = True   # f16/bf16, int8, low-bit GEMMs on mma.sync (false: SIMT/generic)


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
    triple = "nvptx64-nvidia-cuda"

    @property
    def tensor_cores(self) -> bool:
        return self.options.tensor_cores

    def describe(self) -> dict:
        return {**super().describe(), "ptx": self.ptx_feature}

    @property
    def ptx_feature(self) -> str:
        return self.options.ptx or _PTX[self.arch]

    def why_not_loadable(self) -> Optional[str]:
        return why_no_device(cuda_device_reason)

    def convert_stages(self):
        return [
            PassStage("nvvm", Pipeline.of([
                upstream("nvvm-attach-target", chip=self.arch, features=f"+{self.ptx_feature}",
                         O=self.options.opt_level),
                nest("gpu.module", upstream("convert-nvgpu-to-nvvm")),
                nest("gpu.module", upstream("convert-gpu-to-nvvm",
                                            use_bare_ptr_memref_call_conv=True)),
                upstream("reconcile-unrealized-casts"),
                upstream("gpu-module-to-binary", format="isa")])),
            CodegenStage("ptx", self._ptx),
            CodegenStage("cubin", self._cubin),
        ]

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
        run_tool([ptxas, "--gpu-name", self.arch, f"-O{min(3, self.options.opt_level)}",
                  ptx, "-o", cubin])
        program.files["kernels.cubin"] = cubin
        program.code["module"] = "kernels.cubin"
        return program
