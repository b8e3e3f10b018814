"""Models quantized with PT2E (torchao's `prepare_pt2e` / `convert_pt2e`, X86InductorQuantizer):
ember imports their quantize/dequantize ops, folds each dequantize -> Linear into an int8 GEMM
on the codes, and matches PyTorch's converted model within one quantization step of the
output, on the host's dot product and on the portable one (the full-range codes of static
quantization cannot use vpmaddubsw)."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

import ember
from ember.compiler import compile_to_stage
from ember.frontend import import_model

pt2e = pytest.importorskip("torchao.quantization.pt2e.quantize_pt2e")
x86 = pytest.importorskip("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer")


def _quantized(model: torch.nn.Module, example: torch.Tensor, calibration=32, quantizer=None):
    """`model` through X86InductorQuantizer's static per-tensor activations and per-channel
    weights (or through `quantizer`), calibrated on `calibration` random batches like
    `example`."""
    torch.manual_seed(1)
    if quantizer is None:
        quantizer = x86.X86InductorQuantizer()
        quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = pt2e.prepare_pt2e(torch.export.export(model.eval(), (example,)).module(),
                                 quantizer)
    with torch.no_grad():
        for _ in range(calibration):
            prepared(torch.randn_like(example))
    return pt2e.convert_pt2e(prepared)


def _assert_within_one_step(actual, expected):
    """|ember - PyTorch| <= one step of the output at u8 resolution ((max - min) / 255): the
    two differ by float rounding and, where an activation lies on a rounding boundary, by one
    code of it."""
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    step = float(expected.max() - expected.min()) / 255
    worst = float((actual - expected).abs().max())
    assert worst <= step, f"max |ember - convert_pt2e| = {worst:.3g} exceeds one step {step:.3g}"


def _graph_ops(model, example) -> dict:
    """How many of each ember op the graph stage leaves."""
    imported = import_model(model, (example,))
    text = str(compile_to_stage(imported.module_text, "graph", weights=imported.weights))
    ops = {op: len(re.findall(rf'"ember\.{op}"', text))
           for op in ("qgemm", "gemm", "conv2d", "quantize", "dequantize")}
    ops["residual codes"] = len(re.findall("residual_scale", text))
    return ops


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (torch.nn.Linear(96, 256), torch.nn.Linear(256, 70),
                                        torch.nn.Linear(70, 10))

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        y = torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc(y.flatten(1))


class ResidualBlock(torch.nn.Module):
    """conv -> ReLU -> conv, + the input, ReLU: a ResNet BasicBlock (without BatchNorm)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c1, self.c2 = (torch.nn.Conv2d(16, 16, 3, padding=1) for _ in range(2))
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(self.c2(torch.relu(self.c1(x))) + x)
        return self.fc(y.mean(dim=(2, 3)))


