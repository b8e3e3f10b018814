"""The int8 number formats ember computes with, and their reference arithmetic in numpy.

Weights: int8 per output channel, symmetric: `w[k, n] ~= q[k, n] * scale[n]`, q in [-127, 127],
quantized once at compile time. Activations (dynamic mode): quantized per row at run time,
symmetric, `a[m, k] ~= (q[m, k] - zp) * scale[m]`, stored in the byte *encoding* the target's
integer dot product reads (chosen by the CPU backend from the target's features):

    s8  zp 0,   q in [-127, 127]   signed bytes (AArch64 sdot/smmla; the portable kernel)
    u8  zp 128, q in [1, 255]      unsigned bytes (x86 vpdpbusd: u8 x s8)
    u7  zp 64,  q in [1, 127]      7-bit unsigned (x86 vpmaddubsw without VNNI: two u7 x s8
                                   products fit its int16 sum, 2 * 127 * 127 < 32767, so its
                                   saturation never triggers)

An unsigned encoding shifts every activation by zp; the kernel subtracts zp * sum_k q_w[k, n],
the *compensation*, precomputed per column at compile time. The functions here are the
reference the generated code must match bit for bit (tests compare against them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

#: The largest weight magnitude: symmetric int8 without -128, so negation is exact.
WEIGHT_QMAX = 127


@dataclass(frozen=True)
class Encoding:
    """How activations are stored as bytes: q + zero_point, |q| <= qmax."""
    name: str
    zero_point: int
    qmax: int

    @property
    def signed(self) -> bool:
        return self.zero_point == 0


ENCODINGS: Dict[str, Encoding] = {e.name: e for e in (
    Encoding("s8", 0, 127), Encoding("u8", 128, 127), Encoding("u7", 64, 63))}


def encoding(name: str) -> Encoding:
    if name not in ENCODINGS:
        raise ValueError(f"unknown int8 activation encoding {name!r}; expected one of "
                         f"{sorted(ENCODINGS)}")
    return ENCODINGS[name]


def quantize_weight(w: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """[K, N] float weights -> (int8 [K, N], float32 scale [N]), per output channel n,
    symmetric; an all-zero column gets scale 1."""
    w = np.asarray(w, dtype=np.float32)
    amax = np.abs(w).max(axis=0) if w.shape[0] else np.zeros(w.shape[1], np.float32)
    scale = np.where(amax > 0, amax / np.float32(WEIGHT_QMAX), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w / scale), -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)
    return q, scale


def quantize_table(table: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """float [V, D] embedding table -> (int8 [V, D], float32 scale [V]): per row, symmetric
    (quantize_weight's per-column scheme on the transpose); a row reads back as
    f32(codes) * scale."""
    codes, scales = quantize_weight(np.asarray(table, np.float32).T)
    return np.ascontiguousarray(codes.T), scales


def row_scales(a: np.ndarray, enc: Encoding) -> Tuple[np.ndarray, np.ndarray]:
    """(scale, inverse scale) per row of float32 a [M, K] (what the kernel uses: scale =
    amax / qmax, inverse = qmax / amax; an all-zero row gets 1 and 0)."""
    amax = np.abs(a).max(axis=1).astype(np.float32) if a.shape[1] else \
        np.zeros(a.shape[0], np.float32)
    qmax = np.float32(enc.qmax)
    nonzero = amax > 0
    safe = np.where(nonzero, amax, np.float32(1))
    scale = np.where(nonzero, safe / qmax, np.float32(1)).astype(np.float32)
    inverse = np.where(nonzero, qmax / safe, np.float32(0)).astype(np.float32)
    return scale, inverse


def quantize_rows(a: np.ndarray, enc: Encoding) -> Tuple[np.ndarray, np.ndarray]:
    """float32 a [M, K] -> (codes q + zp as int32 [M, K], scale [M]): q = round-half-even of
    a * inverse scale, clamped to [-qmax, qmax]."""
    a = np.asarray(a, dtype=np.float32)
    scale, inverse = row_scales(a, enc)
    q = np.clip(np.rint(a * inverse[:, None]), -enc.qmax, enc.qmax).astype(np.int32)
    return q + enc.zero_point, scale


def compensation(q_weight: np.ndarray, zero_point: int) -> np.ndarray:
    """int32 [N]: zp * sum_k q_weight[k, n], what codes shifted by zero point zp add to every
    output."""
    return (zero_point * q_weight.astype(np.int64).sum(axis=0)).astype(np.int32)


def kernel_zero_point(zero_point: int, unsigned_codes: bool, enc: Encoding) -> int:
    """The zero point of static codes (unsigned or signed bytes with `zero_point`) as a kernel
    reading `enc` sees them: a byte of the other signedness has its top bit flipped on the way
    in, which moves every code, and so the zero point, by 128."""
    if unsigned_codes == (not enc.signed):
        return zero_point
    return zero_point - 128 if unsigned_codes else zero_point + 128


def reference_qgemm(a: np.ndarray, q_weight: np.ndarray, w_scale: np.ndarray,
                    enc: Encoding) -> np.ndarray:
    """float32 [M, N] that ember's int8 GEMM computes before its epilogue (bias, activation,
    residual): float(sum_k codes * q_w - compensation) * (row scale * column scale)."""
    codes, a_scale = quantize_rows(a, enc)
    acc = codes.astype(np.int64) @ q_weight.astype(np.int64) - compensation(q_weight, enc.zero_point)
    return acc.astype(np.int32).astype(np.float32) * (a_scale[:, None] * w_scale[None, :])
