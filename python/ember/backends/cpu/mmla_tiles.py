"""int8 GEMM tiles on AArch64 `smmla` (+i8mm): 2 x 2 blocks of C per instruction.

`smmla vd.4s, vn.16b, vm.16b` adds to vd = [c00, c01, c10, c11] the products of two rows of 8
bytes (vn: A rows r, r+1 at k-words 2w, 2w+1) by two columns of 8 bytes (vm: B columns c, c+1
at the same words): 32 multiply-adds, twice sdot's 16. The int8 kernel's task
(ember.backends.cpu.microkernel.TaskEmitter, with sdot as its dot product) keeps its blocking,
threads, tails and epilogue; this emitter computes its even-row tiles differently:

    per k-block of 2 words: B rows 2w and 2w+1 of the packed panel (the sdot layout, one word
    per column), zipped (zip1/zip2) into the column pairs' operands; per row pair the two
    words of each row side by side; MR/2 x NR/2 accumulators [c00, c01, c10, c11]
    at the end: each row pair's accumulators de-interleaved into rows of 4 columns
    (vector.shuffle), then the task's epilogue as for sdot

so the packed weights and their compensation are exactly sdot's. An odd K ends with a block
whose second word is zero in both operands. Tiles with an odd row count (the 1-row tail
piece) and patch kernels whose taps hold an odd number of words take sdot.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, llvm, vector

from ember.backends.cpu.microkernel import TaskEmitter
from ember.kit.builders import constant, for_, index
from ember.pipeline.target_info import TargetInfo

SMMLA = "llvm.aarch64.neon.smmla.v4i32.v16i8"


def has_i8mm(info: TargetInfo) -> bool:
    return info.triple.startswith(("aarch64", "arm64")) and "i8mm" in info.enabled_features


class MmlaTaskEmitter(TaskEmitter):
    """TaskEmitter whose even-row int8 tiles run on smmla (see the module docstring)."""

    def __init__(self, spec, schedule, element, dot):
        super().__init__(spec, schedule, element, dot)
        if spec.int8 != "s8" or schedule.lanes != 4 or spec.nr % 4 or spec.batch:
            raise ValueError("an smmla kernel reads s8 codes with 4-lane i32 vectors, NR a "
                             "multiple of 4, unbatched")

    def _tile(self, blk, rows: int, t, r0, p, cols: int) -> None:
        spec = self.spec
        if rows % 2 or (spec.patches is not None and spec.tap_k % 2):
            return super()._tile(blk, rows, t, r0, p, cols)
        nvec, rows_at, cols_at, masks = self._tile_place(blk, rows, t, r0, p, cols)
        i32x4 = ir.VectorType.get([4], ir.IntegerType.get_signless(32))
        accs = [constant(0, i32x4)] * (rows // 2 * 2 * nvec)
        panel = (p, nvec, cols_at, masks)
        if spec.patches is None:
            accs = self._blocks(panel, accs, index(0), spec.k,
                                lambda r, w: self._load_word([rows_at[r]], w))
        else:
            pixels = self._tile_pixels(rows_at)
            accs = self._segments(blk, pixels, lambda k_start, load_a, *a: self._blocks(
                panel, a, k_start, spec.tap_k, load_a), accs)
        self._store_tile(self._epilogue(self._rows_of(accs, rows, nvec), rows_at, cols_at,
                                        masks, rows, nvec), rows_at, cols_at, masks)

    def _blocks(self, panel, accs, k_start, words: int, load_a):
        """The smmla steps over `words` words of A from word 0 of `load_a(row, word)`, which
        are words k_start + [0, words) of the panel (p, vectors, their columns and masks):
        whole 2-word blocks in a loop, then an odd last word."""
        def step(w, *accs, single=False):
            return self._block(panel, list(accs), k_start, w, load_a, single)
        accs = for_(index(0), index(words - words % 2), index(2), accs, step)
        if words % 2:
            accs = step(index(words - 1), *accs, single=True)
        return accs

    def _block(self, panel, accs, k_start, w, load_a, single: bool):
        """One k-block: words w, w+1 of A (w alone when `single`, the other word zero)."""
        p, nvec, cols_at, masks = panel
        i32 = ir.IntegerType.get_signless(32)
        i32x4 = ir.VectorType.get([4], i32)
        i8x16 = ir.VectorType.get([16], ir.IntegerType.get_signless(8))
        zero = constant(0, i32x4)
        k = arith.addi(k_start, w)
        k_next = arith.addi(k, index(1))
        w_next = arith.addi(w, index(1))
        b_ops = []
        for v in range(nvec):
            first = self._load_b(p, k, v, cols_at, masks)
            second = zero if single else self._load_b(p, k_next, v, cols_at, masks)
            for half in ([0, 4, 1, 5], [2, 6, 3, 7]):            # zip1, zip2: column pairs
                b_ops.append(vector.bitcast(i8x16, vector.shuffle(first, second, half)))
        out = list(accs)
        for pair in range(len(accs) // len(b_ops)):
            words = []
            for r in (2 * pair, 2 * pair + 1):
                words += [load_a(r, w), constant(0, i32) if single else load_a(r, w_next)]
            a_op = vector.bitcast(i8x16, vector.from_elements(i32x4, words))
            for j, b_op in enumerate(b_ops):
                i = pair * len(b_ops) + j
                out[i] = _smmla(out[i], a_op, b_op)
        return out

    def _rows_of(self, accs, rows: int, nvec: int):
        """Row-major vectors of 4 columns from the 2 x 2 blocks: row 2i, vector v takes the
        first halves of blocks (i, 2v) and (i, 2v + 1), row 2i + 1 their second halves."""
        out = []
        per_pair = 2 * nvec
        for pair in range(rows // 2):
            blocks = accs[pair * per_pair:(pair + 1) * per_pair]
            for half in ([0, 1, 4, 5], [2, 3, 6, 7]):
                out += [vector.shuffle(blocks[2 * v], blocks[2 * v + 1], half)
                        for v in range(nvec)]
        return out


def _smmla(acc, a, b):
    return llvm.call_intrinsic(acc.type, SMMLA, [acc, a, b], [], [])
