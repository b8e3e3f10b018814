"""The fast CPU attention path: merged Q/K/V projections sliced into heads (the slices stay
strided views, no copies), attention with odd sequence lengths, masks, causal, dynamic
batch/sequence, and the vectorized softmax (polynomial exp) including fully masked rows."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ember
from compare import assert_close


class HeadsAttention(nn.Module):
    """BERT-style self-attention spelled out: one merged QKV linear, head split by reshape +
    transpose, matmul/softmax/matmul (or SDPA with a mask / causal), heads merged back."""

    def __init__(self, hidden=48, heads=3, mode="plain"):
        super().__init__()
        torch.manual_seed(0)
        self.heads, self.d = heads, hidden // heads
        self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.mode = mode

    def _split(self, t):
        b, s, _ = t.shape
        return t.reshape(b, s, self.heads, self.d).transpose(1, 2)

    def forward(self, x, *mask):
        b, s, h = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        if self.mode == "plain":
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d)
            ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        elif self.mode == "causal":
            ctx = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[0])
        return ctx.transpose(1, 2).reshape(b, s, h)


def _check(model, inputs):
    compiled = ember.compile(model, tuple(inputs))
    with torch.no_grad():
        assert_close(compiled(*inputs), model(*inputs))


@pytest.mark.parametrize("batch,seq", [(1, 1), (2, 7), (3, 33)])
@pytest.mark.parametrize("mode", ["plain", "causal"])
def test_merged_qkv_attention_odd_lengths(batch, seq, mode):
    model = HeadsAttention(mode=mode).eval()
    _check(model, [torch.randn(batch, seq, 48)])


def test_masked_attention_with_fully_masked_rows():
    model = HeadsAttention(mode="mask").eval()
    mask = torch.randn(2, 1, 9, 9)
    mask[..., -1] = float("-inf")
    mask[1, 0, 4] = float("-inf")          # a query that may attend to nothing -> zeros
    x = torch.randn(2, 9, 48)
    compiled = ember.compile(model, (x, mask))
    with torch.no_grad():
        want = model(x, torch.where(torch.isinf(mask).all(-1, keepdim=True),
                                    torch.zeros_like(mask), mask))
    # rows with no allowed key: ember gives zeros (PyTorch's attention convention)
    want[1, 4] = 0.0
    assert_close(compiled(x, mask), want)


@pytest.mark.parametrize("mode", ["plain", "causal"])
def test_dynamic_batch_and_sequence(mode):
    model = HeadsAttention(mode=mode).eval()
    batch = torch.export.Dim("batch", min=1, max=8)
    seq = torch.export.Dim("seq", min=2, max=40)
    compiled = ember.compile(model, (torch.randn(2, 5, 48),),
                             dynamic_shapes={"x": {0: batch, 1: seq}})
    for b, s in [(1, 2), (3, 17), (8, 40)]:
        x = torch.randn(b, s, 48)
        with torch.no_grad():
            assert_close(compiled(x), model(x))


def test_softmax_exp_is_accurate_over_a_wide_range():
    class Softmax(nn.Module):
        def forward(self, x):
            return torch.softmax(x, dim=-1)
    x = torch.randn(4, 37) * 30
    x[0, :5] = -1e30
    _check(Softmax(), [x])
