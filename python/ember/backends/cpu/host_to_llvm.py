"""ember-host-to-llvm: the host CPU pipeline from linalg-on-tensors down to the LLVM dialect.

A table of stages, run in order:
  bufferize     one-shot bufferization across function boundaries; results become caller-
                provided out-parameters (the runtime owns every output buffer) and GEMM kernel
                functions write their `out` argument in place (drop-equivalent-buffer-results)
  plan          ember-plan-buffers: the static intermediate buffers of each function share one
                arena, placed by live range; then buffer-deallocation-pipeline
  gemm-kernels  ember-cpu-gemm-kernels: vector micro-kernel bodies for the kernel functions
  parallel      ember-parallelize-loops (with `openmp`): big linalg ops and copies outside
                kernels become scf.forall loops over slices of their outer dims
  vectorize     ember-vectorize-generics: elementwise linalg ops become vector loads, stores
                and arithmetic along their contiguous last dim
  loops         scf.forall to scf.parallel, the remaining linalg ops to loops
  llvm          scf.parallel -> OpenMP (when `openmp`), then everything to the LLVM dialect with
                C-interface wrappers (`_mlir_ciface_<fn>`) on public functions
Expects ember.weight to be bound already. With `openmp`, the library must link libomp (the host
target does); the generated code uses OpenMP's default team size (`omp_set_num_threads`).
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.dialects import bufferization
from mlir.passmanager import PassManager

from ember.backends.cpu.microkernel import kernel_functions
from ember.kit.vector_math import expand_math

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.backends.cpu.gemm_kernels import CpuGemmKernels
from ember.backends.cpu.parallelize_loops import ParallelizeLoops
from ember.backends.cpu.plan_buffers import PlanBuffers
from ember.kit.patterns import walk_ops
from ember.backends.cpu.vectorize_generics import VectorizeGenerics
from ember.backends.cpu.widen_bool_memrefs import widen_bool_memrefs

#: Upstream passes, in order (verified on MLIR 22.1.8; see DESIGN.md section 3).
BUFFERIZE = (
    "one-shot-bufferize{bufferize-function-boundaries "
    "function-boundary-type-conversion=identity-layout-map}",
    "drop-equivalent-buffer-results",
    "buffer-results-to-out-params{hoist-static-allocs modify-public-functions}",
    # A parallel_insert_slice of a slice written in place bufferizes to a copy between two
    # identical subviews: CSE makes them one value and canonicalization drops the self-copy.
    "cse",
    "canonicalize",
)
#: After ember-plan-buffers (which places the static buffers in one arena per function).
DEALLOCATE = ("buffer-deallocation-pipeline",)
#: scf.forall (attention over its batch entries) -> scf.parallel, so OpenMP runs it.
TO_LOOPS = ("func.func(scf-forall-to-parallel)", "func.func(convert-linalg-to-loops)",
            "canonicalize", "cse", "loop-invariant-code-motion")
OPENMP = ("convert-scf-to-openmp", "canonicalize")
TO_LLVM = (
    "convert-bufferization-to-memref",
    "convert-vector-to-scf",
    "convert-scf-to-cf",
    "expand-strided-metadata",
    "lower-affine",
    "convert-vector-to-llvm",
    "finalize-memref-to-llvm{use-generic-functions}",  # cpu_support.c's caching allocator
    "convert-math-to-llvm",
    "convert-math-to-libm",
    "convert-arith-to-llvm",
    "convert-cf-to-llvm",
    "convert-openmp-to-llvm",
    "convert-func-to-llvm",
    "convert-index-to-llvm",
    "convert-ub-to-llvm",
    "reconcile-unrealized-casts",
)


def mark_c_interface(module) -> None:
    """Asks func-to-llvm for `_mlir_ciface_` wrappers on every public function."""
    for fn in walk_ops(module.operation, ["func.func"]):
        visibility = fn.attributes["sym_visibility"] if "sym_visibility" in fn.attributes else None
        if fn.regions[0].blocks and (visibility is None or
                                     ir.StringAttr(visibility).value == "public"):
            fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()


def mark_kernel_destinations(module) -> None:
    """Inputs of GEMM kernel functions are read-only and their last argument, the destination,
    is writable, whatever an earlier pass marked: that is what lets bufferization write the
    caller's buffer in place."""
    for fn in kernel_functions(module):
        count = len(fn.regions[0].blocks[0].arguments)
        attrs = [ir.DictAttr.get({"bufferization.writable": ir.BoolAttr.get(i == count - 1)})
                 for i in range(count)]
        fn.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)


#: Float ops whose reassociation (and contraction into FMA) is allowed in reduction bodies.
REASSOCIABLE = ("arith.addf", "arith.mulf", "arith.subf", "arith.maximumf", "arith.minimumf")


