"""Python builders for ember ops (thin wrappers over `Operation.create`).

IRDL ops have no generated OpView classes, so these functions are the builder API. Each takes
the operands as values and returns the built op's result. They work in whichever MLIR build the
operands belong to (the frontend builds ember ops in torch-mlir's context, the passes in the
compiler's), because they only use the `Operation` class of the operand's own build.
"""
from __future__ import annotations

import sys
from typing import Optional, Sequence


def _ir_of(value):
    """The native `ir` module (of either MLIR build) that `value` belongs to."""
    return sys.modules[type(value).__module__]


def _create(ir, name, operands, result_type, attributes, segments=None):
    attrs = dict(attributes)
    if segments is not None:
        attrs["operandSegmentSizes"] = ir.DenseI32ArrayAttr.get(segments)
    op = ir.Operation.create(name, results=[result_type],
                             operands=[v for v in operands if v is not None], attributes=attrs)
    return op.result


def weight(ir, name: str, tensor_type):
    """`ember.weight {name}`: a named constant from the weights table."""
    return _create(ir, "ember.weight", [], tensor_type, {"name": ir.StringAttr.get(name)})


def gemm(lhs, rhs, result_type, *, bias=None, residual=None, activation: str = "none"):
    ir = _ir_of(lhs)
    return _create(ir, "ember.gemm", [lhs, rhs, bias, residual], result_type,
                   {"activation": ir.StringAttr.get(activation)},
                   segments=[1, 1, int(bias is not None), int(residual is not None)])


def layer_norm(x, result_type, *, weight=None, bias=None, epsilon: float = 1e-5,
               normalized_ndim: int = 1):
    ir = _ir_of(x)
    return _create(ir, "ember.layer_norm", [x, weight, bias], result_type,
                   {"epsilon": ir.FloatAttr.get(ir.F32Type.get(), epsilon),
                    "normalized_ndim": ir.IntegerAttr.get(ir.IntegerType.get_signless(64),
                                                          normalized_ndim)},
                   segments=[1, int(weight is not None), int(bias is not None)])


def softmax(x, result_type, *, axis: int):
    ir = _ir_of(x)
    return _create(ir, "ember.softmax", [x], result_type,
                   {"axis": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), axis)})


def unary(kind: str, x, result_type=None):
    ir = _ir_of(x)
    return _create(ir, "ember.unary", [x], result_type or x.type,
                   {"kind": ir.StringAttr.get(kind)})


def binary(kind: str, lhs, rhs, result_type):
    ir = _ir_of(lhs)
    return _create(ir, "ember.binary", [lhs, rhs], result_type, {"kind": ir.StringAttr.get(kind)})


def transpose(x, permutation: Sequence[int], result_type):
    ir = _ir_of(x)
    return _create(ir, "ember.transpose", [x], result_type,
                   {"permutation": ir.DenseI64ArrayAttr.get(list(permutation))})


def reshape(x, result_type):
    ir = _ir_of(x)
    return _create(ir, "ember.reshape", [x], result_type, {})


def optional_operand(op, name: str) -> Optional[object]:
    """The value of optional operand `name` of an ember op, or None (reads operandSegmentSizes)."""
    names = OPERAND_NAMES[op.name]
    sizes = list(op.attributes["operandSegmentSizes"]) if "operandSegmentSizes" in op.attributes \
        else [1] * len(names)
    index = 0
    for operand_name, size in zip(names, sizes):
        if operand_name == name:
            return op.operands[index] if size else None
        index += size
    raise KeyError(f"{op.name} has no operand {name!r}")


#: Operand names of each op, in order, as declared in ember.irdl.mlir.
OPERAND_NAMES = {
    "ember.gemm": ("lhs", "rhs", "bias", "residual"),
    "ember.layer_norm": ("input", "weight", "bias"),
    "ember.softmax": ("input",),
    "ember.unary": ("input",),
    "ember.binary": ("lhs", "rhs"),
    "ember.transpose": ("input",),
    "ember.reshape": ("input",),
    "ember.weight": (),
}
