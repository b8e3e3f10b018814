"""The CPU GEMM kernel function's body: its work split between OpenMP threads.

    kernel:  T = omp_get_max_threads(); split rows T ways (M >= T * split_rows) or panels
             scf.parallel over the T parts (-> OpenMP), each part a call of the task function
             (batched kernels: one task per batch entry, the entries in parallel)
    task:    rows [m0, m1) x panels [p0, p1): the micro-kernel (ember.backends.cpu.microkernel)

A kernel called inside a parallel region (a block of a parallel loop) runs its tasks on the
calling thread instead, since libomp would serialize the nested region anyway.
"""
from __future__ import annotations

import math

from mlir import ir
from mlir.dialects import arith, func, memref, scf

from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.backends.cpu.amx_tiles import AmxTaskEmitter
from ember.backends.cpu.microkernel import GemmSchedule, TaskEmitter
from ember.backends.cpu.mmla_tiles import MmlaTaskEmitter
from ember.kit.builders import GemmOperands, for_, if_, index
from ember.kit.private_functions import declare_external

#: OpenMP's team size for the next parallel region (libomp), read by parallel kernels.
THREADS_FN = "omp_get_max_threads"
#: Nonzero inside a parallel region: a kernel called there (a block of a parallel loop) runs
#: on its caller's thread without forking, since a nested region would be serialized anyway.
IN_PARALLEL_FN = "omp_in_parallel"


def emit_kernel(fn, spec: GemmKernelSpec, schedule: GemmSchedule, dot=None, tiles="vector",
                half_fml=None):
    """Replaces the body of kernel function `fn` (memref arguments) by the schedule's code:
    one task per thread, each calling a new private task function (`<fn>_task`, placed after
    `fn`), which it returns. `dot`: an int8 kernel's dot product (ember.backends.cpu.int8_dot);
    `tiles`: where an int8 kernel's tiles are computed: "vector" (the dot product), "amx"
    (the AMX tile registers, ember.backends.cpu.amx_tiles) or "mmla" (AArch64 smmla,
    ember.backends.cpu.mmla_tiles); `half_fml`: an f16 kernel's widening multiply-add
    (ember.backends.cpu.f16_fml), which takes the f16 operands as they are."""
    block = fn.regions[0].blocks[0]
    args = list(block.arguments)
    for op in reversed(list(block.operations)):
        op.erase()
    element = ir.IntegerType.get_signless(32) if spec.int8 or spec.pairs else \
        ir.MemRefType(args[0].type).element_type
    module_block = fn.operation.parent.regions[0].blocks[0]
    taken = {ir.StringAttr(op.attributes["sym_name"]).value for op in module_block.operations
             if "sym_name" in op.attributes}
    name = ir.StringAttr(fn.attributes["sym_name"]).value + "_task"
    while name in taken:
        name += "_"
    with ir.InsertionPoint(block), fn.location:
        _emit_parts(spec, schedule, GemmOperands.from_args(spec, args), args, name)
        func.ReturnOp([])
    with ir.InsertionPoint.after(fn), fn.location:
        indices = 5 if spec.batch else 4        # (batch entry,) rows and panels
        task = func.FuncOp(name, ([ir.IndexType.get()] * indices + [a.type for a in args], []),
                           visibility="private")
        entry = task.add_entry_block()
        with ir.InsertionPoint(entry):
            *batch, m0, m1, p0, p1 = entry.arguments[:indices]
            if tiles == "amx":
                emitter = AmxTaskEmitter(spec, schedule, element, dot, module_block, name)
            elif tiles == "mmla":
                emitter = MmlaTaskEmitter(spec, schedule, element, dot)
            else:
                emitter = TaskEmitter(spec, schedule, element, dot, half_fml)
            emitter.emit_task(
                GemmOperands.from_args(spec, entry.arguments[indices:]), m0, m1, p0, p1, *batch)
            func.ReturnOp([])
        if schedule.parallel:
            for name in (THREADS_FN, IN_PARALLEL_FN):
                declare_external(module_block, name, ir.FunctionType.get(
                    [], [ir.IntegerType.get_signless(32)]))
    return task


