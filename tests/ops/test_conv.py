"""Convolutions: 1-D, 2-D (ember.conv2d for dense and depthwise), 3-D and transposed."""
from __future__ import annotations

import pytest
import torch

from .conftest import Fn

nn = torch.nn


@pytest.mark.covers("Conv1d")
@pytest.mark.parametrize("conv,length", [
    (nn.Conv1d(3, 5, 3, padding=1), 17),
    (nn.Conv1d(4, 6, 4, stride=2, dilation=2, groups=2, bias=False), 19),
], ids=["k3-pad1", "k4-stride2-dilation2-groups2"])
def test_conv1d(check, conv, length):
    check(conv, [torch.randn(2, conv.in_channels, length)])


@pytest.mark.covers("Conv2d")
@pytest.mark.parametrize("conv,expect", [
    (nn.Conv2d(3, 8, 3, padding=1), ["conv2d"]),
    (nn.Conv2d(3, 5, (3, 5), stride=2, padding=(1, 2), dilation=(1, 2), bias=False), ["conv2d"]),
    (nn.Conv2d(6, 6, 3, padding=1, groups=6), ["conv2d"]),            # depthwise
    (nn.Conv2d(4, 6, 3, groups=2), []),                               # grouped: fallback
    (nn.Conv2d(3, 4, 4, padding="same"), []),                         # asymmetric padding
    (nn.Conv2d(5, 7, 1), ["conv2d"]),
], ids=["dense", "stride-dilation-rect", "depthwise", "grouped", "same-even-kernel", "1x1"])
def test_conv2d(check, conv, expect):
    check(conv, [torch.randn(2, conv.in_channels, 9, 11)], expect=expect)


@pytest.mark.covers("Conv2d", "ReLU")
def test_conv2d_dynamic_batch(check):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4))
    batch = torch.export.Dim("batch", min=1, max=16)
    check(model, [torch.randn(2, 3, 7, 9)], expect=["conv2d"],
          dynamic_shapes={"input": {0: batch}},
          more_inputs=[[torch.randn(1, 3, 7, 9)], [torch.randn(5, 3, 7, 9)]])


@pytest.mark.covers("Conv3d")
@pytest.mark.parametrize("conv", [
    nn.Conv3d(2, 4, 3, padding=1),
    nn.Conv3d(4, 6, (2, 3, 3), stride=(1, 2, 2), groups=2),
], ids=["k3-pad1", "stride-groups"])
def test_conv3d(check, conv):
    check(conv, [torch.randn(1, conv.in_channels, 5, 6, 7)])


@pytest.mark.covers("ConvTranspose2d")
@pytest.mark.parametrize("conv", [
    nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
    nn.ConvTranspose2d(4, 6, (2, 3), stride=(2, 1), dilation=2, groups=2, bias=False),
], ids=["stride2-output-padding", "rect-dilation-groups"])
def test_conv_transpose2d(check, conv):
    check(conv, [torch.randn(2, conv.in_channels, 5, 7)])


@pytest.mark.covers("ConvTranspose3d")
def test_conv_transpose3d(check):
    conv = nn.ConvTranspose3d(2, 3, 3, stride=2, padding=1)
    check(conv, [torch.randn(1, 2, 3, 4, 5)])


@pytest.mark.covers("Conv2d", "BatchNorm", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "flatten",
                    "Linear")
def test_small_convnet(check):
    """A conv block with BatchNorm folded into the conv (running stats are non-trivial)."""
    bn = nn.BatchNorm2d(8)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), bn, nn.ReLU(), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    check(model, [torch.randn(2, 3, 11, 13)], expect=["conv2d", "pool2d", "gemm"])


@pytest.mark.covers("Conv2d")
def test_fp16_conv2d_rounds_once(check):
    """fp16 convolutions (dense with bias, depthwise) accumulate in f32 and round once, as
    PyTorch's: within one fp16 ulp of the output scale (C*KH*KW = 576 products per output)."""
    conv = nn.Conv2d(64, 16, 3, padding=1).half()
    depthwise = nn.Conv2d(16, 16, 3, groups=16).half()
    model = Fn(lambda self, x: (conv(x), depthwise(conv(x))), conv, depthwise)
    check(model, [torch.randn(1, 64, 9, 9).half()], expect=["conv2d"],
          tol=torch.finfo(torch.float16).eps)
