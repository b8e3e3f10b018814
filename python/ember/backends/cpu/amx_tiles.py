"""int8 and bf16 GEMM tiles on AMX (Intel Sapphire Rapids and later): the tile registers do
the dot products.

The int8 kernel's task (ember.backends.cpu.microkernel.TaskEmitter) walks row tiles of C over
NR-column panels of the packed weight. On a target with AMX-INT8 each row tile (32 rows while
the accumulators fit, else 16; then the power-of-two tail pieces) is computed by *tile
functions*: 16-row accumulator tiles (x 16 int32 columns, NR/16 per row tile) gather
`tdpbusd` (u8 x s8; `tdpbssd` for s8 activations) of A tiles (16 rows x 64 bytes: 16 words of
K, read in place from the int8 kernel's A) by B tiles (16 words x 16 columns: 16 rows of a
packed panel, whose layout [panel, word, column] is exactly AMX's B layout), each B tile
serving every A tile of the step. One call computes a group of row tiles (group_tiles: an
`ldtilecfg` per call, not per tile) into a stack buffer, where the task's epilogue
(dequantization, bias, activation, residual, masked store: TaskEmitter's own) reads each tile
as vectors. A convolution's patch rows are first gathered per row block into a row-major
buffer (AmxTaskEmitter), which the A tiles then read with one stride.

K is unrolled and every shape is a constant, one shape set per function, so that each has
exactly one tile configuration (LLVM's AMX passes write its `ldtilecfg` at entry and
`tilerelease` at exit): the 16-word steps are one function, a K tail shorter than 16 words a
second one, which reloads the accumulators. Out of line (noinline): inlined, their shapes
would share the 8 tile registers of one configuration.

A bf16 kernel whose weight is packed in pairs (ember.gemm's rhs_pairs) runs the same tiles:
its words hold two consecutive k of bf16 instead of four of int8, A's rows (bf16, K even) are
read in place a pair per word, `tdpbf16ps` accumulates f32 tiles, and the epilogue is the float
kernel's (rounded to bf16 at the store).

Linux hands out the tile state only to processes that ask (arch_prctl ARCH_REQ_XCOMP_PERM);
cpu_support.c asks when an artifact is loaded.
"""
from __future__ import annotations

from typing import Dict, List

from mlir import ir
from mlir.dialects import arith, func, llvm, memref, vector

from ember.kit.builders import for_, i64, index
from ember.backends.cpu.microkernel import TaskEmitter
from ember.pipeline.target_info import TargetInfo

#: The tile dot product for each A encoding: int8 (u8 or 7-bit codes x s8, s8 x s8) into
#: int32, bf16 pairs x bf16 pairs into f32.
DOT_INTRINSICS = {"u8": "llvm.x86.tdpbusd.internal", "u7": "llvm.x86.tdpbusd.internal",
                  "s8": "llvm.x86.tdpbssd.internal", "bf16": "llvm.x86.tdpbf16ps.internal"}
#: llvm.getelementptr's raw constant index that stands for the next dynamic index.
GEP_DYNAMIC_INDEX = -2 ** 31
#: Bytes of one tile row, and rows of a B tile (K words per step).
TILE_BYTES = 64
TILE_ROWS = 16


def has_amx_int8(info: TargetInfo) -> bool:
    return {"amx-tile", "amx-int8"} <= info.enabled_features


def has_amx_bf16(info: TargetInfo) -> bool:
    return {"amx-tile", "amx-bf16"} <= info.enabled_features


def _ptr():
    return llvm.PointerType.get()


def _amx():
    return ir.Type.parse("!llvm.x86_amx")


def _i16(value: int):
    return arith.constant(ir.IntegerType.get_signless(16), value)


def _offset(base, byte_offset: int):
    """`base` + byte_offset (a GEP over i8)."""
    if not byte_offset:
        return base
    return llvm.getelementptr(_ptr(), base, [], [byte_offset], ir.IntegerType.get_signless(8),
                              None)


def _intrinsic(name: str, results, *args):
    return llvm.call_intrinsic(results, name, list(args), [], [])


