"""The passes that turn bound linalg-on-tensors code into GPU kernels in one gpu.module.

Run in this order by the GPU targets' `kernels` stage (backends/gpu/lowering.py), on static
shapes, with upstream passes between them:
  ember-gpu-unroll-foralls    scf.forall (attention's loop over batch entries) unrolled into
                              straight-line code, so every op below is a top-level op of the
                              host function (canonicalize folds the single-iteration copies)
  (bufferization: results become out-parameters; no deallocation, the launch plan places memory)
  ember-gpu-launch-gemms      each call of a GEMM kernel function (ember-gpu-outline-gemms)
                              becomes a gpu.launch: on targets with tensor cores, f16/bf16 GEMMs
                              whose K and N are multiples of 8, and the int8 and low-bit GEMMs
                              outlined for them, get the mma.sync kernel
                              (ember.backends.gpu.mma_gemm); every other GEMM the shared-memory
                              tiled SIMT kernel (ember.backends.gpu.simt_gemm), accumulating in f32
  ember-gpu-copies-to-linalg  memref.copy -> linalg.copy (then linalg-generalize-named-ops)
  ember-gpu-launch-rows       each run of ops around a reduction over the innermost dims
                              (LayerNorm, softmax, a contraction whose reduced dim is innermost)
                              becomes one row kernel, a warp (or a block, for long rows) per row
                              with a shuffle butterfly (ember.backends.gpu.rows)
  ember-gpu-launch-loops      (after convert-linalg-to-parallel-loops) every scf.parallel -> a
                              gpu.launch of `threads`-thread blocks over its iteration space,
                              linearized (one thread per point, tail guarded)
  ember-gpu-name-kernels      each launch's kernel named after what it computes and its position
                              (`gemm_0`, `layer_norm_3`, `elementwise_7`), in `@kernels`
  (gpu-launch-sink-index-computations, gpu-kernel-outlining into `gpu.module @kernels`)
  ember-gpu-finish-kernels    workgroup buffers 16-byte aligned, f32 exp/tanh expanded into
                              polynomials (no device math library needed), identical kernels
                              (same body and signature) kept once, so repeated layers launch one
                              kernel several times
What is left in the host function is allocations, views of buffers, constants and
gpu.launch_func ops: the targets' `plan` stage turns that into the launch plan.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, gpu, linalg, scf

from ember.kit.builders import GemmOperands, index
from ember.backends.gpu.simt_gemm import GEMM_ATTR, GemmTile, GpuGemmSpec, GpuMapping, emit_gemm
from ember.backends.gpu.mma_gemm import choose_mma_tile, emit_mma_gemm, format_of, \
    why_not_mma
from ember.backends.gpu.rows import emit_row_group, find_row_groups
from ember.kit.vector_math import expand_math

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import walk_ops

#: Name of the one gpu.module holding every kernel.
KERNEL_MODULE = "kernels"
#: Alignment of workgroup (shared) buffers in bytes: cp.async and ldmatrix (mma_gemm.py) need
#: 16-byte aligned shared addresses.
SHARED_ALIGNMENT = 16
#: Attribute on a gpu.launch until outlining: what its kernel computes (the name's stem).
KIND_ATTR = "ember.kernel"


def _int(value) -> int:
    """The integer of a value defined by arith.constant."""
    owner = value.owner
    if not (isinstance(owner, ir.OpView) and owner.operation.name == "arith.constant"):
        raise ValueError(f"expected a constant loop bound, got {value}; GPU targets need "
                         f"static shapes")
    return ir.IntegerAttr(owner.attributes["value"]).value


# ----------------------------------------------------------------------------- unroll
def unroll_foralls(module) -> None:
    """Replaces each scf.forall by one single-iteration copy per point, which canonicalize
    folds into straight-line code (constant bounds only)."""
    for op in walk_ops(module.operation, ["scf.forall"]):
        lbs = list(ir.DenseI64ArrayAttr(op.attributes["staticLowerBound"]))
        ubs = list(ir.DenseI64ArrayAttr(op.attributes["staticUpperBound"]))
        steps = list(ir.DenseI64ArrayAttr(op.attributes["staticStep"]))
        if len(list(op.operands)) != len(list(op.results)) or len(lbs) != 1:
            raise ValueError(f"{op.location}: only 1-D scf.forall with static bounds can be "
                             f"unrolled for GPU targets")
        result = None
        for point in range(lbs[0], ubs[0], steps[0]):
            with ir.InsertionPoint(op):
                copy = op.clone()
            if result is not None:
                copy.operands[0] = result
            copy.attributes["staticLowerBound"] = ir.DenseI64ArrayAttr.get([point])
            copy.attributes["staticUpperBound"] = ir.DenseI64ArrayAttr.get([point + 1])
            result = copy.results[0]
        op.results[0].replace_all_uses_with(result)
        op.erase()


# ----------------------------------------------------------------------------- gemms
def launch_gemms(module, tile: GemmTile, tensor_cores: bool) -> None:
    """Replaces each GEMM kernel call by its launch (the tensor-core kernel where
    `tensor_cores` and the GEMM suits it, else the SIMT kernel with `tile`); erases the kernel
    functions."""
    kernels = {ir.StringAttr(op.attributes["sym_name"]).value: op
               for op in module.body.operations if GEMM_ATTR in op.attributes}
    for call in walk_ops(module.operation, ["func.call"]):
        callee = ir.FlatSymbolRefAttr(call.attributes["callee"]).value
        if callee not in kernels:
            continue
        spec = GpuGemmSpec.from_attr(kernels[callee].attributes[GEMM_ATTR])
        ops = GemmOperands.from_args(spec, list(call.operands))
        why_not = why_not_mma(spec, ops) if tensor_cores else "the target has no tensor cores"
        if why_not and (spec.int8 or spec.low_bit):
            raise ValueError(f"{call.location}: an int8 or low-bit GEMM kernel needs the "
                             f"tensor-core kernel, but {why_not}")
        with ir.InsertionPoint(call), call.location:
            if why_not is None:
                launch, kind = emit_mma_gemm(spec, ops, choose_mma_tile(
                    spec, format_of(spec, ops))), "gemm_mma"
            else:
                launch, kind = emit_gemm(spec, ops, tile, GpuMapping(tile.threads)), "gemm"
        launch.attributes[KIND_ATTR] = ir.StringAttr.get(kind)
        call.erase()
    for fn in kernels.values():
        fn.erase()


# ----------------------------------------------------------------------------- rows
def copies_to_linalg(module) -> None:
    """memref.copy (an output that is a copy of an input, a materialized view) -> linalg.copy,
    so it becomes a kernel like any other op."""
    for op in walk_ops(module.operation, ["memref.copy"]):
        with ir.InsertionPoint(op), op.location:
            linalg.copy(op.operands[0], outs=[op.operands[1]])
        op.erase()


def launch_row_groups(module, threads: int, warp: int) -> None:
    """Each row group (ember.backends.gpu.rows) of the host functions -> one row kernel,
    launched where the group's last op was."""
    for fn in walk_ops(module.operation, ["func.func"]):
        for group in find_row_groups(fn.regions[0].blocks[0]):
            last = group.ops[-1].op
            with ir.InsertionPoint(last), last.location:
                launch = emit_row_group(group, threads, warp)
            launch.attributes[KIND_ATTR] = ir.StringAttr.get(group.name)
            for row_op in group.ops:
                row_op.op.erase()


