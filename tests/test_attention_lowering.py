"""Numerics of the attention, RMSNorm and RoPE lowerings against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ember.compiler import compile_mlir

MODULE = '''
func.func @main(%q: tensor<2x3x5x8xf32>, %k: tensor<2x3x7x8xf32>, %v: tensor<2x3x7x4xf32>,
                %m: tensor<5x7xf32>, %x: tensor<2x5x8xf32>, %w: tensor<8xf32>,
                %c: tensor<5x8xf32>, %s: tensor<5x8xf32>)
    -> (tensor<2x3x5x4xf32>, tensor<2x3x5x4xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>) {
  %0 = "ember.attention"(%q, %k, %v, %m) {scale = 0.35 : f32, causal = false, operandSegmentSizes = array<i32: 1, 1, 1, 1>} : (tensor<2x3x5x8xf32>, tensor<2x3x7x8xf32>, tensor<2x3x7x4xf32>, tensor<5x7xf32>) -> tensor<2x3x5x4xf32>
  %1 = "ember.attention"(%q, %k, %v) {scale = 0.35 : f32, causal = true, operandSegmentSizes = array<i32: 1, 1, 1, 0>} : (tensor<2x3x5x8xf32>, tensor<2x3x7x8xf32>, tensor<2x3x7x4xf32>) -> tensor<2x3x5x4xf32>
  %2 = "ember.rms_norm"(%x, %w) {epsilon = 1.0e-6 : f32, normalized_ndim = 1, operandSegmentSizes = array<i32: 1, 1>} : (tensor<2x5x8xf32>, tensor<8xf32>) -> tensor<2x5x8xf32>
  %3 = "ember.rotary_embedding"(%x, %c, %s) : (tensor<2x5x8xf32>, tensor<5x8xf32>, tensor<5x8xf32>) -> tensor<2x5x8xf32>
  return %0, %1, %2, %3 : tensor<2x3x5x4xf32>, tensor<2x3x5x4xf32>, tensor<2x5x8xf32>, tensor<2x5x8xf32>
}
'''


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(0)
    shapes = [(2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), (5, 7), (2, 5, 8), (8,), (5, 8), (5, 8)]
    inputs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    return inputs, compile_mlir(MODULE)(*inputs)


def test_attention_with_additive_mask(results):
    (q, k, v, m, *_), (out, *_) = results
    t = [torch.from_numpy(a) for a in (q, k, v, m)]
    expected = torch.nn.functional.scaled_dot_product_attention(*t[:3], attn_mask=t[3],
                                                                scale=0.35)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5)


def test_causal_attention_with_longer_keys(results):
    """Sq=5 < Sk=7: query i sees keys j <= i + 2 (the cached-prefix convention)."""
    (q, k, v, *_), (_, out, *_) = results
    scores = torch.from_numpy(q) @ torch.from_numpy(k).transpose(-1, -2) * 0.35
    allowed = torch.ones(5, 7).tril(diagonal=2).bool()
    probs = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    np.testing.assert_allclose(out, (probs @ torch.from_numpy(v)).numpy(), atol=1e-5)


def test_rms_norm(results):
    (*_, x, w, _, _), (_, _, out, _) = results
    xt = torch.from_numpy(x)
    expected = xt * torch.rsqrt(xt.pow(2).mean(-1, keepdim=True) + 1e-6) * torch.from_numpy(w)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-5)


def test_rotary_embedding(results):
    (*_, x, _, c, s), (*_, out) = results
    x1, x2 = x[..., :4], x[..., 4:]
    expected = x * c + np.concatenate([-x2, x1], axis=-1) * s
    np.testing.assert_allclose(out, expected, atol=1e-5)
