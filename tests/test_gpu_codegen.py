"""GPU code generation (cuda: PTX/cubin, rocm: HSACO) on a machine without a GPU.

What runs here: the artifacts are built and checked statically (PTX entries, ptxas, AMDGPU ELF
and its kernel symbols, the launch plan's consistency), and the GEMM kernel's tiling runs on
the host (the same emitter with loops for block and thread ids) against numpy, tails included.
Running kernels on a device is the GPU runtime's business and is not tested here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

import ember
from ember.compiler import CompileOptions, build_artifact
from ember.frontend import import_model
from ember.artifact.launch_plan import PLAN_FILE, validate_plan

from test_transformer import EncoderLayer, _inputs

PTXAS = shutil.which("ptxas")
LLD = shutil.which("ld.lld")
READELF = shutil.which("llvm-readelf")


def _models():
    from mlp_block import MLPBlock
    torch.manual_seed(0)
    mlp = MLPBlock().eval()
    return {
        "mlp": (mlp, (torch.randn(256, 512),)),
        "mlp-fp16": (MLPBlock().eval().half(), (torch.randn(256, 512).half(),)),
        "encoder": (EncoderLayer().eval(), _inputs(2, 16)),
    }


@pytest.fixture(scope="module")
def imported():
    """Each model imported once (the frontend is the slow part)."""
    return {name: import_model(model, inputs) for name, (model, inputs) in _models().items()}


def _build(imported, tmp_path_factory, model: str, target: str):
    out = str(tmp_path_factory.mktemp(f"{model}-{target.replace(':', '-')}"))
    build_artifact(imported[model], out, CompileOptions(target=target))
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(out, PLAN_FILE)) as f:
        plan = json.load(f)
    return out, manifest, plan


def _check_kernel_names(model, kernels):
    """Kernels are named <what>_<position>; the encoder's LayerNorms and softmaxes are row
    kernels."""
    assert all(re.fullmatch(r"[a-z_]+_\d+", k) for k in kernels), kernels
    if model == "encoder":
        kinds = {k.rsplit("_", 1)[0] for k in kernels}
        assert {"gemm", "layer_norm", "softmax"} <= kinds, kinds


def _check_plan(manifest, plan, kernels):
    counts = {k: len(manifest[k + "s"]) for k in ("input", "constant", "output")}
    assert validate_plan(plan, kernels, counts) == []
    written = {a["buffer"] for launch in plan["launches"] for a in launch["args"]
               if "buffer" in a}
    assert {f"output{i}" for i in range(counts["output"])} <= written


CUDA_CASES = [("mlp", "sm_80"), ("mlp-fp16", "sm_90"), ("encoder", "sm_90"),
              ("encoder", "sm_80")]


@pytest.mark.parametrize("model,arch", CUDA_CASES)
def test_cuda_artifact(imported, tmp_path_factory, model, arch):
    out, manifest, plan = _build(imported, tmp_path_factory, model, f"cuda:arch={arch}")
    assert manifest["target"]["kind"] == "cuda" and manifest["target"]["arch"] == arch
    code = manifest["code"]["cuda"]
    assert code["abi"] == "ember-gpu-plan-v1" and code["plan"] == PLAN_FILE
    with open(os.path.join(out, code["ptx"])) as f:
        ptx = f.read()
    assert f".target {arch}" in ptx
    entries = re.findall(r"\.entry\s+(\w+)\(", ptx)
    assert len(entries) == len({launch["kernel"] for launch in plan["launches"]})
    _check_plan(manifest, plan, entries)
    # The GEMM kernels stage tiles in shared memory between barriers.
    assert ".shared" in ptx and "bar.sync" in ptx
    _check_kernel_names(model, entries)
    if model == "encoder":
        # LayerNorm and softmax rows are reduced by warps: xor butterflies of shuffles.
        assert "shfl.sync.bfly.b32" in ptx
        # Its two batch entries' identical attention kernels are emitted once.
        assert len(entries) < len(plan["launches"])
    if PTXAS is None:
        pytest.skip("ptxas is not on PATH: the PTX was not assembled")
    assert code["module"] == "kernels.cubin" and os.path.getsize(os.path.join(out, "kernels.cubin"))
    proc = subprocess.run([PTXAS, "--gpu-name", arch, os.path.join(out, code["ptx"]), "-o",
                           os.devnull], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("model,arch", [("mlp", "gfx942"), ("encoder", "gfx90a"),
                                        ("mlp-fp16", "gfx90a")])
def test_rocm_artifact(imported, tmp_path_factory, model, arch):
    if LLD is None or READELF is None:
        pytest.skip("ld.lld and llvm-readelf are needed to link and inspect HSACO "
                    "(apt-get install lld llvm)")
    out, manifest, plan = _build(imported, tmp_path_factory, model, f"rocm:arch={arch}")
    assert manifest["target"] == {"kind": "rocm", "arch": arch}
    code = manifest["code"]["rocm"]
    assert code["module"] == "kernels.hsaco"
    hsaco = os.path.join(out, code["module"])
    header = subprocess.run([READELF, "-h", hsaco], capture_output=True, text=True).stdout
    assert re.search(r"Machine:\s+EM_AMDGPU", header)
    symbols = subprocess.run([READELF, "-s", hsaco], capture_output=True, text=True).stdout
    kernels = set(re.findall(r"FUNC\s+GLOBAL\s+\w+\s+\d+\s+(\w+)$", symbols, re.M))
    _check_plan(manifest, plan, kernels)
    _check_kernel_names(model, kernels)
    notes = subprocess.run([READELF, "--notes", hsaco], capture_output=True, text=True).stdout
    assert f"amdgcn-amd-amdhsa--{arch}" in notes


# ----------------------------------------------------------------------------- GEMM tiling
def _host_gemm(spec, tile):
    """The GEMM kernel's algorithm with block/thread ids as host loops, callable on numpy."""
    from mlir import ir
    from mlir.dialects import bufferization, func, memref

    from ember.backends.gpu.simt_gemm import HostMapping, emit_gemm
    from ember.dialect import new_context
    from ember.compiler import compile_mlir
    from ember.kit.builders import GemmOperands

    with new_context(), ir.Location.unknown():
        f32 = ir.F32Type.get()
        shapes = [[spec.m, spec.k], [spec.k, spec.n]] + [[spec.n]] * spec.bias + \
            [[spec.m, spec.n]] * spec.residual
        out_type = ir.RankedTensorType.get([spec.m, spec.n], f32)
        module = ir.Module.create()
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("main", ([ir.RankedTensorType.get(s, f32) for s in shapes],
                                      [out_type]))
            entry = fn.add_entry_block()
            with ir.InsertionPoint(entry):
                args = [bufferization.to_buffer(ir.MemRefType.get(s, f32), a, read_only=True)
                        for s, a in zip(shapes, entry.arguments)]
                out = memref.alloc(ir.MemRefType.get([spec.m, spec.n], f32), [], [])
                emit_gemm(spec, GemmOperands.from_args(spec, args + [out]), tile,
                          HostMapping(tile.threads))
                func.ReturnOp([bufferization.to_tensor(out_type, out, restrict=True)])
        text = str(module)
    return compile_mlir(text)