# ----------------------------------------------------------------------------- loops
#: Ops of a loop body that move data or compute indices, not values.
_MOVES = frozenset({"memref.load", "memref.store", "scf.reduce", "arith.constant",
                    "arith.index_cast", "affine.apply"})


def loop_kind(loop) -> str:
    """What an scf.parallel body computes, for its kernel's name: reduce (an inner loop),
    fill (stores only), copy (loads and stores at the same indices), relayout (transposes,
    broadcasts), elementwise."""
    ops = walk_ops(loop.operation)
    names = {op.name for op in ops}
    if "scf.for" in names:
        return "reduce"
    if names - _MOVES - {"scf.parallel"}:
        return "elementwise"
    loads = [op for op in ops if op.name == "memref.load"]
    if not loads:
        return "fill"
    stores = [op for op in ops if op.name == "memref.store"]
    same = all(list(load.operands)[1:] == list(stores[0].operands)[2:] for load in loads)
    return "copy" if same else "relayout"


def launch_parallel_loop(loop, threads: int) -> None:
    """An scf.parallel (constant bounds) -> gpu.launch with one thread per iteration."""
    body = loop.regions[0].blocks[0]
    n = len(body.arguments)
    operands = list(loop.operands)
    lbs, ubs, steps = ([_int(v) for v in operands[i * n:(i + 1) * n]] for i in range(3))
    sizes = [-(-(ub - lb) // step) for lb, ub, step in zip(lbs, ubs, steps)]
    total = math.prod(sizes)
    block = min(threads, total)
    with ir.InsertionPoint(loop), loop.location:
        one = index(1)
        launch = gpu.LaunchOp((index(-(-total // block)), one, one), (index(block), one, one))
        launch.attributes[KIND_ATTR] = ir.StringAttr.get(loop_kind(loop))
        launch_body = launch.regions[0].blocks[0]
        with ir.InsertionPoint(launch_body):
            linear = arith.addi(arith.muli(launch_body.arguments[0], index(block)),
                                launch_body.arguments[3])
            end = gpu.TerminatorOp()
            anchor = end
            if total % block:
                with ir.InsertionPoint(end):
                    guard = scf.IfOp(arith.cmpi(arith.CmpIPredicate.ult, linear, index(total)))
                with ir.InsertionPoint(guard.then_block):
                    anchor = scf.YieldOp([])
            with ir.InsertionPoint(anchor):
                stride = total
                for arg, lb, step, size in zip(body.arguments, lbs, steps, sizes):
                    stride //= size
                    pos = arith.remui(arith.divui(linear, index(stride)), index(size))
                    arg.replace_all_uses_with(
                        arith.addi(index(lb), arith.muli(pos, index(step))))
    for op in list(body.operations)[:-1]:                 # all but scf.reduce
        op.move_before(anchor)
    loop.erase()


def launch_loops(module, threads: int) -> None:
    for fn in walk_ops(module.operation, ["func.func"]):
        for op in list(fn.regions[0].blocks[0].operations):
            if op.operation.name == "scf.parallel":
                launch_parallel_loop(op, threads)


# ----------------------------------------------------------------------------- outline
def name_launches(module) -> None:
    """Names each gpu.launch's kernel `<kind>_<position>` (unique), in @kernels."""
    for i, launch in enumerate(walk_ops(module.operation, ["gpu.launch"])):
        kind = ir.StringAttr(launch.attributes[KIND_ATTR]).value
        del launch.attributes[KIND_ATTR]
        launch.attributes["function"] = ir.FlatSymbolRefAttr.get(f"{kind}_{i}")
        launch.attributes["module"] = ir.FlatSymbolRefAttr.get(KERNEL_MODULE)


def merge_identical_kernels(module, kernels) -> None:
    """Keeps one kernel of each body and signature (repeated layers differ only in the
    buffers passed), then renumbers the kernels by position, keeping their kind."""
    survivor, first = {}, {}
    for fn in list(kernels.regions[0].blocks[0].operations):
        name = ir.StringAttr(fn.attributes["sym_name"]).value
        fn.attributes["sym_name"] = ir.StringAttr.get("kernel")
        key = fn.operation.get_asm(use_local_scope=True)
        fn.attributes["sym_name"] = ir.StringAttr.get(name)
        survivor[name] = first.setdefault(key, name)
        if survivor[name] != name:
            fn.erase()
    numbered = {}
    for i, fn in enumerate(kernels.regions[0].blocks[0].operations):
        name = ir.StringAttr(fn.attributes["sym_name"]).value
        numbered[name] = f"{name.rsplit('_', 1)[0]}_{i}"
        fn.attributes["sym_name"] = ir.StringAttr.get(numbered[name])
    for launch in walk_ops(module.operation, ["gpu.launch_func"]):
        name = ir.SymbolRefAttr(launch.attributes["kernel"]).value[-1]
        launch.attributes["kernel"] = ir.SymbolRefAttr.get(
            [KERNEL_MODULE, numbered[survivor[name]]])


def finish_kernels(module) -> None:
    """The outlined gpu.module's cleanups (see the module docstring)."""
    modules = [op for op in module.body.operations if op.operation.name == "gpu.module"]
    if not modules:
        return
    kernels, = modules
    align_workgroup_buffers(kernels)
    expand_math(kernels)
    merge_identical_kernels(module, kernels)


def align_workgroup_buffers(kernels) -> None:
    """Gives every workgroup buffer of the kernels SHARED_ALIGNMENT (by default they are
    aligned to their element only)."""
    align = ir.DictAttr.get({"llvm.align": ir.IntegerAttr.get(
        ir.IntegerType.get_signless(64), SHARED_ALIGNMENT)})
    for fn in kernels.regions[0].blocks[0].operations:
        if "workgroup_attributions" in fn.attributes:
            count = ir.IntegerAttr(fn.attributes["workgroup_attributions"]).value
            fn.attributes["workgroup_attrib_attrs"] = ir.ArrayAttr.get([align] * count)


@register
@dataclass
class UnrollForalls(EmberPass):
    """Unrolls each 1-D scf.forall with constant bounds into single-iteration copies."""
    name = "ember-gpu-unroll-foralls"

    def run(self, module, ctx: PassContext) -> None:
        unroll_foralls(module)


@register
@dataclass
class LaunchGemms(EmberPass):
    """Replaces GEMM kernel calls by launches of the tensor-core or SIMT GEMM kernel."""
    name = "ember-gpu-launch-gemms"
    #: SIMT GEMM block tile (rows x columns), K step and per-thread register tile.
    bm: int = 64
    bn: int = 64
    bk: int = 16
    tm: int = 4
    tn: int = 4

    def run(self, module, ctx: PassContext) -> None:
        launch_gemms(module, GemmTile(self.bm, self.bn, self.bk, self.tm, self.tn),
                     ctx.require_target(self.name).tensor_cores)


@register
@dataclass
class CopiesToLinalg(EmberPass):
    """Turns memref.copy into linalg.copy, so that a copy becomes a kernel like any other op."""
    name = "ember-gpu-copies-to-linalg"

    def run(self, module, ctx: PassContext) -> None:
        copies_to_linalg(module)


@register
@dataclass
class LaunchRows(EmberPass):
    """Launches each row group (a reduction over the innermost dims and its neighbours) as one
    row kernel, a warp of the target's width per row."""
    name = "ember-gpu-launch-rows"
    #: Threads per block of the row kernels.
    threads: int = 256

    def run(self, module, ctx: PassContext) -> None:
        launch_row_groups(module, self.threads, ctx.require_target(self.name).warp_size)


@register
@dataclass
class LaunchLoops(EmberPass):
    """Launches each scf.parallel loop (constant bounds) with one thread per iteration."""
    name = "ember-gpu-launch-loops"
    #: Threads per block of the elementwise and reduction kernels.
    threads: int = 256

    def run(self, module, ctx: PassContext) -> None:
        launch_loops(module, self.threads)


@register
@dataclass
class NameKernels(EmberPass):
    """Names each gpu.launch's kernel after what it computes and its position, in @kernels."""
    name = "ember-gpu-name-kernels"

    def run(self, module, ctx: PassContext) -> None:
        name_launches(module)


@register
@dataclass
class FinishKernels(EmberPass):
    """Aligns workgroup buffers, expands f32 exp/tanh, keeps one copy of identical kernels."""
    name = "ember-gpu-finish-kernels"

    def run(self, module, ctx: PassContext) -> None:
        finish_kernels(module)
