"""`ember.conv2d` and `ember.pool2d`: the sliding-window ops, in NCHW or NHWC layout; and
`ember.qdepthwise_conv2d`, an int8 depthwise convolution on NHWC codes."""
from __future__ import annotations

from typing import Optional, Sequence

from ember.dialect.attributes import F32, I64, I64Array, OneOf
from ember.dialect.definition import ElementTypes, EmberOp, Operand
from ember.dialect.enums import ACTIVATIONS, CONV_LAYOUTS, POOL_KINDS
from ember.dialect.ops.quantization import QuantizedResult, result_code_attributes, \
    static_codes_problem
from ember.dialect.shapes import (conv2d_output_size, dims_compatible, format_shape, shape_of,
                                  shapes_compatible)

_PAIR = "2 values (one per spatial dim)"


def _window_error(**pairs: Sequence[int]) -> Optional[str]:
    """The broken rule among a window op's pair attributes (padding may be 0), or None."""
    for field, values in pairs.items():
        if len(values) != 2 or min(values) < (0 if field == "padding" else 1):
            kind = "non-negative" if field == "padding" else "positive"
            return f"{field} must be 2 {kind} values, got {values}"
    return None


class Conv2d(EmberOp):
    """2-D convolution with a fused epilogue: `result = residual + act(conv(input, filter) +
    bias)`.

    layout "nchw": input [N, C, H, W], filter [F, C/groups, KH, KW], result [N, F, OH, OW];
    layout "nhwc": input [N, H, W, C], filter [KH, KW, C/groups, F], result [N, OH, OW, F].
    Zero padding is symmetric per spatial dim. bias is [F]; residual has the result's shape.
    groups is 1 (dense) or C = F (depthwise)."""
    op_name = "ember.conv2d"

    input = Operand()
    filter = Operand()
    bias = Operand(optional=True)
    residual = Operand(optional=True)
    strides = I64Array(default=(1, 1), doc=_PAIR)
    padding = I64Array(default=(0, 0), doc=_PAIR)
    dilations = I64Array(default=(1, 1), doc=_PAIR)
    groups = I64(default=1)
    activation = OneOf(ACTIVATIONS, what="activation", default="none")
    layout = OneOf(CONV_LAYOUTS, what="layout", default="nchw")

    def verify(self) -> Optional[str]:
        error = _window_error(strides=self.strides, padding=self.padding,
                              dilations=self.dilations)
        if error:
            return error
        x, w, res = shape_of(self.input), shape_of(self.filter), shape_of(self.result)
        if x is None or w is None or res is None or len(x) != 4 or len(w) != 4 or len(res) != 4:
            return "input, filter and result must be rank-4 tensors"
        if self.layout == "nchw":
            (n, c, h, wd), (f, cg, kh, kw), (rn, rf, rh, rw) = x, w, res
        else:
            (n, h, wd, c), (kh, kw, cg, f), (rn, rh, rw, rf) = x, w, res
        groups = self.groups
        if groups != 1 and not (groups == c == f and cg == 1):
            return f"groups must be 1 or equal input and output channels (depthwise), got " \
                   f"{groups}"
        if not dims_compatible(c, None if cg is None else cg * groups):
            return f"filter expects {cg * groups} input channels, input has {c}"
        expected = [n, f] + [conv2d_output_size(s, k, st, p, d) for s, k, st, p, d in
                             zip((h, wd), (kh, kw), self.strides, self.padding, self.dilations)]
        if not shapes_compatible([rn, rf, rh, rw], expected):
            return f"result shape {format_shape(res)} does not match the convolution's " \
                   f"{format_shape(expected)} (N, F, OH, OW)"
        if self.bias is not None and not shapes_compatible(shape_of(self.bias) or [], [f]):
            return f"bias must be 1-D of size F={f}, got " \
                   f"{format_shape(shape_of(self.bias) or [])}"
        if self.residual is not None and \
                not shapes_compatible(shape_of(self.residual) or [], res):
            return f"residual shape {format_shape(shape_of(self.residual) or [])} must equal " \
                   f"the result shape {format_shape(res)}"
        return None


