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
        y = torch.lgamma(x)     # no ember op, no torch-mlir lowering
        z = torch.histc(x, 4)   # the same
        return y, z


def _line_of(text: str) -> int:
    source, start = inspect.getsourcelines(TwoUnsupportedOps.forward)
    return start + next(i for i, line in enumerate(source) if text in line)


def test_unsupported_ops_are_all_listed_with_source_lines():
    with pytest.raises(UnsupportedOpsError) as info:
        ember.compile(TwoUnsupportedOps(), (torch.randn(2, 8),))
    message = str(info.value)
    assert "aten.lgamma" in message and "aten.histc" in message
    this_file = os.path.basename(__file__)
    assert f"{this_file}:{_line_of('lgamma')}" in message
    assert f"{this_file}:{_line_of('histc')}" in message
    assert "hint:" in message and "torch.constant" not in message
    assert {op.aten_op for op in info.value.ops} == {"aten.lgamma", "aten.histc"}


class AttentionWithBroadcastBatch(torch.nn.Module):
    def forward(self, q, k, v):
        attended = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return torch.cumsum(attended, dim=1)


def test_a_conversion_failing_as_a_whole_blames_only_the_op_it_rejected():
    """torch-mlir's TMTensor conversion rejects attention over broadcast batch dims and so
    fails for the whole function, leaving the cumsum it would convert unconverted too: only
    the attention is the model's problem."""
    with pytest.raises(UnsupportedOpsError) as info:
        ember.compile(AttentionWithBroadcastBatch(),
                      (torch.randn(1, 2, 4, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 8)))
    assert [op.aten_op for op in info.value.ops] == ["aten.scaled_dot_product_attention"]
    line = inspect.getsourcelines(AttentionWithBroadcastBatch.forward)[1] + 1
    assert f"{os.path.basename(__file__)}:{line}" in str(info.value)


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
