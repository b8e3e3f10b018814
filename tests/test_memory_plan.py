"""The live-range memory planner (ember.kit.memory_plan) that places ember-plan-buffers' arena
(64-byte alignment) and the GPU launch plan's workspace (256-byte alignment): live buffers
never overlap, offsets are aligned, disjoint lifetimes share bytes, the largest goes first."""
from __future__ import annotations

from ember.artifact.launch_plan import ALIGNMENT as WORKSPACE_ALIGNMENT
from ember.backends.cpu.plan_buffers import ALIGNMENT
from ember.kit.memory_plan import LiveBuffer, align_up, plan_offsets


def _buffers(*ranges):
    return [LiveBuffer(size, first, last) for size, first, last in ranges]


def test_disjoint_buffers_share_bytes():
    a, b, c = _buffers((1000, 0, 2), (1000, 1, 4), (1000, 3, 5))    # a and c never meet
    assert plan_offsets([a, b, c], ALIGNMENT) == 1024 + 1000       # b at the next aligned offset
    assert a.offset == c.offset != b.offset


def test_live_buffers_never_overlap_and_offsets_are_aligned():
    buffers = _buffers((100, 0, 9), (3000, 1, 3), (70, 2, 8), (4096, 4, 6), (5, 5, 9),
                       (2000, 7, 9))
    total = plan_offsets(buffers, ALIGNMENT)
    for x in buffers:
        assert x.offset % ALIGNMENT == 0 and x.offset + x.size <= total
        for y in buffers:
            if x is not y and x.overlaps(y):
                assert x.offset + x.size <= y.offset or y.offset + y.size <= x.offset
    assert total < sum(b.size for b in buffers)


def test_largest_buffer_goes_first():
    small, big = _buffers((64, 0, 1), (4096, 0, 1))
    plan_offsets([small, big], ALIGNMENT)
    assert big.offset == 0 and small.offset == 4096


def test_workspace_shares_bytes_between_disjoint_lifetimes():
    a, b, c = _buffers((1000, 0, 1), (1000, 2, 3), (10, 1, 2))
    total = align_up(plan_offsets([a, b, c], WORKSPACE_ALIGNMENT), WORKSPACE_ALIGNMENT)
    assert a.offset == b.offset == 0 and c.offset == 1024 and total == 1280
