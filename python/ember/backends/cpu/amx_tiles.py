"""int8 GEMM tiles on AMX (Intel Sapphire Rapids and later): the tile registers do the dot products.

The int8 kernel's task (ember.backends.cpu.microkernel.TaskEmitter) walks row tiles of C over
NR-column panels of the packed weight. On a target with AMX-INT8 each row tile (32 rows while
the accumulators fit, else 16; then the power-of-two tail pieces) is computed by *tile
functions*: 16-row accumulator tiles (x 16 int32 columns, NR/16 per row tile) gather
`tdpbusd` (u8 x s8; `tdpbssd` for s8 activations) of A tiles (16 rows x 64 bytes: 16 words of
K, read in place from the int8 kernel's A) by B tiles (16 words x 16 columns: 16 rows of a
packed panel, whose layout [panel, word, column] is exactly AMX's B layout), each B tile
serving every A tile of the step. The tiles are stored to a stack buffer, where the task's
epilogue (dequantization, bias, activation, residual, masked store: TaskEmitter's own) reads
them as vectors.

K is unrolled and every shape is a constant, one shape set per function, so that each has
exactly one tile configuration (LLVM's AMX passes write its `ldtilecfg` at entry and
`tilerelease` at exit): the 16-word steps are one function, a K tail shorter than 16 words a
second one, which reloads the accumulators. Out of line (noinline): inlined, their shapes
would share the 8 tile registers of one configuration.

Linux hands out the tile state only to processes that ask (arch_prctl ARCH_REQ_XCOMP_PERM);
cpu_support.c asks when an artifact is loaded.
"""
from __future__ import annotations

from typing import Dict, List

from mlir import ir
from mlir.dialects import arith, func, llvm, memref, vector

from ember.kit.builders import i64, index
from ember.backends.cpu.microkernel import TaskEmitter
from ember.pipeline.target_info import TargetInfo

#: Bytes of one tile row, and rows of a B tile (K words per step).
TILE_BYTES = 64
TILE_ROWS = 16


def has_amx_int8(info: TargetInfo) -> bool:
    return {"amx-tile", "amx-int8"} <= info.enabled_features


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


def emit_tile_function(module_block, name: str, rows: int, words: range, k_words: int,
                       nr: int, signed_a: bool) -> str:
    """Defines `name(a, b, c)`: C[v] (rows x 16 int32 for v < NR/16, stored at
    c + (v * 32 + row) * 64 bytes) accumulates A (rows of 4 * k_words bytes) times B (a packed
    panel of NR columns) over the K words in `words`, whose steps are all 16 words or all one
    shorter tail (one tile shape per function: a K tail gets a function of its own); C starts
    at zero when `words` starts at 0, else from what c holds."""
    i64t = ir.IntegerType.get_signless(64)
    with ir.InsertionPoint(module_block):
        fn = func.FuncOp(name, ([_ptr(), _ptr(), _ptr()], []), visibility="private")
        # Inlined into the task, the tile functions' shapes would share one configuration
        # (and the 8 tile registers).
        fn.attributes["passthrough"] = ir.ArrayAttr.get([ir.StringAttr.get("noinline")])
    with ir.InsertionPoint(fn.add_entry_block()):
        a, b, c = fn.entry_block.arguments
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
        dot = "llvm.x86.tdpbssd.internal" if signed_a else "llvm.x86.tdpbusd.internal"
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
        func.ReturnOp([])
    return name


class AmxTaskEmitter(TaskEmitter):
    """TaskEmitter whose register tile is computed on the AMX tile registers (see the module
    docstring); blocking, threads, tails and the epilogue are the int8 kernel's."""

    def __init__(self, spec, schedule, element, dot, module_block, name: str):
        super().__init__(spec, schedule, element, dot)
        if spec.nr % 16 or schedule.mr > max_rows(spec.nr) or spec.patches is not None or \
                spec.batch:
            raise ValueError("an AMX int8 kernel needs NR a multiple of 16, at most "
                             "max_rows(NR) rows per tile and a plain (unbatched, non-patch) A")
        self.module_block, self.name = module_block, name
        self.tile_functions: Dict[tuple, str] = {}

    def emit_task(self, ops, m0, m1, p0, p1, batch_index=None) -> None:
        i32 = ir.IntegerType.get_signless(32)
        self.c_tiles = memref.alloca(
            ir.MemRefType.get([self.spec.nr // 16, 2 * TILE_ROWS, 16], i32), [], [],
            alignment=i64(64))
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
                    self.spec.nr, signed_a=self.spec.int8 == "s8")
            names.append(self.tile_functions[key])
        return names

    def _address(self, view, byte_offset):
        """The pointer `view`'s data + byte_offset (an index value)."""
        i64t = ir.IntegerType.get_signless(64)
        base = arith.index_cast(i64t, memref.extract_aligned_pointer_as_index(view))
        return llvm.inttoptr(_ptr(), arith.addi(base, arith.index_cast(i64t, byte_offset)))

    def _tile(self, blk, rows: int, t, r0, p, cols: int) -> None:
        spec = self.spec
        nvec, rows_at, cols_at, masks = self._tile_place(blk, rows, t, r0, p, cols)
        a = self._address(self.ops.a, arith.muli(rows_at[0], index(4 * spec.k)))
        b = self._address(self.ops.b, arith.muli(p, index(spec.k * spec.nr * 4)))
        c = self._address(self.c_tiles, index(0))
        for name in self._tile_functions(rows):
            func.call([], name, [a, b, c])
        accs = [vector.load(self.vtype, self.c_tiles, [index(v), index(r), index(0)])
                for r in range(rows) for v in range(nvec)]
        self._store_tile(self._epilogue(accs, rows_at, cols_at, masks, rows, nvec), rows_at,
                         cols_at, masks)
