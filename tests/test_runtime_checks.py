"""Run-time checks of the values a model uses as indices or integer divisors
(ember-runtime-checks): through the Python runtime and the C API, a bad one is an error naming
the op, its source line, the tensors and the value (PyTorch's IndexError / ZeroDivisionError),
never a crash or a read past a buffer; valid values, negative indices PyTorch accepts among
them, give PyTorch's results. torch-mlir's own asserts (sizes it cannot prove at compile time)
are errors too, not abort(). Also integer fmod, whose vectorized tail once divided by the
zeros padding its masked lanes (SIGFPE on lengths 7, 12 and 100)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import torch

import ember
from compare import assert_close
from ember.runtime import (DivisionByZeroError, EmberRuntimeError, ExecutionError,
                           IndexOutOfRangeError)

nn = torch.nn
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.basename(__file__)


class Indexing(nn.Module):
    """Embedding, index_select, x[idx] and gather, each indexed by its own input."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 3)
        self.register_buffer("table", torch.randn(5, 4))
        self.register_buffer("line", torch.randn(4))

    def forward(self, ids, rows, picks, cols):
        return (self.emb(ids), torch.index_select(self.table, 0, rows), self.table[picks],
                torch.gather(self.line, 0, cols))


class Divisions(nn.Module):
    """Each integer division PyTorch offers, with its own dividend and divisor."""

    def forward(self, a, b, c, d, e, f, g, h):
        return a // b, c % d, torch.fmod(e, f), torch.div(g, h, rounding_mode="trunc")


VALID = {"ids": [0, 9, 4, 9], "rows": [4, 0, 2, 4], "picks": [-5, -1, 4, 0], "cols": [3, 0, 1, 3]}
DIVISION_NAMES = "abcdefgh"


def indexing_inputs(**changes):
    return [torch.tensor(changes.get(name, values)) for name, values in VALID.items()]


def division_inputs(**changes):
    values = {name: [7, -7, 9, -9] if name in "aceg" else [2, 3, -4, -5]
              for name in DIVISION_NAMES}
    values.update(changes)
    return [torch.tensor(values[name]) for name in DIVISION_NAMES]


@pytest.fixture(scope="module")
def indexing(tmp_path_factory):
    torch.manual_seed(0)
    model = Indexing().eval()
    compiled = ember.compile(model, indexing_inputs())
    return model, compiled, compiled.save(str(tmp_path_factory.mktemp("checks") / "ix.ember"))


@pytest.fixture(scope="module")
def divisions(tmp_path_factory):
    model = Divisions()
    compiled = ember.compile(model, division_inputs())
    return model, compiled, compiled.save(str(tmp_path_factory.mktemp("checks") / "div.ember"))


def test_valid_indices_match_pytorch_negative_ones_included(indexing):
    model, compiled, _ = indexing
    with torch.no_grad():
        assert_close(compiled(*indexing_inputs()), model(*indexing_inputs()))


@pytest.mark.parametrize("name, bad, op, tensor, size", [
    ("ids", 10, "aten.embedding", "constant 'emb.weight'", 10),
    ("ids", -1, "aten.embedding", "constant 'emb.weight'", 10),
    ("rows", 5, "aten.index_select", "constant 'table'", 5),
    ("rows", -1, "aten.index_select", "constant 'table'", 5),
    ("picks", 5, "aten.index", "constant 'table'", 5),
    ("picks", -6, "aten.index", "constant 'table'", 5),     # reported as written, not wrapped
    ("cols", 4, "aten.gather", "constant 'line'", 4),
    ("cols", -1, "aten.gather", "constant 'line'", 4),
])
def test_index_out_of_range_is_an_index_error(indexing, name, bad, op, tensor, size):
    model, compiled, _ = indexing
    inputs = indexing_inputs(**{name: VALID[name][:2] + [bad] + VALID[name][3:]})
    with pytest.raises((IndexError, RuntimeError), match="out of"):
        model(*inputs)                                  # PyTorch refuses it too
    with pytest.raises(IndexOutOfRangeError) as caught:
        compiled(*inputs)
    assert isinstance(caught.value, EmberRuntimeError)
    message = str(caught.value)
    assert message.startswith(f"{op} at ") and f"{HERE}:" in message, message
    assert f"index {bad} is out of bounds for dim 0 of {tensor} (size {size}); the index " \
           f"comes from input '{name}'" in message


