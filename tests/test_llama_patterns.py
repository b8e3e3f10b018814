"""LLaMA-style building blocks written in plain torch: RMSNorm and rotary embeddings are
recognized into ember ops and still match PyTorch."""
from __future__ import annotations

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
