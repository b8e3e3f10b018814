"""Reductions of a convolution's output: ember-convert-layout moves the conv to NHWC and sinks
the transpose back to NCHW into the reduction (it reduces the NHWC dims, and only its result
is transposed where the kept dims' order differs), which must compute what PyTorch does."""
from __future__ import annotations

import pytest
import torch

import ember
from compare import assert_close


class ConvThenReduce(torch.nn.Module):
    def __init__(self, reduce):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.reduce = reduce

    def forward(self, x):
        return self.reduce(torch.relu(self.conv(x)))


REDUCTIONS = {
    "mean_hw": lambda y: y.mean(dim=(2, 3)),                 # global average pool
    "mean_hw_keepdim": lambda y: y.mean(dim=(2, 3), keepdim=True),
    "sum_channels": lambda y: y.sum(dim=1),                  # kept [N, H, W]: NHWC's order
    "sum_h": lambda y: y.sum(dim=2),                         # kept [N, C, W]: transposed back
    "amax_w_keepdim": lambda y: y.amax(dim=3, keepdim=True),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_of_nhwc_conv_matches_pytorch(name):
    torch.manual_seed(0)
    model = ConvThenReduce(REDUCTIONS[name]).eval()
    x = torch.randn(2, 3, 10, 12)
    compiled = ember.compile(model, (x,))
    with torch.no_grad():
        assert_close(compiled(x), model(x))
