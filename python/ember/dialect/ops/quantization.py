"""`ember.quantize` and `ember.dequantize`: affine int8 quantization at tensor boundaries.

They carry a quantized model's own numbers (a PT2E `convert_pt2e` graph's
quantize_per_tensor / dequantize_per_tensor / dequantize_per_channel) until
ember-fold-quantized-ops turns a dequantize -> GEMM (-> quantize) chain into one int8 op; what
is left runs as the elementwise arithmetic it states. The storage type is the tensor's element
type: `ui8` (unsigned bytes) or `i8` (signed bytes).
"""
from __future__ import annotations

from typing import Optional, Tuple

from ember.dialect.attributes import F32, I64, I64Array
from ember.dialect.definition import ElementTypes, EmberOp, Operand
from ember.dialect.shapes import format_shape, shape_of, shapes_compatible

#: Storage element type -> the codes it holds.
STORAGE_RANGES = {"ui8": (0, 255), "i8": (-128, 127)}


def storage_range(value):
    """(lowest, highest) code of a quantized tensor value, or None when it is not one."""
    return STORAGE_RANGES.get(str(value.type.element_type))


def unsigned_codes(value) -> bool:
    """Whether a quantized tensor value holds unsigned bytes (ui8)."""
    return str(value.type.element_type) == "ui8"


def quantized_result_problem(result, scale, zero_point, code_range) -> Optional[str]:
    """What is wrong with an int8 op's result settings (None: nothing): an f32 result, or
    codes (ui8/i8) with result_scale > 0, result_zero_point and result_range = [lo, hi],
    lo <= zero point <= hi within the storage range; the three go together."""
    parts = (scale, zero_point, code_range)
    element = str(result.type.element_type)
    if all(p is None for p in parts):
        return None if element == "f32" else \
            f"result must be f32 (or codes with result_scale), got {element}"
    if any(p is None for p in parts):
        return "result_scale, result_zero_point and result_range go together"
    bounds = storage_range(result)
    if bounds is None:
        return f"a quantized result must be ui8 or i8, got {element}"
    lo, hi = (list(code_range) + [None, None])[:2]
    if len(code_range) != 2 or not bounds[0] <= lo <= zero_point <= hi <= bounds[1] or \
            not scale > 0:
        return f"quantized result: scale {scale} must be positive and " \
               f"{bounds[0]} <= lo <= zero point <= hi <= {bounds[1]}, got " \
               f"{code_range} and zero point {zero_point}"
    return None


def result_code_attributes():
    """Fresh declarations of (result_scale, result_zero_point, result_range), the attributes
    of an op that quantizes its result in its epilogue (checked by quantized_result_problem)."""
    return (F32(optional=True, doc=(
        "with result_zero_point and result_range: the result is quantized after the epilogue "
        "(clamp(roundeven(y / scale) + zero point, lo, hi)), ui8 or i8 codes")),
        I64(optional=True), I64Array(optional=True, doc="lo, hi: the result codes' range"))


class QuantizedResult:
    """What an op declaring `result_code_attributes()` knows of its result."""

    @property
    def quantized_result(self) -> bool:
        """Whether the result is codes (result_scale, result_zero_point, result_range)."""
        return self.result_scale is not None

    def result_quantization(self) -> Optional[Tuple[float, int, int, int]]:
        """(inverse scale, zero point, lo, hi): how the epilogue's f32 values become the
        result's codes (as ember.quantize: a multiply by the reciprocal); None for f32."""
        if not self.quantized_result:
            return None
        return (1.0 / self.result_scale, self.result_zero_point, *self.result_range)

    def result_code_settings(self) -> dict:
        """The result_* attributes as keyword arguments of a build (empty for f32), for a
        rewrite that replaces the op by another writing the same codes."""
        if not self.quantized_result:
            return {}
        return dict(result_scale=self.result_scale, result_zero_point=self.result_zero_point,
                    result_range=list(self.result_range))

    def result_codes_problem(self) -> Optional[str]:
        """What is wrong with the result's settings (quantized_result_problem), or None."""
        return quantized_result_problem(self.result, self.result_scale, self.result_zero_point,
                                        self.result_range)


