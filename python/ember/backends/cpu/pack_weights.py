"""ember-pack-weights: stores GEMM weights in the CPU micro-kernel's panel layout.

An `ember.gemm` whose rhs is an `ember.weight` [K, N] (after ember-fold-constants has folded
`linear`'s transpose) gets, in its place, a weight [ceil(N/NR), K, NR] holding the same matrix in
NR-column panels (zero-padded past N; see `ember.kit.packed_panels`) and the
attribute `rhs_panel = NR`. The packing is done once, at compile time, on the weights table
(`WeightTable.derive`), so the artifact stores the weight packed and no run-time code ever
transposes or packs it. On an abstract table the IR is rewritten the same way and the packed
entry is left without data. f16 and bf16 weights stay 16-bit in their panels (the kernel
widens them in registers); on a target with a bf16 dot product (AMX-BF16, AVX512_BF16), a bf16
weight (K even) is packed as i32 words of two consecutive k (`word_pairs`, `rhs_pairs`), the
layout both multiply; so is an integer GEMM's i16 weight (K even), which the int16 dot product
(`vpmaddwd`) multiplies a pair at a time. GEMMs with a non-weight rhs, a batched rhs, another
element type, or an rhs already packed are left alone.

A GEMM on low-bit codes (weight-only quantization) gets its codes in the same panels (4-bit
codes two per byte, `nibble_pairs`) and its group scales and offsets in panels of NR columns
too, [ceil(N/NR), groups, NR], so that a panel's scales for one group are one vector load.

An int8 `ember.qgemm` gets the same panels of i32 words, 4 consecutive k per word
(`int8_words`; a quantized conv's, 4 consecutive channels of one filter tap, each tap's
channels zero-padded to whole words, so that the kernel reads the patches of any input, an RGB
image's 3 channels included, in place), its activation encoding (the one the target's integer
dot product reads, see ember.backends.cpu.int8_dot; for static codes, one reading all 8 bits)
and the compensation that encoding's zero point needs, computed here. An int8 `ember.attention`
gets the encoding and panel width its run-time packed products use (int8_encoding, int8_panel).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.backends.cpu.gemm_schedule import default_panel
from ember.backends.cpu.microkernel import CpuTraits
from ember.backends.cpu.bf16_dot import pair_lanes
from ember.backends.cpu.int8_dot import full_range_encoding, int8_dot_for
from ember.backends.cpu.mmla_tiles import has_i8mm
from ember.dialect.ops import Attention, Gemm, QGemm, Weight
from ember.kit.packed_panels import int8_words, nibble_pairs, pack_panels, \
    packed_shape, word_pairs
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.dialect.ops.quantization import unsigned_codes
from ember.pipeline.target_info import TargetInfo
from ember.quant.schemes import compensation, encoding, kernel_zero_point


@dataclass
class _PackPattern:
    ctx: PassContext
    panel: int
    target: TargetInfo

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        if gemm.rhs_panel is not None:
            return NOT_APPLIED
        weight = Weight.defining(gemm.rhs)
        rhs_type = ir.RankedTensorType(gemm.rhs.type)
        integer = _is_i16(rhs_type.element_type)
        if weight is None or rhs_type.rank != 2 or not (integer or isinstance(
                rhs_type.element_type, (ir.F32Type, ir.F16Type, ir.BF16Type))):
            return NOT_APPLIED
        k, n = rhs_type.shape
        if k == 0:                          # an empty product: the linalg reference is just
            return NOT_APPLIED              # the epilogue on zeros, no kernel needed
        nr = self.panel
        if integer and k % 2:               # no pairs to read: the linalg reference
            return NOT_APPLIED
        if integer or self._pairs(gemm, k, nr):
            name = self.ctx.weights.derive(f"{weight.name}.pairs{nr}",
                                           lambda w: pack_panels(word_pairs(w), nr),
                                           [weight.name])
            packed_type = ir.RankedTensorType.get(packed_shape(k // 2, n, nr),
                                                  ir.IntegerType.get_signless(32))
            changes = dict(rhs_panel=nr, rhs_pairs=True)
        else:
            name = self.ctx.weights.derive(f"{weight.name}.packed{nr}",
                                           lambda w: pack_panels(w, nr), [weight.name])
            packed_type = ir.RankedTensorType.get(packed_shape(k, n, nr), rhs_type.element_type)
            changes = dict(rhs_panel=nr)
        with rewriter.ip, op.location:
            packed = Weight.build(packed_type, name=name)
            rewriter.replace_op(op, [gemm.rebuild(gemm.result.type, rhs=packed, **changes)])
        return APPLIED

    def _pairs(self, gemm, k: int, nr: int) -> bool:
        """Whether a bf16 GEMM gets its weight as bf16 pairs: the target has a dot product on
        them (AMX-BF16, vdpbf16ps, BFDOT), K is even (A's rows are read a pair at a time;
        patches: C even, so that no pair spans two filter taps), NR a multiple of the tiles'
        or the vectors' columns (`pair_lanes`)."""
        lhs = ir.RankedTensorType(gemm.lhs.type)
        lanes = pair_lanes(self.target)
        return lanes > 0 and k % 2 == 0 and nr % lanes == 0 and \
            all(isinstance(ir.RankedTensorType(v.type).element_type, ir.BF16Type)
                for v in (gemm.lhs, gemm.rhs)) and \
            (gemm.lhs_patches is None or lhs.shape[-1] % 2 == 0)


