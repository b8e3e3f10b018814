"""An artifact is untrusted data until verified: every refusal through the Python loader
(`Model`) and the C loader (`ember_load`, ember_loader.h, via tests/c/load_artifact.c), with the
same message, never a crash, a hang, a MemoryError or a RecursionError.

Covered: a planted model.so (its constructor must not run), a truncated one (no SIGBUS), an
edited manifest (the library's seal covers every byte of it), FIFOs and links to /dev/zero in
place of each file, absurd sizes, and JSON nested too deep; and damage drawn by hypothesis
(bytes overwritten, files cut, grown or with runs repeated) to any of the three files.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import ember
from ember.artifact.store import (MAX_JSON_DEPTH, MAX_LIBRARY_BYTES, MAX_MANIFEST_BYTES,
                                  SEAL_MAGIC, ArtifactError, read_manifest)
from ember.runtime import Model
from ember.runtime.capi import header_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (cc)")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A small compiled model (dynamic batch, so the manifest has a symbol) and the C loader."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()).eval()
    batch = torch.export.Dim("batch", min=1, max=16)
    artifact = ember.compile(model, (torch.randn(2, 8),), dynamic_shapes=({0: batch},)).save(
        str(tmp_path_factory.mktemp("integrity") / "small.ember"))
    loader = str(tmp_path_factory.mktemp("bin") / "load_artifact")
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-I", artifact, "-o", loader,
                    os.path.join(ROOT, "tests", "c", "load_artifact.c"), "-ldl"],
                   check=True, capture_output=True, text=True)
    return artifact, loader


@pytest.fixture
def art(compiled, tmp_path):
    """A fresh copy of the artifact to damage."""
    return str(shutil.copytree(compiled[0], tmp_path / "art"))


@pytest.fixture
def load_c(compiled):
    def run(path):
        return subprocess.run([compiled[1], path], capture_output=True, text=True, timeout=60)
    return run


@pytest.fixture
def refusals(load_c):
    """The messages with which the Python and the C loader refuse the artifact at `path`."""
    def refuse(path):
        with pytest.raises(ArtifactError) as info:
            Model(path)
        result = load_c(path)
        # exit status 1 with a message: not a signal (SIGBUS, SIGSEGV), not a timeout
        assert result.returncode == 1 and result.stderr.startswith("error: "), result
        return str(info.value), result.stderr[len("error: "):].strip()
    return refuse


def edit_manifest(path, change):
    manifest_path = os.path.join(path, "manifest.json")
    manifest = json.load(open(manifest_path))
    change(manifest)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def relist(path, name):
    """Lists `name`'s current size and sha256 in the manifest, as a planter would."""
    data = open(os.path.join(path, name), "rb").read()
    edit_manifest(path, lambda m: m["files"].update(
        {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}}))


def test_intact_artifact_loads_in_python_and_c(art, load_c):
    """The loaders read manifest.json, model.so and weights.safetensors only: the headers
    shipped for C programs may be absent, and a file may be a link to a regular file."""
    for name in ("ember_runtime.h", "ember_loader.h", "ember_verify.h"):
        os.remove(os.path.join(art, name))
    weights = os.path.join(art, "weights.safetensors")
    os.rename(weights, weights + ".real")
    os.symlink(weights + ".real", weights)
    assert Model(art)(torch.randn(3, 8)).shape == (3, 8)
    result = load_c(art)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr


@pytest.fixture
def planted(tmp_path):
    """A library whose constructor writes a marker file, and the marker's path."""
    marker = tmp_path / "constructor-ran"
    source = tmp_path / "planted.c"
    source.write_text('#include <stdio.h>\n'
                      '__attribute__((constructor)) static void plant(void) {\n'
                      f'  FILE *f = fopen("{marker}", "w");\n'
                      '  if (f) fclose(f);\n'
                      '}\n')
    library = str(tmp_path / "planted.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", library, str(source)], check=True)
    # The marker is what loading it does (so its absence below means it was never loaded).
    subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({library!r})"],
                   check=True)
    assert marker.exists()
    marker.unlink()
    return library, marker


@pytest.mark.parametrize("relisted", [False, True], ids=["as-is", "manifest-relisted"])
def test_planted_library_never_runs(art, planted, refusals, relisted):
    """A planted model.so is refused from its bytes, before dlopen could run its constructor:
    by its hash, or (when the manifest lists the planted file) by its missing seal."""
    library, marker = planted
    shutil.copyfile(library, os.path.join(art, "model.so"))
    if relisted:
        relist(art, "model.so")
    py, c = refusals(art)
    assert py == c
    assert ("carries no manifest seal" if relisted else "model.so was modified or corrupted") in py
    assert not marker.exists()


