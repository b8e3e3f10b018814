"""int8 dynamic quantization end to end (`ember.quant.Int8`): bit-exact against the numpy
reference of ember.quant.schemes on every x86 dot product and on AMX tiles (run where this CPU
has it, else
compiled and disassembled), shapes and epilogues, the filter, artifact size, accuracy of the
example MLP and a BERT-style encoder against fp32 PyTorch, and the errors a user can make."""
from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest
import torch

import ember
import ember.quant
from ember.compiler import CompileOptions, compile_to_stage
from ember.dialect.enums import INT8_ENCODINGS
from ember.frontend import import_model
from ember.kit.packed_panels import int8_words
from ember.quant.schemes import ENCODINGS, encoding, quantize_weight, reference_qgemm
from ember.transforms.quantize import module_path
from compare import assert_close
from test_transformer import Encoder, _inputs

INT8 = ember.quant.Int8()


def _host_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            return set(re.search(r"^flags\s*:(.*)$", f.read(), re.M).group(1).split())
    except (OSError, AttributeError):
        return set()


HOST = _host_flags()
#: (target, activation encoding, instructions in the kernel, /proc/cpuinfo flags it needs).
DOT_PRODUCTS = [
    ("host:cpu=sapphirerapids", "u8", {"tdpbusd"}, {"amx_int8", "amx_tile", "avx512bw"}),
    ("host:cpu=cascadelake", "u8", {"vpdpbusd"}, {"avx512_vnni", "avx512bw"}),
    ("host:cpu=alderlake", "u8", {"vpdpbusd"}, {"avx_vnni"}),
    ("host:cpu=skylake-avx512", "u7", {"vpmaddubsw", "vpmaddwd"}, {"avx512bw"}),
    ("host:cpu=haswell", "u7", {"vpmaddubsw", "vpmaddwd"}, {"avx2"}),
    ("host:cpu=x86-64", "s8", set(), set()),
]


class Block(torch.nn.Module):
    """Linear -> ReLU -> Linear + residual: a bias, an activation and a residual epilogue,
    K = 70 (not a multiple of 4) and N = 45 (not a multiple of any panel). ReLU, not GELU:
    it is exact, so the reference can be bit-exact (the encoder test covers GELU)."""

    def __init__(self, k=70, n=45):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(k, n), torch.nn.Linear(n, k)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


def _reference(block: Block, x: np.ndarray, enc) -> np.ndarray:
    """What ember computes: each Linear through reference_qgemm, epilogues in f32."""
    def linear(fc, a):
        q, s = quantize_weight(fc.weight.detach().numpy().T)
        return reference_qgemm(a, q, s, enc) + fc.bias.detach().numpy()
    h = np.maximum(linear(block.fc1, x), 0)
    return x + linear(block.fc2, h)


@pytest.fixture(scope="module")
def block():
    torch.manual_seed(0)
    return Block().eval()


# -- the number formats ------------------------------------------------------------------------
def test_encodings_are_the_dialects():
    assert tuple(ENCODINGS) == INT8_ENCODINGS
    for enc in ENCODINGS.values():   # every code fits a byte of the encoding's signedness
        lo, hi = enc.zero_point - enc.qmax, enc.zero_point + enc.qmax
        assert (-127 <= lo and hi <= 127) if enc.signed else (0 <= lo and hi <= 255)
    # u7 exists for vpmaddubsw: two products and their sum stay inside int16.
    u7 = encoding("u7")
    assert 2 * (u7.zero_point + u7.qmax) * 127 <= 32767


def test_weight_quantization_is_per_channel_and_symmetric():
    w = np.random.default_rng(0).standard_normal((33, 7)).astype(np.float32)
    w[:, 3] = 0
    q, s = quantize_weight(w)
    assert q.dtype == np.int8 and s.shape == (7,) and np.abs(q).max() == 127
    assert s[3] == 1 and not q[:, 3].any()
    np.testing.assert_allclose(q * s, w, atol=float(s.max()) / 2 + 1e-7)


