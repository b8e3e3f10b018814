"""GPU GEMM code generation: a shared-memory tiled kernel with a fused epilogue.

C[M, N] = residual + act(A[M, K] @ B[K, N] + bias), any float element type, accumulated in f32.
One thread block computes a BM x BN tile of C; per K step of BK it stages A's BM x BK and B's
BK x BN tiles in shared memory (zero-filled past M, N and K), synchronizes, and every thread
adds its TM x TN register tile's products; after the last K step each thread applies the
epilogue to its tile and stores it (rows and columns past M, N skipped). A thread's tile is
strided (rows ty + i * BM/TM, columns tx + j * BN/TN) so that neighbouring threads read
neighbouring shared-memory words and write neighbouring words of C.

The algorithm is written once against a `Mapping`, which owns the only difference between a
GPU and a host run: where block ids, thread ids, shared and per-thread memory come from.
`GpuMapping` builds a `gpu.launch` (ids, workgroup attributions, `gpu.barrier` after each
phase); `HostMapping` runs the same code with the ids as `scf.for` induction variables, one
loop over the threads per phase (barriers are phase boundaries), so the tiling, its tails and
the epilogue are tested on the host against numpy (tests/test_gpu_codegen.py).

Nothing here knows about targets. f16/bf16 GEMMs on NVIDIA GPUs use the tensor-core kernel
of mma_gemm.py instead, which shares this module's spec, mapping and epilogue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List

from mlir import ir
from mlir.dialects import arith, gpu, memref

from ember.kit.builders import GemmOperands, for_, if_, index
from ember.kit.epilogue import apply_epilogue
from ember.kit.gemm_spec import GemmSpec

#: Attribute on a GEMM kernel function (ember-gpu-outline-gemms): its GpuGemmSpec.
GEMM_ATTR = "ember.gpu_gemm"
#: Name prefix of the GEMM kernel functions.
GEMM_PREFIX = "ember_gpu_gemm_"
WORKGROUP = "#gpu.address_space<workgroup>"
PRIVATE = "#gpu.address_space<private>"


@dataclass(frozen=True)
class GpuGemmSpec(GemmSpec):
    """What one GPU GEMM kernel computes (GemmSpec's fields, `m` never None); its function's
    arguments are GemmSpec's, C written, all memrefs of static shape. An int8 kernel's B is
    stored transposed, [N, K]; a low-bit kernel's A is f16, its B codes [K, N] (4-bit: [K/2, N]
    bytes) and its group scales and offsets [ceil(K/group), N]. Those two take the tensor-core
    kernel (mma_gemm.py) only."""


@dataclass(frozen=True)
class BlockTile:
    """One thread block's BM x BN tile of C and its K step BK (the GEMM kernels' tiles)."""
    bm: int = 64
    bn: int = 64
    bk: int = 16

    def grid(self, spec: GpuGemmSpec) -> List[int]:
        """Blocks along N (x) and M (y)."""
        return [-(-spec.n // self.bn), -(-spec.m // self.bm)]


@dataclass(frozen=True)
class GemmTile(BlockTile):
    """The SIMT kernel's tile: a block tile and a TM x TN register tile per thread."""
    tm: int = 4
    tn: int = 4

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)

    def check(self) -> None:
        if self.bm % self.tm or self.bn % self.tn:
            raise ValueError(f"tile {self}: BM must be a multiple of TM and BN of TN")
        if (self.bm * self.bk) % self.threads or (self.bk * self.bn) % self.threads:
            raise ValueError(f"tile {self}: the {self.threads} threads must split the A and B "
                             f"tiles evenly")


# ----------------------------------------------------------------------------- helpers
def less(a, bound: int):
    return arith.cmpi(arith.CmpIPredicate.ult, a, index(bound))


def both(a, b):
    if a is None or b is None:
        return a if b is None else b
    return arith.andi(a, b)


def to_f32(value):
    f32 = ir.F32Type.get()
    return value if value.type == f32 else arith.extf(f32, value)


def from_f32(value, element: ir.Type):
    return value if value.type == element else arith.truncf(element, value)


