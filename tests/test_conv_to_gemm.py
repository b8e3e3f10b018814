"""ember-conv-to-gemm: NHWC conv2d (groups=1) through the packed GEMM micro-kernel.

1x1 stride-1 convs are GEMMs on the input itself; every other conv is a GEMM whose kernel reads
im2col patches straight from the padded input (implicit GEMM). Covers stride 1/2, padding
0/1/3, kernel 1/3/7, dilation 1/2, odd spatial sizes and channel counts, several K blocks, A read
in place and packed (wide GEMMs), batch 1, dynamic batch and every epilogue (bias, activation,
residual), against PyTorch.
"""
from __future__ import annotations

import pytest
import torch

import ember
from compare import assert_close

nn = torch.nn


class ConvEpilogue(nn.Module):
    """conv (+ folded BatchNorm) -> activation -> (+ residual), the shape ember fuses."""

    def __init__(self, cin, cout, k, stride=1, padding=0, dilation=1, bias=True,
                 activation="relu", residual=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, dilation=dilation,
                              bias=bias)
        self.activation = activation
        self.residual = residual

    def forward(self, x, r=None):
        y = self.conv(x)
        if self.activation == "relu":
            y = torch.relu(y)
        elif self.activation == "gelu":
            y = nn.functional.gelu(y)
        elif self.activation == "sigmoid":
            y = torch.sigmoid(y)
        if self.residual:
            y = y + r
        return y


def _run(model, inputs, more=(), dynamic_shapes=None):
    model.eval()
    compiled = ember.compile(model, tuple(inputs), dynamic_shapes=dynamic_shapes)
    for args in [inputs, *more]:
        with torch.no_grad():
            assert_close(compiled(*args), model(*args))


@pytest.mark.parametrize("cin,cout,k,stride,padding,dilation,hw", [
    (8, 16, 1, 1, 0, 1, (7, 9)),      # pointwise: the input is the GEMM's lhs
    (5, 7, 1, 2, 0, 1, (9, 11)),      # strided 1x1: im2col subsamples
    (3, 8, 3, 1, 1, 1, (9, 11)),
    (6, 10, 3, 2, 1, 1, (13, 7)),
    (4, 6, 3, 1, 0, 2, (11, 9)),      # dilation 2, no padding
    (3, 17, 7, 2, 3, 1, (15, 17)),    # ResNet stem shape, N=17 not a multiple of the panel
    (9, 5, 3, 2, 3, 2, (8, 10)),      # padding 3 with dilation: reads mostly padding
    (64, 40, 3, 2, 1, 1, (9, 9)),     # K = 576: two K blocks of whole taps, A read in place
    (70, 130, 3, 1, 1, 1, (6, 5)),    # 5 panels: A packed from the patches, 2 tail columns
], ids=["1x1", "1x1-s2", "k3-p1", "k3-s2-p1", "k3-d2", "k7-s2-p3", "k3-s2-p3-d2",
        "k3-kblocks", "k3-packed"])
@pytest.mark.parametrize("batch", [1, 3])
def test_conv_shapes(cin, cout, k, stride, padding, dilation, hw, batch):
    torch.manual_seed(0)
    model = ConvEpilogue(cin, cout, k, stride, padding, dilation)
    _run(model, [torch.randn(batch, cin, *hw)])


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", ["none", "relu", "gelu", "sigmoid"])
@pytest.mark.parametrize("k", [1, 3])
def test_conv_epilogues(k, activation, bias):
    """bias / activation / residual fused in the GEMM epilogue."""
    torch.manual_seed(1)
    model = ConvEpilogue(6, 12, k, padding=k // 2, bias=bias, activation=activation,
                         residual=True)
    _run(model, [torch.randn(2, 6, 7, 5), torch.randn(2, 12, 7, 5)])


def test_conv_batchnorm_block():
    """conv -> BatchNorm (folded into the GEMM bias) -> relu, then a 1x1 projection + residual."""
    torch.manual_seed(2)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(8)
            self.c2 = nn.Conv2d(8, 8, 1)

        def forward(self, x):
            return torch.relu(self.c2(torch.relu(self.bn(self.c1(x)))) + x)

    model = Block()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    _run(model, [torch.randn(2, 8, 9, 9)])


@pytest.mark.parametrize("k,stride,padding", [(1, 1, 0), (3, 2, 1)], ids=["1x1", "k3-s2-p1"])
def test_conv_dynamic_batch(k, stride, padding):
    torch.manual_seed(3)
    model = ConvEpilogue(4, 12, k, stride, padding, residual=False)
    batch = torch.export.Dim("batch", min=1, max=16)
    _run(model, [torch.randn(2, 4, 9, 11)], more=[[torch.randn(1, 4, 9, 11)],
                                                  [torch.randn(5, 4, 9, 11)]],
         dynamic_shapes={"x": {0: batch}})
