"""Property tests of the runtimes: whatever a caller passes, a correct result or a clear error.

Hypothesis draws shapes (inside and outside the compiled ranges), dtypes, memory layouts (views
with strides, transposes, offsets) and values (NaN, infinities, huge and tiny numbers) for a
compiled model with a dynamic batch, and indices (in range, negative, out of range) and integer
divisors (zero among them) for a model that looks up, gathers and divides, and runs them through the Python runtime in this process
and through the C runtime (examples/c/run_model.c) in a child process. The property: the outputs
equal PyTorch eager's (NaN where eager has NaN), or the runtime raises one of its own errors
(Python) / exits 1 with a message (C); never a signal, never an internal exception. The seed is
fixed (derandomize), so a failure reproduces.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import ember
from ember.runtime.errors import (ArgumentError, DivisionByZeroError, EmberRuntimeError,
                                  IndexOutOfRangeError)
from compare import assert_close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_BATCH = 16
FEATURES = 24
SPECIAL = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e38, -1e38, 1e-40, 3.5]


class Scored(torch.nn.Module):
    """A GEMM with a fused epilogue, a reduction and elementwise math: the kernels whose
    vector tails, blocking and reassociation see every batch size."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(FEATURES, 40)

    def forward(self, x):
        h = torch.nn.functional.gelu(self.fc(x))
        return h.softmax(-1), (h * x.mean(-1, keepdim=True)).amax(-1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Scored().eval()


@pytest.fixture(scope="module")
def compiled(model):
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return ember.compile(model, (torch.randn(4, FEATURES),), dynamic_shapes={"x": {0: batch}})


def _values(data, shape):
    """A float32 tensor of `shape`: normal values with specials sprinkled in."""
    count = int(np.prod(shape))
    x = torch.randn(count, generator=torch.Generator().manual_seed(
        data.draw(st.integers(0, 2**16), label="seed")))
    for _ in range(data.draw(st.integers(0, 4), label="specials")):
        if count:
            x[data.draw(st.integers(0, count - 1))] = data.draw(st.sampled_from(SPECIAL))
    return x.reshape(shape)


def _laid_out(data, x):
    """`x`'s values in a drawn memory layout: contiguous, a transposed copy seen transposed,
    a strided slice, or an offset view into a larger buffer."""
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "strided", "offset"]),
                       label="layout")
    if layout == "transposed":
        return x.t().contiguous().t()
    if layout == "strided":
        wide = torch.zeros(x.shape[0], x.shape[1] * 2)
        wide[:, ::2] = x
        return wide[:, ::2]
    if layout == "offset":
        flat = torch.zeros(x.numel() + 5)
        flat[5:] = x.reshape(-1)
        return flat[5:].view(x.shape)
    return x


_SETTINGS = settings(derandomize=True, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow,
                                            HealthCheck.function_scoped_fixture])


@settings(_SETTINGS, max_examples=60)
@given(data=st.data())
def test_python_runtime_result_or_clear_error(model, compiled, data):
    batch = data.draw(st.integers(0, MAX_BATCH + 3), label="batch")
    features = data.draw(st.sampled_from([FEATURES, FEATURES, FEATURES, FEATURES - 1]),
                         label="features")
    dtype = data.draw(st.sampled_from([torch.float32] * 4 + [torch.float64, torch.float16,
                                                              torch.int32]), label="dtype")
    x = _laid_out(data, _values(data, (batch, features))).to(dtype)
    fits = 1 <= batch <= MAX_BATCH and features == FEATURES and dtype == torch.float32
    try:
        got = compiled(x)
    except EmberRuntimeError as error:
        assert not fits, f"a valid input was refused: {error}"
        assert isinstance(error, ArgumentError) and str(error)
        return
    assert fits, f"an invalid input {dtype} {list(x.shape)} was accepted"
    with torch.no_grad():
        expected = model(x)
    assert_close(got, expected)


def _saved_with_run_model(compiled, tmp_path_factory, name):
    """(run_model binary, artifact dir): `compiled` saved, and examples/c/run_model.c built
    against the header it ships."""
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler (cc)")
    artifact = compiled.save(str(tmp_path_factory.mktemp("art") / name))
    binary = str(tmp_path_factory.mktemp("bin") / "run_model")
    subprocess.run(["cc", "-O2", "-I", artifact, "-o", binary,
                    os.path.join(ROOT, "examples", "c", "run_model.c"), "-ldl", "-lpthread",
                    "-lm"], check=True, capture_output=True, text=True)
    return binary, artifact


@pytest.fixture(scope="module")
def run_model(compiled, tmp_path_factory):
    return _saved_with_run_model(compiled, tmp_path_factory, "scored.ember")