class DownsamplingBlock(torch.nn.Module):
    """A stem and a ResNet BasicBlock that halves the image, its shortcut a 1x1 stride-2
    convolution: the stem's output is read padded (3x3 conv) and unpadded (the shortcut)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c1 = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.c2 = torch.nn.Conv2d(32, 32, 3, padding=1)
        self.down = torch.nn.Conv2d(16, 32, 1, stride=2)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        return torch.relu(self.c2(torch.relu(self.c1(x))) + self.down(x))


class DepthwiseBlock(torch.nn.Module):
    """A MobileNet block: 1x1 expansion, ReLU, 3x3 depthwise (stride 2), ReLU, 1x1 projection."""

    def __init__(self):
        super().__init__()
        self.expand = torch.nn.Conv2d(8, 32, 1)
        self.depthwise = torch.nn.Conv2d(32, 32, 3, stride=2, padding=1, groups=32)
        self.project = torch.nn.Conv2d(32, 16, 1)

    def forward(self, x):
        return self.project(torch.relu(self.depthwise(torch.relu(self.expand(x)))))


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    example = torch.randn(16, 96)
    return _quantized(Mlp(), example), example


def test_every_linear_becomes_an_int8_gemm(mlp):
    model, example = mlp
    ops = _graph_ops(model, example)
    # Three int8 GEMMs, the first two writing the next one's codes themselves (requantized in
    # their epilogues): only the input's quantize is left, no dequantize, no fp32 GEMM.
    assert ops == {"qgemm": 3, "gemm": 0, "conv2d": 0, "quantize": 1, "dequantize": 0,
                   "residual codes": 0}


@pytest.mark.parametrize("target", ["host", "host:cpu=haswell", "host:cpu=x86-64"])
def test_mlp_matches_convert_pt2e(mlp, target):
    model, example = mlp
    compiled = ember.compile(model, (example,), target=target)
    for _ in range(3):
        x = torch.randn_like(example) * 1.5     # past the calibrated range too: codes clamp
        with torch.no_grad():
            _assert_within_one_step(compiled(x), model(x))


def test_weights_are_stored_as_int8(mlp, tmp_path):
    from safetensors.numpy import load_file
    model, example = mlp
    artifact = ember.compile(model, (example,)).save(str(tmp_path / "m.ember"))
    weights = load_file(os.path.join(artifact, "weights.safetensors"))
    matrices = {name: a.dtype for name, a in weights.items() if a.ndim >= 2}
    assert matrices and all(dtype == np.int32 for dtype in matrices.values()), matrices  # words


@pytest.mark.parametrize("target", ["host", "host:cpu=x86-64"])
def test_conv_net_matches_convert_pt2e(target):
    """The conv (3x3, padded: the zero point pads its codes) and the Linear both become int8
    GEMMs; the NCHW -> NHWC transpose moves onto the codes."""
    torch.manual_seed(0)
    example = torch.randn(4, 3, 16, 16)
    model = _quantized(ConvNet(), example)
    ops = _graph_ops(model, example)
    assert ops["qgemm"] == 2 and ops["conv2d"] == 0 and ops["dequantize"] == 0, ops
    compiled = ember.compile(model, (example,), target=target)
    for _ in range(2):
        x = torch.randn_like(example)
        with torch.no_grad():
            _assert_within_one_step(compiled(x), model(x))


@pytest.mark.parametrize("channels,kernel,stride,dilation,size", [
    (48, 3, 1, 1, 13),      # a filter row is a 144-byte run (64 + 64 + 16), 13 x 13 outputs
    (80, 3, 2, 1, 11),      # a tap is 80 bytes (64 + 16), strided
    (8, 5, 1, 2, 12),       # dilated: tap by tap
    (64, 1, 2, 1, 9),       # the downsampling 1x1 of a ResNet block
    (3, 3, 1, 1, 16),       # an RGB image: each tap's 3 channels padded to a word
    (1, 5, 2, 1, 11),       # one channel, strided
    (6, 3, 2, 1, 10),       # two words a tap, the second half padding
    (32, 3, 1, 1, 16),      # AMX reads these A tiles in place: 16-pixel rows, 12-word steps
    (64, 3, 2, 1, 32),      # strided, 16-word steps, three images of 16 x 16 outputs
    (32, 1, 2, 1, 31),      # a 1x1 downsampling, 8-word steps, odd input width
    (20, 3, 1, 1, 48),      # 15 words a filter row: 15-word steps, 48-pixel output rows
])
@pytest.mark.parametrize("target", ["host", "host:cpu=icelake-server"])
def test_convolution_shapes_match_convert_pt2e(channels, kernel, stride, dilation, size,
                                              target):
    """int8 convolutions whose patch rows the kernel gathers or, on AMX where output rows are
    whole 16-row tiles, reads in place (AMX where the host has it, an x86 target without AMX
    beside it): runs longer and shorter than 64 bytes, strides, dilation, row counts that
    leave tail tiles, channels that are no whole words."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(channels, 32, kernel, stride, padding=kernel // 2 * dilation,
                           dilation=dilation)
    example = torch.randn(3, channels, size, size)
    model = _quantized(conv, example, calibration=4)
    compiled = ember.compile(model, (example,), target=target)
    x = torch.randn_like(example)
    with torch.no_grad():
        _assert_within_one_step(compiled(x), model(x))


@pytest.mark.parametrize("target", ["host", "host:cpu=x86-64"])
def test_depthwise_block_matches_convert_pt2e(target):
    """The depthwise conv becomes ember.qdepthwise_conv2d on the expansion's codes and writes
    the projection's codes itself: no dequantize, no fp32 conv is left."""
    torch.manual_seed(0)
    example = torch.randn(2, 8, 13, 13)
    model = _quantized(DepthwiseBlock(), example)
    imported = import_model(model, (example,))
    text = str(compile_to_stage(imported.module_text, "graph", weights=imported.weights))
    assert len(re.findall(r'"ember\.qdepthwise_conv2d"', text)) == 1, text
    ops = _graph_ops(model, example)
    assert (ops["qgemm"], ops["conv2d"], ops["dequantize"]) == (2, 0, 0), ops
    compiled = ember.compile(model, (example,), target=target)
    for _ in range(2):
        x = torch.randn_like(example)
        with torch.no_grad():
            _assert_within_one_step(compiled(x), model(x))


