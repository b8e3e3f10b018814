"""ember-conv-winograd: 3x3 stride-1 convs through Winograd F(2x2, 3x3) on the CPU, against
PyTorch: padding 0/1/2, channel counts that are not multiples of a vector, bias, activations,
a fused residual, batch 1 and a dynamic batch; and the filter transform itself in numpy."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

import ember
from conftest import max_abs_error
from ember.passes.conv_winograd import A_T, B_T, transform_filter


class Conv3x3(nn.Module):
    def __init__(self, cin, cout, padding, bias=True, activation="relu", residual=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=padding, bias=bias)
        self.activation, self.residual = activation, residual

    def forward(self, x, r=None):
        y = self.conv(x)
        y = {"none": y, "relu": torch.relu(y), "gelu": nn.functional.gelu(y)}[self.activation]
        return y + r if self.residual else y


def _uses_winograd(compiled) -> bool:
    with open(os.path.join(compiled.artifact_dir, "manifest.json")) as f:
        return any(".winograd" in c["name"] for c in json.load(f)["constants"])


@pytest.mark.parametrize("cin,cout,padding,hw,activation,bias", [
    (16, 8, 1, (8, 10), "relu", True),
    (20, 33, 1, (6, 4), "gelu", False),     # C, F not multiples of a vector; N tail
    (32, 16, 0, (10, 12), "none", True),    # no padding: 8x10 output
    (24, 8, 2, (4, 6), "relu", True),       # padding 2: 6x8 output
], ids=["p1", "odd-channels", "p0", "p2"])
@pytest.mark.parametrize("batch", [1, 3])
def test_winograd_convs(cin, cout, padding, hw, activation, bias, batch):
    torch.manual_seed(0)
    model = Conv3x3(cin, cout, padding, bias, activation).eval()
    x = torch.randn(batch, cin, *hw)
    compiled = ember.compile(model, (x,))
    assert _uses_winograd(compiled)
    with torch.no_grad():
        assert max_abs_error(compiled(x), model(x)) <= 2e-4


def test_winograd_residual_dynamic_batch():
    torch.manual_seed(1)
    model = Conv3x3(16, 16, 1, residual=True).eval()
    batch = torch.export.Dim("batch", max=8)
    args = (torch.randn(2, 16, 6, 6), torch.randn(2, 16, 6, 6))
    compiled = ember.compile(model, args, dynamic_shapes={"x": {0: batch}, "r": {0: batch}})
    assert _uses_winograd(compiled)
    for n in (1, 5):
        x, r = torch.randn(n, 16, 6, 6), torch.randn(n, 16, 6, 6)
        with torch.no_grad():
            assert max_abs_error(compiled(x, r), model(x, r)) <= 2e-4


def test_odd_output_keeps_the_direct_conv():
    model = Conv3x3(16, 8, 1).eval()
    x = torch.randn(2, 16, 7, 8)                # 7 output rows: tiles would straddle the edge
    compiled = ember.compile(model, (x,))
    assert not _uses_winograd(compiled)
    with torch.no_grad():
        assert max_abs_error(compiled(x), model(x)) <= 1e-4


def test_transforms_reproduce_a_correlation():
    """A^T [(G g G^T) * (B^T d B)] A equals the 2x2 valid correlation of a 4x4 tile."""
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    u = transform_filter(g.reshape(3, 3, 1, 1).astype(np.float64)).reshape(4, 4)
    y = A_T @ (u * (B_T @ d @ B_T.T)) @ A_T.T
    expected = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
