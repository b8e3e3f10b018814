"""The tensor-core GEMM (ember.backends.gpu.mma_gemm) on a machine without a GPU.

Two checks:
- its index math, run on ints in a numpy model of one block: the cp.async chunk map with
  zero-fill past M, N and K, ldmatrix.x4 (plain for A, .trans for 16-bit B, plain for int8 B
  stored [N, K]) and mma.sync m16n8k16 (f16/bf16) and m16n8k32 (int8) modelled from the PTX
  ISA's descriptions (the fragment tables below are written from the ISA, independently of
  gpu_mma), the accumulator positions and the guarded store; the model composes them as the
  emitter does and must match A @ B, tails included;
- the cuda artifacts of fp16 and bf16 MLP blocks: their PTX has mma.sync m16n8k16, ldmatrix
  and cp.async, and ptxas accepts it for sm_80 and sm_90 (the int8 and low-bit kernels'
  artifacts: tests/test_gpu_quantized.py).
Execution on a GPU is not tested here.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from compare import assert_close
from ember.backends.gpu.simt_gemm import GpuGemmSpec
from ember.backends.gpu.mma_gemm import FORMATS, LARGE, MMA_M, MMA_N, SMALL, WARP, MmaTile, \
    accumulator_position, b_fragments, choose_mma_tile, copy_chunk, ldmatrix_x4_address, \
    warp_origin

PTXAS = shutil.which("ptxas")


# ----------------------------------------------------------------------------- PTX ISA model
# PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type" and "... for
# mma.m16n8k32" (.s8/.u8): groupID = lane >> 2, threadID_in_group = lane % 4; each 32-bit
# register holds `per` consecutive elements (2 halves, 4 bytes), so K = 8 * per.
def isa_a(lane, i, per=2):
    """(row, col) of A (16 x K) held in element a_i (i = 0..4 per - 1) by `lane`."""
    g, t = lane >> 2, lane % 4
    return g + 8 * (i // per % 2), t * per + i % per + 4 * per * (i // (2 * per))


def isa_b(lane, i, per=2):
    """(row k, col n) of B (K x 8) held in element b_i (i = 0..2 per - 1) by `lane`."""
    g, t = lane >> 2, lane % 4
    return t * per + i % per + 4 * per * (i // per), g


def isa_c(lane, i):
    """(row, col) of C/D (16 x 8) held in c_i (i = 0..3) by `lane`."""
    g, t = lane >> 2, lane % 4
    return g + 8 * (i // 2), t * 2 + i % 2


def ldmatrix_x4(smem, address, trans, per_b16=1):
    """PTX ldmatrix.sync.aligned.m8n8.x4[.trans].b16 on a shared array of elements, `per_b16`
    of them in one b16 (2 for bytes): lanes 8j..8j+7 give the row addresses (row, element
    col) of matrix j's 8 rows; every lane receives per matrix j one 32-bit register of two
    b16: row lane/4, b16 columns 2*(lane%4) + {0, 1} of matrix j (of its transpose with
    .trans, 16-bit elements only). Returns regs[lane][j] = the register's elements."""
    regs = [[None] * 4 for _ in range(WARP)]
    for lane in range(WARP):
        for j in range(4):
            elements = []
            for e in range(2):
                row, col = lane // 4, 2 * (lane % 4) + e
                if trans:
                    row, col = col, row
                r0, c0 = address[8 * j + row]
                elements += [smem[r0, c0 + col * per_b16 + b] for b in range(per_b16)]
            regs[lane][j] = elements
    return regs


