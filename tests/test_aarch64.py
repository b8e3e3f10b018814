"""The aarch64 target: models cross-compiled on this machine, their libraries run by
examples/c/run_model.c (cross-compiled too) under qemu-aarch64 and compared with PyTorch here.

Covers NEON and SVE code (qemu's vector length chosen per run), GEMM tails, the instructions
in the GEMM kernels, the manifest's target section, option errors, and `ember.compile`
returning a model that cannot run on a non-AArch64 machine but can be saved.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

import ember
from compare import assert_close
from ember.targets import get_target
from ember.backends.cpu.target import CPU_MISMATCH
from ember.backends.external_tools import ToolError
from resnet import BasicBlock, randomize_batch_norm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = "aarch64-linux-gnu-gcc"
OBJDUMP = "aarch64-linux-gnu-objdump"
SYSROOT = "/usr/aarch64-linux-gnu"
NEON = "aarch64"
SVE = "aarch64:preset=graviton3"     # Neoverse V1, 256-bit SVE
#: qemu CPUs: NEON only, and SVE at a given vector length.
QEMU_NEON = "cortex-a72"
QEMU_SVE = "max,sve{}=on"

needs_cc = pytest.mark.skipif(shutil.which(CC) is None,
                              reason=f"needs the AArch64 cross compiler {CC} "
                                     f"(apt-get install gcc-aarch64-linux-gnu)")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-aarch64") is None or
                                not os.path.isdir(SYSROOT),
                                reason="needs qemu-aarch64 and the AArch64 sysroot (apt-get "
                                       "install qemu-user libc6-dev-arm64-cross)")


def compile_for(target, model, example, tmp_path_factory, dynamic_batch=None):
    dynamic = None
    if dynamic_batch:
        dynamic = {"x": {0: torch.export.Dim("batch", min=1, max=dynamic_batch)}}
    compiled = ember.compile(model, (example,), target=target, dynamic_shapes=dynamic)
    return compiled, compiled.save(str(tmp_path_factory.mktemp("a64") / "model.ember"))


def manifest_of(artifact: str) -> dict:
    with open(os.path.join(artifact, "manifest.json")) as f:
        return json.load(f)


def run_qemu(run_model: str, artifact: str, x: torch.Tensor, out_dir, cpu=QEMU_NEON):
    """Runs the artifact on `x` under qemu; returns (completed process, output 0 as float32
    numpy; a 16-bit output, of x's dtype, widened)."""
    manifest = manifest_of(artifact)
    x_file = os.path.join(out_dir, "x.bin")
    x.contiguous().view(torch.uint8).numpy().tofile(x_file)
    symbols = [arg for name in manifest["symbols"] for arg in ("-s", f"{name}={x.shape[0]}")]
    result = subprocess.run(["qemu-aarch64", "-cpu", cpu, "-L", SYSROOT, run_model, artifact,
                             *symbols, "-i", f"{manifest['inputs'][0]['name']}={x_file}",
                             "-o", str(out_dir)], capture_output=True, text=True, timeout=120)
    out_file = os.path.join(out_dir, manifest["outputs"][0]["name"] + ".bin")
    output = torch.from_numpy(np.fromfile(out_file, np.uint8)).view(x.dtype).float().numpy() \
        if result.returncode == 0 else None
    return result, output


def check_matches(model, run_model, artifact, x, out_dir, cpu=QEMU_NEON) -> None:
    result, output = run_qemu(run_model, artifact, x, out_dir, cpu)
    assert result.returncode == 0, result.stdout + result.stderr
    with torch.no_grad():
        expected = model(x)
    assert_close(output.reshape(expected.shape), expected)


def gemm_instructions(library: str) -> dict:
    """{function name: disassembly lines} of the GEMM kernels' task functions."""
    listing = subprocess.run([OBJDUMP, "-d", library], capture_output=True, text=True,
                             check=True).stdout
    functions, current = {}, None
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <(\S+)>:$", line)
        if header:
            current = header.group(1) if re.fullmatch(r"ember_gemm_\d+_task",
                                                      header.group(1)) else None
            if current:
                functions[current] = []
        elif current:
            functions[current].append(line)
    return functions


class Tails(nn.Module):
    """A GEMM whose M (batch 1 or 13), N = 53 and K = 37 are multiples of no tile, with a fused
    bias and ReLU epilogue."""
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(37, 53)

    def forward(self, x):
        return torch.relu(self.fc(x))


def small_cnn() -> nn.Module:
    """The ResNet BasicBlock net in small: stem, a downsampling and a plain block, pooling."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                        BasicBlock(8, 16, 2), BasicBlock(16, 16, 1), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(16, 10))
    return randomize_batch_norm(net).eval()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mlp_neon(mlp_block, tmp_path_factory):
    return compile_for(NEON, mlp_block, torch.randn(4, 512), tmp_path_factory, dynamic_batch=64)


@pytest.fixture(scope="module")
def mlp_sve(mlp_block, tmp_path_factory):
    return compile_for(SVE, mlp_block, torch.randn(4, 512), tmp_path_factory,
                       dynamic_batch=64)[1]


@pytest.fixture(scope="module")
def tails():
    torch.manual_seed(0)
    return Tails().eval()


@pytest.fixture(scope="module", params=[NEON, SVE], ids=["neon", "sve"])
def tails_artifact(request, tails, tmp_path_factory):
    return request.param, compile_for(request.param, tails, torch.randn(5, 37), tmp_path_factory,
                                      dynamic_batch=32)[1]


@pytest.fixture(scope="module")
def run_model(mlp_neon, tmp_path_factory):
    """examples/c/run_model.c, cross-compiled against the header in an artifact."""
    out = str(tmp_path_factory.mktemp("bin") / "run_model")
    subprocess.run([CC, "-O2", "-Wall", "-Werror", "-I", mlp_neon[1], "-o", out,
                    os.path.join(ROOT, "examples", "c", "run_model.c"), "-ldl"],
                   check=True, capture_output=True, text=True)
    return out


# ----------------------------------------------------------------------------- end to end
@needs_cc
@needs_qemu
@pytest.mark.parametrize("batch", [7, 1])
def test_mlp_neon_matches_pytorch(mlp_block, mlp_neon, run_model, batch, tmp_path):
    check_matches(mlp_block, run_model, mlp_neon[1], torch.randn(batch, 512), tmp_path)


@needs_cc
@needs_qemu
@pytest.mark.parametrize("bits", [256, 512])
def test_mlp_sve_matches_pytorch(mlp_block, mlp_sve, run_model, bits, tmp_path):
    check_matches(mlp_block, run_model, mlp_sve, torch.randn(9, 512), tmp_path,
                  cpu=QEMU_SVE.format(bits))


@needs_cc
@needs_qemu
@pytest.mark.parametrize("cpu", [QEMU_SVE.format(128), QEMU_NEON])
def test_sve_library_refuses_shorter_vectors(mlp_sve, run_model, cpu, tmp_path):
    result, _ = run_qemu(run_model, mlp_sve, torch.randn(2, 512), tmp_path, cpu)
    assert result.returncode == 1
    assert f"the model's code returned status {CPU_MISMATCH}" in result.stderr


@needs_cc
@needs_qemu
@pytest.mark.parametrize("batch", [13, 1])
def test_gemm_tails_match_pytorch(tails, tails_artifact, run_model, batch, tmp_path):
    target, artifact = tails_artifact
    cpu = QEMU_SVE.format(256) if target == SVE else QEMU_NEON
    check_matches(tails, run_model, artifact, torch.randn(batch, 37), tmp_path, cpu)


@needs_cc
@needs_qemu
@pytest.mark.parametrize("target, cpu", [(NEON, QEMU_NEON), (SVE, QEMU_SVE.format(256))],
                         ids=["neon", "sve"])
def test_cnn_matches_pytorch(run_model, target, cpu, tmp_path_factory, tmp_path):
    model = small_cnn()
    x = torch.randn(2, 3, 16, 16)
    _, artifact = compile_for(target, model, x, tmp_path_factory)
    check_matches(model, run_model, artifact, x, tmp_path, cpu)


#: The int8 features and the instruction every int8 kernel must then contain: sdot, and
#: smmla (2 x 2 blocks) with +i8mm (whose odd tail rows still take sdot).
INT8_FEATURES = {"+neon+dotprod": r"\tsdot\tv\d+\.4s",
                 "+neon+dotprod+i8mm": r"\tsmmla\tv\d+\.4s"}


@needs_cc
@needs_qemu
@pytest.mark.skipif(shutil.which(OBJDUMP) is None, reason=f"needs {OBJDUMP}")
@pytest.mark.parametrize("features", INT8_FEATURES)
def test_int8_sdot_matches_x86_int8(run_model, tmp_path_factory, tmp_path, features):
    """int8 on `+dotprod` (sdot, signed activation codes) and `+i8mm` (smmla) gives the x86
    int8 result exactly: the codes are the same, only their encoding differs, and the integer
    sums are exact."""
    from test_quantize_int8 import Block
    import ember.quant
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(13, 70)
    compiled = ember.compile(model, (x,), target=NEON + ":features=" + features,
                             quantize=ember.quant.Int8())
    artifact = compiled.save(str(tmp_path_factory.mktemp("a64") / "int8.ember"))
    kernels = gemm_instructions(os.path.join(artifact, "model.so"))
    assert kernels and all(any(re.search(INT8_FEATURES[features], ln) for ln in lines)
                           for lines in kernels.values())
    result, output = run_qemu(run_model, artifact, x, tmp_path, cpu="max")
    assert result.returncode == 0, result.stdout + result.stderr
    on_x86 = ember.compile(model, (x,), quantize=ember.quant.Int8())(x)
    np.testing.assert_array_equal(output.reshape(on_x86.shape), on_x86.numpy())


@needs_cc
@needs_qemu
@pytest.mark.skipif(shutil.which(OBJDUMP) is None, reason=f"needs {OBJDUMP}")
def test_bf16_model_runs_on_bfdot(run_model, tmp_path_factory, tmp_path):
    """A bf16 model on NEON with +bf16: its GEMMs multiply bf16 pairs with BFDOT (no
    widening) and match the x86 bf16 result within bf16's tolerance (BFDOT's own rounding of
    the pair sum differs from an f32 FMA chain's)."""
    from mlp_block import MLPBlock
    torch.manual_seed(0)
    model = MLPBlock(64, 128).eval().to(torch.bfloat16)
    x = torch.randn(5, 64).to(torch.bfloat16)
    compiled = ember.compile(model, (x,), target=NEON + ":features=+neon+bf16")
    artifact = compiled.save(str(tmp_path_factory.mktemp("a64") / "bf16.ember"))
    kernels = gemm_instructions(os.path.join(artifact, "model.so"))
    assert kernels and all(any(re.search(r"\tbfdot\tv\d+\.4s", ln) for ln in lines)
                           for lines in kernels.values())
    result, output = run_qemu(run_model, artifact, x, tmp_path, cpu="max")
    assert result.returncode == 0, result.stdout + result.stderr
    on_x86 = ember.compile(model, (x,))(x)
    assert_close(torch.from_numpy(output).reshape(on_x86.shape).to(torch.bfloat16), on_x86)


@needs_cc
@needs_qemu
@pytest.mark.skipif(shutil.which(OBJDUMP) is None, reason=f"needs {OBJDUMP}")
def test_fp16_model_runs_on_fmlal(run_model, tmp_path_factory, tmp_path):
    """A model.half() on NEON with +fp16fml: its GEMMs multiply the f16 panels as they are
    into f32 sums with FMLAL (no fcvtl of the weights in the k loop) and match the x86 f16
    result (both sum f32 products of the same f16 values); without the feature, the widening
    kernel."""
    from mlp_block import MLPBlock
    torch.manual_seed(0)
    model = MLPBlock(64, 128).eval().half()
    x = torch.randn(5, 64).half()
    compiled = ember.compile(model, (x,), target=NEON + ":features=+neon+fp16fml")
    artifact = compiled.save(str(tmp_path_factory.mktemp("a64") / "fp16.ember"))
    kernels = gemm_instructions(os.path.join(artifact, "model.so"))
    assert kernels and all(any(re.search(r"\tfmlal\tv\d+\.4s, v\d+\.4h, v\d+\.4h", ln)
                               for ln in lines) for lines in kernels.values())
    result, output = run_qemu(run_model, artifact, x, tmp_path, cpu="max")
    assert result.returncode == 0, result.stdout + result.stderr
    on_x86 = ember.compile(model, (x,))(x)
    assert_close(torch.from_numpy(output).reshape(on_x86.shape).to(torch.float16), on_x86)
    plain = ember.compile(model, (x,), target=NEON).save(
        str(tmp_path_factory.mktemp("a64") / "fp16-plain.ember"))
    assert not any(re.search(r"\tfmlal\t", ln) for lines in gemm_instructions(
        os.path.join(plain, "model.so")).values() for ln in lines)


@needs_cc
@needs_qemu
@pytest.mark.parametrize("target, cpu", [(NEON, QEMU_NEON), (SVE, QEMU_SVE.format(256))],
                         ids=["neon", "sve"])
@pytest.mark.parametrize("bits", [4, 8])
def test_weight_only_matches_x86(run_model, tmp_path_factory, tmp_path, target, cpu, bits):
    """Weight-only int4/int8 codes dequantized in the AArch64 kernels' registers give the x86
    result (both sum the same f32 products, in another order)."""
    import ember.quant
    from test_weight_only import Mlp
    torch.manual_seed(0)
    model, x = Mlp().eval(), torch.randn(3, 256)
    scheme = ember.quant.WeightOnly(bits=bits, group_size=64)
    compiled = ember.compile(model, (x,), target=target, quantize=scheme)
    artifact = compiled.save(str(tmp_path_factory.mktemp("a64") / "weight-only.ember"))
    result, output = run_qemu(run_model, artifact, x, tmp_path, cpu=cpu)
    assert result.returncode == 0, result.stdout + result.stderr
    on_x86 = ember.compile(model, (x,), quantize=scheme)(x)
    assert_close(torch.from_numpy(output.reshape(on_x86.shape)), on_x86)


@needs_cc
@needs_qemu
@pytest.mark.skipif(shutil.which(OBJDUMP) is None, reason=f"needs {OBJDUMP}")
@pytest.mark.parametrize("features", INT8_FEATURES)
@pytest.mark.parametrize("net", ["mlp", "conv", "residual"])
def test_static_int8_sdot_matches_x86(run_model, tmp_path_factory, tmp_path, net, features):
    """A PT2E-quantized MLP and conv net (static uint8 codes) on `+dotprod` and `+i8mm`: the
    kernels read the codes as s8 (top bit flipped, compensation moved by 128) with sdot or
    smmla, and agree with the x86 int8 result within one quantization step."""
    quantized = pytest.importorskip("test_quantize_pt2e")
    torch.manual_seed(0)
    model, x = {"mlp": (quantized.Mlp(), torch.randn(16, 96)),
                "conv": (quantized.ConvNet(), torch.randn(4, 3, 16, 16)),      # K odd words
                "residual": (quantized.ResidualBlock(), torch.randn(2, 3, 12, 12)),  # patches
                }[net]
    model = quantized._quantized(model, x)
    compiled = ember.compile(model, (x,), target=NEON + ":features=" + features)
    artifact = compiled.save(str(tmp_path_factory.mktemp("a64") / f"{net}.ember"))
    kernels = gemm_instructions(os.path.join(artifact, "model.so"))
    assert kernels and all(any(re.search(INT8_FEATURES[features], ln) for ln in lines)
                           for lines in kernels.values())
    result, output = run_qemu(run_model, artifact, x, tmp_path, cpu="max")
    assert result.returncode == 0, result.stdout + result.stderr
    on_x86 = ember.compile(model, (x,))(x)
    quantized._assert_within_one_step(torch.from_numpy(output.reshape(on_x86.shape)), on_x86)


@needs_cc
@needs_qemu
def test_float_stem_writing_codes_matches_x86(run_model, tmp_path_factory, tmp_path):
    """A static int8 conv net with its stem left in f32 (`exclude`): the AArch64 f32 kernel
    quantizes its NEON accumulators into the next conv's codes, and the result agrees with
    x86 within one quantization step."""
    import ember.quant
    from test_quantize_pt2e import _assert_within_one_step
    from test_quantize_static import Classifier
    torch.manual_seed(0)
    model, x = Classifier().eval(), torch.randn(2, 3, 8, 8)
    scheme = ember.quant.Int8(mode="static", exclude="stem",
                              calibration=[torch.randn(2, 3, 8, 8) for _ in range(4)])
    compiled = ember.compile(model, (x,), target=NEON + ":features=+neon+dotprod",
                             quantize=scheme)
    artifact = compiled.save(str(tmp_path_factory.mktemp("a64") / "float-stem.ember"))
    result, output = run_qemu(run_model, artifact, x, tmp_path, cpu="max")
    assert result.returncode == 0, result.stdout + result.stderr
    on_x86 = ember.compile(model, (x,), quantize=scheme)(x)
    _assert_within_one_step(torch.from_numpy(output.reshape(on_x86.shape)), on_x86)


# ----------------------------------------------------------------------------- the library
@needs_cc
@pytest.mark.skipif(shutil.which(OBJDUMP) is None, reason=f"needs {OBJDUMP}")
def test_gemm_kernels_use_neon_and_sve_fma(mlp_neon, mlp_sve):
    neon = gemm_instructions(os.path.join(mlp_neon[1], "model.so"))
    sve = gemm_instructions(os.path.join(mlp_sve, "model.so"))
    assert neon and sve
    for lines in neon.values():
        assert any(re.search(r"\tfmla\tv\d+\.4s", ln) for ln in lines)
        assert not any(re.search(r"\bz\d+\.s\b", ln) for ln in lines)
    for lines in sve.values():
        assert any(re.search(r"\tfmla\tz\d+\.s", ln) for ln in lines)


@needs_cc
def test_manifest_and_library(mlp_neon, mlp_sve):
    neon, sve = manifest_of(mlp_neon[1]), manifest_of(mlp_sve)
    assert neon["target"] == {"kind": "aarch64", "triple": "aarch64-unknown-linux-gnu",
                              "cpu": "generic", "features": "", "vector_bits": 128,
                              "sve": False, "preset": None}
    assert sve["target"]["cpu"] == "neoverse-v1"
    assert "+sve" in sve["target"]["features"].split(",")
    assert (sve["target"]["vector_bits"], sve["target"]["sve"]) == (256, True)
    assert neon["code"]["aarch64"]["abi"] == "ember-c-runtime-v1"
    library = os.path.join(mlp_neon[1], "model.so")
    with open(library, "rb") as f:
        header = f.read(20)
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # AArch64
    dynamic = subprocess.run(["aarch64-linux-gnu-readelf", "--dyn-syms", "-d", library],
                             capture_output=True, text=True).stdout
    for name in ("ember_runtime_get_api", "ember_model_create", "ember_model_run",
                 "ember_entry"):
        assert re.search(rf"\bFUNC\s+GLOBAL\s+DEFAULT\s+\d+ {name}$", dynamic, re.M), name
    assert "libomp" not in dynamic  # no AArch64 libomp here: the parallel loops are serial


@needs_cc
@pytest.mark.skipif(platform.machine().lower() in ("aarch64", "arm64"),
                    reason="the artifact runs in-process on an AArch64 machine")
def test_compiled_model_cannot_run_here_but_saves(mlp_neon, tmp_path):
    compiled, _ = mlp_neon
    with pytest.raises(RuntimeError, match=r"cannot run in this process: it is an AArch64 "
                                           r"library .* save\(\) it"):
        compiled(torch.randn(2, 512))
    saved = compiled.save(str(tmp_path / "copy.ember"))
    assert manifest_of(saved)["target"]["kind"] == "aarch64"


# ----------------------------------------------------------------------------- options
def test_presets_and_options_give_the_target_facts():
    altra = get_target("aarch64:preset=ampere-altra").info
    assert (altra.vector_lanes, altra.vector_registers, altra.l1d, altra.l2, altra.l3, altra.cores) == \
        (4, 32, 64 << 10, 1 << 20, 32 << 20, 80)
    assert get_target("aarch64:preset=ampere-altra,cores=4").info.cores == 4
    assert get_target("aarch64:cpu=neoverse-v1,features=+sve").info.vector_lanes == 8
    wide = get_target("aarch64", features="+sve,+i8mm", vector_bits=512)
    assert (wide.info.vector_lanes, wide.features) == (16, "+sve,+i8mm")
    assert get_target("aarch64:features=+sve+i8mm,vector_bits=512").features == "+sve,+i8mm"
    assert get_target("aarch64:features=+sve").info.vector_lanes == 4  # 128-bit SVE: NEON's


@pytest.mark.parametrize("spec, message", [
    ("aarch64:cpu=neoverse-n9", r"unknown aarch64 cpu 'neoverse-n9'; did you mean neoverse-n"),
    ("aarch64:features=+svee", r"unknown aarch64 feature 'svee'; did you mean sve"),
    ("aarch64:features=sve", r"feature 'sve' needs a '\+' \(enable\) or '-' \(disable\) sign"),
    ("aarch64:features=+sve,+bf16", r"join features with '\+', e.g. features=\+sve\+bf16"),
    ("aarch64:vector_bits=256", r"vector_bits=256 needs SVE .* add features=\+sve"),
    ("aarch64:features=+sve,vector_bits=384", r"powers of two from 128 to 2048"),
    ("aarch64:preset=altra", r"unknown aarch64 preset 'altra'; presets: ampere-altra"),
    ("aarch64:cores=many", r"target 'aarch64': option cores expects int, got 'many'"),
    ("aarch64:mcpu=neoverse-n1", r"target 'aarch64' has no option\(s\) \['mcpu'\]"),
])
def test_bad_options_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        get_target(spec)


def test_openmp_needs_an_aarch64_libomp():
    target = get_target("aarch64")
    if target.libomp is not None:
        pytest.skip(f"{CC} finds an AArch64 libomp ({target.libomp})")
    assert target.openmp is False
    with pytest.raises(ToolError, match="finds no libomp for aarch64-unknown-linux-gnu"):
        get_target("aarch64:openmp=on").link_flags()
