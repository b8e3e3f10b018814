"""`ember profile` / `Model.profile`: per-kernel times measured inside a profile build's code,
named after the steps of the fused graph (ember explain's numbering), adding up to the
end-to-end time on the BERT-style encoder; the table, JSON and chart (PNG, HTML) a user opens."""
from __future__ import annotations

import base64
import json
import os
import re
import sys
from html.parser import HTMLParser

import pytest
import torch

import ember
from compare import assert_close
from ember.runtime import ArgumentError, load
from ember.tools.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.models import WORKLOADS  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def encoder():
    w = WORKLOADS["bert"]
    torch.manual_seed(0)
    model, inputs = w.make_model(2), w.make_inputs(2)
    return model, inputs, ember.compile(model, inputs, profile=True)


def test_profile_build_computes_what_the_model_does(encoder):
    model, inputs, compiled = encoder
    with torch.no_grad():
        assert_close(compiled(*inputs), model(*inputs))


def test_encoder_kernel_times_add_up_to_end_to_end(encoder):
    model, inputs, compiled = encoder
    profile = compiled.profile(*inputs, runs=10)
    # The bar: what the timers in the code saw is within 10% of the run timed from Python.
    assert 0.9 * profile.end_to_end_ms <= profile.kernels_ms <= profile.end_to_end_ms
    assert abs(sum(s.share for s in profile.steps) - 1) < 1e-9
    assert [s.ms for s in profile.steps] == sorted((s.ms for s in profile.steps), reverse=True)
    # Steps carry ember explain's numbers: the same op at the same number, and every step that
    # ran code is one of the explained ops.
    explained = {int(m.group(1)): m.group(2) for m in re.finditer(
        r"^\s*(\d+)\s+%\S+ = (ember\.\w+)\(", ember.explain(model, inputs), re.M)}
    assert {s.step: s.op for s in profile.steps} == {s.step: explained[s.step]
                                                     for s in profile.steps}
    gemms = [s for s in profile.steps if s.op == "ember.gemm"]
    assert len(gemms) == 4 * 4           # merged QKV, out, two FFN per layer
    assert all(s.calls == 1 and s.gflops > 0 and s.gbps > 0 for s in gemms)
    assert all(re.search(r"aten\.\w+ at .*models\.py:\d+$", s.origin) for s in gemms)
    assert any(s.epilogue == "bias+gelu" for s in gemms)
    norms = [s for s in profile.steps if s.op == "ember.layer_norm"]
    assert norms and all(s.gflops is None and s.gbps > 0 for s in norms)
    assert profile.steps_without_code > 0       # the heads' views run no code of their own
    table = profile.table()
    assert table.startswith("# ember profile: 10 runs") and "gemm bias+gelu" in table


def test_json_png_and_html_open(encoder, tmp_path):
    _, inputs, compiled = encoder
    profile = compiled.profile(*inputs, runs=3, warmup=1)
    data = json.loads(open(profile.save_json(str(tmp_path / "p.json"))).read())
    assert data["runs"] == 3 and len(data["steps"]) == len(profile.steps)
    assert {"step", "op", "epilogue", "calls", "ms", "gflops", "gbps", "origin"} <= \
        set(data["steps"][0])
    with open(profile.save_chart(str(tmp_path / "p.png")), "rb") as f:
        assert f.read(8) == PNG

    class Page(HTMLParser):
        images, text = [], []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.images.append(dict(attrs)["src"])

        def handle_data(self, data):
            self.text.append(data)
    page = Page()
    page.feed(open(profile.save_chart(str(tmp_path / "p.html"))).read())
    prefix = "data:image/png;base64,"
    assert len(page.images) == 1 and page.images[0].startswith(prefix)
    assert base64.b64decode(page.images[0][len(prefix):])[:8] == PNG
    assert "# ember profile" in "".join(page.text)
    with pytest.raises(ValueError, match="png or an .html"):
        profile.save_chart(str(tmp_path / "p.svg"))


