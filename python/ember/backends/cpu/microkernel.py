"""CPU GEMM code generation: the packed-weight layout, kernel descriptors, schedules and the
register-blocked micro-kernel built from the vector dialect.

Three passes share this module, one stage each:
  ember-pack-weights      rewrites a weight rhs [K, N] into panels (`pack_panels`, `rhs_panel`)
  ember-lower-to-linalg   turns a packed ember.gemm into a call of a private kernel function
                          whose body is a linalg reference and whose `ember.gemm_kernel`
                          attribute is a `GemmKernelSpec`
  ember-cpu-gemm-kernels  (after bufferization) replaces each kernel body by `emit_kernel`'s
                          code, for a `GemmSchedule` chosen from the target's `CpuTraits`

Packed layout: rhs[k, n] lives at packed[n // NR, k, n % NR], zero-padded to a multiple of NR
columns, i.e. `linalg.pack %rhs outer_dims_perm = [1, 0] inner_dims_pos = [1]
inner_tiles = [NR]`. One NR-wide panel is contiguous over K, so the micro-kernel streams it.

Generated code (C = residual + act(A @ B + bias), A [M, K] row-major, C [M, N]):

    kernel:  T = omp_get_max_threads(); split rows T ways (M >= T * split_rows) or panels
             scf.parallel over the T parts (-> OpenMP), each part a call of the task function
    task:    rows [m0, m1) x panels [p0, p1), packed-A buffer on its stack
      for each block of <= MC rows (equal blocks, whole tiles)
        for each K block of KC
          pack A[rows, K block] into MR-row micro-panels [tile][k][row]     (stays in L2)
          for p in panels: for each MR-row tile, then 8/4/2/1-row tiles for the rest:
            tile: MR x NR/lanes vector<lanes x f32> accumulators as scf.for iter_args; per k
                  NR/lanes vector.load of the panel, one broadcast per row, MR x NR/lanes
                  vector.fma (small tiles: several accumulator sets to hide FMA latency);
                  zero at the first K block, C's values after it; at the last K block the
                  epilogue (bias, activation, residual) on the accumulators; then one store
                  (masked in the last panel when N is not a multiple of NR).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
from mlir import ir
from mlir.dialects import arith, func, memref, scf, vector

from ember.pipeline.target_info import TargetInfo

from ember.kit.builders import GemmOperands as _Operands, for_ as _for, gemm_arg_names, if_ as _if, \
    index as _index

#: Attribute on ember.gemm: rhs is packed in panels of this many columns.
PANEL_ATTR = "rhs_panel"
#: Attribute on a kernel function: its GemmKernelSpec.
KERNEL_ATTR = "ember.gemm_kernel"
#: Name prefix of generated kernel functions.
KERNEL_PREFIX = "ember_gemm_"
#: Packing A pays off when the packed block is reused for at least this many panels: packing
#: costs about one load and store per element, as much as a panel's FMAs on it (measured on
#: the CNN's convolutions, N = 32 and 64: reading A in place was 7% faster end to end).
PACK_A_MIN_PANELS = 4
#: A patch lhs with fewer channels than this is packed whatever N: its rows are runs of C
#: floats per filter tap, too short for the micro-kernel's unrolled k loop (the CNN's RGB stem,
#: C = 3, N = 32: 5.0% -> 2.6% of the samples; at C = 32 packing was slower).
PACK_A_PATCH_CHANNELS = 8
#: OpenMP's team size for the next parallel region (libomp), read by parallel kernels.
THREADS_FN = "omp_get_max_threads"
#: Nonzero inside a parallel region: a kernel called there (a block of a parallel loop) runs
#: on its caller's thread without forking, since a nested region would be serialized anyway.
IN_PARALLEL_FN = "omp_in_parallel"


# ----------------------------------------------------------------------------- packed layout
def packed_shape(k: int, n: int, nr: int) -> List[int]:
    """The packed rhs shape [ceil(N / NR), K, NR] of a [K, N] rhs."""
    return [-(-n // nr), k, nr]


def pack_panels(rhs: np.ndarray, nr: int) -> np.ndarray:
    """numpy rhs [K, N] -> panels [ceil(N / NR), K, NR], zero-padded past column N."""
    k, n = rhs.shape
    panels = -(-n // nr)
    padded = np.zeros((k, panels * nr), dtype=rhs.dtype)
    padded[:, :n] = rhs
    return np.ascontiguousarray(padded.reshape(k, panels, nr).transpose(1, 0, 2))


# ----------------------------------------------------------------------------- kernel spec
@dataclass(frozen=True)
class GemmKernelSpec:
    """What a kernel function computes: C[M, N] = residual + act(A[M, K] @ B + bias).

    `m` is None when M is dynamic. The function's arguments are, in order: A, the packed B,
    bias (when `bias`), residual (when `residual`), and C, which it writes in place.
    `patches` = (Hp, Wp, C, KH, KW, SH, SW, DH, DW) when A is implicit im2col patches (see
    ember.gemm's lhs_patches): the A argument is then the padded NHWC input [N, Hp, Wp, C], and
    A[m, k] = input[m / (OH*OW), (m / OW % OH)*SH + kh*DH, (m % OW)*SW + kw*DW, c] with
    k = (kh*KW + kw)*C + c.
    """
    m: Optional[int]
    n: int
    k: int
    nr: int
    activation: str = "none"
    bias: bool = False
    residual: bool = False
    patches: Optional[Tuple[int, ...]] = None
    #: Leading batch dim of A, B and C (one product per entry): 0 none, -1 dynamic, else its
    #: size. Batched kernels take B row-major.
    batch: int = 0
    #: B is the packed weight [ceil(N/NR), K, NR]; False: a row-major [(batch,) K, N] tensor
    #: computed at run time (attention's K^T and V), read in place with masked tail columns.
    rhs_packed: bool = True

    @property
    def patch_output(self) -> Tuple[int, int]:
        """(OH, OW) of a patch lhs."""
        hp, wp, _, kh, kw, sh, sw, dh, dw = self.patches
        return (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1

    @property
    def panels(self) -> int:
        return -(-self.n // self.nr)

    def arg_names(self) -> List[str]:
        return gemm_arg_names(self.bias, self.residual)

    def attr(self) -> ir.DictAttr:
        i64 = ir.IntegerType.get_signless(64)
        optional = {}
        if self.patches is not None:
            optional["patches"] = ir.DenseI64ArrayAttr.get(list(self.patches))
        if self.batch:
            optional["batch"] = ir.IntegerAttr.get(i64, self.batch)
        if not self.rhs_packed:
            optional["rhs_packed"] = ir.BoolAttr.get(False)
        return ir.DictAttr.get({
            "m": ir.IntegerAttr.get(i64, -1 if self.m is None else self.m),
            "n": ir.IntegerAttr.get(i64, self.n),
            "k": ir.IntegerAttr.get(i64, self.k),
            "nr": ir.IntegerAttr.get(i64, self.nr),
            "activation": ir.StringAttr.get(self.activation),
            "bias": ir.BoolAttr.get(self.bias),
            "residual": ir.BoolAttr.get(self.residual),
            **optional,
        })

    @classmethod
    def from_attr(cls, attr) -> "GemmKernelSpec":
        d = ir.DictAttr(attr)

        def integer(key):
            return ir.IntegerAttr(d[key]).value
        m = integer("m")
        return cls(m=None if m < 0 else m, n=integer("n"), k=integer("k"), nr=integer("nr"),
                   activation=ir.StringAttr(d["activation"]).value,
                   bias=ir.BoolAttr(d["bias"]).value, residual=ir.BoolAttr(d["residual"]).value,
                   patches=tuple(ir.DenseI64ArrayAttr(d["patches"])) if "patches" in d else None,
                   batch=integer("batch") if "batch" in d else 0,
                   rhs_packed=ir.BoolAttr(d["rhs_packed"]).value if "rhs_packed" in d else True)

    def memref_types(self, element: ir.Type) -> List[ir.Type]:
        """The kernel's argument types after bufferization (identity layouts)."""
        dyn = ir.ShapedType.get_dynamic_size()
        m = dyn if self.m is None else self.m
        if self.patches is None:
            lhs = [m, self.k]
        else:
            images = dyn if self.m is None else self.m // math.prod(self.patch_output)
            lhs = [images, *self.patches[:3]]
        lead = [] if not self.batch else [dyn if self.batch < 0 else self.batch]
        rhs = packed_shape(self.k, self.n, self.nr) if self.rhs_packed else \
            lead + [self.k, self.n]
        types = [ir.MemRefType.get(lead + lhs, element), ir.MemRefType.get(rhs, element)]
        if self.bias:
            types.append(ir.MemRefType.get([self.n], element))
        if self.residual:
            types.append(ir.MemRefType.get(lead + [m, self.n], element))
        types.append(ir.MemRefType.get(lead + [m, self.n], element))
        return types


# ----------------------------------------------------------------------------- target facts
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
    flags = set(f[1:] for f in features.split(",") if f.startswith("+"))
    if triple.startswith(("aarch64", "arm64")):
        return 4, 32
    if "avx512f" in flags:
        return 16, 32
    if "avx2" in flags or "avx" in flags:
        return 8, 16
    return 4, 16


def default_panel(traits: CpuTraits) -> int:
    """The packed panel width NR for a target: two vector registers."""
    return 2 * traits.lanes


# ----------------------------------------------------------------------------- schedule
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

    @property
    def vectors(self) -> int:
        return self.nr // self.lanes


def choose_schedule(spec: GemmKernelSpec, traits: CpuTraits, **overrides) -> GemmSchedule:
    """A schedule for `spec` on `traits`; a field given in `overrides` (not None, not 0) wins.

    MR: as many rows as the vector registers hold (accumulators + the panel's vectors + one
    broadcast). KC: L1d / (2 NR) (512 on a 32 KiB L1 with NR = 32; on Zen 4, 512 measured
    faster than the L1-resident 128, since the reloads of C per K block cost more than
    streaming the panel from L2), balanced over K. MC: the packed A block fills at most half
    of L2 and 256 KiB (it lives on the stack of an OpenMP worker).
    """
    def given(key):
        value = overrides.pop(key, None)
        return None if value in (None, 0) else value
    lanes = given("lanes") or math.gcd(traits.lanes, spec.nr)
    vectors = max(1, spec.nr // lanes)
    mr = given("mr") or max(1, min(14, (traits.registers - vectors - 1) // vectors))
    kc = given("kc")
    # K blocks of a patch lhs hold whole filter taps (C channels each): the kernel walks a
    # block tap by tap, reading C contiguous channels of one input pixel per tap.
    unit = 1 if spec.patches is None else spec.patches[2]
    if kc is None:
        kc_max = max(16, traits.l1d // (2 * spec.nr))
        units = spec.k // unit
        kc = -(-units // -(-units // max(1, kc_max // unit))) * unit
    else:
        kc = -(-kc // unit) * unit
    kc = min(kc, spec.k)
    mc = given("mc")
    if mc is None:
        mc = max(mr, min(traits.l2 // 2, 256 * 1024) // (kc * 4) // mr * mr)
        if spec.m is not None:
            mc = min(mc, -(-spec.m // mr) * mr)
    chosen = dict(lanes=lanes, mr=mr, nr=spec.nr, kc=kc, mc=mc, parallel=traits.cores > 1,
                  pack_a=spec.panels >= PACK_A_MIN_PANELS or (
                      spec.patches is not None and spec.patches[2] < PACK_A_PATCH_CHANNELS))
    for key, value in overrides.items():
        if value is not None and (value != 0 or isinstance(value, bool)):
            chosen[key] = value
    schedule = GemmSchedule(**chosen)
    if schedule.nr % schedule.lanes:
        raise ValueError(f"panel width {schedule.nr} is not a multiple of {schedule.lanes} lanes")
    return schedule


# ----------------------------------------------------------------------------- emitter
def _i64(value: int) -> ir.IntegerAttr:
    return ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)


def _min(a, b):
    return arith.minsi(a, b)


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
    K block (None: the only one), and the packed copy of A's block (None: read A directly)."""
    m0: ir.Value
    m1: ir.Value
    k0: ir.Value
    k1: ir.Value
    first: Optional[ir.Value]
    last: Optional[ir.Value]
    packed: Optional[ir.Value]


class _KernelEmitter:
    """Builds one kernel body; each method emits at the current insertion point."""

    def __init__(self, spec: GemmKernelSpec, schedule: GemmSchedule, element: ir.Type):
        self.spec, self.s = spec, schedule
        self.element = element
        self.vtype = ir.VectorType.get([schedule.lanes], element)

    # -- top level ------------------------------------------------------------------------
    def emit(self, ops: _Operands, task_fn: str) -> None:
        """The kernel body: one task per thread, each a call of the task function.

        With T threads (OpenMP's team size, read at run time) the rows are split T ways when
        every thread gets at least `split_rows` of them (each thread then streams all of B
        once per MC block), else the panels are (each thread packs the same A but reads only
        its share of B, which is what dominates for small M)."""
        spec = self.spec
        if spec.m is not None:
            m = _index(spec.m)
        elif spec.patches is None:
            m = memref.dim(ops.a, _index(1 if spec.batch else 0))
        else:
            m = arith.muli(memref.dim(ops.a, _index(0)), _index(math.prod(spec.patch_output)))
        operands = [ops.a, ops.b] + [v for v in (ops.bias, ops.residual) if v is not None] + \
            [ops.c]
        if spec.batch:
            self._emit_batched(ops, task_fn, m, operands)
            return
        whole = [_index(0), m, _index(0), _index(spec.panels)] + operands

        def on_this_thread():
            func.call([], task_fn, whole)
        self._serial_or_parallel(on_this_thread, lambda: self._emit_split(task_fn, m, operands))

    def _serial_or_parallel(self, serial, parallel) -> None:
        """Emits `parallel()` (OpenMP tasks) for a parallel schedule, guarded so that a call
        made inside a parallel region (a block of a parallel loop) runs `serial()` on its
        caller's thread instead: libomp would serialize the nested region anyway, after a
        costly fork."""
        if not self.s.parallel:
            serial()
        else:
            _if(_in_parallel(), (), serial, parallel)

    def _emit_split(self, task_fn: str, m, operands) -> None:
        """Tasks over the OpenMP team: rows split T ways when each gets `split_rows`, else
        panels."""
        spec, s = self.spec, self.s
        threads = arith.index_cast(ir.IndexType.get(), func.call(
            [ir.IntegerType.get_signless(32)], THREADS_FN, []))
        threads = arith.maxsi(threads, _index(1))
        split_m = arith.cmpi(arith.CmpIPredicate.sge, m,
                             arith.muli(threads, _index(s.split_rows)))
        m_parts = arith.select(split_m, threads, _index(1))
        n_parts = _min(arith.select(split_m, _index(1), threads), _index(spec.panels))
        tiles = arith.ceildivsi(m, _index(s.mr))
        one = _index(1)
        loop = scf.ParallelOp([], [_index(0), _index(0)], [m_parts, n_parts], [one, one], [])
        body = loop.regions[0].blocks.append(ir.IndexType.get(), ir.IndexType.get())
        with ir.InsertionPoint(body):
            mp, np_ = body.arguments

            def share(part, total, parts):
                return arith.divsi(arith.muli(part, total), parts)
            m0 = arith.muli(share(mp, tiles, m_parts), _index(s.mr))
            m1 = _min(arith.muli(share(arith.addi(mp, one), tiles, m_parts), _index(s.mr)), m)
            p0 = share(np_, _index(spec.panels), n_parts)
            p1 = share(arith.addi(np_, one), _index(spec.panels), n_parts)
            func.call([], task_fn, [m0, m1, p0, p1] + operands)
            scf.ReduceOp([], 0)

    def _emit_batched(self, ops: _Operands, task_fn: str, m, operands) -> None:
        """A batched kernel: one task per batch entry (all its rows and panels), the entries
        in parallel (inside an already parallel loop, e.g. attention's, in a serial loop on
        the calling thread)."""
        count = _index(self.spec.batch) if self.spec.batch > 0 else \
            memref.dim(ops.a, _index(0))
        whole = [_index(0), m, _index(0), _index(self.spec.panels)]

        def entry(b):
            func.call([], task_fn, [b] + whole + operands)

        def serial():
            _for(_index(0), count, _index(1), (), entry)

        def parallel():
            loop = scf.ParallelOp([], [_index(0)], [count], [_index(1)], [])
            body = loop.regions[0].blocks.append(ir.IndexType.get())
            with ir.InsertionPoint(body):
                func.call([], task_fn, [body.arguments[0]] + whole + operands)
                scf.ReduceOp([], 0)
        self._serial_or_parallel(serial, parallel)

    def emit_task(self, ops: _Operands, m0, m1, p0, p1, batch_index=None) -> None:
        """The task function's body: rows [m0, m1) x panels [p0, p1) over all of K (of batch
        entry `batch_index` in a batched kernel). A function of its own, so that its stack
        buffer (the packed A block) lives in an allocation scope outside the OpenMP loop
        body."""
        self.ops = ops
        self.prefix = [] if batch_index is None else [batch_index]
        spec, s = self.spec, self.s
        k_blocks = -(-spec.k // s.kc)
        packed = None
        if s.pack_a:
            # An MC x KC block of A as MR-row micro-panels [tile, k, row]: a tile's rows for
            # one k are adjacent, so the micro-kernel reads one stream (rows of A whose
            # stride is a multiple of 4 KiB would otherwise collide in one L1 set).
            shape = [-(-s.mc // s.mr), s.kc, s.mr]
            packed = memref.alloca(ir.MemRefType.get(shape, self.element), [], [],
                                   alignment=_i64(64))

        # Row blocks of at most MC rows, all the same size (in whole tiles), so that no block
        # is a sliver that streams all of B for a few rows.
        rows = arith.subi(m1, m0)
        count = arith.ceildivsi(rows, _index(s.mc))
        step = arith.muli(arith.ceildivsi(arith.ceildivsi(rows, count), _index(s.mr)),
                          _index(s.mr))
        step = arith.maxsi(step, _index(s.mr))

        def m_block(mb0):
            mb1 = _min(arith.addi(mb0, step), m1)

            def k_block(kb):
                k0 = arith.muli(kb, _index(s.kc))
                k1 = _min(arith.addi(k0, _index(s.kc)), _index(spec.k))
                if k_blocks == 1:
                    first = last = None
                else:
                    first = arith.cmpi(arith.CmpIPredicate.eq, kb, _index(0))
                    last = arith.cmpi(arith.CmpIPredicate.eq, kb, _index(k_blocks - 1))
                blk = _Block(mb0, mb1, k0, k1, first, last, packed)
                if packed is not None:
                    self._pack_a(blk)
                self._panels(blk, p0, p1)
            _for(_index(0), _index(k_blocks), _index(1), (), k_block)
        _for(m0, m1, step, (), m_block)

    def _pack_a(self, blk: "_Block") -> None:
        """packed[(row - m0) / MR, k - k0, (row - m0) % MR] = A[row, k] over the block."""
        mr = self.s.mr

        def row(i):
            off = arith.subi(i, blk.m0)
            t, r = arith.divui(off, _index(mr)), arith.remui(off, _index(mr))
            if self.spec.patches is None:
                def copy(kk):
                    value = memref.load(self.ops.a, [*self.prefix, i, arith.addi(blk.k0, kk)])
                    memref.store(value, blk.packed, [t, kk, r])
                _for(_index(0), arith.subi(blk.k1, blk.k0), _index(1), (), copy)
                return
            pixel = self._patch_row(i)

            def segment(k_start, load_a):
                def copy(cc):
                    memref.store(load_a(0, cc), blk.packed,
                                 [t, arith.addi(arith.subi(k_start, blk.k0), cc), r])
                _for(_index(0), _index(self.spec.patches[2]), _index(1), (), copy)
            self._segments(blk, [pixel], segment)
        _for(blk.m0, blk.m1, _index(1), (), row)

    # -- implicit im2col (spec.patches) ---------------------------------------------------
    def _patch_row(self, i):
        """(image, first input row, first input column) of patch row i."""
        _, _, _, _, _, sh, sw, _, _ = self.spec.patches
        oh, ow = self.spec.patch_output
        image = arith.divui(i, _index(oh * ow))
        pixel = arith.remui(i, _index(oh * ow))
        return (image, arith.muli(arith.divui(pixel, _index(ow)), _index(sh)),
                arith.muli(arith.remui(pixel, _index(ow)), _index(sw)))

    def _segments(self, blk: "_Block", pixels, body, iter_args=()):
        """Runs `body(k_start, load_a, *iter_args)` for each filter tap (kh, kw) of the K
        block (whole taps: the schedule's KC is a multiple of C); k_start is the tap's first
        k, `load_a(r, c)` reads channel c of the tap's input pixel for patch row pixels[r]."""
        _, _, c, _, kw, _, _, dh, dw = self.spec.patches

        def tap(seg, *args):
            ih = arith.muli(arith.divui(seg, _index(kw)), _index(dh))
            iw = arith.muli(arith.remui(seg, _index(kw)), _index(dw))
            at = [(image, arith.addi(row, ih), arith.addi(col, iw))
                  for image, row, col in pixels]

            def load_a(r, cc):
                return memref.load(self.ops.a, [*at[r], cc])
            return body(arith.muli(seg, _index(c)), load_a, *args)
        return _for(arith.divui(blk.k0, _index(c)), arith.divui(blk.k1, _index(c)), _index(1),
                    iter_args, tap)

    def _panels(self, blk: "_Block", p0, p1) -> None:
        spec = self.spec
        full = spec.n // spec.nr                 # panels without padding
        tail_cols = spec.n - full * spec.nr      # valid columns of the last panel (0: none)
        p_full_end = _min(p1, _index(full))
        _for(p0, p_full_end, _index(1), (), lambda p: self._rows(blk, p, spec.nr))
        if tail_cols:
            has_tail = arith.cmpi(arith.CmpIPredicate.eq, p1, _index(spec.panels))
            _if(has_tail, (), lambda: self._rows(blk, _index(full), tail_cols) or ())

    def _rows(self, blk: "_Block", p, cols: int) -> None:
        """Full MR-row tiles over [m0, m1), then the remaining rows in power-of-two tiles."""
        mr = self.s.mr
        full_tiles = arith.divui(arith.subi(blk.m1, blk.m0), _index(mr))
        _for(_index(0), full_tiles, _index(1), (),
             lambda t: self._tile(blk, mr, t, _index(0), p, cols))
        if mr == 1:
            return
        rest = arith.subi(arith.subi(blk.m1, blk.m0), arith.muli(full_tiles, _index(mr)))
        r0 = _index(0)
        for piece in _tail_pieces(mr):
            bit = arith.andi(rest, _index(piece))
            take = arith.cmpi(arith.CmpIPredicate.ne, bit, _index(0))
            _if(take, (), lambda r0=r0, piece=piece:
                self._tile(blk, piece, full_tiles, r0, p, cols) or ())
            r0 = arith.addi(r0, bit)

    # -- the register tile ----------------------------------------------------------------
    def _tile(self, blk: "_Block", rows: int, t, r0, p, cols: int) -> None:
        """C rows m0 + t*MR + r0 + [0, rows), columns p*NR + [0, cols): accumulate this K block
        of A times panel p, then at the last K block apply the epilogue; store."""
        s = self.s
        nvec = -(-cols // s.lanes)
        tail_lanes = cols - (nvec - 1) * s.lanes      # lanes of the last vector
        col0 = arith.muli(p, _index(s.nr))
        cols_at = [arith.addi(col0, _index(v * s.lanes)) for v in range(nvec)]
        i = arith.addi(arith.addi(blk.m0, arith.muli(t, _index(s.mr))), r0)
        rows_at = [arith.addi(i, _index(r)) for r in range(rows)]
        masks = [None] * (nvec - 1) + [self._mask(tail_lanes)]

        zero = [self._splat(0.0)] * (rows * nvec)
        if blk.first is None:
            init = zero
        else:
            init = _if(blk.first, [self.vtype] * len(zero), lambda: zero,
                       lambda: [self._load(self.ops.c, [*self.prefix, rows_at[r], cols_at[v]],
                                           masks[v])
                                for r in range(rows) for v in range(nvec)])
        def steps(kk, accs, count, k_start, load_a, sets=1):
            """`count` k steps from k_start + kk; step u accumulates into set u % sets."""
            accs = list(accs)
            size = rows * nvec
            for u in range(count):
                ku = arith.addi(kk, _index(u)) if u else kk
                k = arith.addi(k_start, ku)
                base = (u % sets) * size
                b = [self._load_b(p, k, v, cols_at, masks) for v in range(nvec)]
                for r in range(rows):
                    a = vector.broadcast(self.vtype, load_a(r, ku))
                    for v in range(nvec):
                        i = base + r * nvec + v
                        accs[i] = vector.fma(a, b[v], accs[i])
            return accs

        u = max(1, s.unroll)
        # Small tiles have too few accumulators to hide the FMA latency: give the unrolled
        # loop several sets (k steps alternate between them) and add them up after it.
        sets = max(1, min(u, -(-s.chains // (rows * nvec))))

        def accumulate(k_start, span, load_a, *accs):
            """A run of k contiguous in A: unrolled steps, then the remainder one by one."""
            k_main = arith.muli(arith.divui(span, _index(u)), _index(u))
            accs = _for(_index(0), k_main, _index(u), accs,
                        lambda kk, *a: steps(kk, a, u, k_start, load_a, sets))
            if u > 1:
                accs = _for(k_main, span, _index(1), accs,
                            lambda kk, *a: steps(kk, a, 1, k_start, load_a))
            return accs

        accs = init + zero * (sets - 1)
        if blk.packed is not None:
            a_rows = [arith.addi(r0, _index(r)) for r in range(rows)]
            accs = accumulate(blk.k0, arith.subi(blk.k1, blk.k0),
                              lambda r, kk: memref.load(blk.packed, [t, kk, a_rows[r]]), *accs)
        elif self.spec.patches is None:
            accs = accumulate(blk.k0, arith.subi(blk.k1, blk.k0), lambda r, kk: memref.load(
                self.ops.a, [*self.prefix, rows_at[r], arith.addi(blk.k0, kk)]), *accs)
        else:
            pixels = [self._patch_row(i) for i in rows_at]
            channels = _index(self.spec.patches[2])
            accs = self._segments(blk, pixels, lambda k_start, load_a, *a: accumulate(
                k_start, channels, load_a, *a), accs)
        size = rows * nvec
        accs = list(accs)
        for extra in range(1, sets):
            accs[:size] = [arith.addf(x, y) for x, y in
                           zip(accs[:size], accs[extra * size:(extra + 1) * size])]
        accs = accs[:size]

        def finish():
            return self._epilogue(accs, rows_at, cols_at, masks, rows, nvec)
        if blk.last is None:
            accs = finish()
        else:
            accs = _if(blk.last, [self.vtype] * len(accs), finish, lambda: accs)
        for r in range(rows):
            for v in range(nvec):
                self._store(accs[r * nvec + v], self.ops.c,
                            [*self.prefix, rows_at[r], cols_at[v]], masks[v])

    def _epilogue(self, accs, rows_at, cols_at, masks, rows, nvec):
        from ember.lowering.lower_to_linalg import UNARY
        activation = UNARY[self.spec.activation]
        bias = [self._load(self.ops.bias, [cols_at[v]], masks[v]) for v in range(nvec)] \
            if self.ops.bias is not None else None
        out = []
        for r in range(rows):
            for v in range(nvec):
                y = accs[r * nvec + v]
                if bias is not None:
                    y = arith.addf(y, bias[v])
                y = activation(y)
                if self.ops.residual is not None:
                    y = arith.addf(y, self._load(self.ops.residual,
                                                 [*self.prefix, rows_at[r], cols_at[v]],
                                                 masks[v]))
                out.append(y)
        return out

    # -- vector memory access -------------------------------------------------------------
    def _load_b(self, p, k, v: int, cols_at, masks):
        """Vector v of row k of panel p: from the packed weight (zero-padded, never masked) or
        from a row-major B (masked past column N)."""
        if self.spec.rhs_packed:
            return vector.load(self.vtype, self.ops.b, [p, k, _index(v * self.s.lanes)])
        return self._load(self.ops.b, [*self.prefix, k, cols_at[v]], masks[v])

    def _splat(self, value: float):
        return arith.constant(self.vtype, ir.DenseElementsAttr.get_splat(
            self.vtype, ir.FloatAttr.get(self.element, value)))

    def _mask(self, lanes: int):
        if lanes == self.s.lanes:
            return None
        mask_type = ir.VectorType.get([self.s.lanes], ir.IntegerType.get_signless(1))
        return vector.create_mask(mask_type, [_index(lanes)])

    def _load(self, base, indices, mask):
        if mask is None:
            return vector.load(self.vtype, base, indices)
        return vector.maskedload(self.vtype, base, indices, mask, self._splat(0.0))

    def _store(self, value, base, indices, mask) -> None:
        if mask is None:
            vector.store(value, base, indices)
        else:
            vector.maskedstore(base, indices, mask, value)


def emit_kernel(fn, spec: GemmKernelSpec, schedule: GemmSchedule):
    """Replaces the body of kernel function `fn` (memref arguments) by the schedule's code:
    one task per thread, each calling a new private task function (`<fn>_task`, placed after
    `fn`), which it returns."""
    block = fn.regions[0].blocks[0]
    args = list(block.arguments)
    for op in reversed(list(block.operations)):
        op.erase()
    element = ir.MemRefType(args[-1].type).element_type
    emitter = _KernelEmitter(spec, schedule, element)
    module_block = fn.operation.parent.regions[0].blocks[0]
    taken = {ir.StringAttr(op.attributes["sym_name"]).value for op in module_block.operations
             if "sym_name" in op.attributes}
    name = ir.StringAttr(fn.attributes["sym_name"]).value + "_task"
    while name in taken:
        name += "_"
    index = ir.IndexType.get()
    with ir.InsertionPoint(block), fn.location:
        emitter.emit(_Operands.from_args(spec, args), name)
        func.ReturnOp([])
    with ir.InsertionPoint.after(fn), fn.location:
        indices = 5 if spec.batch else 4        # (batch entry,) rows and panels
        task = func.FuncOp(name, ([index] * indices + [a.type for a in args], []),
                           visibility="private")
        entry = task.add_entry_block()
        with ir.InsertionPoint(entry):
            *batch, m0, m1, p0, p1 = entry.arguments[:indices]
            emitter.emit_task(_Operands.from_args(spec, entry.arguments[indices:]), m0, m1, p0, p1,
                              *batch)
            func.ReturnOp([])
        if schedule.parallel:
            for name in (THREADS_FN, IN_PARALLEL_FN):
                _declare(module_block, name, ir.FunctionType.get(
                    [], [ir.IntegerType.get_signless(32)]))
    return task


def _in_parallel():
    """i1: whether the caller runs inside an OpenMP parallel region."""
    i32 = ir.IntegerType.get_signless(32)
    return arith.cmpi(arith.CmpIPredicate.ne, func.call([i32], IN_PARALLEL_FN, []),
                      arith.constant(i32, 0))


def _declare(module_block, name: str, fn_type) -> None:
    """Declares external function `name` in the module once."""
    for op in module_block.operations:
        if "sym_name" in op.attributes and ir.StringAttr(op.attributes["sym_name"]).value == name:
            return
    with ir.InsertionPoint.at_block_begin(module_block):
        func.FuncOp(name, fn_type, visibility="private")


def check_kernel_signature(fn, spec: GemmKernelSpec) -> Optional[str]:
    """Why `fn` cannot take a generated body (not bufferized in place, wrong types), or None."""
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    if fn_type.results:
        return ("kernel function still returns a value: bufferization did not write its "
                "result in place of the `out` argument (run drop-equivalent-buffer-results)")
    inputs = list(fn_type.inputs)
    if len(inputs) != len(spec.arg_names()):
        return f"kernel function has {len(inputs)} arguments, its spec expects " \
               f"{len(spec.arg_names())} ({', '.join(spec.arg_names())})"
    if not all(isinstance(t, ir.MemRefType) for t in inputs):
        return "kernel function arguments must be memrefs (run it after bufferization)"
    element = ir.MemRefType(inputs[-1]).element_type
    expected = spec.memref_types(element)
    for name, got, want in zip(spec.arg_names(), inputs, expected):
        if str(got) != str(want):
            return f"kernel argument '{name}' has type {got}, expected {want}"
    if not isinstance(element, ir.F32Type):
        return f"only f32 kernels are generated, got {element}"
    return None


def is_bufferized(fn) -> bool:
    """Whether kernel function `fn` takes memrefs (after bufferization), not tensors."""
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    return not any(isinstance(t, ir.RankedTensorType) for t in fn_type.inputs)


def kernel_functions(module) -> List[object]:
    """The func.func ops of `module` carrying a kernel spec."""
    return [op for op in module.body.operations
            if op.operation.name == "func.func" and KERNEL_ATTR in op.attributes]


def schedule_attr(schedule: GemmSchedule) -> ir.DictAttr:
    """The schedule as an attribute, recorded on generated kernels for inspection."""
    i64 = ir.IntegerType.get_signless(64)
    return ir.DictAttr.get({f.name: (ir.BoolAttr.get(getattr(schedule, f.name))
                                     if isinstance(getattr(schedule, f.name), bool)
                                     else ir.IntegerAttr.get(i64, getattr(schedule, f.name)))
                            for f in dataclasses.fields(schedule)})
