"""ember-fuse-rotary-embedding: recognizes rotary position embeddings written out in ops.

Hugging Face's `apply_rotary_pos_emb` computes `x * cos + rotate_half(x) * sin` with
`rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2])`: two slices, a negation, a concatenation,
two multiplies and an add, each a pass over memory. The pattern becomes one
`ember.rotary_embedding`, which reads x once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ember.dialect.ops import Binary, Concat, RotaryEmbedding, Slice, Unary
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import binary_of_kind
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns


def _half(value, x, start: int, half: int) -> bool:
    s = Slice.defining(value)
    rank = len(shape_of(x))
    return s is not None and s.input == x and s.axis == rank - 1 and s.start == start and \
        s.size == half


def _rotated_source(value) -> Optional[object]:
    """x when `value` is cat(-x[..., D/2:], x[..., :D/2]) along the last dim."""
    cat = Concat.defining(value)
    if cat is None:
        return None
    neg = Unary.defining(cat.lhs)
    if neg is None or neg.kind != "neg":
        return None
    second_half = Slice.defining(neg.input)
    if second_half is None:
        return None
    x = second_half.input
    shape = shape_of(x)
    if shape[-1] is None or shape[-1] % 2 or cat.axis != len(shape) - 1:
        return None
    half = shape[-1] // 2
    if _half(neg.input, x, half, half) and _half(cat.rhs, x, 0, half):
        return x
    return None


def fuse_rotary(op, rewriter) -> bool:
    """add(x * cos, rotate_half(x) * sin), operands in any order -> rotary_embedding."""
    if Binary(op).kind != "add":
        return NOT_APPLIED
    products = [binary_of_kind(v, "mul") for v in op.operands]
    if any(p is None for p in products):
        return NOT_APPLIED
    for rot_side in (0, 1):
        rot_mul, plain_mul = products[rot_side], products[1 - rot_side]
        for s in (0, 1):
            x = _rotated_source(rot_mul.operands[s])
            if x is None:
                continue
            sin = rot_mul.operands[1 - s]
            for t in (0, 1):
                if plain_mul.operands[t] == x and op.results[0].type == x.type:
                    cos = plain_mul.operands[1 - t]
                    with rewriter.ip, op.location:
                        rewriter.replace_op(op, [RotaryEmbedding.build(x, cos, sin)])
                    return APPLIED
    return NOT_APPLIED


@register
@dataclass
class FuseRotaryEmbedding(EmberPass):
    """Replaces x * cos + rotate_half(x) * sin with one ember.rotary_embedding."""
    name = "ember-fuse-rotary-embedding"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Binary.op_name: [fuse_rotary]})
