"""The C runtime API (ember_runtime.h) exported by every compiled CPU artifact, used with no
Python: examples/c/run_model.c on the MLP block against PyTorch, error cases, and concurrent runs
from C threads (tests/c/threaded_runs.c). Also: the C side's shape solver on derived dims and the
Python runtime reporting the C side's messages."""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

import ember
from ember.artifact.store import ArtifactError, write_artifact
from ember.runtime import ArgumentError, Model
from ember.runtime.shapes import bind_symbols
from ember.tensor_spec import TensorSpec
from ember.symbolic import Dim
from ember.backends.cpu.c_runtime import cc_args, generate_tables
from compare import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_BATCH = 256

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


@pytest.fixture(scope="module")
def artifact(mlp_block, tmp_path_factory):
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    compiled = ember.compile(mlp_block, (torch.randn(4, 512),), dynamic_shapes={"x": {0: batch}})
    return compiled.save(str(tmp_path_factory.mktemp("c") / "mlp.ember"))


def build(source: str, artifact: str, out: str) -> str:
    """Compiles a C program with the header found in the artifact directory."""
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-I", artifact, "-o", out, source, "-ldl",
                    "-lpthread", "-lm"], check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def run_model(artifact, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bin") / "run_model")
    return build(os.path.join(ROOT, "examples", "c", "run_model.c"), artifact, out)


def call(*args, env=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300,
                          env=env)


def input_name(artifact) -> str:
    return json.load(open(os.path.join(artifact, "manifest.json")))["inputs"][0]["name"]


def test_artifact_ships_the_header_and_exports_the_api(artifact):
    manifest = json.load(open(os.path.join(artifact, "manifest.json")))
    assert manifest["code"]["host"]["abi"] == "ember-c-runtime-v1"
    assert {"ember_runtime.h", "ember_loader.h", "ember_verify.h"} <= set(manifest["files"])
    with open(os.path.join(artifact, "ember_runtime.h")) as f:
        assert "#define EMBER_ABI_VERSION 1" in f.read()
    symbols = subprocess.run(["nm", "-D", "--defined-only", os.path.join(artifact, "model.so")],
                             capture_output=True, text=True).stdout
    for name in ("ember_abi_version", "ember_model_create", "ember_model_create_verified",
                 "ember_model_run", "ember_model_output_write_back",
                 "ember_model_set_constant", "ember_model_output_shapes", "ember_runtime_get_api",
                 "ember_entry"):
        assert re.search(rf"\bT {name}$", symbols, re.M), name
    assert "ember_model_signature" not in symbols  # the tables stay internal


def test_example_matches_pytorch(mlp_block, artifact, run_model, tmp_path):
    x = torch.randn(7, 512)
    x.numpy().tofile(tmp_path / "x.bin")
    name = input_name(artifact)
    result = call(run_model, artifact, "-s", "s0=7", "-i", f"{name}=" + str(tmp_path / "x.bin"),
                  "-o", tmp_path, "-n", "3")
    assert result.returncode == 0, result.stderr
    assert f"input 0: {name} float32[s0, 512] (max [{MAX_BATCH}, 512])" in result.stdout
    assert "symbol s0 in [1, 256] = 7" in result.stdout
    assert "output output_0 float32[7, 512]" in result.stdout
    out = np.fromfile(tmp_path / "output_0.bin", np.float32).reshape(7, 512)
    with torch.no_grad():
        assert_close(out, mlp_block(x))


def test_example_deterministic_inputs(mlp_block, artifact, run_model, tmp_path):
    result = call(run_model, artifact, "-s", "s0=3", "-o", tmp_path, "-t", "1")
    assert result.returncode == 0, result.stderr
    j = np.arange(3 * 512)
    x = torch.from_numpy((((7 * j) % 23 - 11) / 11.0).astype(np.float32).reshape(3, 512))
    out = np.fromfile(tmp_path / "output_0.bin", np.float32).reshape(3, 512)
    with torch.no_grad():
        assert_close(out, mlp_block(x))


def test_example_wrong_shape(artifact, run_model):
    name = input_name(artifact)
    result = call(run_model, artifact, "-S", f"{name}=3x511")
    assert result.returncode == 1
    assert (f"error: input '{name}': dim 1 must be 512, got 511 (shape [3, 511], declared "
            f"[s0, 512])") in result.stderr


def test_example_batch_outside_range(artifact, run_model):
    result = call(run_model, artifact, "-s", f"s0={MAX_BATCH + 1}")
    assert result.returncode == 1
    assert (f"dim 0: s0 = {MAX_BATCH + 1} is outside the range [1, {MAX_BATCH}] the model was "
            f"compiled for") in result.stderr


@pytest.mark.parametrize("option, value, message", [
    ("-s", "s9=4", "the model has no symbol or input 's9'"),
    ("-S", "nope=3x512", "the model has no symbol or input 'nope'"),
    ("-i", "nope=x.bin", "the model has no symbol or input 'nope'"),
    ("-s", "s0=many", "-s s0=many: the value must be an integer"),
    ("-s", "s0=4x", "-s s0=4x: the value must be an integer"),
    ("-S", "{input}=1000000000x1000000000", "cannot allocate"),
])
def test_example_checks_its_arguments(artifact, run_model, option, value, message):
    """Unknown names, non-numbers and absurd shapes are refused with a message, exit 1."""
    result = call(run_model, artifact, option, value.format(input=input_name(artifact)))
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_example_missing_artifact_dir(run_model, tmp_path):
    result = call(run_model, tmp_path / "nowhere")
    assert result.returncode == 2
    assert "cannot open artifact directory" in result.stderr
    assert "No such file or directory" in result.stderr


def test_missing_and_mismatched_weights(artifact, run_model, tmp_path):
    copy = shutil.copytree(artifact, tmp_path / "art")
    weights = os.path.join(copy, "weights.safetensors")
    arrays = load_file(weights)
    os.remove(weights)
    result = call(run_model, copy)
    assert result.returncode == 1
    assert f"cannot open {weights}: No such file or directory" in result.stderr

    arrays["norm.weight"] = arrays["norm.weight"].astype(np.float64)
    save_file(arrays, weights)
    result = call(run_model, copy)  # the C loader checks the weights' sha256 first
    assert result.returncode == 1
    assert f"artifact file {weights} was modified or corrupted: sha256 is" in result.stderr
    with pytest.raises(ArtifactError, match=re.escape(result.stderr[len("error: "):].strip())):
        Model(copy)  # the same code from Python
    expected = (f"{weights} does not match the model: constant 'norm.weight' is stored as "
                f"F64[512], the model expects float32[512]")
    with pytest.raises(ArtifactError, match=re.escape(expected)):  # unhashed, still checked
        Model(copy, verify=False)

    del arrays["norm.weight"]
    save_file(arrays, weights)
    with pytest.raises(ArtifactError, match=f"{weights} has no array for bound constant "
                                            f"'norm.weight'"):
        Model(copy, verify=False)

    with open(weights, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(ArtifactError, match="malformed safetensors header"):
        Model(copy, verify=False)


def test_python_reports_the_c_message(artifact, run_model):
    """One runtime: the Python loader's validation message is the C runtime's."""
    name = input_name(artifact)
    c_message = call(run_model, artifact, "-S", f"{name}=3x511").stderr.strip()
    model = Model(artifact)
    with pytest.raises(ArgumentError) as info:
        model(np.zeros((3, 511), np.float32))
    assert c_message == f"error: {info.value}"


def test_threaded_runs(artifact, tmp_path):
    program = build(os.path.join(ROOT, "tests", "c", "threaded_runs.c"), artifact,
                    str(tmp_path / "threaded_runs"))
    norm = load_file(os.path.join(artifact, "weights.safetensors"))["norm.weight"]
    norm.tofile(tmp_path / "norm.bin")
    env = {**os.environ, "EMBER_NUM_THREADS": "1"}
    result = call(program, artifact, 6, 40, "norm.weight", tmp_path / "norm.bin", env=env)
    assert result.returncode == 0, result.stderr
    assert "ok: 6 threads x 40 runs" in result.stdout
    result = call(program, artifact, 4, 10)  # default thread count (OpenMP inside each run)
    assert result.returncode == 0, result.stderr


def test_null_model_handle_is_an_argument_error(artifact, tmp_path):
    """Every API function taking a model answers a NULL handle (-1, NULL or
    EMBER_ERROR_ARGUMENT with a message) instead of dereferencing it."""
    program = build(os.path.join(ROOT, "tests", "c", "null_model.c"), artifact,
                    str(tmp_path / "null_model"))
    result = call(program, artifact)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


def test_old_abi_is_refused(artifact, tmp_path):
    copy = shutil.copytree(artifact, tmp_path / "old")
    path = os.path.join(copy, "manifest.json")
    manifest = json.load(open(path))
    manifest["code"]["host"]["abi"] = "ember-memref-v1"
    json.dump(manifest, open(path, "w"))
    with pytest.raises(ArtifactError, match="ABI 'ember-memref-v1' is not supported"):
        Model(copy)


def test_library_without_the_runtime_is_refused(tmp_path):
    """A library without the C runtime has no seal to bind it to its manifest: it is refused
    when the artifact is written (tests/test_artifact_integrity.py: and when loaded)."""
    (tmp_path / "bare.c").write_text("#include <stdint.h>\n"
                                     "int32_t ember_entry(void **args, int64_t *fault) {\n"
                                     "  (void)args, (void)fault; return 0;\n}\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(tmp_path / "bare.so"),
                    str(tmp_path / "bare.c")], check=True)
    manifest = {**SIGNATURE, "target": {"kind": "host"}}
    with pytest.raises(ArtifactError, match="carries no manifest seal .*recompile"):
        write_artifact(tmp_path / "art", manifest=manifest, weights={},
                       files={"model.so": str(tmp_path / "bare.so")})


# -- the C shape solver, on a hand-written model with derived dims ----------------------------

SIGNATURE = {
    "symbols": {"s0": {"min": 1, "max": 10}, "s1": {"min": 1, "max": 10}},
    "inputs": [{"name": "a", "dtype": "float32", "shape": ["2*s0 + 1", "s1"]},
               {"name": "b", "dtype": "int32", "shape": ["s0 * s1"]}],
    "constants": [],
    "outputs": [{"name": "o", "dtype": "float32",
                 "shape": ["(2*s0 + 1) // 2", "Max(s0, s1) % 3 + Min(s0, 4)", "-s0 + 10", 2]}],
}


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    d = tmp_path_factory.mktemp("derived")
    (d / "model.c").write_text("#include <stdint.h>\n"
                               "int32_t ember_entry(void **args, int64_t *fault) {\n"
                               "  (void)args, (void)fault; return 0;\n}\n")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(d / "m.so"),
                    str(d / "model.c"), *cc_args(SIGNATURE, str(d))], check=True)
    manifest = {**SIGNATURE, "target": {"kind": "host",
                                        "triple": f"{platform.machine()}-unknown-linux-gnu"}}
    write_artifact(d / "art", manifest=manifest, weights={}, files={"model.so": str(d / "m.so")})
    return Model(d / "art")


