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

from ember.dialect import builders as eb
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.patterns import (apply_patterns, defined_by, merge_duplicate_weights, string_attr,
                       walk_ops)


def _mergeable(gemm) -> bool:
    rhs = gemm.operands[1]
    return (defined_by(rhs, "ember.weight") is not None and len(shape_of(rhs)) == 2 and
            eb.optional_operand(gemm, "residual") is None)


def _group_key(gemm):
    return (gemm.operands[0], string_attr(gemm, "activation"),
            str(ir.RankedTensorType(gemm.results[0].type).element_type), gemm.operation.block)


def _merge(group: List, weights) -> None:
    first = group[0]
    names = [string_attr(defined_by(g.operands[1], "ember.weight"), "name") for g in group]
    widths = [shape_of(g.operands[1])[1] for g in group]
    k = shape_of(first.operands[1])[0]
    element = ir.RankedTensorType(first.results[0].type).element_type
    merged_name = weights.derive(f"{names[0]}.merged{len(group)}",
                                 lambda *ws: np.concatenate(ws, axis=1), names,
                                 key=("merge", tuple(names)))
    biases = []
    for g, n in zip(group, widths):
        bias = eb.optional_operand(g, "bias")
        bias_op = defined_by(bias, "ember.weight") if bias is not None else None
        if bias is not None and bias_op is None:
            return  # a computed bias: not worth merging
        biases.append(string_attr(bias_op, "name") if bias_op is not None else n)
    any_bias = any(isinstance(b, str) for b in biases)
    with ir.InsertionPoint(first), first.location:
        rhs = eb.weight(ir, merged_name, ir.RankedTensorType.get([k, sum(widths)], element))
        bias_value = None
        if any_bias:
            sources = [b for b in biases if isinstance(b, str)]
            layout = list(biases)
            bias_name = weights.derive(
                f"{sources[0]}.merged{len(group)}",
                lambda *bs: _concat_biases(layout, bs, element), sources,
                key=("merge-bias", tuple(map(str, biases))))
            bias_value = eb.weight(ir, bias_name, ir.RankedTensorType.get([sum(widths)], element))
        lhs_shape = ir.RankedTensorType(first.results[0].type).shape
        wide_type = ir.RankedTensorType.get(lhs_shape[:-1] + [sum(widths)], element)
        wide = eb.gemm(first.operands[0], rhs, wide_type, bias=bias_value,
                       activation=string_attr(first, "activation"))
        start = 0
        axis = len(lhs_shape) - 1
        parts = []
        for g, n in zip(group, widths):
            parts.append(eb.slice_(wide, g.results[0].type, axis=axis, start=start, size=n))
            start += n
    for g, part in zip(group, parts):
        g.results[0].replace_all_uses_with(part)
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
        groups: Dict[object, List] = {}
        for gemm in walk_ops(module.operation, ["ember.gemm"]):
            if _mergeable(gemm):
                groups.setdefault(_group_key(gemm), []).append(gemm)
        for group in groups.values():
            if len(group) > 1:
                _merge(group, ctx.weights)
        merge_duplicate_weights(module)
        apply_patterns(module, {})  # erase the weights only the merged GEMMs used
