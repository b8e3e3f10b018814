"""Shared helpers for ember's rewrite patterns: one greedy driver, small IR queries.

Passes state their rewrites as `(op, rewriter) -> bool` functions keyed by op name (True means
"did not apply", as MLIR's Python pattern API expects a falsy return on success) and hand them
to `apply_patterns`, which also erases dead ember ops (IRDL ops declare no side effects, so
MLIR's driver would otherwise keep them).
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Mapping, Optional, Sequence

from mlir import ir
from mlir.dialects import func
from mlir.dialects.transform import interpreter
from mlir.rewrite import RewritePatternSet, apply_patterns_and_fold_greedily

from ember.dialect.ops import OP_NAMES

Pattern = Callable[[object, object], bool]

#: Every ember op; all are pure, so an unused one can be erased.
EMBER_OPS = OP_NAMES

NOT_APPLIED = True
APPLIED = False


def _erase_if_dead(op, rewriter) -> bool:
    if any(len(list(r.uses)) for r in op.results):
        return NOT_APPLIED
    rewriter.erase_op(op.operation)
    return APPLIED


def apply_patterns(module, patterns: Mapping[str, Sequence[Pattern]], *, erase_dead=True):
    """Applies `patterns` (op name -> rewrites) to a fixpoint, folding and erasing dead ops."""
    ps = RewritePatternSet()
    for name, fns in patterns.items():
        for fn in fns:
            ps.add(name, fn)
    if erase_dead:
        for name in EMBER_OPS:
            ps.add(name, _erase_if_dead)
    apply_patterns_and_fold_greedily(module, ps.freeze())


def defining_op(value) -> Optional[object]:
    """The op that defines `value`, or None for a block argument."""
    owner = value.owner
    return owner if isinstance(owner, (ir.Operation, ir.OpView)) else None


def defined_by(value, name: str) -> Optional[object]:
    """The defining op of `value` when it is a `name` op, else None."""
    op = defining_op(value)
    return op if op is not None and op.name == name else None


def binary_of_kind(value, kind: str) -> Optional[object]:
    """The ember.binary of `kind` defining `value`, else None."""
    op = defined_by(value, "ember.binary")
    return op if op is not None and string_attr(op, "kind") == kind else None


def use_count(value) -> int:
    return len(list(value.uses))


def string_attr(op, name: str) -> str:
    return ir.StringAttr(op.attributes[name]).value


def int_attr(op, name: str) -> int:
    return ir.IntegerAttr(op.attributes[name]).value


def float_attr(op, name: str) -> float:
    return ir.FloatAttr(op.attributes[name]).value


def walk_ops(root, names: Iterable[str] = ()) -> list:
    """All ops under `root` (pre-order), or only those named in `names`, as a list snapshot."""
    wanted = set(names)
    found = []

    def visit(op):
        if not wanted or op.name in wanted:
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


def merge_duplicate_weights(module) -> None:
    """Makes each function refer to a weight name through one `ember.weight` op.

    Folds and rewrites create a new op per use; IRDL ops are opaque to upstream CSE, so this is
    ember's own CSE for weights (the first op in each block wins; later ones are erased).
    """
    for fn in walk_ops(module.operation, ["func.func"]):
        first = {}
        for op in walk_ops(fn, ["ember.weight"]):
            key = (op.block, string_attr(op, "name"), str(op.results[0].type))
            if key in first:
                op.results[0].replace_all_uses_with(first[key].results[0])
                op.erase()
            else:
                first[key] = op


def kernel_function(module_block, attr: str, spec, fn_type, prefix: str,
                    build_body: Callable) -> str:
    """The name of the private func.func of `module_block` whose `attr` attribute is `spec`
    and whose type is `fn_type`, so that identical kernels share one function. Created on
    first use as `<prefix><i>` (the lowest free i); `build_body(arguments)` emits its body
    and returns the values it returns."""
    names = set()
    for op in module_block.operations:
        if op.operation.name != "func.func":
            continue
        name = ir.StringAttr(op.attributes["sym_name"]).value
        names.add(name)
        if attr in op.attributes and str(op.attributes[attr]) == str(spec) and \
                str(op.attributes["function_type"]) == str(ir.TypeAttr.get(fn_type)):
            return name
    name = next(f"{prefix}{i}" for i in itertools.count() if f"{prefix}{i}" not in names)
    with ir.InsertionPoint(module_block), ir.Location.name(name):
        fn = func.FuncOp(name, fn_type, visibility="private")
        fn.attributes[attr] = spec
        entry = fn.add_entry_block()
        with ir.InsertionPoint(entry):
            func.ReturnOp(list(build_body(entry.arguments)))
    return name


def apply_transform_script(module, steps: str) -> None:
    """Runs transform-dialect `steps` (the body of `@__transform_main`, whose root handle is
    `%root`; `transform.yield` is added) on `module`."""
    script = ir.Module.parse(
        "module attributes {transform.with_named_sequence} {\n"
        "transform.named_sequence @__transform_main("
        "%root: !transform.any_op {transform.readonly}) {\n"
        f"{steps}transform.yield\n}}\n}}")
    interpreter.apply_named_sequence(module.operation, script.body.operations[0], script)
