"""`torch.compile(model, backend="ember")` (ember.dynamo_backend): the backend is found by name
through its entry point, compiles each graph dynamo captures, matches eager, follows dynamo's
dynamic dims and guards (a new dtype compiles again, a seen one does not), falls back to eager
with a warning naming the op and line (or raises with fallback off or fullgraph=True), refuses
gradients and
recompiles when a bound weight changes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import ember.compiler
from compare import assert_close
from mlp_block import MLPBlock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.models import WORKLOADS  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def compiles(monkeypatch):
    """Counts the ember compiles the backend makes."""
    calls = []
    real = ember.compiler.compile

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)
    monkeypatch.setattr(ember.compiler, "compile", counting)
    return calls


def test_backend_is_found_by_name_without_importing_ember():
    code = "import torch, sys; print('ember' in torch._dynamo.list_backends()); " \
           "print('ember' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False"]


def test_mlp_matches_eager(compiles):
    torch.manual_seed(0)
    model, x = MLPBlock(64, 128).eval(), torch.randn(4, 64)
    compiled = torch.compile(model, backend="ember", options={"fallback": False})
    with torch.no_grad():
        assert_close(compiled(x), model(x))
        assert_close(compiled(x + 1), model(x + 1))
    assert len(compiles) == 1


def test_encoder_matches_eager():
    w = WORKLOADS["bert"]
    model, inputs = w.make_model(2), w.make_inputs(2)
    compiled = torch.compile(model, backend="ember", options={"fallback": False})
    with torch.no_grad():
        assert_close(compiled(*inputs), model(*inputs), tol=1e-3)


def test_gpt2_prefill_matches_eager():
    pytest.importorskip("transformers")
    from gpt2_generate import tiny_gpt2
    from greedy_generation import Prefill
    model = Prefill(tiny_gpt2())
    ids = torch.tensor([[5, 17, 42, 8, 64, 3]])
    compiled = torch.compile(model, backend="ember", options={"fallback": False})
    with torch.no_grad():
        assert_close(compiled(ids), model(ids))


class Broken(nn.Module):
    """Two graphs: a print between them breaks dynamo's capture."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 8)

    def forward(self, x):
        h = torch.relu(self.a(x))
        print("between the graphs")
        return self.b(h)


def test_graph_break_compiles_each_graph(compiles, capsys):
    torch.manual_seed(1)
    model, x = Broken().eval(), torch.randn(3, 16)
    with torch.no_grad():
        compiled = torch.compile(model, backend="ember", options={"fallback": False})
        assert_close(compiled(x), model(x))
    assert len(compiles) == 2
    assert "between the graphs" in capsys.readouterr().out


def test_dynamic_batch_compiles_once(compiles):
    torch.manual_seed(2)
    model = MLPBlock(32, 64).eval()
    compiled = torch.compile(model, backend="ember", options={"fallback": False})
    x = torch.randn(4, 32)
    torch._dynamo.mark_dynamic(x, 0)
    with torch.no_grad():
        for batch in (4, 9, 2, 17):
            x = torch.randn(batch, 32)
            torch._dynamo.mark_dynamic(x, 0)
            assert_close(compiled(x), model(x))
    assert len(compiles) == 1


def test_new_dtype_compiles_again_and_a_seen_one_does_not(compiles):
    def f(x):
        return torch.tanh(x) * 2 + 1
    compiled = torch.compile(f, backend="ember", options={"fallback": False})
    x = torch.randn(5, 7)
    for dtype in (torch.float32, torch.bfloat16, torch.float32, torch.bfloat16):
        assert_close(compiled(x.to(dtype)), f(x.to(dtype)))
    assert len(compiles) == 2


UNSUPPORTED_LINE = "return torch.fft.rfft(self.fc(x)).abs()"


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return torch.fft.rfft(self.fc(x)).abs()


def test_unsupported_graph_falls_back_to_eager_with_one_warning():
    model, x = Unsupported().eval(), torch.randn(2, 8)
    compiled = torch.compile(model, backend="ember")
    with pytest.warns(UserWarning, match="runs in eager PyTorch") as caught:
        with torch.no_grad():
            assert_close(compiled(x), model(x))
            compiled(x)
    messages = [str(w.message) for w in caught if "eager PyTorch" in str(w.message)]
    assert len(messages) == 1
    line = next(i for i, text in enumerate(open(__file__).read().splitlines(), 1)
                if text.strip() == UNSUPPORTED_LINE)
    assert "aten.fft_rfft" in messages[0] and f"test_torch_compile.py:{line}" in messages[0]


def test_fallback_off_raises():
    from ember.dynamo_backend import EmberBackendError
    compiled = torch.compile(Unsupported().eval(), backend="ember",
                             options={"fallback": False})
    with pytest.raises(Exception, match="aten.fft_rfft") as raised, torch.no_grad():
        compiled(torch.randn(2, 8))
    chain, error = [], raised.value
    while error is not None:
        chain.append(type(error))
        error = error.__cause__ or error.__context__
    assert EmberBackendError in chain


def test_fullgraph_raises_instead_of_falling_back():
    from ember.dynamo_backend import EmberBackendError
    compiled = torch.compile(Unsupported().eval(), backend="ember", fullgraph=True)
    with pytest.raises(Exception, match="fullgraph=True rules out running it in eager") as \
            raised, torch.no_grad():
        compiled(torch.randn(2, 8))
    error = raised.value
    while error is not None and not isinstance(error, EmberBackendError):
        error = error.__cause__ or error.__context__
    assert error is not None and "aten.fft_rfft" in str(error)


class ScaledBy(nn.Module):
    """A Python int that is no tensor's size reaches the graph as an input."""

    def forward(self, x, k: int):
        return x * k


def test_python_number_input_falls_back_with_a_warning():
    model, x = ScaledBy(), torch.randn(2, 3)
    compiled = torch.compile(model, backend="ember", dynamic=True)
    with pytest.warns(UserWarning, match="is a Python number .* no tensor's size"), \
            torch.no_grad():
        for k in (3, 5):        # dynamo makes k a SymInt input after it changes
            assert_close(compiled(x, k), model(x, k))


def test_gradients_are_refused():
    model = MLPBlock(16, 32).eval()
    compiled = torch.compile(model, backend="ember")
    with pytest.raises(Exception, match="compiles inference graphs"):
        compiled(torch.randn(2, 16, requires_grad=True))


def test_changed_weight_compiles_again(compiles):
    torch.manual_seed(3)
    model, x = nn.Linear(8, 4).eval(), torch.randn(2, 8)
    compiled = torch.compile(model, backend="ember")
    with torch.no_grad():
        assert_close(compiled(x), model(x))
        model.weight.mul_(2)
        assert_close(compiled(x), model(x))
    assert len(compiles) == 2


def test_options_pass_through_and_unknown_ones_are_named():
    torch.manual_seed(4)
    model, x = MLPBlock(32, 64).eval(), torch.randn(3, 32)
    compiled = torch.compile(model, backend="ember",
                             options={"threads": 1, "precision": "bf16", "fallback": False})
    with torch.no_grad():
        assert_close(compiled(x), model(x), tol=2e-2)     # bf16 weights
    bad = torch.compile(model, backend="ember", options={"tile": 4})
    with pytest.raises(Exception, match="unknown option"):
        bad(x)
