"""ember-plan-buffers: models whose intermediates share an arena, against PyTorch and against
the same model compiled without a plan, static and with a dynamic batch (the offset assignment
itself: tests/test_memory_plan.py)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ember
from conftest import max_abs_error
from ember.backends.cpu import target as cpu


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
def test_models_with_and_without_a_plan(plan, dynamic, monkeypatch):
    if not plan:
        monkeypatch.setattr(cpu, "CPU_LOWERING", cpu.CPU_LOWERING.replace(
            "ember-host-to-llvm", "ember-host-to-llvm{plan-buffers=false}"))
    torch.manual_seed(0)
    model = Tower().eval()
    x = torch.randn(16, 64)
    shapes = {"x": {0: torch.export.Dim("batch", max=64)}} if dynamic else None
    compiled = ember.compile(model, (x,), dynamic_shapes=shapes)
    for n in ((3, 16) if dynamic else (16,)):
        inputs = torch.randn(n, 64)
        with torch.no_grad():
            expected = model(inputs)
        for _ in range(2):                      # the arena is reused by the next call
            for got, want in zip(compiled(inputs), expected):
                assert max_abs_error(got, want) <= 1e-5

