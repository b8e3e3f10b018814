"""ember-conv-winograd: 3x3 stride-1 NHWC convolutions by Winograd's F(m x m, 3x3) algorithm.

A 3x3 convolution computes each m x m block of outputs from an (m+2) x (m+2) block of inputs.
Winograd's minimal filtering algorithm (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", 2016) does that with (m+2)^2 element-wise products instead of 9 m^2 multiplies
per channel pair, so the GEMM work falls 2.25x (m = 2) or 4x (m = 4):

    V = B^T d B        (input transform: each input tile d, per channel)
    U = G g G^T        (filter transform: done here, at compile time, on the weights table)
    M_i = V_i @ U_i    ((m+2)^2 GEMMs, i over the tile positions: [tiles, C] x [C, F])
    Y = A^T M A        (output transform: the m x m outputs of each tile, per output channel)

The rewrite, on ember IR: the input is zero-padded (tensor.pad); one `linalg.generic` reads the
16 (t*t) strided views of it that hold pixel (i, j) of every tile (so its maps are identities and
it vectorizes along C) and writes the transformed tiles V_i [N, TH, TW, C]; one `ember.gemm`
per position with the derived weight `<filter>.winograd<m>.<i>` [C, F] (which
ember-pack-weights packs like any other, so they run on the CPU micro-kernel); one
`linalg.generic` over the tiles applies A^T . A to each tile's products and the conv's epilogue
(bias, activation, residual) to its m x m outputs, each written into a strided view of the
output seen as [N, TH, m, TW, m, F] (a row-major reshape of [N, OH, OW, F]; `output_tiles`,
which the int8 convs of ember.backends.cpu.qconv_winograd share).

Blocked (the default): V and the products are (m+2)^2/m^2 times the size of the input and
output, so on a large image the three steps above would each stream them through memory.
Instead the tiles are split into blocks whose transformed data fits in half of L2 (`TileBlocks`:
R tile rows of one image, or B whole images when an image is small), and an scf.forall over
the blocks (OpenMP threads) zero-pads its block's window of the input (only the window: the
copy stays in cache, and the whole input is never padded), runs all three steps on it and
writes its slice of the output; the GEMM kernels then run on the calling thread. Convs
with fewer than `min-blocks` blocks (default: twice the cores) are done whole.

With `tile=4`, F(4x4) is used where 4 divides both output sizes, else F(2x2) where 2 does (so
output tiles never straddle the edge). The algorithm pays where the GEMMs dominate: convs with
at least `min-channels` input channels.
Rewritten: NHWC, groups 1, 3x3 f32 weight filters, stride 1, dilation 1, static H, W, C, F.
Others are left to ember-conv-to-gemm. The transforms are exact in real arithmetic; in f32 they
add a few roundings (F(4x4)'s constants reach 8 and 1/24, so a few more than F(2x2)'s).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from mlir import ir
from mlir.dialects import arith, scf, tensor

from ember.backends.cpu.microkernel import CpuTraits
from ember.dialect.ops import Conv2d, Gemm, Weight
from ember.kit.builders import constant, index
from ember.kit.epilogue import apply_epilogue
from ember.kit.rewrite import APPLIED, NOT_APPLIED, apply_patterns
from ember.kit.structured import PARALLEL, generic_into, pad_spatial, tensor_dim
from ember.lowering.conv_to_gemm import DenseConv
from ember.pipeline.pass_base import EmberPass, PassContext, register

@dataclass(frozen=True)
class Algorithm:
    """Winograd F(m x m, 3 x 3): m x m outputs per (m+2) x (m+2) input tile, (m+2)^2 GEMMs."""
    m: int
    b_t: np.ndarray     # (m+2) x (m+2) input transform
    g: np.ndarray       # (m+2) x 3 filter transform
    a_t: np.ndarray     # m x (m+2) output transform

    @property
    def tile(self) -> int:
        return self.m + 2


#: F(2x2, 3x3) and F(4x4, 3x3) with interpolation points 0, +-1 (and +-2) (Lavin & Gray,
#: section 4.1 and 4.2). F(4x4) needs 2.25 products per output instead of F(2x2)'s 4 (direct:
#: 9) and moves less data per output, at a few more roundings (its constants reach 8 and 1/24).
F2 = Algorithm(2, np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
               np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
               np.array([[1, 1, 1, 0], [0, 1, -1, -1]]))
F4 = Algorithm(4, np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                            [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]),
               np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                         [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
               np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                         [0, 1, -1, 8, -8, 1]]))


def transform_filter(w: np.ndarray, algorithm: Algorithm = F2) -> np.ndarray:
    """[3, 3, C, F] filter -> U [t*t, C, F] with U[t*i + j] = (G g G^T)[i, j] per (c, f)."""
    g = algorithm.g.astype(np.float64)
    u = np.einsum("ik,klcf,jl->ijcf", g, w.astype(np.float64), g)
    return u.reshape(algorithm.tile ** 2, *w.shape[2:]).astype(w.dtype)


def _combine(rows: List, matrix: np.ndarray) -> List:
    """matrix @ rows for scalar SSA values, with the +-1 / +-1/2 / 0 coefficients as adds
    (floats; integers, whose matrices have integer entries, in wrapping integer ops)."""
    integer = isinstance(rows[0].type, ir.IntegerType)
    add, sub, mul = (arith.addi, arith.subi, arith.muli) if integer else \
        (arith.addf, arith.subf, arith.mulf)
    out = []
    for coefficients in matrix:
        acc = None
        for c, v in zip(coefficients, rows):
            if c == 0:
                continue
            term = v if abs(c) == 1 else mul(v, constant(abs(c), v.type))
            if acc is None:
                acc = term if c > 0 else \
                    arith.subi(constant(0, v.type), term) if integer else arith.negf(term)
            else:
                acc = add(acc, term) if c > 0 else sub(acc, term)
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


@dataclass(frozen=True)
class TileBlocks:
    """How a conv's tiles are split into blocks, each transformed, multiplied and transformed
    back while its data is in cache (the blocks are the iterations of an scf.forall, OpenMP
    threads on the host). A block is B whole images or R tile rows of one image."""
    #: Bytes of transformed tiles and products one block may have (about half of L2).
    budget: int
    #: Split only into at least this many blocks (so every thread gets a few).
    min_blocks: int

    def plan(self, n: Optional[int], th: int, tw: int, tile_bytes: int):
        """(images, rows) per block for N (None: dynamic) x TH x TW tiles of `tile_bytes`
        each, or None for one block of everything (too few blocks to share)."""
        def count(block):
            images, rows = block
            return (n // images if n else 1) * (th // rows)
        candidates = [(1, r) for r in range(1, th + 1) if th % r == 0]
        if n:
            candidates += [(b, th) for b in range(2, n + 1) if n % b == 0]
        candidates = [b for b in candidates if count(b) >= self.min_blocks]
        if not candidates:
            return None
        most = max(1, self.budget // tile_bytes)
        fitting = [b for b in candidates if b[0] * b[1] * tw <= most]
        best = max(fitting, key=lambda b: b[0] * b[1]) if fitting else \
            min(candidates, key=lambda b: b[0] * b[1])
        return best


@dataclass
class _Winograd:
    ctx: PassContext
    min_channels: int
    algorithms: tuple       # tried in order; the first whose m divides the output size wins
    blocks: Optional[TileBlocks]       # None: not blocked

    def __call__(self, op, rewriter) -> bool:
        dense = DenseConv.match(op)
        if dense is None or not isinstance(
                ir.RankedTensorType(dense.conv.result.type).element_type, ir.F32Type):
            return NOT_APPLIED              # 16-bit convolutions: the patch GEMM kernel
        conv, c, f = dense.conv, dense.channels, dense.filters
        oh, ow = ir.RankedTensorType(conv.result.type).shape[1:3]
        if dense.kernel != (3, 3) or conv.strides != [1, 1] or conv.dilations != [1, 1] or \
                c < self.min_channels:
            return NOT_APPLIED
        algorithm = next((a for a in self.algorithms if oh % a.m == 0 and ow % a.m == 0), None)
        if algorithm is None:
            return NOT_APPLIED
        source = dense.weight.name
        names = [self.ctx.weights.derive(
            f"{source}.winograd{algorithm.m}.{i}",
            lambda a, i=i: transform_filter(a, algorithm)[i], [source],
            key=("ember-conv-winograd", source, algorithm.m, i))
            for i in range(algorithm.tile ** 2)]
        with rewriter.ip, op.location:
            y = self._rewrite(conv, names, algorithm, c, f)
            rewriter.replace_op(op, [y])
        return APPLIED

    def _rewrite(self, conv: Conv2d, names, algorithm: Algorithm, c, f):
        element = ir.F32Type.get()
        weight_type = ir.RankedTensorType.get([c, f], element)
        weights = [Weight.build(weight_type, name=name) for name in names]
        bias, activation = conv.bias, conv.activation

        def tiles(window, residual, grid, dest):
            return _tiles(window, weights, bias, residual, activation, algorithm, grid, f,
                          dest)
        return winograd_blocks(conv.input, ir.RankedTensorType(conv.result.type), conv.padding,
                               0.0, conv.residual, algorithm, self.blocks,
                               algorithm.tile ** 2 * (c + f) * 4, tiles)


def winograd_blocks(x, out_type, padding, pad_value, residual, algorithm: Algorithm,
                    blocks: Optional[TileBlocks], tile_bytes: int, tiles):
    """The [N, OH, OW, F] result (`out_type`) of a 3x3 stride-1 conv of NHWC `x` padded by
    `padding` with `pad_value`, by Winograd: one block of everything, or (`blocks`, planned for
    `tile_bytes` of transformed data per tile) an scf.forall over blocks of tiles, each
    padding only its window of x. `tiles(window, residual, grid, dest)` builds the three
    steps on a [B, R*m+2, TW*m+2, C] window for its grid = [B, R, TW] tiles and returns their
    outputs as [B, R, m, TW, m, F] (written into `dest`, its slice of the result, or a new
    tensor when None); `residual` (None, or of the result's shape) is passed in that shape.
    Shared by the f32 convs here and the int8 ones (ember.backends.cpu.qconv_winograd)."""
    m = algorithm.m
    n, oh, ow, f = out_type.shape
    th, tw = oh // m, ow // m
    element = out_type.element_type
    dyn = ir.ShapedType.get_dynamic_size()
    n_size = [] if n != dyn else [tensor_dim(x, 0)]
    batch = n if n != dyn else n_size[0]
    plan = blocks and blocks.plan(n if n != dyn else None, th, tw, tile_bytes)
    groups = [[0], [1, 2], [3, 4], [5]]
    view_sizes = [batch, th, m, tw, m, f]

    def tiled(value, shape, sizes=()):
        return tensor.expand_shape(ir.RankedTensorType.get(
            shape, ir.RankedTensorType(value.type).element_type), value, groups, list(sizes),
            shape)
    if plan is None:                    # one block: the whole tensors
        padded = pad_spatial(x, (1, 2), padding, pad_value)
        if residual is not None:
            residual = tiled(residual, [n, th, m, tw, m, f], n_size)
        view = tiles(padded, residual, [batch, th, tw], None)
        return tensor.collapse_shape(out_type, view, groups)
    images, rows = plan
    counts = [n // images if n != dyn else batch, th // rows]
    forall = scf.ForallOp([0, 0], counts, [1, 1], [tensor.empty(view_sizes, element)])
    with ir.InsertionPoint(forall.body):
        b, r = forall.induction_variables
        first_image = arith.muli(b, index(images))
        first_row = arith.muli(r, index(rows))
        first_pixel = arith.muli(first_row, index(m))
        window = _padded_window(x, first_image, first_pixel, images, rows * m + 2, padding,
                                pad_value)
        part_residual = None
        if residual is not None:
            part_residual = tiled(_slice(residual, [first_image, first_pixel, 0, 0],
                                         [images, rows * m, ow, f]), [images, rows, m, tw, m, f])
        dest = _slice(forall.inner_iter_args[0], [first_image, first_row, 0, 0, 0, 0],
                      [images, rows, m, tw, m, f])
        part = tiles(window, part_residual, [images, rows, tw], dest)
        with ir.InsertionPoint(forall.terminator().block):
            tensor.ParallelInsertSliceOp(
                part, forall.inner_iter_args[0], [first_image, first_row], [], [],
                [dyn, dyn, 0, 0, 0, 0], [images, rows, m, tw, m, f], [1] * 6)
    return tensor.collapse_shape(out_type, forall.results[0], groups)


def _padded_window(x, first_image, first_row, images: int, rows: int, padding, pad_value):
    """Rows [first_row, first_row + rows) of `x` padded with `pad_value` by `padding` =
    (ph, pw) on H and W, for `images` images from `first_image`: [images, rows, W + 2 pw, C].
    Only the window is padded (a copy that stays in cache), never the whole input."""
    ph, pw = padding
    n, h, w, c = ir.RankedTensorType(x.type).shape
    if ph == 0 and pw == 0:
        return _slice(x, [first_image, first_row, 0, 0], [images, rows, w, c])
    start = arith.subi(first_row, index(ph))              # first row, in x's coordinates
    end = arith.addi(start, index(rows))
    lo = arith.maxsi(start, index(0))
    hi = arith.minsi(end, index(h))
    inside = _slice(x, [first_image, lo, 0, 0], [images, arith.subi(hi, lo), w, c])
    element = ir.RankedTensorType(x.type).element_type
    pad = tensor.PadOp(ir.RankedTensorType.get([images, rows, w + 2 * pw, c], element), inside,
                       [arith.subi(lo, start)], [arith.subi(end, hi)],
                       [0, ir.ShapedType.get_dynamic_size(), pw, 0],
                       [0, ir.ShapedType.get_dynamic_size(), pw, 0])
    block = pad.regions[0].blocks.append(*[ir.IndexType.get()] * 4)
    with ir.InsertionPoint(block):
        tensor.YieldOp(constant(pad_value, element))
    return pad.result


def _slice(x, offsets, sizes, strides=None):
    """x[offsets : offsets + sizes * strides : strides] (static strides; offsets and sizes ints
    or index values)."""
    dyn = ir.ShapedType.get_dynamic_size()

    def split(values):
        return ([v for v in values if not isinstance(v, int)],
                [v if isinstance(v, int) else dyn for v in values])
    dynamic_offsets, static_offsets = split(offsets)
    dynamic_sizes, static_sizes = split(sizes)
    result = ir.RankedTensorType.get(static_sizes, ir.RankedTensorType(x.type).element_type)
    return tensor.ExtractSliceOp(result, x, dynamic_offsets, dynamic_sizes, [], static_offsets,
                                 static_sizes, strides or [1] * len(sizes)).result


def _tiles(padded, weights, bias, residual, activation: str, algorithm: Algorithm, grid, f,
           dest=None):
    """Winograd on a [B, R*m+2, TW*m+2, C] padded input window: its grid = [B, R, TW] tiles'
    outputs as [B, R, m, TW, m, F] (residual, when given, in that shape too), written into
    `dest` (the slice of the result it is inserted into, so it is written in place) or a new
    tensor."""
    t = algorithm.tile
    element = ir.F32Type.get()
    v = input_tiles(padded, grid, algorithm, element)
    # The t*t products, on the GEMM kernel once their weights are packed.
    static_grid = [g if isinstance(g, int) else ir.ShapedType.get_dynamic_size() for g in grid]
    product_type = ir.RankedTensorType.get(static_grid + [f], element)
    products = [Gemm.build(v[i], weights[i], product_type) for i in range(t * t)]
    return output_tiles(products, [bias] if bias is not None else [], residual, algorithm,
                        grid, f, element, dest,
                        lambda y, channel, r: apply_epilogue(
                            y, activation, channel[0] if channel else None, r))


def input_tiles(window, grid, algorithm: Algorithm, element, value=None) -> list:
    """V_i [B, R, TW, C] of `element` for i < t*t: (B^T d B)[i] over the grid = [B, R, TW]
    tiles of a [B, R*m+2, TW*m+2, C] window, d its pixels (`value(pixel)` when given: int8
    codes widened, less their zero point). Pixel (i, j) of every tile is a view of the window
    with stride m, so all maps are identities and the one generic vectorizes along C."""
    m, t = algorithm.m, algorithm.tile
    c = ir.RankedTensorType(window.type).shape[3]
    views = [_slice(window, [0, i, j, 0], grid + [c], [1, m, m, 1])
             for i in range(t) for j in range(t)]

    def body(*args):
        d = [value(x) if value else x for x in args[:t * t]]
        square = [d[t * i:t * i + t] for i in range(t)]
        return [e for row in _transform_2d(square, algorithm.b_t) for e in row]
    identity = _map(4, [ir.AffineDimExpr.get(i) for i in range(4)])
    return generic_into(views, [tensor.empty(grid + [c], element) for _ in range(t * t)],
                        [identity] * (2 * t * t), [PARALLEL] * 4, body)


def output_tiles(products, channel_values, residual, algorithm: Algorithm, grid, f: int,
                 element, dest, finish):
    """[B, R, m, TW, m, F] of `element`, written into `dest` (or a new tensor): the m x m
    outputs y of each tile, (A^T M A) of its t*t products [B, R, TW, F], as
    `finish(y, [channel values], residual value or None)`; `channel_values` are [F] tensors
    (bias, scales), `residual` (or None) has the result's shape. One generic over the tiles
    transforms each tile once and writes its m*m outputs into strided views of `dest` (output
    (a, b) of every tile). One-shot bufferization cannot tell those views apart, so all but
    one are written through a copy: on the CNN (int8, AVX2) still 2.5% faster end to end
    than a generic over the outputs that transformed each tile m*m times to keep one output."""
    m, t = algorithm.m, algorithm.tile
    batch, rows, tw = grid
    if dest is None:
        dest = tensor.empty([batch, rows, m, tw, m, f], element)
    corners = [(a, b) for a in range(m) for b in range(m)]
    e = [ir.AffineDimExpr.get(i) for i in range(4)]
    tiles, channel = _map(4, e), _map(4, [e[3]])
    inputs = list(products) + list(channel_values) + \
        ([_corner(residual, a, b) for a, b in corners] if residual is not None else [])
    maps = [tiles] * (t * t) + [channel] * len(channel_values) + \
        [tiles] * (len(corners) * (residual is not None)) + [tiles] * len(corners)

    def body(*args):
        square = [list(args[t * i:t * i + t]) for i in range(t)]
        rest = list(args[t * t:-len(corners)])
        values, residuals = rest[:len(channel_values)], rest[len(channel_values):]
        y = [v for row in _transform_2d(square, algorithm.a_t) for v in row]
        return [finish(v, values, residuals[i] if residuals else None)
                for i, v in enumerate(y)]
    outputs = generic_into(inputs, [_corner(dest, a, b) for a, b in corners], maps,
                           [PARALLEL] * 4, body)
    for (a, b), part in zip(corners, outputs):
        dest = _corner(dest, a, b, part)
    return dest


def _corner(tiles, a: int, b: int, part=None):
    """Output (a, b) of every tile of a [B, R, m, TW, m, F] tensor, as a strided [B, R, TW, F]
    view; with `part`, `tiles` with that view replaced by it."""
    shape = ir.RankedTensorType(tiles.type).shape
    dyn = ir.ShapedType.get_dynamic_size()
    sizes = [shape[0], shape[1], 1, shape[3], 1, shape[5]]
    dynamic = [tensor_dim(tiles, 0)] if shape[0] == dyn else []
    offsets, strides = [0, 0, a, 0, b, 0], [1] * 6
    if part is not None:
        return tensor.InsertSliceOp(part, tiles, [], dynamic, [], offsets, sizes,
                                    strides).result
    view = ir.RankedTensorType.get([shape[0], shape[1], shape[3], shape[5]],
                                   ir.RankedTensorType(tiles.type).element_type)
    return tensor.ExtractSliceOp(view, tiles, [], dynamic, [], offsets, sizes, strides).result


@register
@dataclass
class ConvWinograd(EmberPass):
    """Rewrites 3x3 stride-1 NHWC convs as Winograd F(4x4 or 2x2, 3x3): transforms + GEMMs."""
    name = "ember-conv-winograd"
    #: Off: leaves every conv to ember-conv-to-gemm.
    enabled: bool = True
    #: Convs with fewer input channels than this keep the direct (implicit-GEMM) algorithm.
    min_channels: int = 16
    #: Largest output tile: 2 (F(2x2)), or 4 (F(4x4) where 4 divides the output size, else
    #: F(2x2)). F(4x4) halves the products again but its 36-view transforms cost more than
    #: that saves on the benchmark CNN (2 threads: 22.4 ms vs 20.2 ms), so 2 is the default.
    tile: int = 2
    #: Transform, multiply and transform back blocks of tiles whose data fits in cache (one
    #: iteration of a parallel loop each); false: each step over all tiles at once.
    blocked: bool = True
    #: Bytes of transformed data per block; 0: half the target's L2.
    block_bytes: int = 0
    #: Blocks a conv needs before it is split (fewer: one block); 0: twice the target's cores.
    min_blocks: int = 0

    def run(self, module, ctx: PassContext) -> None:
        if self.tile not in (2, 4):
            raise ValueError(f"ember-conv-winograd: tile must be 2 or 4, got {self.tile}")
        if self.enabled:
            algorithms = (F4, F2) if self.tile == 4 else (F2,)
            traits = CpuTraits.from_target(ctx.require_target(self.name))
            blocks = TileBlocks(self.block_bytes or traits.l2 // 2,
                                self.min_blocks or 2 * traits.cores) if self.blocked else None
            apply_patterns(module, {Conv2d.op_name: [_Winograd(ctx, self.min_channels,
                                                               algorithms, blocks)]})