@pytest.mark.parametrize("net", ["mlp", "conv"])
@pytest.mark.parametrize("target", ["host", "host:cpu=x86-64"])
def test_signed_activation_codes_match_convert_pt2e(net, target):
    """A quantizer with signed int8 activations (zero point 0, codes -128..127, as XNNPACK's;
    torchao's ArmInductorQuantizer here, XNNPACKQuantizer having moved to executorch): every
    Linear and conv still becomes an int8 GEMM on the i8 codes, within one step."""
    arm = pytest.importorskip("torchao.quantization.pt2e.quantizer.arm_inductor_quantizer")
    torch.manual_seed(0)
    model, example = (Mlp(), torch.randn(16, 96)) if net == "mlp" else \
        (ConvNet(), torch.randn(4, 3, 16, 16))
    quantizer = arm.ArmInductorQuantizer()
    quantizer.set_global(arm.get_default_arm_inductor_quantization_config())
    model = _quantized(model, example, calibration=8, quantizer=quantizer)
    ops = _graph_ops(model, example)
    assert ops["qgemm"] == (3 if net == "mlp" else 2) and ops["dequantize"] == 0, ops
    compiled = ember.compile(model, (example,), target=target)
    x = torch.randn_like(example)
    with torch.no_grad():
        _assert_within_one_step(compiled(x), model(x))


@pytest.mark.parametrize("target", ["host", "host:cpu=x86-64"])
def test_convolutions_write_their_padded_outputs(target):
    """Each convolution whose result the next one reads padded writes the padded tensor's
    interior itself (ember-kernels-write-padding), and the shortcut's 1x1 stride-2 kernel
    reads its patches there: on a VNNI target (the IR checked), no activation is copied into
    a padded buffer. (Without VNNI the shortcut reads the stem's codes re-encoded, so that
    one result keeps its copy.) Within one step on both."""
    torch.manual_seed(0)
    example = torch.randn(2, 3, 32, 32)
    model = _quantized(DownsamplingBlock(), example)
    imported = import_model(model, (example,))
    text = str(compile_to_stage(imported.module_text, "bufferize",
                                target="host:cpu=icelake-server", weights=imported.weights))
    main = text[text.index("func.func @main"):]
    main = main[:main.index("\n  }\n")]
    # the stem's and c1's results, the shortcut's patches
    assert re.findall(r"(out_padding|patch_origin) = array<i64: ([\d, ]*)>", text) == [
        ("out_padding", "32, 32, 1, 1, 34, 34"), ("patch_origin", "1, 1, 16, 16"),
        ("out_padding", "16, 16, 1, 1, 18, 18")], text
    copies = re.findall(r"memref.copy .*", main)          # the 3-channel image's only
    assert len(copies) == 1 and "memref<2x32x32x3xi8>" in copies[0], copies
    compiled = ember.compile(model, (example,), target=target)
    for _ in range(2):
        x = torch.randn_like(example)
        with torch.no_grad():
            _assert_within_one_step(compiled(x), model(x))


@pytest.mark.parametrize("target", ["host", "host:cpu=x86-64"])
def test_residual_block_matches_convert_pt2e(target):
    """The block's closing ReLU runs after the residual inside the int8 GEMM, which then
    writes the next layer's codes itself; the residual, which the quantizer reads from the
    input's codes, reaches that GEMM as the codes (residual_scale), no f32 copy of them."""
    torch.manual_seed(0)
    example = torch.randn(2, 3, 12, 12)
    model = _quantized(ResidualBlock(), example)
    ops = _graph_ops(model, example)
    assert (ops["qgemm"], ops["conv2d"], ops["dequantize"], ops["gemm"]) == (4, 0, 0, 0), ops
    assert ops["residual codes"] == 1, ops
    compiled = ember.compile(model, (example,), target=target)
    for _ in range(2):
        x = torch.randn_like(example)
        with torch.no_grad():
            _assert_within_one_step(compiled(x), model(x))
