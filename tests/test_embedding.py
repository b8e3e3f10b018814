"""Embedding and EmbeddingBag: `ember.embedding` looks rows up (a bad index is reported, not a
crash); under `quantize=ember.quant.Int8(...)` (either mode) the tables are stored int8 with one
scale per row and rows are dequantized as they are read, exactly as
ember.quant.schemes.quantize_table states."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import ember
import ember.quant
from compare import assert_close
from ember.runtime.errors import IndexOutOfRangeError
from ember.quant.schemes import quantize_table


class Lookups(torch.nn.Module):
    """A token embedding (padding_idx set) and two bags over one index list: a mean bag with
    a padding index and a sum bag with per-sample weights."""

    def __init__(self):
        super().__init__()
        self.tokens = torch.nn.Embedding(1000, 64, padding_idx=0)
        self.mean_bag = torch.nn.EmbeddingBag(500, 32, mode="mean", padding_idx=3)
        self.sum_bag = torch.nn.EmbeddingBag(300, 32, mode="sum")
        self.fc = torch.nn.Linear(64, 32)

    def forward(self, tokens, bag_indices, offsets, weights):
        return (self.fc(self.tokens(tokens)).mean(1) +
                self.mean_bag(bag_indices, offsets) +
                self.sum_bag(bag_indices, offsets, per_sample_weights=weights))


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 1000, (4, 9), generator=g)
    bag_indices = torch.randint(0, 300, (14,), generator=g)
    bag_indices[2] = 3                         # a padding entry of the mean bag
    offsets = torch.tensor([0, 5, 5, 11])      # bag 1 is empty
    return tokens, bag_indices, offsets, torch.rand(14, generator=g)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Lookups().eval()


def test_float_lookups_match_pytorch(model):
    compiled = ember.compile(model, _inputs(0))
    for seed in (1, 2):
        inputs = _inputs(seed)
        with torch.no_grad():
            assert_close(compiled(*inputs), model(*inputs))


def test_an_index_out_of_range_is_reported(model):
    compiled = ember.compile(model, _inputs(0))
    tokens, *rest = _inputs(1)
    tokens[1, 2] = 1000
    with pytest.raises(IndexOutOfRangeError, match=r"index 1000 is out of bounds for dim 0"):
        compiled(tokens, *rest)


def _with_int8_tables(model) -> torch.nn.Module:
    """A copy of `model` whose tables hold their int8 rows, dequantized."""
    copy = Lookups().eval()
    copy.load_state_dict(model.state_dict())
    with torch.no_grad():
        for table in (copy.tokens, copy.mean_bag, copy.sum_bag):
            codes, scales = quantize_table(table.weight.numpy())
            table.weight.copy_(torch.from_numpy(codes.astype(np.float32) * scales[:, None]))
    return copy


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_tables(model, mode, tmp_path):
    inputs = _inputs(0)
    scheme = ember.quant.Int8(exclude="Linear") if mode == "dynamic" else \
        ember.quant.Int8(mode="static", calibration=[inputs], exclude="Linear")
    compiled = ember.compile(model, inputs, quantize=scheme)
    # Only the tables are quantized (Linear excluded): the result is the float model's on
    # the int8 rows, up to float rounding.
    reference = _with_int8_tables(model)
    for seed in (1, 2):
        x = _inputs(seed)
        with torch.no_grad():
            assert_close(compiled(*x), reference(*x))
    weights = load_file(os.path.join(compiled.save(str(tmp_path / "m")), "weights.safetensors"))
    for name, rows in (("tokens", 1000), ("mean_bag", 500), ("sum_bag", 300)):
        assert weights[f"{name}.weight.int8_rows"].dtype == np.int8
        assert weights[f"{name}.weight.int8_rows_scale"].shape == (rows,)
        assert f"{name}.weight" not in weights           # the f32 table is gone
    layers = {layer.path: layer.kind for layer in
              ember.quant.report(model, compiled, _inputs(1)).layers}
    assert layers == {"tokens": "Embedding", "mean_bag": "Embedding", "sum_bag": "Embedding"}


def test_exclude_keeps_tables_in_float(model, tmp_path):
    compiled = ember.compile(model, _inputs(0),
                             quantize=ember.quant.Int8(exclude="Embedding"))
    weights = load_file(os.path.join(compiled.save(str(tmp_path / "m")), "weights.safetensors"))
    assert weights["tokens.weight"].dtype == np.float32
    assert not any(name.endswith("int8_rows") for name in weights)
    x = _inputs(1)
    with torch.no_grad():
        expected = model(*x)
    cosine = torch.nn.functional.cosine_similarity(torch.as_tensor(compiled(*x)).flatten(),
                                                   expected.flatten(), dim=0)
    assert float(cosine) >= 0.999
