"""The op table tests' shared helper: compile a tiny module with ember.compile, compare to eager.

`check(module, inputs, expect=...)` (a fixture) compiles `module` for `inputs`, runs the compiled
model on `inputs` and on each of `more_inputs` (other sizes, for dynamic dims), and compares with
PyTorch eager (tests/compare.py: output count, shapes, dtypes, nan/inf and values; `tol`
overrides the dtype's tolerance, `target` is ember.compile's). `expect`
names the ember ops the frontend must have produced (`"attention"`, or `"unary:gelu"` for an op
with that `kind`), which is how a test pins an op's mapping; it returns every ember op seen.

Tests say which rows of docs/op_table.md they cover with `@pytest.mark.covers("ReLU", ...)`.
With EMBER_OP_TABLE=path set, the session writes what each test saw (rows, ember ops, the
fallback's linalg/tensor ops, outcome) to that JSON file, from which
`python tests/ops/op_table.py` renders the table.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from typing import Dict, Iterable, Optional, Sequence, Set

import pytest
import torch

import ember
import ember.frontend
from compare import assert_close

_EMBER_OP = re.compile(r'"ember\.(\w+)"')
_FALLBACK_OP = re.compile(r'"((?:linalg|tensor)\.\w+)"')
#: Plumbing of the fallback's output, not computation.
_PLUMBING = {"linalg.yield", "linalg.index", "tensor.empty", "tensor.dim", "tensor.cast",
             "tensor.yield", "tensor.from_elements"}
_KIND = re.compile(r'\bkind = "(\w+)"')

#: nodeid -> {"rows": [...], "ember_ops": [...], "outcome": ...}; see EMBER_OP_TABLE.
_RECORDS: Dict[str, dict] = {}
_current: Optional[dict] = None


def pytest_configure(config):
    config.addinivalue_line("markers", "covers(*rows): rows of docs/op_table.md this test covers")
    # torch.export's own deprecation noise, once per compile.
    config.addinivalue_line("filterwarnings", "ignore:.*LeafSpec.*:FutureWarning")


@pytest.fixture(autouse=True)
def _record_rows(request):
    global _current
    marker = request.node.get_closest_marker("covers")
    _current = _RECORDS.setdefault(request.node.nodeid, {
        "rows": list(marker.args) if marker else [], "ember_ops": []})
    yield
    _current = None


def pytest_runtest_logreport(report):
    if report.nodeid in _RECORDS and (report.when == "call" or report.outcome != "passed"):
        _RECORDS[report.nodeid]["outcome"] = report.outcome


def pytest_sessionfinish(session):
    path = os.environ.get("EMBER_OP_TABLE")
    if path:
        with open(path, "w") as f:
            json.dump(_RECORDS, f, indent=1, sort_keys=True)


def fallback_ops_in(module_text: str) -> Set[str]:
    """linalg and tensor ops (computation, not plumbing) in frontend output: the fallback's."""
    return set(_FALLBACK_OP.findall(module_text)) - _PLUMBING


def ember_ops_in(module_text: str) -> Set[str]:
    """Ember ops in frontend output: `name`, plus `name:kind` for ops with a kind."""
    found = set()
    for line in module_text.splitlines():
        m = _EMBER_OP.search(line)
        if m:
            found.add(m.group(1))
            kind = _KIND.search(line)
            if kind:
                found.add(f"{m.group(1)}:{kind.group(1)}")
    return found


@contextlib.contextmanager
def _frontend_capture():
    """Records the frontend's module text while ember.compile runs; yields a function that
    reads it. The import runs in ember's compile worker (a forked process), so the text comes
    back through a file."""
    original = ember.frontend.import_exported
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "frontend.mlir")

        def capture(*args, **kwargs):
            result = original(*args, **kwargs)
            with open(path, "w") as f:
                f.write(result.module_text)
            return result

        def text() -> str:
            with open(path) as f:
                return f.read()
        ember.frontend.import_exported = capture
        try:
            yield text
        finally:
            ember.frontend.import_exported = original


def compile_and_compare(module: torch.nn.Module, inputs: Sequence, *, expect: Iterable[str] = (),
                        dynamic_shapes=None, more_inputs: Sequence[Sequence] = (),
                        tol: Optional[float] = None, target: str = "host") -> Set[str]:
    module = module.eval()
    with _frontend_capture() as frontend_text:
        compiled = ember.compile(module, tuple(inputs), dynamic_shapes=dynamic_shapes,
                                 target=target)
        text = frontend_text()
    ops = ember_ops_in(text)
    if _current is not None:
        _current["ember_ops"] = sorted(set(_current["ember_ops"]) | ops)
        _current["fallback_ops"] = sorted(set(_current.get("fallback_ops", [])) |
                                          fallback_ops_in(text))
    missing = set(expect) - ops
    assert not missing, f"expected ember ops {sorted(missing)} in the frontend's output; " \
                        f"saw {sorted(ops)}"
    for run, args in enumerate([tuple(inputs)] + [tuple(a) for a in more_inputs]):
        with torch.no_grad():
            expected = module(*args)
        assert_close(compiled(*args), expected, tol=tol, what=f"run {run}, output")
    return ops


@pytest.fixture
def check():
    """`check(module, inputs, expect=(), dynamic_shapes=None, more_inputs=(), tol=None,
    target="host")`."""
    return compile_and_compare


class Fn(torch.nn.Module):
    """A module from a function of the inputs (and of `self`, for submodules in `mods`)."""

    def __init__(self, fn, *mods: torch.nn.Module):
        super().__init__()
        self.fn = fn
        self.mods = torch.nn.ModuleList(mods)

    def forward(self, *xs):
        return self.fn(self, *xs)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
