"""Models that change their inputs or buffers in place: each mutation is an extra output of the
compiled code that the runtime writes back (into the caller's tensor, or into the stored buffer
the next run reads), from Python and from C, as AOTInductor does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

import ember
from ember.frontend import UnsupportedOpsError
from ember.artifact.store import ArtifactError
from ember.runtime import ArgumentError, Model
from compare import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_both(model, *inputs):
    """Runs `model` eagerly and compiled, each on its own copies of `inputs`; returns
    (eager result, eager inputs after, compiled result, compiled inputs after)."""
    compiled = ember.compile(model, [x.clone() for x in inputs])
    eager_inputs = [x.clone() for x in inputs]
    ember_inputs = [x.clone() for x in inputs]
    with torch.no_grad():
        expected = model(*eager_inputs)
    return expected, eager_inputs, compiled(*ember_inputs), ember_inputs


class CopyInto(torch.nn.Module):
    def forward(self, x, y):
        x.copy_(y * 2)
        return x + 1


class FillAndZero(torch.nn.Module):
    def forward(self, x, y):
        x.fill_(3.0)
        y.zero_()
        return x * 2


class SliceAssign(torch.nn.Module):
    def forward(self, x, v):
        x[1:3] = v
        return x.sum(0, keepdim=True)


class AddOut(torch.nn.Module):
    def forward(self, a, b, out):
        torch.add(a, b, out=out)
        return out * 2


class IndexPut(torch.nn.Module):
    def forward(self, x, v):
        x.index_put_((torch.tensor([0, 2]),), v)
        return x * 2


class Counter(torch.nn.Module):
    """A stateful module: a running count buffer, updated by every call."""

    def __init__(self):
        super().__init__()
        self.register_buffer("count", torch.zeros(1))

    def forward(self, x):
        self.count += 1
        return x * self.count


@pytest.mark.parametrize("model, shapes", [
    (CopyInto().eval(), [(2, 3), (2, 3)]),
    (FillAndZero().eval(), [(4,), (4,)]),
    (SliceAssign().eval(), [(4, 3), (2, 3)]),
    (AddOut().eval(), [(5,), (5,), (5,)]),
], ids=["copy_", "fill_zero_", "slice_assign", "out="])
def test_mutated_inputs_are_written_back(model, shapes):
    torch.manual_seed(0)
    expected, eager_inputs, result, ember_inputs = run_both(
        model, *[torch.randn(shape) for shape in shapes])
    assert_close(result, expected)
    for after_ember, after_eager in zip(ember_inputs, eager_inputs):
        assert_close(after_ember, after_eager)


def test_index_put_is_written_back_or_named_as_unsupported():
    """index_put's lowering is not in every build: either the write-back is right, or the error
    names the op and this file's line (never a crash or a wrong answer)."""
    x, v = torch.zeros(4), torch.tensor([5.0, 7.0])
    try:
        expected, eager_inputs, result, ember_inputs = run_both(IndexPut().eval(), x, v)
    except UnsupportedOpsError as e:
        assert "index_put" in str(e) and "test_mutation.py" in str(e)
        return
    assert_close(result, expected)
    assert_close(ember_inputs[0], eager_inputs[0])


def test_buffer_mutation_carries_over_to_the_next_call(tmp_path):
    module = Counter().eval()
    compiled = ember.compile(module, (torch.ones(3),))
    assert module.count.item() == 0                   # compiling never runs the module
    x = torch.tensor([1.0, 2.0, 3.0])
    for step in (1, 2, 3):
        assert_close(compiled(x), x * step)
    # A fresh load starts again from the buffer's value at compile time.
    saved = Model(compiled.save(str(tmp_path / "counter")))
    assert_close(saved(x), x)
    assert_close(saved(x), x * 2)


