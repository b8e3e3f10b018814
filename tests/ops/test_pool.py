"""Pooling and nearest upsampling (ember.pool2d where PyTorch's defaults allow it)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from .conftest import Fn

nn = torch.nn
IMAGES = [torch.randn(2, 3, 9, 11), torch.randn(1, 4, 8, 8)]


def _each(op):
    return Fn(lambda self, *xs: tuple(op(x) for x in xs))


@pytest.mark.covers("MaxPool2d")
@pytest.mark.parametrize("pool,expect", [
    (nn.MaxPool2d(2), ["pool2d"]),
    (nn.MaxPool2d(3, stride=2, padding=1), ["pool2d"]),
    (nn.MaxPool2d((2, 3), stride=(1, 2)), ["pool2d"]),
    (nn.MaxPool2d(3, stride=2, ceil_mode=True), []),        # fallback
    (nn.MaxPool2d(2, dilation=2), []),                      # fallback
], ids=["k2", "k3-s2-p1", "rect", "ceil-mode", "dilation"])
def test_max_pool2d(check, pool, expect):
    check(_each(pool), IMAGES, expect=expect)


@pytest.mark.covers("AvgPool2d")
@pytest.mark.parametrize("pool,expect", [
    (nn.AvgPool2d(2), ["pool2d"]),
    (nn.AvgPool2d(3, stride=2, padding=1), ["pool2d"]),
    (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), []),   # fallback
    (nn.AvgPool2d(3, stride=2, ceil_mode=True), []),                        # fallback
], ids=["k2", "k3-s2-p1", "exclude-pad", "ceil-mode"])
def test_avg_pool2d(check, pool, expect):
    check(_each(pool), IMAGES, expect=expect)


@pytest.mark.covers("AdaptiveAvgPool2d")
def test_adaptive_avg_pool2d_global(check):
    check(_each(nn.AdaptiveAvgPool2d(1)), IMAGES, expect=["pool2d"])


@pytest.mark.covers("AdaptiveAvgPool2d")
def test_adaptive_avg_pool2d_sizes(check):
    """Non-global output sizes (uneven windows for 9x11 -> 4x3) go through the fallback."""
    check(Fn(lambda self, x, y: (F.adaptive_avg_pool2d(x, (4, 3)), F.adaptive_avg_pool2d(y, 2),
                                 F.adaptive_avg_pool2d(x, (1, 5)))), IMAGES)


@pytest.mark.covers("MaxPool2d")
def test_adaptive_max_pool2d_uneven_windows(check):
    """Windows of different sizes (9 -> 4, 11 -> 3; 8 -> 3, 8 -> 5), which torch-mlir turned
    into a max_pool2d with the wrong result shape, and PyTorch's indices of each maximum;
    the evenly dividing and global sizes beside them."""
    model = Fn(lambda self, x, y: (*F.adaptive_max_pool2d(x, (4, 3), return_indices=True),
                                   F.adaptive_max_pool2d(y, (3, 5)), F.adaptive_max_pool2d(y, 4),
                                   F.adaptive_max_pool2d(x[0], (2, 5)),
                                   nn.AdaptiveMaxPool2d(1)(x)))
    check(model, IMAGES)


@pytest.mark.covers("MaxPool2d")
def test_adaptive_max_pool2d_ties_pick_the_first(check):
    """Repeated values: the index is the first maximum in each window, as PyTorch's."""
    x = torch.randint(0, 3, (1, 2, 7, 5)).float()
    check(Fn(lambda self, x: F.adaptive_max_pool2d(x, (3, 2), return_indices=True)), [x])


@pytest.mark.covers("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")
def test_pool_dynamic_batch(check):
    batch = torch.export.Dim("batch", min=1, max=32)
    model = Fn(lambda self, x: (F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 2),
                                F.adaptive_avg_pool2d(x, 1)))
    check(model, [torch.randn(2, 3, 9, 11)], expect=["pool2d"],
          dynamic_shapes={"xs": ({0: batch},)},
          more_inputs=[[torch.randn(1, 3, 9, 11)], [torch.randn(7, 3, 9, 11)]])


@pytest.mark.covers("UpsampleNearest2d")
def test_upsample_nearest2d(check):
    model = Fn(lambda self, x: (F.interpolate(x, scale_factor=2, mode="nearest"),
                                F.interpolate(x, size=(5, 7), mode="nearest"),
                                F.interpolate(x, scale_factor=(2, 3), mode="nearest"),
                                nn.Upsample(size=(18, 11), mode="nearest")(x)))
    check(model, [torch.randn(2, 3, 9, 11)])


@pytest.mark.covers("AdaptiveAvgPool2d")
def test_adaptive_avg_pool1d_empty_batch(check):
    """A batch of 0: torch-mlir's adaptive pooling selects from the empty input, which must
    lower to an empty tensor, not an out-of-bounds slice."""
    check(Fn(lambda self, x: F.adaptive_avg_pool1d(x, 5)), [torch.randn(0, 8, 8)])
