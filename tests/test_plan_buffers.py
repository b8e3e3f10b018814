"""ember-plan-buffers: models whose intermediates share an arena, against PyTorch and against
the same model compiled without a plan, static and with a dynamic batch (the offset assignment
itself: tests/test_memory_plan.py)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ember
from compare import assert_close


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


def test_buffers_used_through_any_view_are_planned():
    """Every memref view op (ember.kit.memref_views.VIEW_OPS) keeps its buffer planned: its
    uses count as the buffer's; here a reshape (which the list once lacked, leaving the
    buffer to the allocator) and a transpose."""
    from mlir import ir

    from ember.backends.cpu.plan_buffers import plan_function
    from ember.dialect import new_context
    with new_context():
        module = ir.Module.parse("""
func.func @views(%x: memref<16xf32>, %shape: memref<2xindex>, %out: memref<4x4xf32>) {
  %a = memref.alloc() : memref<16xf32>
  memref.copy %x, %a : memref<16xf32> to memref<16xf32>
  %r = memref.reshape %a(%shape) : (memref<16xf32>, memref<2xindex>) -> memref<4x4xf32>
  %b = memref.alloc() : memref<4x4xf32>
  memref.copy %r, %b : memref<4x4xf32> to memref<4x4xf32>
  %t = memref.transpose %b (i, j) -> (j, i) : memref<4x4xf32> to memref<4x4xf32, strided<[1, 4]>>
  memref.copy %t, %out : memref<4x4xf32, strided<[1, 4]>> to memref<4x4xf32>
  return
}""")
        planned, arena = plan_function(module.body.operations[0])
        assert planned == 128 and arena == 128        # both live across the copy to %b
        text = str(module)
    assert text.count("memref.alloc") == 1 and text.count("memref.view") == 2
