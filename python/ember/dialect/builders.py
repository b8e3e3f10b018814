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


def gemm(lhs, rhs, result_type, *, bias=None, residual=None, activation: str = "none",
         lhs_patches=None):
    """`lhs_patches` (KH, KW, SH, SW, DH, DW): lhs is a padded NHWC input read as im2col
    patches (see the op's doc)."""
    ir = _ir_of(lhs)
    attributes = {"activation": ir.StringAttr.get(activation)}
    if lhs_patches is not None:
        attributes["lhs_patches"] = ir.DenseI64ArrayAttr.get(list(lhs_patches))
    return _create(ir, "ember.gemm", [lhs, rhs, bias, residual], result_type, attributes,
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


def conv2d(x, filter_, result_type, *, strides=(1, 1), padding=(0, 0), dilations=(1, 1),
           groups: int = 1, bias=None, residual=None, activation: str = "none",
           layout: str = "nchw"):
    ir = _ir_of(x)
    i64 = ir.IntegerType.get_signless(64)
    return _create(ir, "ember.conv2d", [x, filter_, bias, residual], result_type,
                   {"strides": ir.DenseI64ArrayAttr.get(list(strides)),
                    "padding": ir.DenseI64ArrayAttr.get(list(padding)),
                    "dilations": ir.DenseI64ArrayAttr.get(list(dilations)),
                    "groups": ir.IntegerAttr.get(i64, groups),
                    "activation": ir.StringAttr.get(activation),
                    "layout": ir.StringAttr.get(layout)},
                   segments=[1, 1, int(bias is not None), int(residual is not None)])


def conv2d_attributes(op) -> dict:
    """The non-operand settings of an ember.conv2d, as Python values (for rebuilding it)."""
    ir = sys.modules[type(op).__module__]
    return {"strides": list(op.attributes["strides"]), "padding": list(op.attributes["padding"]),
            "dilations": list(op.attributes["dilations"]),
            "groups": ir.IntegerAttr(op.attributes["groups"]).value,
            "activation": ir.StringAttr(op.attributes["activation"]).value,
            "layout": ir.StringAttr(op.attributes["layout"]).value}


def pool2d(kind: str, x, result_type, *, kernel, strides, padding=(0, 0), layout: str = "nchw"):
    ir = _ir_of(x)
    return _create(ir, "ember.pool2d", [x], result_type,
                   {"kind": ir.StringAttr.get(kind),
                    "kernel": ir.DenseI64ArrayAttr.get(list(kernel)),
                    "strides": ir.DenseI64ArrayAttr.get(list(strides)),
                    "padding": ir.DenseI64ArrayAttr.get(list(padding)),
                    "layout": ir.StringAttr.get(layout)})


def pool2d_attributes(op) -> dict:
    ir = sys.modules[type(op).__module__]
    return {"kernel": list(op.attributes["kernel"]), "strides": list(op.attributes["strides"]),
            "padding": list(op.attributes["padding"]),
            "layout": ir.StringAttr(op.attributes["layout"]).value}


def attention(q, k, v, result_type, *, mask=None, scale: float, causal: bool = False):
    ir = _ir_of(q)
    return _create(ir, "ember.attention", [q, k, v, mask], result_type,
                   {"scale": ir.FloatAttr.get(ir.F32Type.get(), scale),
                    "causal": ir.BoolAttr.get(causal)},
                   segments=[1, 1, 1, int(mask is not None)])


def rms_norm(x, result_type, *, weight=None, epsilon: float, normalized_ndim: int = 1):
    ir = _ir_of(x)
    return _create(ir, "ember.rms_norm", [x, weight], result_type,
                   {"epsilon": ir.FloatAttr.get(ir.F32Type.get(), epsilon),
                    "normalized_ndim": ir.IntegerAttr.get(ir.IntegerType.get_signless(64),
                                                          normalized_ndim)},
                   segments=[1, int(weight is not None)])


def rotary_embedding(x, cos, sin, result_type=None):
    ir = _ir_of(x)
    return _create(ir, "ember.rotary_embedding", [x, cos, sin], result_type or x.type, {})


def slice_(x, result_type, *, axis: int, start: int, size: int):
    ir = _ir_of(x)
    i64 = ir.IntegerType.get_signless(64)
    return _create(ir, "ember.slice", [x], result_type,
                   {"axis": ir.IntegerAttr.get(i64, axis), "start": ir.IntegerAttr.get(i64, start),
                    "size": ir.IntegerAttr.get(i64, size)})


def reduce(kind: str, x, result_type, *, axes: Sequence[int], keepdim: bool):
    ir = _ir_of(x)
    return _create(ir, "ember.reduce", [x], result_type,
                   {"kind": ir.StringAttr.get(kind),
                    "axes": ir.DenseI64ArrayAttr.get(sorted(axes)),
                    "keepdim": ir.BoolAttr.get(keepdim)})


def concat(lhs, rhs, result_type, *, axis: int):
    ir = _ir_of(lhs)
    return _create(ir, "ember.concat", [lhs, rhs], result_type,
                   {"axis": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), axis)})


def rebuild(op, result_type, **changes):
    """A copy of an ember.gemm or ember.conv2d with some operands/settings replaced.

    `changes` may set rhs/filter (the second operand), bias, residual and activation; it is how
    fusion passes grow an op's epilogue without knowing every attribute of every op.
    """
    ir = sys.modules[type(op).__module__]
    second = changes.pop("rhs", changes.pop("filter", op.operands[1]))
    epilogue = {"bias": optional_operand(op, "bias"), "residual": optional_operand(op, "residual"),
                "activation": ir.StringAttr(op.attributes["activation"]).value}
    epilogue.update(changes)
    if op.name == "ember.gemm":
        return gemm(op.operands[0], second, result_type, **epilogue)
    settings = {k: v for k, v in conv2d_attributes(op).items() if k != "activation"}
    return conv2d(op.operands[0], second, result_type, **settings, **epilogue)


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
    "ember.conv2d": ("input", "filter", "bias", "residual"),
    "ember.pool2d": ("input",),
    "ember.attention": ("query", "key", "value", "mask"),
    "ember.rms_norm": ("input", "weight"),
    "ember.rotary_embedding": ("input", "cos", "sin"),
    "ember.slice": ("input",),
    "ember.reduce": ("input",),
    "ember.concat": ("lhs", "rhs"),
    "ember.layer_norm": ("input", "weight", "bias"),
    "ember.softmax": ("input",),
    "ember.unary": ("input",),
    "ember.binary": ("lhs", "rhs"),
    "ember.transpose": ("input",),
    "ember.reshape": ("input",),
    "ember.weight": (),
}