def test_words_hold_four_k_values_per_column():
    q = np.random.default_rng(1).integers(-127, 128, (7, 5)).astype(np.int8)
    words = int8_words(q)
    assert words.shape == (2, 5) and words.dtype == np.int32
    as_bytes = words.view(np.int8).reshape(2, 5, 4)
    for k in range(7):
        np.testing.assert_array_equal(as_bytes[k // 4, :, k % 4], q[k])
    assert not as_bytes[1, :, 3].any()           # k = 7 is padding


# -- the kernels -------------------------------------------------------------------------------
def _instructions(artifact: str) -> set:
    text = subprocess.run(["objdump", "-d", os.path.join(artifact, "model.so")],
                          capture_output=True, text=True, check=True).stdout
    return {word for word in ("vpdpbusd", "vpmaddubsw", "vpmaddwd", "tdpbusd", "tdpbssd")
            if word in text}


@pytest.mark.parametrize("target,enc,instructions,flags", DOT_PRODUCTS,
                         ids=[t[0].split("=")[1] for t in DOT_PRODUCTS])
def test_dot_product_is_bit_exact(block, target, enc, instructions, flags, tmp_path):
    x = torch.randn(13, 70)
    compiled = ember.compile(block, (x,), quantize=INT8, target=target)
    artifact = compiled.save(str(tmp_path / "m.ember"))
    assert _instructions(artifact) == instructions
    if not flags <= HOST:
        pytest.skip(f"compiled and disassembled only: this CPU lacks {sorted(flags - HOST)}")
    expected = _reference(block, x.numpy(), encoding(enc))
    np.testing.assert_array_equal(compiled(x).numpy(), expected)


def test_artifacts_check_for_the_instructions_they_use():
    """An artifact built for another x86 CPU refuses to run (CPU_MISMATCH) where its vector,
    VNNI or AMX instructions are missing instead of dying of SIGILL; AMX also needs the tile
    state Linux grants."""
    from ember.targets import get_target
    amx = get_target("host:cpu=sapphirerapids").cpu_check()
    assert '__builtin_cpu_supports("amx-int8")' in amx and "0x1022" in amx
    assert '__builtin_cpu_supports("avx512vnni")' in get_target("host:cpu=cascadelake").cpu_check()
    assert "amx" not in get_target("host:cpu=cascadelake").cpu_check()
    assert get_target("host:cpu=x86-64").cpu_check() == ""


def test_reference_kernel_body_is_bit_exact(block):
    """Without ember-cpu-gemm-kernels the kernel function keeps its linalg reference body."""
    x = torch.randn(6, 70)
    compiled = ember.compile(block, (x,), quantize=INT8, target="host:cpu=haswell",
                             disabled_passes=("ember-cpu-gemm-kernels",))
    expected = _reference(block, x.numpy(), encoding("u7"))
    np.testing.assert_array_equal(compiled(x).numpy(), expected)


@pytest.mark.parametrize("target,enc,flags", [("host:cpu=x86-64", "s8", set()),
                                               ("host:cpu=sapphirerapids", "u8",
                                                {"amx_int8", "amx_tile", "avx512bw"})],
                         ids=["portable", "amx"])
def test_dynamic_batch_and_sequence(block, target, enc, flags):
    """Rows in every tail piece of the tile (AMX: 16 rows, then 8, 4, 2, 1)."""
    if not flags <= HOST:
        pytest.skip(f"this CPU lacks {sorted(flags - HOST)}")
    batch, seq = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=256)
    compiled = ember.compile(block, (torch.randn(2, 16, 70),), quantize=INT8, target=target,
                             dynamic_shapes={"x": {0: batch, 1: seq}})
    for shape in [(1, 1, 70), (3, 37, 70), (64, 5, 70), (1, 31, 70)]:
        x = torch.randn(shape)
        expected = _reference(block, x.reshape(-1, 70).numpy(), encoding(enc))
        np.testing.assert_array_equal(compiled(x).numpy(), expected.reshape(shape))


def test_zero_rows_and_extremes(block):
    x = torch.randn(9, 70)
    x[2] = 0
    x[5] *= 1e6
    compiled = ember.compile(block, (x,), quantize=INT8, target="host:cpu=x86-64")
    np.testing.assert_array_equal(compiled(x).numpy(),
                                  _reference(block, x.numpy(), encoding("s8")))


# -- what is quantized -------------------------------------------------------------------------
def _quantized_weights(model, inputs, **quantize) -> list:
    imported = import_model(model, inputs)
    module = compile_to_stage(imported.module_text, "graph", weights=imported.weights,
                              options=CompileOptions(quantize=ember.quant.Int8(**quantize)))
    return sorted(module_path(name) for name in
                  re.findall(r'name = "([^"]+)\.int8"', str(module)))


def test_filter_and_exclude_by_module_path_and_kind():
    torch.manual_seed(0)
    model, inputs = Encoder(layers=2).eval(), _inputs(2, 8)
    everything = _quantized_weights(model, inputs)
    # Q/K/V are merged into one GEMM first (per-channel quantization of the merged weight is
    # that of each part): four GEMMs per layer.
    assert everything == sorted(f"layers.{i}.{n}" for i in range(2) for n in "f1 f2 o q".split())
    layer0 = _quantized_weights(model, inputs, filter=r"layers\.0\.")
    assert layer0 == [n for n in everything if n.startswith("layers.0.")]
    no_ffn = _quantized_weights(model, inputs, exclude=r"\.f[12]$")
    assert no_ffn == [n for n in everything if not re.search(r"f[12]$", n)]
    assert _quantized_weights(model, inputs, filter="Linear") == everything
    assert _quantized_weights(model, inputs, filter="Conv2d") == []


def test_weights_file_is_a_third_of_fp32(mlp_block, tmp_path):
    x = torch.randn(4, 512)
    fp32 = ember.compile(mlp_block, (x,)).save(str(tmp_path / "fp32"))
    int8 = ember.compile(mlp_block, (x,), quantize=INT8).save(str(tmp_path / "int8"))

    def size(artifact):
        return os.path.getsize(os.path.join(artifact, "weights.safetensors"))
    assert size(int8) <= 0.3 * size(fp32)


# -- accuracy ----------------------------------------------------------------------------------
def _cosine(a, b) -> float:
    a, b = torch.as_tensor(a).flatten().double(), torch.as_tensor(b).flatten().double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def test_mlp_block_accuracy(mlp_block):
    x = torch.randn(256, 512)
    compiled = ember.compile(mlp_block, (x,), quantize=INT8)
    with torch.no_grad():
        assert _cosine(compiled(x), mlp_block(x)) >= 0.999


def test_encoder_accuracy():
    torch.manual_seed(0)
    model = Encoder(layers=4).eval()
    inputs = _inputs(8, 32)
    compiled = ember.compile(model, inputs, quantize=INT8)
    with torch.no_grad():
        assert _cosine(compiled(*inputs), model(*inputs)) >= 0.999


class MaskedAttention(torch.nn.Module):
    """Four heads of attention on projections, with a float mask (a fully masked query row
    among -inf entries) or causal. The heads are split and merged with transposes, which
    ember folds into the attention (layout "bshd": each head read in place)."""

    def __init__(self, causal: bool, head_dim: int = 16):
        super().__init__()
        self.causal, self.head_dim = causal, head_dim
        self.qkv = torch.nn.Linear(64, 3 * 4 * head_dim)

    def forward(self, x, mask):
        b, s, _ = x.shape
        q, k, v = (t.reshape(b, s, 4, self.head_dim).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, -1))
        y = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=None if self.causal else mask, is_causal=self.causal)
        return y.transpose(1, 2).reshape(b, s, 4 * self.head_dim)