def _is_i16(element: ir.Type) -> bool:
    return isinstance(element, ir.IntegerType) and ir.IntegerType(element).width == 16


@dataclass
class _PackLowBitPattern:
    """A GEMM on low-bit codes (weight-only quantization): codes, scales and offsets into
    NR-column panels, 4-bit codes two per byte (`nibble_pairs`)."""
    ctx: PassContext
    panel: int

    def __call__(self, op, rewriter) -> bool:
        gemm = Gemm(op)
        if not gemm.low_bit or gemm.rhs_panel is not None:
            return NOT_APPLIED
        parts = [Weight.defining(v) for v in (gemm.rhs, gemm.rhs_scale, gemm.rhs_offset)
                 if v is not None]
        if any(p is None for p in parts):
            return NOT_APPLIED
        k, n = ir.RankedTensorType(gemm.rhs.type).shape
        nr, groups = self.panel, ir.RankedTensorType(gemm.rhs_scale.type).shape[0]
        codes_rows = k // 2 if gemm.rhs_bits == 4 else k
        lay_out = (lambda q: pack_panels(nibble_pairs(q), nr)) if gemm.rhs_bits == 4 else \
            (lambda q: pack_panels(q, nr))
        names = [self.ctx.weights.derive(f"{parts[0].name}.packed{nr}", lay_out,
                                         [parts[0].name])]
        names += [self.ctx.weights.derive(f"{p.name}.packed{nr}",
                                          lambda s: pack_panels(s, nr), [p.name])
                  for p in parts[1:]]
        f32 = ir.F32Type.get()
        with rewriter.ip, op.location:
            codes = Weight.build(ir.RankedTensorType.get(packed_shape(codes_rows, n, nr),
                                                         ir.IntegerType.get_signless(8)),
                                 name=names[0])
            scale, *offset = [Weight.build(ir.RankedTensorType.get(
                packed_shape(groups, n, nr), f32), name=name) for name in names[1:]]
            rewriter.replace_op(op, [gemm.rebuild(
                gemm.result.type, rhs=codes, rhs_scale=scale,
                rhs_offset=offset[0] if offset else None, rhs_panel=nr)])
        return APPLIED


