"""int8 and bf16 GEMM tiles on AMX (Intel Sapphire Rapids and later): the tile registers do
the dot products.

The int8 kernel's task (ember.backends.cpu.microkernel.TaskEmitter) walks row tiles of C over
NR-column panels of the packed weight. On a target with AMX-INT8 each row tile (32 rows while
the accumulators fit, else 16; then the power-of-two tail pieces) is computed by *tile
functions*: 16-row accumulator tiles (x 16 int32 columns, NR/16 per row tile) gather
`tdpbusd` (u8 x s8; `tdpbssd` for s8 activations) of A tiles (16 rows x 64 bytes: 16 words of
K, read in place from the int8 kernel's A) by B tiles (16 words x 16 columns: 16 rows of a
packed panel, whose layout [panel, word, column] is exactly AMX's B layout), each B tile
serving every A tile of the step. A tile's products go to a stack buffer, where the epilogue
(dequantization, bias, activation, residual, masked store: TaskEmitter's own) reads them as
vectors. A convolution's patch rows are read in place from the padded input where each A tile
lies in one output row and K's steps fit a filter row (PatchRowsA), else first gathered per
row block into a row-major buffer (AmxTaskEmitter), which the A tiles then read with one
stride.

K is unrolled and every shape is a constant, one shape set per function, so that each has
exactly one tile configuration (LLVM's AMX passes write its `ldtilecfg` at entry and
`tilerelease` at exit, which a call pays once for all its tiles): the whole steps are one
function, a K tail shorter than them a second one, which reloads the accumulators. Out of line
(noinline): inlined, their shapes would share the 8 tile registers of one configuration. Where
one function takes all of K, it also runs the epilogue, of each tile while the tile unit
multiplies the next one, and one call covers all the full tiles of a row block's panels; with
a K tail, a call computes a group of one panel's row tiles (group_tiles) and the task finishes
them.

A bf16 kernel whose weight is packed in pairs (ember.gemm's rhs_pairs) runs the same tiles:
its words hold two consecutive k of bf16 instead of four of int8, A's rows (bf16, K even) are
read in place a pair per word, `tdpbf16ps` accumulates f32 tiles, and the epilogue is the float
kernel's (rounded to bf16 at the store).

Linux hands out the tile state only to processes that ask (arch_prctl ARCH_REQ_XCOMP_PERM);
cpu_support.c asks when an artifact is loaded.
"""
from __future__ import annotations

import math
from typing import Dict, List

from mlir import ir
from mlir.dialects import arith, func, llvm, memref, vector

from ember.kit.builders import GemmOperands, for_, i64, if_, index
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
#: Vectors of a tile the epilogue finishes at a time (whole rows; a row if wider).
FINISH_VECTORS = 8


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


class RowMajorA:
    """A tiles of a row-major A (a GEMM's A, or a convolution's gathered patch rows): row m
    at a + m * row_bytes, word k of it 4k bytes further."""

    def __init__(self, row_bytes: int):
        self.stride = row_bytes

    def row(self, a, m):
        """The address of A's row m (an index value)."""
        return _offset_by(a, m, self.stride)

    def word_offset(self, k: int) -> int:
        return 4 * k


class PatchRowsA:
    """A tiles read in place from a convolution's padded NHWC input (spec.patches): the patch
    row of output pixel m starts at its first input pixel and, within one filter row (DW = 1),
    goes on through KW * C contiguous elements, so 16 output pixels of one output row are 16
    tile rows SW * C elements apart. K (words of 4 bytes; the filter row's words, then the
    next's) is read a filter row at a time, in steps that divide it, so no step leaves its
    run: no gathered copy of the patches at all (it was half of a 32-channel 3x3
    convolution's time)."""

    def __init__(self, spec, element_bytes: int):
        hp, wp, channels, _, kw, sh, sw, dh, _ = spec.patches
        self.pixel_bytes = channels * element_bytes
        self.stride = sw * self.pixel_bytes
        self.filter_row_bytes = dh * wp * self.pixel_bytes
        self.row_words = kw * self.pixel_bytes // 4
        self.hp, self.wp, self.sh, self.sw = hp, wp, sh, sw
        self.oh, self.ow = spec.patch_output
        # the grid's first pixel, as an offset in pixels (spec.patch_origin)
        top, left = spec.patch_origin[:2] or (0, 0)
        self.origin = top * wp + left

    def row(self, a, m):
        pixels = self.oh * self.ow
        image = arith.divui(m, index(pixels))
        pixel = arith.remui(m, index(pixels))
        ih = arith.muli(arith.divui(pixel, index(self.ow)), index(self.sh))
        iw = arith.muli(arith.remui(pixel, index(self.ow)), index(self.sw))
        at = arith.addi(arith.muli(arith.addi(arith.muli(image, index(self.hp)), ih),
                                   index(self.wp)), iw)
        return _offset_by(a, arith.addi(at, index(self.origin)) if self.origin else at,
                          self.pixel_bytes)

    def word_offset(self, k: int) -> int:
        return k // self.row_words * self.filter_row_bytes + k % self.row_words * 4


