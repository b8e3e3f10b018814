"""Static int8 quantization (`ember.quant.Int8(mode="static", calibration=...)`): the three
calibration methods' ranges, accuracy of the example MLP against fp32 PyTorch, the filter over
Linear and Conv2d modules, and the settings a user can get wrong."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
import ember.quant
from test_quantize_pt2e import _graph_ops

static = pytest.importorskip("ember.frontend.static_quantization")


def _cosine(a, b) -> float:
    a, b = torch.as_tensor(a).flatten().double(), torch.as_tensor(b).flatten().double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


# -- calibration ranges ------------------------------------------------------------------------
def _observer(method: str, data: torch.Tensor):
    observer = static._range_search_observer(method, 99.9)(eps=2 ** -12)
    observer(data)
    scale, zero_point = observer.calculate_qparams()
    lo = float((0 - zero_point) * scale)
    return lo, lo + 255 * float(scale)


def test_percentile_and_entropy_clip_an_outlier():
    torch.manual_seed(0)
    data = torch.randn(100_000)
    data[0] = 60.0                                   # one activation far out
    for method in ("percentile", "entropy"):
        lo, hi = _observer(method, data)
        assert -6 < lo < -2 and 2 < hi < 12, (method, lo, hi)


def test_ranges_always_hold_zero():
    """Post-ReLU activations (all >= 0): the range starts at 0, so 0 is exact."""
    data = torch.rand(10_000) * 4 + 1
    for method in ("percentile", "entropy"):
        lo, hi = _observer(method, data)
        assert lo == 0.0 and 4 < hi <= 5.01, (method, lo, hi)


def test_percentile_bins_keep_the_central_mass():
    hist = np.ones(1000)
    assert static._percentile_bins(hist, 99.0) == (5, 994)
    assert static._percentile_bins(hist, 100.0) == (0, 999)


# -- end to end --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_mlp_block_accuracy(mlp_block, method):
    torch.manual_seed(1)
    calibration = [torch.randn(64, 512) for _ in range(8)]
    x = torch.randn(256, 512)
    compiled = ember.compile(mlp_block, (x,), quantize=ember.quant.Int8(
        mode="static", calibration=calibration, method=method))
    with torch.no_grad():
        assert _cosine(compiled(x), mlp_block(x)) >= 0.999


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.head = torch.nn.Linear(8 * 8 * 8, 32)
        self.classifier = torch.nn.Linear(32, 10)

    def forward(self, x):
        y = torch.relu(self.conv(x)).flatten(1)
        return self.classifier(torch.relu(self.head(y)))


def test_filter_and_exclude_pick_modules():
    torch.manual_seed(0)
    model, x = Net().eval(), torch.randn(2, 3, 8, 8)

    def quantized(**settings):
        scheme = ember.quant.Int8(mode="static", calibration=[x], **settings)
        return _graph_ops(static.quantize_static(model, (x,), scheme), x)
    everything = quantized(quantize_outputs=True)
    assert (everything["qgemm"], everything["gemm"], everything["conv2d"]) == (3, 0, 0)
    assert quantized(exclude="classifier", quantize_outputs=True)["qgemm"] == 2
    default = quantized()               # the classifier writes the model's output: f32
    assert (default["qgemm"], default["gemm"]) == (2, 1)
    only_conv = quantized(filter="Conv2d")
    assert (only_conv["qgemm"], only_conv["gemm"]) == (1, 2)
    head = quantized(filter=r"^head$")
    assert (head["qgemm"], head["gemm"], head["conv2d"]) == (1, 1, 1)


def test_model_left_as_it_was(mlp_block):
    mlp_block.train()
    try:
        with pytest.warns(UserWarning, match="train"):
            static.quantize_static(mlp_block, (torch.randn(4, 512),), ember.quant.Int8(
                mode="static", calibration=[torch.randn(4, 512)]))
        assert mlp_block.training
    finally:
        mlp_block.eval()


class BiasFree(torch.nn.Module):
    """Post-ReLU inputs (mean far from zero) into layers without a bias: weight rounding
    shifts every output channel by (W~ - W) E[x], which the correction must take out."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.fc = torch.nn.Linear(16, 4, bias=False)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_bias_correction_removes_the_mean_shift():
    torch.manual_seed(0)
    model = BiasFree().eval()
    calibration = [torch.randn(8, 3, 8, 8) + 0.5 for _ in range(4)]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        ref = torch.cat([model(x) for x in calibration])

        def shift(bias_correction):
            scheme = ember.quant.Int8(mode="static", calibration=calibration,
                                      bias_correction=bias_correction, quantize_outputs=True)
            converted = static.quantize_static(model, (calibration[0],), scheme)
            return (torch.cat([converted(x) for x in calibration]) - ref).mean(0).abs().max()
        uncorrected, corrected = shift(False), shift(True)
    # On the calibration inputs the logits' mean error is gone up to rounding of the outputs.
    assert corrected < 1e-5 < uncorrected, (corrected, uncorrected)
    for name, value in model.state_dict().items():        # the user's model is not touched
        assert torch.equal(value, before[name]), name
    assert model.fc.bias is None


