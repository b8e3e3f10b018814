"""int8 GEMM tiles on AMX (Intel Sapphire Rapids and later): the tile registers do the dot products.

The int8 kernel's task (ember.backends.cpu.microkernel.TaskEmitter) walks row tiles of C over
NR-column panels of the packed weight. On a target with AMX-INT8 each tile of up to 16 rows is
computed by a *tile function*: NR/16 accumulator tiles (rows x 16 int32) gather `tdpbusd`
(u8 x s8; `tdpbssd` for s8 activations) of an A tile (rows x 64 bytes: 16 words of K, read in
place from the int8 kernel's A) by B tiles (16 words x 16 columns: 16 rows of a packed panel,
whose layout [panel, word, column] is exactly AMX's B layout, read with the panel's row
stride), over all of K; the last K step uses the tail's shape. The tiles are stored to a stack
buffer, where the task's epilogue (dequantization, bias, activation, residual, masked store:
TaskEmitter's own) reads them as vectors.

One tile function per row count (16, then the power-of-two tail pieces), with K fully unrolled
and every shape a constant, so each function has exactly one tile configuration: LLVM's AMX
passes write its `ldtilecfg` at entry and `tilerelease` at exit.

Linux hands out the tile state only to processes that ask (arch_prctl ARCH_REQ_XCOMP_PERM);
cpu_support.c asks when an artifact is loaded.
"""
from __future__ import annotations

from typing import Dict

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


def emit_tile_function(module_block, name: str, rows: int, k_words: int, nr: int,
                       signed_a: bool) -> str:
    """Defines `name(a, a_stride, b, c)`: C[v] (rows x 16 int32, v < NR/16, stored at
    c + v * 1 KiB with rows of 64 bytes) = A (rows x 4*K bytes, rows `a_stride` bytes apart)
    times B (K words x NR columns of a packed panel)."""
    i64t = ir.IntegerType.get_signless(64)
    with ir.InsertionPoint(module_block):
        fn = func.FuncOp(name, ([_ptr(), i64t, _ptr(), _ptr()], []), visibility="private")
        # Inlined into the task, the tile functions' shapes would share one configuration
        # (and the 8 tile registers).
        fn.attributes["passthrough"] = ir.ArrayAttr.get([ir.StringAttr.get("noinline")])
    with ir.InsertionPoint(fn.add_entry_block()):
        a, a_stride, b, c = fn.entry_block.arguments
        m, full = _i16(rows), _i16(TILE_BYTES)
        b_stride = arith.constant(i64t, nr * 4)
        tiles = nr // 16
        accs = [_intrinsic("llvm.x86.tilezero.internal", _amx(), m, full) for _ in range(tiles)]
        dot = "llvm.x86.tdpbssd.internal" if signed_a else "llvm.x86.tdpbusd.internal"
        for step in range(-(-k_words // TILE_ROWS)):
            kt = min(TILE_ROWS, k_words - step * TILE_ROWS)
            k_bytes = _i16(4 * kt)
            tile_a = _intrinsic("llvm.x86.tileloadd64.internal", _amx(), m, k_bytes,
                                _offset(a, step * TILE_BYTES), a_stride)
            for v in range(tiles):
                offset = (step * TILE_ROWS * nr + v * 16) * 4
                tile_b = _intrinsic("llvm.x86.tileloadd64.internal", _amx(), _i16(kt), full,
                                    _offset(b, offset), b_stride)
                accs[v] = _intrinsic(dot, _amx(), m, full, k_bytes, accs[v], tile_a, tile_b)
        c_stride = arith.constant(i64t, TILE_BYTES)
        for v, acc in enumerate(accs):
            _intrinsic("llvm.x86.tilestored64.internal", None, m, full,
                       _offset(c, v * TILE_ROWS * TILE_BYTES), c_stride, acc)
        func.ReturnOp([])
    return name


class AmxTaskEmitter(TaskEmitter):
    """TaskEmitter whose register tile is computed on the AMX tile registers (see the module
    docstring); blocking, threads, tails and the epilogue are the int8 kernel's."""

    def __init__(self, spec, schedule, element, dot, module_block, name: str):
        super().__init__(spec, schedule, element, dot)
        if spec.nr % 16 or schedule.mr > TILE_ROWS or spec.patches is not None or spec.batch:
            raise ValueError("an AMX int8 kernel needs NR a multiple of 16, at most 16 rows "
                             "per tile and a plain (unbatched, non-patch) A")
        self.module_block, self.name = module_block, name
        self.tile_functions: Dict[int, str] = {}

    def emit_task(self, ops, m0, m1, p0, p1, batch_index=None) -> None:
        i32 = ir.IntegerType.get_signless(32)
        self.c_tiles = memref.alloca(
            ir.MemRefType.get([self.spec.nr // 16, TILE_ROWS, 16], i32), [], [],
            alignment=i64(64))
        super().emit_task(ops, m0, m1, p0, p1, batch_index)

    def _tile_function(self, rows: int) -> str:
        if rows not in self.tile_functions:
            self.tile_functions[rows] = emit_tile_function(
                self.module_block, f"{self.name}_amx{rows}", rows, self.spec.k, self.spec.nr,
                signed_a=self.spec.int8 == "s8")
        return self.tile_functions[rows]

    def _address(self, view, byte_offset):
        """The pointer `view`'s data + byte_offset (an index value)."""
        i64t = ir.IntegerType.get_signless(64)
        base = arith.index_cast(i64t, memref.extract_aligned_pointer_as_index(view))
        return llvm.inttoptr(_ptr(), arith.addi(base, arith.index_cast(i64t, byte_offset)))

    def _tile(self, blk, rows: int, t, r0, p, cols: int) -> None:
        s, spec = self.s, self.spec
        nvec = -(-cols // s.lanes)
        tail_lanes = cols - (nvec - 1) * s.lanes
        col0 = arith.muli(p, index(s.nr))
        cols_at = [arith.addi(col0, index(v * s.lanes)) for v in range(nvec)]
        i = arith.addi(arith.addi(blk.m0, arith.muli(t, index(s.mr))), r0)
        rows_at = [arith.addi(i, index(r)) for r in range(rows)]
        masks = [None] * (nvec - 1) + [self._mask(tail_lanes)]
        row_bytes = 4 * spec.k
        a = self._address(self.ops.a, arith.muli(i, index(row_bytes)))
        b = self._address(self.ops.b, arith.muli(p, index(spec.k * spec.nr * 4)))
        c = self._address(self.c_tiles, index(0))
        stride = arith.constant(ir.IntegerType.get_signless(64), row_bytes)
        func.call([], self._tile_function(rows), [a, stride, b, c])
        accs = [vector.load(self.vtype, self.c_tiles, [index(v), index(r), index(0)])
                for r in range(rows) for v in range(nvec)]
        accs = self._epilogue(accs, rows_at, cols_at, masks, rows, nvec)
        for r in range(rows):
            for v in range(nvec):
                self._store(accs[r * nvec + v], self.ops.c, [rows_at[r], cols_at[v]], masks[v])
