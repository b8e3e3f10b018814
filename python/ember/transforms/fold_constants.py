"""ember-fold-constants: evaluates weight-only subgraphs at compile time.

An ember op whose every operand is a constant (an `ember.weight` or a dense `arith.constant`)
is computed once with numpy, its result stored in the weights table under a derived name, and
the op replaced by an `ember.weight` of that name. This is how `linear`'s weight transpose
disappears from the run-time code: the artifact stores the weight already transposed. On an
abstract weights table (ember-opt without data) the IR is rewritten the same way and the
derived entries are simply left without data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import numpy as np
from mlir import ir
from mlir.dialects import arith

from ember.dialect.ops import Binary, Reshape, Transpose, Unary, Weight, view

from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.tensor_spec import ELEMENT_DTYPES, numpy_dtype
from ember.transforms.duplicate_weights import merge_duplicate_weights


def _unary_numpy(kind: str) -> Callable[[np.ndarray], np.ndarray]:
    from math import sqrt
    table = {
        "relu": lambda x: np.maximum(x, 0),
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "silu": lambda x: x / (1 + np.exp(-x)),
        "tanh": np.tanh, "exp": np.exp, "log": np.log, "neg": np.negative,
        "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "abs": np.abs,
        "reciprocal": lambda x: 1 / x,
        "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
    }
    return table[kind]


_BINARY_NUMPY: Dict[str, Callable] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "max": np.maximum, "min": np.minimum, "pow": np.power,
}


def constant_source(value) -> Optional[object]:
    """The weight name (str) or the numpy value of a constant operand, else None."""
    weight = Weight.defining(value)
    if weight is not None:
        return weight.name
    constant = value.owner
    if isinstance(constant, arith.ConstantOp) and isinstance(constant.value, ir.DenseElementsAttr):
        attr = ir.DenseElementsAttr(constant.value)
        shaped = ir.ShapedType(value.type)
        dtype = _numpy_dtype(shaped.element_type)
        if dtype is None:
            return None
        if attr.is_splat:
            splat = attr.get_splat_value()
            scalar = ir.FloatAttr(splat).value if isinstance(splat, ir.FloatAttr) \
                else ir.IntegerAttr(splat).value
            return np.full(shaped.shape, scalar, dtype=dtype)
        return np.array(attr).astype(dtype, copy=False)
    return None


def scalar_constant(value) -> Optional[float]:
    """The value of a one-element constant operand (e.g. a scale or an epsilon), else None."""
    source = constant_source(value)
    return float(source.reshape(())) if isinstance(source, np.ndarray) and source.size == 1 \
        else None


def _evaluator(op) -> Optional[Callable]:
    if isinstance(op, Transpose):
        perm = op.permutation
        return lambda x: np.transpose(x, perm)
    if isinstance(op, Reshape):
        shape = ir.ShapedType(op.result.type).shape
        return lambda x: np.reshape(x, shape)
    if isinstance(op, Unary):
        return None if op.kind == "gelu" else _unary_numpy(op.kind)
    if isinstance(op, Binary):
        return _BINARY_NUMPY[op.kind]
    return None


def _name_hint(op, sources) -> str:
    base = next((s for s in sources if isinstance(s, str)), "const")
    suffix = op.kind if isinstance(op, (Unary, Binary)) else op.op_name.split(".", 1)[1]
    return f"{base}.{suffix}"


@dataclass
class _FoldPattern:
    ctx: PassContext
    max_elements: int

    def __call__(self, op, rewriter) -> bool:
        sources = [constant_source(v) for v in op.operands]
        if not sources or any(s is None for s in sources) or \
                not any(isinstance(s, str) for s in sources):
            return NOT_APPLIED
        result_type = ir.ShapedType(op.results[0].type)
        if not result_type.has_static_shape or \
                int(np.prod(result_type.shape)) > self.max_elements:
            return NOT_APPLIED
        folded = view(op)
        fn = _evaluator(folded)
        dtype = _numpy_dtype(result_type.element_type)
        if fn is None or dtype is None:
            return NOT_APPLIED
        weights = self.ctx.weights
        names = [s if isinstance(s, str) else weights.unique_name("const.literal")
                 for s in sources]
        for name, s in zip(names, sources):
            if not isinstance(s, str):
                weights.add(name, s)
        # Identical folds (tied weights, repeated blocks) share one entry.
        key = (op.name, repr(folded.attribute_values()), str(op.results[0].type), tuple(names))
        new_name = weights.derive(_name_hint(folded, sources),
                                  lambda *xs: np.asarray(fn(*xs), dtype=dtype), names, key=key)
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [Weight.build(op.results[0].type, name=new_name)])
        return APPLIED


def _numpy_dtype(element_type) -> Optional[np.dtype]:
    """The numpy dtype of an element type (bf16: ml_dtypes'), None for one numpy lacks."""
    name = ELEMENT_DTYPES.get(str(element_type))
    return None if name is None else numpy_dtype(name)


@register
@dataclass
class FoldConstants(EmberPass):
    """Evaluates ember ops on constants at compile time into new weights-table entries."""
    name = "ember-fold-constants"
    max_elements: int = 1 << 26

    def run(self, module, ctx: PassContext) -> None:
        pattern = _FoldPattern(ctx, self.max_elements)
        apply_patterns(module, {op.op_name: [pattern] for op in
                                (Transpose, Reshape, Unary, Binary)})
        merge_duplicate_weights(module)
