"""What every CPU target shares: options, facts, and the stage table from ember IR to `model.so`.
A CPU target module (host.py, aarch64.py) only declares what differs: its triple, CPU and
features, its vector shape and the caches it plans for when not told.

Stages (each a named pipeline of registered passes, then functions of the previous output):
  graph      the graph passes (ember.transforms.graph_pipeline)
  lower      Winograd and implicit-GEMM convs (int8 ones by integer Winograd without VNNI),
             packed weights, ember ops -> linalg with GEMMs as
             kernel calls, attention's products on the same kernels, weights bound as arguments
  bufferize  pads filled on their border only, one-shot bufferization (results become
             out-parameters, GEMM kernels write their destination in place), ember-plan-buffers'
             static memory plan, deallocation
  kernels    run-time checks of data-dependent indices and integer divisors (which add the
             fault record argument), vector micro-kernel bodies for the GEMM kernel functions,
             reassociable reductions, polynomial exp/tanh, big ops split over OpenMP threads
             (with `openmp`), elementwise ops vectorized in MLIR
  loops      scf.forall -> scf.parallel, linalg -> loops, i1 memrefs widened, scf.parallel ->
             OpenMP (with `openmp`); in a profile build, a timer call where each step begins
  llvm       everything to the LLVM dialect, with `_mlir_ciface_` wrappers on public functions;
             bf16 math in f32, masked f16/bf16 vector loads and stores moving i16 lanes
  llvm-ir    LLVM IR text from MLIR 22 (`prepare_llvm_dialect` may annotate functions first)
  object     an ELF object from llvmlite for the target's triple, CPU and features
  library    `model.so`: the object, the C entry stub and cpu_support.c linked by the target's C
             compiler (`cc`, a cross compiler for a foreign triple)
The library exports `int32_t ember_entry(void **args, int64_t *fault)`, args = memref descriptors
of the inputs, then the bound constants, then the outputs (see ember.artifact.store), fault the
record of the run-time checks (NULL, or capi.FAULT_WORDS words), and, given the job's
signature, the ember C runtime API (c_runtime.py). Nothing here knows about a particular
architecture.
"""
from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from typing import List, Optional, Sequence, Tuple

from ember.backends.base import (CodegenResult, CodegenStage, CompileJob, PassStage, Stage,
                                 Target, TargetOptions)
from ember.backends.bufferize import bufferize_passes
from ember.backends.external_tools import ToolError, run_tool
from ember.backends.cpu import c_runtime
from ember.backends.cpu.c_interface import MarkCInterface
from ember.backends.cpu.conv_winograd import ConvWinograd
from ember.backends.cpu.cpu_contractions import CpuContractions
from ember.backends.cpu.expand_math import ExpandMath
from ember.backends.cpu.gemm_kernels import CpuGemmKernels
from ember.backends.cpu.int8_dot import int8_dot_for
from ember.backends.cpu.inline_alloca_scopes import InlineAllocaScopes
from ember.backends.cpu.kernel_destinations import MarkKernelDestinations
from ember.backends.cpu.masked_half_as_int16 import MaskedHalfAsInt16
from ember.backends.cpu.microkernel import CpuTraits, vector_shape_for
from ember.backends.cpu.pack_weights import PackWeights
from ember.backends.cpu.pad_borders import FillPadBorders
from ember.backends.cpu.padded_results import KernelsWritePadding
from ember.backends.cpu.parallelize_loops import ParallelizeLoops
from ember.backends.cpu.plan_buffers import PlanBuffers
from ember.backends.cpu.qconv_winograd import QConvWinograd
from ember.backends.cpu.reassociate_reductions import ReassociateReductions
from ember.backends.cpu.runtime_checks import RuntimeChecks
from ember.backends.cpu.time_kernels import TimeKernels
from ember.backends.cpu.vectorize_generics import VectorizeGenerics
from ember.backends.cpu.widen_bool_memrefs import WidenBoolMemrefs
from ember.lowering.bind_weights import BindWeights
from ember.lowering.conv_to_gemm import ConvToGemm
from ember.lowering.copy_repeated_results import CopyRepeatedResults
from ember.lowering.legalize_reshapes import LegalizeReshapes
from ember.backends.llvm import emit_object, translate_to_llvm_ir
from ember.lowering.lower_to_linalg import LowerToLinalg
from ember.transforms.fold_quantized_ops import FoldQuantizedOps
from ember.pipeline.pipeline import Pipeline, nest, upstream
from ember.pipeline.target_info import TargetInfo
from ember.runtime import capi