# ----------------------------------------------------------------------------- mappings
class Mapping:
    """Where ids and memory come from. Subclasses: GpuMapping, HostMapping."""
    threads: int

    def blocks(self, grid: List[int], body: Callable):
        """Runs `body(bx, by)` for every block of the 2-D grid; returns the gpu.launch (None
        on the host)."""
        raise NotImplementedError

    def phase(self, body: Callable) -> None:
        """Runs `body(tid)` on every thread; all threads finish it before the next phase."""
        raise NotImplementedError

    def shared(self, shape: List[int], element: ir.Type):
        """A buffer shared by the threads of one block."""
        raise NotImplementedError

    def private(self, size: int, element: ir.Type) -> Callable:
        """Per-thread storage of `size` values; returns `at(tid, i) -> (memref, indices)`."""
        raise NotImplementedError


class GpuMapping(Mapping):
    """gpu.launch ids, workgroup attributions for shared buffers, registers for private ones
    (a private memref indexed by constants, which LLVM promotes to registers)."""

    def __init__(self, threads: int):
        self.threads = threads
        self.launch = None

    def blocks(self, grid, body):
        one = index(1)
        self.launch = gpu.LaunchOp((index(grid[0]), index(grid[1]), one),
                                   (index(self.threads), one, one))
        block = self.launch.regions[0].blocks[0]
        self.launch.attributes["workgroup_attributions"] = ir.IntegerAttr.get(
            ir.IntegerType.get_signless(64), 0)
        with ir.InsertionPoint(block):
            self.tid = block.arguments[3]
            body(block.arguments[0], block.arguments[1])
            gpu.TerminatorOp()
        return self.launch

    def phase(self, body) -> None:
        body(self.tid)
        gpu.barrier()

    def shared(self, shape, element):
        block = self.launch.regions[0].blocks[0]
        t = ir.MemRefType.get(shape, element, memory_space=ir.Attribute.parse(WORKGROUP))
        count = ir.IntegerAttr(self.launch.attributes["workgroup_attributions"]).value
        self.launch.attributes["workgroup_attributions"] = ir.IntegerAttr.get(
            ir.IntegerType.get_signless(64), count + 1)
        return block.add_argument(t, self.launch.location)

    def private(self, size, element):
        t = ir.MemRefType.get([size], element, memory_space=ir.Attribute.parse(PRIVATE))
        buf = memref.alloca(t, [], [])
        return lambda tid, i: (buf, [index(i)])


class HostMapping(Mapping):
    """Blocks and threads as scf.for loops (one thread loop per phase), shared buffers as one
    allocation reused by every block, private storage as one slot per thread."""

    def __init__(self, threads: int):
        self.threads = threads

    def blocks(self, grid, body) -> None:
        def scoped(bx, by):
            # The block's stack buffers are released after each block.
            scope = memref.AllocaScopeOp([])
            with ir.InsertionPoint(scope.bodyRegion.blocks.append()):
                body(bx, by)
                memref.AllocaScopeReturnOp([])
        for_(0, grid[1], body=lambda by: for_(0, grid[0], body=lambda bx: scoped(bx, by)))

    def phase(self, body) -> None:
        for_(0, self.threads, body=body)

    def shared(self, shape, element):
        return memref.alloca(ir.MemRefType.get(shape, element), [], [])

    def private(self, size, element):
        buf = memref.alloca(ir.MemRefType.get([self.threads, size], element), [], [])
        return lambda tid, i: (buf, [tid, index(i)])


# ----------------------------------------------------------------------------- the kernel
def element_of(value) -> ir.Type:
    return ir.MemRefType(value.type).element_type


