"""Implicit precision (`ember.compile(..., precision="bf16"|"fp16", precision_filter=...)`): an
fp32 model whose chosen Linear layers run from 16-bit weights, activations and sums in f32.
The BERT-style encoder keeps cosine >= 0.999 to fp32 with half the weights file; the filter
picks layers; a bad precision is refused."""
from __future__ import annotations

import os
import sys

import pytest
import torch

import ember
from ember.compiler import CompileOptions, resolve_options

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.models import WORKLOADS  # noqa: E402


def _cosine(a, b) -> float:
    a, b = torch.as_tensor(a).flatten().double(), torch.as_tensor(b).flatten().double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def _weights_bytes(compiled, path) -> int:
    return os.path.getsize(os.path.join(compiled.save(str(path)), "weights.safetensors"))


@pytest.fixture(scope="module")
def encoder():
    w = WORKLOADS["bert"]
    return w.make_model(2), w.make_inputs(2)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_encoder_keeps_its_direction_with_half_the_weights(encoder, precision, tmp_path):
    model, inputs = encoder
    fp32 = ember.compile(model, inputs)
    half = ember.compile(model, inputs, precision=precision)
    with torch.no_grad():
        expected = model(*inputs)
    assert _cosine(half(*inputs), expected) >= 0.999
    ratio = _weights_bytes(half, tmp_path / "half") / _weights_bytes(fp32, tmp_path / "fp32")
    assert 0.49 <= ratio <= 0.52, ratio      # the Linear weights halve; norms' stay f32


def test_filter_chooses_the_layers(encoder, tmp_path):
    model, inputs = encoder
    everything = ember.compile(model, inputs, precision="bf16")
    first = ember.compile(model, inputs, precision="bf16", precision_filter=r"^layers\.0\.")
    kept = ember.compile(model, inputs, precision="bf16", precision_exclude="Linear")
    sizes = [_weights_bytes(c, tmp_path / name) for c, name in
             ((everything, "all"), (first, "first"), (kept, "none"))]
    assert sizes[0] < sizes[1] < sizes[2]
    with torch.no_grad():
        expected = model(*inputs)
    assert _cosine(first(*inputs), expected) >= 0.9999


def test_bad_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be"):
        resolve_options(CompileOptions(), {"precision": "fp8"})