def patch_step_words(spec) -> int:
    """K words per tile step when a patch kernel's A tiles can be read in place
    (PatchRowsA), else 0: a filter row's taps must be contiguous (DW = 1), every A tile must
    lie in one output row (OW a multiple of 16; tiles start at multiples of 16), and the
    largest step dividing a filter row's words must be at least 8 (a 4-channel stem's 3
    words a step would run 5x its gathered tile steps)."""
    if spec.patches is None:
        return 0
    _, _, channels, _, kw, _, _, _, dw = spec.patches
    row_words = kw * spec.tap_k
    step = max(s for s in range(1, TILE_ROWS + 1) if row_words % s == 0)
    fits = dw == 1 and spec.patch_output[1] % TILE_ROWS == 0 and step >= 8
    return step if fits else 0


def packs_patches(spec) -> bool:
    """Whether an AMX kernel gathers its patch rows (a convolution's A tiles that cannot be
    read in place)."""
    return spec.patches is not None and not patch_step_words(spec)


def emit_tile_function(module_block, name: str, rows: int, a_rows, words: range, nr: int,
                       panel_bytes: int, dot: str, finish=None, finish_types=()) -> str:
    """Defines `name(a, first, b, c, count, per_panel, *finish_args)`: for each of `count`
    row tiles u, the tile t = u % per_panel of panel q = u / per_panel: C[u][v] (rows x 16
    int32 (f32 for a bf16 `dot`) for v < NR/16, stored at c + ((u * NR/16 + v) * 32 + row)
    * 64 bytes) accumulates A's rows first + t * rows + [0, rows) (addressed by `a_rows`:
    RowMajorA or PatchRowsA) times B's panel q (NR columns at b + q * panel_bytes) over the K
    words in `words`, in steps of words.step (the last one possibly shorter: one tile shape
    per function, so a K tail gets a function of its own); C starts at zero when `words`
    starts at 0, else from what c holds.

    With `finish(finish_args, q, t, slot)` (emitting the epilogue of tile t of panel q from
    C[slot]; its extra arguments of `finish_types`), the function finishes its tiles
    itself, each one after the next one's dot products are issued: the vector units run a
    tile's epilogue while the tile unit multiplies the next one (their C alternate between
    two slots); `count` must then be at least 1. One call then best covers all the panels of
    a row block (per_panel tiles each): a tile overlaps its neighbour across panels too."""
    with ir.InsertionPoint(module_block):
        fn = func.FuncOp(name, ([_ptr(), ir.IndexType.get(), _ptr(), _ptr(),
                                 ir.IndexType.get(), ir.IndexType.get(), *finish_types], []),
                         visibility="private")
        # Inlined into the task, the tile functions' shapes would share one configuration
        # (and the 8 tile registers).
        fn.attributes["passthrough"] = ir.ArrayAttr.get([ir.StringAttr.get("noinline")])
    with ir.InsertionPoint(fn.add_entry_block()):
        a, first, b0, c0, count, per_panel, *finish_args = fn.entry_block.arguments
        tiles = nr // 16

        def slot_of(u):
            return arith.remui(u, index(2)) if finish else u

        def finish_tile(u):
            finish(finish_args, arith.divui(u, per_panel), arith.remui(u, per_panel),
                   slot_of(u))

        def row_tile(u):
            m = arith.addi(first, arith.muli(arith.remui(u, per_panel), index(rows)))
            b = _offset_by(b0, arith.divui(u, per_panel), panel_bytes)
            c = _offset_by(c0, slot_of(u), tiles * 2 * TILE_ROWS * TILE_BYTES)

            def finish_before():
                if_(arith.cmpi(arith.CmpIPredicate.ugt, u, index(0)), (),
                    lambda: finish_tile(arith.subi(u, index(1))) or ())
            _emit_tile(a, a_rows, m, b, c, rows, words, nr, dot, finish and finish_before)
        for_(index(0), count, index(1), (), row_tile)
        if finish:
            finish_tile(arith.subi(count, index(1)))
        func.ReturnOp([])
    return name


