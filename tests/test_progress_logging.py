"""What a compile tells its user: a progress bar naming the stage (only on a terminal, after a
delay, off with EMBER_PROGRESS=0), the `ember` logger at EMBER_LOG_LEVEL, and none of the
libraries' own deprecation warnings that ember's calls trigger."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings

import torch

import ember
from ember import progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_names_the_stage_on_a_terminal(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "PROGRESS_DELAY_S", 0.0)
    monkeypatch.delenv(progress.PROGRESS_VARIABLE, raising=False)
    with progress.CompileProgress() as shown:
        shown({"stage": "graph"})
        shown({"pass_name": "ember-fuse-epilogue"})
        shown.show({"stage": "lower", "pass_name": "ember-lower-to-linalg"})
    text = terminal.getvalue()
    assert "ember compile" in text and "graph / ember-fuse-epilogue" in text
    assert "lower / ember-lower-to-linalg" in text


def test_no_bar_when_turned_off_or_not_a_terminal(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "PROGRESS_DELAY_S", 0.0)
    monkeypatch.setenv(progress.PROGRESS_VARIABLE, "0")
    with progress.CompileProgress() as shown:
        shown({"stage": "graph"})
    assert terminal.getvalue() == ""
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    monkeypatch.delenv(progress.PROGRESS_VARIABLE)
    with progress.CompileProgress() as shown:
        shown({"stage": "graph"})
    assert plain.getvalue() == ""


def test_log_level_variable_logs_the_stages_and_the_total():
    code = ("import torch, ember; "
            "ember.compile(torch.nn.Linear(4, 2).eval(), (torch.randn(3, 4),))")
    env = dict(os.environ, EMBER_LOG_LEVEL="INFO", EMBER_ISOLATE="0")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True).stderr
    assert "ember INFO compile stage graph" in err, err
    assert "ember INFO compiled in" in err, err


def test_library_deprecations_are_not_shown():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ember.compile(torch.nn.Linear(4, 2).eval(), (torch.randn(3, 4),))
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert shown == []
