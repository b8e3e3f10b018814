"""The packed weight layout of the CPU GEMM micro-kernel: B in NR-column panels.

rhs[k, n] lives at packed[n // NR, k, n % NR], zero-padded to a multiple of NR columns, i.e.
`linalg.pack %rhs outer_dims_perm = [1, 0] inner_dims_pos = [1] inner_tiles = [NR]`. One
NR-wide panel is contiguous over K, so the micro-kernel streams it. ember-pack-weights packs
weights this way at compile time and marks their GEMMs with `rhs_panel = NR`.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np


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


def int8_words(q: np.ndarray, tap_channels: Optional[int] = None) -> np.ndarray:
    """int8 [K, N] -> int32 [ceil(K/4), N]: word (w, n) holds q[4w + j, n] in byte j
    (little-endian), zero-padded past K; the int8 GEMM kernel's unit of k. A conv's weight
    (K = taps * C, `tap_channels` = C): each tap's C rows zero-padded to whole words first,
    int32 [taps * ceil(C/4), N]."""
    k, n = q.shape
    if tap_channels is not None and tap_channels % 4:
        q = np.concatenate([q.reshape(-1, tap_channels, n),
                            np.zeros((k // tap_channels, -tap_channels % 4, n), np.int8)],
                           axis=1)
        k = q.shape[0] * q.shape[1]
        q = q.reshape(k, n)
    padded = np.zeros((-(-k // 4) * 4, n), dtype=np.int8)
    padded[:k] = q
    return np.ascontiguousarray(padded.reshape(-1, 4, n).transpose(0, 2, 1)).view(np.int32) \
        .reshape(-1, n)


def word_pairs(w: np.ndarray) -> np.ndarray:
    """A 16-bit (bf16 or int16) [K, N] (K even) -> int32 [K/2, N]: word (w, n) holds w[2w, n]'s
    bits in its low half and w[2w + 1, n]'s in its high half, the pairs a bf16 dot product
    (AMX's tdpbf16ps, vdpbf16ps) or an int16 one (vpmaddwd) multiplies."""
    bits = np.ascontiguousarray(w).view(np.uint16).astype(np.uint32)
    return (bits[0::2] | (bits[1::2] << 16)).view(np.int32)


def nibble_pairs(codes: np.ndarray) -> np.ndarray:
    """4-bit codes one per byte [K, N] (K even, values 0..15) -> bytes [K/2, N]: byte (j, n)
    holds codes[2j, n] in its low nibble and codes[2j + 1, n] in its high one, the unit of k
    the low-bit GEMM kernel reads (one byte vector, two k)."""
    u = np.ascontiguousarray(codes).view(np.uint8)
    return ((u[0::2] & 0xF) | ((u[1::2] & 0xF) << 4)).astype(np.uint8).view(np.int8)