def stage_tile(src, dst, rows: int, cols: int, row0, col0, limits, tid, threads: int) -> None:
    """dst[r, c] = src[row0 + r, col0 + c] (0 outside `limits` = (rows, cols) of src) for
    the rows x cols tile, `threads` threads each copying every threads-th element."""
    element = element_of(dst)
    zero = arith.constant(element, 0.0)
    for e in range(rows * cols // threads):
        flat = arith.addi(tid, index(e * threads))
        r, c = arith.divui(flat, index(cols)), arith.remui(flat, index(cols))
        gr, gc = arith.addi(row0, r), arith.addi(col0, c)
        inside = both(less(gr, limits[0]) if limits[0] % rows else None,
                      less(gc, limits[1]) if limits[1] % cols else None)
        value, = if_(inside, [element], lambda gr=gr, gc=gc: [memref.load(src, [gr, gc])],
                     lambda: [zero])
        memref.store(value, dst, [r, c])


def epilogue_at(spec: GpuGemmSpec, ops: GemmOperands, value, row, col):
    """residual + act(value + bias) in f32 at C[row, col]."""
    bias = None if ops.bias is None else to_f32(memref.load(ops.bias, [col]))
    return apply_epilogue(value, spec.activation, bias, None if ops.residual is None else
                          lambda: to_f32(memref.load(ops.residual, [row, col])))


def emit_gemm(spec: GpuGemmSpec, ops: GemmOperands, tile: GemmTile, mapping: Mapping):
    """The tiled GEMM at the current insertion point, mapped by `mapping`; returns the
    mapping's gpu.launch (None on the host)."""
    tile.check()
    f32 = ir.F32Type.get()
    cols_t = tile.bn // tile.tn                  # threads along N
    k_steps = -(-spec.k // tile.bk)

    def block(bx, by):
        m0, n0 = arith.muli(by, index(tile.bm)), arith.muli(bx, index(tile.bn))
        a_tile = mapping.shared([tile.bm, tile.bk], element_of(ops.a))
        b_tile = mapping.shared([tile.bk, tile.bn], element_of(ops.b))
        acc = mapping.private(tile.tm * tile.tn, f32)

        def zero(tid):
            for i in range(tile.tm * tile.tn):
                memref.store(arith.constant(f32, 0.0), *acc(tid, i))
        mapping.phase(zero)

        def multiply(tid, a_tile, b_tile):
            ty, tx = arith.divui(tid, index(cols_t)), arith.remui(tid, index(cols_t))
            rows = [arith.addi(ty, index(i * (tile.bm // tile.tm))) for i in range(tile.tm)]
            cols = [arith.addi(tx, index(j * cols_t)) for j in range(tile.tn)]

            def step(kk):
                a = [to_f32(memref.load(a_tile, [r, kk])) for r in rows]
                b = [to_f32(memref.load(b_tile, [kk, c])) for c in cols]
                for i in range(tile.tm):
                    for j in range(tile.tn):
                        slot = acc(tid, i * tile.tn + j)
                        total = arith.addf(memref.load(*slot), arith.mulf(a[i], b[j]))
                        memref.store(total, *slot)
            for_(0, tile.bk, body=step)

        def k_step(kt):
            k0 = arith.muli(kt, index(tile.bk))

            def stage(tid):
                stage_tile(ops.a, a_tile, tile.bm, tile.bk, m0, k0, (spec.m, spec.k), tid,
                           mapping.threads)
                stage_tile(ops.b, b_tile, tile.bk, tile.bn, k0, n0, (spec.k, spec.n), tid,
                           mapping.threads)
            mapping.phase(stage)
            mapping.phase(lambda tid: multiply(tid, a_tile, b_tile))
        for_(0, k_steps, body=k_step)

        def store(tid):
            ty, tx = arith.divui(tid, index(cols_t)), arith.remui(tid, index(cols_t))
            for i in range(tile.tm):
                row = arith.addi(m0, arith.addi(ty, index(i * (tile.bm // tile.tm))))
                for j in range(tile.tn):
                    col = arith.addi(n0, arith.addi(tx, index(j * cols_t)))
                    inside = both(less(row, spec.m) if spec.m % tile.bm else None,
                                  less(col, spec.n) if spec.n % tile.bn else None)

                    def write(i=i, j=j, row=row, col=col):
                        value = epilogue_at(spec, ops, memref.load(*acc(tid, i * tile.tn + j)),
                                            row, col)
                        memref.store(from_f32(value, element_of(ops.c)), ops.c, [row, col])
                    if_(inside, build_then=write)
        mapping.phase(store)
    return mapping.blocks(tile.grid(spec), block)