def mma_sync(k: int):
    """PTX mma.sync.aligned.m16n8k<k>.row.col (k 16: f16/bf16 into f32; 32: s8/u8 into s32)
    as a function of per-lane a (4 registers), b (2 registers) and c (c0..c3) returning d per
    lane."""
    per = k // 8

    def mma(a_regs, b_regs, c_regs):
        a, b, c = np.zeros((16, k)), np.zeros((k, 8)), np.zeros((16, 8))
        for lane in range(WARP):
            for i in range(4 * per):
                a[isa_a(lane, i, per)] = a_regs[lane][i // per][i % per]
            for i in range(2 * per):
                b[isa_b(lane, i, per)] = b_regs[lane][i // per][i % per]
            for i in range(4):
                c[isa_c(lane, i)] = c_regs[lane][i]
        d = a @ b + c
        return [[d[isa_c(lane, i)] for i in range(4)] for lane in range(WARP)]
    return mma




# ----------------------------------------------------------------------------- block model
def _stage(src, rows, cols, origin, threads, chunk):
    """The shared tile the cp.async chunks of all threads leave (zero-filled outside src)."""
    tile = np.full((rows, cols), np.nan)
    for tid in range(threads):
        for i in range(rows * cols // chunk // threads):
            r, c = copy_chunk(tid, i, threads, cols, chunk)
            gr, gc = origin[0] + r, origin[1] + c
            inside = gr < src.shape[0] and gc < src.shape[1]
            tile[r, c:c + chunk] = src[gr, gc:gc + chunk] if inside else 0.0
    assert not np.isnan(tile).any(), "some shared element was never written"
    return tile


def model_gemm(a, b, tile: MmaTile, fmt=FORMATS["f16"]):
    """C = A @ B computed the way gpu_mma's kernel does in format `fmt`, from its index
    functions (an int8 B is staged from its transpose, as the kernel stores it)."""
    m, k = a.shape
    n = b.shape[1]
    c = np.full((m, n), np.nan)
    gx, gy = tile.grid(GpuGemmSpec(m=m, n=n, k=k))
    tiles_m, tiles_n = tile.warp_m // MMA_M, tile.warp_n // MMA_N
    per_b16 = 2 // fmt.element_bytes
    mma = mma_sync(fmt.mma_k)
    for by in range(gy):
        for bx in range(gx):
            m0, n0 = by * tile.bm, bx * tile.bn
            accs = {w: [[[0.0] * 4 for _ in range(WARP)] for _ in range(tiles_m * tiles_n)]
                    for w in range(tile.warps_m * tile.warps_n)}
            for k0 in range(0, k, tile.bk):
                a_s = _stage(a, tile.bm, tile.bk, (m0, k0), tile.threads, fmt.chunk)
                if fmt.b_transposed:
                    b_s = _stage(b.T, tile.bn, tile.bk, (n0, k0), tile.threads, fmt.chunk)
                else:
                    b_s = _stage(b, tile.bk, tile.bn, (k0, n0), tile.threads, fmt.chunk)
                for w, warp_accs in accs.items():
                    wm0, wn0 = warp_origin(w * WARP, tile)
                    assert all(warp_origin(w * WARP + lane, tile) == (wm0, wn0)
                               for lane in range(WARP))
                    for kk in range(0, tile.bk, fmt.mma_k):
                        def frags(buf, row0, col0, trans):
                            address = [(row0 + r, col0 + cc * per_b16) for r, cc in
                                       map(ldmatrix_x4_address, range(WARP))]
                            regs = ldmatrix_x4(buf, address, trans, per_b16)
                            return [[lane_regs[q] for lane_regs in regs] for q in range(4)]
                        fa = [list(zip(*frags(a_s, wm0 + i * MMA_M, kk, False)))
                              for i in range(tiles_m)]
                        fb = []
                        for j in range(0, tiles_n, 2):
                            if fmt.b_transposed:
                                regs = frags(b_s, wn0 + j * MMA_N, kk, False)
                            else:
                                regs = frags(b_s, kk, wn0 + j * MMA_N, True)
                            fb += [list(zip(*pair)) for pair in b_fragments(regs, fmt)]
                        for i in range(tiles_m):
                            for j in range(tiles_n):
                                at = i * tiles_n + j
                                warp_accs[at] = mma(fa[i], fb[j], warp_accs[at])
            for w, warp_accs in accs.items():
                wm0, wn0 = warp_origin(w * WARP, tile)
                for i in range(tiles_m):
                    for j in range(tiles_n):
                        for lane in range(WARP):
                            for r in range(4):
                                dr, dc = accumulator_position(lane, r)
                                row = m0 + wm0 + i * MMA_M + dr
                                col = n0 + wn0 + j * MMA_N + dc
                                if row < m and col < n:
                                    assert np.isnan(c[row, col]), "stored twice"
                                    c[row, col] = warp_accs[i * tiles_n + j][lane][r]
    return c


@pytest.mark.parametrize("m,n,k,tile", [
    (70, 40, 40, SMALL),          # tails in M, N (multiple of 8) and K
    (64, 64, 64, SMALL),          # whole tiles, two K steps
    (130, 136, 32, LARGE),        # the large tile with M and N tails
])
def test_block_model_with_ptx_fragment_layouts_matches_numpy(m, n, k, tile):
    tile.check(FORMATS["f16"])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float16).astype(np.float64)
    b = rng.standard_normal((k, n)).astype(np.float16).astype(np.float64)
    assert_close(model_gemm(a, b, tile), a @ b)


@pytest.mark.parametrize("m,n,k,size", [
    (70, 40, 48, "small"),        # tails in M, N and K (K a multiple of 16 bytes)
    (64, 64, 128, "small"),       # whole tiles, two K steps
    (130, 136, 64, "large"),      # the large tile with M and N tails
])
def test_int8_block_model_matches_integer_product(m, n, k, size):
    """int8 codes: A row-major, B stored [N, K], both read by plain ldmatrix (two bytes per
    b16) into m16n8k32 fragments; the model's sums equal the exact integer product."""
    fmt = FORMATS["s8"]
    spec = GpuGemmSpec(m=1 if size == "small" else 8192, n=n, k=k)
    tile = choose_mma_tile(spec, fmt)
    assert tile.bk == 64 and (tile.bm == 128) == (size == "large")
    tile.check(fmt)
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (m, k)).astype(np.float64)
    b = rng.integers(-127, 128, (k, n)).astype(np.float64)
    np.testing.assert_array_equal(model_gemm(a, b, tile, fmt), a @ b)


def test_accumulator_positions_are_the_isa_c_fragment():
    for lane in range(WARP):
        assert [accumulator_position(lane, r) for r in range(4)] == \
            [isa_c(lane, r) for r in range(4)]


def test_tiles_are_checked():
    f16, s8 = FORMATS["f16"], FORMATS["s8"]
    with pytest.raises(ValueError, match="16 x 16"):
        MmaTile(bm=48, bn=64, warps_m=2, warps_n=2).check(f16)
    with pytest.raises(ValueError, match="shared memory"):
        MmaTile(bm=256, bn=256, bk=64, warps_m=4, warps_n=4).check(f16)
    with pytest.raises(ValueError, match="multiple of 32"):
        MmaTile(bm=64, bn=64, bk=16).check(s8)


# ----------------------------------------------------------------------------- artifacts
@pytest.mark.parametrize("dtype,arch", [(torch.float16, "sm_80"), (torch.float16, "sm_90"),
                                        (torch.bfloat16, "sm_80"), (torch.bfloat16, "sm_90")])
def test_half_mlp_uses_tensor_cores(tmp_path, dtype, arch):
    from mlp_block import MLPBlock

    from ember.compiler import CompileOptions, build_artifact
    from ember.frontend import import_model
    torch.manual_seed(0)
    model = MLPBlock().eval().to(dtype)
    build_artifact(import_model(model, (torch.randn(256, 512).to(dtype),)), str(tmp_path),
                   CompileOptions(target=f"cuda:arch={arch}"))
    ptx_path = os.path.join(tmp_path, "kernels.ptx")
    with open(ptx_path) as f:
        ptx = f.read()
    ptx_type = {torch.float16: "f16", torch.bfloat16: "bf16"}[dtype]
    # Two GEMMs (fc1, fc2), each its own kernel.
    assert ptx.count(f"mma.sync.aligned.m16n8k16.row.col.f32.{ptx_type}.{ptx_type}.f32") >= 2
    assert "ldmatrix.sync.aligned.m8n8.x4.shared.b16" in ptx
    assert "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" in ptx
    assert "cp.async.cg.shared.global" in ptx and "cp.async.wait_group" in ptx
    # cp.async and ldmatrix need 16-byte aligned shared buffers.
    assert ".shared .align 16" in ptx and ".shared .align 2 " not in ptx
    if PTXAS is None:
        pytest.skip("ptxas is not on PATH: the PTX was not assembled")
    proc = subprocess.run([PTXAS, "--gpu-name", arch, ptx_path, "-o", os.devnull],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
