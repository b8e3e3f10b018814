"""Tensor-core GEMM for f16/bf16 on NVIDIA GPUs (sm_80 and later): warp-level mma.sync.

C[M, N] = residual + act(A[M, K] @ B[K, N] + bias) with f16 or bf16 A and B, accumulated in f32
by `mma.sync.aligned.m16n8k16.row.col.f32.<t>.<t>.f32`. One block of `warps_m x warps_n` warps
computes a BM x BN tile of C, each warp a (BM / warps_m) x (BN / warps_n) sub-tile made of
16 x 8 MMA tiles whose accumulators (4 f32 per lane and tile) are scf.for iter_args, i.e.
registers. Per K step of BK the A (BM x BK) and B (BK x BN) tiles are copied to shared memory
with 16-byte `cp.async` (nvgpu.device_async_copy) into one of two stages, so that step k + 1's
copy runs while step k multiplies (double buffering; `cp.async.wait_group 1` then a barrier
before a stage is read, a barrier after it is read before it is refilled). Shared rows are
padded by 8 elements so that the 8 row addresses of one `ldmatrix` hit distinct banks (the
buffers themselves are 16-byte aligned by ember-gpu-kernels, as cp.async and ldmatrix need). Per
16-wide K slice a warp loads its A fragments with `ldmatrix.x4` and its B fragments with
`ldmatrix.x4.trans` (B is [K, N] row-major in shared memory; .trans yields the "col" operand)
and issues one mma per 16 x 8 tile. The epilogue (bias, activation, residual, conversion to
C's type) runs on the accumulator fragments and stores them straight to C.

Tails: copies of 16-byte chunks past M, N or K read nothing and zero-fill shared memory
(cp.async's src-size 0, from a clamped in-bounds address), and stores past M or N are skipped.
So K and N must be multiples of 8 (whole, 16-byte aligned chunks; `why_not_mma` checks this
and A's and B's layouts) and every other GEMM uses the SIMT kernel (simt_gemm.py).

MLIR 22 facts this relies on: nvgpu.ldmatrix and nvgpu.device_async_copy (with srcElements)
lower through convert-nvgpu-to-nvvm for f16 and bf16; nvgpu.mma.sync does not lower for bf16
("failed to deduce operand PTX types"), so the MMA is nvvm.mma.sync, whose f16 operands are
vector<2xf16> and bf16 operands i32 (`_OPERAND`).

The index math (which chunk each thread copies, which row address each lane hands ldmatrix,
which C element each accumulator register holds, each warp's origin) is written once in the
functions below on ints or `Ix` values; tests/test_gpu_codegen.py runs it on ints in a numpy
model of a block, with ldmatrix and mma.sync modelled from the PTX ISA's fragment layouts for
m16n8k16, and checks the result against A @ B, tails included. Verified here: that model, the
PTX (mma.sync/ldmatrix/cp.async present) and ptxas for sm_80 and sm_90. Unverified: execution
on a GPU (none was available), and the performance of the tile choice (`choose_mma_tile`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mlir import ir
from mlir.dialects import arith, gpu, llvm, memref, nvgpu, nvvm, vector

from ember.backends.gpu.simt_gemm import BlockTile, GpuGemmSpec, GpuMapping, both, element_of, \
    epilogue_at, from_f32, less
from ember.kit.builders import GemmOperands, Ix, for_, if_

#: The MMA shape: a warp multiplies 16 x 16 of A by 16 x 8 of B per instruction.
MMA_M, MMA_N, MMA_K = 16, 8, 16
WARP = 32
#: Elements per 16-byte cp.async chunk (2-byte elements).
CHUNK = 8
#: Shared-memory row padding in elements (16 bytes), against ldmatrix bank conflicts.
PAD = 8
#: Static shared memory a kernel may use without opting in to more.
SHARED_LIMIT = 48 * 1024
#: Blocks below which the small tile is used (fewer would leave most SMs of an H100 idle).
MIN_LARGE_BLOCKS = 128


@dataclass(frozen=True)
class MmaTile(BlockTile):
    """The tensor-core kernel's tile: a block tile computed by warps_m x warps_n warps."""
    warps_m: int = 2
    warps_n: int = 2

    @property
    def warp_m(self) -> int:
        return self.bm // self.warps_m

    @property
    def warp_n(self) -> int:
        return self.bn // self.warps_n

    @property
    def threads(self) -> int:
        return WARP * self.warps_m * self.warps_n

    def shared_bytes(self, element_bytes: int = 2) -> int:
        return 2 * (self.bm * (self.bk + PAD) + self.bk * (self.bn + PAD)) * element_bytes

    def check(self) -> None:
        if self.warp_m * self.warps_m != self.bm or self.warp_m % MMA_M or \
                self.warp_n * self.warps_n != self.bn or self.warp_n % (2 * MMA_N):
            raise ValueError(f"tile {self}: each warp's tile must be a multiple of 16 x 16")
        if self.bk % MMA_K:
            raise ValueError(f"tile {self}: BK must be a multiple of {MMA_K}")
        for rows, cols in ((self.bm, self.bk), (self.bk, self.bn)):
            if (rows * cols // CHUNK) % self.threads:
                raise ValueError(f"tile {self}: the {self.threads} threads must split the "
                                 f"{rows} x {cols} tile's 16-byte chunks evenly")
        if self.shared_bytes() > SHARED_LIMIT:
            raise ValueError(f"tile {self}: {self.shared_bytes()} bytes of shared memory, "
                             f"more than {SHARED_LIMIT}")


LARGE = MmaTile(bm=128, bn=128, bk=32, warps_m=2, warps_n=4)
SMALL = MmaTile(bm=64, bn=64, bk=32, warps_m=2, warps_n=2)


def choose_mma_tile(spec: GpuGemmSpec) -> MmaTile:
    """128 x 128 tiles (8 warps of 64 x 32) when there are enough of them to fill the GPU,
    else 64 x 64 (4 warps of 32 x 32). A heuristic, not tuned on hardware."""
    blocks = LARGE.grid(spec)
    return LARGE if blocks[0] * blocks[1] >= MIN_LARGE_BLOCKS else SMALL


def why_not_mma(spec: GpuGemmSpec, ops: GemmOperands) -> Optional[str]:
    """Why this GEMM cannot use the tensor-core kernel, or None."""
    element = element_of(ops.a)
    if element_of(ops.b) != element or str(element) not in _OPERAND:
        return f"operands are {element} and {element_of(ops.b)}, not both f16 or both bf16"
    if spec.k % CHUNK or spec.n % CHUNK:
        return f"K={spec.k} and N={spec.n} must be multiples of {CHUNK} (16-byte copies)"
    for name, value in (("A", ops.a), ("B", ops.b)):
        strides, offset = ir.MemRefType(value.type).get_strides_and_offset()
        if strides[-1] != 1 or strides[0] % CHUNK or offset % CHUNK:
            return f"{name}'s layout (strides {strides}, offset {offset}) is not 16-byte aligned"
    return None


# ----------------------------------------------------------------------------- index math
# Each function takes ints or Ix values; see the module docstring.
def copy_chunk(tid, i: int, threads: int, cols: int):
    """(row, column) of the i-th 16-byte chunk thread `tid` copies of a tile `cols` wide."""
    chunk = tid + i * threads
    per_row = cols // CHUNK
    return chunk // per_row, chunk % per_row * CHUNK


def ldmatrix_x4_address(lane):
    """(row, column) offset, within a 16 x 16 block, of the row whose address `lane` gives
    `ldmatrix.x4`: lanes 8j..8j+7 give matrix j's 8 rows; matrices 0..3 are the blocks at
    (0, 0), (8, 0), (0, 8), (8, 8). Then for A (row-major, no .trans) the four registers are
    the m16n8k16 A fragment a0..a7, and for B ([K, N], .trans) registers 0-1 are the B
    fragment of columns 0-7 and registers 2-3 that of columns 8-15."""
    return lane % 16, lane // 16 * 8


def accumulator_position(lane, r: int):
    """(row, column) in the 16 x 8 C tile of accumulator register r (0..3) of `lane`."""
    return lane // 4 + r // 2 * 8, lane % 4 * 2 + r % 2


def warp_origin(tid, tile: MmaTile):
    """(row, column) of thread `tid`'s warp's sub-tile in the block tile."""
    warp = tid // WARP
    return warp // tile.warps_n * tile.warp_m, warp % tile.warps_n * tile.warp_n


# ----------------------------------------------------------------------------- emitter
def _as_i32(value):
    vec = vector.bitcast(ir.VectorType.get([1], ir.IntegerType.get_signless(32)), value)
    return vector.extract(vec, [], [0])


#: The MMA operand register of 2 elements (vector<2xT>), as nvvm.mma.sync takes it.
_OPERAND = {"f16": lambda value: value, "bf16": _as_i32}


class _Emitter:
    """Emits one block's code; `tid` is the thread id as Ix."""

    def __init__(self, spec: GpuGemmSpec, ops: GemmOperands, tile: MmaTile,
                 mapping: GpuMapping):
        self.spec, self.ops, self.tile, self.mapping = spec, ops, tile, mapping
        self.element = element_of(ops.a)
        self.tiles_m, self.tiles_n = tile.warp_m // MMA_M, tile.warp_n // MMA_N
        name = str(self.element)
        self.operand = _OPERAND[name]
        self.ptx_type = ir.Attribute.parse(f"#nvvm.mma_type<{name}>")
        self.frag_type = ir.VectorType.get([4, 2], self.element)

    def block(self, bx, by) -> None:
        t, el = self.tile, self.element
        self.a_s = self.mapping.shared([2, t.bm, t.bk + PAD], el)
        self.b_s = self.mapping.shared([2, t.bk, t.bn + PAD], el)
        tid = Ix(self.mapping.tid)
        self.tid, self.lane = tid, tid % WARP
        self.m0, self.n0 = Ix(by) * t.bm, Ix(bx) * t.bn
        self.wm0, self.wn0 = warp_origin(tid, t)
        k_steps = -(-self.spec.k // t.bk)
        zero = arith.constant(ir.F32Type.get(), 0.0)
        accs = [zero] * (self.tiles_m * self.tiles_n * 4)
        group = self.load(Ix(0), Ix(0))

        def step(kt, *accs):
            kt = Ix(kt)
            nvgpu.device_async_wait(self.load((kt + 1) % 2, kt + 1), num_groups=1)
            gpu.barrier()
            accs = self.multiply(kt % 2, accs)
            gpu.barrier()
            return accs
        if k_steps > 1:
            accs = for_(0, k_steps - 1, 1, accs, step)
        nvgpu.device_async_wait(group, num_groups=0)
        gpu.barrier()
        self.store(self.multiply(Ix(k_steps - 1) % 2, accs))

    # -- shared memory --------------------------------------------------------------------
    def load(self, stage: Ix, kt: Ix):
        """Issues the cp.async copies of K step `kt` into `stage`; returns the group token."""
        t, s = self.tile, self.spec
        k0 = kt * t.bk
        tokens = self.copy(self.ops.a, self.a_s, stage, (self.m0, k0), (t.bm, t.bk), (s.m, s.k))
        tokens += self.copy(self.ops.b, self.b_s, stage, (k0, self.n0), (t.bk, t.bn), (s.k, s.n))
        return nvgpu.device_async_create_group(tokens)

    def copy(self, src, dst, stage: Ix, origin, shape, limits) -> list:
        """cp.async of the shape[0] x shape[1] tile of `src` at `origin` into dst[stage];
        chunks outside `limits` (src's shape) are zero-filled."""
        tokens = []
        for i in range(shape[0] * shape[1] // CHUNK // self.tile.threads):
            r, c = copy_chunk(self.tid, i, self.tile.threads, shape[1])
            at = [(origin[0] + r).value, (origin[1] + c).value]
            inside = both(*(less(v, limit) if limit % size else None
                            for v, limit, size in zip(at, limits, shape)))
            count = None
            if inside is not None:
                at = [arith.select(inside, v, Ix(0).value) for v in at]
                count = arith.select(inside, Ix(CHUNK).value, Ix(0).value)
            tokens.append(nvgpu.device_async_copy(
                dst, [stage.value, r.value, c.value], src, at, ir.IntegerAttr.get(
                    ir.IndexType.get(), CHUNK), src_elements=count, bypass_l1=True))
        return tokens

    # -- tensor cores ---------------------------------------------------------------------
    def fragments(self, buf, stage: Ix, row0, col0, transpose: bool) -> list:
        """ldmatrix.x4 of the 16 x 16 block of buf[stage] at (row0, col0): 4 registers."""
        r, c = ldmatrix_x4_address(self.lane)
        frag = nvgpu.ldmatrix(self.frag_type, buf, [stage.value, (row0 + r).value,
                                                    (col0 + c).value], transpose, 4)
        return [self.operand(vector.extract(frag, [], [q])) for q in range(4)]

    def multiply(self, stage: Ix, accs) -> list:
        """accs + the warp's tile products of stage `stage`."""
        accs = list(accs)
        f32 = ir.F32Type.get()
        result = ir.Type.parse("!llvm.struct<(f32, f32, f32, f32)>")
        attrs = dict(shape=ir.Attribute.parse(f"#nvvm.shape<m = {MMA_M}, n = {MMA_N}, "
                                              f"k = {MMA_K}>"),
                     layoutA=ir.Attribute.parse("#nvvm.mma_layout<row>"),
                     layoutB=ir.Attribute.parse("#nvvm.mma_layout<col>"))
        for kk in range(0, self.tile.bk, MMA_K):
            a = [self.fragments(self.a_s, stage, self.wm0 + i * MMA_M, kk, False)
                 for i in range(self.tiles_m)]
            b = []
            for j in range(0, self.tiles_n, 2):
                regs = self.fragments(self.b_s, stage, kk, self.wn0 + j * MMA_N, True)
                b += [regs[:2], regs[2:]]
            for i in range(self.tiles_m):
                for j in range(self.tiles_n):
                    at = (i * self.tiles_n + j) * 4
                    d = nvvm.MmaOp(result, operandA=a[i], operandB=b[j],
                                   operandC=accs[at:at + 4], multiplicandAPtxType=self.ptx_type,
                                   multiplicandBPtxType=self.ptx_type, **attrs).result
                    accs[at:at + 4] = [llvm.extractvalue(f32, d, [q]) for q in range(4)]
        return accs

    # -- epilogue -------------------------------------------------------------------------
    def store(self, accs) -> None:
        s, t = self.spec, self.tile
        out = element_of(self.ops.c)
        for i in range(self.tiles_m):
            for j in range(self.tiles_n):
                for r in range(4):
                    dr, dc = accumulator_position(self.lane, r)
                    row = (self.m0 + self.wm0 + i * MMA_M + dr).value
                    col = (self.n0 + self.wn0 + j * MMA_N + dc).value
                    inside = both(less(row, s.m) if s.m % t.bm else None,
                                  less(col, s.n) if s.n % t.bn else None)
                    acc = accs[(i * self.tiles_n + j) * 4 + r]

                    def write(acc=acc, row=row, col=col):
                        value = epilogue_at(s, self.ops, acc, row, col)
                        memref.store(from_f32(value, out), self.ops.c, [row, col])
                    if_(inside, build_then=write)


def emit_mma_gemm(spec: GpuGemmSpec, ops: GemmOperands, tile: MmaTile):
    """The tensor-core GEMM as a gpu.launch at the current insertion point (returned); the
    caller checked `why_not_mma`."""
    tile.check()
    mapping = GpuMapping(tile.threads)
    return mapping.blocks(tile.grid(spec), _Emitter(spec, ops, tile, mapping).block)