def test_bias_correction_keeps_the_benchmark_cnn_argmax():
    """The benchmark CNN's logits lie close together (top-1 and top-2 apart by 2% of their
    spread): without the correction its int8 argmax agreed with fp32 on 82% of inputs."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.models import WORKLOADS
    model = WORKLOADS["cnn"].make_model(8)
    torch.manual_seed(3)
    calibration = [torch.randn(8, 3, 64, 64) for _ in range(4)]
    compiled = ember.compile(model, (calibration[0],), quantize=ember.quant.Int8(
        mode="static", calibration=calibration))
    torch.manual_seed(5)
    x = torch.randn(64, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        out = torch.cat([compiled(x[i:i + 8]) for i in range(0, 64, 8)])
    assert float((out.argmax(1) == ref.argmax(1)).float().mean()) >= 0.9


@pytest.mark.parametrize("settings,message", [
    ({"mode": "static"}, "needs calibration"),
    ({"mode": "static", "calibration": []}, "calibration is empty"),
    ({"calibration": [torch.zeros(1)]}, "calibration is for mode='static'"),
    ({"mode": "static", "calibration": [torch.zeros(1)], "method": "kl"}, "method must be"),
    ({"mode": "static", "calibration": [torch.zeros(1)], "percentile": 20}, "percentile must"),
    ({"mode": "qat"}, "mode must be one of"),
])
def test_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        ember.quant.Int8(**settings)


def test_seven_bit_codes_where_the_dot_product_needs_them(mlp_block, tmp_path):
    """On a vpmaddubsw target (AVX2 without VNNI) static activations get 7-bit codes (as
    FBGEMM's reduce_range), which its int16 pair sums hold exactly; the kernels use it and
    match PyTorch's model quantized the same way within one step."""
    from test_quantize_int8 import HOST, _instructions
    from test_quantize_pt2e import _assert_within_one_step
    torch.manual_seed(2)
    x = torch.randn(32, 512)
    scheme = ember.quant.Int8(mode="static", calibration=[torch.randn(32, 512) for _ in range(4)])
    compiled = ember.compile(mlp_block, (x,), quantize=scheme, target="host:cpu=haswell")
    assert {"vpmaddubsw", "vpmaddwd"} <= _instructions(compiled.save(str(tmp_path / "m")))
    reference = static.quantize_static(mlp_block, (x,), scheme, codes=(0, 127))
    assert _graph_ops(reference, x)["qgemm"] == 2
    if "avx2" not in HOST:
        pytest.skip("compiled and disassembled only: this CPU lacks AVX2")
    with torch.no_grad():
        _assert_within_one_step(compiled(x), reference(x))


class SentenceEmbedder(torch.nn.Module):
    """A Hugging Face BERT (random weights, from a config) with masked mean pooling: a
    sentence-embedding model, as MiniLM-style encoders are used."""

    def __init__(self):
        super().__init__()
        from transformers import BertConfig, BertModel
        self.bert = BertModel(BertConfig(hidden_size=128, num_hidden_layers=4,
                                         num_attention_heads=4, intermediate_size=512,
                                         vocab_size=1000, max_position_embeddings=64))

    def forward(self, ids, mask):
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_sentence_embeddings_keep_their_direction(mode):
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = SentenceEmbedder().eval()

    def batch(n=8, seq=32):
        ids = torch.randint(0, 1000, (n, seq))
        mask = torch.ones(n, seq, dtype=torch.long)
        mask[n // 2:, seq * 3 // 4:] = 0                         # shorter sentences
        return ids, mask
    scheme = ember.quant.Int8() if mode == "dynamic" else \
        ember.quant.Int8(mode="static", calibration=[batch() for _ in range(8)])
    inputs = batch()
    compiled = ember.compile(model, inputs, quantize=scheme)
    with torch.no_grad():
        cosines = torch.nn.functional.cosine_similarity(compiled(*inputs), model(*inputs))
    assert float(cosines.min()) >= 0.99, cosines


@pytest.mark.parametrize("disabled", [(), ("ember-cpu-gemm-kernels",)],
                         ids=["kernels", "reference-bodies"])
def test_conv_net_with_dynamic_batch(disabled):
    """The int8 convolutions read their patches from the padded codes in place (whole words
    of channels: an RGB input's 3 padded to 4), for any batch; the kernels' linalg reference
    bodies agree."""
    from test_quantize_pt2e import _assert_within_one_step
    torch.manual_seed(0)

    class Convs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)              # 3 channels: a word
            self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)    # in place

        def forward(self, x):
            return self.c2(torch.relu(self.c1(x)))
    model, x = Convs().eval(), torch.randn(2, 3, 12, 12)
    scheme = ember.quant.Int8(mode="static", calibration=[torch.randn(4, 3, 12, 12)])
    batch = {"x": {0: torch.export.Dim("batch", max=8)}}
    compiled = ember.compile(model, (x,), quantize=scheme, dynamic_shapes=batch,
                             disabled_passes=disabled)
    reference = static.quantize_static(model, (x,), scheme, dynamic_shapes=batch)
    for n in (1, 5):
        x = torch.randn(n, 3, 12, 12)
        with torch.no_grad():
            _assert_within_one_step(compiled(x), reference(x))


