"""ember-fold-batch-norm: folds inference BatchNorm (per-channel affine ops) into conv/GEMM.

In inference, BatchNorm is `(x - mean) * (weight / sqrt(var + eps)) + bias`, one scale and one
shift per channel; the frontend imports it as exactly that chain of broadcasting ember.binary
ops, and ember-fold-constants turns the weight-only parts into per-channel constants. This pass
folds each `producer (+|-|*|/) constant` step, where the producer is an ember.conv2d or
ember.gemm with an empty epilogue and the constant varies only along the producer's output
channel, into the producer's filter and bias, so the whole BatchNorm costs nothing at run time.
The new weights are derived in the weights table (abstract tables work too).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from mlir import ir

from ember.dialect.ops import Binary, Conv2d, Gemm, Weight
from ember.dialect.shapes import shape_of

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.transforms.fold_constants import constant_source
from ember.kit.ir_queries import use_count
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns

PRODUCERS = (Conv2d, Gemm)


def _channel_axis(producer) -> int:
    if isinstance(producer, Gemm):
        return len(shape_of(producer.result)) - 1
    return 1 if producer.layout == "nchw" else 3


def _per_channel(shape, result_rank: int, axis: int, channels: int) -> bool:
    """True when a constant of `shape` broadcast to the result varies only along `axis`."""
    if len(shape) > result_rank:
        return False
    padded = [1] * (result_rank - len(shape)) + list(shape)
    return all(d == 1 for i, d in enumerate(padded) if i != axis) and padded[axis] in (1, channels)


def _filter_broadcast_shape(producer, channels: int):
    """The shape that lines a per-channel vector up with the producer's filter/rhs."""
    if isinstance(producer, Gemm):
        return (1, channels)
    return (channels, 1, 1, 1) if producer.layout == "nchw" else (1, 1, 1, channels)


def _weights_operand(producer):
    """The producer's filter or rhs."""
    return producer.rhs if isinstance(producer, Gemm) else producer.filter


@dataclass
class _FoldAffine:
    ctx: PassContext

    def __call__(self, op, rewriter) -> bool:
        kind = Binary(op).kind
        if kind not in ("add", "sub", "mul", "div"):
            return NOT_APPLIED
        for side in (0, 1):
            producer = self._producer(op.operands[side])
            if producer is None or (side == 1 and kind in ("sub", "div")):
                continue
            source = constant_source(op.operands[1 - side])
            if source is None:
                continue
            return self._fold(op, rewriter, producer, kind, op.operands[1 - side], source)
        return NOT_APPLIED

    @staticmethod
    def _producer(value) -> Optional[object]:
        """The conv2d or gemm view producing `value`, when `value` has no other user and the
        producer's epilogue is empty."""
        for kind in PRODUCERS:
            producer = kind.defining(value)
            if producer is not None and use_count(value) == 1 and \
                    producer.activation == "none" and producer.residual is None:
                return producer
        return None

    def _fold(self, op, rewriter, producer, kind, const_value, source) -> bool:
        result_shape = shape_of(producer.result)
        axis = _channel_axis(producer)
        channels = result_shape[axis]
        if channels is None or not _per_channel(shape_of(const_value), len(result_shape), axis,
                                                channels):
            return NOT_APPLIED
        weight = _weights_operand(producer)
        weight_op = Weight.defining(weight)
        if kind in ("mul", "div") and (weight_op is None or (isinstance(producer, Gemm) and
                                                             len(shape_of(weight)) != 2)):
            return NOT_APPLIED
        weights = self.ctx.weights
        const_name = source if isinstance(source, str) else \
            self._add_literal(weights, source)
        bias = producer.bias
        bias_op = Weight.defining(bias) if bias is not None else None
        if bias is not None and bias_op is None:
            return NOT_APPLIED  # a computed bias: leave the op alone

        def per_channel(c):
            return np.broadcast_to(np.asarray(c).reshape(-1), (channels,))
        apply = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[kind]
        if bias_op is None and kind == "add" and isinstance(source, str) and \
                shape_of(const_value) == [channels]:
            new_bias = source  # already a bias vector
        elif bias_op is None:
            # No bias yet: the shift itself becomes the bias; a scale leaves none.
            new_bias = None if kind in ("mul", "div") else weights.derive(
                f"{const_name}.bias", lambda c: (per_channel(c) if kind == "add"
                                                 else -per_channel(c)).copy(), [const_name])
        else:
            bias_name = bias_op.name
            new_bias = weights.derive(f"{bias_name}.{kind}",
                                      lambda b, c: apply(b, per_channel(c)).astype(b.dtype),
                                      [bias_name, const_name])
        new_weight = weight
        if kind in ("mul", "div"):
            shape = _filter_broadcast_shape(producer, channels)
            w_name = weight_op.name
            new_w_name = weights.derive(f"{w_name}.{kind}",
                                        lambda w, c: apply(w, per_channel(c).reshape(shape))
                                        .astype(w.dtype), [w_name, const_name])
            with rewriter.ip, op.location:
                new_weight = Weight.build(weight.type, name=new_w_name)
        with rewriter.ip, op.location:
            bias_value = None if new_bias is None else Weight.build(
                ir.RankedTensorType.get([channels], _element(op)), name=new_bias)
            result_type = op.results[0].type
            if isinstance(producer, Gemm):
                rebuilt = producer.rebuild(result_type, rhs=new_weight, bias=bias_value)
            else:
                rebuilt = producer.rebuild(result_type, filter=new_weight, bias=bias_value)
            rewriter.replace_op(op, [rebuilt])
        return APPLIED

    @staticmethod
    def _add_literal(weights, array) -> str:
        name = weights.unique_name("const.literal")
        weights.add(name, array)
        return name


def _element(op):
    return ir.RankedTensorType(op.results[0].type).element_type


@register
@dataclass
class FoldBatchNorm(EmberPass):
    """Folds per-channel constant add/sub/mul/div (inference BatchNorm) into conv2d/gemm."""
    name = "ember-fold-batch-norm"

    def run(self, module, ctx: PassContext) -> None:
        apply_patterns(module, {Binary.op_name: [_FoldAffine(ctx)]})
