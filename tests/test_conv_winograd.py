"""ember-conv-winograd: 3x3 stride-1 convs through Winograd F(2x2, 3x3) on the CPU, against
PyTorch: padding 0/1/2, channel counts that are not multiples of a vector, bias, activations,
a fused residual, batch 1 and a dynamic batch, each way of blocking the tiles; the filter
transform itself in numpy; and how tiles are split into cache-sized blocks."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

import ember
from compare import assert_close
from ember.backends.cpu.conv_winograd import F2, F4, TileBlocks, transform_filter


class Conv3x3(nn.Module):
    def __init__(self, cin, cout, padding, bias=True, activation="relu", residual=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=padding, bias=bias)
        self.activation, self.residual = activation, residual

    def forward(self, x, r=None):
        y = self.conv(x)
        y = {"none": y, "relu": torch.relu(y), "gelu": nn.functional.gelu(y)}[self.activation]
        return y + r if self.residual else y


def _uses_winograd(compiled, tile=None) -> bool:
    marker = ".winograd" if tile is None else f".winograd{tile}."
    with open(os.path.join(compiled.artifact_dir, "manifest.json")) as f:
        return any(marker in c["name"] for c in json.load(f)["constants"])


@pytest.fixture(params=[2, 4], ids=["tile2", "tile4"])
def tile(request):
    """Runs a test with the pass's default F(2x2) and with tile=4 (F(4x4) where it fits)."""
    return request.param


@pytest.mark.parametrize("cin,cout,padding,hw,activation,bias", [
    (16, 8, 1, (8, 12), "relu", True),      # 8x12 output: F(4x4) fits
    (20, 33, 1, (6, 4), "gelu", False),     # 6 rows: F(2x2) only; C, F not vector multiples
    (32, 16, 0, (10, 12), "none", True),    # no padding: 8x10 output (F(2x2) only)
    (24, 8, 2, (4, 8), "relu", True),       # padding 2: 6x10 output
    (64, 40, 1, (8, 8), "relu", True),      # more channels (larger sums)
], ids=["p1", "odd-channels", "p0", "p2", "c64"])
@pytest.mark.parametrize("batch", [1, 3])
def test_winograd_convs(cin, cout, padding, hw, activation, bias, batch, tile):
    torch.manual_seed(0)
    model = Conv3x3(cin, cout, padding, bias, activation).eval()
    x = torch.randn(batch, cin, *hw)
    compiled = ember.compile(model, (x,), pass_options={"ember-conv-winograd": {"tile": tile}})
    oh, ow = hw[0] + 2 * padding - 2, hw[1] + 2 * padding - 2
    fits = tile if oh % tile == 0 and ow % tile == 0 else 2
    assert _uses_winograd(compiled, fits)
    with torch.no_grad():
        assert_close(compiled(x), model(x))


@pytest.mark.parametrize("bias", [True, False])
def test_winograd_residual_dynamic_batch(bias):
    """The residual (read through the output's views) with and without a bias."""
    torch.manual_seed(1)
    model = Conv3x3(16, 16, 1, bias=bias, residual=True).eval()
    batch = torch.export.Dim("batch", max=8)
    args = (torch.randn(2, 16, 6, 6), torch.randn(2, 16, 6, 6))
    compiled = ember.compile(model, args, dynamic_shapes={"x": {0: batch}, "r": {0: batch}})
    assert _uses_winograd(compiled)
    for n in (1, 5):
        x, r = torch.randn(n, 16, 6, 6), torch.randn(n, 16, 6, 6)
        with torch.no_grad():
            assert_close(compiled(x, r), model(x, r))


def test_odd_output_keeps_the_direct_conv():
    model = Conv3x3(16, 8, 1).eval()
    x = torch.randn(2, 16, 7, 8)                # 7 output rows: tiles would straddle the edge
    compiled = ember.compile(model, (x,))
    assert not _uses_winograd(compiled)
    with torch.no_grad():
        assert_close(compiled(x), model(x))


@pytest.mark.parametrize("algorithm", [F2, F4], ids=["F2x2", "F4x4"])
def test_transforms_reproduce_a_correlation(algorithm):
    """A^T [(G g G^T) * (B^T d B)] A equals the m x m valid correlation of a tile."""
    rng = np.random.default_rng(0)
    t, m = algorithm.tile, algorithm.m
    d, g = rng.standard_normal((t, t)), rng.standard_normal((3, 3))
    u = transform_filter(g.reshape(3, 3, 1, 1), algorithm).reshape(t, t)
    y = algorithm.a_t @ (u * (algorithm.b_t @ d @ algorithm.b_t.T)) @ algorithm.a_t.T
    expected = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(m)] for i in range(m)])
    assert_close(y, expected)


@pytest.mark.parametrize("options,batch", [
    ({"blocked": False}, 3),                                # the whole tensors at once
    ({"min_blocks": 2, "block_bytes": 1}, 2),               # one tile row of one image per block
    ({"min_blocks": 2, "block_bytes": 100_000_000}, 4),     # whole images: two per block
], ids=["whole", "row-blocks", "image-blocks"])
def test_winograd_blocks(options, batch):
    """Each way of splitting the tiles into blocks gives PyTorch's result (with a residual)."""
    torch.manual_seed(2)
    model = Conv3x3(24, 20, 1, residual=True).eval()
    x, r = torch.randn(batch, 24, 8, 12), torch.randn(batch, 20, 8, 12)
    compiled = ember.compile(model, (x, r), pass_options={"ember-conv-winograd": options})
    assert _uses_winograd(compiled)
    with torch.no_grad():
        assert_close(compiled(x, r), model(x, r))


def test_winograd_row_blocks_dynamic_batch():
    """Blocks of tile rows over a batch only known at run time."""
    torch.manual_seed(3)
    model = Conv3x3(16, 16, 1, residual=True).eval()
    batch = torch.export.Dim("batch", max=8)
    args = (torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8))
    compiled = ember.compile(model, args, dynamic_shapes={"x": {0: batch}, "r": {0: batch}},
                             pass_options={"ember-conv-winograd": {"min_blocks": 2,
                                                                   "block_bytes": 1}})
    for n in (1, 3):
        x, r = torch.randn(n, 16, 8, 8), torch.randn(n, 16, 8, 8)
        with torch.no_grad():
            assert_close(compiled(x, r), model(x, r))


@pytest.mark.parametrize("n,th,tw,tile_bytes,expected", [
    (8, 32, 32, 4096, (1, 4)),       # 128 tiles fit: 4 tile rows of one image
    (8, 4, 4, 32768, (1, 4)),        # 16 tiles (one image) fit
    (8, 4, 4, 1024, (4, 4)),         # 512 tiles fit, but only 4 images per block keep 2 blocks
    (None, 4, 4, 1024, (1, 2)),      # dynamic batch: rows of one image, 2 blocks
    (1, 1, 4, 1024, None),           # one tile row: a single block
])
def test_tile_block_plan(n, th, tw, tile_bytes, expected):
    blocks = TileBlocks(budget=512 * 1024, min_blocks=2)
    assert blocks.plan(n, th, tw, tile_bytes) == expected
