"""The fp16 widening multiply-add of the CPU GEMM kernel on AArch64 with +fp16fml: FMLAL.

An f16 GEMM sums in f32 (as PyTorch's do) from f16 operands. Without a widening instruction
the kernel converts each panel vector of B to f32 (`fcvtl`) and multiplies with `fmla .4s`;
FEAT_FHM (`+fp16fml`: Neoverse N1/V1/N2, Graviton 2/3, Apple M1 and later) has
`fmlal v.4s, v.4h, v.4h`, four f16 products added to f32 lanes in one instruction, so B's f16
panels are multiplied as they are loaded and A is packed once as f16 (its broadcast is one
`ld1r` of a half). `fmla .8h` would sum in f16 (PyTorch's sums are f32), so it is not used.
"""
from __future__ import annotations

from typing import Callable, Optional

from mlir.dialects import llvm, vector

from ember.pipeline.target_info import TargetInfo


def _fmlal(a, b, acc):
    """acc (4 x f32) + a[0:4] * b (4 x f16), `a` a broadcast of 8 halves (vector.fma's
    argument order)."""
    wide_b = vector.shuffle(b, b, list(range(4)) * 2)       # b in the low half, as ld1 leaves it
    return llvm.call_intrinsic(acc.type, "llvm.aarch64.neon.fmlal.v4f32.v8f16",
                               [acc, a, wide_b], [], [])


def f16_fml_for(info: TargetInfo) -> Optional[Callable]:
    """`mac(a, b, acc)` multiplying f16 vectors into f32 lanes on `info` (FMLAL: AArch64 NEON,
    4 lanes, +fp16fml), or None."""
    if info.triple.startswith(("aarch64", "arm64")) and info.vector_lanes == 4 and \
            "fp16fml" in info.enabled_features:
        return _fmlal
    return None
