"""Weight-only quantization (`quantize=ember.quant.WeightOnly(bits=8|4, group_size=...)`): the
chosen Linear layers run from int8/int4 codes with per-group scales (and offsets), dequantized
in the GEMM kernel's registers; activations and sums stay f32.

Each compiled model must equal, to f32 rounding, the same PyTorch model whose Linear weights
are replaced by what the codes stand for (ember.quant.low_bit.dequantize): that isolates the
kernels (GEMV rows, GEMM tiles, partial groups, masked panels) from the quantization error,
which is checked separately (cosine to fp32, the per-group rounding bound) with the weights
file 4x and ~7x smaller.
"""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from torch import nn

import ember
import ember.quant
from compare import assert_close
from ember.quant.low_bit import dequantize, quantize_groups

SCHEMES = [ember.quant.WeightOnly(bits=8, group_size=32),
           ember.quant.WeightOnly(bits=8, group_size=64, symmetric=False),
           ember.quant.WeightOnly(bits=4, group_size=32),
           ember.quant.WeightOnly(bits=4, group_size=128, symmetric=True)]


class Mlp(nn.Module):
    """K = 256 (whole groups) then 96 (a partial last group for 64 and 128), N = 40 (a masked
    panel), a GELU epilogue between."""

    def __init__(self):
        super().__init__()
        self.up = nn.Linear(256, 96)
        self.down = nn.Linear(96, 40)

    def forward(self, x):
        return self.down(nn.functional.gelu(self.up(x)))


def dequantized_model(model: nn.Module, scheme, skip=()) -> nn.Module:
    """A copy of `model` whose Linear weights (but the module paths in `skip`) are what
    `scheme`'s codes stand for."""
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for path, module in reference.named_modules():
            if isinstance(module, nn.Linear) and path not in skip:
                w = module.weight.detach().numpy().T
                group = min(scheme.group_size, w.shape[0])
                parts = quantize_groups(w, scheme.bits, group, scheme.symmetric)
                module.weight.copy_(torch.from_numpy(
                    np.ascontiguousarray(dequantize(*parts, scheme.bits, group).T)))
    return reference


def _weights_bytes(compiled, path) -> int:
    return os.path.getsize(os.path.join(compiled.save(str(path)), "weights.safetensors"))


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return Mlp().eval()


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: f"w{s.bits}g{s.group_size}"
                         f"{'s' if s.symmetric else 'a'}")
def test_matches_the_dequantized_model(mlp, scheme):
    """Batch 1-4 (GEMV rows) and 37 (full register tiles plus tails) through one artifact with
    a dynamic batch."""
    batch = torch.export.Dim("batch", min=1, max=64)
    compiled = ember.compile(mlp, (torch.randn(4, 256),), quantize=scheme,
                             dynamic_shapes={"x": {0: batch}})
    reference = dequantized_model(mlp, scheme)
    for rows in (1, 2, 3, 4, 37):
        x = torch.randn(rows, 256)
        with torch.no_grad():
            expected = reference(x)
        assert_close(compiled(x), expected)


