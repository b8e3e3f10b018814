"""scaled_dot_product_attention -> ember.attention: no mask, float and bool masks, causal.

Masks are normalized at export time (python/ember/frontend/decompositions.py): a bool mask
becomes an additive one (0 / -inf), a causal mask over non-square scores (PyTorch aligns it
top-left, ember.attention bottom-right) becomes explicit, GQA repeats key/value heads."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ember.compiler import compile_to_stage
from ember.frontend import import_model

from .conftest import Fn


def _qkv(batch=(2, 3), sq=5, sk=7, d=8, dv=None):
    return [torch.randn(*batch, sq, d), torch.randn(*batch, sk, d),
            torch.randn(*batch, sk, dv or d)]


def _sdpa(**kwargs):
    return Fn(lambda self, q, k, v, *mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask[0] if mask else None, **kwargs))


@pytest.mark.covers("scaled_dot_product_attention")
@pytest.mark.parametrize("shapes", [
    dict(), dict(batch=(4,), sq=9, sk=9, d=16, dv=5), dict(batch=(1, 2), sq=1, sk=11, d=3),
], ids=["4d", "3d-value-dim", "single-query"])
def test_sdpa_no_mask(check, shapes):
    check(_sdpa(), _qkv(**shapes), expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
def test_sdpa_scale(check):
    check(_sdpa(scale=0.3), _qkv(), expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
@pytest.mark.parametrize("mask_shape", [(5, 7), (2, 1, 5, 7), (2, 3, 5, 7), (1, 7)],
                         ids=["2d", "per-batch", "full", "key-padding"])
def test_sdpa_float_mask(check, mask_shape):
    mask = torch.randn(mask_shape)
    mask[..., -1] = float("-inf")  # a masked key
    check(_sdpa(), _qkv() + [mask], expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
def test_sdpa_bool_mask(check):
    mask = torch.rand(2, 1, 5, 7) > 0.4
    mask[..., 0] = True          # no fully masked row here (see the next test)
    check(_sdpa(), _qkv() + [mask], expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
def test_sdpa_fully_masked_rows_are_zero(check):
    """PyTorch returns zeros for a query that may attend to nothing; so does ember."""
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[2] = False
    float_mask = torch.zeros(5, 7)
    float_mask[4] = float("-inf")
    model = Fn(lambda self, q, k, v, m, f: (F.scaled_dot_product_attention(q, k, v, m),
                                            F.scaled_dot_product_attention(q, k, v, f)))
    check(model, _qkv() + [mask, float_mask], expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
@pytest.mark.parametrize("sq,sk", [(6, 6), (3, 7), (7, 4)], ids=["square", "wide", "tall"])
def test_sdpa_causal(check, sq, sk):
    """Square scores keep ember.attention's causal flag; others get PyTorch's explicit
    top-left mask (the tall case has fully masked rows: zeros)."""
    check(_sdpa(is_causal=True), _qkv(sq=sq, sk=sk), expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
def test_sdpa_gqa(check):
    """Grouped-query attention (3 query heads per key/value head), and enable_gqa with equal
    head counts."""
    q, k, v = torch.randn(2, 6, 5, 4), torch.randn(2, 2, 5, 4), torch.randn(2, 2, 5, 4)
    model = Fn(lambda self, q, k, v: (
        F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True),
        F.scaled_dot_product_attention(k, k, v, enable_gqa=True)))
    check(model, [q, k, v], expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
def test_sdpa_dynamic_causal(check):
    """Dynamic batch and sequence: the causal flag is kept (query and key share the symbol)."""
    batch, seq = torch.export.Dim("batch", min=1, max=8), torch.export.Dim("seq", min=2, max=64)
    dims = {0: batch, 2: seq}
    check(_sdpa(is_causal=True), _qkv(sq=6, sk=6), expect=["attention"],
          dynamic_shapes={"xs": (dims, dims, dims)},
          more_inputs=[_qkv(batch=(1, 3), sq=2, sk=2), _qkv(batch=(3, 3), sq=33, sk=33)])


@pytest.mark.covers("scaled_dot_product_attention")
def test_sdpa_dynamic_kv_cache(check):
    """Decode steps against a dynamic-length cache: one query with a float padding mask, and
    causal over queries and keys of different dynamic lengths (an explicit top-left mask)."""
    cache = torch.export.Dim("cache", min=2, max=128)
    new = torch.export.Dim("new", min=1, max=16)
    model = Fn(lambda self, q, k, v, m, q2: (
        F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        F.scaled_dot_product_attention(q2, k, v, is_causal=True)))

    def inputs(sk, sq2):
        return _qkv(sq=1, sk=sk) + [torch.randn(2, 1, 1, sk), torch.randn(2, 3, sq2, 8)]
    check(model, inputs(9, 4), expect=["attention"],
          dynamic_shapes={"xs": (None, {2: cache}, {2: cache}, {3: cache}, {2: new})},
          more_inputs=[inputs(2, 1), inputs(40, 16)])


@pytest.mark.covers("scaled_dot_product_attention")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sdpa_half_precision_computes_in_f32(check, dtype):
    """Scores of magnitude ~100 (inputs up to 9): computed in the half type they were off by
    ~0.4 before the softmax (a max error of 0.18 against eager); ember computes them, the
    softmax and the weighted sum in f32 and rounds once, as PyTorch does."""
    torch.manual_seed(0)
    q, k, v = [(torch.rand_like(t) * 18 - 9).to(dtype) for t in _qkv(batch=(4,), sq=3, sk=6)]
    check(_sdpa(is_causal=True), [q, k, v], expect=["attention"])
    check(_sdpa(), [q, k, v], expect=["attention"])


def _heads_inside(**kwargs):
    """Attention as a transformer writes it: [B, S, H, D] projections transposed into heads,
    the result transposed back and merged ([B, S, H*D]). ember-fold-attention-layout folds
    all four transposes into an ember.attention in layout "bshd"."""
    def forward(self, q, k, v, *mask):
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[0] if mask else None,
                                           **kwargs)
        return y.transpose(1, 2).flatten(2)
    return Fn(forward)


def _bshd(batch=2, sq=5, sk=7, heads=3, d=8, dv=None):
    return [torch.randn(batch, sq, heads, d), torch.randn(batch, sk, heads, d),
            torch.randn(batch, sk, heads, dv or d)]


@pytest.mark.covers("scaled_dot_product_attention")
@pytest.mark.parametrize("mask", [None, (2, 1, 1, 7), (2, 3, 5, 7), "causal"],
                         ids=["no-mask", "key-padding", "full", "causal"])
def test_sdpa_heads_inside_sequence(check, mask):
    inputs = _bshd(dv=6, sk=5 if mask == "causal" else 7)
    if isinstance(mask, tuple):
        m = torch.randn(mask)
        m[..., -1] = float("-inf")
        inputs.append(m)
    check(_heads_inside(is_causal=mask == "causal"), inputs, expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sdpa_heads_inside_sequence_half_precision(check, dtype):
    """In layout "bshd" too, 16-bit attention computes in f32 and rounds once."""
    check(_heads_inside(is_causal=True), [t.to(dtype) for t in _bshd(sq=6, sk=6)],
          expect=["attention"])


@pytest.mark.covers("scaled_dot_product_attention")
def test_sdpa_heads_inside_dynamic_sequence(check):
    seq = torch.export.Dim("seq", min=2, max=64)
    dims = {1: seq}
    check(_heads_inside(is_causal=True), _bshd(sq=6, sk=6), expect=["attention"],
          dynamic_shapes={"xs": (dims, dims, dims)},
          more_inputs=[_bshd(sq=2, sk=2), _bshd(sq=33, sk=33)])


def test_heads_inside_sequence_need_no_transposes():
    """The graph stage of _heads_inside: one "bshd" attention, no transpose left."""
    imported = import_model(_heads_inside(is_causal=True), _bshd(sq=5, sk=5))
    graph = str(compile_to_stage(imported.module_text, "graph", weights=imported.weights))
    assert 'layout = "bshd"' in graph and "ember.transpose" not in graph, graph
