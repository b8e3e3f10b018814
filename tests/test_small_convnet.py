"""A small conv net: ember's conv2d with folded BatchNorm and fused ReLU, and torch-mlir's
linalg fallback for pooling, flatten and grouped convolution."""
from __future__ import annotations

import pytest
import torch

import ember
from compare import assert_close


class SmallConvNet(torch.nn.Module):
    def __init__(self, groups: int = 1):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        width = 8 if groups == 8 else 16  # depthwise keeps the channel count
        self.conv2 = torch.nn.Conv2d(8, width, 3, stride=2, padding=1, groups=groups)
        self.bn2 = torch.nn.BatchNorm2d(width)
        self.pool = torch.nn.MaxPool2d(2)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(width, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


@pytest.fixture(scope="module", params=[1, 2, 8], ids=["dense", "grouped", "depthwise"])
def convnet(request):
    """groups=2 goes through the linalg fallback; groups=8 is ember's depthwise conv."""
    torch.manual_seed(0)
    net = SmallConvNet(groups=request.param)
    with torch.no_grad():  # non-trivial running stats so BatchNorm is really exercised
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.mark.parametrize("batch", [1, 4])
def test_convnet_matches_pytorch(convnet, batch):
    x = torch.randn(batch, 3, 32, 32)
    compiled = ember.compile(convnet, (x,))
    with torch.no_grad():
        assert_close(compiled(x), convnet(x))
