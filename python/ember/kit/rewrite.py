"""How ember passes rewrite IR: one greedy pattern driver, and a runner for transform scripts.

Passes state their rewrites as `(op, rewriter) -> bool` functions keyed by op name (the result is
APPLIED or NOT_APPLIED: MLIR's Python pattern API reads a falsy return as success) and hand them
to `apply_patterns`, which also erases dead ember ops (IRDL ops declare no side effects, so
MLIR's driver would otherwise keep them). Schedules that upstream transform ops already express
(tiling, vectorization) go through `apply_transform_script` instead.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from mlir import ir
from mlir.dialects.transform import interpreter
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

from ember.dialect.ops import OP_NAMES

Pattern = Callable[[object, object], bool]

NOT_APPLIED = True
APPLIED = False


def _erase_if_dead(op, rewriter) -> bool:
    if any(len(list(r.uses)) for r in op.results):
        return NOT_APPLIED
    rewriter.erase_op(op.operation)
    return APPLIED


def apply_patterns(module, patterns: Mapping[str, Sequence[Pattern]], *, erase_dead=True):
    """Applies `patterns` (op name -> rewrites) to a fixpoint, folding and erasing dead ember
    ops (all are pure, so an unused one can go)."""
    ps = RewritePatternSet()
    for name, fns in patterns.items():
        for fn in fns:
            ps.add(name, fn)
    if erase_dead:
        for name in OP_NAMES:
            ps.add(name, _erase_if_dead)
    apply_patterns_and_fold_greedily(module, ps.freeze())


def apply_transform_script(module, steps: str) -> None:
    """Runs transform-dialect `steps` (the body of `@__transform_main`, whose root handle is
    `%root`; `transform.yield` is added) on `module`."""
    script = ir.Module.parse(
        "module attributes {transform.with_named_sequence} {\n"
        "transform.named_sequence @__transform_main("
        "%root: !transform.any_op {transform.readonly}) {\n"
        f"{steps}transform.yield\n}}\n}}")
    interpreter.apply_named_sequence(module.operation, script.body.operations[0], script)
