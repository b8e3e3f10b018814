"""What a GEMM kernel function computes, as a frozen dataclass that is also its attribute.

C[M, N] = residual + act(A[M, K] @ B + bias), the contract between the pass that outlines a
GEMM into a kernel function and the generator that later writes its body. Besides float
operands, A and B may be int8 codes (ember.qgemm: `int8`) or B low-bit codes with group scales
(weight-only quantization: `weights`); these fields decide the kernel's arguments, which both
targets' kernels take in the same order. The CPU spec (ember.kit.gemm_kernel_spec) adds the
packed and implicit-im2col layouts, the GPU spec (ember.backends.gpu.simt_gemm) the layouts its
tensor-core kernel reads; both are encoded by the one codec of ember.kit.attr_codec.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

from mlir import ir

from ember.kit.attr_codec import from_attr, omitted_at_default, to_attr


@dataclass(frozen=True)
class GemmSpec:
    """C[M, N] = residual + act(A[M, K] @ B + bias); `m` is None when M is dynamic."""
    m: Optional[int]
    n: int
    k: int
    activation: str = "none"
    bias: bool = False
    residual: bool = False
    #: An int8 kernel's activation encoding ("s8", "u8", "u7"; see ember.quant.schemes), "" for
    #: float operands: A and B are int8 codes, and after B come the row scales f32 [M] (not
    #: with `lhs_scale`), the column scales f32 [N] and the compensation i32 [N] (zero point x
    #: column sums; ember.qgemm).
    int8: str = omitted_at_default("")
    #: B's element type when only B differs from A: "f16", "bf16" (an f32 GEMM on a 16-bit
    #: weight, ember-implicit-precision), "i8" or "i4" (low-bit codes of weight-only
    #: quantization, 4-bit ones two per byte, the even k in the low nibble; after B come the
    #: group scales and, with `offsets`, the group offsets, f32, one per `group` rows of K and
    #: column); "" B as A.
    weights: str = omitted_at_default("")
    #: Low-bit B: the rows of K sharing one scale (and offset).
    group: int = omitted_at_default(0)
    #: Low-bit B: whether the codes have group offsets (w = q * scale + offset).
    offsets: bool = omitted_at_default(False)
    #: A static int8 kernel's one scale of A's codes (a calibrated activation): the kernel
    #: takes no row scales (0.0: row scales f32 [M], one per row, computed at run time).
    lhs_scale: float = omitted_at_default(0.0)
    #: An int8 kernel's activation after the residual ("" none; ember.qgemm's
    #: output_activation).
    output_activation: str = omitted_at_default("")
    #: An int8 kernel whose C holds bytes: the scale and (zero point, lowest, highest code) it
    #: quantizes each result to after the epilogue (ember.qgemm's result_* attributes).
    out_scale: float = omitted_at_default(0.0)
    out_codes: Tuple[int, ...] = omitted_at_default(())
    #: An int8 kernel whose residual holds bytes: their scale and (zero point, lowest,
    #: highest storable code: 0 for unsigned bytes), dequantized where the residual is added
    #: (ember.qgemm's residual_* attributes).
    residual_scale: float = omitted_at_default(0.0)
    residual_codes: Tuple[int, ...] = omitted_at_default(())

    @property
    def out_quantization(self) -> Optional[Tuple[float, int, int, int]]:
        """(inverse scale, zero point, lo, hi) a kernel writing codes quantizes its results
        with (ember.kit.scalar_math.quantize_code's arguments); None for float results."""
        if not self.out_scale:
            return None
        return (1.0 / self.out_scale, *self.out_codes)

    @property
    def residual_dequantization(self) -> Optional[Tuple[float, int, bool]]:
        """(scale, zero point, whether the bytes are unsigned) of a residual of codes; None
        for an f32 one."""
        if not self.residual_scale:
            return None
        zero_point, lowest, _ = self.residual_codes
        return self.residual_scale, zero_point, lowest == 0

    @property
    def low_bit(self) -> bool:
        """Whether B holds low-bit codes with group scales."""
        return self.weights in ("i8", "i4")

    def arg_names(self) -> List[str]:
        """The kernel function's arguments, in order: A, B, [the int8 scales and compensation
        | the low-bit group scales and offsets], [bias], [residual], C (written)."""
        scales = ["lhs_scale"] * (not self.lhs_scale) + ["rhs_scale", "rhs_compensation"] \
            if self.int8 else \
            ["rhs_scale"] + ["rhs_offset"] * self.offsets if self.low_bit else []
        return ["lhs", "rhs"] + scales + ["bias"] * self.bias + ["residual"] * self.residual + \
            ["out"]

    def attr(self) -> ir.DictAttr:
        return to_attr(self)

    @classmethod
    def from_attr(cls, attr):
        return from_attr(cls, attr)
