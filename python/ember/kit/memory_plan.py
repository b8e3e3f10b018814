"""Static memory planning by live ranges: one arena, an offset per buffer.

Both compile-time planners use it: ember-plan-buffers (a CPU function's intermediate buffers in
one 64-byte-aligned arena) and the GPU launch plan's extraction (a model's intermediates in
one 256-byte-aligned device workspace). Two buffers share bytes only when their live ranges
are disjoint. Offsets are assigned largest buffer first, each at the lowest aligned offset
that overlaps no live neighbour already placed (greedy by size, the usual heuristic of static
planners such as TFLite's and IREE's). Plain Python, no MLIR: it plans sizes and positions,
whatever IR they came from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass
class LiveBuffer:
    """A buffer to place: its size in bytes, its live range [first, last] (positions in the
    program, inclusive) and, once planned, its offset."""
    size: int
    first: int
    last: int
    offset: Optional[int] = None

    def overlaps(self, other: "LiveBuffer") -> bool:
        return self.first <= other.last and other.first <= self.last


def align_up(n: int, alignment: int) -> int:
    return -(-n // alignment) * alignment


def plan_offsets(buffers: Sequence[LiveBuffer], alignment: int) -> int:
    """Sets each buffer's offset (largest first, equal sizes in the order given, at the lowest
    `alignment`-aligned offset clear of the live buffers placed so far); returns the extent,
    the end of the highest buffer."""
    placed = []
    for buffer in sorted(buffers, key=lambda b: -b.size):
        busy = sorted((b.offset, b.offset + b.size) for b in placed if b.overlaps(buffer))
        offset = 0
        for low, high in busy:
            if offset + buffer.size <= low:
                break
            offset = max(offset, align_up(high, alignment))
        buffer.offset = offset
        placed.append(buffer)
    return max((b.offset + b.size for b in placed), default=0)