def _offset_by(base, i, stride: int):
    """`base` + i * stride bytes (i an index value)."""
    i64t = ir.IntegerType.get_signless(64)
    step = arith.muli(arith.index_cast(i64t, i), arith.constant(i64t, stride))
    return llvm.getelementptr(_ptr(), base, [step], [GEP_DYNAMIC_INDEX],
                              ir.IntegerType.get_signless(8), None)


def _emit_tile(a, a_rows, m, b, c, rows: int, words: range, nr: int, dot: str,
               before_stores=None):
    """One row tile of emit_tile_function (A's rows m + [0, rows)): its accumulators, the K
    steps, `before_stores()` (the last tile's epilogue: ahead of the stores, which wait for
    the products, so that its loads from the other slot are not queued behind them), the
    stores; `dot` the tile intrinsic (DOT_INTRINSICS)."""
    i64t = ir.IntegerType.get_signless(64)
    full = _i16(TILE_BYTES)
    a_stride = arith.constant(i64t, a_rows.stride)
    b_stride, c_stride = arith.constant(i64t, nr * 4), arith.constant(i64t, TILE_BYTES)
    row_tiles = [(r, min(TILE_ROWS, rows - r)) for r in range(0, rows, TILE_ROWS)]
    a_at = {r: a_rows.row(a, arith.addi(m, index(r)) if r else m) for r, _ in row_tiles}
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
        kt = min(words.step, words.stop - k)
        k_bytes = _i16(4 * kt)
        tile_a = {r: _intrinsic("llvm.x86.tileloadd64.internal", _amx(), _i16(n), k_bytes,
                                _offset(a_at[r], a_rows.word_offset(k)), a_stride)
                  for r, n in row_tiles}
        def load_b(v):
            return _intrinsic("llvm.x86.tileloadd64.internal", _amx(), _i16(kt), full,
                              _offset(b, (k * nr + v * 16) * 4), b_stride)
        # All of a step's B tiles first where the 8 registers hold them beside the
        # accumulators and A tiles: each then gets a register of its own, and the next one's
        # load need not wait for the dot products reading the last (tiles are not renamed).
        # (A tile by A tile then, so the first A register is free again half way through.)
        if len(accs) + len(row_tiles) + tiles <= 8:
            tiles_b = [load_b(v) for v in range(tiles)]
            order = [(r, n, v) for r, n in row_tiles for v in range(tiles)]
        else:
            tiles_b = None
            order = [(r, n, v) for v in range(tiles) for r, n in row_tiles]
        for r, n, v in order:
            if tiles_b is None and r == 0:
                tile_b = load_b(v)
            accs[r, v] = _intrinsic(dot, _amx(), _i16(n), full, k_bytes, accs[r, v],
                                    tile_a[r], tile_b if tiles_b is None else tiles_b[v])
    if before_stores:
        before_stores()
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

    A patch kernel (an int8 convolution) reads its A tiles in place from the input where
    patch_step_words allows (PatchRowsA); else it packs: each MC-row block of its implicit
    im2col rows is gathered once, tap by tap (C contiguous bytes of one input pixel each),
    into a row-major [MC, 4K] byte buffer, whose rows the A tiles then load with one stride;
    every panel of the block reuses it."""

    packs_int8 = True

    def __init__(self, spec, schedule, element, dot, module_block, name: str):
        super().__init__(spec, schedule, element, dot)
        if spec.nr % 16 or schedule.mr > max_rows(spec.nr) or spec.batch or \
                schedule.pack_a != packs_patches(spec) or schedule.mr % TILE_ROWS:
            raise ValueError("an AMX int8 kernel needs NR a multiple of 16, tiles of 16 or 32 "
                             "rows, an unbatched A, and packs exactly the patch A that cannot "
                             "be read in place (packs_patches)")
        self.module_block, self.name = module_block, name
        per_element = 2 if spec.pairs else 1
        self.step_words = patch_step_words(spec) or TILE_ROWS
        self.a_rows = PatchRowsA(spec, per_element) \
            if spec.patches is not None and not schedule.pack_a else \
            RowMajorA(4 * spec.k)
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
        slots = 2 if self.fused else group_tiles(self.spec.nr)
        self.c_tiles = memref.alloca(ir.MemRefType.get(
            [slots, self.spec.nr // 16, 2 * TILE_ROWS, 16], products), [], [],
            alignment=i64(64))
        super().emit_task(ops, m0, m1, p0, p1, batch_index)

    @property
    def k_parts(self) -> List[range]:
        """The K words of each tile function: the whole steps, then the tail (none when the
        steps divide K)."""
        k, step = self.spec.k, self.step_words
        full = k - k % step
        return ([range(0, full, step)] if full else []) + \
            ([range(full, k, step)] if full < k else [])

    @property
    def fused(self) -> bool:
        """Whether the tile functions finish their own tiles (one function takes all of K:
        emit_tile_function's `finish`), else the task does, after the last part of K."""
        return len(self.k_parts) == 1

    def _tile_functions(self, rows: int, cols: int) -> List[str]:
        """The tile functions C = A x B runs through for `rows` rows of `cols` columns."""
        names = []
        for words in self.k_parts:
            key = (rows, words.start, cols if self.fused else None)
            if key not in self.tile_functions:
                name = f"{self.name}_amx{rows}_k{words.start}" + \
                    (f"_n{cols}" if self.fused and cols != self.spec.nr else "")
                finish = dict(finish=lambda args, q, t, slot, rows=rows, cols=cols:
                              self._finish_inside(args, rows, cols, q, t, slot),
                              finish_types=[ir.IndexType.get(), ir.IndexType.get(),
                                            self.c_tiles.type] +
                              [v.type for v in self.ops.to_args(self.spec)]) \
                    if self.fused else {}
                dot = DOT_INTRINSICS["bf16" if self.spec.pairs else self.spec.int8]
                self.tile_functions[key] = emit_tile_function(
                    self.module_block, name, rows, self.a_rows, words, self.spec.nr,
                    self.spec.k * self.spec.nr * 4, dot, **finish)
            names.append(self.tile_functions[key])
        return names

    def _finish_inside(self, args, rows: int, cols: int, q, t, slot) -> None:
        """The epilogue of tile t of panel q in a tile function, on its arguments (the first
        tile's C row, the first panel, the products' buffer and the kernel's operands)
        instead of the task's."""
        row0, p0, c_tiles, *operands = args
        saved = self.ops, self.c_tiles
        self.ops, self.c_tiles = GemmOperands.from_args(self.spec, operands), c_tiles
        try:
            self._finish_rows(arith.addi(row0, arith.muli(t, index(rows))), rows,
                              arith.addi(p0, q), cols, slot)
        finally:
            self.ops, self.c_tiles = saved

    def _address(self, view, byte_offset):
        """The pointer `view`'s data + byte_offset (an index value)."""
        i64t = ir.IntegerType.get_signless(64)
        base = arith.index_cast(i64t, memref.extract_aligned_pointer_as_index(view))
        return llvm.inttoptr(_ptr(), arith.addi(base, arith.index_cast(i64t, byte_offset)))

    def _rows(self, blk, p, cols: int) -> None:
        """The block's rows as one run, patches read in place too: a tile function finds
        each A tile's output row itself (PatchRowsA)."""
        self._run_tiles(blk, p, cols)

    def _panels(self, blk, p0, p1) -> None:
        """With tile functions that finish their own tiles, the full tiles of all the full
        panels in one call, then each panel's rows left; else the panels one by one."""
        if not self.fused:
            super()._panels(blk, p0, p1)
            return
        spec = self.spec
        full = spec.n // spec.nr
        p_end = arith.maxsi(p0, arith.minsi(p1, index(full)))
        tiles = arith.divui(arith.subi(blk.m1, blk.m0), index(self.s.mr))
        self._fused_call(blk, p0, arith.muli(tiles, arith.subi(p_end, p0)), spec.nr, tiles)
        for_(p0, p_end, index(1), (), lambda p: self._tail_tiles(blk, tiles, p, spec.nr))
        if spec.n > full * spec.nr:          # the last panel's columns short of NR
            if_(arith.cmpi(arith.CmpIPredicate.eq, p1, index(spec.panels)), (),
                lambda: self._run_tiles(blk, index(full), spec.n - full * spec.nr) or ())

    def _full_tiles(self, blk, count, p, cols: int) -> None:
        """The MR-row tiles of panel p: in one call of a tile function that finishes its own
        tiles, else in groups (group_tiles): one tile-function call per group, then the
        epilogue of each of its tiles."""
        if self.fused:
            self._fused_call(blk, p, count, cols, count)
            return
        group = group_tiles(self.spec.nr)

        def run(t0):
            n = arith.minsi(index(group), arith.subi(count, t0))
            self._dot_tiles(blk, self.s.mr, t0, index(0), p, n, cols, n)
            for_(index(0), n, index(1), (), lambda slot: self._finish_rows(
                self._first_row(blk, arith.addi(t0, slot), index(0)), self.s.mr, p, cols,
                slot))
        for_(index(0), count, index(group), (), run)

    def _fused_call(self, blk, p, count, cols: int, per_panel) -> None:
        """The block's first `count` MR-row tiles, `per_panel` a panel from panel p on, by one
        call of a tile function that finishes them (none when count is 0: it would still
        finish a tile)."""
        if_(arith.cmpi(arith.CmpIPredicate.ugt, count, index(0)), (), lambda: self._dot_tiles(
            blk, self.s.mr, index(0), index(0), p, count, cols, per_panel) or ())

    def _tile(self, blk, rows: int, t, r0, p, cols: int) -> None:
        self._dot_tiles(blk, rows, t, r0, p, index(1), cols, index(1))
        if not self.fused:
            self._finish_rows(self._first_row(blk, t, r0), rows, p, cols, index(0))

    def _first_row(self, blk, t, r0):
        """The C row of tile t (+ r0 rows) of block blk."""
        return arith.addi(arith.addi(blk.m0, arith.muli(t, index(self.s.mr))), r0)

    def _dot_tiles(self, blk, rows: int, t, r0, p, count, cols: int, per_panel) -> None:
        """c_tiles[0 .. count) = the products of `count` tiles of `rows` rows, `per_panel` a
        panel from tile t (+ r0 rows) on, times panels p, p + 1, ... (in fused tile
        functions, finished and stored to C's `cols` columns of each panel)."""
        spec = self.spec
        row0 = self._first_row(blk, t, r0)
        a = self._address(self.ops.a if blk.packed is None else blk.packed, index(0))
        first = row0 if blk.packed is None else arith.subi(row0, blk.m0)
        b = self._address(self.ops.b, arith.muli(p, index(spec.k * spec.nr * 4)))
        c = self._address(self.c_tiles, index(0))
        finish = [row0, p, self.c_tiles, *self.ops.to_args(spec)] if self.fused else []
        for name in self._tile_functions(rows, cols):
            func.call([], name, [a, first, b, c, count, per_panel, *finish])

    def _finish_rows(self, row0, rows: int, p, cols: int, slot) -> None:
        """The epilogue of the tile whose products c_tiles[slot] holds (C rows row0 +
        [0, rows)), stored to C: a loop over its rows, FINISH_VECTORS at a time, loaded,
        finished and stored in one go. (Written for the whole tile at once, op by op over its
        64 vectors, LLVM kept them all live and spilled every intermediate to the stack; a row
        of two vectors at a time left a GELU's polynomial too few independent chains.)"""
        nvec, cols_at, masks = self._tile_columns(p, cols)
        step = math.gcd(rows, max(1, FINISH_VECTORS // nvec))

        def some_rows(r):
            accs = [vector.load(self.vtype, self.c_tiles,
                                [slot, index(v), arith.addi(r, index(i)), index(0)])
                    for i in range(step) for v in range(nvec)]
            at = [arith.addi(row0, arith.addi(r, index(i))) for i in range(step)]
            self._store_tile(self._epilogue(accs, at, cols_at, masks, step, nvec), at, cols_at,
                             masks)
        for_(index(0), index(rows), index(step), (), some_rows)
