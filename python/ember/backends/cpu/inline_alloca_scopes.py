"""ember-inline-alloca-scopes: dissolves memref.alloca_scope ops that hold no alloca.

convert-scf-to-openmp wraps a parallel loop body in an alloca_scope whenever it cannot rule
out allocations (a call, e.g. of a GEMM kernel, is enough), and the scope may hold only one
block, so lowering the scf loops beside the call to control flow then fails to verify. A
callee's allocas live in its own frame; only allocas in the region itself need the scope."""
from __future__ import annotations

from dataclasses import dataclass

from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register


@register
@dataclass
class InlineAllocaScopes(EmberPass):
    """Inlines each memref.alloca_scope whose own region allocates nothing."""
    name = "ember-inline-alloca-scopes"

    def run(self, module, ctx: PassContext) -> None:
        for scope in walk_ops(module.operation, ["memref.alloca_scope"]):
            if walk_ops(scope, ["memref.alloca"]) or list(scope.results):
                continue
            ops = list(scope.regions[0].blocks[0].operations)
            for op in ops[:-1]:                  # all but the alloca_scope.return terminator
                op.move_before(scope)
            scope.erase()
