"""LLaMA-style building blocks written in plain torch: RMSNorm, rotary embeddings and
grouped-query attention are recognized into ember ops and still match PyTorch."""
from __future__ import annotations

import pytest
import torch

import ember
from compare import assert_close
from ember.compiler import compile_to_stage


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class RmsRope(torch.nn.Module):
    def __init__(self, dim=64):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.rand(dim) + 0.5)

    def forward(self, x, cos, sin):
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight
        return h * cos + rotate_half(h) * sin


def _inputs():
    torch.manual_seed(0)
    angles = torch.rand(8, 32) * 6.28
    emb = torch.cat((angles, angles), dim=-1)
    return torch.randn(2, 4, 8, 64), emb.cos(), emb.sin()


def test_patterns_are_recognized():
    from ember.frontend import import_model
    imported = import_model(RmsRope().eval(), _inputs())
    text = str(compile_to_stage(imported.module_text, "graph", weights=imported.weights))
    assert text.count('"ember.rms_norm"') == 1 and text.count('"ember.rotary_embedding"') == 1
    assert '"ember.reduce"' not in text and '"ember.concat"' not in text


def test_numerics_match_pytorch():
    model = RmsRope().eval()
    inputs = _inputs()
    compiled = ember.compile(model, inputs)
    with torch.no_grad():
        assert_close(compiled(*inputs), model(*inputs))


def repeat_kv(x, groups):
    """Hugging Face's repeat_kv: each key/value head repeated for its query heads."""
    b, heads, n, d = x.shape
    return x[:, :, None, :, :].expand(b, heads, groups, n, d).reshape(b, heads * groups, n, d)


class GroupedQueryAttention(torch.nn.Module):
    """Llama's eager attention over a cache: 8 query heads, 2 key/value heads."""

    def forward(self, q, k, v, mask):
        scores = torch.matmul(q, repeat_kv(k, 4).transpose(2, 3)) * 0.25 + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        return torch.matmul(probs, repeat_kv(v, 4))


def _attention_inputs(rows: int, mask_shape):
    g = torch.Generator().manual_seed(rows)
    keys = 37
    mask = torch.where(torch.rand(*mask_shape, keys, generator=g) < 0.2, -1e9, 0.0)
    return (torch.randn(1, 8, rows, 16, generator=g), torch.randn(1, 2, keys, 16, generator=g),
            torch.randn(1, 2, keys, 16, generator=g), mask)


@pytest.mark.parametrize("rows,mask_shape,folded", [
    (1, (1, 1, 1), True),       # a decode step: one mask row for every head
    (3, (1, 8, 3), True),       # a mask per head and row: viewed like the query
    (3, (1, 1, 3), False),      # per row, shared by the heads (causal prefill): repeat_kv stays
], ids=["decode", "per-head-mask", "per-row-mask"])
def test_grouped_query_heads_read_the_unrepeated_cache(rows, mask_shape, folded):
    """The attention (softmax with Llama's dtype=torch.float32 is a plain softmax) takes the 2
    key/value heads with the 4 query heads of each as its rows (no repeat_kv copy,
    ember-fold-grouped-heads) where the mask allows it, and matches PyTorch either way."""
    from ember.frontend import import_model
    model, inputs = GroupedQueryAttention().eval(), _attention_inputs(rows, mask_shape)
    imported = import_model(model, inputs)
    text = str(compile_to_stage(imported.module_text, "graph", weights=imported.weights))
    attention = [line for line in text.splitlines() if '"ember.attention"' in line]
    assert len(attention) == 1 and '"ember.gemm"' not in text, text
    heads, keys = ("2", "2x37x16xf32") if folded else ("8", "8x37x16xf32")
    assert f"-> tensor<1x{heads}x{4 * rows if folded else rows}x16xf32>" in attention[0]
    assert f"tensor<1x{keys}>, tensor<1x{keys}>" in attention[0], attention
    compiled = ember.compile(model, inputs)
    with torch.no_grad():
        assert_close(compiled(*inputs), model(*inputs))


def test_grouped_query_heads_over_a_growing_cache():
    """A decode step over a cache of dynamic length (the generation examples' shapes): the
    attention still reads the 2 unrepeated key/value heads, for every cache length."""
    from ember.frontend import import_model
    model = GroupedQueryAttention().eval()
    keys = torch.export.Dim("keys", min=2, max=96)
    dynamic = {"q": None, "k": {2: keys}, "v": {2: keys}, "mask": {3: keys}}
    inputs = _attention_inputs(1, (1, 1, 1))
    imported = import_model(model, inputs, dynamic)
    text = str(compile_to_stage(imported.module_text, "graph", weights=imported.weights))
    attention = [line for line in text.splitlines() if '"ember.attention"' in line]
    assert len(attention) == 1 and "tensor<1x2x?x16xf32>, tensor<1x2x?x16xf32>" in \
        attention[0], attention
    compiled = ember.compile(model, inputs, dynamic_shapes=dynamic)
    g = torch.Generator().manual_seed(5)
    for n in (2, 37, 96):
        q, k, v = (torch.randn(1, h, s, 16, generator=g) for h, s in ((8, 1), (2, n), (2, n)))
        mask = torch.where(torch.rand(1, 1, 1, n, generator=g) < 0.2, -1e9, 0.0)
        with torch.no_grad():
            assert_close(compiled(q, k, v, mask), model(q, k, v, mask))