def static_codes_problem(codes, scale, zero_point) -> Optional[str]:
    """What is wrong with an int8 op's input codes (None: nothing): ui8 or i8 codes standing
    for (code - zero_point) * scale, scale > 0, the zero point within the storage range."""
    bounds = storage_range(codes)
    if bounds is None:
        return f"codes must be ui8 or i8, got {codes.type.element_type}"
    if not scale > 0 or not bounds[0] <= zero_point <= bounds[1]:
        return f"codes: scale {scale} must be positive and zero point {zero_point} within " \
               f"[{bounds[0]}, {bounds[1]}]"
    return None


def _check_scale_and_zero_point(scale: float, zero_point: int, lo: int, hi: int) -> Optional[str]:
    if not scale > 0.0:
        return f"scale must be positive, got {scale}"
    if not lo <= zero_point <= hi:
        return f"zero_point {zero_point} lies outside the storage range [{lo}, {hi}]"
    return None


class Quantize(EmberOp):
    """Affine quantization, per tensor:
    `result = clamp(roundeven(input / scale) + zero_point, quant_min, quant_max)`, stored in
    the result's element type (ui8 or i8); input is f32 of the result's shape."""
    op_name = "ember.quantize"
    element_types = ElementTypes.ANY

    input = Operand()
    scale = F32()
    zero_point = I64()
    quant_min = I64()
    quant_max = I64()

    def verify(self) -> Optional[str]:
        if str(self.input.type.element_type) != "f32":
            return f"input must be f32, got {self.input.type.element_type}"
        bounds = storage_range(self.result)
        if bounds is None:
            return f"result must be ui8 or i8, got {self.result.type.element_type}"
        if not shapes_compatible(shape_of(self.input) or [], shape_of(self.result) or []):
            return "result must have the input's shape"
        lo, hi = bounds
        if not lo <= self.quant_min <= self.quant_max <= hi:
            return f"[quant_min, quant_max] = [{self.quant_min}, {self.quant_max}] must lie " \
                   f"within the storage range [{lo}, {hi}]"
        return _check_scale_and_zero_point(self.scale, self.zero_point, lo, hi)


class Dequantize(EmberOp):
    """Affine dequantization: `result = (input - zero_point) * scale` in f32, input ui8 or i8.

    Per tensor: the `scale` and `zero_point` attributes. Per channel: the `scales` (f32 [C])
    and `zero_points` (integer [C]) operands along dimension `axis` of size C, as PT2E stores
    a weight's (its zero points all 0 under symmetric quantization)."""
    op_name = "ember.dequantize"
    element_types = ElementTypes.ANY

    input = Operand()
    scales = Operand(optional=True)
    zero_points = Operand(optional=True)
    scale = F32(optional=True)
    zero_point = I64(optional=True)
    axis = I64(optional=True)

    @property
    def per_channel(self) -> bool:
        return self.scales is not None

    def verify(self) -> Optional[str]:
        bounds = storage_range(self.input)
        if bounds is None:
            return f"input must be ui8 or i8, got {self.input.type.element_type}"
        if str(self.result.type.element_type) != "f32":
            return f"result must be f32, got {self.result.type.element_type}"
        shape = shape_of(self.input) or []
        if not shapes_compatible(shape, shape_of(self.result) or []):
            return "result must have the input's shape"
        per_tensor = (self.scale, self.zero_point)
        per_channel = (self.scales, self.zero_points, self.axis)
        if all(v is not None for v in per_tensor) and all(v is None for v in per_channel):
            return _check_scale_and_zero_point(self.scale, self.zero_point, *bounds)
        if any(v is not None for v in per_tensor) or any(v is None for v in per_channel):
            return "give either scale and zero_point (per tensor) or scales, zero_points and " \
                   "axis (per channel)"
        if not 0 <= self.axis < len(shape):
            return f"axis {self.axis} is out of range for rank {len(shape)}"
        channels = shape[self.axis]
        for name in ("scales", "zero_points"):
            s = shape_of(getattr(self, name))
            if s is None or len(s) != 1 or not shapes_compatible(s, [channels]):
                return f"{name} must be 1-D of size {channels} (input dim {self.axis} of " \
                       f"{format_shape(shape)})"
        if str(self.scales.type.element_type) != "f32":
            return "scales must be f32"
        return None
