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

from ember.dialect.ops import Conv2d, Gemm, Weight
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.kit.structured import pad_spatial
from ember.pipeline.pass_base import EmberPass, PassContext, register


@dataclass
class DenseConv:
    """An NHWC, groups = 1 conv2d (f32, f16 or bf16 throughout) with a weight filter
    [KH, KW, C, F] and static spatial and channel sizes: the convs the GEMM-based rewrites
    (this pass; ember-conv-winograd, f32 only) take."""
    conv: Conv2d
    weight: Weight          # the filter's ember.weight
    kernel: tuple           # (KH, KW)
    channels: int           # C
    filters: int            # F

    @classmethod
    def match(cls, op) -> Optional["DenseConv"]:
        conv = Conv2d(op)
        x, w = conv.input, conv.filter
        weight = Weight.defining(w)
        x_type, w_type = ir.RankedTensorType(x.type), ir.RankedTensorType(w.type)
        out_type = ir.RankedTensorType(conv.result.type)
        element = out_type.element_type
        if conv.layout != "nhwc" or conv.groups != 1 or weight is None or \
                not isinstance(element, (ir.F32Type, ir.F16Type, ir.BF16Type)) or \
                any(t.element_type != element for t in (x_type, w_type)) or \
                x_type.rank != 4 or w_type.rank != 4 or not w_type.has_static_shape or \
                any(t.is_dynamic_dim(i) for t in (x_type, out_type) for i in (1, 2, 3)):
            return None
        kh, kw, c, f = w_type.shape
        return cls(conv, weight, (kh, kw), c, f)


@dataclass
class _ConvToGemm:
    ctx: PassContext
    min_channels: int
    im2col: bool

    def __call__(self, op, rewriter) -> bool:
        dense = DenseConv.match(op)
        if dense is None or dense.channels < self.min_channels:
            return NOT_APPLIED
        conv = dense.conv
        (kh, kw), c, f = dense.kernel, dense.channels, dense.filters
        out_type = ir.RankedTensorType(conv.result.type)
        w_type = ir.RankedTensorType(conv.filter.type)
        pointwise = (kh, kw) == (1, 1) and conv.strides == [1, 1] and conv.padding == [0, 0]
        if not pointwise and not self.im2col:
            return NOT_APPLIED
        source = dense.weight.name
        k = kh * kw * c
        name = self.ctx.weights.derive(f"{source}.gemm", lambda a: a.reshape(k, f), [source],
                                       key=("ember-conv-to-gemm", source))
        with rewriter.ip, op.location:
            rhs = Weight.build(ir.RankedTensorType.get([k, f], w_type.element_type), name=name)
            patches = None if pointwise else (kh, kw, *conv.strides, *conv.dilations)
            lhs = conv.input if pointwise else pad_spatial(conv.input, (1, 2), conv.padding)
            y = Gemm.build(lhs, rhs, out_type, bias=conv.bias, residual=conv.residual,
                           activation=conv.activation, lhs_patches=patches)
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
        apply_patterns(module, {Conv2d.op_name: [_ConvToGemm(ctx, self.min_channels,
                                                             self.im2col)]})
