"""The CPU GEMM micro-kernel: the register-blocked vector code of one task, its parameters
(`GemmSchedule`, chosen in ember.backends.cpu.gemm_schedule) and the CPU facts (`CpuTraits`)
every CPU code generator plans with.

A task (ember.backends.cpu.gemm_threads calls one per thread) computes C rows [m0, m1) x panels
[p0, p1) of C = residual + act(A @ B + bias), A [M, K] row-major (or implicit im2col patches),
B packed in NR-column panels (ember.kit.packed_panels), C [M, N]:

    task:    rows [m0, m1) x panels [p0, p1), packed-A buffer on its stack
      for each block of <= MC rows (equal blocks, whole tiles)
        for each K block of KC
          pack A[rows, K block] into MR-row micro-panels [tile][k][row]     (stays in L2)
          for p in panels: for each MR-row tile, then 8/4/2/1-row tiles for the rest
                           (patches read in place: so within each output row, `reads_row_runs`)
            tile: MR x NR/lanes vector<lanes x f32> accumulators as scf.for iter_args; per k
                  NR/lanes vector.load of the panel, one broadcast per row, MR x NR/lanes
                  vector.fma (small tiles: several accumulator sets to hide FMA latency);
                  zero at the first K block, C's values after it; at the last K block the
                  epilogue (bias, activation, residual) on the accumulators; then one store
                  (masked in the last panel when N is not a multiple of NR).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Callable, List, Optional

from mlir import ir
from mlir.dialects import arith, memref, vector

from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.kit.attr_codec import omitted_at_default, to_attr
from ember.kit.builders import GemmOperands, constant, for_, i64, if_, index
from ember.kit.epilogue import apply_epilogue, widened
from ember.kit.scalar_math import ACTIVATIONS, dequantize_code, quantize_code, \
    quantize_unsigned_code, relu_before_is_redundant
from ember.pipeline.target_info import TargetInfo, enabled_features


#: Low-bit tiles of at most this many rows (a GEMV's, batch 1-4) sum raw codes per group and
#: scale once per group; larger ones dequantize each weight vector once for all their rows.
GROUP_SUM_ROWS = 4


def is_half(element: ir.Type) -> bool:
    """Whether `element` is a 16-bit float (f16, bf16): stored 16-bit, computed in f32."""
    return isinstance(element, (ir.F16Type, ir.BF16Type))


def widen(value):
    """A 16-bit float scalar or vector extended to f32; any other value as it is."""
    t = value.type
    vector_type = isinstance(t, ir.VectorType)
    if not is_half(ir.VectorType(t).element_type if vector_type else t):
        return value
    f32 = ir.F32Type.get()
    return widened(value, ir.VectorType.get(ir.VectorType(t).shape, f32) if vector_type
                   else f32)


@dataclass(frozen=True)
class CpuTraits:
    """What the GEMM schedule needs to know about a CPU."""
    lanes: int = 8                  # f32 lanes of one vector register
    registers: int = 16             # vector registers
    l1d: int = 32 * 1024            # bytes, per core
    l2: int = 1024 * 1024           # bytes, per core
    l3: int = 8 * 1024 * 1024       # bytes, shared
    cores: int = 1                  # cores a schedule plans parallel tasks for

    @classmethod
    def from_target(cls, info: TargetInfo) -> "CpuTraits":
        """The traits of a target, from its facts."""
        return cls(lanes=info.vector_lanes, registers=info.vector_registers, l1d=info.l1d,
                   l2=info.l2, l3=info.l3, cores=info.cores)


def vector_shape_for(features: str, triple: str = "") -> tuple:
    """(f32 lanes, vector registers) from an LLVM feature string and triple."""
    flags = enabled_features(features)
    if triple.startswith(("aarch64", "arm64")):
        return 4, 32
    if "avx512f" in flags:
        return 16, 32
    if "avx2" in flags or "avx" in flags:
        return 8, 16
    return 4, 16


@dataclass(frozen=True)
class GemmSchedule:
    """How one kernel is blocked: register tile MR x NR, cache blocks and thread split."""
    lanes: int          # f32 lanes per vector
    mr: int             # rows of the register tile
    nr: int             # columns of the register tile (= the packed panel width)
    kc: int             # K block: accumulators are stored and reloaded once per K block
    mc: int             # rows per block: an MC x KC block of A, packed, stays in L2
    unroll: int = 4     # k steps per inner-loop iteration
    parallel: bool = True
    pack_a: bool = True  # copy each MC x KC block of A into MR-row micro-panels first
    split_rows: int = 64  # split M between threads when each gets this many rows, else N
    chains: int = 8     # independent accumulators a tile needs to hide the FMA latency
    #: Store an f32 C non-temporally (it outgrows the caches: gemm_schedule.STREAM_C_SHARE).
    stream_c: bool = omitted_at_default(False)

    @property
    def vectors(self) -> int:
        return self.nr // self.lanes

    def attr(self) -> ir.DictAttr:
        """The schedule as an attribute, recorded on generated kernels for inspection."""
        return to_attr(self)


def reads_row_runs(spec: GemmKernelSpec, schedule: GemmSchedule) -> bool:
    """Whether a kernel's tiles stay within one output row (a run of OW patch rows): those of
    a kernel reading a convolution's patches in place, whose rows are then input pixels a
    constant stride apart. (Its tasks and row blocks still split rows in whole MR tiles: a
    run cut there is finished in tail tiles.)"""
    return spec.patches is not None and not schedule.pack_a


def _tail_pieces(mr: int) -> List[int]:
    """Row counts of the tail tiles: powers of two below MR (any r < MR is a sum of them)."""
    pieces, p = [], 1
    while p < mr:
        pieces.append(p)
        p *= 2
    return sorted(pieces, reverse=True)


@dataclass
class _Block:
    """One K block of a task: rows [m0, m1), k in [k0, k1), whether it is the first or last
    K block (None: the only one), the packed copy of A's block (None: read A directly) and, in
    a low-bit kernel with offsets, the sums of A's rows over each group of the block
    ([row - m0, group]; `TaskEmitter._group_sums`)."""
    m0: ir.Value
    m1: ir.Value
    k0: ir.Value
    k1: ir.Value
    first: Optional[ir.Value]
    last: Optional[ir.Value]
    packed: Optional[ir.Value]
    sums: Optional[ir.Value] = None


class TaskEmitter:
    """Builds the body of one task function (see the module docstring); each method emits at
    the current insertion point."""

    def __init__(self, spec: GemmKernelSpec, schedule: GemmSchedule, element: ir.Type,
                 dot: Optional[Callable] = None, half_fml: Optional[Callable] = None):
        """`element`: A's and B's element type (i32 words in an int8 kernel, whose `dot`,
        an ember.backends.cpu.int8_dot.WordDot, replaces vector.fma, and in a pairs kernel,
        bf16 ones into f32 or an integer GEMM's i16 ones into i32; f16 or bf16 in a 16-bit
        kernel, which widens its operands to f32 in registers, accumulates in f32 and rounds
        once, at the store; with `half_fml`, `mac(a, b, acc)` of ember.backends.cpu.f16_fml,
        it packs A as f16 and multiplies the f16 operands as they are into the f32 sums)."""
        self.spec, self.s = spec, schedule
        self.element = element
        self.compute = element if spec.integer else \
            ir.F32Type.get() if is_half(element) or spec.pairs else element
        self.vtype = ir.VectorType.get([schedule.lanes], self.compute)
        # A's broadcast: the accumulators' type, but words for a word dot product (bf16
        # pairs: i32 words into f32 lanes)
        self.a_vtype = ir.VectorType.get([schedule.lanes], element) if spec.pairs else \
            ir.VectorType.get([2 * schedule.lanes], element) if half_fml else self.vtype
        self.half_fml = half_fml
        self.mac = dot or half_fml or vector.fma
        if spec.int8 and (dot is None or schedule.kc < spec.k or
                          (schedule.pack_a and not self.packs_int8)):
            raise ValueError("an int8 kernel needs its dot product, one K block (its partial "
                             "sums are integers, C holds floats) and A read in place")
        if spec.out_scale and schedule.kc < spec.k:
            raise ValueError("a kernel writing codes needs one K block (C cannot hold its "
                             "partial sums)")

    #: Whether this emitter packs an int8 kernel's A: the vector kernels read its rows a word
    #: at a time in place (a packed copy would cost as much as the dot products).
    packs_int8 = False

    def emit_task(self, ops: GemmOperands, m0, m1, p0, p1, batch_index=None) -> None:
        """The task function's body: rows [m0, m1) x panels [p0, p1) over all of K (of batch
        entry `batch_index` in a batched kernel). A function of its own, so that its stack
        buffer (the packed A block) lives in an allocation scope outside the OpenMP loop
        body."""
        self.ops = ops
        self.prefix = [] if batch_index is None else [batch_index]
        spec, s = self.spec, self.s
        k_blocks = -(-spec.k // s.kc)
        packed = self._packed_buffer() if s.pack_a else None
        sums = memref.alloca(ir.MemRefType.get([s.mc, -(-s.kc // spec.group)], self.compute),
                             [], []) if spec.low_bit and spec.offsets else None

        # Row blocks of at most MC rows, all the same size (in whole tiles), so that no block
        # is a sliver that streams all of B for a few rows.
        rows = arith.subi(m1, m0)
        count = arith.ceildivsi(rows, index(s.mc))
        step = arith.muli(arith.ceildivsi(arith.ceildivsi(rows, count), index(s.mr)),
                          index(s.mr))
        step = arith.maxsi(step, index(s.mr))

        def m_block(mb0):
            mb1 = arith.minsi(arith.addi(mb0, step), m1)

            def k_block(kb):
                k0 = arith.muli(kb, index(s.kc))
                k1 = arith.minsi(arith.addi(k0, index(s.kc)), index(spec.k))
                if k_blocks == 1:
                    first = last = None
                else:
                    first = arith.cmpi(arith.CmpIPredicate.eq, kb, index(0))
                    last = arith.cmpi(arith.CmpIPredicate.eq, kb, index(k_blocks - 1))
                blk = _Block(mb0, mb1, k0, k1, first, last, packed, sums)
                if packed is not None:
                    self._pack_a(blk)
                if sums is not None:
                    self._group_sums(blk)
                self._panels(blk, p0, p1)
            for_(index(0), index(k_blocks), index(1), (), k_block)
        for_(m0, m1, step, (), m_block)

    def _packed_buffer(self):
        """The stack buffer an MC x KC block of A is packed into: MR-row micro-panels
        [tile, k, row], so that a tile's rows for one k are adjacent and the micro-kernel
        reads one stream (rows of A whose stride is a multiple of 4 KiB would otherwise
        collide in one L1 set)."""
        shape = [-(-self.s.mc // self.s.mr), self.s.kc, self.s.mr]
        # pairs: as words; for a widening multiply-add: f16
        element = self.element if self.spec.pairs or self.half_fml else self.compute
        return memref.alloca(ir.MemRefType.get(shape, element), [], [], alignment=i64(64))

    def _pack_a(self, blk: "_Block") -> None:
        """packed[(row - m0) / MR, k - k0, (row - m0) % MR] = A[row, k] over the block (16-bit
        A widened to f32 here, once per block instead of once per panel; kept f16 for a
        widening multiply-add)."""
        mr = self.s.mr
        widen_a = (lambda v: v) if self.half_fml else widen

        def row(i):
            off = arith.subi(i, blk.m0)
            t, r = arith.divui(off, index(mr)), arith.remui(off, index(mr))
            if self.spec.patches is None:
                def copy(kk):
                    k = arith.addi(blk.k0, kk)
                    value = self._load_word([i], k) if self.spec.pairs else \
                        memref.load(self.ops.a, [*self.prefix, i, k])
                    memref.store(widen_a(value), blk.packed, [t, kk, r])
                for_(index(0), arith.subi(blk.k1, blk.k0), index(1), (), copy)
                return
            pixel = self._patch_row(i)

            def segment(k_start, load_a):
                def copy(cc):
                    memref.store(widen_a(load_a(0, cc)), blk.packed,
                                 [t, arith.addi(arith.subi(k_start, blk.k0), cc), r])
                for_(index(0), index(self.spec.tap_k), index(1), (), copy)
            self._segments(blk, [pixel], segment)
        for_(blk.m0, blk.m1, index(1), (), row)

    def _group_sums(self, blk: "_Block") -> None:
        """sums[row - m0, g - k0 / G] = sum of A[row, k] over group g's k in the block: what a
        small tile that sums raw codes per group multiplies the group's offsets by (once per
        K block, not once per panel)."""
        g_size = self.spec.group
        g_first = arith.divui(blk.k0, index(g_size))
        zero = constant(0.0, self.compute)

        def row(i):
            def group(g):
                g0 = arith.muli(g, index(g_size))
                g1 = arith.minsi(arith.addi(g0, index(g_size)), blk.k1)
                total, = for_(g0, g1, index(1), [zero], lambda k, acc: [arith.addf(
                    acc, memref.load(self.ops.a, [*self.prefix, i, k]))])
                memref.store(total, blk.sums, [arith.subi(i, blk.m0), arith.subi(g, g_first)])
            for_(g_first, arith.ceildivui(blk.k1, index(g_size)), index(1), (), group)
        for_(blk.m0, blk.m1, index(1), (), row)

    # -- implicit im2col (spec.patches) ---------------------------------------------------
    def _tile_pixels(self, rows_at):
        """(image, first input row, first input column) of each of a tile's patch rows: in a
        kernel of row runs all in one output row, so that they are the first one's pixel plus
        constant steps (one address register for the tile and constant displacements, where
        rows of their own kept ten pointers live and spilled them at every filter tap)."""
        if not reads_row_runs(self.spec, self.s):
            return [self._patch_row(i) for i in rows_at]
        image, row, col = self._patch_row(rows_at[0])
        sw = self.spec.patches[6]
        return [(image, row, arith.addi(col, index(r * sw)) if r else col)
                for r in range(len(rows_at))]

    def _patch_row(self, i):
        """(image, first input row, first input column) of patch row i."""
        _, _, _, _, _, sh, sw, _, _ = self.spec.patches
        top, left = self.spec.patch_origin[:2] or (0, 0)
        oh, ow = self.spec.patch_output
        image = arith.divui(i, index(oh * ow))
        pixel = arith.remui(i, index(oh * ow))
        row = arith.muli(arith.divui(pixel, index(ow)), index(sh))
        col = arith.muli(arith.remui(pixel, index(ow)), index(sw))
        return (image, arith.addi(row, index(top)) if top else row,
                arith.addi(col, index(left)) if left else col)

    def _segments(self, blk: "_Block", pixels, body, iter_args=()):
        """Runs `body(k_start, load_a, *iter_args)` for each filter tap (kh, kw) of the K
        block (whole taps: the schedule's KC is a multiple of C); k_start is the tap's first
        k, `load_a(r, c)` reads channel c of the tap's input pixel for patch row pixels[r]."""
        _, _, _, _, kw, _, _, dh, dw = self.spec.patches
        c = self.spec.tap_k

        def tap(seg, *args):
            ih = arith.muli(arith.divui(seg, index(kw)), index(dh))
            iw = arith.muli(arith.remui(seg, index(kw)), index(dw))
            at = [(image, arith.addi(row, ih), arith.addi(col, iw))
                  for image, row, col in pixels]

            def load_a(r, cc):
                if self.spec.int8 or self.spec.pairs:   # word cc: channels 4cc .. 4cc+3
                    #                                     (bf16 pairs: 2cc, 2cc + 1)
                    return self._load_word(at[r], cc)
                return memref.load(self.ops.a, [*at[r], cc])
            return body(arith.muli(seg, index(c)), load_a, *args)
        return for_(arith.divui(blk.k0, index(c)), arith.divui(blk.k1, index(c)), index(1),
                    iter_args, tap)

    def _panels(self, blk: "_Block", p0, p1) -> None:
        spec = self.spec
        full = spec.n // spec.nr                 # panels without padding
        tail_cols = spec.n - full * spec.nr      # valid columns of the last panel (0: none)
        p_full_end = arith.minsi(p1, index(full))
        for_(p0, p_full_end, index(1), (), lambda p: self._rows(blk, p, spec.nr))
        if tail_cols:
            has_tail = arith.cmpi(arith.CmpIPredicate.eq, p1, index(spec.panels))
            if_(has_tail, (), lambda: self._rows(blk, index(full), tail_cols) or ())

    def _rows(self, blk: "_Block", p, cols: int) -> None:
        """The block's rows of panel p in tiles: output row by output row in a kernel of
        patches read in place (`reads_row_runs`), else as one run."""
        if not reads_row_runs(self.spec, self.s):
            self._run_tiles(blk, p, cols)
            return
        ow = index(self.spec.patch_output[1])

        def output_row(q):
            start = arith.muli(q, ow)
            self._run_tiles(dataclasses.replace(
                blk, m0=arith.maxui(blk.m0, start),
                m1=arith.minui(blk.m1, arith.addi(start, ow))), p, cols)
        for_(arith.divui(blk.m0, ow), arith.ceildivui(blk.m1, ow), index(1), (), output_row)

    def _run_tiles(self, blk: "_Block", p, cols: int) -> None:
        """Full MR-row tiles over [m0, m1), then the remaining rows in power-of-two tiles."""
        full_tiles = arith.divui(arith.subi(blk.m1, blk.m0), index(self.s.mr))
        self._full_tiles(blk, full_tiles, p, cols)
        self._tail_tiles(blk, full_tiles, p, cols)

    def _tail_tiles(self, blk: "_Block", full_tiles, p, cols: int) -> None:
        """The rows after the block's `full_tiles` MR-row tiles in power-of-two tiles."""
        mr = self.s.mr
        if mr == 1:
            return
        rest = arith.subi(arith.subi(blk.m1, blk.m0), arith.muli(full_tiles, index(mr)))
        r0 = index(0)
        for piece in _tail_pieces(mr):
            bit = arith.andi(rest, index(piece))
            take = arith.cmpi(arith.CmpIPredicate.ne, bit, index(0))
            if_(take, (), lambda r0=r0, piece=piece:
                self._tile(blk, piece, full_tiles, r0, p, cols) or ())
            r0 = arith.addi(r0, bit)

    def _full_tiles(self, blk: "_Block", count, p, cols: int) -> None:
        """The block's first `count` MR-row tiles of panel p, one after the other."""
        for_(index(0), count, index(1), (),
             lambda t: self._tile(blk, self.s.mr, t, index(0), p, cols))

    # -- the register tile ----------------------------------------------------------------
    def _tile(self, blk: "_Block", rows: int, t, r0, p, cols: int) -> None:
        """C rows m0 + t*MR + r0 + [0, rows), columns p*NR + [0, cols): accumulate this K block
        of A times panel p, then at the last K block apply the epilogue; store."""
        s = self.s
        nvec, rows_at, cols_at, masks = self._tile_place(blk, rows, t, r0, p, cols)

        zero = [constant(0.0, self.vtype)] * (rows * nvec)
        if blk.first is None:
            init = zero
        else:
            init = if_(blk.first, [self.vtype] * len(zero), lambda: zero,
                       lambda: [self._load(self.ops.c,
                                           [*self._c_row(rows_at[r], self.spec.out_padding),
                                            cols_at[v]],
                                           masks[v], wide=True)
                                for r in range(rows) for v in range(nvec)])
        group = None        # a low-bit kernel's (scales, offsets) vectors of the current group

        def steps(kk, accs, count, k_start, load_a, sets=1):
            """`count` k steps from k_start + kk; step u accumulates into set u % sets."""
            accs = list(accs)
            size = rows * nvec
            high = {}           # 4-bit codes: the odd k's nibbles of the byte read at k - 1
            for u in range(count):
                ku = arith.addi(kk, index(u)) if u else kk
                k = arith.addi(k_start, ku)
                base = (u % sets) * size
                b = [self._load_b(p, k, v, cols_at, masks) if group is None else
                     self._load_low_bit(p, k, u, v, group, high) for v in range(nvec)]
                for r in range(rows):
                    a = load_a(r, ku)
                    a = vector.broadcast(self.a_vtype, a if self.half_fml else widen(a))
                    for v in range(nvec):
                        i = base + r * nvec + v
                        accs[i] = self.mac(a, b[v], accs[i])
            return accs

        u = max(1, s.unroll)
        # Small tiles have too few accumulators to hide the FMA latency: give the unrolled
        # loop several sets (k steps alternate between them) and add them up after it.
        sets = max(1, min(u, -(-s.chains // (rows * nvec))))

        # 4-bit codes come two k per byte: steps go in pairs (u even; spans are even).
        pair = 2 if self.spec.weights == "i4" else 1

        def accumulate(k_start, span, load_a, *accs):
            """A run of k contiguous in A: unrolled steps, then the remainder one by one (a pair
            at a time for 4-bit codes)."""
            k_main = arith.muli(arith.divui(span, index(u)), index(u))
            accs = for_(index(0), k_main, index(u), accs,
                        lambda kk, *a: steps(kk, a, u, k_start, load_a, sets))
            if u > pair:
                accs = for_(k_main, span, index(pair), accs,
                            lambda kk, *a: steps(kk, a, pair, k_start, load_a))
            return accs

        if self.spec.low_bit:
            plain = accumulate
            # A small tile (GEMV rows) sums each group's raw codes times A and scales the sum
            # once per group (adding the offsets times A's group sums, `_group_sums`): one
            # multiply-add less per weight vector. A larger one dequantizes each weight vector
            # as it reads it, which its rows share.
            per_group = rows <= GROUP_SUM_ROWS

            def accumulate(k_start, span, load_a, *accs):
                """Group by group (the K block holds whole groups): the group's scale (and
                offset) vectors, then its k steps."""
                g_size = self.spec.group

                def one_group(g, *accs):
                    nonlocal group
                    g0 = arith.muli(g, index(g_size))
                    g1 = arith.minsi(arith.addi(g0, index(g_size)), arith.addi(k_start, span))
                    at = [[p, g, index(v * s.lanes)] for v in range(nvec)]
                    scales = [self._load_panel(self.ops.b_scale, i) for i in at]
                    offsets = [self._load_panel(self.ops.b_offset, i) for i in at] \
                        if self.ops.b_offset is not None else None
                    skip = arith.subi(g0, k_start)
                    group = (None, None) if per_group else (scales, offsets)
                    accs = list(accs)
                    partial = plain(g0, arith.subi(g1, g0),
                                    lambda r, kk: load_a(r, arith.addi(kk, skip)),
                                    *(zero * sets if per_group else accs))
                    if not per_group:
                        return partial
                    size = rows * nvec
                    partial = [functools.reduce(arith.addf, partial[i::size])
                               for i in range(size)]
                    g_sum = arith.subi(g, arith.divui(blk.k0, index(g_size)))
                    for r in range(rows):
                        a_sum = None if offsets is None else vector.broadcast(
                            self.vtype, memref.load(blk.sums, [arith.subi(rows_at[r], blk.m0),
                                                               g_sum]))
                        for v in range(nvec):
                            i = r * nvec + v
                            accs[i] = vector.fma(partial[i], scales[v], accs[i])
                            if a_sum is not None:
                                accs[i] = vector.fma(a_sum, offsets[v], accs[i])
                    return accs
                first = arith.divui(k_start, index(g_size))
                last = arith.ceildivui(arith.addi(k_start, span), index(g_size))
                return for_(first, last, index(1), accs, one_group)

        accs = init + zero * (sets - 1)
        if blk.packed is not None:
            a_rows = [arith.addi(r0, index(r)) for r in range(rows)]
            accs = accumulate(blk.k0, arith.subi(blk.k1, blk.k0),
                              lambda r, kk: memref.load(blk.packed, [t, kk, a_rows[r]]), *accs)
        elif (self.spec.int8 or self.spec.pairs) and self.spec.patches is None:
            accs = accumulate(blk.k0, arith.subi(blk.k1, blk.k0), lambda r, kk: self._load_word(
                [rows_at[r]], arith.addi(blk.k0, kk)), *accs)
        elif self.spec.patches is None:
            accs = accumulate(blk.k0, arith.subi(blk.k1, blk.k0), lambda r, kk: memref.load(
                self.ops.a, [*self.prefix, rows_at[r], arith.addi(blk.k0, kk)]), *accs)
        else:
            pixels = self._tile_pixels(rows_at)
            channels = index(self.spec.tap_k)
            accs = self._segments(blk, pixels, lambda k_start, load_a, *a: accumulate(
                k_start, channels, load_a, *a), accs)
        size = rows * nvec
        accs = list(accs)
        for extra in range(1, sets):
            add = arith.addi if self.spec.int8 or self.spec.integer else arith.addf
            accs[:size] = [add(x, y) for x, y in
                           zip(accs[:size], accs[extra * size:(extra + 1) * size])]
        accs = accs[:size]

        def finish():
            return self._epilogue(accs, rows_at, cols_at, masks, rows, nvec)
        if blk.last is None:
            accs = finish()
        else:
            accs = if_(blk.last, [self.vtype] * len(accs), finish, lambda: accs)
        self._store_tile(accs, rows_at, cols_at, masks)

    def _tile_place(self, blk: "_Block", rows: int, t, r0, p, cols: int):
        """(vectors per row, the tile's C rows, its vectors' first columns, their masks: None
        but for a last vector short of `cols`)."""
        i = arith.addi(arith.addi(blk.m0, arith.muli(t, index(self.s.mr))), r0)
        rows_at = [arith.addi(i, index(r)) for r in range(rows)]
        nvec, cols_at, masks = self._tile_columns(p, cols)
        return nvec, rows_at, cols_at, masks

    def _tile_columns(self, p, cols: int):
        """(vectors per row, their first columns, their masks) of panel p's `cols` columns."""
        s = self.s
        nvec = -(-cols // s.lanes)
        tail_lanes = cols - (nvec - 1) * s.lanes      # lanes of the last vector
        col0 = arith.muli(p, index(s.nr))
        cols_at = [arith.addi(col0, index(v * s.lanes)) for v in range(nvec)]
        return nvec, cols_at, [None] * (nvec - 1) + [self._mask(tail_lanes)]

    def _store_tile(self, accs, rows_at, cols_at, masks) -> None:
        """The tile's values (row-major, one vector per row and column block) into C."""
        nvec = len(cols_at)
        for r in range(len(rows_at)):
            row = self._c_row(rows_at[r], self.spec.out_padding)
            for v in range(nvec):
                self._store(accs[r * nvec + v], self.ops.c, [*row, cols_at[v]], masks[v])

    def _c_row(self, row, padding):
        """The leading indices of row `row` of C (padding: the spec's out_padding) or of the
        residual (its residual_padding): [(batch entry,) row], or its pixel's in a padded
        tensor."""
        if not padding:
            return [*self.prefix, row]
        oh, ow, top, left, _, _ = padding
        pixel = arith.remui(row, index(oh * ow))
        return [arith.divui(row, index(oh * ow)),
                arith.addi(arith.divui(pixel, index(ow)), index(top)),
                arith.addi(arith.remui(pixel, index(ow)), index(left))]

    def _epilogue(self, accs, rows_at, cols_at, masks, rows, nvec):
        """The tile's accumulators after the epilogue: bias vectors loaded once per column,
        each residual vector only where it is added (int8 ones dequantized first)."""
        if self.spec.int8:
            accs = self._dequantize(accs, rows_at, cols_at, masks, rows, nvec)
        bias = [self._load(self.ops.bias, [cols_at[v]], masks[v], wide=True)
                for v in range(nvec)] \
            if self.ops.bias is not None else [None] * nvec
        activation, last = self._activations()
        out = []
        for r in range(rows):
            for v in range(nvec):
                residual = None if self.ops.residual is None else \
                    lambda r=r, v=v: self._residual(rows_at[r], cols_at[v], masks[v])
                out.append(apply_epilogue(accs[r * nvec + v], activation, bias[v], residual))
        if last:
            out = [ACTIVATIONS[last](y) for y in out]
        if self.spec.out_scale:       # C holds codes: quantized in registers
            quant = self.spec.out_quantization
            codes = quantize_unsigned_code if quant[2] >= 0 else quantize_code
            out = [codes(y, *quant) for y in out]
        return out

    def _activations(self):
        """(the activation before the residual, the one after it or ""): the spec's, less a
        last ReLU that the quantization of a kernel writing codes clamps anyway."""
        activation, last = self.spec.activation, self.spec.output_activation
        quant = self.spec.out_quantization
        if quant is None or not relu_before_is_redundant(*quant[1:3]):
            return activation, last
        if last == "relu":
            return activation, ""
        if not last and not self.spec.residual and activation == "relu":
            return "none", last
        return activation, last

    def _residual(self, row, col, mask):
        """The residual's f32 vector at (row, col): codes (an int8 kernel's residual_scale)
        dequantized as they are read."""
        codes = self.spec.residual_dequantization
        at = [*self._c_row(row, self.spec.residual_padding), col]
        if codes is None:
            return self._load(self.ops.residual, at, mask, wide=True)
        return dequantize_code(self._load(self.ops.residual, at, mask), *codes)

    def _dequantize(self, accs, rows_at, cols_at, masks, rows, nvec):
        """int32 accumulators -> f32: float(acc - compensation[n]) * (row scale * column
        scale), the order ember.quant.schemes.reference_qgemm computes in."""
        ops = self.ops
        comp = [self._load(ops.compensation, [cols_at[v]], masks[v]) for v in range(nvec)]
        col_scale = [self._load(ops.b_scale, [cols_at[v]], masks[v]) for v in range(nvec)]
        f32 = ir.VectorType(col_scale[0].type)
        if self.spec.lhs_scale:      # one row scale: its products once per tile, not per row
            both = [arith.mulf(constant(self.spec.lhs_scale, f32), c) for c in col_scale]
        out = []
        for r in range(rows):
            if not self.spec.lhs_scale:
                row_scale = vector.broadcast(f32, memref.load(ops.a_scale, [rows_at[r]]))
                both = [arith.mulf(row_scale, c) for c in col_scale]
            for v in range(nvec):
                exact = arith.sitofp(f32, arith.subi(accs[r * nvec + v], comp[v]))
                out.append(arith.mulf(exact, both[v]))
        return out

    # -- vector memory access -------------------------------------------------------------
    def _load_b(self, p, k, v: int, cols_at, masks):
        """Vector v of row k of panel p: from the packed weight (zero-padded, never masked) or
        from a row-major B (masked past column N)."""
        if self.spec.rhs_packed:
            stored = ir.VectorType.get([self.s.lanes],
                                       ir.MemRefType(self.ops.b.type).element_type)
            value = vector.load(stored, self.ops.b, [p, k, index(v * self.s.lanes)])
            return value if self.half_fml else widen(value)
        return self._load(self.ops.b, [*self.prefix, k, cols_at[v]], masks[v], wide=True)

    def _load_panel(self, base, indices):
        """A vector of f32 lanes of a panel-laid-out memref (zero-padded: never masked)."""
        return vector.load(ir.VectorType.get([self.s.lanes], ir.F32Type.get()), base, indices)

    def _load_low_bit(self, p, k, u: int, v: int, group, high: dict):
        """Vector v of row k of panel p of low-bit codes, dequantized in registers with the
        group's scales and offsets (`group`): q * scale + offset (the raw codes q when the
        group's scales are None). 8-bit codes: one byte
        vector, sign-extended. 4-bit codes: step u even reads the byte vector of rows k, k + 1
        and keeps the high nibbles in `high` for step u + 1."""
        lanes = self.s.lanes
        scales, offsets = group
        i32 = ir.VectorType.get([lanes], ir.IntegerType.get_signless(32))
        f32 = ir.VectorType.get([lanes], ir.F32Type.get())
        bytes_type = ir.VectorType.get([lanes], ir.IntegerType.get_signless(8))
        if self.spec.weights == "i8":
            q = arith.sitofp(f32, vector.load(bytes_type, self.ops.b,
                                              [p, k, index(v * lanes)]))
        elif u % 2:
            q = high.pop(v)
        else:
            codes = arith.extui(i32, vector.load(bytes_type, self.ops.b,
                                                 [p, arith.divui(k, index(2)),
                                                  index(v * lanes)]))
            # Both nibbles are below 16: a signed conversion is exact (and one instruction
            # where the target has no unsigned one).
            high[v] = arith.sitofp(f32, arith.shrui(codes, constant(4, i32)))
            q = arith.sitofp(f32, arith.andi(codes, constant(15, i32)))
        if scales is None:              # raw codes: the tile scales its sums per group
            return q
        if offsets is None:
            return arith.mulf(q, scales[v])
        return vector.fma(q, scales[v], offsets[v])

    def _load_word(self, at, k):
        """Word k (bytes 4k .. 4k+3, as i32) of an int8 kernel's A row at leading indices `at`
        (a row of A; a pixel of a patch kernel's input); in a bf16 pairs kernel, its bf16
        2k and 2k + 1."""
        per_word = 2 if self.spec.pairs else 4
        parts = ir.VectorType.get([per_word], ir.MemRefType(self.ops.a.type).element_type)
        word = vector.load(parts, self.ops.a, [*at, arith.muli(k, index(per_word))])
        word = vector.bitcast(ir.VectorType.get([1], self.element), word)
        return vector.extract(word, [], [0])

    def _mask(self, lanes: int):
        if lanes == self.s.lanes:
            return None
        mask_type = ir.VectorType.get([self.s.lanes], ir.IntegerType.get_signless(1))
        return vector.create_mask(mask_type, [index(lanes)])

    def _load(self, base, indices, mask, wide: bool = False):
        """A vector of `base`'s element type (operands, scales and C may differ in int8);
        `wide`: a 16-bit float one widened to f32."""
        vtype = ir.VectorType.get([self.s.lanes], ir.MemRefType(base.type).element_type)
        if mask is None:
            value = vector.load(vtype, base, indices)
        else:
            value = vector.maskedload(vtype, base, indices, mask, constant(0, vtype))
        return widen(value) if wide else value

    def _store(self, value, base, indices, mask) -> None:
        stored = ir.MemRefType(base.type).element_type
        if is_half(stored):                 # a 16-bit C: rounded once, here
            value = arith.truncf(ir.VectorType.get([self.s.lanes], stored), value)
        if mask is None:
            # A C that outgrows the caches (GemmSchedule.stream_c) streams past them: no
            # read for ownership of its lines, no eviction of the operands.
            stream = self.s.stream_c and base == self.ops.c and isinstance(stored, ir.F32Type)
            vector.store(value, base, indices, nontemporal=True if stream else None)
        else:
            vector.maskedstore(base, indices, mask, value)