@pytest.mark.parametrize("mask_kind,seq,head_dim", [("rows", 40, 16), ("causal", 40, 16),
                                                    ("key-padding", 37, 20)],
                         ids=["mask", "causal", "key-padding-odd-sizes"])
def test_int8_attention(mask_kind, seq, head_dim):
    """Only the attention's products in int8 (filter="Attention"): they run on the int8
    kernel (q and probabilities per row, k per key, v per channel) and keep the float
    result's direction; a fully masked query still gets zeros. Odd sizes: keys not a
    multiple of 4 (V's words padded) and channels not a multiple of the kernel's panel, with
    a padding mask shared by all queries (the scores kernel's bias)."""
    torch.manual_seed(0)
    model = MaskedAttention(mask_kind == "causal", head_dim).eval()
    x = torch.randn(2, seq, 64)
    if mask_kind == "key-padding":
        mask = torch.zeros(2, 1, 1, seq)
        mask[1, ..., 30:] = float("-inf")
    else:
        mask = torch.zeros(seq, seq)
        mask[:, 30:] = float("-inf")
        mask[5] = float("-inf")
    compiled = ember.compile(model, (x, mask), quantize=ember.quant.Int8(filter="Attention"))
    imported = import_model(model, (x, mask))
    lowered = str(compile_to_stage(imported.module_text, "lower", weights=imported.weights,
                                   quantize=ember.quant.Int8(filter="Attention")))
    kernels = re.findall(r"ember.gemm_kernel = \{[^}]*\}", lowered)
    assert sum('int8 = "' in spec for spec in kernels) == 2, kernels   # the Linear stays f32
    scores_bias = any('int8 = "' in spec and "bias = true" in spec for spec in kernels)
    assert scores_bias == (mask_kind == "key-padding"), kernels
    for _ in range(2):
        x = torch.randn_like(x)
        with torch.no_grad():
            expected, actual = model(x, mask), torch.as_tensor(compiled(x, mask))
        assert _cosine(actual, expected) >= 0.999
        if mask_kind == "rows":
            assert not actual[:, 5].any()                # the fully masked query