def test_three_dimensional_input_and_residual(mlp):
    """A [batch, seq, K] activation (rows collapsed into M) and a fused residual add."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 64)

        def forward(self, x):
            return x + torch.relu(self.fc(x))
    torch.manual_seed(1)
    model, x = Block().eval(), torch.randn(2, 5, 64)
    scheme = ember.quant.WeightOnly(bits=4, group_size=32)
    with torch.no_grad():
        expected = dequantized_model(model, scheme)(x)
    assert_close(ember.compile(model, (x,), quantize=scheme)(x), expected)


@pytest.mark.parametrize("bits, smaller", [(8, 3.5), (4, 5.5)])
def test_weights_shrink_and_keep_their_direction(bits, smaller, tmp_path):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(512, 512), nn.SiLU(), nn.Linear(512, 512)).eval()
    x = torch.randn(1, 512)
    fp32 = ember.compile(model, (x,))
    low = ember.compile(model, (x,), quantize=ember.quant.WeightOnly(bits=bits, group_size=64))
    ratio = _weights_bytes(fp32, tmp_path / "fp32") / _weights_bytes(low, tmp_path / "low")
    assert ratio >= smaller, ratio
    with torch.no_grad():
        expected = model(x)
    cosine = torch.nn.functional.cosine_similarity(low(x).flatten(), expected.flatten(), dim=0)
    assert cosine >= (0.9999 if bits == 8 else 0.995), cosine


def test_filter_and_exclude_choose_the_layers(mlp):
    x = torch.randn(3, 256)
    scheme = ember.quant.WeightOnly(bits=4, group_size=32, exclude="^down$")
    with torch.no_grad():
        expected = dequantized_model(mlp, scheme, skip=("down",))(x)
    assert_close(ember.compile(mlp, (x,), quantize=scheme)(x), expected)


def test_four_bits_with_an_odd_k_stay_f32():
    """4-bit codes are read two k at a time: a layer with an odd K keeps its f32 weight."""
    torch.manual_seed(3)
    model, x = nn.Linear(33, 16).eval(), torch.randn(2, 33)
    with torch.no_grad():
        expected = model(x)
    assert_close(ember.compile(model, (x,), quantize=ember.quant.WeightOnly(bits=4))(x),
                 expected)


def test_report_measures_the_weight_only_layers(mlp):
    x = torch.randn(8, 256)
    scheme = ember.quant.WeightOnly(bits=4, group_size=32)
    compiled = ember.compile(mlp, (x,), quantize=scheme)
    report = ember.quant.report(mlp, compiled, (x,))
    assert sorted(layer.path for layer in report.layers) == ["down", "up"]
    assert all(15 < layer.sqnr_db < 60 for layer in report.layers), str(report)
    assert report.cosine > 0.99


@pytest.mark.parametrize("bits, symmetric", [(8, True), (8, False), (4, True), (4, False)])
def test_codes_round_to_within_half_a_step(bits, symmetric):
    """Every weight is within half its group's step of what its code stands for (the range
    of an asymmetric group includes 0, which stays exact)."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((100, 24)).astype(np.float32)
    w[:, 3] = 0.0
    w[:, 5] = np.abs(w[:, 5])                      # one-sided: the zero point at an end
    codes, scales, offsets = quantize_groups(w, bits, 32, symmetric)
    assert scales.shape == (4, 24) and (offsets is None) == (bits == 8 and symmetric)
    lo, hi = (-128, 127) if bits == 8 else (0, 15)
    q = codes.astype(np.int8 if bits == 8 else np.uint8)
    assert q.min() >= lo and q.max() <= hi
    error = np.abs(dequantize(codes, scales, offsets, bits, 32) - w)
    step = scales[np.arange(100) // 32]
    assert np.all(error <= step * 0.5 + 1e-6)
    assert np.all(dequantize(codes, scales, offsets, bits, 32)[:, 3] == 0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(bits=3), "bits must be 8 or 4"),
    (dict(group_size=33), "group_size must be an even integer"),
    (dict(exclude="a b"), "may not contain whitespace"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ember.quant.WeightOnly(**kwargs)


def _gptq_like(layer: nn.Linear, bits: int, group: int, zeros: bool):
    """Arbitrary codes, scales and zero points for `layer` in the GPTQ/AWQ convention."""
    g = torch.Generator().manual_seed(4)
    n, k = layer.weight.shape
    groups = -(-k // group)
    lo, hi = (-128, 127) if bits == 8 else (0, 15)
    qweight = torch.randint(lo, hi + 1, (n, k), generator=g)
    scales = torch.rand(n, groups, generator=g) * 0.01 + 0.001
    zero = torch.randint(lo, hi + 1, (n, groups), generator=g).float() if zeros else None
    return qweight, scales, zero


def _with_codes(model, path, qweight, scales, zeros, group, bits=4):
    """A copy of `model` whose Linear at `path` has the weight (q - zero) * scale (no zeros:
    0 for int8 codes, 8 for int4)."""
    reference = copy.deepcopy(model)
    rows = torch.arange(qweight.shape[1]) // group
    zero = zeros[:, rows] if zeros is not None else 8.0 if bits == 4 else 0.0
    with torch.no_grad():
        reference.get_submodule(path).weight.copy_((qweight.float() - zero) * scales[:, rows])
    return reference


@pytest.mark.parametrize("bits, zeros", [(4, True), (4, False), (8, False), (8, True)])
def test_user_supplied_codes_are_used_as_given(mlp, bits, zeros, tmp_path):
    """WeightOnly(weights={path: (qweight, scales, zeros)}): that layer computes exactly the
    weight its codes stand for (the others are quantized by ember), and the artifact stores
    the codes it was given."""
    from safetensors import safe_open
    group = 64
    codes = _gptq_like(mlp.up, bits, group, zeros)
    scheme = ember.quant.WeightOnly(bits=bits, group_size=group, weights={"up": codes})
    x = torch.randn(3, 256)
    compiled = ember.compile(mlp, (x,), quantize=scheme)
    reference = dequantized_model(_with_codes(mlp, "up", *codes, group, bits), scheme,
                                  skip=("up",))
    with torch.no_grad():
        expected = reference(x)
    assert_close(compiled(x), expected)
    path = os.path.join(compiled.save(str(tmp_path / "m")), "weights.safetensors")
    with safe_open(path, "np") as f:
        names = list(f.keys())
    assert any(f".w{bits}pg{group}" in name for name in names), names
    assert not any("#" in name for name in names), names      # the inputs were not stored


def test_user_supplied_codes_keep_their_layer_out_of_merges():
    """Q/K/V-like siblings are merged into one GEMM, but not one that has its own codes."""
    class Siblings(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = (nn.Linear(64, 32) for _ in range(3))

        def forward(self, x):
            return self.q(x) * self.k(x) + self.v(x)
    torch.manual_seed(5)
    model, x = Siblings().eval(), torch.randn(2, 64)
    codes = _gptq_like(model.k, 4, 32, True)
    scheme = ember.quant.WeightOnly(bits=4, group_size=32, weights={"k": codes})
    reference = dequantized_model(_with_codes(model, "k", *codes, 32), scheme, skip=("k",))
    with torch.no_grad():
        expected = reference(x)
    assert_close(ember.compile(model, (x,), quantize=scheme)(x), expected)


@pytest.mark.parametrize("path, change, message", [
    ("nowhere", None, "the model has no module 'nowhere'"),
    ("up", "shape", "qweight must have the weight's shape"),
    ("up", "range", "4-bit codes must be integers in \\[0, 15\\]"),
    ("up", "scales", "scales must be \\[96, 4\\]"),
])
def test_bad_user_supplied_codes_are_named(mlp, path, change, message):
    qweight, scales, zeros = _gptq_like(mlp.up, 4, 64, True)
    if change == "shape":
        qweight = qweight[:, :100]
    elif change == "range":
        qweight = qweight + 1
    elif change == "scales":
        scales = scales[:, :2]
    scheme = ember.quant.WeightOnly(bits=4, group_size=64, weights={path: (qweight, scales,
                                                                           zeros)})
    with pytest.raises(ValueError, match=message):
        ember.compile(mlp, (torch.randn(2, 256),), quantize=scheme)
