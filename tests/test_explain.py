"""`ember.explain` / `ember explain`: one line per op of the fused graph, in order, each naming
its aten op and the model's source line (checked against the model's code), GEMMs and
convolutions their fused epilogue and their kernel's schedule."""
from __future__ import annotations

import os
import re
import sys

import pytest

import ember
from ember.tools.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.models import WORKLOADS  # noqa: E402

#: Where the workloads' code lives (the CNN's blocks are the ResNet example's).
SOURCES = [os.path.join(ROOT, "benchmarks", "models.py"), os.path.join(ROOT, "examples",
                                                                      "resnet.py")]
LINE = re.compile(r"# (aten\.\w+) at (\S+):(\d+)$")


@pytest.mark.parametrize("workload, kernels", [("bert", "ember.gemm"), ("cnn", "ember.conv2d")])
def test_every_line_names_its_source_line(workload, kernels):
    w = WORKLOADS[workload]
    text = ember.explain(w.make_model(2), w.make_inputs(2))
    header, *lines = text.splitlines()
    assert header.startswith("# ember.explain") and lines
    code = {os.path.realpath(p): open(p).read().splitlines() for p in SOURCES}
    for line in lines:
        found = LINE.search(line)
        assert found, line
        path, number = os.path.realpath(found.group(2)), int(found.group(3))
        assert path in code, line
        # the named line is code of the model (a call of the op, or the statement it is in)
        text = code[path][number - 1].strip()
        assert text and not text.startswith("#"), line
    contractions = [line for line in lines if f"= {kernels}(" in line]
    assert contractions and all("kernel ember_gemm_" in line and "tile " in line
                                for line in contractions)
    assert any("epilogue " in line for line in contractions)


def test_command_line_explains_a_factory(capsys, monkeypatch):
    monkeypatch.chdir(os.path.join(ROOT, "examples"))
    assert main(["explain", "mlp_block:MLPBlock", "--input", "x=4x512:float32"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# ember.explain: 3 ops")
    assert "epilogue bias+gelu" in out[1] and "mlp_block.py:" in out[1]
    assert "= ember.layer_norm(" in out[3]


def test_compiled_model_explains_itself():
    from mlp_block import MLPBlock
    import torch
    model = MLPBlock(64, 128).eval()
    compiled = ember.compile(model, (torch.randn(4, 64),))
    text = compiled.explain()
    assert text.startswith("# ember.explain: 3 ops") and "epilogue bias+gelu" in text
    del model
    import gc
    gc.collect()
    with pytest.raises(ValueError, match="needs the model"):
        compiled.explain()


def test_static_int8_model_explains_its_int8_ops():
    """Static int8 quantizes the model before it is captured: `ember.explain` and the compiled
    model's `explain()` show the int8 GEMMs it runs, not the float graph."""
    import torch
    import ember.quant
    from mlp_block import MLPBlock
    torch.manual_seed(0)
    model, x = MLPBlock(64, 128).eval(), torch.randn(4, 64)
    scheme = ember.quant.Int8(mode="static", calibration=[torch.randn(4, 64)])
    text = ember.explain(model, (x,), quantize=scheme)
    assert text.count("ember.qgemm(") == 2 and "ember.gemm(" not in text, text
    compiled = ember.compile(model, (x,), quantize=scheme)
    assert compiled.explain() == text


def test_dynamic_dims_are_named_by_their_symbols():
    """A dynamic batch and sequence show as s0, s1 on every ember op, never as `?`."""
    import torch
    w = WORKLOADS["bert"]
    batch, seq = torch.export.Dim("batch", min=1, max=16), torch.export.Dim("seq", min=2,
                                                                             max=128)
    text = ember.explain(w.make_model(2), w.make_inputs(2),
                         dynamic_shapes=({0: batch, 1: seq},))
    ops = [line.split("  # ")[0] for line in text.splitlines() if "= ember." in line]
    assert ops and all("?" not in line for line in ops), [l for l in ops if "?" in l]
    assert any("ember.attention(" in line and "[s0,s1,4,64] f32" in line for line in ops)
    assert any("ember.gemm(" in line and "-> [s0,s1,768] f32" in line for line in ops)


class _Fallbacks:
    """A model with ops ember leaves to torch-mlir's linalg lowering: named in explain."""

    @staticmethod
    def make():
        import torch

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.grouped = torch.nn.Conv2d(4, 4, 3, groups=2)

            def forward(self, x, y):
                running = x.cumsum(-1)                          # no ember op
                return running + 1, self.grouped(y)             # grouped, not depthwise
        return Model().eval(), (torch.randn(2, 8), torch.randn(1, 4, 6, 6))


def test_ops_that_took_the_fallback_are_listed_with_why():
    model, inputs = _Fallbacks.make()
    text = ember.explain(model, inputs)
    tail = text[text.index("took torch-mlir's linalg fallback"):].splitlines()[1:]
    source = open(__file__).read().splitlines()
    reasons = {}
    for line in tail:
        found = re.match(r"#   (aten\.\w+) at (\S+):(\d+): (.*)$", line)
        assert found, line
        assert os.path.realpath(found.group(2)) == os.path.realpath(__file__)
        assert found.group(1).split(".")[1] in source[int(found.group(3)) - 1] or \
            "grouped" in source[int(found.group(3)) - 1]
        reasons[found.group(1)] = found.group(4)
    assert reasons["aten.cumsum"] == "ember has no op for it"
    assert reasons["aten.convolution"].startswith("ember's conversion does not take these "
                                                  "operands ([1,4,6,6] f32, [4,2,3,3] f32")