class QDepthwiseConv2d(QuantizedResult, EmberOp):
    """int8 depthwise convolution on NHWC codes (a quantized model's depthwise conv, made by
    ember-fold-quantized-ops): input ui8/i8 codes [N, H, W, C] standing for
    `(code - input_zero_point) * input_scale`, padded with the zero point (the code of 0.0);
    filter i8 [KH, KW, C] with one symmetric scale per channel (`filter_scale` f32 [C]). The
    int32 sums of (code - zero point) x filter are dequantized by input_scale x
    filter_scale[c], then bias [C] and the activation apply; the result is f32 [N, OH, OW, C],
    or codes when result_scale, result_zero_point and result_range are set (requantized in
    the epilogue)."""
    op_name = "ember.qdepthwise_conv2d"
    element_types = ElementTypes.ANY

    input = Operand()
    filter = Operand()
    filter_scale = Operand()
    bias = Operand(optional=True)
    strides = I64Array(default=(1, 1), doc=_PAIR)
    padding = I64Array(default=(0, 0), doc=_PAIR)
    dilations = I64Array(default=(1, 1), doc=_PAIR)
    input_scale = F32(doc="the scale of the input codes")
    input_zero_point = I64(doc="the zero point of the input codes")
    activation = OneOf(ACTIVATIONS, what="activation", default="none")
    result_scale, result_zero_point, result_range = result_code_attributes()

    def verify(self) -> Optional[str]:
        error = _window_error(strides=self.strides, padding=self.padding,
                              dilations=self.dilations)
        problem = error or static_codes_problem(self.input, self.input_scale,
                                                self.input_zero_point)
        problem = problem or self.result_codes_problem()
        if problem:
            return problem
        x, w, res = shape_of(self.input), shape_of(self.filter), shape_of(self.result)
        if x is None or w is None or res is None or len(x) != 4 or len(w) != 3 or len(res) != 4:
            return "input and result must be rank-4 tensors (NHWC), filter rank 3 [KH, KW, C]"
        if str(self.filter.type.element_type) != "i8":
            return f"filter must be i8, got {self.filter.type.element_type}"
        n, h, wd, c = x
        kh, kw, fc = w
        if not dims_compatible(c, fc):
            return f"filter has {fc} channels, input {c}"
        expected = [n] + [conv2d_output_size(s, k, st, p, d) for s, k, st, p, d in
                          zip((h, wd), (kh, kw), self.strides, self.padding, self.dilations)] + [c]
        if not shapes_compatible(res, expected):
            return f"result shape {format_shape(res)} does not match the convolution's " \
                   f"{format_shape(expected)} (N, OH, OW, C)"
        for name in ("filter_scale", "bias"):
            value = getattr(self, name)
            if value is not None and (str(value.type.element_type) != "f32" or
                                      not shapes_compatible(shape_of(value) or [], [c])):
                return f"{name} must be f32 [{c}]"
        return None


class Pool2d(EmberOp):
    """2-D max or average pooling over windows of `kernel` (zero-padded for avg, -inf for max;
    an average divides by the full window, padding included, as PyTorch's default).

    layout "nchw": input [N, C, H, W]; "nhwc": input [N, H, W, C]."""
    op_name = "ember.pool2d"

    input = Operand()
    kind = OneOf(POOL_KINDS, what="pooling kind")
    kernel = I64Array(doc=_PAIR)
    strides = I64Array(doc=_PAIR)
    padding = I64Array(default=(0, 0), doc=_PAIR + ", at most half the kernel")
    layout = OneOf(CONV_LAYOUTS, what="layout", default="nchw")

    def verify(self) -> Optional[str]:
        error = _window_error(kernel=self.kernel, strides=self.strides, padding=self.padding)
        if error:
            return error
        kernel, strides, padding = self.kernel, self.strides, self.padding
        if any(2 * p > k for p, k in zip(padding, kernel)):
            return f"padding {padding} must be at most half the kernel {kernel}"
        x, res = shape_of(self.input), shape_of(self.result)
        if x is None or res is None or len(x) != 4 or len(res) != 4:
            return "input and result must be rank-4 tensors"
        spatial = (2, 3) if self.layout == "nchw" else (1, 2)
        expected = list(x)
        for d, k, st, p in zip(spatial, kernel, strides, padding):
            expected[d] = conv2d_output_size(x[d], k, st, p, 1)
        if not shapes_compatible(res, expected):
            return f"result shape {format_shape(res)} does not match the pooled shape " \
                   f"{format_shape(expected)}"
        return None
