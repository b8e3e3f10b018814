"""`ember.quant.report`: per-layer SQNR finds the layer that loses the most, excluding it
recovers the accuracy, static models report their convolutions too, and the report's own
numbers agree with the compiled model."""
from __future__ import annotations

import math

import pytest
import torch

import ember
import ember.quant
from ember.quant.report import sqnr_db


class Outlier(torch.nn.Module):
    """fc2 reads a hidden vector whose channel 0 is 10^4 times the others (and weighs it 0):
    per-row int8 quantization spends its whole range on that channel and rounds the rest of
    the row away, so fc2 alone loses nearly all of its signal."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(64, 96), torch.nn.Linear(96, 32)
        with torch.no_grad():
            self.fc2.weight[:, 0] = 0

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        scale = torch.ones(96)
        scale[0] = 1e4
        return self.fc2(h * scale)


def test_sqnr():
    assert sqnr_db([1.0, 2.0], [1.0, 2.0]) == math.inf
    assert sqnr_db([10.0], [9.0]) == pytest.approx(20.0)


def test_worst_layer_first_and_excluding_it_recovers_accuracy():
    torch.manual_seed(0)
    model, x = Outlier().eval(), torch.randn(16, 64)
    everything = ember.quant.report(model, ember.compile(model, (x,), quantize=ember.quant.Int8()),
                                    (x,))
    assert [layer.path for layer in everything.layers] == ["fc2", "fc1"]
    assert everything.layers[0].sqnr_db < 10 < 30 < everything.layers[1].sqnr_db
    assert "fc2" in str(everything).splitlines()[1]
    without = ember.quant.report(model, ember.compile(
        model, (x,), quantize=ember.quant.Int8(exclude="fc2")), (x,))
    assert [layer.path for layer in without.layers] == ["fc1"]
    assert without.output_sqnr_db > everything.output_sqnr_db + 10
    assert without.cosine > 0.999


def test_report_matches_the_compiled_model(mlp_block):
    """With one quantized layer, the layer's SQNR is the model's (up to the fp32 rest)."""
    x = torch.randn(32, 512)
    compiled = ember.compile(mlp_block, (x,), quantize=ember.quant.Int8(filter="fc1"))
    result = ember.quant.report(mlp_block, compiled, (x,))
    assert len(result.layers) == 1 and result.layers[0].kind == "Linear"
    with torch.no_grad():
        error = float((compiled(x) - mlp_block(x)).abs().max())
    assert result.max_abs_error == pytest.approx(error, rel=1e-5)


def test_static_model_reports_convolutions():
    """A conv followed by BatchNorm: PT2E folds the norm into the int8 weights, so the layer
    is compared with the folded float conv (against the conv's own output, without the norm,
    every layer of the benchmark CNN read 7-11 dB while the model kept 43 dB)."""
    pytest.importorskip("torchao")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8 * 8 * 8, 10)

        def forward(self, x):
            return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))
    torch.manual_seed(0)
    model = Net().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.2, 3.0)
        model.bn.weight.uniform_(0.2, 4.0)
    x, calibration = torch.randn(4, 3, 8, 8), [torch.randn(4, 3, 8, 8) for _ in range(4)]
    compiled = ember.compile(model, (x,), quantize=ember.quant.Int8(
        mode="static", calibration=calibration, quantize_outputs=True))
    result = ember.quant.report(model, compiled, (x,))
    assert sorted((layer.path, layer.kind) for layer in result.layers) == \
        [("conv", "Conv2d"), ("fc", "Linear")]
    assert all(25 < layer.sqnr_db < math.inf for layer in result.layers), str(result)
    assert result.cosine > 0.99 and result.float_layers == []
    # by default the classifier, whose result is the model's output, stays f32: the report
    # says so
    compiled = ember.compile(model, (x,), quantize=ember.quant.Int8(
        mode="static", calibration=calibration))
    result = ember.quant.report(model, compiled, (x,))
    assert [layer.path for layer in result.layers] == ["conv"]
    assert result.float_layers == ["fc"] and "kept in floating point: fc" in str(result)


def test_needs_a_quantized_model(mlp_block):
    x = torch.randn(2, 512)
    with pytest.raises(ValueError, match="compiled with quantize="):
        ember.quant.report(mlp_block, ember.compile(mlp_block, (x,)), (x,))
