"""ember-conv-to-gemm: NHWC convolutions as GEMMs, so they run on the packed CPU micro-kernel.

An `ember.conv2d` in NHWC with groups = 1, an f32 `ember.weight` filter [KH, KW, C, F] and an
f32 input [N, H, W, C] becomes an `ember.gemm` whose rhs is the filter seen as a [KH*KW*C, F]
matrix (a new weights-table entry `<filter>.gemm`, derived at compile time; it is a row-major
reshape, so the data is the same) and whose bias, residual and activation are the conv's: the
epilogue stays fused in the GEMM's register tile. ember-pack-weights then packs that weight
into panels like any other, so this pass must run before it.

  * 1x1, stride 1, no padding: the GEMM reads the NHWC input directly ([N, H, W, C] is an
    [N*H*W, C] matrix; the GEMM's batched lhs collapses the leading dims), so no copy at all.
  * Any other kernel, stride, padding or dilation (implicit im2col): the input is zero-padded
    (tensor.pad) and the GEMM's `lhs_patches = array<i64: KH, KW, SH, SW, DH, DW>` says that
    its lhs [N, Hp, Wp, C] stands for the patch matrix [N, OH, OW, KH*KW*C]. The CPU GEMM
    kernel reads the patches straight from the padded input while it packs or streams A, so
    the KH*KW-times larger patch matrix is never written; other lowerings materialize it
    (`ember.lowering.gemm_to_linalg.materialize_patches`).

Left alone (ember-lower-to-linalg's linalg convolution handles them): NCHW convs, grouped and
depthwise convs (groups != 1), non-f32 convs, filters that are not weights, convs with fewer
than `min-channels` input channels, and, with `im2col=false`, every conv but the 1x1 stride-1
unpadded ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlir import ir

from ember.dialect import builders as eb
from ember.kit.patterns import APPLIED, NOT_APPLIED, apply_patterns, defined_by, string_attr
from ember.kit.structured import pad_spatial
from ember.pipeline.pass_base import EmberPass, PassContext, register


@dataclass
class DenseConv:
    """An NHWC, groups = 1, f32 conv2d with a weight filter [KH, KW, C, F] and static spatial
    and channel sizes: the convs the GEMM-based rewrites (this pass, ember-conv-winograd)
    take."""
    settings: dict
    weight: object          # the filter's ember.weight op
    kernel: tuple           # (KH, KW)
    channels: int           # C
    filters: int            # F

    @classmethod
    def match(cls, op) -> Optional["DenseConv"]:
        settings = eb.conv2d_attributes(op)
        x, w = op.operands[0], op.operands[1]
        weight = defined_by(w, "ember.weight")
        x_type, w_type = ir.RankedTensorType(x.type), ir.RankedTensorType(w.type)
        out_type = ir.RankedTensorType(op.results[0].type)
        if settings["layout"] != "nhwc" or settings["groups"] != 1 or weight is None or \
                not all(isinstance(t.element_type, ir.F32Type)
                        for t in (x_type, w_type, out_type)) or \
                x_type.rank != 4 or w_type.rank != 4 or not w_type.has_static_shape or \
                any(t.is_dynamic_dim(i) for t in (x_type, out_type) for i in (1, 2, 3)):
            return None
        kh, kw, c, f = w_type.shape
        return cls(settings, weight, (kh, kw), c, f)


@dataclass
class _ConvToGemm:
    ctx: PassContext
    min_channels: int
    im2col: bool

    def __call__(self, op, rewriter) -> bool:
        conv = DenseConv.match(op)
        if conv is None or conv.channels < self.min_channels:
            return NOT_APPLIED
        settings, weight = conv.settings, conv.weight
        (kh, kw), c, f = conv.kernel, conv.channels, conv.filters
        x = op.operands[0]
        out_type = ir.RankedTensorType(op.results[0].type)
        w_type = ir.RankedTensorType(op.operands[1].type)
        pointwise = (kh, kw) == (1, 1) and settings["strides"] == [1, 1] and \
            settings["padding"] == [0, 0]
        if not pointwise and not self.im2col:
            return NOT_APPLIED
        source = string_attr(weight, "name")
        k = kh * kw * c
        name = self.ctx.weights.derive(f"{source}.gemm", lambda a: a.reshape(k, f), [source],
                                       key=("ember-conv-to-gemm", source))
        with rewriter.ip, op.location:
            rhs = eb.weight(ir, name, ir.RankedTensorType.get([k, f], w_type.element_type))
            patches = None if pointwise else \
                (kh, kw, *settings["strides"], *settings["dilations"])
            lhs = x if pointwise else pad_spatial(x, (1, 2), settings["padding"])
            y = eb.gemm(lhs, rhs, out_type, bias=eb.optional_operand(op, "bias"),
                        residual=eb.optional_operand(op, "residual"),
                        activation=settings["activation"], lhs_patches=patches)
            rewriter.replace_op(op, [y])
        return APPLIED


@register
@dataclass
class ConvToGemm(EmberPass):
    """Rewrites NHWC conv2d (groups=1) as a GEMM on the input (1x1) or its implicit patches."""
    name = "ember-conv-to-gemm"
    #: Off: leaves every conv to the linalg convolution.
    enabled: bool = True
    #: Convs with fewer input channels than this keep the linalg convolution.
    min_channels: int = 1
    #: Also rewrite KxK / strided / padded / dilated convs as GEMMs on their (implicit) im2col
    #: patches (false: only 1x1 stride-1 unpadded convs, which need no copy).
    im2col: bool = True

    def run(self, module, ctx: PassContext) -> None:
        if not self.enabled:
            return
        apply_patterns(module, {"ember.conv2d": [_ConvToGemm(ctx, self.min_channels,
                                                             self.im2col)]})