@pytest.mark.parametrize("m,n,k,tile", [
    (70, 45, 37, dict(bm=32, bn=32, bk=8, tm=4, tn=2)),     # tails in M, N and K
    (64, 64, 32, dict(bm=32, bn=32, bk=16, tm=4, tn=4)),    # whole tiles
    (5, 130, 17, dict()),                                   # the default tile, M < BM
])
def test_gemm_tiling_on_host_matches_numpy(m, n, k, tile):
    from ember.backends.gpu.simt_gemm import GemmTile, GpuGemmSpec
    spec = GpuGemmSpec(m=m, n=n, k=k, activation="gelu", bias=True, residual=True)
    run = _host_gemm(spec, GemmTile(**tile))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    bias, residual = rng.standard_normal(n, np.float32), rng.standard_normal((m, n), np.float32)
    expected = torch.nn.functional.gelu(torch.from_numpy(a @ b + bias)).numpy() + residual
    np.testing.assert_allclose(run(a, b, bias, residual), expected, atol=2e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- errors
def test_dynamic_shapes_are_refused(mlp_block):
    batch = torch.export.Dim("batch", min=1, max=64)
    with pytest.raises(Exception, match="static example shapes"):
        ember.compile(mlp_block, (torch.randn(8, 512),), target="cuda",
                      dynamic_shapes={"x": {0: batch}})


def test_compiled_cuda_model_without_a_device_raises(mlp_block):
    compiled = ember.compile(mlp_block, (torch.randn(8, 512),), target="cuda")
    assert compiled.runtime is None and compiled.not_loaded_because
    with pytest.raises(RuntimeError, match="cannot run in this process"):
        compiled(torch.randn(8, 512))


def test_unknown_arch_is_refused():
    from ember.targets import get_target
    with pytest.raises(ValueError, match="sm_80"):
        get_target("cuda:arch=sm_52")