@pytest.mark.parametrize("relisted", [False, True], ids=["as-is", "manifest-relisted"])
def test_truncated_library_is_refused_not_sigbus(art, refusals, relisted):
    path = os.path.join(art, "model.so")
    os.truncate(path, os.path.getsize(path) // 2)
    if relisted:
        relist(art, "model.so")
    py, c = refusals(art)
    assert py == c
    assert ("seal" if relisted else "it has") in py


@pytest.mark.parametrize("change", [
    lambda m: m["symbols"]["s0"].update(max=4),
    lambda m: m["outputs"][0].update(max_shape=[1000, 8]),
    lambda m: m["inputs"][0].update(shape=["s0", 9]),
    lambda m: m.update(metadata={**m.get("metadata", {}), "note": "edited"}),
    lambda m: None,  # the same content, other bytes (no trailing newline below)
], ids=["symbol-range", "max-shape", "input-shape", "metadata", "bytes"])
def test_edited_manifest_breaks_the_seal(art, refusals, change):
    edit_manifest(art, change)
    path = os.path.join(art, "manifest.json")
    text = open(path).read()
    open(path, "w").write(text.rstrip("\n"))
    py, c = refusals(art)
    assert py == c
    assert "manifest.json does not match the seal in model.so" in py


@pytest.mark.parametrize("field, value, message", [
    ("library", "evil.so", "must be 'model.so'"),
    ("symbol", "system", "must be 'ember_entry'"),
    ("threads_symbol", "abort", "must be 'ember_set_num_threads'"),
])
def test_manifest_names_nothing_to_open_or_call(art, refusals, field, value, message):
    """File and symbol names are fixed by the format: naming another is malformed (Python's
    schema check), and in any case an edit the seal refuses (the C loader reads no names)."""
    edit_manifest(art, lambda m: m["code"]["host"].update({field: value}))
    py, c = refusals(art)
    assert message in py and "fixed names" in py
    assert "does not match the seal" in c


@pytest.mark.parametrize("name", ["manifest.json", "model.so", "weights.safetensors"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_special_files_are_refused_without_hanging(art, refusals, name, kind):
    path = os.path.join(art, name)
    os.remove(path)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)
    py, c = refusals(art)
    assert py == c
    assert f"{path} is not a regular file" in py


@pytest.mark.parametrize("name, size, limit", [
    ("manifest.json", MAX_MANIFEST_BYTES + 1, MAX_MANIFEST_BYTES),
    ("model.so", MAX_LIBRARY_BYTES + 1, MAX_LIBRARY_BYTES),
    ("weights.safetensors", 1 << 40, None),  # the limit follows from the model's constants
])
def test_absurd_sizes_are_refused_before_reading(art, refusals, name, size, limit):
    path = os.path.join(art, name)
    os.truncate(path, size)  # sparse: no disk used, and reading it would take forever
    py, c = refusals(art)
    assert py == c
    assert f"{path} has {size} bytes, more than the " in py
    if limit is not None:
        assert f"more than the {limit} " in py


@pytest.mark.parametrize("depth, refused_for", [
    (MAX_JSON_DEPTH, "does not match the seal"),  # deep enough, but an edit
    (MAX_JSON_DEPTH + 1, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),
    (100_000, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"),  # past the recursion limit
])
def test_deep_json_is_refused(art, refusals, depth, refused_for):
    """The manifest object is level 1, so metadata holding `depth - 1` nested lists makes it
    `depth` levels deep."""
    path = os.path.join(art, "manifest.json")
    text = open(path).read().rstrip().rstrip("}")
    open(path, "w").write(text + ', "deep": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}\n")
    py, c = refusals(art)
    assert py == c
    assert refused_for in py


def test_weights_hash_checked_by_the_runtime(art, refusals):
    """The C runtime hashes the weights it reads and binds (the same code from Python and C)."""
    path = os.path.join(art, "weights.safetensors")
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    py, c = refusals(art)
    assert py == c
    assert f"artifact file {path} was modified or corrupted: sha256 is" in py


def test_ember_verify_checks_the_seal(art):
    edit_manifest(art, lambda m: m["symbols"]["s0"].update(max=4))
    with pytest.raises(ArtifactError, match="does not match the seal"):
        read_manifest(art, verify=True)


def test_seal_magic_matches_the_c_header():
    with open(header_path()) as f:
        line = next(x for x in f if x.startswith("#define EMBER_SEAL_MAGIC"))
    assert bytes.fromhex(line.split('"')[1].replace("\\x", "")) == SEAL_MAGIC


_FILES = ("manifest.json", "model.so", "weights.safetensors")


@settings(derandomize=True, deadline=None, database=None, max_examples=25,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_is_refused_or_harmless(compiled, load_c, data, tmp_path_factory):
    """Drawn damage to a drawn file (bytes overwritten, cut short, grown, a run of bytes
    repeated): both loaders refuse it with an ArtifactError / exit 1, or, where the damage
    changed nothing, load it and compute what the intact artifact computes."""
    path = str(shutil.copytree(compiled[0], tmp_path_factory.mktemp("damaged") / "art"))
    name = data.draw(st.sampled_from(_FILES), label="file")
    target = os.path.join(path, name)
    blob = bytearray(open(target, "rb").read())
    kind = data.draw(st.sampled_from(["overwrite", "cut", "grow", "repeat"]), label="damage")
    at = data.draw(st.integers(0, len(blob) - 1), label="offset")
    if kind == "overwrite":
        patch = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
        blob[at:at + len(patch)] = patch
    elif kind == "cut":
        del blob[at:]
    elif kind == "grow":
        blob += data.draw(st.binary(min_size=1, max_size=64), label="bytes")
    else:
        blob[at:at] = blob[at:at + data.draw(st.integers(1, 256), label="length")]
    with open(target, "wb") as f:
        f.write(blob)
    unchanged = bytes(blob) == open(os.path.join(compiled[0], name), "rb").read()
    c_result = load_c(path)
    assert c_result.returncode in (0, 1), c_result
    try:
        model = Model(path)
    except ArtifactError as error:
        assert not unchanged and str(error)
        assert c_result.returncode == 1 and c_result.stderr.startswith("error: "), c_result
        return
    assert unchanged and c_result.returncode == 0, f"{kind} damage to {name} at {at} accepted"
    x = torch.randn(3, 8)
    torch.testing.assert_close(model(x), Model(compiled[0])(x), rtol=0, atol=0)
