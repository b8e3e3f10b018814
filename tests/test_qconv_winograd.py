"""ember-qconv-winograd: int8 3x3 convs by integer Winograd F(2x2, 3x3) on x86 without VNNI.

The integer transforms are exact, so a model compiled with the pass writes the same bits as
the direct int8 kernel (the pass disabled) and as the kernels' linalg reference bodies: the
checks here are equalities, not tolerances. The AVX2 code (`host:cpu=haswell`, vpmaddwd) runs
on every x86 host; the integer GEMM's kernel is also checked on its own against numpy, for
each of its dot products (vpmaddwd on 8 or 16 lanes, the portable one)."""
from __future__ import annotations

import ctypes
import platform
import tempfile

import numpy as np
import pytest
import torch

import ember
import ember.quant
from ember.backends.base import CompileJob
from ember.backends.cpu.qconv_winograd import MAX_CHANNELS, transform_int8_filter
from ember.backends.cpu.conv_winograd import F2
from ember.compiler import CompileOptions, generate_code, parse_module
from ember.runtime.descriptors import describe, pack
from ember.targets import get_target

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="runs AVX2 code (host:cpu=haswell)")
AVX2 = "host:cpu=haswell"


def test_filter_transform_is_four_times_winograds():
    """(2G) g (2G)^T is exactly 4 G g G^T, within i16 for any int8 filter, and the bound on C
    keeps the transformed sums exact in i32."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (3, 3, 5, 7)).astype(np.int8)
    u = transform_int8_filter(w)
    g = F2.g
    expected = np.einsum("ik,klcf,jl->ijcf", g, w.astype(np.float64), g).reshape(16, 5, 7)
    assert u.dtype == np.int16 and np.array_equal(u, 4 * expected)
    extreme = transform_int8_filter(np.full((3, 3, 1, 1), -128, np.int8))
    assert np.abs(extreme).max() == 9 * 128
    assert 4 * 9 * MAX_CHANNELS * 255 * 128 < 2 ** 31 <= 4 * 9 * (MAX_CHANNELS + 1) * 255 * 128


class Block(torch.nn.Module):
    """A ResNet block at stride 1 (both convs rewritten) fed by a strided stem (kept direct),
    with odd spatial sizes avoided where the rewrite needs even outputs."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.c1 = torch.nn.Conv2d(channels, channels, 3, padding=1)
        self.c2 = torch.nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        y = torch.relu(self.stem(x))
        return torch.relu(self.c2(torch.relu(self.c1(y))) + y)


def _compile(model, x, scheme, tmp_path, name, **options):
    return ember.compile(model, (x,), quantize=scheme, target=AVX2,
                         dump_dir=str(tmp_path / name), **options)


@pytest.mark.parametrize("quantize_outputs", [False, True], ids=["f32-out", "codes-out"])
def test_same_bits_as_the_direct_kernel(tmp_path, quantize_outputs):
    """Both 3x3 stride-1 convs are rewritten (16 integer GEMMs each), the strided stem is
    not; the outputs equal the direct kernel's and the reference bodies', bit for bit (the
    second conv adds the block's shortcut as codes in its epilogue)."""
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(2, 3, 20, 28)
    scheme = ember.quant.Int8(mode="static", quantize_outputs=quantize_outputs,
                              calibration=[torch.randn(2, 3, 20, 28) for _ in range(4)])
    winograd = _compile(model, x, scheme, tmp_path, "winograd")
    lowered = (tmp_path / "winograd" / "01-lower.mlir").read_text()
    assert lowered.count("winograd2i") == 32 and '"ember.qgemm"' not in lowered
    assert winograd.explain().count("x16 (Winograd tiles) (i16 pairs, ") == 2
    direct = _compile(model, x, scheme, tmp_path, "direct",
                      disabled_passes=("ember-qconv-winograd",))
    reference = _compile(model, x, scheme, tmp_path, "reference",
                         disabled_passes=("ember-cpu-gemm-kernels",))
    x = torch.randn(2, 3, 20, 28)
    with torch.no_grad():
        got, expected = winograd(x), model(x)
        assert torch.equal(got, direct(x))
        assert torch.equal(got, reference(x))
    assert torch.nn.functional.cosine_similarity(got.flatten(), expected.flatten(), 0) > 0.99


