"""Each target's stage table, as `ember.compile` runs it: every stage's output kept in
`dump_dir`, target facts stamped on the IR, a failing pass named with an `ember-opt --target`
repro of its stage only, and CompileOptions composing with keyword arguments."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import pytest
import torch

import ember
from ember.targets import get_target
from ember.backends.base import PassStage, stage_names
from ember.compiler import CompileOptions, compile_to_stage, stage_table
from ember.pipeline.pipeline import PipelineFailure
from ember.pipeline.target_info import TARGET_ATTR, TargetInfo

#: Which tool each target's last stages need, where one is needed.
TOOLS = {"host": "cc", "aarch64": "aarch64-linux-gnu-gcc", "cuda": None, "rocm": "ld.lld"}


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)
        self.norm = torch.nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(torch.relu(self.fc(x)))


def _example():
    torch.manual_seed(0)
    return Tiny().eval(), (torch.randn(4, 16),)


@pytest.mark.parametrize("target", sorted(TOOLS))
def test_dump_dir_keeps_every_stage(target, tmp_path):
    tool = TOOLS[target]
    if tool is not None and shutil.which(tool) is None:
        pytest.skip(f"needs {tool}")
    model, inputs = _example()
    ember.compile(model, inputs, target=target, dump_dir=str(tmp_path))
    names = stage_names(stage_table(get_target(target), CompileOptions(target=target)))
    dumped = sorted(os.listdir(tmp_path))
    assert [re.sub(r"^\d\d-", "", os.path.splitext(f)[0]) for f in dumped] == names
    for index, stage in enumerate(stage_table(get_target(target), CompileOptions())):
        if isinstance(stage, PassStage):             # the IR after every pass stage
            (path,) = glob.glob(os.path.join(tmp_path, f"{index:02d}-{stage.name}.mlir"))
            with open(path) as f:
                text = f.read()
            assert TARGET_ATTR in text and f'kind = "{target}"' in text


def test_dump_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_DUMP_DIR", str(tmp_path))
    model, inputs = _example()
    ember.compile(model, inputs)
    assert "00-graph.mlir" in os.listdir(tmp_path)


def test_failing_upstream_pass_names_itself_with_an_aarch64_repro(tmp_path):
    """Without ember-bind-weights the weight reaches bufferization: one-shot-bufferize fails
    inside the aarch64 lowering, and the repro replays that stage, with the target's facts,
    on this (x86) machine."""
    model, inputs = _example()
    with pytest.raises(PipelineFailure) as info:
        ember.compile(model, inputs, target="aarch64:preset=graviton3",
                      disabled_passes=("ember-bind-weights",), repro_dir=str(tmp_path))
    failure = info.value
    assert failure.pass_name == "one-shot-bufferize" and failure.stage == "bufferize"
    message = str(failure)
    assert "pass 'one-shot-bufferize' failed in stage 'bufferize'" in message
    command = re.search(r"ember-opt .*", message).group(0)
    assert "--target=" in command and "aarch64" in command and "graviton3" in command
    assert "ember-conv-winograd" not in command          # only the failing stage's passes
    with open(failure.repro_path) as f:
        saved = f.read()
    assert 'kind = "aarch64"' in saved and "neoverse-v1" in saved
    proc = subprocess.run(command, shell=True, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "pass 'one-shot-bufferize' failed" in proc.stderr
    assert "op was not bufferized" in proc.stderr


def test_target_facts_round_trip_through_the_ir():
    info = get_target("aarch64:preset=graviton3").info
    assert (info.vector_lanes, info.cores, info.l1d) == (8, 64, 64 << 10)
    module = compile_to_stage('func.func @main(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {\n'
                              '  return %x : tensor<2x3xf32>\n}', "graph",
                              target="aarch64:preset=graviton3")
    assert TargetInfo.stamped_on(module) == info
    assert get_target(info.spec).info == info            # the spec rebuilds the same facts
    cuda = get_target("cuda:arch=sm_90").info
    assert (cuda.warp_size, cuda.tensor_cores, cuda.arch) == (32, True, "sm_90")
    assert get_target("rocm").info.warp_size == 64


def test_compile_to_stage_stops_after_the_named_stage():
    text = ('func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {\n'
            '  %0 = "ember.unary"(%x) {kind = "relu"} : (tensor<4x8xf32>) -> tensor<4x8xf32>\n'
            '  return %0 : tensor<4x8xf32>\n}')
    lowered = str(compile_to_stage(text, "lower"))
    assert "linalg.generic" in lowered and "memref" not in lowered
    assert "memref<4x8xf32>" in str(compile_to_stage(text, "bufferize"))
    with pytest.raises(ValueError, match="no stage 'bogus'"):
        compile_to_stage(text, "bogus")
    with pytest.raises(ValueError, match="after code generation began"):
        compile_to_stage(text, "library")


def test_options_and_keywords_compose():
    """`options=` is not overwritten by the defaults of the keywords, and keywords apply on
    top of it."""
    model, inputs = _example()
    options = CompileOptions(target="aarch64", merge_parallel_linears=False)
    compiled = ember.compile(model, inputs, options=options)
    with open(os.path.join(compiled.artifact_dir, "manifest.json")) as f:
        assert '"aarch64"' in f.read()
    assert compiled.runtime is None and "aarch64" in compiled.not_loaded_because
    assert options == CompileOptions(target="aarch64", merge_parallel_linears=False)
    assert set(compiled.compile_timings) >= {"frontend", "passes", "codegen", "total"}
    host = ember.compile(model, inputs, options=options, target="host")
    assert host.runtime is not None
    with torch.no_grad():
        assert torch.allclose(host(*inputs), model(*inputs), atol=1e-5)
    with pytest.raises(TypeError, match="unknown compile option"):
        ember.compile(model, inputs, options=options, bogus=1)


def test_disabled_and_configured_passes_are_checked():
    model, inputs = _example()
    with pytest.raises(ValueError, match="cannot disable"):
        ember.compile(model, inputs, disabled_passes=("ember-no-such-pass",))
    with pytest.raises(ValueError, match="has no option"):
        ember.compile(model, inputs, pass_options={"ember-conv-winograd": {"bogus": 1}})