def _emit_parts(spec: GemmKernelSpec, schedule: GemmSchedule, ops: GemmOperands, operands,
                task_fn: str) -> None:
    """The kernel body: one task per thread, each a call of the task function.

    With T threads (OpenMP's team size, read at run time) the rows are split T ways when
    every thread gets at least `split_rows` of them (each thread then streams all of B
    once per MC block), else the panels are (each thread packs the same A but reads only
    its share of B, which is what dominates for small M)."""
    if spec.m is not None:
        m = index(spec.m)
    elif spec.patches is None:
        m = memref.dim(ops.a, index(1 if spec.batch else 0))
    else:
        m = arith.muli(memref.dim(ops.a, index(0)), index(math.prod(spec.patch_output)))
    if spec.batch:
        _emit_batched(spec, schedule, ops, task_fn, m, operands)
        return
    whole = [index(0), m, index(0), index(spec.panels)] + operands

    def on_this_thread():
        func.call([], task_fn, whole)
    _serial_or_parallel(schedule, on_this_thread,
                        lambda: _emit_split(spec, schedule, task_fn, m, operands))


def _serial_or_parallel(schedule: GemmSchedule, serial, parallel) -> None:
    """Emits `parallel()` (OpenMP tasks) for a parallel schedule, guarded so that a call
    made inside a parallel region (a block of a parallel loop) runs `serial()` on its
    caller's thread instead: libomp would serialize the nested region anyway, after a
    costly fork."""
    if not schedule.parallel:
        serial()
    else:
        if_(_in_parallel(), (), serial, parallel)


def _emit_split(spec: GemmKernelSpec, s: GemmSchedule, task_fn: str, m, operands) -> None:
    """Tasks over the OpenMP team: rows split T ways when each gets `split_rows`, else
    panels."""
    threads = arith.index_cast(ir.IndexType.get(), func.call(
        [ir.IntegerType.get_signless(32)], THREADS_FN, []))
    threads = arith.maxsi(threads, index(1))
    split_m = arith.cmpi(arith.CmpIPredicate.sge, m,
                         arith.muli(threads, index(s.split_rows)))
    m_parts = arith.select(split_m, threads, index(1))
    n_parts = arith.minsi(arith.select(split_m, index(1), threads), index(spec.panels))
    tiles = arith.ceildivsi(m, index(s.mr))
    one = index(1)
    loop = scf.ParallelOp([], [index(0), index(0)], [m_parts, n_parts], [one, one], [])
    body = loop.regions[0].blocks.append(ir.IndexType.get(), ir.IndexType.get())
    with ir.InsertionPoint(body):
        mp, np_ = body.arguments

        def share(part, total, parts):
            return arith.divsi(arith.muli(part, total), parts)
        m0 = arith.muli(share(mp, tiles, m_parts), index(s.mr))
        m1 = arith.minsi(arith.muli(share(arith.addi(mp, one), tiles, m_parts), index(s.mr)), m)
        p0 = share(np_, index(spec.panels), n_parts)
        p1 = share(arith.addi(np_, one), index(spec.panels), n_parts)
        func.call([], task_fn, [m0, m1, p0, p1] + operands)
        scf.ReduceOp([], 0)


def _emit_batched(spec: GemmKernelSpec, schedule: GemmSchedule, ops: GemmOperands,
                  task_fn: str, m, operands) -> None:
    """A batched kernel: one task per batch entry (all its rows and panels), the entries
    in parallel (inside an already parallel loop, e.g. attention's, in a serial loop on
    the calling thread)."""
    count = index(spec.batch) if spec.batch > 0 else memref.dim(ops.a, index(0))
    whole = [index(0), m, index(0), index(spec.panels)]

    def entry(b):
        func.call([], task_fn, [b] + whole + operands)

    def serial():
        for_(index(0), count, index(1), (), entry)

    def parallel():
        loop = scf.ParallelOp([], [index(0)], [count], [index(1)], [])
        body = loop.regions[0].blocks.append(ir.IndexType.get())
        with ir.InsertionPoint(body):
            func.call([], task_fn, [body.arguments[0]] + whole + operands)
            scf.ReduceOp([], 0)
    _serial_or_parallel(schedule, serial, parallel)


def _in_parallel():
    """i1: whether the caller runs inside an OpenMP parallel region."""
    i32 = ir.IntegerType.get_signless(32)
    return arith.cmpi(arith.CmpIPredicate.ne, func.call([i32], IN_PARALLEL_FN, []),
                      arith.constant(i32, 0))
