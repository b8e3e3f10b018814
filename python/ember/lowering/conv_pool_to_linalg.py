"""ember.conv2d and ember.pool2d -> linalg's named convolutions and poolings.

The input is padded first (tensor.pad), the accumulator filled with the reduction's identity;
a conv's epilogue (bias, activation, residual) follows as one elementwise op and average
pooling divides the window sums by the window's area. These are the fallback for the convs
ember-conv-to-gemm and ember-conv-winograd leave alone (NCHW, grouped, depthwise, ...).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ember.dialect.ops import Conv2d, Pool2d
from ember.kit.builders import constant
from ember.kit.epilogue import accumulator_type, epilogue_op
from ember.kit.structured import LOWEST_F32, element_type, elementwise, filled, pad_spatial, \
    tensor_shape


def _collapse_depthwise_filter(w, layout: str):
    """[C, 1, KH, KW] -> [C, KH, KW] (nchw) or [KH, KW, 1, C] -> [KH, KW, C] (nhwc)."""
    shape = tensor_shape(w)
    if layout == "nchw":
        kept, groups = [shape[0], shape[2], shape[3]], [[0, 1], [2], [3]]
    else:
        kept, groups = [shape[0], shape[1], shape[3]], [[0], [1], [2, 3]]
    result_type = ir.RankedTensorType.get(kept, element_type(w))
    return tensor.CollapseShapeOp(result_type, w, groups).result


#: (layout, depthwise) -> linalg named convolution builder.
_CONVOLUTIONS = {
    ("nchw", False): linalg.conv_2d_nchw_fchw,
    ("nhwc", False): linalg.conv_2d_nhwc_hwcf,
    ("nchw", True): linalg.depthwise_conv_2d_nchw_chw,
    ("nhwc", True): linalg.depthwise_conv_2d_nhwc_hwc,
}


def lower_conv2d(op: Conv2d):
    x, w, layout = op.input, op.filter, op.layout
    spatial, channel = ((2, 3), 1) if layout == "nchw" else ((1, 2), 3)
    depthwise = op.groups != 1
    padded = pad_spatial(x, spatial, op.padding)
    out_type = op.result.type
    acc = filled(accumulator_type(out_type), [(x, 0), None, None, None], 0.0)
    filt = _collapse_depthwise_filter(w, layout) if depthwise else w
    conv = _CONVOLUTIONS[(layout, depthwise)](padded, filt, outs=[acc],
                                              strides=op.strides, dilations=op.dilations)
    return epilogue_op(conv, out_type, bias=op.bias, residual=op.residual,
                       activation=op.activation, channel_axis=channel)


#: (kind, layout) -> linalg named pooling builder.
_POOLINGS = {
    ("max", "nchw"): linalg.pooling_nchw_max,
    ("max", "nhwc"): linalg.pooling_nhwc_max,
    ("avg", "nchw"): linalg.pooling_nchw_sum,
    ("avg", "nhwc"): linalg.pooling_nhwc_sum,
}


def lower_pool2d(op: Pool2d):
    x, kind, layout, kernel = op.input, op.kind, op.layout, op.kernel
    spatial = (2, 3) if layout == "nchw" else (1, 2)
    init_value = LOWEST_F32 if kind == "max" else 0.0
    padded = pad_spatial(x, spatial, op.padding, init_value)
    out_type = op.result.type
    acc = filled(out_type, [(x, 0), None, None, (x, 3)], init_value)
    window = tensor.empty(kernel, element_type(x))
    pooled = _POOLINGS[(kind, layout)](padded, window, outs=[acc], strides=op.strides,
                                       dilations=[1, 1])
    if kind == "max":
        return pooled
    area = float(kernel[0] * kernel[1])
    return elementwise([pooled], out_type, lambda v: arith.divf(v, constant(area, v.type)))