#: Upstream conversions from loops, vectors and memrefs to the LLVM dialect, in order (verified
#: on MLIR 22.1.8; see DESIGN.md section 3). finalize-memref-to-llvm calls the generic allocation
#: functions, which cpu_support.c's caching allocator implements. Math goes first: on vectors,
#: convert-math-to-libm calls libm (erf, acosh, ...) lane by lane through vector.extract and
#: vector.insert, which convert-vector-to-llvm must still see. Complex arithmetic becomes
#: arith/math on the parts before those run, complex values LLVM structs after memrefs.
TO_LLVM = tuple(upstream(*name.split()) for name in (
    "convert-bufferization-to-memref",
    "convert-complex-to-standard",
    "convert-vector-to-scf",
    "convert-scf-to-cf",
    "expand-strided-metadata",
    "lower-affine",
    "convert-math-to-llvm",
    "convert-math-to-libm",
    "convert-vector-to-llvm",
    "finalize-memref-to-llvm use-generic-functions",
    "convert-complex-to-llvm",
    "convert-arith-to-llvm",
    "convert-cf-to-llvm",
    "convert-openmp-to-llvm",
    "convert-func-to-llvm",
    "convert-index-to-llvm",
    "convert-ub-to-llvm",
    "reconcile-unrealized-casts",
))
#: bf16 ops computed in f32 (math ones too: LLVM has no bf16 math functions), each result
#: rounded to bf16 once, as PyTorch's eager ops do; left to LLVM, bf16 arithmetic chains may
#: skip the rounding in between. The rounding (fptrunc) calls `__truncsfbf2` on a CPU without a
#: bf16 conversion instruction, which cpu_support.c defines (gcc 12's libgcc does not); with
#: one (AVX512-BF16), LLVM uses it, and it flushes bf16 denormals to zero.
BF16_AS_F32 = nest("func.func",
                   upstream("math-extend-to-supported-types", extra_types="f16"),
                   upstream("arith-emulate-unsupported-floats", source_types="bf16",
                            target_type="f32"))
#: `ember_entry`'s status when the CPU lacks what the code was compiled for (the C runtime
#: reports "the model's code returned status 3").
CPU_MISMATCH = 3


def entry_stub(entry: str, num_args: int, cpu_check: str = "") -> str:
    """C source of `int32_t ember_entry(void **args, int64_t *fault)`, unpacking the argument
    array into the C-interface call and passing the fault record (`fault`, or its own when
    NULL) last, as ember-runtime-checks declared it; it returns ENTRY_FAULT when a check
    filled the record. `cpu_check`, when given, defines `static int ember_cpu_ok(void)`: the
    entry then returns CPU_MISMATCH instead of running code this CPU cannot execute."""
    params = ", ".join(["void *"] * (num_args + 1))
    args = ", ".join([f"args[{i}]" for i in range(num_args)] + ["&record"])
    check = f"  if (!ember_cpu_ok()) return {CPU_MISMATCH};\n" if cpu_check else ""
    words = capi.FAULT_WORDS
    return (
        "#include <stdint.h>\n"
        f"{cpu_check}"
        "typedef struct { int64_t *allocated, *aligned; int64_t offset, size, stride; } "
        "fault_memref;\n"
        f"extern void _mlir_ciface_{entry}({params});\n"
        "__attribute__((visibility(\"default\")))\n"
        "extern void ember_enter(void);\n"
        "int32_t ember_entry(void **args, int64_t *fault) {\n"
        f"{check}"
        f"  int64_t own[{words}];\n"
        "  int64_t *words = fault ? fault : own;\n"
        f"  for (int i = 0; i < {words}; ++i) words[i] = 0;\n"
        f"  fault_memref record = {{words, words, 0, {words}, 1}};\n"
        "  ember_enter();\n"
        f"  _mlir_ciface_{entry}({args});\n"
        f"  return words[{capi.FAULT_CLAIMED}] ? {capi.ENTRY_FAULT} : 0;\n"
        "}\n"
    )


def support_source_path() -> str:
    return str(resources.files(__package__).joinpath("cpu_support.c"))


