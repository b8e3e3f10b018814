"""ember-plan-buffers: the offset assignment (live ranges, alignment, reuse) and models whose
intermediates share an arena, against PyTorch and against the same model compiled without a
plan, static and with a dynamic batch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ember
from compare import assert_close
from ember.backends.cpu.plan_buffers import ALIGNMENT, Buffer, plan_offsets


def _buffers(*ranges):
    return [Buffer(None, size, start, end) for size, start, end in ranges]


def test_disjoint_buffers_share_bytes():
    a, b, c = _buffers((1000, 0, 2), (1000, 1, 4), (1000, 3, 5))    # a and c never meet
    assert plan_offsets([a, b, c]) == 1024 + 1000       # b at the next aligned offset
    assert a.offset == c.offset != b.offset


def test_live_buffers_never_overlap_and_offsets_are_aligned():
    buffers = _buffers((100, 0, 9), (3000, 1, 3), (70, 2, 8), (4096, 4, 6), (5, 5, 9),
                       (2000, 7, 9))
    total = plan_offsets(buffers)
    for x in buffers:
        assert x.offset % ALIGNMENT == 0 and x.offset + x.size <= total
        for y in buffers:
            if x is not y and x.overlaps(y):
                assert x.offset + x.size <= y.offset or y.offset + y.size <= x.offset
    assert total < sum(b.size for b in buffers)


def test_largest_buffer_goes_first():
    small, big = _buffers((64, 0, 1), (4096, 0, 1))
    plan_offsets([small, big])
    assert big.offset == 0 and small.offset == 4096


class Tower(nn.Module):
    """Many intermediates of several sizes, a skip connection that keeps one alive across
    others, and a reduction at the end."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(64, 256), nn.Linear(256, 64), nn.Linear(64, 64)
        self.norm = nn.LayerNorm(64)

    def forward(self, x):
        h = torch.relu(self.a(x))
        y = self.b(h * torch.sigmoid(h)) + x
        z = self.norm(torch.tanh(self.c(y)) + y)
        return z, z.mean(dim=-1)


@pytest.mark.parametrize("plan", [True, False], ids=["planned", "unplanned"])
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic-batch"])
def test_models_with_and_without_a_plan(plan, dynamic):
    torch.manual_seed(0)
    model = Tower().eval()
    x = torch.randn(16, 64)
    shapes = {"x": {0: torch.export.Dim("batch", max=64)}} if dynamic else None
    compiled = ember.compile(model, (x,), dynamic_shapes=shapes,
                             disabled_passes=() if plan else ("ember-plan-buffers",))
    for n in ((3, 16) if dynamic else (16,)):
        inputs = torch.randn(n, 64)
        with torch.no_grad():
            expected = model(inputs)
        for _ in range(2):                      # the arena is reused by the next call
            assert_close(compiled(inputs), expected)
