"""`ember.gemm`, `ember.qgemm` and `ember.attention`: the matrix-multiply ops."""
from __future__ import annotations

from typing import Optional, Union

from ember.dialect.attributes import I64, Bool, F32, I64Array, OneOf
from ember.dialect.definition import ElementTypes, EmberOp, Operand
from ember.dialect.enums import ACTIVATIONS, ATTENTION_LAYOUTS, FLOAT_TYPES, INT8_ENCODINGS
from ember.dialect.ops.quantization import QuantizedResult, result_code_attributes, \
    static_codes_problem, storage_range, unsigned_codes
from ember.dialect.shapes import (Shape, broadcast_shape, dims_compatible, format_shape,
                                  heads_major, patch_matrix_shape, shape_of, shapes_compatible)


class Gemm(QuantizedResult, EmberOp):
    """GEMM with a fused epilogue: `result = residual + act(lhs @ rhs + bias)`.

    lhs is [..., M, K]; rhs is [K, N] (shared by every batch) or [..., K, N] with lhs's batch
    dims; bias broadcasts along the last dim ([N]); residual has the result's shape. All share
    one float type, but an f32 GEMM's rhs may be f16 or bf16 (a 16-bit weight, widened as it is
    read: ember-implicit-precision) or low-bit codes.

    Low-bit weight (weight-only quantization, `rhs_scale` set; ember.quant.low_bit): rhs is i8
    codes [K, N] of `rhs_bits` bits (8: signed; 4: unsigned nibbles, one per byte) standing for
    `rhs[k, n] * rhs_scale[k / G, n] + rhs_offset[k / G, n]` with G = `rhs_group` (scale and
    offset f32 [ceil(K/G), N]; no offset: 0). Packed (`rhs_panel = NR`): codes, scales and
    offsets in NR-column panels, [ceil(N/NR), K, NR] (4 bits: [.., K/2, ..] bytes holding the
    even k in the low nibble, K even) and [ceil(N/NR), ceil(K/G), NR].

    An f32 GEMM may write codes (`result_scale`, `result_zero_point`, `result_range` set, as
    ember-fold-quantized-ops makes of a float layer whose output an int8 layer reads): its
    epilogue's values quantized as ember.quantize does, ui8 or i8.

    An integer GEMM: i16 lhs and rhs, an i32 result, the exact sums of the products (wrapping
    modulo 2^32), no epilogue; the Winograd-domain products of an int8 convolution
    (ember-qconv-winograd), whose operands outgrow bytes."""
    op_name = "ember.gemm"
    element_types = ElementTypes.ANY        # checked in verify (packed bf16 pairs are i32)

    lhs = Operand()
    rhs = Operand()
    bias = Operand(optional=True)
    residual = Operand(optional=True)
    rhs_scale = Operand(optional=True)
    rhs_offset = Operand(optional=True)
    activation = OneOf(ACTIVATIONS, what="activation", default="none")
    rhs_panel = I64(optional=True, doc=(
        "NR, set by ember-pack-weights: rhs is [ceil(N/NR), K, NR], the [K, N] matrix in "
        "NR-column panels (rhs[k, n] at [n / NR, k, n % NR], zero-padded)"))
    rhs_bits = I64(optional=True, doc="with rhs_scale: 8 or 4, the width of rhs's codes")
    rhs_group = I64(optional=True, doc=(
        "with rhs_scale: G, the rows of K sharing one scale and offset (even for 4 bits)"))
    rhs_pairs = Bool(optional=True, doc=(
        "with rhs_panel, set by ember-pack-weights for a bf16 dot-product kernel (AMX-BF16): "
        "rhs is i32 [ceil(N/NR), K/2, NR], each word two consecutive k of one column "
        "(bf16 bits, the even k in the low half); lhs and the result are bf16, K even (with "
        "lhs_patches: C even); an integer GEMM's i16 weight likewise"))
    lhs_patches = I64Array(optional=True, doc=(
        "KH, KW, SH, SW, DH, DW, set by ember-conv-to-gemm: lhs is a zero-padded NHWC input "
        "[N, Hp, Wp, C] standing for its im2col patch matrix [N, OH, OW, KH*KW*C], element "
        "(n, oh, ow, (kh*KW + kw)*C + c) = lhs[n, oh*SH + kh*DH, ow*SW + kw*DW, c], "
        "OH = (Hp - DH*(KH-1) - 1) / SH + 1 (OW alike): a convolution as a GEMM that never "
        "materializes the patches"))
    result_scale, result_zero_point, result_range = result_code_attributes()

    def verify(self) -> Optional[str]:
        lhs, rhs, res = shape_of(self.lhs), shape_of(self.rhs), shape_of(self.result)
        if lhs is None or rhs is None or res is None:
            return "operands and result must be ranked tensors"
        if _element(self.lhs) == "i16":
            return self._integer_problem()
        codes = self.quantized_result or storage_range(self.result) is not None
        if codes:
            problem = self.result_codes_problem()
            if problem:
                return problem
            if _element(self.lhs) != "f32":
                return f"a GEMM writing codes computes in f32, got a {_element(self.lhs)} lhs"
        # Every operand and the result share one float type, but packed bf16 pairs (i32),
        # the 16-bit weight of an f32 GEMM (ember-implicit-precision) and low-bit codes.
        sixteen_bit_rhs = _element(self.rhs) in ("f16", "bf16") and _element(self.lhs) == "f32"
        if self.low_bit:
            problem = self._low_bit_problem(lhs, rhs)
            if problem:
                return problem
        elif self.rhs_offset is not None or self.rhs_bits is not None or \
                self.rhs_group is not None:
            return "rhs_offset, rhs_bits and rhs_group describe a low-bit rhs: they need " \
                   "rhs_scale"
        shared = [v for v in list(self.operation.operands) + [self.result]
                  if not ((self.rhs_pairs or sixteen_bit_rhs or self.low_bit) and v == self.rhs)
                  and not (codes and v == self.result)]
        types = sorted({_element(v) for v in shared})
        if len(types) != 1:
            return f"operands and result must share one element type, got {types}"
        if types[0] not in FLOAT_TYPES:
            return f"computes in floating point ({', '.join(FLOAT_TYPES)}); got {types[0]}"
        if self.lhs_patches is not None:
            lhs = self._patch_matrix(lhs)
            if isinstance(lhs, str):
                return lhs
        if len(lhs) < 2:
            return f"lhs must have rank >= 2, got {format_shape(lhs)}"
        if self.rhs_panel is not None:
            rhs = self._unpacked_rhs(lhs, rhs, res)
            if isinstance(rhs, str):
                return rhs
        if len(rhs) != 2 and len(rhs) != len(lhs):
            return f"rhs must have rank 2 or lhs's rank {len(lhs)}, got {format_shape(rhs)}"
        if not dims_compatible(lhs[-1], rhs[-2]):
            return f"contraction dims differ: lhs {format_shape(lhs)} has K={lhs[-1]}, " \
                   f"rhs {format_shape(rhs)} has K={rhs[-2]}"
        if len(rhs) == len(lhs) and not shapes_compatible(lhs[:-2], rhs[:-2]):
            return f"batch dims differ: lhs {format_shape(lhs)}, rhs {format_shape(rhs)}"
        expected = lhs[:-1] + [rhs[-1]]
        if not shapes_compatible(res, expected):
            return f"result shape {format_shape(res)} does not match lhs x rhs shape " \
                   f"{format_shape(expected)}"
        if self.bias is not None:
            b = shape_of(self.bias)
            if b is None or len(b) != 1 or not dims_compatible(b[0], rhs[-1]):
                return f"bias must be 1-D of size N={rhs[-1]}, got {format_shape(b or [])}"
        if self.residual is not None:
            r = shape_of(self.residual)
            if r is None or not shapes_compatible(r, res):
                return f"residual shape {format_shape(r or [])} must equal the result shape " \
                       f"{format_shape(res)}"
        return None

    def _integer_problem(self) -> Optional[str]:
        """What is wrong with an integer GEMM (i16 operands, rhs maybe packed in pairs), or
        None."""
        if any(v is not None for v in (self.bias, self.residual, self.rhs_scale,
                                       self.lhs_patches)) or self.activation != "none" or \
                self.quantized_result:
            return "an integer GEMM (i16 operands) has no epilogue, patches or scales"
        lhs, rhs, res = shape_of(self.lhs), shape_of(self.rhs), shape_of(self.result)
        if _element(self.result) != "i32" or len(lhs) != 2:
            return f"an integer GEMM multiplies an i16 matrix into i32, got " \
                   f"{format_shape(lhs)} {_element(self.lhs)} -> {_element(self.result)}"
        k, n = lhs[1], res[-1]
        if self.rhs_panel is None:
            expected, element = [k, n], "i16"
        elif self.rhs_pairs and k is not None and k % 2 == 0 and n is not None:
            expected, element = [-(-n // self.rhs_panel), k // 2, self.rhs_panel], "i32"
        else:
            return "a packed integer GEMM needs its rhs in pairs (rhs_pairs) and an even K"
        if not shapes_compatible(rhs, expected) or _element(self.rhs) != element or \
                not shapes_compatible(res, [lhs[0], n]):
            return f"integer GEMM: rhs must be {format_shape(expected)} {element} and the " \
                   f"result [M, N] for lhs {format_shape(lhs)}, got rhs " \
                   f"{format_shape(rhs)} {_element(self.rhs)}, result {format_shape(res)}"
        return None

    def _patch_matrix(self, lhs: Shape) -> Union[Shape, str]:
        """The logical lhs of a GEMM over implicit im2col patches, or the broken rule."""
        return patch_matrix_or_problem(self.lhs_patches, Gemm.lhs_patches.raw(self), lhs, 0)

    def _unpacked_rhs(self, lhs: Shape, rhs: Shape, res: Shape) -> Union[Shape, str]:
        """The logical [K, N] of a panel-packed rhs (`rhs_panel = NR`), or the broken rule."""
        nr = self.rhs_panel
        if nr <= 0:
            return f"rhs_panel must be a positive integer, got {Gemm.rhs_panel.raw(self)}"
        n, k = res[-1], lhs[-1]
        if n is None or k is None:
            return "a panel-packed rhs needs static K and N"
        if self.low_bit:
            expected = [-(-n // nr), k // 2 if self.rhs_bits == 4 else k, nr]
        elif self.rhs_pairs:
            channels = shape_of(self.lhs)[-1]       # patches: a pair may not span two taps
            if k % 2 or _element(self.lhs) != "bf16" or _element(self.rhs) != "i32" or \
                    (self.lhs_patches is not None and (channels is None or channels % 2)):
                return "an rhs of bf16 pairs (rhs_pairs) needs a bf16 lhs with an even K " \
                       "(patches: an even C) and i32 words"
            expected = [-(-n // nr), k // 2, nr]
        else:
            expected = [-(-n // nr), k, nr]
        if rhs != expected:
            half = self.rhs_pairs or (self.low_bit and self.rhs_bits == 4)
            return f"panel-packed rhs must be [ceil(N/{nr}), K{'/2' if half else ''}, " \
                   f"{nr}] = {format_shape(expected)} for K={k}, N={n}, got {format_shape(rhs)}"
        return [k, n]

    @property
    def low_bit(self) -> bool:
        """Whether rhs holds low-bit codes with group scales (weight-only quantization)."""
        return self.rhs_scale is not None

    def _low_bit_problem(self, lhs: Shape, rhs: Shape) -> Optional[str]:
        """The broken rule of a low-bit rhs (codes, scales, offsets), or None."""
        bits, group = self.rhs_bits, self.rhs_group
        if bits not in (4, 8) or group is None or group < 1 or (bits == 4 and group % 2):
            return f"a low-bit rhs needs rhs_bits 8 or 4 and a positive rhs_group (even for " \
                   f"4 bits), got {bits} and {group}"
        if _element(self.rhs) != "i8" or _element(self.lhs) != "f32" or \
                self.lhs_patches is not None or self.rhs_pairs:
            return f"a low-bit rhs is i8 codes multiplied by an f32 lhs of rows, got " \
                   f"{_element(self.rhs)} and {_element(self.lhs)}"
        if self.rhs_panel is None:
            if len(rhs) != 2 or None in rhs:
                return f"a low-bit rhs must be a static [K, N], got {format_shape(rhs)}"
            k, n = rhs
            expected = [-(-k // group), n]
        else:
            k, n = lhs[-1], shape_of(self.result)[-1]
            if k is None or n is None:
                return "a panel-packed rhs needs static K and N"
            if bits == 4 and k % 2:
                return f"a packed 4-bit rhs holds pairs of k: K must be even, got {k}"
            expected = [-(-n // self.rhs_panel), -(-k // group), self.rhs_panel]
        for name in ("rhs_scale", "rhs_offset"):
            value = getattr(self, name)
            if value is not None and (shape_of(value) != expected or _element(value) != "f32"):
                return f"{name} must be f32 {format_shape(expected)} (one per group of " \
                       f"{group} rows and column), got {value.type}"
        return None


class QGemm(QuantizedResult, EmberOp):
    """int8 GEMM with dynamically quantized activations and a fused epilogue:
    `result = residual + act(dequant(quant(lhs) @ rhs) + bias)`.

    lhs f32 [..., M, K] is quantized per row at run time (symmetric, stored in `lhs_encoding`,
    see ember.quant.schemes); rhs is the int8 weight [K, N], quantized per output channel with
    `rhs_scale` f32 [N]. The int32 products are dequantized by row scale x column scale, then
    bias [N], activation and residual (the result's shape) apply as in ember.gemm. Packed
    (`rhs_panel = NR`, by ember-pack-weights): rhs is i32 [ceil(N/NR), ceil(K/4), NR], each word
    4 consecutive k of one column (k = 4w + byte, zero-padded), and `rhs_compensation` i32 [N]
    holds zp * sum_k rhs[k, n] for an unsigned encoding's zero point zp.

    Static (`lhs_scale` and `lhs_zero_point` set, as ember-fold-quantized-ops makes from a
    quantized model): lhs is already quantized, ui8 or i8 codes standing for
    `(code - lhs_zero_point) * lhs_scale`; `lhs_encoding` is how the kernel reads the bytes
    (u8 or s8: codes of the other signedness have their top bit flipped on the way in; u7:
    unsigned codes known to stay below 128, which vpmaddubsw can read), and the compensation
    holds that reading's zero point times the column sums.

    A residual of codes (`residual_scale` and `residual_zero_point` set): ui8 or i8 standing
    for `(code - residual_zero_point) * residual_scale`, dequantized where it is added (the
    CPU kernel's epilogue reads a quarter of an f32 residual's bytes)."""
    op_name = "ember.qgemm"
    element_types = ElementTypes.ANY

    lhs = Operand()
    rhs = Operand()
    rhs_scale = Operand()
    rhs_compensation = Operand(optional=True)
    bias = Operand(optional=True)
    residual = Operand(optional=True)
    activation = OneOf(ACTIVATIONS, what="activation", default="none")
    lhs_encoding = OneOf(INT8_ENCODINGS, what="activation encoding", default="s8")
    rhs_panel = I64(optional=True, doc=(
        "NR, set by ember-pack-weights: rhs is i32 [ceil(N/NR), ceil(K/4), NR] words, "
        "byte j of word (p, w, c) holding rhs[4w + j, p*NR + c]; with lhs_patches, either that "
        "(the kernel reads a materialized im2col copy) or [ceil(N/NR), KH*KW*ceil(C/4), NR], "
        "each filter tap's C channels zero-padded to whole words (it reads the patches in "
        "place)"))
    lhs_scale = F32(optional=True, doc="static: the scale of the lhs codes")
    lhs_zero_point = I64(optional=True, doc="static: the zero point of the lhs codes")
    output_activation = OneOf(ACTIVATIONS, what="activation", optional=True, doc=(
        "applied after the residual: result = output_activation(residual + act(...)), a "
        "residual block's closing ReLU"))
    result_scale, result_zero_point, result_range = result_code_attributes()
    residual_scale = F32(optional=True, doc=(
        "with residual_zero_point: the residual is codes (ui8 or i8) of this scale"))
    residual_zero_point = I64(optional=True)
    lhs_patches = I64Array(optional=True, doc=(
        "KH, KW, SH, SW, DH, DW, PH, PW (static lhs only): lhs is an NHWC input of codes "
        "[N, H, W, C] standing for the im2col patch matrix [N, OH, OW, KH*KW*C] of that input "
        "padded by PH rows and PW columns of the zero point (the code of 0.0): a quantized "
        "convolution"))

    @property
    def static(self) -> bool:
        """Whether lhs holds codes quantized ahead of time (else f32, quantized per row)."""
        return self.lhs_scale is not None

    @property
    def residual_codes(self) -> bool:
        """Whether the residual is codes (residual_scale, residual_zero_point)."""
        return self.residual_scale is not None or self.residual_zero_point is not None

    def _verify_residual_codes(self) -> Optional[str]:
        if not self.residual_codes:
            return None
        if self.residual is None or self.residual_scale is None or \
                self.residual_zero_point is None:
            return "residual_scale and residual_zero_point go together, with a residual"
        problem = static_codes_problem(self.residual, self.residual_scale,
                                       self.residual_zero_point)
        return f"residual {problem}" if problem else None

    def _verify_lhs(self) -> Optional[str]:
        if self.static != (self.lhs_zero_point is not None):
            return "lhs_scale and lhs_zero_point go together (a static lhs)"
        if not self.static:
            return None if _element(self.lhs) == "f32" else \
                f"lhs must be f32 (or codes with lhs_scale), got {_element(self.lhs)}"
        problem = static_codes_problem(self.lhs, self.lhs_scale, self.lhs_zero_point)
        if problem:
            return f"static lhs: {problem}"
        if self.lhs_encoding == "u7" and not unsigned_codes(self.lhs):
            return "a static lhs in encoding u7 (codes below 128) must be ui8"
        return None

    def logical_lhs_shape(self) -> Union[Shape, str]:
        """The [..., M, K] lhs the product reads (the patch matrix of an lhs of patches)."""
        lhs = shape_of(self.lhs)
        if self.lhs_patches is None:
            return lhs
        if not self.static:
            return "lhs_patches needs a static lhs (codes)"
        return patch_matrix_or_problem(self.lhs_patches, QGemm.lhs_patches.raw(self), lhs, 2)

    def tap_words(self) -> Optional[int]:
        """For an lhs of patches: the k words of a packed rhs holding each filter tap's C
        channels in whole words (zero-padded), KH*KW*ceil(C/4): the kernel then reads the
        patches in place, a word of channels at a time. None without patches."""
        if self.lhs_patches is None:
            return None
        kh, kw = self.lhs_patches[:2]
        return kh * kw * -(-shape_of(self.lhs)[-1] // 4)

    def reads_patches_in_place(self) -> bool:
        """Whether a packed rhs is in tap words, not ceil(K/4) words over the rows of a
        materialized im2col copy: its word count says (where the two counts agree, it is in
        tap words: ember-pack-weights packs it so)."""
        return self.rhs_panel is not None and self.lhs_patches is not None and \
            shape_of(self.rhs)[1] == self.tap_words()

    def verify(self) -> Optional[str]:
        lhs, rhs, res = shape_of(self.lhs), shape_of(self.rhs), shape_of(self.result)
        if lhs is None or rhs is None or res is None or len(lhs) < 2:
            return "operands and result must be ranked tensors, lhs of rank >= 2"
        problem = self._verify_lhs() or self.result_codes_problem()
        if problem:
            return problem
        lhs = self.logical_lhs_shape()
        if isinstance(lhs, str):
            return lhs
        f32 = "f32"
        for name in ("rhs_scale", "bias", "residual"):
            value = getattr(self, name)
            if name == "residual" and self.residual_codes:
                continue
            if value is not None and _element(value) != f32:
                hint = " (or codes with residual_scale)" if name == "residual" else ""
                return f"{name} must be f32{hint}, got {_element(value)}"
        problem = self._verify_residual_codes()
        if problem:
            return problem
        k, n = lhs[-1], res[-1]
        if self.rhs_panel is None:
            if _element(self.rhs) != "i8" or len(rhs) != 2:
                return f"rhs must be an i8 [K, N] matrix, got {format_shape(rhs)} " \
                       f"{_element(self.rhs)}"
            if not dims_compatible(k, rhs[0]) or not dims_compatible(n, rhs[1]):
                return f"rhs {format_shape(rhs)} does not match K={k}, N={n}"
            if self.rhs_compensation is not None:
                return "rhs_compensation belongs to a packed rhs (rhs_panel)"
        else:
            nr = self.rhs_panel
            words = {-(-k // 4), self.tap_words()} - {None} if k is not None else set()
            if not words or n is None or nr <= 0 or _element(self.rhs) != "i32" or \
                    len(rhs) != 3 or rhs[0] != -(-n // nr) or rhs[1] not in words or \
                    rhs[2] != nr:
                k_words = "ceil(K/4) or KH*KW*ceil(C/4)" if self.lhs_patches is not None \
                    else "ceil(K/4)"
                return f"packed rhs must be i32 [ceil(N/NR), {k_words}, NR] with static K, N " \
                       f"and NR > 0, got {format_shape(rhs)} {_element(self.rhs)}"
            comp = self.rhs_compensation
            if comp is None or _element(comp) != "i32" or shape_of(comp) != [n]:
                return f"a packed rhs needs rhs_compensation i32 [{n}]"
        if not shapes_compatible(res, lhs[:-1] + [n]):
            return f"result shape {format_shape(res)} does not match lhs {format_shape(lhs)} " \
                   f"x N={n}"
        for name in ("rhs_scale", "bias"):
            v = getattr(self, name)
            if v is not None and (shape_of(v) is None or len(shape_of(v)) != 1 or
                                  not dims_compatible(shape_of(v)[0], n)):
                return f"{name} must be 1-D of size N={n}"
        if self.residual is not None and not shapes_compatible(shape_of(self.residual), res):
            return f"residual shape {format_shape(shape_of(self.residual) or [])} must equal " \
                   f"the result shape {format_shape(res)}"
        return None


def patch_matrix_or_problem(geometry, raw, lhs: Shape, padding: int) -> Union[Shape, str]:
    """The patch matrix an NHWC lhs stands for under `geometry` (KH, KW, SH, SW, DH, DW, then
    PH, PW when `padding` is 2: the lhs is padded by them first), or the broken rule."""
    names = "KH, KW, SH, SW, DH, DW" + (", PH, PW" if padding else "")
    if len(geometry) != 6 + padding or min(geometry[:6]) < 1 or min(geometry[6:] or [0]) < 0:
        return f"lhs_patches must be array<i64: {names}> of positive values (padding >= 0), " \
               f"got {raw}"
    if len(lhs) != 4 or None in lhs[1:]:
        return f"an lhs of patches must be an NHWC input [N, H, W, C] with static H, W, C, " \
               f"got {format_shape(lhs)}"
    kh, kw, _, _, dh, dw = geometry[:6]
    ph, pw = geometry[6:] or (0, 0)
    padded = [lhs[0], lhs[1] + 2 * ph, lhs[2] + 2 * pw, lhs[3]]
    if padded[1] < dh * (kh - 1) + 1 or padded[2] < dw * (kw - 1) + 1:
        return f"the patch window {kh}x{kw} (dilation {dh}x{dw}) does not fit the lhs " \
               f"{format_shape(padded)}"
    return patch_matrix_shape(padded, tuple(geometry[:6]))


def _element(value) -> str:
    return str(value.type.element_type)


class Attention(EmberOp):
    """Scaled dot-product attention: `softmax(q @ k^T * scale + mask) @ v`, with an optional
    causal mask (query i attends to keys j <= i + Sk - Sq). A query whose scores are all -inf
    (fully masked) gets zeros, as in PyTorch.

    query [..., Sq, D], key [..., Sk, D], value [..., Sk, Dv] (equal leading dims), mask
    (additive, floating point) broadcastable to [..., Sq, Sk]; result [..., Sq, Dv]. Layout
    "bshd" (set by ember-fold-attention-layout; rank >= 3) puts the heads inside the sequence:
    query [..., Sq, H, D], key [..., Sk, H, D], value [..., Sk, H, Dv], result [..., Sq, H,
    Dv], head h being x[..., :, h, :], the layout a projection's output has when split into
    heads; the mask still broadcasts to the scores [..., H, Sq, Sk]. With
    `int8` (and the target's int8_encoding and int8_panel) the two products run on the int8
    GEMM kernel (lowering/qattention_to_linalg.py) where the shapes are static."""
    op_name = "ember.attention"

    query = Operand()
    key = Operand()
    value = Operand()
    mask = Operand(optional=True)
    scale = F32()
    causal = Bool(default=False)
    layout = OneOf(ATTENTION_LAYOUTS, what="attention layout", optional=True, doc=(
        "absent: \"bhsd\", heads outside the sequence; \"bshd\": heads inside it"))
    int8 = Bool(optional=True, doc=(
        "both products in int8 (ember-quantize): q and the probabilities quantized per row, "
        "k per key and v per channel, symmetric, at run time"))
    int8_encoding = OneOf(INT8_ENCODINGS, what="activation encoding", optional=True, doc=(
        "with int8_panel, set for the target by ember-pack-weights: how its int8 kernel reads "
        "the per-row codes"))
    int8_panel = I64(optional=True, doc="the int8 kernel's panel width NR")

    @property
    def layout_name(self) -> str:
        """The operands' layout, "bhsd" when the attribute is absent."""
        return self.layout or "bhsd"

    def verify(self) -> Optional[str]:
        layout = self.layout_name
        q, k, v, res = (heads_major(shape_of(x), layout)
                        for x in (self.query, self.key, self.value, self.result))
        least = 2 if layout == "bhsd" else 3
        if any(s is None or len(s) < least for s in (q, k, v, res)):
            return f"query, key, value and result must have rank >= {least}"
        if not (len(q) == len(k) == len(v) == len(res)):
            return "query, key, value and result must have the same rank"
        lead = len(q) - 2
        if not (shapes_compatible(q[:lead], k[:lead]) and shapes_compatible(k[:lead], v[:lead])):
            return f"leading dims differ: query {format_shape(q)}, key {format_shape(k)}, " \
                   f"value {format_shape(v)}"
        if not dims_compatible(q[-1], k[-1]):
            return f"query and key head dims differ: {q[-1]} vs {k[-1]}"
        if not dims_compatible(k[-2], v[-2]):
            return f"key and value sequence lengths differ: {k[-2]} vs {v[-2]}"
        expected = q[:-1] + [v[-1]]
        if not shapes_compatible(res, expected):
            own = (format_shape(heads_major(x, layout)) for x in (res, expected))
            return "result shape {} must be {}".format(*own)
        if self.mask is not None:
            m = shape_of(self.mask) or []
            scores = q[:-1] + [k[-2]]
            if broadcast_shape(m, scores) is None or len(m) > len(q):
                return f"mask shape {format_shape(m)} does not broadcast to the scores " \
                       f"{format_shape(scores)}"
        return None
