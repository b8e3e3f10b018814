"""ember-legalize-reshapes: expand_shapes with several `?` dims in one group -> tensor.reshape.

`tensor.expand_shape` may split one dynamic dim into several dynamic ones (`?` -> `? x ?`, e.g.
restoring [batch, seq] after a GEMM on [batch * seq]) because it carries the output sizes, but
MLIR 22's memref lowering (expand-strided-metadata) asserts on such groups. Before
bufferization, this pass rewrites them as `tensor.reshape` with an explicit shape tensor, which
bufferizes to a plain `memref.reshape` of the same (contiguous) buffer: no data moves either way.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir
from mlir.dialects import arith, tensor

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import walk_ops


def _needs_rewrite(op) -> bool:
    result = ir.RankedTensorType(op.results[0].type)
    for group in ir.ArrayAttr(op.attributes["reassociation"]):
        dims = [ir.IntegerAttr(d).value for d in ir.ArrayAttr(group)]
        if sum(result.is_dynamic_dim(d) for d in dims) > 1:
            return True
    return False


def _rewrite(op) -> None:
    result = ir.RankedTensorType(op.results[0].type)
    dynamic = iter(list(op.operands)[1:])
    index = ir.IndexType.get()
    with ir.InsertionPoint(op), op.location:
        sizes = [next(dynamic) if result.is_dynamic_dim(d) else
                 arith.constant(index, result.shape[d]) for d in range(result.rank)]
        shape = tensor.from_elements(ir.RankedTensorType.get([result.rank], index), sizes)
        reshaped = tensor.reshape(result, op.operands[0], shape)
    op.results[0].replace_all_uses_with(reshaped)
    op.erase()


@register
@dataclass
class LegalizeReshapes(EmberPass):
    """Rewrites expand_shapes that split a dynamic dim into several as tensor.reshape."""
    name = "ember-legalize-reshapes"

    def run(self, module, ctx: PassContext) -> None:
        for op in walk_ops(module.operation, ["tensor.expand_shape"]):
            if _needs_rewrite(op):
                _rewrite(op)