@pytest.mark.parametrize("min_blocks", [0, 1000], ids=["blocked", "whole"])
def test_dynamic_batch(tmp_path, min_blocks):
    """A dynamic batch: blocks of tile rows of one image each (or, with too few blocks, the
    whole tensors with a dynamic number of rows in the integer GEMMs); same bits as the direct
    kernel for every batch size."""
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(2, 3, 20, 28)
    scheme = ember.quant.Int8(mode="static",
                              calibration=[torch.randn(2, 3, 20, 28) for _ in range(4)])
    batch = {"x": {0: torch.export.Dim("batch", max=8)}}
    winograd = _compile(model, x, scheme, tmp_path, "winograd", dynamic_shapes=batch,
                        pass_options={"ember-qconv-winograd": {"min_blocks": min_blocks}})
    lowered = (tmp_path / "winograd" / "01-lower.mlir").read_text()
    assert lowered.count("winograd2i") == 32 and ("scf.forall" in lowered) == (not min_blocks)
    direct = _compile(model, x, scheme, tmp_path, "direct", dynamic_shapes=batch,
                      disabled_passes=("ember-qconv-winograd",))
    for n in (1, 3):
        x = torch.randn(n, 3, 20, 28)
        with torch.no_grad():
            assert torch.equal(winograd(x), direct(x))


def test_only_without_vnni(tmp_path):
    """A VNNI target keeps the direct conv (its vpdpbusd is faster; the pass's `always`
    option rewrites it there too: lit_tests/passes/qconv-winograd.mlir)."""
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(1, 3, 12, 12)
    scheme = ember.quant.Int8(mode="static", calibration=[torch.randn(1, 3, 12, 12)])
    ember.compile(model, (x,), quantize=scheme, target="host:cpu=cascadelake",
                  dump_dir=str(tmp_path / "vnni"))
    assert "winograd2i" not in (tmp_path / "vnni" / "01-lower.mlir").read_text()


def _integer_gemm(target: str, m: int, k: int, n: int, kernel_options=None):
    """One integer ember.gemm (i16 [M, K] x weight i16 [K, N] -> i32) compiled for `target`,
    run on extreme and random operands, against numpy's exact product."""
    src = f'''func.func @main(%a: tensor<{m}x{k}xi16>) -> tensor<{m}x{n}xi32> {{
  %w = "ember.weight"() {{name = "w"}} : () -> tensor<{k}x{n}xi16>
  %0 = "ember.gemm"(%a, %w) {{activation = "none",
      operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>}}
      : (tensor<{m}x{k}xi16>, tensor<{k}x{n}xi16>) -> tensor<{m}x{n}xi32>
  return %0 : tensor<{m}x{n}xi32>
}}'''
    rng = np.random.default_rng(0)
    w = rng.integers(-1152, 1153, (k, n)).astype(np.int16)
    w[0, :] = -1152
    options = CompileOptions(target=get_target(target), graph_pipeline="",
                             pass_options={"ember-cpu-gemm-kernels": kernel_options or {}})
    module, ctx = parse_module(src, {"w": w}, options.target)
    result = generate_code(module, ctx, options,
                           CompileJob(tempfile.mkdtemp(prefix="ember-i16-"), 1, 1,
                                      num_weights=0))
    assert "w.pairs" in ctx.bound_weights["main"][0]
    constants = [ctx.weights.get(name) for name in ctx.bound_weights["main"]]
    library = ctypes.CDLL(result.files["model.so"])
    a = rng.integers(-1020, 1021, (m, k)).astype(np.int16)
    a[:, 0] = -1020
    out = np.zeros((m, n), np.int32)
    descriptors = [describe(v.ctypes.data, v.shape) for v in [a] + constants + [out]]
    library.ember_entry(pack(descriptors), None)
    assert np.array_equal(out, (a.astype(np.int64) @ w.astype(np.int64)).astype(np.int32))


@pytest.mark.parametrize("target", [AVX2, "host:cpu=skylake-avx512", "host:cpu=x86-64"],
                         ids=["vpmaddwd-ymm", "vpmaddwd-zmm", "portable"])
def test_integer_gemm_kernel(target):
    """Tails in M and N, K = 2 (one pair), several K blocks."""
    if "avx512" in target and "avx512bw" not in open("/proc/cpuinfo").read():
        pytest.skip("the host has no AVX-512BW")
    _integer_gemm(target, 37, 64, 40)
    _integer_gemm(target, 5, 2, 3)
    _integer_gemm(target, 70, 96, 50, {"kc": 24, "mc": 12})
