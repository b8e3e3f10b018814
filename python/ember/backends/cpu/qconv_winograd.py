"""ember-qconv-winograd: int8 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3), in integers.

On x86 without VNNI an int8 product costs two multiplies (`vpmaddubsw`, then `vpmaddwd` to
widen its pairs), 16 multiply-adds each, so a direct int8 conv runs at most twice the f32 FMA
rate, which an f32 conv by Winograd F(2x2) (2.25x fewer multiplies, ember-conv-winograd)
nearly matches. This pass gives int8 convs the same 2.25x, exactly, in integers:

    d = codes - zero point                     (|d| <= 255: i16)
    V = B^T d B                                (entries 0, +-1: |V| <= 4 * 255, i16)
    U = (2G) g (2G)^T = 4 G g G^T              (at compile time, on the int8 filter: |U| <=
                                                9 * 128, i16; 2G has integer entries)
    M_i = V_i @ U_i                            (16 integer GEMMs, i16 x i16 -> i32: vpmaddwd,
                                                16 multiply-adds per instruction, one step)
    4 y = A^T M A                              (entries 0, +-1), y = (4 y) >> 2

y is the direct conv's i32 sum over taps and channels of (code - zero point) * weight, bit for
bit: every step is integer arithmetic modulo 2^32 and the true 4y fits in i32 (|4y| <= 4 * 9 *
C * 255 * 128: C <= 1820, checked), so intermediate wraps cancel. The result then goes through
the qgemm's own epilogue (`dequantized_product`: scales, bias, activation, residual,
requantization), so the codes written are those of the direct kernel.

The rewrite reuses ember-conv-winograd's blocking (`winograd_blocks`: an scf.forall over blocks
of tiles whose transformed data fits in L2, each padding its own window of the codes with the
zero point) and emits, per block, the input transform (one linalg.generic over the 16 strided
views of the window), the 16 `ember.gemm`s on i16 (which ember-pack-weights packs in pairs and
the CPU kernel runs on `vpmaddwd`), and the output transform + epilogue (one linalg.generic).

Rewritten: a static `ember.qgemm` over the patches of NHWC codes (a quantized conv, after
ember-fold-quantized-ops) with a 3x3 filter, stride and dilation 1, static sizes but the batch,
an even C of at least `min-channels`, an even output size, an unpacked int8 weight; only on
targets whose int8 dot product is vpmaddubsw (x86 without VNNI: with VNNI or AMX one
instruction does 64 int8 multiply-adds, twice vpmaddwd's rate, and the direct conv is faster)
unless `always`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import arith, tensor

from ember.backends.cpu.conv_winograd import F2, TileBlocks, input_tiles, output_tiles, \
    winograd_blocks
from ember.backends.cpu.int8_dot import int8_dot_for
from ember.backends.cpu.microkernel import CpuTraits
from ember.dialect.ops import Gemm, QGemm, Weight
from ember.dialect.ops.quantization import storage_range, unsigned_codes
from ember.kit.builders import constant
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.kit.scalar_math import dequantize_code
from ember.lowering.qgemm_to_linalg import dequantized_product
from ember.lowering.quantize_to_linalg import signless, with_storage_type
from ember.pipeline.pass_base import EmberPass, PassContext, register

#: Largest C whose transformed sums stay exact in i32 (4 * 9 * C * 255 * 128 < 2^31).
MAX_CHANNELS = (2 ** 31 - 1) // (4 * 9 * 255 * 128)


def transform_int8_filter(w: np.ndarray) -> np.ndarray:
    """int8 [3, 3, C, F] filter -> i16 [16, C, F]: (2G) g (2G)^T at each of F(2x2)'s 16 tile
    positions, exact integers (four times G g G^T)."""
    g2 = (2 * F2.g).astype(np.int64)
    u = np.einsum("ik,klcf,jl->ijcf", g2, w.astype(np.int64), g2)
    return u.reshape(16, *w.shape[2:]).astype(np.int16)


@dataclass
class _QConvWinograd:
    ctx: PassContext
    min_channels: int
    blocks: TileBlocks

    def __call__(self, op, rewriter) -> bool:
        q = QGemm(op)
        geometry = q.lhs_patches
        weight = Weight.defining(q.rhs)
        x_type = ir.RankedTensorType(q.lhs.type)
        out_type = ir.RankedTensorType(q.result.type)
        if not q.static or geometry is None or list(geometry[:6]) != [3, 3, 1, 1, 1, 1] or \
                q.rhs_panel is not None or weight is None or \
                any(t.is_dynamic_dim(d) for t in (x_type, out_type) for d in (1, 2, 3)):
            return NOT_APPLIED
        c = x_type.shape[3]
        n, oh, ow, f = out_type.shape
        if c % 2 or not self.min_channels <= c <= MAX_CHANNELS or oh % 2 or ow % 2:
            return NOT_APPLIED
        source = weight.name
        names = [self.ctx.weights.derive(
            f"{source}.winograd2i.{i}",
            lambda a, i=i: transform_int8_filter(a.reshape(3, 3, c, f))[i], [source],
            key=("ember-qconv-winograd", source, i)) for i in range(16)]
        with rewriter.ip, op.location:
            rewriter.replace_op(op, [self._rewrite(q, names, c, f)])
        return APPLIED

    def _rewrite(self, q: QGemm, names, c: int, f: int):
        i16 = ir.IntegerType.get_signless(16)
        weights = [Weight.build(ir.RankedTensorType.get([c, f], i16), name=name)
                   for name in names]
        storage = ir.RankedTensorType(q.result.type)
        element = ir.IntegerType.get_signless(8) if q.quantized_result else ir.F32Type.get()
        out_type = ir.RankedTensorType.get(storage.shape, element)
        zero_point = q.lhs_zero_point
        residual = signless(q.residual) if q.residual is not None else None
        epilogue = _Epilogue(q)

        extend = arith.extui if unsigned_codes(q.lhs) else arith.extsi

        def difference(code):           # code - zero point, exact in i16
            return arith.subi(extend(i16, code), constant(zero_point, i16))

        def tiles(window, part_residual, grid, dest):
            v = input_tiles(window, grid, F2, i16, difference)
            products = [_integer_gemm(v[i], weights[i], grid, f) for i in range(16)]
            return _output_transform(products, part_residual, epilogue, grid, f, element,
                                     dest)
        y = winograd_blocks(signless(q.lhs), out_type, tuple(q.lhs_patches[6:]),
                            zero_point - 256 * (zero_point > 127), residual, F2, self.blocks,
                            16 * (2 * c + 4 * f), tiles)
        return with_storage_type(y, storage)


@dataclass(frozen=True)
class _Epilogue:
    """The qgemm's epilogue on one exact i32 sum (`dequantized_product`, no compensation: the
    zero point was subtracted before the transform), a residual of codes dequantized first."""
    q: QGemm

    def __call__(self, acc, col_scale, bias, residual):
        q = self.q
        if residual is not None and q.residual_codes:
            residual = dequantize_code(residual, q.residual_scale, q.residual_zero_point,
                                       storage_range(q.residual)[0] == 0)
        return dequantized_product(acc, constant(q.lhs_scale, ir.F32Type.get()), col_scale,
                                   None, bias, residual, q.activation,
                                   q.result_quantization(), q.output_activation)


def _integer_gemm(v, weight, grid, f: int):
    """[B, R, TW, C] i16 @ [C, F] i16 -> [B, R, TW, F] i32, as an integer ember.gemm on the
    rows (B an index value when the batch is dynamic)."""
    c = ir.RankedTensorType(v.type).shape[3]
    dyn = ir.ShapedType.get_dynamic_size()
    shape = [g if isinstance(g, int) else dyn for g in grid]
    rows = dyn if dyn in shape else shape[0] * shape[1] * shape[2]
    i16, i32 = ir.IntegerType.get_signless(16), ir.IntegerType.get_signless(32)
    lhs = tensor.collapse_shape(ir.RankedTensorType.get([rows, c], i16), v, [[0, 1, 2], [3]])
    product = Gemm.build(lhs, weight, ir.RankedTensorType.get([rows, f], i32))
    return tensor.expand_shape(ir.RankedTensorType.get(shape + [f], i32), product,
                               [[0, 1, 2], [3]], [g for g in grid if not isinstance(g, int)],
                               shape + [f])


def _output_transform(products, residual, epilogue: _Epilogue, grid, f: int, element, dest):
    """[B, R, 2, TW, 2, F] of `element`: the 2 x 2 outputs of each tile, (A^T M A) / 4 (an
    exact shift), through the qgemm's epilogue, written into `dest` (or a new tensor)."""
    q = epilogue.q
    channel_values = [q.rhs_scale] + ([q.bias] if q.bias is not None else [])

    def finish(four_y, values, residual_value):
        return epilogue(arith.shrsi(four_y, constant(2, four_y.type)), values[0],
                        values[1] if q.bias is not None else None, residual_value)
    return output_tiles(products, channel_values, residual, F2, grid, f, element, dest,
                        finish)