def allow_reassociation_in_reductions(module) -> None:
    """Marks the float arithmetic inside reducing linalg ops `fastmath<reassoc, contract>`, so
    that LLVM vectorizes the reduction loops (a strict left-to-right f32 sum runs one add per
    FMA latency, ~4 cycles per element). The sum is then taken in vector-lane partial sums,
    as every BLAS and PyTorch do; the result differs from the strict order by rounding only."""
    flags = ir.Attribute.parse("#arith.fastmath<reassoc,contract>")
    for op in walk_ops(module.operation, ["linalg.generic"]):
        iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
        if not any("reduction" in it for it in iterators):
            continue
        for inner in walk_ops(op, REASSOCIABLE):
            inner.attributes["fastmath"] = flags


def copy_repeated_results(module) -> None:
    """Gives a tensor returned more than once by a function its own copy for each extra return.

    MLIR 22's buffer-results-to-out-params{hoist-static-allocs} crashes (segfault) when one
    allocation is returned twice (`return %y, %y`, e.g. after CSE of identical outputs)."""
    for ret in walk_ops(module.operation, ["func.return"]):
        seen = []
        for i, value in enumerate(list(ret.operands)):
            if not isinstance(value.type, ir.RankedTensorType):
                continue
            if any(value == other for other in seen):
                with ir.InsertionPoint(ret), ret.location:
                    ret.operands[i] = bufferization.AllocTensorOp(value.type, [],
                                                                  copy=value).result
            else:
                seen.append(value)


def inline_alloca_free_scopes(module) -> None:
    """Dissolves each memref.alloca_scope whose region holds no memref.alloca of its own.

    convert-scf-to-openmp wraps a parallel loop body in an alloca_scope whenever it cannot rule
    out allocations (a call, e.g. of a GEMM kernel, is enough), and the scope may hold only one
    block, so lowering the scf loops beside the call to control flow then fails to verify. A
    callee's allocas live in its own frame; only allocas in the region itself need the scope."""
    for scope in walk_ops(module.operation, ["memref.alloca_scope"]):
        if walk_ops(scope, ["memref.alloca"]) or list(scope.results):
            continue
        ops = list(scope.regions[0].blocks[0].operations)
        for op in ops[:-1]:                  # all but the alloca_scope.return terminator
            op.move_before(scope)
        scope.erase()


def _run(module, passes) -> None:
    PassManager.parse(f"builtin.module({','.join(passes)})").run(module.operation)


@register
@dataclass
class HostToLLVM(EmberPass):
    """Lowers bound linalg-on-tensors code to the LLVM dialect for the host CPU."""
    name = "ember-host-to-llvm"
    #: Generate vector micro-kernels for GEMM kernel functions (false: their linalg reference).
    gemm_kernels: bool = True
    #: Run parallel loops on OpenMP threads (false: serial code, no libomp needed).
    openmp: bool = True
    #: Options of the gemm-kernels stage, `key=value` joined by commas (e.g. `kc=64,mr=6`).
    gemm: str = ""
    #: With `openmp`, split the big linalg ops and copies outside GEMM kernels over the threads
    #: (ember-parallelize-loops; false: they run on one thread).
    parallel_loops: bool = True
    #: Vectorize elementwise linalg ops outside GEMM kernels in MLIR
    #: (ember-vectorize-generics; false: scalar loops left to LLVM's loop vectorizer).
    vectorize: bool = True
    #: Place each function's static intermediate buffers in one arena by live range
    #: (ember-plan-buffers; false: one allocation per buffer).
    plan_buffers: bool = True

    def run(self, module, ctx: PassContext) -> None:
        openmp = self.openmp and getattr(ctx.target, "openmp", True)
        mark_c_interface(module)
        mark_kernel_destinations(module)
        copy_repeated_results(module)
        _run(module, BUFFERIZE)
        if self.plan_buffers:
            PlanBuffers().run(module, ctx)
        _run(module, DEALLOCATE)
        if self.gemm_kernels:
            options = dict(item.partition("=")[::2] for item in self.gemm.split(",") if item)
            kernels = CpuGemmKernels.from_options(options)
            kernels.parallel = kernels.parallel and openmp
            kernels.run(module, ctx)
        allow_reassociation_in_reductions(module)
        # exp/tanh left in linalg bodies (softmax, LayerNorm-free activations) as polynomials
        # too, so that their loops vectorize instead of calling libm once per element.
        expand_math(module.operation)
        if openmp and self.parallel_loops:
            ParallelizeLoops().run(module, ctx)
        if self.vectorize:
            VectorizeGenerics().run(module, ctx)
        _run(module, TO_LOOPS)
        widen_bool_memrefs(module)  # MLIR 22 cannot lower i1 memrefs to LLVM
        if openmp:
            _run(module, OPENMP)
            inline_alloca_free_scopes(module)
        _run(module, TO_LLVM)