@dataclass
class _PackInt8Pattern:
    ctx: PassContext
    panel: int
    target: TargetInfo

    def __call__(self, op, rewriter) -> bool:
        qgemm = QGemm(op)
        weight = Weight.defining(qgemm.rhs)
        if qgemm.rhs_panel is not None or weight is None:
            return NOT_APPLIED
        k, n = ir.RankedTensorType(qgemm.rhs.type).shape
        nr, weights = self.panel, self.ctx.weights
        if qgemm.static:
            fastest = int8_dot_for(self.target).encoding
            enc = encoding(fastest if qgemm.lhs_encoding == fastest == "u7"
                           else full_range_encoding(self.target))
            zero_point = kernel_zero_point(qgemm.lhs_zero_point, unsigned_codes(qgemm.lhs), enc)
        else:
            enc = encoding(int8_dot_for(self.target).encoding)
            zero_point = enc.zero_point
        channels = self._tap_channels(qgemm, k)
        packed_name = weights.derive(
            f"{weight.name}.words{nr}" + ("_tap_words" if channels else ""),
            lambda q: pack_panels(int8_words(q, channels), nr), [weight.name])
        comp_name = weights.derive(f"{weight.name}.zp{zero_point}_compensation",
                                   lambda q: compensation(q, zero_point), [weight.name])
        i32 = ir.IntegerType.get_signless(32)
        with rewriter.ip, op.location:
            words = qgemm.tap_words() if channels else -(-k // 4)
            packed = Weight.build(ir.RankedTensorType.get(packed_shape(words, n, nr), i32),
                                  name=packed_name)
            comp = Weight.build(ir.RankedTensorType.get([n], i32), name=comp_name)
            rewriter.replace_op(op, [qgemm.rebuild(
                qgemm.result.type, rhs=packed, rhs_compensation=comp, rhs_panel=nr,
                lhs_encoding=enc.name)])
        return APPLIED

    def _tap_channels(self, qgemm: QGemm, k: int) -> Optional[int]:
        """C, when a quantized conv's weight [taps * C, N] is packed in tap words (each tap's
        channels zero-padded to whole words: the kernel reads the patches in place), not
        over K: for every C that is no multiple of 4 (an RGB image's 3), except where the
        kernel would then lose smmla (it multiplies 2 words of a tap at a time; an odd count
        runs on sdot), which keeps the materialized im2col copy."""
        if qgemm.lhs_patches is None:
            return None
        channels = ir.RankedTensorType(qgemm.lhs.type).shape[-1]
        if channels % 4 == 0:                       # the two layouts are the same
            return None
        keep_smmla = has_i8mm(self.target) and -(-channels // 4) % 2
        # (as many words either way: the lowering takes them for tap words)
        return None if keep_smmla and qgemm.tap_words() != -(-k // 4) else channels


@dataclass
class _Int8AttentionPattern:
    """An int8 attention gets the target's int8 kernel facts: the activation encoding its dot
    product reads and the panel width its run-time packed keys and values take."""
    panel: int
    target: TargetInfo

    def __call__(self, op, rewriter) -> bool:
        attention = Attention(op)
        if not attention.int8 or attention.int8_panel is not None:
            return NOT_APPLIED
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [attention.rebuild(
                attention.result.type, int8_encoding=int8_dot_for(self.target).encoding,
                int8_panel=self.panel)])
        return APPLIED


@register
@dataclass
class PackWeights(EmberPass):
    """Packs GEMM weight operands (f32, and int8 as words) into the CPU micro-kernel's NR-column
    panel layout."""
    name = "ember-pack-weights"
    #: Panel width NR (columns); 0 means the target's (two vector registers of f32).
    panel: int = 0

    def run(self, module, ctx: PassContext) -> None:
        target = ctx.require_target(self.name)
        nr = self.panel or default_panel(CpuTraits.from_target(target))
        if nr <= 0:
            raise ValueError(f"ember-pack-weights: panel must be positive, got {nr}")
        apply_patterns(module, {Gemm.op_name: [_PackPattern(ctx, nr, target),
                                               _PackLowBitPattern(ctx, nr)],
                                QGemm.op_name: [_PackInt8Pattern(ctx, nr, target)],
                                Attention.op_name: [_Int8AttentionPattern(nr, target)]})
