"""ember-time-kernels: per-kernel timers compiled into a profile build's code.

ember-label-kernels numbered the model's steps at the graph stage and lowering kept each label
on the code made from the step. Here, in the model function's body (at the loops stage: GEMM
kernel calls, loop nests and OpenMP regions, copies), a call `ember_profile_enter(step, slots)`
goes before the first op doing work of each run of one step's ops, and `ember_profile_enter(-1,
slots)` before the return. The C support code (cpu_support.c) reads a monotonic clock on each
call and charges the time since the previous one to the step that was running, so the steps'
times add up to the model function's own, with nothing sampled and nothing left out. Work
whose label an upstream rewrite dropped (a fill vectorized into a lone `vector.store`) belongs
to the step whose code follows it; work after the last step's (a copy added for the outputs)
goes to slot `slots - 1`.

Ops that do no work (constants, views, allocation) never start a step: canonicalization hoists
constants and bufferization allocates ahead of their users, out of their step's order. A module
without labels (not a profile build) is left as it is.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, func

from ember.kit.ir_queries import public_function
from ember.kit.private_functions import declare_external
from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.transforms.label_kernels import kernel_label

#: The C support code's timer entry point: (step, slots) -> ().
ENTER_FN = "ember_profile_enter"
#: The step value that stops the clock at the end of a run.
STOP = -1
#: Ops that do work without regions of their own.
_WORK = ("func.call", "memref.copy")


def does_work(op) -> bool:
    """Whether `op` runs code (a kernel call, a loop nest, a parallel region, a copy) rather
    than naming a constant, a view or an allocation."""
    name = op.operation.name
    return bool(len(op.regions)) or name in _WORK or name.startswith(("linalg.", "vector."))


@register
@dataclass
class TimeKernels(EmberPass):
    """Times each labelled step of the model function (profile builds; see ember-label-kernels)."""
    name = "ember-time-kernels"

    def run(self, module, ctx: PassContext) -> None:
        fn = public_function(module)
        if fn is None:
            return
        ops = list(fn.regions[0].blocks[0].operations)
        labels = [kernel_label(op.location) if does_work(op) else None for op in ops]
        if all(label is None for label in labels):
            return
        slots = max(label for label in labels if label is not None) + 2  # and one for no step
        i32 = ir.IntegerType.get_signless(32)
        declare_external(module.body, ENTER_FN, ir.FunctionType.get([i32, i32], []))
        running, following = None, slots - 1
        steps = []
        for op, label in zip(reversed(ops), reversed(labels)):   # the step that follows each op
            following = following if label is None else label
            steps.append(following)
        for op, step in zip(ops, reversed(steps)):
            if op.operation.name == "func.return":
                self._enter(op, STOP, slots)
            elif does_work(op) and step != running:
                self._enter(op, step, slots)
                running = step

    @staticmethod
    def _enter(before, step: int, slots: int) -> None:
        i32 = ir.IntegerType.get_signless(32)
        with ir.InsertionPoint(before), before.location:
            func.call([], ENTER_FN, [arith.constant(i32, step), arith.constant(i32, slots)])