@pytest.mark.parametrize("shapes", [[(7, 5), (15,)], [(3, 1), (1,)], [(21, 10), (100,)],
                                    [(7, 5), (14,)], [(8, 5), (15,)], [(23, 1), (11,)],
                                    [(7,), (15,)], [(7, 11), (33,)]])
def test_c_solver_matches_python(derived, shapes):
    specs = [TensorSpec.from_manifest("input", e) for e in SIGNATURE["inputs"]]
    ranges = {s: (r["min"], r["max"]) for s, r in SIGNATURE["symbols"].items()}
    arrays = [np.zeros(shapes[0], np.float32), np.zeros(shapes[1], np.int32)]
    try:
        env = bind_symbols(specs, shapes, ranges)
    except ArgumentError as exc:
        with pytest.raises(ArgumentError) as info:
            derived(*arrays)
        assert str(info.value) == str(exc)
        return
    out = derived(*arrays)
    assert out.shape == tuple(Dim(d).evaluate(env) for d in SIGNATURE["outputs"][0]["shape"])


def test_generated_tables_escape_names():
    sig = {"symbols": {}, "constants": [], "outputs": [],
           "inputs": [{"name": 'we"ird\\na?me\u00e9', "dtype": "float32", "shape": [2]}]}
    source = generate_tables(sig)
    assert r'"we\042ird\134na\077me\303\251"' in source


