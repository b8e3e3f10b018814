"""Models in 16-bit floats (`model.half()`, `model.to(torch.bfloat16)`): the MLP block, the
BERT-style encoder and the CNN compile with 16-bit inputs, weights and outputs and match
PyTorch run in the same dtype; their Linear layers, convolutions and attention products run on
the GEMM micro-kernel from 16-bit weights (widened in registers, summed in f32), so the
weights file is half the fp32 one."""
from __future__ import annotations

import copy
import os
import re
import sys

import pytest
import torch

import ember
from compare import assert_close

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.models import WORKLOADS  # noqa: E402

SIZES = {"mlp": 32, "bert": 2, "cnn": 2}
DTYPES = {"f16": torch.float16, "bf16": torch.bfloat16}


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("workload", list(SIZES))
def test_model_in_16_bits(workload, dtype):
    dtype = DTYPES[dtype]
    w = WORKLOADS[workload]
    model = w.make_model(SIZES[workload]).to(dtype)
    inputs = tuple(x.to(dtype) for x in w.make_inputs(SIZES[workload]))
    compiled = ember.compile(model, inputs)
    with torch.no_grad():
        assert_close(compiled(*inputs), model(*inputs))


def _kernel_report(tmp_path, model, inputs, target="host"):
    """(weights file bytes, the LLVM IR) of `model` compiled for `target`, stages dumped."""
    dump = tmp_path / "dump"
    compiled = ember.compile(model, inputs, target=target, dump_dir=str(dump))
    artifact = compiled.save(str(tmp_path / "art"))
    weights = os.path.getsize(os.path.join(artifact, "weights.safetensors"))
    (ir_file,) = [p for p in dump.iterdir() if p.name.endswith("-llvm-ir.ll")]
    return weights, ir_file.read_text()


@pytest.mark.parametrize("target,kernel", [
    ("host:cpu=haswell", r"fpext <8 x bfloat> "),               # panel vectors widened
    ("host:cpu=sapphirerapids", r"llvm\.x86\.tdpbf16ps"),       # AMX-BF16 tiles on pairs
])
def test_weights_stay_16_bit_and_gemms_use_the_kernel(tmp_path, mlp_block, target, kernel):
    """Compiled only (the host need not have the target's instructions)."""
    x = torch.randn(16, 512)
    fp32, _ = _kernel_report(tmp_path / "f32", mlp_block, (x,), target)
    bf16 = copy.deepcopy(mlp_block).to(torch.bfloat16)
    half, llvm_ir = _kernel_report(tmp_path / "bf16", bf16, (x.to(torch.bfloat16),), target)
    assert half <= 0.55 * fp32, (half, fp32)
    assert re.search(kernel, llvm_ir)


def test_bf16_without_native_bf16_kernels(mlp_block):
    """The widening kernel (AVX2 code, which any x86 host here runs) beside the host's own."""
    bf16 = copy.deepcopy(mlp_block).to(torch.bfloat16)
    x = torch.randn(24, 512).to(torch.bfloat16)
    compiled = ember.compile(bf16, (x,), target="host:cpu=haswell")
    with torch.no_grad():
        assert_close(compiled(x), bf16(x))


def _host_has(*features) -> bool:
    from ember.targets import get_target
    return set(features) <= get_target("host").info.enabled_features


@pytest.mark.parametrize("workload", ["mlp", "cnn"])
@pytest.mark.parametrize("kernel,options,needs", [
    ("amx", {}, ("amx-tile", "amx-bf16")),
    ("vdpbf16ps", {"ember-cpu-gemm-kernels": {"amx": False}}, ("avx512bf16", "avx512f")),
])
def test_bf16_pair_kernels(workload, kernel, options, needs):
    """The kernels on bf16 pairs, each where the host runs it (AMX-BF16 tiles; AVX512_BF16's
    vdpbf16ps, A's words packed per block): Linear layers on rows that leave tail tiles, and
    the CNN's convolutions (patch rows gathered a tap's channel pairs at a time; its RGB stem,
    C = 3, keeps 16-bit panels)."""
    if not _host_has(*needs):
        pytest.skip(f"the host lacks {', '.join(needs)}")
    w = WORKLOADS[workload]
    size = 45 if workload == "mlp" else 2
    model = w.make_model(size).to(torch.bfloat16)
    inputs = tuple(x.to(torch.bfloat16) for x in w.make_inputs(size))
    compiled = ember.compile(model, inputs, pass_options=options)
    with torch.no_grad():
        assert_close(compiled(*inputs), model(*inputs))
