"""The bf16 dot product of the CPU GEMM kernel on bf16 pairs (ember.gemm's rhs_pairs).

A bf16 weight packed in pairs (two consecutive k of one column per 32-bit word, see
ember.kit.packed_panels.bf16_pairs) is multiplied without widening: `vdpbf16ps` (AVX512_BF16:
Cooper Lake, Zen 4, Sapphire Rapids) adds the two products of each lane's pair into an f32
lane, 32 multiply-adds per instruction where the widening kernel does 16. The kernel reads A's
bf16 rows a pair (one word) at a time and broadcasts it, as the int8 kernels do their 4 bytes.
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


def bf16_dot_for(info: TargetInfo) -> Optional[WordDot]:
    """The vector dot product on bf16 pairs of `info` (16 f32 lanes), or None."""
    if info.vector_lanes == 16 and "avx512bf16" in info.enabled_features:
        return WordDot("vdpbf16ps", "bf16", 16, _vdpbf16ps, temporaries=4)
    return None


def takes_bf16_pairs(info: TargetInfo) -> bool:
    """Whether `info`'s bf16 GEMM weights are packed in pairs: a target with a dot product
    (AMX-BF16 tiles or vdpbf16ps) that multiplies them."""
    return has_amx_bf16(info) or bf16_dot_for(info) is not None