def max_rows(nr: int) -> int:
    """Rows of C one tile function computes: 32 (two A tiles, each B tile used twice) while
    the accumulators fit: 2 x NR/16 of them, the A tiles and one B tile in 8 registers."""
    return 2 * TILE_ROWS if nr // 16 <= 2 else TILE_ROWS


def group_tiles(nr: int) -> int:
    """Row tiles one tile-function call computes: their int32 results (32 rows x NR each) fill
    at most 64 KiB of the task's stack. A call costs an `ldtilecfg` and a `tilerelease`
    (about as much as a 32 x 32 tile's dot products over a short K: the CNN's stem spent 70%
    of its tile time configuring), which a group pays once."""
    return max(1, (64 * 1024) // (2 * TILE_ROWS * nr * 4))


def emit_tile_function(module_block, name: str, rows: int, words: range, k_words: int,
                       nr: int, dot: str) -> str:
    """Defines `name(a, b, c, count)`: for each of `count` row tiles t, C[t][v] (rows x 16
    int32 (f32 for a bf16 `dot`) for v < NR/16, stored at c + ((t * NR/16 + v) * 32 + row) *
    64 bytes) accumulates
    A's rows t * rows + [0, rows) (rows of 4 * k_words bytes from a) times B (a packed panel
    of NR columns) over the K words in `words`, whose steps are all 16 words or all one
    shorter tail (one tile shape per function: a K tail gets a function of its own); C starts
    at zero when `words` starts at 0, else from what c holds."""
    with ir.InsertionPoint(module_block):
        fn = func.FuncOp(name, ([_ptr(), _ptr(), _ptr(), ir.IndexType.get()], []),
                         visibility="private")
        # Inlined into the task, the tile functions' shapes would share one configuration
        # (and the 8 tile registers).
        fn.attributes["passthrough"] = ir.ArrayAttr.get([ir.StringAttr.get("noinline")])
    with ir.InsertionPoint(fn.add_entry_block()):
        a0, b, c0, count = fn.entry_block.arguments
        tiles = nr // 16

        def row_tile(t):
            a = _offset_by(a0, t, rows * 4 * k_words)
            c = _offset_by(c0, t, tiles * 2 * TILE_ROWS * TILE_BYTES)
            _emit_tile(a, b, c, rows, words, k_words, nr, dot)
        for_(index(0), count, index(1), (), row_tile)
        func.ReturnOp([])
    return name


def _offset_by(base, i, stride: int):
    """`base` + i * stride bytes (i an index value)."""
    i64t = ir.IntegerType.get_signless(64)
    step = arith.muli(arith.index_cast(i64t, i), arith.constant(i64t, stride))
    return llvm.getelementptr(_ptr(), base, [step], [GEP_DYNAMIC_INDEX],
                              ir.IntegerType.get_signless(8), None)


def _emit_tile(a, b, c, rows: int, words: range, k_words: int, nr: int, dot: str):
    """One row tile of emit_tile_function: its accumulators, the K steps, the stores; `dot`
    the tile intrinsic (DOT_INTRINSICS)."""
    i64t = ir.IntegerType.get_signless(64)
    full = _i16(TILE_BYTES)
    a_stride = arith.constant(i64t, 4 * k_words)
    b_stride, c_stride = arith.constant(i64t, nr * 4), arith.constant(i64t, TILE_BYTES)
    row_tiles = [(r, min(TILE_ROWS, rows - r)) for r in range(0, rows, TILE_ROWS)]
    tiles = nr // 16

    def c_at(r, v):
        return _offset(c, (v * 2 * TILE_ROWS + r) * TILE_BYTES)
    if words.start == 0:
        accs = {(r, v): _intrinsic("llvm.x86.tilezero.internal", _amx(), _i16(n), full)
                for r, n in row_tiles for v in range(tiles)}
    else:
        accs = {(r, v): _intrinsic("llvm.x86.tileloadd64.internal", _amx(), _i16(n), full,
                                   c_at(r, v), c_stride)
                for r, n in row_tiles for v in range(tiles)}
    for k in words:
        kt = min(TILE_ROWS, words.stop - k)
        k_bytes = _i16(4 * kt)
        tile_a = {r: _intrinsic("llvm.x86.tileloadd64.internal", _amx(), _i16(n), k_bytes,
                                _offset(a, 4 * (r * k_words + k)), a_stride)
                  for r, n in row_tiles}
        for v in range(tiles):
            tile_b = _intrinsic("llvm.x86.tileloadd64.internal", _amx(), _i16(kt), full,
                                _offset(b, (k * nr + v * 16) * 4), b_stride)
            for r, n in row_tiles:
                accs[r, v] = _intrinsic(dot, _amx(), _i16(n), full, k_bytes, accs[r, v],
                                        tile_a[r], tile_b)
    for (r, v), acc in accs.items():
        _intrinsic("llvm.x86.tilestored64.internal", None, _i16(dict(row_tiles)[r]), full,
                   c_at(r, v), c_stride, acc)


def _collapsed_rows(view):
    """The type of NHWC memref `view` as [N, H, W * C]."""
    n, h, w, c = ir.MemRefType(view.type).shape
    width = ir.ShapedType.get_dynamic_size() if ir.ShapedType.is_dynamic_size(w) else w * c
    return ir.MemRefType.get([n, h, width], ir.MemRefType(view.type).element_type)


class AmxTaskEmitter(TaskEmitter):
    """TaskEmitter whose register tile is computed on the AMX tile registers (see the module
    docstring); blocking, threads, tails and the epilogue are the int8 kernel's.

    A patch kernel (an int8 convolution) packs: each MC-row block of its implicit im2col
    rows is gathered once, tap by tap (C contiguous bytes of one input pixel each), into a
    row-major [MC, 4K] byte buffer, whose rows the A tiles then load with one stride; every
    panel of the block reuses it."""

    packs_int8 = True

    def __init__(self, spec, schedule, element, dot, module_block, name: str):
        super().__init__(spec, schedule, element, dot)
        if spec.nr % 16 or schedule.mr > max_rows(spec.nr) or spec.batch or \
                schedule.pack_a != (spec.patches is not None):
            raise ValueError("an AMX int8 kernel needs NR a multiple of 16, at most "
                             "max_rows(NR) rows per tile, an unbatched A, and packs exactly "
                             "a patch A")
        self.module_block, self.name = module_block, name
        self.tile_functions: Dict[tuple, str] = {}

    def _packed_buffer(self):
        """[MC, 4K] bytes ([MC, 2K] bf16 in a pairs kernel): the block's patch rows, row-major
        as AMX A tiles read them."""
        element = ir.MemRefType(self.ops.a.type).element_type
        per_word = 2 if self.spec.pairs else 4
        return memref.alloca(ir.MemRefType.get([self.s.mc, per_word * self.spec.k], element),
                             [], [], alignment=i64(64))

    def _pack_a(self, blk) -> None:
        """packed[row - m0, tap * C + c] = input[image, ih(row) + kh*DH, iw(row) + kw*DW, c]
        for the block's rows, in vectors of at most 64 bytes: per tap, or per filter row
        when DW = 1 (its KW taps are then KW * C contiguous bytes of the input)."""
        _, _, channels, kh, kw, _, _, dh, dw = self.spec.patches
        runs = [(t // kw, t % kw, channels) for t in range(kh * kw)] if dw != 1 else \
            [(r, 0, kw * channels) for r in range(kh)]
        element = ir.MemRefType(self.ops.a.type).element_type
        per_vector = TILE_BYTES // (2 if self.spec.pairs else 1)     # elements of 64 bytes

        # The input's rows as [N, Hp, Wp * C] bytes: a run crosses pixels.
        rows = memref.collapse_shape(_collapsed_rows(self.ops.a), self.ops.a, [[0], [1], [2, 3]])

        def row(i):
            image, ih, iw = self._patch_row(i)
            dst = arith.subi(i, blk.m0)
            k = 0
            for r, c, length in runs:
                at = [image, arith.addi(ih, index(r * dh)),
                      arith.muli(arith.addi(iw, index(c * dw)), index(channels))]
                for off in range(0, length, per_vector):
                    run = ir.VectorType.get([min(per_vector, length - off)], element)
                    vector.store(vector.load(run, rows, [*at[:2], arith.addi(at[2], index(off))]),
                                 blk.packed, [dst, index(k + off)])
                k += length
        for_(blk.m0, blk.m1, index(1), (), row)

    def emit_task(self, ops, m0, m1, p0, p1, batch_index=None) -> None:
        products = ir.F32Type.get() if self.spec.pairs else ir.IntegerType.get_signless(32)
        self.c_tiles = memref.alloca(ir.MemRefType.get(
            [group_tiles(self.spec.nr), self.spec.nr // 16, 2 * TILE_ROWS, 16], products), [],
            [], alignment=i64(64))
        super().emit_task(ops, m0, m1, p0, p1, batch_index)

    def _tile_functions(self, rows: int) -> List[str]:
        """The tile functions C = A x B runs through for `rows` rows: the whole 16-word steps,
        then the K tail."""
        k = self.spec.k
        full = k - k % TILE_ROWS
        parts = [range(0, full, TILE_ROWS)] if full else []
        parts += [range(full, k, TILE_ROWS)] if full < k else []
        names = []
        for words in parts:
            key = (rows, words.start)
            if key not in self.tile_functions:
                self.tile_functions[key] = emit_tile_function(
                    self.module_block, f"{self.name}_amx{rows}_k{words.start}", rows, words, k,
                    self.spec.nr, DOT_INTRINSICS["bf16" if self.spec.pairs else self.spec.int8])
            names.append(self.tile_functions[key])
        return names

    def _address(self, view, byte_offset):
        """The pointer `view`'s data + byte_offset (an index value)."""
        i64t = ir.IntegerType.get_signless(64)
        base = arith.index_cast(i64t, memref.extract_aligned_pointer_as_index(view))
        return llvm.inttoptr(_ptr(), arith.addi(base, arith.index_cast(i64t, byte_offset)))

    def _full_tiles(self, blk, count, p, cols: int) -> None:
        """The MR-row tiles in groups (group_tiles): one tile-function call per group, then
        the epilogue of each of its tiles."""
        group = group_tiles(self.spec.nr)

        def run(t0):
            n = arith.minsi(index(group), arith.subi(count, t0))
            self._dot_tiles(blk, self.s.mr, t0, index(0), p, n)
            for_(index(0), n, index(1), (), lambda slot: self._finish_tile(
                blk, self.s.mr, arith.addi(t0, slot), index(0), p, cols, slot))
        for_(index(0), count, index(group), (), run)

    def _tile(self, blk, rows: int, t, r0, p, cols: int) -> None:
        self._dot_tiles(blk, rows, t, r0, p, index(1))
        self._finish_tile(blk, rows, t, r0, p, cols, index(0))

    def _dot_tiles(self, blk, rows: int, t, r0, p, count) -> None:
        """c_tiles[0 .. count) = the int32 products of `count` tiles of `rows` rows from tile
        t (+ r0 rows) on, times panel p."""
        spec = self.spec
        first = arith.addi(arith.addi(blk.m0, arith.muli(t, index(self.s.mr))), r0)
        a = self._address(self.ops.a, arith.muli(first, index(4 * spec.k))) \
            if blk.packed is None else \
            self._address(blk.packed, arith.muli(arith.subi(first, blk.m0), index(4 * spec.k)))
        b = self._address(self.ops.b, arith.muli(p, index(spec.k * spec.nr * 4)))
        c = self._address(self.c_tiles, index(0))
        for name in self._tile_functions(rows):
            func.call([], name, [a, b, c, count])

    def _finish_tile(self, blk, rows: int, t, r0, p, cols: int, slot) -> None:
        """The epilogue of the tile whose products c_tiles[slot] holds, stored to C."""
        nvec, rows_at, cols_at, masks = self._tile_place(blk, rows, t, r0, p, cols)
        accs = [vector.load(self.vtype, self.c_tiles, [slot, index(v), index(r), index(0)])
                for r in range(rows) for v in range(nvec)]
        self._store_tile(self._epilogue(accs, rows_at, cols_at, masks, rows, nvec), rows_at,
                         cols_at, masks)
