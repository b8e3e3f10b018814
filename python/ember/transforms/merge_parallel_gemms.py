"""ember-merge-parallel-gemms: GEMMs that share an input become one wider GEMM.

Attention's Q, K and V projections (and gate/up projections in gated MLPs) read the same
activation with different weights. Concatenating the weights along N turns three skinny GEMMs
into one wide one (the activation is read once, the micro-kernel runs on longer panels), and
`ember.slice` hands each consumer its columns. Merged GEMMs must have the same activation and
no residual; biases are concatenated (a missing one becomes zeros). The merged weight is a new
weights-table entry, so the option `enabled=false` trades this speed for memory when the
originals must stay shared with other users.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np
from mlir import ir

from ember.dialect.ops import Gemm, Slice, Weight
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import walk_ops
from ember.kit.rewrite import apply_patterns
from ember.transforms.duplicate_weights import merge_duplicate_weights


def _mergeable(gemm: Gemm, weights) -> bool:
    """A GEMM on a 2-D weight without residual, writing floats (codes have each GEMM's own
    scale), whose weight has no user-supplied low-bit codes (ember-quantize gives those to the
    GEMM of that weight alone)."""
    weight = Weight.defining(gemm.rhs)
    return (weight is not None and len(shape_of(gemm.rhs)) == 2 and gemm.residual is None and
            not gemm.quantized_result and weights.provided_codes(weight.name) is None)


def _group_key(gemm: Gemm):
    return (gemm.lhs, gemm.activation, str(ir.RankedTensorType(gemm.result.type).element_type),
            gemm.operation.block)


def _merge(group: List[Gemm], weights) -> None:
    first = group[0]
    names = [Weight.defining(g.rhs).name for g in group]
    widths = [shape_of(g.rhs)[1] for g in group]
    k = shape_of(first.rhs)[0]
    element = ir.RankedTensorType(first.result.type).element_type
    merged_name = weights.derive(f"{names[0]}.merged{len(group)}",
                                 lambda *ws: np.concatenate(ws, axis=1), names,
                                 key=("merge", tuple(names)))
    biases = []
    for g, n in zip(group, widths):
        bias_op = Weight.defining(g.bias) if g.bias is not None else None
        if g.bias is not None and bias_op is None:
            return  # a computed bias: not worth merging
        biases.append(bias_op.name if bias_op is not None else n)
    any_bias = any(isinstance(b, str) for b in biases)
    with ir.InsertionPoint(first.operation), first.operation.location:
        rhs = Weight.build(ir.RankedTensorType.get([k, sum(widths)], element), name=merged_name)
        bias_value = None
        if any_bias:
            sources = [b for b in biases if isinstance(b, str)]
            layout = list(biases)
            bias_name = weights.derive(
                f"{sources[0]}.merged{len(group)}",
                lambda *bs: _concat_biases(layout, bs, element), sources,
                key=("merge-bias", tuple(map(str, biases))))
            bias_value = Weight.build(ir.RankedTensorType.get([sum(widths)], element),
                                      name=bias_name)
        lhs_shape = ir.RankedTensorType(first.result.type).shape
        wide_type = ir.RankedTensorType.get(lhs_shape[:-1] + [sum(widths)], element)
        wide = Gemm.build(first.lhs, rhs, wide_type, bias=bias_value, activation=first.activation)
        start = 0
        axis = len(lhs_shape) - 1
        parts = []
        for g, n in zip(group, widths):
            parts.append(Slice.build(wide, g.result.type, axis=axis, start=start, size=n))
            start += n
    for g, part in zip(group, parts):
        g.result.replace_all_uses_with(part)
        g.operation.erase()


def _concat_biases(layout, arrays, element) -> np.ndarray:
    """Biases in group order; an int entry is a missing bias of that width (zeros)."""
    it = iter(arrays)
    dtype = next(a.dtype for a in arrays)
    return np.concatenate([next(it) if isinstance(b, str) else np.zeros(b, dtype)
                           for b in layout])


@register
@dataclass
class MergeParallelGemms(EmberPass):
    """Merges GEMMs that share their input (e.g. Q/K/V projections) into one wider GEMM."""
    name = "ember-merge-parallel-gemms"
    enabled: bool = True

    def run(self, module, ctx: PassContext) -> None:
        if not self.enabled:
            return
        groups: Dict[object, List[Gemm]] = {}
        for op in walk_ops(module.operation, [Gemm.op_name]):
            gemm = Gemm(op)
            if _mergeable(gemm, ctx.weights):
                groups.setdefault(_group_key(gemm), []).append(gemm)
        for group in groups.values():
            if len(group) > 1:
                _merge(group, ctx.weights)
        merge_duplicate_weights(module)
        apply_patterns(module, {})  # erase the weights only the merged GEMMs used
