"""Tensor-core GEMMs on NVIDIA GPUs (sm_80 and later): warp-level mma.sync.

C[M, N] = residual + act(A[M, K] @ B[K, N] + bias), one of three operand formats (`MmaFormat`):
  f16 / bf16   A and B of that type, `mma.sync.aligned.m16n8k16.row.col.f32.<t>.<t>.f32`,
               summed in f32;
  low-bit B    (weight-only quantization, spec.weights i8 / i4) an f16 A and B codes with group
               scales (and offsets): B's tile is dequantized to f16 as it is staged in shared
               memory (`q * scale + offset` of its group, ember.quant.low_bit), never into a
               full-size copy, then multiplied as f16;
  s8 / u8      int8 codes (ember.qgemm) of A, read signed or unsigned, and a signed B stored
               transposed ([N, K], so that 4 consecutive k of a column are one word),
               `mma.sync.aligned.m16n8k32.row.col.s32.<a>.s8.s32` summed in i32 and dequantized
               in the epilogue: (acc - compensation[n]) * row_scale[m] * col_scale[n], then the
               float epilogue, an output activation and, for a quantized result, its codes
               (ember.lowering.qgemm_to_linalg's scalar epilogue, so every path rounds alike).
One block of `warps_m x warps_n` warps computes a BM x BN tile of C, each warp a
(BM / warps_m) x (BN / warps_n) sub-tile made of 16 x 8 MMA tiles whose accumulators (4 per
lane and tile) are scf.for iter_args, i.e. registers. Per K step of BK the A (BM x BK) and B
tiles are copied to shared memory with 16-byte `cp.async` (nvgpu.device_async_copy) into one
of two stages, so that step k + 1's copy runs while step k multiplies (double buffering;
`cp.async.wait_group 1` then a barrier before a stage is read, a barrier after it is read
before it is refilled); a low-bit B is loaded, dequantized and stored by the threads instead
(into the stage not being read, between the same barriers). Shared rows are padded by 16 bytes
so that the 8 row addresses of one `ldmatrix` hit distinct banks (the buffers themselves are
16-byte aligned by ember-gpu-kernels, as cp.async and ldmatrix need). Per K slice of one MMA a
warp loads its A fragments with `ldmatrix.x4` and its B fragments with `ldmatrix.x4.trans`
(16-bit B is [K, N] row-major in shared memory; .trans yields the "col" operand) or plain
`ldmatrix.x4` (int8 B, already [N, K]: a b16 of ldmatrix is two bytes of k, which is the
m16n8k32 fragment's layout), and issues one mma per 16 x 8 tile. The epilogue runs on the
accumulator fragments and stores them straight to C.

Tails: copies of 16-byte chunks past M, N or K read nothing and zero-fill shared memory
(cp.async's src-size 0, from a clamped in-bounds address), and stores past M or N are skipped.
So K, and N unless B is stored [N, K], must be multiples of one 16-byte chunk (8 halves, 16
bytes; `why_not_mma` checks this and A's and B's layouts) and every other float GEMM uses the SIMT kernel (simt_gemm.py); int8
and low-bit GEMMs are only outlined when they fit (ember-gpu-outline-gemms pads an int8 K).

MLIR 22 facts this relies on: nvgpu.ldmatrix and nvgpu.device_async_copy (with srcElements)
lower through convert-nvgpu-to-nvvm for f16, bf16 and i8; nvgpu.mma.sync does not lower for
bf16 ("failed to deduce operand PTX types"), so the MMA is nvvm.mma.sync, whose f16 operands
are vector<2xf16> and bf16 and int8 operands i32 (`MmaFormat.operand`).

The index math (which chunk each thread copies, which row address each lane hands ldmatrix,
which C element each accumulator register holds, each warp's origin) is written once in the
functions below on ints or `Ix` values; tests/test_gpu_mma.py runs it on ints in a numpy
model of a block, with ldmatrix and mma.sync modelled from the PTX ISA's fragment layouts for
m16n8k16 and m16n8k32, and checks the result against A @ B, tails included. Verified here: that
model, the PTX (mma.sync/ldmatrix/cp.async present) and ptxas for sm_80 and sm_90. Unverified:
execution on a GPU (none was available), and the performance of the tile choice
(`choose_mma_tile`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from mlir import ir
from mlir.dialects import arith, gpu, llvm, memref, nvgpu, nvvm, vector

from ember.backends.gpu.simt_gemm import BlockTile, GpuGemmSpec, GpuMapping, both, element_of, \
    epilogue_at, from_f32, less
from ember.kit.builders import GemmOperands, Ix, for_, if_
from ember.lowering.qgemm_to_linalg import dequantized_product
from ember.lowering.gemm_to_linalg import dequantize_code

#: The MMA tile of C: 16 x 8 per instruction (its K is the format's).
MMA_M, MMA_N = 16, 8
WARP = 32
#: Bytes of one cp.async copy, and of the padding of each shared row (against ldmatrix bank
#: conflicts).
CHUNK_BYTES = 16
#: Static shared memory a kernel may use without opting in to more.
SHARED_LIMIT = 48 * 1024
#: Blocks below which the small tile is used (fewer would leave most SMs of an H100 idle).
MIN_LARGE_BLOCKS = 128


@dataclass(frozen=True)
class MmaFormat:
    """The operands one tensor-core kernel multiplies (see the module docstring)."""
    name: str               # "f16", "bf16" (also a low-bit B's), "s8", "u8"
    element_bytes: int      # of A (and B in shared memory)
    mma_k: int              # K of one mma.sync
    b_type: str             # B's PTX type
    #: B is stored [N, K] (int8) and read by plain ldmatrix, else [K, N] and ldmatrix.trans.
    b_transposed: bool

    @property
    def chunk(self) -> int:
        """Elements per 16-byte cp.async copy (and per shared-row padding)."""
        return CHUNK_BYTES // self.element_bytes

    @property
    def integer(self) -> bool:
        return self.name in ("s8", "u8")

    def element(self) -> ir.Type:
        return ir.IntegerType.get_signless(8) if self.integer else ir.Type.parse(self.name)

    def operand(self, value):
        """An ldmatrix register (vector<2xf16>, <2xbf16> or <4xi8>) as nvvm.mma.sync takes it:
        f16 as it is, the others as i32."""
        if self.name == "f16":
            return value
        vec = vector.bitcast(ir.VectorType.get([1], ir.IntegerType.get_signless(32)), value)
        return vector.extract(vec, [], [0])


FORMATS = {"f16": MmaFormat("f16", 2, 16, "f16", False),
           "bf16": MmaFormat("bf16", 2, 16, "bf16", False),
           "s8": MmaFormat("s8", 1, 32, "s8", True),
           "u8": MmaFormat("u8", 1, 32, "s8", True)}


def format_of(spec: GpuGemmSpec, ops: GemmOperands) -> Optional[MmaFormat]:
    """The kernel's operand format, or None when its element types have none."""
    if spec.int8:
        return FORMATS.get(spec.int8)
    return FORMATS.get(str(element_of(ops.a)))


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

    def shared_bytes(self, fmt: MmaFormat) -> int:
        pad = fmt.chunk
        b = self.bn * (self.bk + pad) if fmt.b_transposed else self.bk * (self.bn + pad)
        return 2 * (self.bm * (self.bk + pad) + b) * fmt.element_bytes

    def check(self, fmt: MmaFormat) -> None:
        if self.warp_m * self.warps_m != self.bm or self.warp_m % MMA_M or \
                self.warp_n * self.warps_n != self.bn or self.warp_n % (2 * MMA_N):
            raise ValueError(f"tile {self}: each warp's tile must be a multiple of 16 x 16")
        if self.bk % fmt.mma_k:
            raise ValueError(f"tile {self}: BK must be a multiple of {fmt.mma_k}")
        for rows, cols in ((self.bm, self.bk), (self.bk, self.bn)):
            if (rows * cols // fmt.chunk) % self.threads:
                raise ValueError(f"tile {self}: the {self.threads} threads must split the "
                                 f"{rows} x {cols} tile's 16-byte chunks evenly")
        if self.shared_bytes(fmt) > SHARED_LIMIT:
            raise ValueError(f"tile {self}: {self.shared_bytes(fmt)} bytes of shared memory, "
                             f"more than {SHARED_LIMIT}")


LARGE = MmaTile(bm=128, bn=128, bk=32, warps_m=2, warps_n=4)
SMALL = MmaTile(bm=64, bn=64, bk=32, warps_m=2, warps_n=2)


def choose_mma_tile(spec: GpuGemmSpec, fmt: MmaFormat) -> MmaTile:
    """128 x 128 tiles (8 warps of 64 x 32) when there are enough of them to fill the GPU,
    else 64 x 64 (4 warps of 32 x 32); K steps of 64 bytes (two MMAs of 16-bit operands, two of
    int8). A heuristic, not tuned on hardware."""
    blocks = LARGE.grid(spec)
    tile = LARGE if blocks[0] * blocks[1] >= MIN_LARGE_BLOCKS else SMALL
    return dataclasses.replace(tile, bk=2 * fmt.mma_k)


def why_not_mma(spec: GpuGemmSpec, ops: GemmOperands) -> Optional[str]:
    """Why this GEMM cannot use the tensor-core kernel, or None."""
    fmt = format_of(spec, ops)
    a, b = element_of(ops.a), element_of(ops.b)
    if fmt is None or (not spec.low_bit and str(b) != str(fmt.element())) or \
            str(a) != str(fmt.element()):
        return f"operands are {a} and {b}, not both f16, both bf16, int8 codes or f16 and " \
               f"low-bit codes"
    if spec.k % fmt.chunk or (spec.n % fmt.chunk and not fmt.b_transposed):
        return f"K={spec.k}{'' if fmt.b_transposed else f' and N={spec.n}'} must be " \
               f"multiples of {fmt.chunk} (16-byte copies)"
    for name, value in (("A", ops.a), ("B", ops.b)):
        strides, offset = ir.MemRefType(value.type).get_strides_and_offset()
        if strides[-1] != 1 or strides[0] % fmt.chunk or offset % fmt.chunk:
            return f"{name}'s layout (strides {strides}, offset {offset}) is not 16-byte aligned"
    return None


# ----------------------------------------------------------------------------- index math
# Each function takes ints or Ix values; see the module docstring.
def copy_chunk(tid, i: int, threads: int, cols: int, chunk: int):
    """(row, column) of the i-th `chunk`-element copy thread `tid` makes of a tile `cols`
    wide."""
    index = tid + i * threads
    per_row = cols // chunk
    return index // per_row, index % per_row * chunk


def ldmatrix_x4_address(lane):
    """(row, column in b16 units) offset, within a 16 x 16 b16 block, of the row whose address
    `lane` gives `ldmatrix.x4`: lanes 8j..8j+7 give matrix j's 8 rows; matrices 0..3 are the
    blocks at (0, 0), (8, 0), (0, 8), (8, 8). For 16-bit A (row-major, no .trans) the four
    registers are the m16n8k16 A fragment a0..a7, and for B ([K, N], .trans) registers 0-1 are
    the B fragment of columns 0-7 and registers 2-3 that of columns 8-15. For int8 (a b16 is
    two bytes of k) the registers of A's 16 x 32 bytes are the m16n8k32 A fragment, and of
    B's [N, K] 16 x 32 bytes registers 0 and 2 the B fragment of columns 0-7, 1 and 3 that of
    columns 8-15."""
    return lane % 16, lane // 16 * 8


def accumulator_position(lane, r: int):
    """(row, column) in the 16 x 8 C tile of accumulator register r (0..3) of `lane`."""
    return lane // 4 + r // 2 * 8, lane % 4 * 2 + r % 2


def warp_origin(tid, tile: MmaTile):
    """(row, column) of thread `tid`'s warp's sub-tile in the block tile."""
    warp = tid // WARP
    return warp // tile.warps_n * tile.warp_m, warp % tile.warps_n * tile.warp_n


def b_fragments(regs: list, fmt: MmaFormat) -> list:
    """The two 16 x 8 B fragments (as register lists) of one ldmatrix.x4 of B."""
    if fmt.b_transposed:
        return [[regs[0], regs[2]], [regs[1], regs[3]]]
    return [regs[:2], regs[2:]]


# ----------------------------------------------------------------------------- emitter
class _Emitter:
    """Emits one block's code; `tid` is the thread id as Ix."""

    def __init__(self, spec: GpuGemmSpec, ops: GemmOperands, tile: MmaTile,
                 mapping: GpuMapping):
        self.spec, self.ops, self.tile, self.mapping = spec, ops, tile, mapping
        self.fmt = format_of(spec, ops)
        self.element = self.fmt.element()
        self.tiles_m, self.tiles_n = tile.warp_m // MMA_M, tile.warp_n // MMA_N
        self.frag_type = ir.VectorType.get([4, 4 // self.fmt.element_bytes], self.element)
        self.accumulator = ir.IntegerType.get_signless(32) if self.fmt.integer else \
            ir.F32Type.get()

    def block(self, bx, by) -> None:
        t, el, pad = self.tile, self.element, self.fmt.chunk
        self.a_s = self.mapping.shared([2, t.bm, t.bk + pad], el)
        self.b_s = self.mapping.shared([2, t.bn, t.bk + pad] if self.fmt.b_transposed
                                       else [2, t.bk, t.bn + pad], el)
        tid = Ix(self.mapping.tid)
        self.tid, self.lane = tid, tid % WARP
        self.m0, self.n0 = Ix(by) * t.bm, Ix(bx) * t.bn
        self.wm0, self.wn0 = warp_origin(tid, t)
        k_steps = -(-self.spec.k // t.bk)
        zero = arith.constant(self.accumulator, 0 if self.fmt.integer else 0.0)
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
        """Fills `stage` with K step `kt` (cp.async copies, a low-bit B dequantized by the
        threads); returns the group token of the copies."""
        t, s = self.tile, self.spec
        k0 = kt * t.bk
        tokens = self.copy(self.ops.a, self.a_s, stage, (self.m0, k0), (t.bm, t.bk), (s.m, s.k))
        if s.low_bit:
            self.dequantize_b(stage, k0)
        elif self.fmt.b_transposed:
            tokens += self.copy(self.ops.b, self.b_s, stage, (self.n0, k0), (t.bn, t.bk),
                                (s.n, s.k))
        else:
            tokens += self.copy(self.ops.b, self.b_s, stage, (k0, self.n0), (t.bk, t.bn),
                                (s.k, s.n))
        return nvgpu.device_async_create_group(tokens)

    def chunks(self, shape, origin, limits):
        """Per chunk this thread moves of a shape[0] x shape[1] tile at `origin` of a source of
        shape `limits`: (row, column) in the tile, the clamped source position and the
        in-bounds condition (None: always inside)."""
        chunk = self.fmt.chunk
        for i in range(shape[0] * shape[1] // chunk // self.tile.threads):
            r, c = copy_chunk(self.tid, i, self.tile.threads, shape[1], chunk)
            at = [(origin[0] + r).value, (origin[1] + c).value]
            inside = both(*(less(v, limit) if limit % size else None
                            for v, limit, size in zip(at, limits, shape)))
            if inside is not None:
                at = [arith.select(inside, v, Ix(0).value) for v in at]
            yield r, c, at, inside

    def copy(self, src, dst, stage: Ix, origin, shape, limits) -> list:
        """cp.async of the shape[0] x shape[1] tile of `src` at `origin` into dst[stage];
        chunks outside `limits` (src's shape) are zero-filled."""
        chunk = self.fmt.chunk
        tokens = []
        for r, c, at, inside in self.chunks(shape, origin, limits):
            count = None if inside is None else \
                arith.select(inside, Ix(chunk).value, Ix(0).value)
            tokens.append(nvgpu.device_async_copy(
                dst, [stage.value, r.value, c.value], src, at, ir.IntegerAttr.get(
                    ir.IndexType.get(), chunk), src_elements=count, bypass_l1=True))
        return tokens

    def dequantize_b(self, stage: Ix, k0: Ix) -> None:
        """b_s[stage] = the f16 weights of K rows k0.. of the low-bit B (zero past K and N):
        each thread loads a chunk of codes of one row, its group's scales (and offsets),
        dequantizes them as ember.lowering.gemm_to_linalg's reference does and stores them.
        The loads are aligned: N is a multiple of the chunk and buffers start 16-byte aligned."""
        t, s, ops = self.tile, self.spec, self.ops
        chunk = self.fmt.chunk
        f32, i8 = ir.F32Type.get(), ir.IntegerType.get_signless(8)
        codes_type = ir.VectorType.get([chunk], i8)
        values_type = ir.VectorType.get([chunk], f32)
        four = s.weights == "i4"
        for r, c, (k, n), inside in self.chunks((t.bk, t.bn), (k0, self.n0), (s.k, s.n)):
            code = vector.load(codes_type, ops.b, [(Ix(k) // 2).value if four else k, n],
                               alignment=chunk)
            if four:       # the even k in the low nibble, the odd one in the high nibble
                shift = arith.index_cast(i8, (Ix(k) % 2 * 4).value)
                code = arith.shrui(code, vector.broadcast(codes_type, shift))
            group = (Ix(k) // s.group).value
            scale = vector.load(values_type, ops.b_scale, [group, n], alignment=CHUNK_BYTES)
            offset = None if ops.b_offset is None else \
                vector.load(values_type, ops.b_offset, [group, n], alignment=CHUNK_BYTES)
            weight = from_f32(dequantize_code(code, 4 if four else 8, scale, offset),
                              ir.VectorType.get([chunk], self.element))
            if inside is not None:
                zero = arith.constant(weight.type, ir.DenseElementsAttr.get_splat(
                    weight.type, ir.FloatAttr.get(self.element, 0.0)))
                weight = arith.select(inside, weight, zero)
            vector.store(weight, self.b_s, [stage.value, r.value, c.value])

    # -- tensor cores ---------------------------------------------------------------------
    def fragments(self, buf, stage: Ix, row0, col0, transpose: bool) -> list:
        """ldmatrix.x4 of the 16 x 16 b16 block of buf[stage] at (row0, col0) (in elements):
        4 registers."""
        r, c = ldmatrix_x4_address(self.lane)
        c = c * 2 // self.fmt.element_bytes
        frag = nvgpu.ldmatrix(self.frag_type, buf, [stage.value, (row0 + r).value,
                                                    (col0 + c).value], transpose, 4)
        return [self.fmt.operand(vector.extract(frag, [], [q])) for q in range(4)]

    def multiply(self, stage: Ix, accs) -> list:
        """accs + the warp's tile products of stage `stage`."""
        accs = list(accs)
        fmt = self.fmt
        acc = "i32" if fmt.integer else "f32"
        result = ir.Type.parse(f"!llvm.struct<({acc}, {acc}, {acc}, {acc})>")
        attrs = dict(shape=ir.Attribute.parse(f"#nvvm.shape<m = {MMA_M}, n = {MMA_N}, "
                                              f"k = {fmt.mma_k}>"),
                     layoutA=ir.Attribute.parse("#nvvm.mma_layout<row>"),
                     layoutB=ir.Attribute.parse("#nvvm.mma_layout<col>"),
                     multiplicandAPtxType=ir.Attribute.parse(f"#nvvm.mma_type<{fmt.name}>"),
                     multiplicandBPtxType=ir.Attribute.parse(f"#nvvm.mma_type<{fmt.b_type}>"))
        if fmt.integer:     # sums of at most K products of 255 x 128 cannot overflow i32
            attrs["intOverflowBehavior"] = ir.Attribute.parse("#nvvm.mma_int_overflow<wrapped>")
        for kk in range(0, self.tile.bk, fmt.mma_k):
            a = [self.fragments(self.a_s, stage, self.wm0 + i * MMA_M, kk, False)
                 for i in range(self.tiles_m)]
            b = []
            for j in range(0, self.tiles_n, 2):
                if fmt.b_transposed:
                    regs = self.fragments(self.b_s, stage, self.wn0 + j * MMA_N, kk, False)
                else:
                    regs = self.fragments(self.b_s, stage, kk, self.wn0 + j * MMA_N, True)
                b += b_fragments(regs, fmt)
            for i in range(self.tiles_m):
                for j in range(self.tiles_n):
                    at = (i * self.tiles_n + j) * 4
                    d = nvvm.MmaOp(result, operandA=a[i], operandB=b[j],
                                   operandC=accs[at:at + 4], **attrs).result
                    accs[at:at + 4] = [llvm.extractvalue(self.accumulator, d, [q])
                                       for q in range(4)]
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
                        memref.store(self.result(acc, row, col, out), self.ops.c, [row, col])
                    if_(inside, build_then=write)

    def result(self, acc, row, col, out: ir.Type):
        """C[row, col] from its accumulator: the float epilogue, or for int8 the dequantizing
        one (which also makes a quantized result's codes)."""
        s, ops = self.spec, self.ops
        if not self.fmt.integer:
            return from_f32(epilogue_at(s, ops, acc, row, col), out)
        quant = s.out_quantization
        return dequantized_product(
            acc, memref.load(ops.a_scale, [row]), memref.load(ops.b_scale, [col]),
            memref.load(ops.compensation, [col]),
            None if ops.bias is None else memref.load(ops.bias, [col]),
            None if ops.residual is None else lambda: memref.load(ops.residual, [row, col]),
            s.activation, quant, s.output_activation)


def emit_mma_gemm(spec: GpuGemmSpec, ops: GemmOperands, tile: MmaTile):
    """The tensor-core GEMM as a gpu.launch at the current insertion point (returned); the
    caller checked `why_not_mma`."""
    tile.check(format_of(spec, ops))
    mapping = GpuMapping(tile.threads)
    return mapping.blocks(tile.grid(spec), _Emitter(spec, ops, tile, mapping).block)
