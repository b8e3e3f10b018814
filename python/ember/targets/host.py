"""The host CPU target: this machine's triple, CPU and features, code as a shared library.

Stages (after the lowering pipeline has produced the LLVM dialect):
  llvm-ir  -> LLVM IR text from MLIR 22
  object   -> an ELF object from llvmlite, optimized for the host CPU
  library  -> `model.so`: the object, the C entry stub and cpu_support.c linked by the system cc
The library exports `int32_t ember_entry(void **args)`, args = memref descriptors of the inputs,
then the bound constants, then the outputs (see ember.artifact), and, given the job's signature,
the ember C runtime API (cpu_runtime.py).
"""
from __future__ import annotations

import functools
import glob
import os
import shlex
import subprocess
from dataclasses import dataclass
from importlib import resources
from typing import List, Optional

from ember.codegen.cpu_gemm import CpuTraits, host_traits, vector_shape_for

from . import cpu_runtime
from .base import CodegenResult, CompileJob, Stage, Target, TargetOptions
from .llvm import emit_object, host_cpu, translate_to_llvm_ir

#: Pipeline from graph-level ember IR to LLVM dialect, shared by CPU targets.
CPU_LOWERING = ("ember-conv-to-gemm,ember-pack-weights,ember-lower-to-linalg,canonicalize,cse,"
                "ember-bind-weights,"
                "ember-legalize-reshapes,"
                "ember-host-to-llvm")
#: Exported by cpu_support.c: `int32_t ember_set_num_threads(int32_t)` (the runtime's hook).
THREADS_SYMBOL = "ember_set_num_threads"


class ToolError(RuntimeError):
    """An external tool failed; the message quotes the command to rerun."""


