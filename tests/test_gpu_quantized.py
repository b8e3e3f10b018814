"""int8 and weight-only low-bit GEMMs on the cuda target's tensor cores (issue 13, item 5).

Here, without a GPU: the cuda artifacts of the MLP block quantized dynamically and statically
to int8 and weight-only to int8 and int4 carry the tensor-core kernels (mma.sync m16n8k32 on
s8/u8 codes; m16n8k16 f16 on a low-bit weight dequantized as it is staged), ptxas accepts
their PTX for sm_80 and sm_90, and their weights file holds each weight once, in the kernel's
layout (int8 transposed [N, K]; int4 two codes per byte). The index math of the int8 kernel is
checked against the PTX ISA's fragment layouts in tests/test_gpu_mma.py. With a GPU (`gpu`
mark), the artifacts run and match the same quantization compiled for the host.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import ember
from compare import assert_close

PTXAS = shutil.which("ptxas")
#: MLPBlock: fc1 512 -> 2048, fc2 2048 -> 512.
SHAPES = {"fc1": (512, 2048), "fc2": (2048, 512)}


def _schemes():
    torch.manual_seed(1)
    calibration = [torch.randn(64, 512) for _ in range(4)]
    return {
        "int8-dynamic": (ember.quant.Int8(mode="dynamic"), "s32.s8.s8.s32"),
        "int8-static": (ember.quant.Int8(mode="static", calibration=calibration,
                                         quantize_outputs=True),
                        "s32.u8.s8.s32"),
        "weight-only-int8": (ember.quant.WeightOnly(bits=8, group_size=64),
                             "f32.f16.f16.f32"),
        "weight-only-int4": (ember.quant.WeightOnly(bits=4, group_size=64),
                             "f32.f16.f16.f32"),
    }


@pytest.fixture(scope="module")
def artifacts(mlp_block, tmp_path_factory):
    """scheme -> (artifact dir per arch, the PTX type suffix its mma.sync must have)."""
    x = torch.randn(64, 512)
    out = {}
    for name, (scheme, mma) in _schemes().items():
        dirs = {}
        for arch in ("sm_80", "sm_90"):
            path = str(tmp_path_factory.mktemp(f"{name}-{arch}") / "mlp.ember")
            ember.compile(mlp_block, (x,), target=f"cuda:arch={arch}", quantize=scheme,
                          workdir=path)
            dirs[arch] = path
        out[name] = (dirs, mma)
    return out


@pytest.mark.parametrize("scheme", list(_schemes()))
def test_quantized_gemms_run_on_tensor_cores(artifacts, scheme):
    dirs, mma = artifacts[scheme]
    for arch, path in dirs.items():
        ptx_path = os.path.join(path, "kernels.ptx")
        with open(ptx_path) as f:
            ptx = f.read()
        shape = "m16n8k32" if scheme.startswith("int8") else "m16n8k16"
        kinds = set(re.findall(r"mma\.sync\.aligned\.[\w.]+", ptx))
        assert kinds == {f"mma.sync.aligned.{shape}.row.col.{mma}"}, kinds
        # Both GEMMs (fc1, fc2) are tensor-core kernels fed by ldmatrix.
        assert len(re.findall(r"\.entry gemm_mma_\d+", ptx)) == 2
        assert "ldmatrix.sync.aligned.m8n8.x4.shared.b16" in ptx
        if scheme.startswith("weight-only"):
            # B is dequantized by the threads (vector loads of codes and scales), not copied.
            assert "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16" in ptx
            assert re.search(r"ld\.global\.v4\.b32", ptx)
        else:
            assert ".trans" not in ptx and "cp.async.cg.shared.global" in ptx
        if PTXAS is None:
            pytest.skip("ptxas is not on PATH: the PTX was not assembled")
        proc = subprocess.run([PTXAS, "--gpu-name", arch, ptx_path, "-o", os.devnull],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("scheme,layout", [
    ("int8-dynamic", lambda k, n: ((n, k), np.int8)),     # transposed, K a multiple of 16
    ("int8-static", lambda k, n: ((n, k), np.int8)),
    ("weight-only-int8", lambda k, n: ((k, n), np.int8)),
    ("weight-only-int4", lambda k, n: ((k // 2, n), np.int8)),   # two codes per byte
])
def test_weights_are_stored_once_in_the_kernels_layout(artifacts, scheme, layout):
    weights = load_file(os.path.join(artifacts[scheme][0]["sm_90"], "weights.safetensors"))
    codes = {name: w for name, w in weights.items() if w.dtype == np.int8}
    expected = sorted(layout(*SHAPES[fc]) for fc in SHAPES)
    assert sorted(((w.shape), w.dtype.type) for w in codes.values()) == \
        sorted((tuple(s), t) for s, t in expected)
    float_bytes = sum(k * n * 4 for k, n in SHAPES.values())
    assert sum(w.nbytes for w in codes.values()) <= float_bytes / (8 if "int4" in scheme else 4)


def test_int8_codes_are_the_transposed_weight(mlp_block):
    """The kernel's [N, K] codes are the host artifact's int8 weight transposed."""
    from ember.quant.schemes import quantize_weight
    scheme = ember.quant.Int8(mode="dynamic")
    compiled = ember.compile(mlp_block, (torch.randn(64, 512),), quantize=scheme,
                             target="cuda")
    weights = load_file(os.path.join(compiled.artifact_dir, "weights.safetensors"))
    fc1, = [w for w in weights.values() if w.shape == (2048, 512) and w.dtype == np.int8]
    q, _ = quantize_weight(mlp_block.fc1.weight.detach().numpy().T)
    np.testing.assert_array_equal(fc1, q.T)


def _float_fc1_scheme():
    """Static int8 with fc1 left in f32 before the int8 fc2."""
    torch.manual_seed(2)
    return ember.quant.Int8(mode="static", calibration=[torch.randn(64, 512) for _ in range(4)],
                            exclude="fc1", quantize_outputs=True)


def test_float_layer_writing_codes_compiles_for_the_gpu(mlp_block, tmp_path):
    """fc1 left in f32 writes fc2's input codes in its epilogue (an ember.gemm with
    result_scale): the cuda target leaves that GEMM to its generic lowering (the tensor-core
    kernel's epilogue writes floats) and runs fc2 on the int8 tensor-core kernel. On the host
    the same model matches PyTorch's PT2E model within one step."""
    from ember.frontend.static_quantization import quantize_static
    from test_quantize_pt2e import _assert_within_one_step
    scheme, x = _float_fc1_scheme(), torch.randn(64, 512)
    gpu = ember.compile(mlp_block, (x,), quantize=scheme, target="cuda:arch=sm_90",
                        dump_dir=str(tmp_path))
    graph = (tmp_path / "00-graph.mlir").read_text()
    assert re.search(r'"ember\.gemm".*result_scale.*-> tensor<64x2048xui8>', graph)
    with open(os.path.join(gpu.artifact_dir, "kernels.ptx")) as f:
        assert "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32" in f.read()
    host = ember.compile(mlp_block, (x,), quantize=scheme)
    with torch.no_grad():
        _assert_within_one_step(host(x), quantize_static(mlp_block, (x,), scheme)(x))


# ----------------------------------------------------------------------------- on a GPU
def _cuda_unusable_reason():
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


@pytest.mark.gpu
@pytest.mark.parametrize("scheme", list(_schemes()))
def test_quantized_mlp_on_the_gpu_matches_the_host(mlp_block, scheme):
    reason = _cuda_unusable_reason()
    if reason:
        pytest.skip(reason)
    quantize = _schemes()[scheme][0]
    x = torch.randn(64, 512)
    major, minor = torch.cuda.get_device_capability()
    gpu = ember.compile(mlp_block, (x,), quantize=quantize, target=f"cuda:arch=sm_{major}{minor}")
    host = ember.compile(mlp_block, (x,), quantize=quantize)
    # int8: the same codes and integer sums, dequantized alike. Weight-only: the GPU
    # multiplies f16 activations (the host f32 ones).
    tol = 1e-4 if scheme.startswith("int8") else 2e-2
    assert_close(gpu(x.cuda()).cpu(), host(x), tol=tol)


@pytest.mark.gpu
def test_float_layer_writing_codes_on_the_gpu_matches_the_host(mlp_block):
    reason = _cuda_unusable_reason()
    if reason:
        pytest.skip(reason)
    scheme, x = _float_fc1_scheme(), torch.randn(64, 512)
    major, minor = torch.cuda.get_device_capability()
    gpu = ember.compile(mlp_block, (x,), quantize=scheme, target=f"cuda:arch=sm_{major}{minor}")
    host = ember.compile(mlp_block, (x,), quantize=scheme)
    # fc1 sums in f32 in another order than the host kernel: where one of its values lies on
    # a rounding boundary, fc2 reads a code one step off
    from test_quantize_pt2e import _assert_within_one_step
    _assert_within_one_step(gpu(x.cuda()).cpu(), host(x))