def test_compiled_model_profiles_a_profile_build_of_itself():
    from examples.mlp_block import MLPBlock
    model = MLPBlock(64, 128).eval()
    x = torch.randn(8, 64)
    compiled = ember.compile(model, (x,))
    assert "profile" not in compiled.runtime.manifest
    profile = compiled.profile(x, runs=3)
    assert [s.label for s in sorted(profile.steps, key=lambda s: s.step)] == \
        ["gemm bias+gelu", "gemm bias+residual", "layer_norm"]
    with pytest.raises(ArgumentError, match="no per-kernel timers"):
        compiled.runtime.profile()


def test_dynamic_shapes_profile_without_rates():
    """A dynamic dim leaves a step's size unknown at compile time: times, no rates."""
    from examples.mlp_block import MLPBlock
    model = MLPBlock(64, 128).eval()
    batch = torch.export.Dim("batch", min=1, max=32)
    compiled = ember.compile(model, (torch.randn(8, 64),), dynamic_shapes={"x": {0: batch}},
                             profile=True)
    profile = compiled.runtime.profile(symbols={"batch": 5}, runs=3)
    ops = [s for s in profile.steps if s.op.startswith("ember.")]
    assert len(ops) == 3 and all(s.gflops is None and s.gbps is None for s in ops)
    # the copy of the dynamically shaped result into the caller's buffer is no step's work
    assert {s.op for s in profile.steps} - {s.op for s in ops} <= {"(not a step)"}
    assert "-" in profile.table()


def test_profile_is_refused_on_a_target_without_timers():
    with pytest.raises(ValueError, match="profile builds time kernels on CPU targets"):
        ember.compile(torch.nn.Linear(4, 4), (torch.randn(2, 4),), target="cuda", profile=True)


def test_command_line_compiles_and_profiles(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(os.path.join(ROOT, "examples"))
    artifact = str(tmp_path / "mlp.ember")
    assert main(["compile", "mlp_block:MLPBlock", "--input", "x=4x512:float32", "--profile",
                 "-o", artifact]) == 0
    chart = str(tmp_path / "p.html")
    assert main(["profile", artifact, "--runs", "3", "--top", "2", "--chart", chart]) == 0
    out = capsys.readouterr().out
    assert "# ember profile: 3 runs" in out and "# ... 1 more steps" in out
    assert f"wrote {chart}" in out and os.path.getsize(chart) > 1000
    assert main(["profile", "mlp_block:MLPBlock", "--input", "x=4x512:float32",
                 "--runs", "2", "--json", str(tmp_path / "p.json")]) == 0
    assert "layer_norm" in capsys.readouterr().out
    plain = str(tmp_path / "plain.ember")
    assert main(["compile", "mlp_block:MLPBlock", "--input", "x=4x512:float32", "-o",
                 plain]) == 0
    assert main(["profile", plain]) == 1
    assert "no per-kernel timers" in capsys.readouterr().err
    assert load(plain).manifest.get("profile") is None


def test_a_conv_gemm_counts_every_filter_tap():
    """An implicit-GEMM conv (an ember.qgemm over patches) does KH*KW*C multiply-adds per
    output, not C: a profile's GFLOP/s of int8 convs are comparable with the f32 ones'."""
    from mlir import ir
    from ember.dialect import new_context
    from ember.kit.op_costs import op_cost
    with new_context():
        module = ir.Module.parse('''
func.func @f(%x: tensor<1x8x8x16xui8>, %w: tensor<144x32xi8>, %s: tensor<32xf32>)
    -> tensor<1x8x8x32xf32> {
  %y = "ember.qgemm"(%x, %w, %s) {activation = "none", lhs_encoding = "u7",
      lhs_patches = array<i64: 3, 3, 1, 1, 1, 1, 1, 1>, lhs_scale = 0.01 : f32,
      lhs_zero_point = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0>}
      : (tensor<1x8x8x16xui8>, tensor<144x32xi8>, tensor<32xf32>) -> tensor<1x8x8x32xf32>
  return %y : tensor<1x8x8x32xf32>
}''')
        qgemm = next(op for op in module.body.operations[0].regions[0].blocks[0].operations
                     if op.operation.name == "ember.qgemm")
        flops, _ = op_cost(qgemm)
    assert flops == 2 * 8 * 8 * 32 * 144