def find_libomp(cc: str = "cc", globs: Sequence[str] = ()) -> Optional[str]:
    """Path of LLVM's OpenMP runtime as `cc` finds it, else the newest match of `globs`, or
    None. MLIR's OpenMP lowering calls its `__kmpc_*` entry points, which gcc's libgomp does
    not provide."""
    for name in ("libomp.so", "libomp.so.5"):
        try:
            out = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True,
                                 text=True).stdout.strip()
        except OSError:
            out = ""
        if os.path.isabs(out) and os.path.exists(out):
            return os.path.realpath(out)
    found = sorted(path for pattern in globs for path in glob.glob(pattern))
    return found[-1] if found else None


@dataclass(frozen=True)
class CpuOptions(TargetOptions):
    cpu: str = ""           # LLVM CPU name; "" means the target's default
    features: str = ""      # LLVM feature string; "" means the CPU's own
    opt_level: int = 3
    cc: str = "cc"          # the C compiler that links the library
    vector_bits: int = 0    # vector register width for code generation; 0: from the features
    l1d_kb: int = 0         # cache sizes per core (L3: shared) for GEMM blocking; 0: the
    l2_kb: int = 0          # target's default (`CpuTarget.default_traits`)
    l3_kb: int = 0
    cores: int = 0          # cores the parallel schedule plans for; 0: the target's default
    openmp: str = "auto"    # threads through libomp: "auto" (when found), "on", "off"


