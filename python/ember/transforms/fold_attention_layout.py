"""ember-fold-attention-layout: attention reads its heads where the projections wrote them.

A transformer splits each projection's output [B, S, H*D] into heads as a view [B, S, H, D],
then transposes it to PyTorch's attention layout [B, H, S, D]; the attention's output goes
back the same way. Each of those four transposes is a full copy of the activation (BERT-base
batch 8, seq 128: four 1 MB copies a layer, ~5% of its int8 run time). An `ember.attention`
in layout "bshd" takes the heads inside the sequence instead, reading head h as the strided
slice x[..., :, h, :], so none of the copies is needed.

Matched: an `ember.attention` without a layout whose query, key and value are all transposes
swapping dims -3 and -2 (rank >= 3). It becomes a "bshd" attention on the transposes' inputs;
each user of its result that is the same swap (the merge back) reads the new result directly,
and any other user gets one transpose of it (three copies saved, one kept). The mask (scores
[..., H, Sq, Sk] in both layouts) is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.dialect.ops import Attention, Transpose
from ember.dialect.shapes import heads_major, heads_seq_swapped, shape_of
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register


def _swap_source(value, swap):
    """x when `value` is x permuted by `swap` through a chain of transposes (a key's split
    into heads and its k^T, which ember-fuse-attention undid with a transpose of its own, are
    not composed yet), else None."""
    perm = list(range(len(swap)))
    transpose = Transpose.defining(value)
    while transpose is not None:
        perm = [transpose.permutation[d] for d in perm]
        if perm == swap:
            return transpose.input
        transpose = Transpose.defining(transpose.input)
    return None


def fold_attention_layout(op, rewriter) -> bool:
    """attention(swap(q), swap(k), swap(v)) -> swap(attention_bshd(q, k, v)), the outer swap
    dropped where the result is swapped back."""
    attention = Attention(op)
    rank = len(shape_of(attention.result) or [])
    if attention.layout is not None or rank < 3:
        return NOT_APPLIED
    swap = heads_seq_swapped(rank)
    sources = [_swap_source(x, swap) for x in (attention.query, attention.key, attention.value)]
    if any(s is None for s in sources):
        return NOT_APPLIED
    old = ir.RankedTensorType(attention.result.type)
    shape = heads_major(list(old.shape), "bshd")
    with rewriter.ip, op.location:
        folded = attention.rebuild(ir.RankedTensorType.get(shape, old.element_type),
                                   query=sources[0], key=sources[1], value=sources[2],
                                   layout="bshd")
        merges = [use.owner for use in attention.result.uses
                  if use.owner.name == Transpose.op_name and
                  Transpose(use.owner).permutation == swap]
        for merge in merges:
            rewriter.replace_op(merge, [folded])
        if any(True for _ in attention.result.uses):
            rewriter.replace_op(op, [Transpose.build(folded, old, permutation=swap)])
        else:
            rewriter.erase_op(op.operation)
    return APPLIED


@register
@dataclass
class FoldAttentionLayout(EmberPass):
    """Attention reads q, k and v as [.., S, H, D] (layout "bshd") instead of transposed
    copies, and its result is merged back into [.., S, H*D] without one."""
    name = "ember-fold-attention-layout"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Attention.op_name: [fold_attention_layout]})
