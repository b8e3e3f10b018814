"""A small conv net through torch-mlir's linalg fallback (conv, batch norm, pooling)."""
from __future__ import annotations

import pytest
import torch

import ember
from conftest import max_abs_error


class SmallConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(16)
        self.pool = torch.nn.MaxPool2d(2)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


@pytest.fixture(scope="module")
def convnet():
    torch.manual_seed(0)
    net = SmallConvNet()
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
        expected = convnet(x)
    assert max_abs_error(compiled(x), expected) <= 1e-4