def test_write_only_buffer_is_dropped():
    """A buffer forward only writes is read by no later call: its new value is computed but
    written nowhere, and not returned."""
    class Remember(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("last", torch.zeros(3))

        def forward(self, x):
            self.last.copy_(x)
            return x * 2

    compiled = ember.compile(Remember().eval(), (torch.ones(3),))
    with open(os.path.join(compiled.artifact_dir, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["constants"] == [] and "writes_back" not in manifest["outputs"][0]
    x = torch.tensor([1.0, 2.0, 3.0])
    assert_close(compiled(x), x * 2)


def test_mutated_input_with_a_dynamic_dim():
    batch = torch.export.Dim("batch", max=64)
    example = torch.zeros(4, 3)
    compiled = ember.compile(CopyInto().eval(), (example, torch.zeros(4, 3)),
                             dynamic_shapes={"x": {0: batch}, "y": {0: batch}})
    assert example.abs().sum() == 0                    # compiling never writes the examples
    x, y = torch.zeros(9, 3), torch.randn(9, 3)
    assert_close(compiled(x, y), y * 2 + 1)
    assert_close(x, y * 2)


def test_manifest_marks_write_backs_and_hides_them_from_calls():
    compiled = ember.compile(CopyInto().eval(), (torch.zeros(2), torch.zeros(2)))
    with open(os.path.join(compiled.artifact_dir, "manifest.json")) as f:
        outputs = json.load(f)["outputs"]
    assert [o.get("writes_back") for o in outputs] == [{"input": "x"}, None]
    result = compiled(torch.zeros(2), torch.ones(2))
    assert isinstance(result, torch.Tensor)            # only forward's result comes back


def test_non_contiguous_mutated_input_is_written_back():
    compiled = ember.compile(CopyInto().eval(), (torch.zeros(3, 2), torch.zeros(3, 2)))
    x = torch.zeros(2, 3).t()                          # a transposed view: not contiguous
    y = torch.randn(3, 2)
    compiled(x, y)
    assert_close(x, y * 2)


def test_numpy_mutated_input_is_written_back_and_read_only_refused():
    compiled = ember.compile(CopyInto().eval(), (torch.zeros(2), torch.zeros(2)))
    x, y = np.zeros(2, np.float32), np.array([1.5, -2.0], np.float32)
    compiled.runtime(x, y)
    np.testing.assert_array_equal(x, y * 2)
    x.flags.writeable = False
    with pytest.raises(ArgumentError, match="changes this input in place"):
        compiled.runtime(x, y)


def test_in_place_random_fill_is_written_back():
    class Noise(torch.nn.Module):
        def forward(self, x):
            x.normal_()
            return x + 1

    compiled = ember.compile(Noise().eval(), (torch.zeros(64),))
    x = torch.zeros(64)
    out = compiled(x)
    assert x.std() > 0.5                               # filled with random values
    assert_close(out, x + 1)                           # ... the same ones forward then read


def test_gpu_targets_refuse_mutation_clearly():
    with pytest.raises(NotImplementedError, match=r"changes \['x'\] in place.*CPU target"):
        ember.compile(CopyInto().eval(), (torch.zeros(2), torch.zeros(2)), target="cuda")


class CopyAndCount(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("count", torch.zeros(3))

    def forward(self, x, y):
        x.copy_(y * 2)
        self.count += 1
        return {"sum": x + self.count, "calls": 1}


@pytest.fixture(scope="module")
def c_write_back(tmp_path_factory):
    """A compiled CopyAndCount and tests/c/write_back.c built against it (it loads artifacts
    with ember_load, which checks them first)."""
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler (cc)")
    directory = tmp_path_factory.mktemp("write_back")
    artifact = ember.compile(CopyAndCount().eval(), (torch.zeros(3), torch.zeros(3))) \
        .save(str(directory / "model"))
    programs = {}
    for name, source in (("write_back", "tests/c/write_back.c"),
                         ("run_model", "examples/c/run_model.c")):
        programs[name] = str(directory / name)
        subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-I", artifact, "-o", programs[name],
                        os.path.join(ROOT, source), "-ldl"],
                       check=True, capture_output=True, text=True)

    def run(path, program="write_back"):
        return subprocess.run([programs[program], path], capture_output=True, text=True,
                              timeout=60)
    return artifact, run


def test_c_api_writes_back_inputs_and_buffers(c_write_back):
    artifact, run = c_write_back
    result = run(artifact)
    assert result.returncode == 0, result.stderr
    # Inputs start as x = 1 2 3 and y = 2 4 6 (write_back.c); x becomes 2y, count counts runs.
    assert result.stdout.splitlines() == [
        "write_back mutated.count 2 0",
        "write_back mutated.x 1 0",
        "write_back output_0 0 -1",
        "run 1 input x: 4 8 12", "run 1 input y: 2 4 6", "run 1 output output_0: 5 9 13",
        "run 2 input x: 4 8 12", "run 2 input y: 2 4 6", "run 2 output output_0: 6 10 14",
    ]


def test_run_model_example_marks_write_backs(c_write_back):
    artifact, run = c_write_back
    result = run(artifact, "run_model")
    assert result.returncode == 0, result.stderr
    signature = [line.strip() for line in result.stdout.splitlines()
                 if line.startswith("  output ")]
    assert signature == ["output 0: mutated.count float32[3] (written back to constant count)",
                         "output 1: mutated.x float32[3] (written back to input x)",
                         "output 2: output_0 float32[3]"]


@pytest.mark.parametrize("change", [
    lambda m: m["outputs"][1].pop("writes_back"),
    lambda m: m["outputs"][0].update(writes_back={"input": "y"}, shape=[3]),
    lambda m: m["output_tree"]["dict"].reverse(),
    lambda m: m["output_tree"]["dict"][1][1].update(constant=2),
], ids=["writes-back-dropped", "writes-back-retargeted", "tree-reordered", "tree-constant"])
def test_write_backs_and_output_tree_are_sealed(c_write_back, tmp_path, change):
    """What the runtime writes back and what a call returns are part of the manifest the
    library is sealed to: an edit is refused by the Python and the C loader alike."""
    artifact = str(shutil.copytree(c_write_back[0], tmp_path / "edited"))
    path = os.path.join(artifact, "manifest.json")
    manifest = json.load(open(path))
    assert manifest["output_tree"] == {"dict": [["sum", {"tensor": 2}],
                                                ["calls", {"constant": 1}]]}
    change(manifest)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with pytest.raises(ArtifactError, match="manifest.json does not match the seal in model.so"):
        Model(artifact)
    result = c_write_back[1](artifact)
    assert result.returncode == 1
    assert "manifest.json does not match the seal in model.so" in result.stderr
