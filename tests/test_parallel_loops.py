"""ember-parallelize-loops end to end: models without GEMMs (LayerNorm, GELU, softmax, mean, pad,
concat) whose ops are above or below the split threshold, static and with a dynamic batch,
each run on 1 and on 2 OpenMP threads and compared with PyTorch."""
from __future__ import annotations

import glob
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ember
from compare import assert_close
from ember.runtime import Model

THREADS = (1, 2)


class RowOps(nn.Module):
    """LayerNorm, GELU and softmax over rows, then a mean over the rows of each batch entry:
    the serial work between the GEMMs of a transformer, with no GEMM of its own."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)
            self.norm.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        y = torch.softmax(F.gelu(self.norm(x)), dim=-1)
        return y, y.mean(dim=1)


class PadConcat(nn.Module):
    """Zero padding of an image batch (a fill and a copy of the interior) and a concat."""

    def forward(self, x):
        padded = F.pad(torch.relu(x), (1, 1, 1, 1))
        return torch.cat([padded, padded * 2.0], dim=1)


def _check_threads(compiled, model, *inputs) -> None:
    """Runs the artifact with each thread count and compares every output with PyTorch."""
    with torch.no_grad():
        expected = model(*inputs)
    for threads in THREADS:
        runtime = Model(compiled.artifact_dir, num_threads=threads)
        assert_close(runtime(*inputs), expected, what=f"{threads} thread(s), output")


def _forks(dump_dir) -> int:
    """OpenMP parallel regions in the compiled code (none of these models has a GEMM, so every
    one comes from ember-parallelize-loops)."""
    (llvm_ir,) = glob.glob(os.path.join(dump_dir, "*-llvm-ir.ll"))
    with open(llvm_ir) as f:
        return f.read().count("call void (ptr, i32, ptr, ...) @__kmpc_fork_call")


@pytest.mark.parametrize("shape, split", [((8, 128, 256), True), ((2, 4, 16), False)])
def test_row_ops(tmp_path, shape, split):
    torch.manual_seed(0)
    model = RowOps(shape[-1]).eval()
    x = torch.randn(*shape)
    compiled = ember.compile(model, (x,), dump_dir=str(tmp_path))
    assert (_forks(tmp_path) > 0) == split
    _check_threads(compiled, model, x)


@pytest.mark.parametrize("shape, split", [((8, 16, 64, 64), True), ((1, 2, 4, 4), False)])
def test_pad_concat(tmp_path, shape, split):
    model = PadConcat().eval()
    x = torch.randn(*shape)
    compiled = ember.compile(model, (x,), dump_dir=str(tmp_path))
    assert (_forks(tmp_path) > 0) == split
    _check_threads(compiled, model, x)


@pytest.fixture(scope="module")
def dynamic_row_ops():
    torch.manual_seed(0)
    model = RowOps(64).eval()
    batch = torch.export.Dim("batch", min=1, max=64)
    compiled = ember.compile(model, (torch.randn(4, 32, 64),),
                             dynamic_shapes={"x": {0: batch}})
    return model, compiled


# 1 x 32 x 64 runs the serial branch of each split op, 64 x 32 x 64 the parallel one.
@pytest.mark.parametrize("batch", [1, 3, 64])
def test_dynamic_batch(dynamic_row_ops, batch):
    model, compiled = dynamic_row_ops
    _check_threads(compiled, model, torch.randn(batch, 32, 64))
