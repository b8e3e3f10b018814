"""The compile cache (ember.artifact.cache, keyed by ember.frontend.fingerprint): a second
compile of the same model, inputs and options loads the cached artifact, in this process or a
new one; a changed weight, option, input shape or model code never hits a stale entry; entries
appear atomically (two processes compiling at once both succeed, one entry), the size cap
evicts the least recently used, `ember cache info|clear`."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import ember
from compare import assert_close
from ember.artifact import cache
from ember.tools.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def cache_on(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_CACHE", "1")
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EMBER_CACHE_SIZE_MB", raising=False)


class Block(nn.Module):
    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.fc = nn.Linear(16, 8)
        self.scale = scale

    def forward(self, x):
        return torch.relu(self.fc(x)) * self.scale


def _block(seed=0, **kwargs):
    torch.manual_seed(seed)
    return Block(**kwargs).eval()


def _hit(compiled) -> bool:
    return compiled.compile_timings.get("cache") == "hit"


def test_second_compile_is_a_hit_with_the_same_result():
    model, x = _block(), torch.randn(3, 16)
    first = ember.compile(model, (x,))
    second = ember.compile(model, (x,))
    assert not _hit(first) and _hit(second)
    assert_close(second(x), model(x))
    assert len(cache.entries()) == 1


def test_a_model_with_zero_dim_buffers_is_keyed_by_their_values():
    """BatchNorm's num_batches_tracked is a 0-d int64 buffer: fingerprinted like any other."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    x = torch.randn(1, 3, 8, 8)
    first, second = ember.compile(model, (x,)), ember.compile(model, (x,))
    assert not _hit(first) and _hit(second)
    model[1].num_batches_tracked += 1
    assert not _hit(ember.compile(model, (x,)))
    assert_close(second(x), model(x))


@pytest.mark.parametrize("change", ["weight", "attribute", "option", "shape", "target"])
def test_any_change_misses(change):
    model, x = _block(), torch.randn(3, 16)
    ember.compile(model, (x,))
    options = {}
    if change == "weight":
        with torch.no_grad():
            model.fc.weight[0, 0] += 1.0
    elif change == "attribute":
        model.scale = 2.0
    elif change == "option":
        options = {"precision": "bf16"}
    elif change == "shape":
        x = torch.randn(5, 16)
    elif change == "target":
        options = {"target": "host:cpu=haswell"}
    again = ember.compile(model, (x,), **options)
    assert not _hit(again)
    assert_close(again(x), model(x), tol=2e-2 if options.get("precision") else None)


def test_a_new_process_hits_and_concurrent_compiles_share_one_entry(tmp_path):
    script = tmp_path / "compile_block.py"
    script.write_text(
        "import sys, torch, ember\n"
        f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
        "from test_compile_cache import _block\n"
        "model = _block()\n"
        "compiled = ember.compile(model, (torch.randn(3, 16),))\n"
        "print('hit' if compiled.compile_timings.get('cache') == 'hit' else 'miss')\n")
    env = dict(os.environ)
    runs = [subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].split()[-1] for p in runs]
    assert all(p.returncode == 0 for p in runs) and set(outs) <= {"hit", "miss"}
    assert len(cache.entries()) == 1
    again = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                           text=True, cwd=ROOT, check=True)
    assert again.stdout.split()[-1] == "hit"


def test_size_cap_evicts_the_least_recently_used(monkeypatch):
    x = torch.randn(3, 16)
    ember.compile(_block(0), (x,))
    ember.compile(_block(1), (x,))
    assert len(cache.entries()) == 2
    monkeypatch.setenv("EMBER_CACHE_SIZE_MB", "0")      # keep only the newest
    ember.compile(_block(2), (x,))
    assert len(cache.entries()) == 1
    assert _hit(ember.compile(_block(2), (x,)))


def test_off_switch_and_cli(capsys, monkeypatch):
    model, x = _block(), torch.randn(3, 16)
    ember.compile(model, (x,))
    assert main(["cache", "info"]) == 0
    assert "entries   1" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 1" in capsys.readouterr().out and cache.entries() == []
    monkeypatch.setenv("EMBER_CACHE", "0")
    ember.compile(model, (x,))
    assert cache.entries() == []


def test_graphs_of_one_class_with_different_code_do_not_share_an_entry():
    """FX GraphModules (torch.compile's graphs, loaded .pt2 programs) are all one class: their
    generated code is part of the key."""
    x = torch.randn(4, 8)
    first = torch.fx.symbolic_trace(_Fn(lambda t: torch.relu(t) * 2))
    second = torch.fx.symbolic_trace(_Fn(lambda t: torch.tanh(t) + 1))
    assert_close(ember.compile(first, (x,))(x), first(x))
    again = ember.compile(second, (x,))
    assert not _hit(again)
    assert_close(again(x), second(x))


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("workload", ["mlp", "cnn", "bert", "llama"])
def test_every_benchmark_workload_has_a_key(workload):
    """Fingerprinting the benchmark models (BatchNorm buffers, KV caches, rotary tables) never
    fails, and a second model built the same way has the same key."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.models import WORKLOADS
    from ember.compiler import CompileOptions
    from ember.frontend.fingerprint import fingerprint
    w = WORKLOADS[workload]
    keys = [fingerprint(w.make_model(1), w.make_inputs(1), CompileOptions(target=None), "host")
            for _ in range(2)]
    assert keys[0] is not None and keys[0] == keys[1]
