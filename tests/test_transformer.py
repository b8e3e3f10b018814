"""A BERT-style encoder end to end: attention recognized, Q/K/V merged, dynamic batch/sequence."""
from __future__ import annotations

import math

import pytest
import torch

import ember
from compare import assert_close


class EncoderLayer(torch.nn.Module):
    def __init__(self, hidden=64, heads=4, ffn=128):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (torch.nn.Linear(hidden, hidden) for _ in range(4))
        self.ln1, self.ln2 = torch.nn.LayerNorm(hidden), torch.nn.LayerNorm(hidden)
        self.f1, self.f2 = torch.nn.Linear(hidden, ffn), torch.nn.Linear(ffn, hidden)

    def forward(self, x, mask):
        b, s, h = x.shape
        d = h // self.heads

        def split(t):
            return t.view(b, s, self.heads, d).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d) + mask, dim=-1) @ v
        x = self.ln1(x + self.o(a.transpose(1, 2).reshape(b, s, h)))
        return self.ln2(x + self.f2(torch.nn.functional.gelu(self.f1(x))))


class Encoder(torch.nn.Module):
    def __init__(self, layers=2):
        super().__init__()
        self.layers = torch.nn.ModuleList(EncoderLayer() for _ in range(layers))

    def forward(self, x, mask):
        for layer in self.layers:
            x = layer(x, mask)
        return x


def _inputs(batch, seq):
    mask = torch.zeros(batch, 1, 1, seq)
    mask[..., seq * 3 // 4:] = -1e4  # padding tokens
    return torch.randn(batch, seq, 64), mask


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return Encoder().eval()


def test_static_encoder_matches_pytorch(encoder):
    x, mask = _inputs(2, 16)
    compiled = ember.compile(encoder, (x, mask))
    with torch.no_grad():
        assert_close(compiled(x, mask), encoder(x, mask))


def test_dynamic_batch_and_sequence(encoder):
    batch = torch.export.Dim("batch", min=1, max=16)
    seq = torch.export.Dim("seq", min=2, max=64)
    compiled = ember.compile(encoder, _inputs(2, 16),
                             dynamic_shapes={"x": {0: batch, 1: seq}, "mask": {0: batch, 3: seq}})
    for b, s in ((1, 8), (3, 33), (2, 64)):
        x, mask = _inputs(b, s)
        with torch.no_grad():
            assert_close(compiled(x, mask), encoder(x, mask))


def test_parallel_linear_merging_can_be_turned_off(encoder):
    """Without merging, the artifact keeps the separate Q/K/V weights (no concatenated copy)."""
    x, mask = _inputs(2, 16)
    merged = ember.compile(encoder, (x, mask))
    separate = ember.compile(encoder, (x, mask), merge_parallel_linears=False)
    names = {c["name"] for c in separate.runtime.manifest["constants"]}
    assert not any("merged" in n for n in names)
    assert any("merged" in c["name"] for c in merged.runtime.manifest["constants"])
    with torch.no_grad():
        assert_close(separate(x, mask), encoder(x, mask))
