"""Row kernels (ember.backends.gpu.rows) on a machine without a GPU: a numpy model of a block.

The model runs the emitter's own index functions (`row_and_lane`, `butterfly_offsets`,
`RowLayout`) on ints: every thread of every block strides over its row's elements from its
lane, lanes without elements start from the combiner's identity, the warp combines with the
xor butterfly (modelled as PTX shfl.sync.bfly: every lane reads its partner's value of the
same step), a block-wide row then through shared memory (lane 0 of each warp writes, every
thread sums the warps in order). Every thread of a row must end with numpy's reduction of the
row, each element counted once; rows not a multiple of the warp, shorter than a warp, of one
element, and long enough for a block per row are covered. The emitted kernels themselves are
checked in lit_tests/passes/gpu-kernels-rows.mlir and, through ptxas and llvm-readelf, in
tests/test_gpu_codegen.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from compare import assert_close
from ember.backends.gpu.rows import WARP_ROW_LIMIT, RowLayout, butterfly_offsets, row_and_lane

COMBINE = {"sum": (np.add, 0.0), "max": (np.maximum, -np.inf)}


def model_rows(x: np.ndarray, layout: RowLayout, kind: str) -> np.ndarray:
    """Each row's reduction as every thread of the row computes it (rows x threads seen)."""
    combine, identity = COMBINE[kind]
    seen = {}
    counts = np.zeros(x.shape, int)
    for block in range(layout.grid):
        partial = {}
        for tid in range(layout.block_threads):
            row, lane = row_and_lane(layout, block, tid)
            if row >= layout.rows:
                continue
            acc = identity
            for j in range(lane, layout.length, layout.stride):
                acc = combine(acc, x[row, j])
                counts[row, j] += 1
            partial[tid] = acc
        for offset in butterfly_offsets(layout.warp):
            partial = {tid: combine(v, partial[tid ^ offset]) for tid, v in partial.items()}
        if layout.per_block:
            totals = [partial[w * layout.warp] for w in range(layout.warps)]
            total = totals[0]
            for t in totals[1:]:
                total = combine(total, t)
            partial = {tid: total for tid in partial}
        for tid, v in partial.items():
            seen.setdefault(row_and_lane(layout, block, tid)[0], set()).add(float(v))
    assert (counts == 1).all(), "an element was read by no lane or by several"
    assert all(len(v) == 1 for v in seen.values()), "lanes of a row disagree"
    assert sorted(seen) == list(range(layout.rows)), "some row has no threads"
    return np.array([seen[r].pop() for r in range(layout.rows)])


@pytest.mark.parametrize("warp", [32, 64])
@pytest.mark.parametrize("rows,length", [(10, 100), (3, 7), (9, 1), (5, 32), (2, 33),
                                         (3, WARP_ROW_LIMIT + 500)])
@pytest.mark.parametrize("kind", ["sum", "max"])
def test_row_reduction_model_matches_numpy(rows, length, warp, kind):
    layout = RowLayout(rows, length, threads=256, warp=warp)
    assert layout.per_block == (length > WARP_ROW_LIMIT)
    x = np.random.default_rng(0).standard_normal((rows, length))
    expected = x.sum(axis=1) if kind == "sum" else x.max(axis=1)
    assert_close(model_rows(x, layout, kind), expected)


def test_butterfly_covers_the_warp():
    assert butterfly_offsets(32) == [16, 8, 4, 2, 1]
    assert butterfly_offsets(64) == [32, 16, 8, 4, 2, 1]


def test_few_rows_get_a_smaller_block():
    layout = RowLayout(rows=3, length=50, threads=256, warp=32)
    assert (layout.block_threads, layout.grid, layout.rows_per_block) == (96, 1, 3)
