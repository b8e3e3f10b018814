"""The bf16 dot product of the CPU GEMM kernel on bf16 pairs (ember.gemm's rhs_pairs).

A bf16 weight packed in pairs (two consecutive k of one column per 32-bit word, see
ember.kit.packed_panels.word_pairs) is multiplied without widening: `vdpbf16ps` (AVX512_BF16:
Cooper Lake, Zen 4, Sapphire Rapids) adds the two products of each lane's pair into an f32
lane, 32 multiply-adds per instruction where the widening kernel does 16; AArch64's BFDOT
(+bf16: Neoverse V1/N2, Graviton 3) does the same on 4 lanes. The kernel reads A's bf16 rows a
pair (one word) at a time and broadcasts it, as the int8 kernels do their 4 bytes.
Where the target also has AMX-BF16, the tiles (ember.backends.cpu.amx_tiles) take the same
pairs.
"""
from __future__ import annotations

from typing import Optional

from mlir import ir
from mlir.dialects import llvm, vector

from ember.backends.cpu.amx_tiles import has_amx_bf16
from ember.backends.cpu.int8_dot import WordDot
from ember.pipeline.target_info import TargetInfo


def _vdpbf16ps(acc, a, b):
    pairs = ir.VectorType.get([32], ir.BF16Type.get())
    return llvm.call_intrinsic(acc.type, "llvm.x86.avx512bf16.dpbf16ps.512",
                               [acc, vector.bitcast(pairs, a), vector.bitcast(pairs, b)], [], [])


def _bfdot(acc, a, b):
    pairs = ir.VectorType.get([8], ir.BF16Type.get())
    return llvm.call_intrinsic(acc.type, "llvm.aarch64.neon.bfdot.v4f32.v8bf16",
                               [acc, vector.bitcast(pairs, a), vector.bitcast(pairs, b)], [], [])


def bf16_dot_for(info: TargetInfo) -> Optional[WordDot]:
    """The vector dot product on bf16 pairs of `info`, or None: vdpbf16ps (16 f32 lanes,
    AVX512_BF16) or, on AArch64 NEON with +bf16, BFDOT (4 lanes: `bfdot v.4s, v.8h, v.8h`,
    8 multiply-adds where the widening kernel does 4)."""
    if info.triple.startswith(("aarch64", "arm64")):
        return WordDot("bfdot", "bf16", 4, _bfdot) \
            if info.vector_lanes == 4 and "bf16" in info.enabled_features else None
    if info.vector_lanes == 16 and "avx512bf16" in info.enabled_features:
        return WordDot("vdpbf16ps", "bf16", 16, _vdpbf16ps, temporaries=4)
    return None


def pair_lanes(info: TargetInfo) -> int:
    """The columns a panel of bf16 pairs must be a multiple of on `info` (AMX tiles: 16; a
    dot product: its lanes), or 0 where bf16 weights are not packed in pairs."""
    dot = bf16_dot_for(info)
    return 16 if has_amx_bf16(info) else dot.lanes if dot else 0

