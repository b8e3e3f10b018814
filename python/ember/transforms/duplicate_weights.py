"""One `ember.weight` op per weight name and block, for the graph passes that make new ones.

Folds and rewrites (ember-fold-constants, ember-canonicalize, ember-merge-parallel-gemms) create
a new weight op per use; IRDL ops are opaque to upstream CSE, so this is ember's own CSE for
weights.
"""
from __future__ import annotations

from ember.dialect.ops import Weight
from ember.kit.ir_queries import walk_ops


def merge_duplicate_weights(module) -> None:
    """Makes each function refer to a weight name through one `ember.weight` op per block (the
    first op in each block wins; later ones are erased)."""
    for fn in walk_ops(module.operation, ["func.func"]):
        first = {}
        for op in walk_ops(fn, [Weight.op_name]):
            key = (op.block, Weight(op).name, str(op.results[0].type))
            if key in first:
                op.results[0].replace_all_uses_with(first[key].results[0])
                op.erase()
            else:
                first[key] = op