def test_model_runs_again_after_an_index_error(indexing):
    model, compiled, _ = indexing
    with pytest.raises(IndexOutOfRangeError):
        compiled(*indexing_inputs(ids=[0, 1, 99, 2]))
    with torch.no_grad():
        assert_close(compiled(*indexing_inputs()), model(*indexing_inputs()))


def test_index_error_inside_a_parallel_loop(tmp_path):
    """An Embedding big enough for ember-parallelize-loops (64 x 64 x 16 elements): the
    guard reports from an OpenMP thread into the caller's record."""
    model = nn.Embedding(100, 16).eval()
    ids = torch.randint(0, 100, (64, 64))
    compiled = ember.compile(model, (ids,), dump_dir=str(tmp_path))
    assert "scf.forall" in (tmp_path / "03-kernels.mlir").read_text()
    with torch.no_grad():
        assert_close(compiled(ids), model(ids))
    ids[50, 3] = 100
    with pytest.raises(IndexOutOfRangeError, match=r"index 100 is out of bounds for dim 0 of "
                                                   r"constant 'weight' \(size 100\)"):
        compiled(ids)


def test_index_checked_against_a_dynamic_size():
    class Pick(nn.Module):
        def forward(self, x, idx):
            return x[idx]
    rows = torch.export.Dim("rows", min=1, max=16)
    compiled = ember.compile(Pick(), (torch.randn(6, 3), torch.tensor([5, -6, 0])),
                             dynamic_shapes={"x": {0: rows}, "idx": None})
    x, idx = torch.randn(6, 3), torch.tensor([5, -6, 0])
    assert_close(compiled(x, idx), x[idx])
    with pytest.raises(IndexOutOfRangeError, match=r"index 5 is out of bounds for dim 0 of "
                                                   r"input 'x' \(size 4\)"):
        compiled(torch.randn(4, 3), idx)


class Scatters(nn.Module):
    """Each op torch-mlir lowers to TMTensor's scatter (scatter loops after the frontend), each
    with its own index input."""

    def forward(self, x, index, src, reduce_index, put_rows, add_rows, rows_src):
        return (x.scatter(1, index, src),
                x.scatter_reduce(1, reduce_index, src, "amax", include_self=True),
                torch.index_put(x, (put_rows,), rows_src, accumulate=True),
                x.index_add(0, add_rows, rows_src))


SCATTER_VALID = {"index": [[0, 4], [2, 3], [4, 1]], "reduce_index": [[1, 1], [0, 3], [4, 2]],
                 "put_rows": [2, -3], "add_rows": [1, 1]}


def scatter_inputs(**changes):
    torch.manual_seed(0)
    x, src, rows_src = torch.randn(3, 5), torch.randn(3, 2), torch.randn(2, 5)
    ix = {name: torch.tensor(changes.get(name, values)) for name, values in SCATTER_VALID.items()}
    return [x, ix["index"], src, ix["reduce_index"], ix["put_rows"], ix["add_rows"], rows_src]


@pytest.fixture(scope="module")
def scatters():
    model = Scatters().eval()
    return model, ember.compile(model, scatter_inputs())


def test_valid_scatter_indices_match_pytorch(scatters):
    model, compiled = scatters
    assert_close(compiled(*scatter_inputs()), model(*scatter_inputs()))


@pytest.mark.parametrize("name, bad, value, op, dim, size", [
    ("index", [[0, 4], [2, 5], [4, 1]], 5, "aten.scatter", 1, 5),
    ("reduce_index", [[1, 1], [0, 3], [7, 2]], 7, "aten.scatter_reduce", 1, 5),
    ("put_rows", [2, 3], 3, "aten.index_put", 0, 3),
    ("put_rows", [-4, 0], -4, "aten.index_put", 0, 3),  # reported as written, not wrapped
    ("add_rows", [1, 3], 3, "aten.index_add", 0, 3),
])
def test_scatter_index_out_of_range_is_an_index_error(scatters, name, bad, value, op, dim,
                                                      size):
    """TMTensor's scatter skipped such an index silently; its loops are checked now."""
    model, compiled = scatters
    inputs = scatter_inputs(**{name: bad})
    with pytest.raises((IndexError, RuntimeError), match="out of"):
        model(*inputs)                                  # PyTorch refuses it too
    with pytest.raises(IndexOutOfRangeError) as caught:
        compiled(*inputs)
    message = str(caught.value)
    assert message.startswith(f"{op} at ") and f"{HERE}:" in message, message
    assert f"index {value} is out of bounds for dim {dim} of " in message, message
    assert f"(size {size})" in message, message


