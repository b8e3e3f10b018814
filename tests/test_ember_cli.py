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
