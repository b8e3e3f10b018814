"""Small read-only questions passes ask of the IR: which op defines a value, how often a value
is used, which ops lie under a root. Pattern matchers stay short when they can ask these."""
from __future__ import annotations

from typing import Iterable, Optional

from mlir import ir

from ember.dialect.ops import Binary


#: arith ops dividing integers (the divisor is operand 1), and whether each is signed. A zero
#: divisor traps on x86 (SIGFPE), as does a signed INT_MIN / -1.
INTEGER_DIVISIONS = {"arith.divsi": True, "arith.remsi": True, "arith.floordivsi": True,
                     "arith.ceildivsi": True, "arith.divui": False, "arith.remui": False,
                     "arith.ceildivui": False}


def defining_op(value) -> Optional[object]:
    """The op that defines `value`, or None for a block argument."""
    owner = value.owner
    return owner if isinstance(owner, (ir.Operation, ir.OpView)) else None


def defined_by(value, name: str) -> Optional[object]:
    """The defining op of `value` when it is a `name` op, else None."""
    op = defining_op(value)
    return op if op is not None and op.name == name else None


def binary_of_kind(value, kind: str) -> Optional[object]:
    """The ember.binary of `kind` defining `value` (the op, for matchers that try both operand
    orders), else None."""
    binary = Binary.defining(value)
    return binary.operation if binary is not None and binary.kind == kind else None


def use_count(value) -> int:
    return len(list(value.uses))


def walk_ops(root, names: Iterable[str] = ()) -> list:
    """All ops under `root` (pre-order), or only those named in `names`, as a list snapshot
    (so the caller may rewrite or erase them while iterating)."""
    wanted = set(names)
    found = []

    def visit(op):
        if not wanted or op.name in wanted:
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


#: Loops whose iterations run in parallel (OpenMP threads on the host): a parallel loop nested
#: in one would not run in parallel anyway.
PARALLEL_LOOPS = ("scf.forall", "scf.parallel")


def in_parallel_loop(op) -> bool:
    """Whether `op` (an Operation or OpView) is a PARALLEL_LOOPS op or lies inside one."""
    op = op.operation
    while op is not None:
        if op.name in PARALLEL_LOOPS:
            return True
        op = op.parent
    return False


#: Ops of a graph-stage function that only name constants or return: not steps of the program.
NOT_PROGRAM_STEPS = ("ember.weight", "func.return")


def public_function(module):
    """The module's public function (the model's entry), or None."""
    return next((op for op in module.body.operations if op.operation.name == "func.func" and
                 "sym_visibility" not in op.attributes), None)


def program_steps(fn) -> list:
    """The ops of `fn`'s body that are steps of the program, in execution order: what
    `ember explain` numbers and ember-label-kernels labels with the same numbers. A step
    computes a tensor; the scalar arithmetic of dynamic sizes around them is not one."""
    return [op for op in fn.regions[0].blocks[0].operations
            if op.operation.name not in NOT_PROGRAM_STEPS and
            any(isinstance(r.type, ir.RankedTensorType) for r in op.results)]
