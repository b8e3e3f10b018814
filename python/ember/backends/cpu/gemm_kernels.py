"""ember-cpu-gemm-kernels: generates fast CPU code for the GEMM kernel functions.

ember-lower-to-linalg turns each panel-packed `ember.gemm` into a call of a private function
carrying an `ember.gemm_kernel` spec, with a linalg reference body. After bufferization that
function writes its `out` memref in place; this pass replaces its body with cache-blocked,
register-blocked vector code (see ember.backends.cpu.gemm_threads and .microkernel):
`scf.parallel` over tasks (OpenMP threads after convert-scf-to-openmp), K blocks, panels,
MR-row tiles whose accumulators are `vector<lanes x f32>` iter_args updated by `vector.fma`,
masked edges, and the epilogue (bias, activation, residual) applied to the accumulators before
the only store. Transcendentals in the
epilogue become polynomials (`ember.kit.vector_math`), so they stay vectorized.

Runs on memrefs: kernel functions still on tensors are left alone (not bufferized yet); a
bufferized one that still returns a value (not written in place) or whose arguments do not
match its spec is an error. Options left at 0 come from the target's CPU traits.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mlir import ir

from ember.kit.gemm_kernel_spec import KERNEL_ATTR, GemmKernelSpec, \
    check_kernel_signature, is_bufferized
from ember.backends.cpu.gemm_schedule import choose_schedule
from ember.backends.cpu.gemm_threads import emit_kernel
from ember.backends.cpu.amx_tiles import has_amx_bf16, has_amx_int8, max_rows, packs_patches
from ember.backends.cpu.mmla_tiles import has_i8mm
from ember.backends.cpu.bf16_dot import bf16_dot_for
from ember.backends.cpu.f16_fml import f16_fml_for
from ember.backends.cpu.int8_dot import int16_dot_for, int8_dot_for
from ember.backends.cpu.microkernel import CpuTraits, is_half
from ember.kit.gemm_kernel_spec import kernel_functions
from ember.kit.vector_math import expand_math

from ember.pipeline.pass_base import EmberPass, PassContext, register

#: Attribute recording the schedule a kernel was generated with.
SCHEDULE_ATTR = "ember.gemm_schedule"


@register
@dataclass
class CpuGemmKernels(EmberPass):
    """Replaces GEMM kernel function bodies (memrefs) with blocked vector micro-kernel code."""
    name = "ember-cpu-gemm-kernels"
    #: f32 lanes per vector (AVX-512: 16, AVX2: 8, NEON: 4); 0: the target's.
    lanes: int = 0
    #: Rows of the register tile; 0: as many as the vector registers allow.
    mr: int = 0
    #: K block (panel rows kept in L1); 0: from the L1 size.
    kc: int = 0
    #: Rows per parallel task (A block kept in L2); 0: from the L2 size.
    mc: int = 0
    #: Split M between threads when each gets at least this many rows (else split N); 0: 64.
    split_rows: int = 0
    #: k steps per inner-loop iteration; 0: gemm_schedule's choice for the kernel.
    unroll: int = 0
    #: Independent accumulators a register tile should have (small tiles use several sets).
    chains: int = 8
    #: One task per OpenMP thread through scf.parallel (false: serial code; serial anyway
    #: when the target runs without OpenMP).
    parallel: bool = True
    #: Copy A's blocks into MR-row micro-panels before the micro-kernel reads them: "auto" in
    #: GEMMs wide enough for it to pay (gemm_schedule.PACK_A_MIN_PANELS), "true" always, "false"
    #: never (f32 kernels: int8 kernels pack exactly when their tiles need it).
    pack_a: str = "auto"
    #: int8 kernels on the AMX tile registers where the target has AMX-INT8 (false: its
    #: vector dot product); likewise bf16 pair kernels on AMX-BF16 (false: vdpbf16ps).
    amx: bool = True
    #: int8 kernels on smmla where an AArch64 target has +i8mm (false: sdot).
    mmla: bool = True

    def run(self, module, ctx: PassContext) -> None:
        if self.pack_a not in ("auto", "true", "false"):
            raise ValueError(f"ember-cpu-gemm-kernels: pack-a must be auto, true or false, "
                             f"got {self.pack_a!r}")
        target = ctx.require_target(self.name)
        traits = CpuTraits.from_target(target)
        for fn in kernel_functions(module):
            if SCHEDULE_ATTR in fn.attributes or not is_bufferized(fn):
                continue                     # generated already, or not bufferized yet
            spec = GemmKernelSpec.from_attr(fn.attributes[KERNEL_ATTR])
            problem = check_kernel_signature(fn, spec)
            if problem:
                name = ir.StringAttr(fn.attributes["sym_name"]).value
                raise ValueError(f"{fn.location}: kernel @{name}: {problem}")
            try:
                dot = int8_dot_for(target, spec.int8) if spec.int8 else \
                    int16_dot_for(target) if spec.integer else \
                    bf16_dot_for(target) if spec.pairs else None
            except ValueError as e:
                raise ValueError(f"{fn.location}: an int8 kernel packed for {spec.int8} "
                                 f"activations: {e}; pack with the same target") from None
            amx = self.amx and spec.nr % 16 == 0 and not spec.batch and (
                (bool(spec.int8) and has_amx_int8(target)) or
                (spec.pairs and not spec.integer and has_amx_bf16(target)))
            if spec.pairs and not amx and dot is None:
                raise ValueError(f"{fn.location}: a kernel of bf16 pairs needs AMX-BF16, "
                                 "AVX512_BF16 or AArch64 BF16 (pack with the same target)")
            mmla = self.mmla and spec.int8 == "s8" and has_i8mm(target) and \
                dot.lanes == 4 and spec.nr % 4 == 0 and not spec.batch
            lanes = 16 if amx else dot.lanes if dot else self.lanes
            # A 16-bit C cannot hold partial sums between K blocks (each would be rounded),
            # nor can codes: such kernels take all of K in one block, as int8 ones.
            half = is_half(ir.MemRefType(fn.arguments[-1].type).element_type)
            schedule = choose_schedule(spec, traits, lanes=lanes,
                                       mr=max_rows(spec.nr) if amx else self.mr,
                                       kc=spec.k if half or spec.out_scale else self.kc,
                                       mc=self.mc,
                                       split_rows=self.split_rows, unroll=self.unroll,
                                       chains=self.chains,
                                       temporaries=(dot.temporaries if dot else 0) +
                                       (spec.nr // 4 if mmla else 0))   # zipped B operands
            if amx:        # AMX A tiles load rows in place, but patches they cannot read so
                pack_a = packs_patches(spec)
            elif spec.int8 or spec.integer:
                # the vector int8 and int16 kernels read A a word at a time, in place (the
                # int8 Winograd CNN's i16 tiles packed: 1.035x slower end to end on AVX2)
                pack_a = False
            elif half:         # widened to f32 once, as it is packed (not per broadcast)
                pack_a = self.pack_a != "false"
            else:
                pack_a = {"auto": schedule.pack_a, "true": True, "false": False}[self.pack_a]
            schedule = dataclasses.replace(schedule, parallel=schedule.parallel and self.parallel
                                           and target.openmp,
                                           pack_a=pack_a)
            if mmla and schedule.mr % 2:       # smmla computes row pairs
                schedule = dataclasses.replace(schedule, mr=max(2, schedule.mr - 1))
            # f16 weights times f16 rows (a half model's Linear layers), where the target
            # multiplies f16 into f32 lanes
            half_fml = f16_fml_for(target) if spec.rhs_packed and not spec.weights and \
                isinstance(ir.MemRefType(fn.arguments[0].type).element_type, ir.F16Type) and \
                schedule.lanes == 4 else None
            task = emit_kernel(fn, spec, schedule, dot,
                               tiles="amx" if amx else "mmla" if mmla else "vector",
                               half_fml=half_fml)
            fn.attributes[SCHEDULE_ATTR] = schedule.attr()
            expand_math(task)
