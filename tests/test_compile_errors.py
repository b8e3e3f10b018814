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


class Svd(torch.nn.Module):
    def forward(self, x):
        return torch.linalg.svd(x)[1]


class Nonzero(torch.nn.Module):
    def forward(self, x):
        return torch.nonzero(x)


class EmbeddingBag(torch.nn.Module):
    """A max bag: ember decomposes the sum and mean modes, torch-mlir rejects this one."""

    def forward(self, table, ids, offsets):
        return torch.nn.functional.embedding_bag(ids, table, offsets, mode="max")


class ComplexExp(torch.nn.Module):
    def forward(self, z):
        return torch.exp(z)


class IntoLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


@pytest.mark.parametrize("model,inputs,op,called_as,reason", [
    (Svd, (torch.randn(4, 4),), "aten._linalg_svd", "linalg_svd",
     "an op torch-mlir does not know, and no ember conversion"),
    (Nonzero, (torch.randn(4, 4),), "aten.nonzero", "nonzero",
     "its output size depends on the input's values (a data-dependent shape)"),
    (EmbeddingBag, (torch.randn(5, 3), torch.tensor([0, 1, 4]), torch.tensor([0, 2])),
     "aten._embedding_bag_forward_only", "embedding_bag",
     "torch-mlir decomposed it into aten.embedding_bag.padding_idx: torch-mlir's lowering "
     "rejects it"),
    (ComplexExp, (torch.randn(4, 4, dtype=torch.complex64),), "aten.exp", "exp",
     "complex tensors (complex64) are not supported"),
    (IntoLinear, (torch.randint(0, 5, (2, 4)),), "aten.linear",
     "linear in module 'fc' (Linear)", "different dtypes (int64, float32, float32)"),
], ids=["op-without-definition", "data-dependent-size", "decomposed-op", "complex-input",
        "int64-into-linear"])
def test_unsupported_op_names_the_users_call_line_and_reason(model, inputs, op, called_as,
                                                             reason):
    """The error names the call the user wrote (not `operator`, `vtensor.literal`, the
    `aten.mm` of a decomposed Linear or an op of the lowering), its line, and why, whether
    refused at export (nonzero's data-dependent size), before torch-mlir's lowering (a complex
    op it cannot lower: a complex sum aborted the process there) or after it."""
    with pytest.raises(UnsupportedOpsError) as info:
        ember.compile(model(), inputs)
    assert len(info.value.ops) == 1, str(info.value)
    entry = info.value.ops[0]
    source, start = inspect.getsourcelines(model.forward)
    assert entry.aten_op == op
    assert entry.source.endswith(f"{os.path.basename(__file__)}:{start + len(source) - 1}")
    assert entry.call == f"called as {called_as}"
    assert reason in entry.reason
    message = str(info.value)
    assert f"{op} (called as {called_as}) at " in message
    for wrong in ("operator", "vtensor.literal", "aten.mm ", "aten.mul.Scalar"):
        assert wrong not in message


class ComplexSum(torch.nn.Module):
    def forward(self, z):
        return z.sum(1)


def test_complex_reduction_is_refused_without_crashing():
    """torch-mlir's linalg lowering of a complex sum aborts the process (LLVM ERROR): it is
    named and refused before that lowering runs."""
    with pytest.raises(UnsupportedOpsError, match=r"aten.sum.dim_IntList \(called as sum\).*"
                                                  r"complex tensors \(complex128\)"):
        ember.compile(ComplexSum(), (torch.randn(3, 4, dtype=torch.complex128),))


def test_text_mlir_would_abort_on_is_refused_with_its_location():
    """A dense array of index elements makes MLIR's parser assert (SIGABRT); ember refuses it
    first, naming the line and column (compile_mlir's own worker is not killed)."""
    from ember.compiler import compile_mlir
    text = ("func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> attributes "
            "{a = array<index: 2>} {\n  return %x : tensor<4xf32>\n}\n")
    with pytest.raises(ValueError, match=r'loc\("<string>":1:69\): a dense array cannot hold'):
        compile_mlir(text)