@settings(_SETTINGS, max_examples=12)
@given(data=st.data())
def test_c_runtime_result_or_clear_error(model, compiled, run_model, data, tmp_path):
    binary, artifact = run_model
    name = compiled.runtime.get_input_names()[0]
    batch = data.draw(st.integers(0, MAX_BATCH + 2), label="batch")
    features = data.draw(st.sampled_from([FEATURES, FEATURES, FEATURES + 1]), label="features")
    x = _values(data, (batch, features))
    x.numpy().tofile(tmp_path / "x.bin")
    run = subprocess.run([binary, artifact, "-S", f"{name}={batch}x{features}",
                          "-i", f"{name}={tmp_path / 'x.bin'}", "-o", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode >= 0, f"run_model died of signal {-run.returncode}"
    if not (1 <= batch <= MAX_BATCH and features == FEATURES):
        assert run.returncode == 1 and "error:" in run.stderr, (run.returncode, run.stderr)
        return
    assert run.returncode == 0, run.stderr
    with torch.no_grad():
        expected = model(x)
    got = [torch.from_numpy(np.fromfile(tmp_path / f"{out}.bin", np.float32))
           .reshape(e.shape) for out, e in zip(compiled.runtime.get_output_names(), expected)]
    assert_close(got, expected)


VOCAB = 11


class LookUpAndDivide(torch.nn.Module):
    """Data-dependent indices (Embedding, gather) and divisors (//, %): the values the
    generated code checks at run time."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, 4)

    def forward(self, ids, picks, numerators, divisors):
        rows = self.emb(ids)
        return (torch.gather(rows.sum(-1), 0, picks),
                numerators // divisors, torch.remainder(numerators, divisors))


@pytest.fixture(scope="module")
def indexing_model():
    torch.manual_seed(0)
    return LookUpAndDivide().eval()


@pytest.fixture(scope="module")
def indexing_compiled(indexing_model):
    example = (torch.zeros(6, dtype=torch.long), torch.zeros(6, dtype=torch.long),
               torch.ones(6, dtype=torch.long), torch.ones(6, dtype=torch.long))
    return ember.compile(indexing_model, example)


def _six(values, bad_values):
    """Six values, all good ones or with bad ones mixed in (either half the time, so both the
    results and the errors are exercised)."""
    return st.one_of(st.lists(values, min_size=6, max_size=6),
                     st.lists(st.one_of(values, bad_values), min_size=6, max_size=6))


def _int_inputs(data):
    ids = data.draw(_six(st.integers(0, VOCAB - 1),
                         st.sampled_from([-1, -VOCAB, VOCAB, VOCAB + 1, -2**62, 2**62])),
                    label="ids")
    picks = data.draw(_six(st.integers(0, 5), st.sampled_from([-1, -7, 6, 7, 2**40])),
                      label="picks")
    numerators = data.draw(st.lists(st.integers(-2**40, 2**40), min_size=6, max_size=6),
                           label="numerators")
    divisors = data.draw(_six(st.sampled_from([1, -1, 3, -7, 2**33]), st.just(0)),
                         label="divisors")
    return [torch.tensor(v) for v in (ids, picks, numerators, divisors)]


def _expected_error(inputs):
    """The error PyTorch raises for these inputs (None: it computes a result). Embedding
    and gather refuse negative indices."""
    ids, picks, _, divisors = inputs
    if bool(((ids < 0) | (ids >= VOCAB)).any()) or bool(((picks < 0) | (picks >= 6)).any()):
        return IndexOutOfRangeError
    if bool((divisors == 0).any()):
        return DivisionByZeroError
    return None


@settings(_SETTINGS, max_examples=50)
@given(data=st.data())
def test_python_runtime_checks_indices_and_divisors(indexing_model, indexing_compiled, data):
    inputs = _int_inputs(data)
    expected_error = _expected_error(inputs)
    try:
        got = indexing_compiled(*inputs)
    except (IndexOutOfRangeError, DivisionByZeroError) as error:
        assert expected_error is not None, f"valid inputs refused: {error}"
        # an input may hold both kinds of bad value; either report is right
        assert isinstance(error, (IndexOutOfRangeError, DivisionByZeroError)) and str(error)
        return
    assert expected_error is None, f"{expected_error.__name__} expected, got a result"
    with torch.no_grad():
        assert_close(got, indexing_model(*inputs))


@pytest.fixture(scope="module")
def indexing_run_model(indexing_compiled, tmp_path_factory):
    return _saved_with_run_model(indexing_compiled, tmp_path_factory, "lookup.ember")


@settings(_SETTINGS, max_examples=12)
@given(data=st.data())
def test_c_runtime_checks_indices_and_divisors(indexing_model, indexing_compiled,
                                               indexing_run_model, data, tmp_path):
    binary, artifact = indexing_run_model
    inputs = _int_inputs(data)
    args = [binary, artifact, "-o", str(tmp_path)]
    for name, value in zip(indexing_compiled.runtime.get_input_names(), inputs):
        value.numpy().tofile(tmp_path / f"{name}.bin")
        args += ["-i", f"{name}={tmp_path / (name + '.bin')}"]
    run = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert run.returncode >= 0, f"run_model died of signal {-run.returncode}"
    if _expected_error(inputs) is not None:
        assert run.returncode == 1 and ("out of bounds" in run.stderr
                                        or "by zero" in run.stderr), run.stderr
        return
    assert run.returncode == 0, run.stderr
    with torch.no_grad():
        expected = indexing_model(*inputs)
    got = [torch.from_numpy(np.fromfile(tmp_path / f"{out}.bin", np.int64 if
                                        e.dtype == torch.long else np.float32)).reshape(e.shape)
           for out, e in zip(indexing_compiled.runtime.get_output_names(), expected)]
    assert_close(got, expected)