@register
@dataclass
class QConvWinograd(EmberPass):
    """Rewrites int8 3x3 stride-1 convs (static qgemms over patches) as integer Winograd
    F(2x2, 3x3) on targets without VNNI: i16 transforms, 16 i16 GEMMs, exact i32 results."""
    name = "ember-qconv-winograd"
    #: Off: leaves every int8 conv to the direct (patch) kernel.
    enabled: bool = True
    #: Rewrite whatever the target's int8 dot product (default: only where it is vpmaddubsw,
    #: x86 without VNNI).
    always: bool = False
    #: Convs with fewer input channels keep the direct kernel.
    min_channels: int = 16
    #: Bytes of transformed data per block; 0: half the target's L2.
    block_bytes: int = 0
    #: Blocks a conv needs before it is split (fewer: one block); 0: twice the target's cores.
    min_blocks: int = 0

    def run(self, module, ctx: PassContext) -> None:
        target = ctx.require_target(self.name)
        if not self.enabled or not (self.always or
                                    int8_dot_for(target).name.startswith("maddubs")):
            return
        traits = CpuTraits.from_target(target)
        blocks = TileBlocks(self.block_bytes or traits.l2 // 2,
                            self.min_blocks or 2 * traits.cores)
        apply_patterns(module, {QGemm.op_name: [_QConvWinograd(ctx, self.min_channels,
                                                               blocks)]})