def run_tool(cmd: List[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolError(f"{cmd[0]} failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n"
                        f"rerun with:\n  {shlex.join(cmd)}")


def entry_stub(entry: str, num_args: int) -> str:
    """C source of `ember_entry`, unpacking the argument array into the C-interface call."""
    params = ", ".join(["void *"] * num_args) or "void"
    args = ", ".join(f"args[{i}]" for i in range(num_args))
    return (
        "#include <stdint.h>\n"
        f"extern void _mlir_ciface_{entry}({params});\n"
        "__attribute__((visibility(\"default\")))\n"
        "extern void ember_enter(void);\n"
        "int32_t ember_entry(void **args) {\n"
        "  ember_enter();\n"
        f"  _mlir_ciface_{entry}({args});\n"
        "  return 0;\n"
        "}\n"
    )


def support_source_path() -> str:
    return str(resources.files(__package__).joinpath("cpu_support.c"))


def find_libomp(cc: str = "cc") -> Optional[str]:
    """Path of LLVM's OpenMP runtime (Debian: libomp-dev), or None. MLIR's OpenMP lowering
    calls its `__kmpc_*` entry points, which gcc's libgomp does not provide."""
    for name in ("libomp.so", "libomp.so.5"):
        try:
            out = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True,
                                 text=True).stdout.strip()
        except OSError:
            out = ""
        if os.path.isabs(out) and os.path.exists(out):
            return os.path.realpath(out)
    found = sorted(glob.glob("/usr/lib/llvm-*/lib/libomp.so"))
    return found[-1] if found else None


#: Vector features of CPUs named without a feature string (LLVM then uses the CPU's own), for
#: the GEMM schedule's vector shape: AVX-512 (16 f32 lanes, 32 registers) or AVX2 (8, 16).
_AVX512 = "+avx512f,+avx2,+fma"
_AVX2 = "+avx2,+fma"
_CPU_FEATURES = {
    **dict.fromkeys(("znver4", "znver5", "skylake-avx512", "cascadelake", "cooperlake",
                     "icelake-server", "icelake-client", "tigerlake", "sapphirerapids",
                     "graniterapids", "x86-64-v4"), _AVX512),
    **dict.fromkeys(("haswell", "broadwell", "skylake", "alderlake", "raptorlake", "znver1",
                     "znver2", "znver3", "x86-64-v3"), _AVX2),
}


@dataclass(frozen=True)
class HostOptions(TargetOptions):
    cpu: str = ""           # LLVM CPU name; "" means this machine's
    features: str = ""      # LLVM feature string; "" means this machine's
    opt_level: int = 3
    cc: str = "cc"
    vector_bits: int = 0    # vector register width for code generation; 0: from the features
    l1d_kb: int = 0         # cache sizes per core (L3: shared) for GEMM blocking; 0: this
    l2_kb: int = 0          # machine's (sysfs), when compiling for it
    l3_kb: int = 0
    cores: int = 0          # cores the parallel schedule plans for; 0: this machine's
    openmp: str = "auto"    # threads through libomp: "auto" (when found), "on", "off"


class HostTarget(Target):
    kind = "host"
    Options = HostOptions

    def __init__(self, options: HostOptions):
        super().__init__(options)
        triple, cpu, features = host_cpu()
        self.triple = triple
        self.cpu = options.cpu or cpu
        self.features = options.features or (features if not options.cpu else "")

    @functools.cached_property
    def libomp(self) -> Optional[str]:
        return find_libomp(self.options.cc)

    @property
    def openmp(self) -> bool:
        """Whether generated code runs parallel loops on OpenMP threads (linking libomp)."""
        mode = str(self.options.openmp).lower()
        if mode in ("off", "false", "0"):
            return False
        if mode in ("on", "true", "1") and self.libomp is None:
            raise ToolError("openmp=on but libomp was not found (apt-get install libomp-dev)")
        return self.libomp is not None

    def cpu_traits(self) -> CpuTraits:
        """Vector shape, caches and cores the GEMM code generation plans for."""
        host = host_traits()
        features = self.features or _CPU_FEATURES.get(self.cpu, "")
        lanes, registers = vector_shape_for(features, self.triple)
        bits = int(self.options.vector_bits)
        if bits:
            lanes = bits // 32
        kb = 1024
        return CpuTraits(lanes=lanes, registers=registers,
                         l1d=int(self.options.l1d_kb) * kb or host.l1d,
                         l2=int(self.options.l2_kb) * kb or host.l2,
                         l3=int(self.options.l3_kb) * kb or host.l3,
                         cores=int(self.options.cores) or host.cores)

    def describe(self) -> dict:
        return {"kind": self.kind, "triple": self.triple, "cpu": self.cpu}

    def lowering_pipeline(self) -> str:
        return CPU_LOWERING

    def stages(self) -> List[Stage]:
        return [("llvm-ir", self._llvm_ir), ("object", self._object), ("library", self._library)]

    def _llvm_ir(self, module, job: CompileJob) -> str:
        return translate_to_llvm_ir(module)

    def _object(self, llvm_ir: str, job: CompileJob) -> bytes:
        return emit_object(llvm_ir, triple=self.triple, cpu=self.cpu, features=self.features,
                           opt_level=int(self.options.opt_level))

    def _library(self, obj: bytes, job: CompileJob) -> CodegenResult:
        obj_path = os.path.join(job.workdir, "model.o")
        stub_path = os.path.join(job.workdir, "entry.c")
        lib_path = os.path.join(job.workdir, "model.so")
        with open(obj_path, "wb") as f:
            f.write(obj)
        with open(stub_path, "w") as f:
            f.write(entry_stub(job.entry_name,
                               job.num_inputs + job.num_weights + job.num_outputs))
        run_tool([self.options.cc, "-shared", "-fPIC", "-O2", "-o", lib_path, obj_path,
                  stub_path, support_source_path(),
                  *cpu_runtime.cc_args(job.signature, job.workdir, cc=self.options.cc),
                  *self.link_flags(), "-lm"])
        return CodegenResult(files={"model.so": lib_path,
                                    **cpu_runtime.artifact_files(job.signature)},
                             code={"library": "model.so", "symbol": "ember_entry",
                                   "threads_symbol": THREADS_SYMBOL},
                             target=self.describe())

    def link_flags(self) -> List[str]:
        """Extra `cc` flags: libomp (with an rpath to its directory) when threads are on."""
        if not self.openmp:
            return []
        return ["-DEMBER_OPENMP", self.libomp, f"-Wl,-rpath,{os.path.dirname(self.libomp)}"]