class Attention(torch.nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1 / 127 ** 2)


def test_int8_attention_probability_codes():
    """The probabilities' codes are round(exp(s - max) * 255) to within a code's rounding:
    the exp the codes come from (exp_to_codes, 1e-5 relative) loses nothing a code shows.
    Integer q and k rows holding +-127 quantize exactly, so the scores are exact; V = I makes
    the output the dequantized codes, code / (255 * sum), from which the codes come back."""
    rng = np.random.default_rng(0)
    seq = 64

    def exact_rows(shape):
        x = rng.integers(-60, 61, shape).astype(np.float32)
        x[..., 0] = 127                                     # each row's amax: scale 1
        return x
    q, k = exact_rows((1, 2, seq, 16)), exact_rows((1, 2, seq, 16))
    v = np.broadcast_to(np.eye(seq, dtype=np.float32), (1, 2, seq, seq)).copy()
    inputs = tuple(torch.from_numpy(x) for x in (q, k, v))
    compiled = ember.compile(Attention().eval(), inputs, quantize=ember.quant.Int8())
    out = torch.as_tensor(compiled(*inputs)).double().numpy()
    scores = np.einsum("bhqd,bhkd->bhqk", q.astype(np.float64), k.astype(np.float64)) / 127 ** 2
    exps = np.exp(scores - scores.max(-1, keepdims=True))
    codes = out * 255 * exps.sum(-1, keepdims=True)
    assert np.abs(codes - np.round(codes)).max() < 5e-3       # whole codes, read back exactly
    exact = exps * 255
    clear = np.abs(exact - np.floor(exact) - 0.5) > 5e-3      # not at a rounding tie
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np.round(codes)[clear], np.round(exact)[clear])


def test_unquantized_models_are_unchanged(mlp_block):
    x = torch.randn(8, 512)
    with torch.no_grad():
        assert_close(ember.compile(mlp_block, (x,), quantize=None)(x), mlp_block(x))


# -- errors ------------------------------------------------------------------------------------
def test_bad_regular_expression_is_refused():
    with pytest.raises(ValueError, match="filter '\\[' is not a regular expression"):
        ember.quant.Int8(filter="[")


def test_pattern_must_fit_a_pipeline_option():
    with pytest.raises(ValueError, match="may not contain whitespace"):
        ember.quant.Int8(exclude="a b")


def test_quantize_must_be_an_int8_config(mlp_block):
    with pytest.raises(TypeError, match="quantize must be an ember.quant.Int8"):
        ember.compile(mlp_block, (torch.randn(2, 512),), quantize="int8")