class CpuTarget(Target):
    """A CPU target. Subclasses set `kind` and, in `__init__`, `triple`, `cpu` and `features`
    (what LLVM is given), and override the hooks below where they differ."""
    Options = CpuOptions
    writes_back = True  # the C runtime compiled into the library does (ember_model_run)
    times_kernels = True
    #: Where else to look for libomp when `cc` does not find it.
    libomp_globs: Tuple[str, ...] = ()
    #: How to get a libomp, for the error when `openmp=on` finds none.
    libomp_hint: str = "install LLVM's OpenMP runtime"

    triple: str
    cpu: str
    features: str

    def __init__(self, options: CpuOptions):
        super().__init__(self.complete_options(options))

    # -- hooks ------------------------------------------------------------------------------
    def complete_options(self, options: CpuOptions) -> CpuOptions:
        """The options with the target's defaults filled in (e.g. a preset's)."""
        return options

    def default_traits(self) -> CpuTraits:
        """Caches and cores to plan for when the options do not give them."""
        return CpuTraits()

    def vector_features(self) -> str:
        """The feature string that decides the vector shape (`vector_shape_for`)."""
        return self.features

    def vector_bits(self) -> int:
        """Vector register width the code is generated for; 0: what the features imply."""
        return self.options.vector_bits

    def prepare_llvm_dialect(self, module) -> None:
        """Annotates the LLVM-dialect module before translation (nothing by default)."""

    def cpu_check(self) -> str:
        """C source defining `static int ember_cpu_ok(void)`, checked before every run (see
        `entry_stub`); "" when every CPU of the triple runs the code."""
        return ""

    def int8_activation_encoding(self) -> str:
        """The encoding of the dot product this CPU's int8 kernels use."""
        return int8_dot_for(self.info).encoding

    # -- shared -----------------------------------------------------------------------------
    @functools.cached_property
    def info(self) -> TargetInfo:
        """Vector shape, caches, cores and threads: what the passes plan for."""
        lanes, registers = vector_shape_for(self.vector_features(), self.triple)
        bits = self.vector_bits()
        if bits:
            lanes = bits // 32
        default = self.default_traits()
        kb = 1024
        options = self.options
        return TargetInfo(kind=self.kind, spec=self.spec, triple=self.triple, cpu=self.cpu,
                          features=self.features or self.vector_features(), vector_lanes=lanes,
                          vector_registers=registers,
                          l1d=options.l1d_kb * kb or default.l1d,
                          l2=options.l2_kb * kb or default.l2,
                          l3=options.l3_kb * kb or default.l3,
                          cores=options.cores or default.cores, openmp=self.openmp)

    @functools.cached_property
    def libomp(self) -> Optional[str]:
        return find_libomp(self.options.cc, self.libomp_globs)

    @property
    def openmp(self) -> bool:
        """Whether generated code runs parallel loops on OpenMP threads (linking libomp);
        without, the stage table keeps them serial."""
        mode = str(self.options.openmp).lower()
        if mode in ("off", "false", "0"):
            return False
        if mode in ("on", "true", "1") and self.libomp is None:
            raise ToolError(f"openmp=on but {self.options.cc} finds no libomp for "
                            f"{self.triple}: {self.libomp_hint}, or use openmp=off")
        return self.libomp is not None

    def describe(self) -> dict:
        return {"kind": self.kind, "triple": self.triple, "cpu": self.cpu}

    def prepare_process(self) -> None:
        """The facts, and the C runtime's objects (compiled once per `cc`, cached on disk), when
        `cc` exists (else the library stage reports it)."""
        super().prepare_process()
        if shutil.which(self.options.cc) is not None:
            c_runtime.runtime_objects(self.options.cc)

    def stages(self, graph: Pipeline) -> List[Stage]:
        openmp = self.info.openmp
        # ember-parallelize-loops splits linalg.generic ops (named ones generalized first).
        threads_split = [nest("func.func", upstream("linalg-generalize-named-ops")),
                         ParallelizeLoops()] if openmp else []
        threads = [upstream("convert-scf-to-openmp"), upstream("canonicalize"),
                   InlineAllocaScopes()] if openmp else []
        return [
            PassStage("graph", graph),
            PassStage("lower", Pipeline.of([
                ConvWinograd(), ConvToGemm(), FoldQuantizedOps(), QConvWinograd(), PackWeights(),
                LowerToLinalg(),
                CpuContractions(),
                upstream("canonicalize"), upstream("cse"), BindWeights(), LegalizeReshapes()])),
            PassStage("bufferize", Pipeline.of([
                KernelsWritePadding(), MarkKernelDestinations(), CopyRepeatedResults(),
                FillPadBorders(),
                *bufferize_passes(),
                PlanBuffers(), upstream("buffer-deallocation-pipeline")])),
            PassStage("kernels", Pipeline.of([
                RuntimeChecks(), CpuGemmKernels(), upstream("symbol-dce"),
                ReassociateReductions(), ExpandMath(),
                *threads_split, VectorizeGenerics()])),
            PassStage("loops", Pipeline.of([
                nest("func.func", upstream("scf-forall-to-parallel")),
                nest("func.func", upstream("convert-linalg-to-loops")),
                upstream("canonicalize"), upstream("cse"), upstream("loop-invariant-code-motion"),
                WidenBoolMemrefs(), *threads, TimeKernels()])),
            PassStage("llvm", Pipeline.of([MarkCInterface(), BF16_AS_F32, *TO_LLVM,
                                           MaskedHalfAsInt16()])),
            CodegenStage("llvm-ir", self._llvm_ir),
            CodegenStage("object", self._object),
            CodegenStage("library", self._library),
        ]

    def _llvm_ir(self, module, job: CompileJob) -> str:
        with module.context:
            self.prepare_llvm_dialect(module)
        return translate_to_llvm_ir(module)

    def _object(self, llvm_ir: str, job: CompileJob) -> bytes:
        return emit_object(llvm_ir, triple=self.triple, cpu=self.cpu, features=self.features,
                           opt_level=self.options.opt_level)

    def _library(self, obj: bytes, job: CompileJob) -> CodegenResult:
        if shutil.which(self.options.cc) is None:
            raise ToolError(f"the C compiler {self.options.cc!r} for {self.triple} was not "
                            f"found; install it or name another one with the cc option")
        obj_path = os.path.join(job.workdir, "model.o")
        stub_path = os.path.join(job.workdir, "entry.c")
        lib_path = os.path.join(job.workdir, "model.so")
        with open(obj_path, "wb") as f:
            f.write(obj)
        with open(stub_path, "w") as f:
            f.write(entry_stub(job.entry_name,
                               job.num_inputs + job.num_weights + job.num_outputs,
                               self.cpu_check()))
        run_tool([self.options.cc, "-shared", "-fPIC", "-O2", "-o", lib_path, obj_path,
                  stub_path, support_source_path(),
                  *c_runtime.cc_args(job.signature, job.workdir, cc=self.options.cc),
                  *self.link_flags(), "-lm"])
        return CodegenResult(files={"model.so": lib_path,
                                    **c_runtime.artifact_files(job.signature)},
                             code={"library": "model.so", "symbol": "ember_entry",
                                   **({"abi": capi.ABI} if job.signature is not None else {}),
                                   "threads_symbol": capi.THREADS_SYMBOL},
                             target=self.describe())

    def link_flags(self) -> List[str]:
        """Extra `cc` flags: libomp (with an rpath to its directory) when threads are on."""
        if not self.openmp:
            return []
        return ["-DEMBER_OPENMP", self.libomp, f"-Wl,-rpath,{os.path.dirname(self.libomp)}"]
