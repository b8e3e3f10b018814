"""The `ember` command: info, verify and bench on a compiled artifact."""
from __future__ import annotations

import os

import pytest
import torch

import ember
from ember.tools.cli import main


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return torch.sigmoid(self.fc(x))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    batch = torch.export.Dim("batch", min=1, max=32)
    compiled = ember.compile(Tiny().eval(), (torch.randn(2, 8),),
                             dynamic_shapes={"x": {0: batch}})
    return compiled.save(str(tmp_path_factory.mktemp("cli") / "tiny.ember"))


def test_info_describes_signature(artifact, capsys):
    assert main(["info", artifact]) == 0
    out = capsys.readouterr().out
    assert "x: float32" in out and "max [32, 4]" in out and "in [1, 32]" in out


def test_verify_then_tamper(artifact, capsys, tmp_path):
    assert main(["verify", artifact]) == 0
    import shutil
    copy = shutil.copytree(artifact, tmp_path / "tampered")
    with open(os.path.join(copy, "weights.safetensors"), "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\1")
    assert main(["verify", str(copy)]) == 1
    assert "sha256" in capsys.readouterr().err


def test_bench_prints_median(artifact, capsys):
    assert main(["bench", artifact, "-s", "s0=4", "--runs", "5"]) in (0,)
    assert "median" in capsys.readouterr().out


def _torch_reference(model, x_file, out_dir):
    import numpy as np
    with torch.no_grad():
        expected = model(torch.from_numpy(np.load(x_file)))
    got = np.load(os.path.join(out_dir, "output_0.npy"))
    return got, expected.numpy()


def test_compile_a_saved_program_then_run_it(tmp_path, capsys):
    """A torch.export.save'd program brings its example inputs and its dynamic dim (with its
    range); `ember run` reads .npy inputs and writes .npy outputs."""
    import numpy as np
    from compare import assert_close
    torch.manual_seed(0)
    model = Tiny().eval()
    program = torch.export.export(model, (torch.randn(4, 8),), dynamic_shapes={
        "x": {0: torch.export.Dim("b", min=1, max=48)}})
    torch.export.save(program, str(tmp_path / "tiny.pt2"))
    artifact = str(tmp_path / "tiny.ember")
    assert main(["compile", str(tmp_path / "tiny.pt2"), "-o", artifact]) == 0
    assert main(["info", artifact]) == 0
    assert "in [1, 48]" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", torch.randn(13, 8).numpy())
    assert main(["run", artifact, "--input", f"x={tmp_path / 'x.npy'}",
                 "--output-dir", str(tmp_path / "out")]) == 0
    assert "output_0: float32[13, 4]" in capsys.readouterr().out
    got, expected = _torch_reference(model, tmp_path / "x.npy", tmp_path / "out")
    assert_close(torch.from_numpy(got), torch.from_numpy(expected))


def test_compile_a_factory_with_inputs_dynamic_dims_and_options(tmp_path, monkeypatch, capsys):
    (tmp_path / "factory_model.py").write_text(
        "import torch\n"
        "def make():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU())\n")
    monkeypatch.chdir(tmp_path)
    artifact = str(tmp_path / "f.ember")
    assert main(["compile", "factory_model:make", "--input", "x=4x64:float32", "--dynamic",
                 "x:0=1..32", "--quantize", "w8", "-o", artifact]) == 0
    assert main(["info", artifact]) == 0
    out = capsys.readouterr().out
    assert "input: float32['s0', 64]" in out and "in [1, 32]" in out     # Sequential's `input`


@pytest.mark.parametrize("argv, message", [
    (["compile", "nope.pt2", "-o", "x"], "No such file"),
    (["compile", "factory_model", "-o", "x"], "expected a .pt2 file or module:factory"),
    (["compile", "os:getcwd", "--input", "x=4by4", "-o", "x"], "expected NAME=D0xD1"),
])
def test_compile_errors_are_named(argv, message, capsys):
    assert main(argv) == 1
    assert message in capsys.readouterr().err
