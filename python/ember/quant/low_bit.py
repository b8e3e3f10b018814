"""The weight-only formats: int8 and int4 codes with one scale (and offset) per group of K.

A weight [K, N] is cut along K into groups of `group` consecutive rows (the last one may be
shorter); each group of each column n gets its own scale s[g, n] and offset o[g, n], and a code
q[k, n] stands for

    w[k, n] ~= q[k, n] * s[k // group, n] + o[k // group, n]

(GPTQ/AWQ's `(q - zero) * scale` with o = -zero * scale: the kernel dequantizes with one
multiply-add per weight vector). Codes:

    bits 8, symmetric   int8 in [-127, 127], s = amax / 127, no offset
    bits 8, asymmetric  int8 in [-128, 127], s = (max - min) / 255, zero in [-128, 127]
    bits 4, symmetric   uint4 in [1, 15], s = amax / 7, zero 8 (o = -8 s)
    bits 4, asymmetric  uint4 in [0, 15], s = (max - min) / 15, zero in [0, 15]

int4 codes are stored one per byte here; the CPU kernel's panels hold two per byte
(ember.kit.packed_panels.nibble_pairs). The range of an asymmetric group always includes 0
(as GPTQ's), so that zero weights stay exact. These functions are the reference the generated
code must match (tests compare against `dequantize`).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

#: bits -> (lowest code, highest code, the symmetric format's zero point, its largest |q|).
CODES = {8: (-128, 127, 0, 127), 4: (0, 15, 8, 7)}


def groups_of(k: int, group: int) -> int:
    """How many groups of `group` rows a K of `k` rows has (the last one may be shorter)."""
    return -(-k // group)


def _grouped(w: np.ndarray, group: int) -> np.ndarray:
    """[K, N] -> [groups, group, N], the last group padded by repeating its last row (which
    leaves every group's min, max and amax as they are)."""
    k, n = w.shape
    rows = groups_of(k, group) * group
    padded = np.concatenate([w, np.repeat(w[-1:], rows - k, axis=0)]) if rows > k else w
    return padded.reshape(-1, group, n)


def quantize_groups(w: np.ndarray, bits: int, group: int, symmetric: bool
                    ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """float [K, N] -> (codes int8 [K, N], scales f32 [groups, N], offsets f32 [groups, N] or
    None for symmetric int8); see the module docstring. A group of zeros gets scale 1."""
    if bits not in CODES:
        raise ValueError(f"weight-only quantization takes 8 or 4 bits, got {bits}")
    w = np.asarray(w, dtype=np.float32)
    k, n = w.shape
    lo, hi, sym_zero, sym_max = CODES[bits]
    g = _grouped(w, group)
    if symmetric:
        amax = np.abs(g).max(axis=1)
        scale = amax / np.float32(sym_max)
        zero = np.full_like(scale, sym_zero)
    else:
        low = np.minimum(g.min(axis=1), 0)
        high = np.maximum(g.max(axis=1), 0)
        scale = (high - low) / np.float32(hi - lo)
        zero = np.clip(np.rint(lo - low / np.where(scale > 0, scale, 1)), lo, hi)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    codes = np.clip(np.rint(g / scale[:, None, :]) + zero[:, None, :], lo, hi)
    codes = codes.reshape(-1, n)[:k].astype(np.int8 if bits == 8 else np.uint8).view(np.int8)
    offsets = None if symmetric and bits == 8 else (-zero * scale).astype(np.float32)
    return np.ascontiguousarray(codes), scale, offsets


def dequantize(codes: np.ndarray, scales: np.ndarray, offsets: Optional[np.ndarray],
               bits: int, group: int) -> np.ndarray:
    """The f32 [K, N] weight that codes (int8 [K, N]; int4 codes one per byte) with their group
    scales and offsets stand for: q * s + o, in f32 as the kernel computes it."""
    q = codes.astype(np.int8 if bits == 8 else np.uint8).astype(np.float32)
    rows = np.arange(q.shape[0]) // group
    w = q * scales[rows]
    return w + offsets[rows] if offsets is not None else w


def provided_codes(path: str, weight_shape, qweight, scales, zeros, bits: int, group: int
                   ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """A Linear's user-supplied codes in PyTorch's layout (GPTQ/AWQ convention, w = (q - zero)
    * scale: qweight [out, in] integers, scales and zeros [out, ceil(in / group)], zeros None
    for symmetric codes: 0 for int8, 8 for int4) -> (codes int8 [K, N], scales f32 [groups, N],
    offsets f32 [groups, N] or None), ember's layout. Raises ValueError naming what is wrong."""
    def array(value):
        return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    n, k = weight_shape
    group = min(group, k)
    q, scales = array(qweight), array(scales).astype(np.float32)
    lo, hi = CODES[bits][:2]
    where = f"ember.quant.WeightOnly(weights=...): layer {path!r}"
    if q.shape != (n, k):
        raise ValueError(f"{where}: qweight must have the weight's shape {[n, k]} (one code per "
                         f"weight, unpacked), got {list(q.shape)}")
    if not np.issubdtype(q.dtype, np.integer) or (q.size and (q.min() < lo or q.max() > hi)):
        raise ValueError(f"{where}: {bits}-bit codes must be integers in [{lo}, {hi}]")
    if scales.shape != (n, groups_of(k, group)):
        raise ValueError(f"{where}: scales must be [{n}, {groups_of(k, group)}] (one per "
                         f"{group} inputs and output), got {list(scales.shape)}")
    if zeros is not None and array(zeros).shape != scales.shape:
        raise ValueError(f"{where}: zeros must have the scales' shape {list(scales.shape)}, "
                         f"got {list(array(zeros).shape)}")
    if zeros is None and bits == 4:
        zeros = np.full(scales.shape, CODES[4][2], np.float32)
    codes = np.ascontiguousarray(q.T.astype(np.int8 if bits == 8 else np.uint8).view(np.int8))
    offsets = None if zeros is None else \
        np.ascontiguousarray((-array(zeros).astype(np.float32) * scales).T)
    return codes, np.ascontiguousarray(scales.T), offsets
