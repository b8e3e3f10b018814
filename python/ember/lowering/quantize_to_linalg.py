"""ember.quantize / ember.dequantize -> elementwise linalg, in PyTorch's order of operations.

    quantize:   clamp(roundeven(x * (1 / scale)) + zero_point, quant_min, quant_max) -> bytes
    dequantize: (float(code) - zero_point) * scale           (per tensor, or per channel)

Linalg and arith compute on signless integers, so a ui8 tensor is read through
`tensor.bitcast` to i8 (`signless`) and a ui8 result is written as i8 and cast back
(`with_storage_type`). Once every ember op is lowered, nothing reads the signedness any more:
`drop_unsigned_types` retypes what is left of ui8 (the bytes data movement ops pass along) to
i8 and removes the casts, which bufferization could not handle.
"""
from __future__ import annotations

from typing import Optional

from mlir import ir
from mlir.dialects import arith, tensor

from ember.dialect.ops import Dequantize, Quantize
from ember.dialect.ops.quantization import unsigned_codes
from ember.kit.scalar_math import dequantize_code, quantize_code
from ember.kit.structured import PARALLEL, elementwise, empty_like, generic, identity_map, \
    tensor_shape

_F32 = ir.F32Type.get


def signless(value):
    """`value` with its ui8 elements read as (signless) i8 bytes; other tensors unchanged."""
    t = ir.RankedTensorType(value.type)
    if not isinstance(t.element_type, ir.IntegerType) or t.element_type.is_signless:
        return value
    width = ir.IntegerType(t.element_type).width
    return tensor.bitcast(ir.RankedTensorType.get(t.shape, ir.IntegerType.get_signless(width)),
                          value)


def with_storage_type(value, storage_type):
    """A signless tensor `value` cast back to `storage_type` (ui8) where that differs."""
    return value if value.type == storage_type else tensor.bitcast(storage_type, value)


def lower_quantize(op: Quantize):
    storage = ir.RankedTensorType(op.result.type)
    i8_type = ir.RankedTensorType.get(storage.shape, ir.IntegerType.get_signless(8))
    inverse = 1.0 / op.scale                     # as PyTorch: the reciprocal, then a multiply
    codes = elementwise([op.input], i8_type, lambda x: quantize_code(
        x, inverse, op.zero_point, op.quant_min, op.quant_max))
    return with_storage_type(codes, storage)


def lower_dequantize(op: Dequantize):
    if not op.per_channel:
        return dequantized(op.input, op.scale, op.zero_point)
    unsigned = unsigned_codes(op.input)
    codes = signless(op.input)
    out_type = ir.RankedTensorType(op.result.type)
    rank = len(tensor_shape(codes))
    init = empty_like(out_type, [(codes, i) for i in range(rank)])
    along = identity_map(rank, [op.axis])

    def body(c, scale, zero_point, _out):
        return dequantize_code(c, scale, arith.sitofp(_F32(), zero_point), unsigned)
    return generic([codes, op.scales, op.zero_points], init,
                   [identity_map(rank), along, along, identity_map(rank)], [PARALLEL] * rank,
                   body)


def dequantized(codes, scale: float, zero_point: int, unsigned: Optional[bool] = None):
    """f32 (codes - zero_point) * scale of a tensor of codes, per tensor: ui8 or i8, or
    bytes read unsigned if `unsigned`."""
    out_type = ir.RankedTensorType.get(ir.RankedTensorType(codes.type).shape, _F32())
    unsigned = unsigned_codes(codes) if unsigned is None else unsigned
    return elementwise([signless(codes)], out_type,
                       lambda c: dequantize_code(c, scale, zero_point, unsigned))


def _signless_type(t):
    """`t` with unsigned integer elements made signless (tensors, integers), or None when it
    has none."""
    if isinstance(t, ir.RankedTensorType):
        tensor_type = t
        element = _signless_type(tensor_type.element_type)
        return None if element is None else \
            ir.RankedTensorType.get(tensor_type.shape, element, tensor_type.encoding)
    if isinstance(t, ir.IntegerType) and t.is_unsigned:
        return ir.IntegerType.get_signless(t.width)
    return None


def drop_unsigned_types(module) -> None:
    """Retypes every unsigned integer value (op results, block arguments and the functions'
    signatures) as signless and erases the tensor.bitcasts that become no-ops."""
    casts = []

    def visit(op):
        op = op.operation
        for value in list(op.results):
            new = _signless_type(value.type)
            if new is not None:
                value.set_type(new)
        for region in op.regions:
            for block in region.blocks:
                for arg in block.arguments:
                    new = _signless_type(arg.type)
                    if new is not None:
                        arg.set_type(new)
        if op.name == "func.func":
            fn_type = ir.FunctionType(ir.TypeAttr(op.attributes["function_type"]).value)
            retype = [[_signless_type(t) or t for t in ts]
                      for ts in (fn_type.inputs, fn_type.results)]
            op.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(*retype))
        if op.name == "tensor.bitcast":
            casts.append(op)
        return ir.WalkResult.ADVANCE
    module.operation.walk(visit)
    for cast in casts:
        if cast.operands[0].type == cast.results[0].type:
            cast.results[0].replace_all_uses_with(cast.operands[0])
            cast.erase()