class DownsampleBlock(torch.nn.Module):
    """A ResNet block that halves the resolution: its shortcut is a strided 1x1 conv."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.down = torch.nn.Conv2d(8, 16, 1, stride=2)

    def forward(self, x):
        return torch.relu(self.c2(torch.relu(self.c1(x))) + self.down(x))


def test_downsampling_shortcut_is_calibrated_as_codes(tmp_path):
    """The 1x1 shortcut conv's output, which only the block's add reads, is calibrated and
    quantized (its own scale): the shortcut conv writes codes and the block's second conv adds
    them dequantized; `exclude` of the shortcut keeps it in f32."""
    from test_quantize_pt2e import _assert_within_one_step
    torch.manual_seed(0)
    model, x = DownsampleBlock().eval(), torch.relu(torch.randn(2, 8, 12, 12))
    calibration = [torch.relu(torch.randn(2, 8, 12, 12)) for _ in range(4)]
    compiled = ember.compile(model, (x,), dump_dir=str(tmp_path / "all"),
                             quantize=ember.quant.Int8(mode="static", calibration=calibration))
    graph = (tmp_path / "all" / "00-graph.mlir").read_text()
    assert graph.count('"ember.qgemm"') == 3 and graph.count("residual_scale") == 1
    assert graph.count('"ember.dequantize"') == 0
    reference = static.quantize_static(model, (x,), ember.quant.Int8(
        mode="static", calibration=calibration))
    with torch.no_grad():
        _assert_within_one_step(compiled(x), reference(x))
        assert _cosine(compiled(x), model(x)) >= 0.999
    ember.compile(model, (x,), dump_dir=str(tmp_path / "f32"), quantize=ember.quant.Int8(
        mode="static", calibration=calibration, exclude="down"))
    graph = (tmp_path / "f32" / "00-graph.mlir").read_text()
    assert "residual_scale" not in graph


def test_shortcut_is_written_once_as_codes(tmp_path):
    """A ResNet stem's output feeds the next conv and the block's residual add: static int8
    writes it once, as codes, and the add reads them dequantized in the second conv's epilogue
    (PT2E's X86 quantizer quantizes both inputs of that add too); no f32 copy, no separate
    quantize. The kernels and their linalg reference bodies agree, and fp32's result keeps
    its direction."""
    from test_quantize_pt2e import ResidualBlock, _assert_within_one_step
    torch.manual_seed(0)
    model, x = ResidualBlock().eval(), torch.randn(2, 3, 12, 12)
    scheme = ember.quant.Int8(mode="static", quantize_outputs=True,
                              calibration=[torch.randn(2, 3, 12, 12) for _ in range(4)])
    compiled = ember.compile(model, (x,), quantize=scheme, dump_dir=str(tmp_path))
    graph = (tmp_path / "00-graph.mlir").read_text()
    assert graph.count("residual_scale") == 1 and graph.count('"ember.dequantize"') == 0
    # the input's and the pooled features' quantizes; the stem's moved into its GEMM
    assert graph.count('"ember.quantize"') == 2
    reference_bodies = ember.compile(model, (x,), quantize=scheme,
                                     disabled_passes=("ember-cpu-gemm-kernels",))
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        expected = model(x)
    _assert_within_one_step(compiled(x), reference_bodies(x))
    assert _cosine(compiled(x), expected) >= 0.999


class Classifier(torch.nn.Module):
    """A conv feature extractor and a classifier whose logits reach the output through
    views only."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 6)

    def forward(self, x):
        y = torch.relu(self.conv(torch.relu(self.stem(x)))).mean(dim=(2, 3))
        return self.fc(y).reshape(-1, 2, 3).flatten(1)


def test_output_layers_stay_float_by_default():
    """Static mode leaves the layers whose result is a model output in f32 (seen through
    views); quantize_outputs=True quantizes them too. The layers before still run in int8."""
    torch.manual_seed(0)
    model, x = Classifier().eval(), torch.randn(2, 3, 8, 8)
    exported = torch.export.export(model, (x,)).module()
    assert static.output_layers(exported) == {"fc"}
    calibration = [torch.randn(2, 3, 8, 8) for _ in range(4)]
    default = _graph_ops(static.quantize_static(
        model, (x,), ember.quant.Int8(mode="static", calibration=calibration)), x)
    assert (default["qgemm"], default["gemm"]) == (2, 1)
    everything = _graph_ops(static.quantize_static(model, (x,), ember.quant.Int8(
        mode="static", calibration=calibration, quantize_outputs=True)), x)
    assert (everything["qgemm"], everything["gemm"]) == (3, 0)
    compiled = ember.compile(model, (x,), quantize=ember.quant.Int8(
        mode="static", calibration=calibration))
    with torch.no_grad():
        assert _cosine(compiled(x), model(x)) >= 0.999


@pytest.mark.parametrize("disabled", [(), ("ember-cpu-gemm-kernels",)],
                         ids=["kernels", "reference-bodies"])
def test_float_stem_writes_the_next_layers_codes(disabled, tmp_path):
    """A stem left in f32 (`exclude`) before an int8 conv: after ember-conv-to-gemm its GEMM
    quantizes its results in the epilogue and writes the codes the next conv reads (no f32
    copy, no separate quantize), matching PyTorch's PT2E model within one step."""
    from test_quantize_pt2e import _assert_within_one_step
    torch.manual_seed(0)
    model, x = Classifier().eval(), torch.randn(2, 3, 8, 8)
    scheme = ember.quant.Int8(mode="static", exclude="stem",
                              calibration=[torch.randn(2, 3, 8, 8) for _ in range(4)])
    compiled = ember.compile(model, (x,), quantize=scheme, dump_dir=str(tmp_path),
                             disabled_passes=disabled)
    graph = (tmp_path / "00-graph.mlir").read_text()
    assert graph.count('"ember.conv2d"') == 1 and graph.count('"ember.quantize"') == 1
    lowered = (tmp_path / "01-lower.mlir").read_text()
    stem = next(line for line in lowered.splitlines() if "call @ember_gemm" in line and
                "x3xf32>" in line)
    assert stem.rstrip().endswith("xi8>"), stem             # the stem's kernel writes codes
    reference = static.quantize_static(model, (x,), scheme)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        _assert_within_one_step(compiled(x), reference(x))