class CountedPut(nn.Module):
    """Changes its input and its buffer in place: both are written back after a run."""

    def __init__(self):
        super().__init__()
        self.register_buffer("count", torch.zeros(1))

    def forward(self, x, rows, v):
        self.count += 1
        x.index_put_((rows,), v)
        return x * self.count


def test_a_run_that_faults_writes_nothing_back():
    compiled = ember.compile(CountedPut().eval(), (torch.zeros(4), torch.tensor([0, 2]),
                                                   torch.ones(2)))
    x = torch.zeros(4)
    with pytest.raises(IndexOutOfRangeError, match=r"^aten\.index_put.* index 4 is out of "
                                                   r"bounds for dim 0"):
        compiled(x, torch.tensor([0, 4]), torch.ones(2))
    assert_close(x, torch.zeros(4))                     # the input is not written back
    assert_close(compiled(x, torch.tensor([1, 3]), torch.ones(2)),
                 torch.tensor([0.0, 1.0, 0.0, 1.0]))  # nor the buffer: count is 1, not 2
    assert_close(x, torch.tensor([0.0, 1.0, 0.0, 1.0]))


def test_valid_integer_divisions_match_pytorch(divisions):
    model, compiled, _ = divisions
    assert_close(compiled(*division_inputs()), model(*division_inputs()))


@pytest.mark.parametrize("divisor, op", [("b", "aten.floor_divide"), ("d", "aten.remainder"),
                                         ("f", "aten.fmod"), ("h", "aten.div")])
def test_integer_division_by_zero_is_a_zero_division_error(divisions, divisor, op):
    model, compiled, _ = divisions
    inputs = division_inputs(**{divisor: [2, 0, -4, -5]})
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        model(*inputs)                                  # PyTorch refuses it too
    with pytest.raises(DivisionByZeroError) as caught:
        compiled(*inputs)
    assert isinstance(caught.value, ZeroDivisionError)
    message = str(caught.value)
    assert message.startswith(f"{op} at ") and f"{HERE}:" in message, message
    assert message.endswith(f"integer division by zero (the divisor comes from input "
                            f"'{divisor}')")


def test_int64_min_divided_by_minus_one_wraps_instead_of_trapping(divisions):
    """x86 traps on INT64_MIN / -1 as on a zero divisor (PyTorch eager itself dies of SIGFPE
    on it); the compiled code gives the two's-complement wrap, and remainders 0."""
    _, compiled, _ = divisions
    lowest = -2**63
    inputs = division_inputs(**{name: [lowest, 5, lowest, 0] for name in "aceg"},
                             **{name: [-1, -1, 1, -1] for name in "bdfh"})
    quotients = torch.tensor([lowest, -5, lowest, 0])
    zeros = torch.zeros(4, dtype=torch.int64)
    assert_close(compiled(*inputs), (quotients, zeros, zeros, quotients))


@pytest.mark.parametrize("disabled", [(), ("ember-runtime-checks",)],
                         ids=["checked", "unchecked"])
def test_integer_fmod_tail_lanes(disabled):
    """Lengths whose vectorized loops end in a masked tail; without the checks the
    remainders are vectorizable code, and must stay correct."""
    class Remainders(nn.Module):
        def forward(self, *xs):
            return tuple(op(a, b) for a, b in zip(xs[::2], xs[1::2])
                         for op in (torch.fmod, torch.remainder))
    torch.manual_seed(0)
    inputs = []
    for n in (7, 12, 100):
        signs = 1 - 2 * (torch.arange(n) % 2)
        inputs += [torch.randint(-50, 50, (n,)), torch.randint(1, 9, (n,)) * signs]
    compiled = ember.compile(Remainders(), tuple(inputs), disabled_passes=disabled)
    assert_close(compiled(*inputs), Remainders()(*inputs))


# -- the C API ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def int64_inputs(indexing, tmp_path_factory):
    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler (cc)")
    out = str(tmp_path_factory.mktemp("bin") / "int64_inputs")
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-I", indexing[2], "-o", out,
                    os.path.join(ROOT, "tests", "c", "int64_inputs.c"), "-ldl"], check=True)
    return out


