"""The example MLP block end to end: static batches, one dynamic-batch artifact, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from compare import assert_close


@pytest.mark.parametrize("batch", [1, 64, 1024])
def test_static_batch_matches_pytorch(mlp_block, batch):
    x = torch.randn(batch, 512)
    compiled = ember.compile(mlp_block, (x,))
    with torch.no_grad():
        assert_close(compiled(x), mlp_block(x))


@pytest.fixture(scope="module")
def dynamic_mlp(mlp_block):
    batch = torch.export.Dim("batch", min=1, max=2048)
    return ember.compile(mlp_block, (torch.randn(4, 512),), dynamic_shapes={"x": {0: batch}})


@pytest.mark.parametrize("batch", [1, 33, 300])
def test_dynamic_batch_one_artifact(mlp_block, dynamic_mlp, batch):
    x = torch.randn(batch, 512)
    with torch.no_grad():
        expected = mlp_block(x)
    assert_close(dynamic_mlp(x), expected)


def test_dynamic_batch_numpy_in_numpy_out(mlp_block, dynamic_mlp):
    x = np.random.default_rng(0).standard_normal((5, 512), dtype=np.float32)
    out = dynamic_mlp(x)
    assert isinstance(out, np.ndarray)
    with torch.no_grad():
        expected = mlp_block(torch.from_numpy(x))
    assert_close(out, expected)


def test_dynamic_output_maximum_shape(dynamic_mlp):
    assert tuple(dynamic_mlp.runtime.get_output_maximum_shape(0)) == (2048, 512)


def test_batch_outside_declared_range_is_refused(dynamic_mlp):
    with pytest.raises(ValueError, match="x"):
        dynamic_mlp(torch.randn(4096, 512))


def test_save_and_load_round_trip(mlp_block, dynamic_mlp, tmp_path):
    path = dynamic_mlp.save(str(tmp_path / "mlp.ember"))
    model = ember.load(path)
    x = torch.randn(7, 512)
    out = torch.empty(7, 512)
    shapes = model.run({"x": x}, {"output_0": out})
    assert [tuple(s) for s in shapes] == [(7, 512)]
    with torch.no_grad():
        assert_close(out, mlp_block(x))


def test_weights_stay_out_of_the_code(dynamic_mlp):
    """The GEMM weights, transposed (and packed) at compile time, live in weights.safetensors,
    not in the shared library; the untransposed originals are gone."""
    import os
    manifest = dynamic_mlp.runtime.manifest
    names = {c["name"] for c in manifest["constants"]}
    for layer in ("fc1", "fc2"):
        assert any(n.startswith(f"{layer}.weight.transpose") for n in names), names
        assert f"{layer}.weight" not in names
    assert "norm.weight" in names
    library = os.path.join(dynamic_mlp.artifact_dir, "model.so")
    assert os.path.getsize(library) < 1 << 20  # the weights alone are 8 MiB


def test_compile_timings_cover_each_stage(dynamic_mlp):
    """`compile_timings` reports the seconds spent in each stage, within the total. (Tests check
    what the compiler produces, never how fast: speed is the benchmarks' business.)"""
    timings = dynamic_mlp.compile_timings
    assert set(timings) == {"frontend", "passes", "codegen", "total"}
    assert 0 < timings["frontend"] + timings["passes"] + timings["codegen"] <= timings["total"]
