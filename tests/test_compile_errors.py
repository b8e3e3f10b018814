"""Errors from ember.compile a user can act on: unsupported ops (all listed, with source lines),
a failing pass pipeline (with an ember-opt repro) and a model that mutates its state."""
from __future__ import annotations

import inspect
import os
import re
import subprocess

import pytest
import torch

import ember
from ember.frontend import UnsupportedOpsError
from ember.pipeline.pipeline import PipelineFailure


class TwoUnsupportedOps(torch.nn.Module):
    def forward(self, x):
        y = torch.cumsum(x, dim=1)   # no ember op, no linalg lowering
        z = torch.sort(x, dim=1).values  # the same
        return y + z


def _line_of(text: str) -> int:
    source, start = inspect.getsourcelines(TwoUnsupportedOps.forward)
    return start + next(i for i, line in enumerate(source) if text in line)


def test_unsupported_ops_are_all_listed_with_source_lines():
    with pytest.raises(UnsupportedOpsError) as info:
        ember.compile(TwoUnsupportedOps(), (torch.randn(2, 8),))
    message = str(info.value)
    assert "aten.cumsum" in message and "aten.sort" in message
    this_file = os.path.basename(__file__)
    assert f"{this_file}:{_line_of('cumsum')}" in message
    assert f"{this_file}:{_line_of('torch.sort')}" in message
    assert "hint:" in message
    assert {op.aten_op for op in info.value.ops} >= {"aten.cumsum", "aten.sort"}


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))


def test_failing_pipeline_prints_a_working_ember_opt_repro(tmp_path):
    # Bufferizing before ember ops are lowered fails: a genuine pass failure.
    with pytest.raises(PipelineFailure) as info:
        ember.compile(Tiny(), (torch.randn(2, 4),),
                      graph_pipeline="ember-fuse-epilogue,one-shot-bufferize",
                      repro_dir=str(tmp_path))
    message = str(info.value)
    assert "one-shot-bufferize" in message
    command = re.search(r"ember-opt .*", message).group(0)
    assert str(tmp_path) in command
    proc = subprocess.run(command, shell=True, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "one-shot-bufferize" in proc.stderr or "bufferize" in proc.stderr
