"""ember.qdepthwise_conv2d -> linalg: the int32 window sums, then the qgemm's epilogue.

    codes [N, H, W, C] --pad with the zero point--> [N, H + 2PH, W + 2PW, C]
    acc i32 [N, OH, OW, C] = sum over (kh, kw) of (code - zp) * filter[kh, kw, c]
        (iteration space (n, oh, ow, kh, kw, c): the channel loop is innermost and runs along
        contiguous codes, filter rows and results, so it vectorizes as elementwise work)
    result = the int8 GEMM epilogue on acc seen as [N*OH*OW, C] (qgemm_to_linalg's
        dequantize_products: input_scale x filter_scale[c], bias, activation, requantize)

Exact integer sums, then the one dequantization order every int8 op of ember uses.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, tensor

from ember.dialect.ops import QDepthwiseConv2d
from ember.dialect.ops.quantization import unsigned_codes
from ember.kit.builders import constant
from ember.kit.structured import PARALLEL, REDUCTION, empty_like, filled, generic, \
    tensor_shape
from ember.lowering.gemm_to_linalg import from_row_matrix
from ember.lowering.qgemm_to_linalg import dequantize_products, zero_point_padded
from ember.lowering.quantize_to_linalg import signless, with_storage_type


def _window_sums(padded, filt, op: QDepthwiseConv2d, unsigned: bool):
    """i32 [N, OH, OW, C]: sum_{kh, kw} (padded[n, oh*SH + kh*DH, ow*SW + kw*DW, c] - zp) *
    filter[kh, kw, c]."""
    i32 = ir.IntegerType.get_signless(32)
    out = ir.RankedTensorType(op.result.type)
    acc = filled(ir.RankedTensorType.get(out.shape, i32), [(padded, 0), None, None, None], 0)
    (sh, sw), (dh, dw) = op.strides, op.dilations
    n, oh, ow, kh, kw, c = (ir.AffineDimExpr.get(i) for i in range(6))
    maps = [ir.AffineMap.get(6, 0, [n, oh * sh + kh * dh, ow * sw + kw * dw, c]),
            ir.AffineMap.get(6, 0, [kh, kw, c]), ir.AffineMap.get(6, 0, [n, oh, ow, c])]
    zp = constant(op.input_zero_point, i32)

    def mac(x, w, total):
        code = arith.extui(i32, x) if unsigned else arith.extsi(i32, x)
        return arith.addi(total, arith.muli(arith.subi(code, zp), arith.extsi(i32, w)))
    return generic([padded, filt], acc, maps, [PARALLEL] * 3 + [REDUCTION] * 2 + [PARALLEL], mac)


def lower_qdepthwise_conv2d(op: QDepthwiseConv2d):
    storage_type = ir.RankedTensorType(op.result.type)
    f32 = ir.F32Type.get()
    codes = zero_point_padded(signless(op.input), [0] * 6 + list(op.padding),
                              op.input_zero_point)
    sums = _window_sums(codes, op.filter, op, unsigned_codes(op.input))
    channels = storage_type.shape[-1]
    dyn = ir.ShapedType.get_dynamic_size()
    lead = tensor_shape(sums)[:-1]
    m = None if None in lead else lead[0] * lead[1] * lead[2]
    rows = tensor.collapse_shape(ir.RankedTensorType.get(
        [dyn if m is None else m, channels], ir.IntegerType.get_signless(32)), sums,
        [[0, 1, 2], [3]])
    element = f32 if not op.quantized_result else ir.IntegerType.get_signless(8)
    matrix_type = ir.RankedTensorType.get([dyn if m is None else m, channels], element)
    init = empty_like(matrix_type, [(rows, 0), None])
    result = dequantize_products(rows, op.input_scale, op.filter_scale, None, op.bias, None,
                                 op.activation, init, op.result_quantization())
    value_type = ir.RankedTensorType.get(storage_type.shape, element)
    return with_storage_type(from_row_matrix(result, sums, value_type), storage_type)
