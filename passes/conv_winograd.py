"""ember-conv-winograd: 3x3 stride-1 NHWC convolutions by Winograd's F(2x2, 3x3) algorithm.

A 3x3 convolution computes each 2x2 block of outputs from a 4x4 block of inputs. Winograd's
minimal filtering algorithm (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
2016) does that with 16 element-wise products instead of 36 multiplies per channel pair, so the
GEMM work falls 2.25x:

    V = B^T d B        (input transform: each 4x4 input tile d, per channel)
    U = G g G^T        (filter transform: done here, at compile time, on the weights table)
    M_i = V_i @ U_i    (16 GEMMs, i over the 4x4 positions: [tiles, C] x [C, F])
    Y = A^T M A        (output transform: the 2x2 outputs of each tile, per output channel)

The rewrite, on ember IR: the input is zero-padded (tensor.pad); one `linalg.generic` reads each
tile's 16 inputs (16 views of the padded input) and writes the 16 transformed tiles V_i
[N, TH, TW, C]; 16 `ember.gemm`s with the derived weights `<filter>.winograd<i>` [C, F] (which
ember-pack-weights packs like any other, so they run on the CPU micro-kernel); one
`linalg.generic` applies A^T . A and the conv's epilogue (bias, activation, residual) and writes
the four output phases, which four strided `tensor.insert_slice`s interleave into the result.

The transformed inputs and products are 16/4 = 4x the size of the input and output, so the
algorithm pays where the GEMMs dominate: convs with at least `min-channels` input channels.
Rewritten: NHWC, groups 1, 3x3 f32 weight filters, stride 1, dilation 1, static H, W, C, F and
even output sizes (so output tiles never straddle the edge). Others are left to
ember-conv-to-gemm. F(2x2, 3x3)'s transforms are exact in real arithmetic and add only a few
roundings in f32 (its constants are 0, +-1 and +-1/2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List

import numpy as np
from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ember.dialect import builders as eb

from .base import EmberPass, PassContext, register
from .conv_to_gemm import DenseConv
from .lower_to_linalg import UNARY, _dim, _pad_spatial
from .patterns import APPLIED, NOT_APPLIED, apply_patterns, string_attr

#: F(2x2, 3x3) transform matrices (Lavin & Gray, section 4.1).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def transform_filter(w: np.ndarray) -> np.ndarray:
    """[3, 3, C, F] filter -> U [16, C, F] with U[4i + j] = (G g G^T)[i, j] per (c, f)."""
    u = np.einsum("ik,klcf,jl->ijcf", G, w.astype(np.float64), G)
    return u.reshape(16, *w.shape[2:]).astype(w.dtype)


def _combine(rows: List, matrix: np.ndarray) -> List:
    """matrix @ rows for scalar SSA values, with the +-1 / +-1/2 / 0 coefficients as adds."""
    out = []
    for coefficients in matrix:
        acc = None
        for c, v in zip(coefficients, rows):
            if c == 0:
                continue
            term = v if abs(c) == 1 else arith.mulf(v, arith.constant(v.type, abs(float(c))))
            if acc is None:
                acc = term if c > 0 else arith.negf(term)
            else:
                acc = arith.addf(acc, term) if c > 0 else arith.subf(acc, term)
        out.append(acc)
    return out


def _transform_2d(tile: List[List], left: np.ndarray) -> List[List]:
    """left @ tile @ left^T for a square tile of scalar values (rows of lists)."""
    columns = list(zip(*tile))
    half = [_combine(list(col), left) for col in columns]     # left @ tile, by columns
    rows = list(zip(*half))                                    # back to rows
    return [_combine(list(r), left) for r in rows]


def _map(rank: int, results) -> ir.AffineMap:
    return ir.AffineMap.get(rank, 0, results)


def _multi_generic(inputs, inits, maps, body: Callable):
    """A parallel linalg.generic with several outputs; `body(*input scalars)` -> out scalars."""
    op = linalg.GenericOp_(inputs, inits, list(maps), ["parallel"] * 4)
    block = op.regions[0].blocks[0]
    with ir.InsertionPoint(block):
        linalg.YieldOp(body(*block.arguments[:len(inputs)]))
    return list(op.results)


@dataclass
class _Winograd:
    ctx: PassContext
    min_channels: int

    def __call__(self, op, rewriter) -> bool:
        conv = DenseConv.match(op)
        if conv is None:
            return NOT_APPLIED
        settings, weight, c, f = conv.settings, conv.weight, conv.channels, conv.filters
        oh, ow = ir.RankedTensorType(op.results[0].type).shape[1:3]
        if conv.kernel != (3, 3) or settings["strides"] != [1, 1] or \
                settings["dilations"] != [1, 1] or c < self.min_channels or oh % 2 or ow % 2:
            return NOT_APPLIED
        source = string_attr(weight, "name")
        names = [self.ctx.weights.derive(f"{source}.winograd{i}",
                                         lambda a, i=i: transform_filter(a)[i], [source],
                                         key=("ember-conv-winograd", source, i))
                 for i in range(16)]
        with rewriter.ip, op.location:
            y = self._rewrite(op, op.operands[0], names, settings, (oh // 2, ow // 2), c, f)
            rewriter.replace_op(op, [y])
        return APPLIED

    def _rewrite(self, op, x, names, settings, tiles, c, f):
        th, tw = tiles
        element = ir.F32Type.get()
        dyn = ir.ShapedType.get_dynamic_size()
        n = ir.RankedTensorType(x.type).shape[0]
        n_size = [] if n != dyn else [_dim(x, 0)]
        padded = _pad_spatial(x, (1, 2), settings["padding"])
        d = [ir.AffineDimExpr.get(i) for i in range(4)]              # (n, th, tw, channel)

        def empty(channels):
            return tensor.empty([n if n != dyn else n_size[0], th, tw, channels], element)
        # Input transform: V_i[n, th, tw, c] = (B^T d B)[i] over the tile at (2th, 2tw).
        windows = [_map(4, [d[0], d[1] * 2 + i, d[2] * 2 + j, d[3]])
                   for i in range(4) for j in range(4)]
        identity = _map(4, d)
        v = _multi_generic([padded] * 16, [empty(c) for _ in range(16)],
                           windows + [identity] * 16,
                           lambda *t: [e for row in _transform_2d(
                               [list(t[4 * i:4 * i + 4]) for i in range(4)], B_T) for e in row])
        # The 16 products, on the GEMM kernel once their weights are packed.
        product_type = ir.RankedTensorType.get([n, th, tw, f], element)
        products = [eb.gemm(v[i], eb.weight(ir, names[i], ir.RankedTensorType.get([c, f],
                                                                                 element)),
                            product_type) for i in range(16)]
        # Output transform + epilogue: the four phases Y_ab[n, th, tw, f] of out[n, 2th+a,
        # 2tw+b, f].
        bias, residual = eb.optional_operand(op, "bias"), eb.optional_operand(op, "residual")
        extra, extra_maps = [], []
        if bias is not None:
            extra.append(bias)
            extra_maps.append(_map(4, [d[3]]))
        if residual is not None:
            extra += [residual] * 4
            extra_maps += [_map(4, [d[0], d[1] * 2 + a, d[2] * 2 + b, d[3]])
                           for a in range(2) for b in range(2)]
        activation = UNARY[settings["activation"]]

        def output(*args):
            m, rest = list(args[:16]), list(args[16:])
            y = [e for row in _transform_2d([m[4 * i:4 * i + 4] for i in range(4)], A_T)
                 for e in row]
            if bias is not None:
                b_value = rest.pop(0)
                y = [arith.addf(e, b_value) for e in y]
            y = [activation(e) for e in y]
            if residual is not None:
                y = [arith.addf(e, r) for e, r in zip(y, rest)]
            return y
        phases = _multi_generic(products + extra, [empty(f) for _ in range(4)],
                                [identity] * 16 + extra_maps + [identity] * 4, output)
        out_type = ir.RankedTensorType(op.results[0].type)
        result = tensor.empty([n if n != dyn else n_size[0], 2 * th, 2 * tw, f], element)
        for p, (a, b) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            sizes = [dyn if n == dyn else n, th, tw, f]
            result = tensor.InsertSliceOp(
                phases[p], result, [], n_size, [], ir.DenseI64ArrayAttr.get([0, a, b, 0]),
                ir.DenseI64ArrayAttr.get(sizes), ir.DenseI64ArrayAttr.get([1, 2, 2, 1])).result
        assert ir.RankedTensorType(result.type) == out_type
        return result


@register
@dataclass
class ConvWinograd(EmberPass):
    """Rewrites 3x3 stride-1 NHWC convs as Winograd F(2x2, 3x3): transforms + 16 GEMMs."""
    name = "ember-conv-winograd"
    #: Off: leaves every conv to ember-conv-to-gemm.
    enabled: bool = True
    #: Convs with fewer input channels than this keep the direct (implicit-GEMM) algorithm.
    min_channels: int = 16

    def run(self, module, ctx: PassContext) -> None:
        if self.enabled:
            apply_patterns(module, {"ember.conv2d": [_Winograd(ctx, self.min_channels)]})