def test_runtime_objects_are_cached_on_disk_across_processes(tmp_path):
    """A fresh process reuses the compiled runtime objects (no 0.75 s recompile per process):
    two processes racing to fill an empty cache end with one complete set, and the second
    process's objects are the first's files."""
    env = dict(os.environ, EMBER_CACHE_DIR=str(tmp_path))
    script = ("from ember.backends.cpu.c_runtime import runtime_objects\n"
              "print('\\n'.join(runtime_objects()))")
    racers = [subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                               stdout=subprocess.PIPE) for _ in range(2)]
    listed = [p.communicate()[0].split() for p in racers]
    assert all(p.returncode == 0 for p in racers)
    assert listed[0] == listed[1] and all(os.path.isfile(o) for o in listed[0])
    runtime = tmp_path / "runtime"
    assert len(list(runtime.iterdir())) == 1, "a racer's private build directory was left"
    stamps = [os.stat(o).st_mtime_ns for o in listed[0]]
    again = subprocess.run([sys.executable, "-c", script], env=env, text=True, check=True,
                           stdout=subprocess.PIPE).stdout.split()
    assert again == listed[0] and [os.stat(o).st_mtime_ns for o in again] == stamps


def test_runtime_objects_without_a_writable_cache(tmp_path):
    """A cache directory that cannot be created (here: under a file) costs a compile per
    process, never an error."""
    (tmp_path / "file").write_text("")
    env = dict(os.environ, EMBER_CACHE_DIR=str(tmp_path / "file" / "cache"))
    script = ("from ember.backends.cpu.c_runtime import runtime_objects\n"
              "import os; assert all(os.path.isfile(o) for o in runtime_objects())")
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
