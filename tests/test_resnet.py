"""A ResNet-18-style CNN end to end (BatchNorm folded, NHWC, fused ReLU and residuals)."""
from __future__ import annotations

import torch

import ember
from compare import assert_close
from resnet import ResNet18, randomize_batch_norm


def _check(width: int, batch: int, size: int):
    torch.manual_seed(0)
    model = randomize_batch_norm(ResNet18(width=width, classes=10)).eval()
    x = torch.randn(batch, 3, size, size)
    compiled = ember.compile(model, (x,))
    with torch.no_grad():
        assert_close(compiled(x), model(x))
    return compiled


def test_narrow_resnet18_matches_pytorch():
    _check(width=16, batch=2, size=64)


def test_full_width_resnet18_matches_pytorch():
    _check(width=64, batch=1, size=64)