def _run_c(program, artifact, inputs):
    lists = [",".join(str(v) for v in t.tolist()) for t in inputs]
    return subprocess.run([program, artifact, *lists], capture_output=True, text=True,
                          timeout=120)


def test_c_api_reports_an_index_out_of_range(indexing, int64_inputs):
    _, _, artifact = indexing
    assert _run_c(int64_inputs, artifact, indexing_inputs()).stdout == "ok\n"
    result = _run_c(int64_inputs, artifact, indexing_inputs(rows=[0, 1, 7, 2]))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("EMBER_ERROR_INDEX: aten.index_select at ")
    assert "index 7 is out of bounds for dim 0 of constant 'table' (size 5); the index comes " \
           "from input 'rows'" in result.stdout


def test_c_api_reports_a_zero_divisor(divisions, int64_inputs):
    _, _, artifact = divisions
    assert _run_c(int64_inputs, artifact, division_inputs()).stdout == "ok\n"
    result = _run_c(int64_inputs, artifact, division_inputs(d=[1, 2, 0, 3]))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("EMBER_ERROR_ZERO_DIVISION: aten.remainder at ")
    assert result.stdout.endswith("integer division by zero (the divisor comes from input "
                                  "'d')\n")


class ScatterAdd1d(nn.Module):
    def forward(self, x, index, src):
        return x.scatter_add(0, index, src)


def test_c_api_reports_a_scatter_index_out_of_range(int64_inputs, tmp_path):
    inputs = [torch.zeros(4, dtype=torch.int64), torch.tensor([3, 0, 3]), torch.tensor([1, 2, 4])]
    artifact = ember.compile(ScatterAdd1d().eval(), inputs).save(str(tmp_path / "scatter.ember"))
    assert _run_c(int64_inputs, artifact, inputs).stdout == "ok\n"
    inputs[1] = torch.tensor([3, 4, 0])
    result = _run_c(int64_inputs, artifact, inputs)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("EMBER_ERROR_INDEX: aten.scatter_add at "), result.stdout
    assert "index 4 is out of bounds for dim 0 of " in result.stdout


class SlicedProduct(nn.Module):
    """x * y[:len(x)]: torch.export does not require len(y) >= len(x), so torch-mlir's lowering
    asserts at run time that the slice matches x (its "mismatched size for broadcast")."""
    def forward(self, x, y):
        return x * y[: x.shape[0]]


@pytest.fixture(scope="module")
def sliced_product(tmp_path_factory):
    from torch.export import Dim
    inputs = [torch.arange(20), torch.arange(20)]
    compiled = ember.compile(SlicedProduct(), inputs, dynamic_shapes=(
        {0: Dim("n", min=2, max=64)}, {0: Dim("m", min=2, max=64)}))
    return compiled, compiled.save(str(tmp_path_factory.mktemp("sliced") / "sliced.ember"))


def test_a_failed_torch_mlir_assert_is_an_execution_error(sliced_product):
    """The assert (abort() as lowered by MLIR, which killed the caller's process) returns
    before the product runs on sizes it refused; the model then runs valid inputs again."""
    compiled, _ = sliced_product
    with pytest.raises(ExecutionError, match=rf"aten.mul at .*{HERE}:\d+: a run-time check of "
                                             r"the compiled code failed: mismatched size for "
                                             r"broadcast"):
        compiled(torch.arange(20), torch.arange(10))
    x, y = torch.arange(6), torch.arange(9)
    assert_close(compiled(x, y), SlicedProduct()(x, y))


def test_c_api_reports_a_failed_assert(sliced_product, int64_inputs):
    _, artifact = sliced_product
    assert _run_c(int64_inputs, artifact, [torch.arange(6), torch.arange(9)]).stdout == "ok\n"
    result = _run_c(int64_inputs, artifact, [torch.arange(20), torch.arange(10)])
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("EMBER_ERROR_EXECUTION: aten.mul at "), result.stdout
    assert result.stdout.endswith("a run-time check of the compiled code failed: mismatched "
                                  "size for broadcast\n")


def test_integer_reciprocal_of_zero_is_inf():
    """PyTorch's reciprocal of an integer tensor is a float one, inf for 0 (torch-mlir's
    lowering asserted that no element is 0)."""
    class Reciprocal(nn.Module):
        def forward(self, x):
            return torch.reciprocal(x)
    x = torch.tensor([3, 0, -2, 1, 0, 7])
    assert_close(ember.compile(Reciprocal(), [x])(x), torch.reciprocal(x))
