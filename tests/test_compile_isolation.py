"""ember.compile runs torch-mlir's import and the stage table in a worker process: native code
that aborts or crashes there becomes a CompileError in the caller (stage, pass, signal, stderr,
ember-opt repro), and the caller goes on compiling. Exceptions and warnings the worker raises
reach the caller as they are."""
from __future__ import annotations

import ctypes
import dataclasses
import os
import subprocess
import sys
from typing import ClassVar

import pytest
import torch

import ember
import ember.isolation
from compare import assert_close
from ember.pipeline.pass_base import REGISTRY, EmberPass
from ember.pipeline.pipeline import PipelineFailure


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))


@dataclasses.dataclass
class Aborts(EmberPass):
    """Says so on stderr, then aborts the process, as a failed MLIR assertion does."""
    name: ClassVar[str] = "test-abort"

    def run(self, module, ctx) -> None:
        os.write(2, b"test-abort: giving up\n")
        os.abort()


@dataclasses.dataclass
class ExitsFatally(EmberPass):
    """Exits as LLVM's report_fatal_error does: a message, then exit(1)."""
    name: ClassVar[str] = "test-fatal-exit"

    def run(self, module, ctx) -> None:
        os.write(2, b"LLVM ERROR: test-fatal-exit\n")
        os._exit(1)


def _crash(*_):
    """Reads address 0, as a binding handed a null result does."""
    return ctypes.string_at(0)


def _compiles_and_matches():
    model, x = Tiny().eval(), torch.randn(2, 4)
    with torch.no_grad():
        assert_close(ember.compile(model, (x,))(x), model(x))


def test_aborting_pass_is_a_compile_error_with_signal_stderr_and_repro(monkeypatch, tmp_path):
    monkeypatch.setitem(REGISTRY, Aborts.name, Aborts)
    with pytest.raises(ember.CompileError) as info:
        ember.compile(Tiny(), (torch.randn(2, 4),), graph_pipeline="canonicalize,test-abort",
                      repro_dir=str(tmp_path))
    error = info.value
    assert (error.signal, error.stage, error.pass_name) == ("SIGABRT", "graph", "test-abort")
    assert "test-abort: giving up" in error.stderr
    assert "killed by SIGABRT in stage 'graph', pass 'test-abort'" in str(error)
    command = error.repro_command()
    assert command in str(error)
    assert command.startswith(f"ember-opt {error.repro_path} --target=host")
    assert "builtin.module(canonicalize,test-abort)" in command
    assert os.path.dirname(error.repro_path) == str(tmp_path)
    # The saved input is the graph stage's: ember-opt reads it back.
    with open(error.repro_path) as f:
        assert "ember.gemm" in f.read()
    replay = subprocess.run([sys.executable, "-m", "ember.tools.ember_opt", error.repro_path],
                            capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    _compiles_and_matches()     # this process compiles on


def test_fatal_error_exit_is_a_compile_error_with_the_exit_status(monkeypatch):
    monkeypatch.setitem(REGISTRY, ExitsFatally.name, ExitsFatally)
    with pytest.raises(ember.CompileError) as info:
        ember.compile(Tiny(), (torch.randn(2, 4),), graph_pipeline="test-fatal-exit")
    error = info.value
    assert (error.signal, error.exit_status, error.pass_name) == (None, 1, "test-fatal-exit")
    assert "exited with status 1 in stage 'graph', pass 'test-fatal-exit'" in str(error)
    assert "LLVM ERROR: test-fatal-exit" in error.stderr


def test_crash_in_code_generation_names_the_stage_and_replays_its_input(monkeypatch):
    import ember.backends.cpu.target as cpu_target
    monkeypatch.setattr(cpu_target, "translate_to_llvm_ir", _crash)
    with pytest.raises(ember.CompileError) as info:
        ember.compile(Tiny(), (torch.randn(2, 4),))
    error = info.value
    assert (error.signal, error.stage, error.pass_name) == ("SIGSEGV", "llvm-ir", None)
    assert error.repro_stage == "llvm"          # the pass stage whose output it was given
    assert "reproduce its input (the output of stage 'llvm')" in str(error)
    assert "convert-func-to-llvm" in error.repro_command()
    assert "Fatal Python error: Segmentation fault" in error.stderr   # with the Python stack
    assert "_crash" in error.stderr


def test_crash_in_torch_mlir_import_names_the_frontend_step(monkeypatch):
    import ember.frontend.importer as importer

    class Crashes:
        def __init__(self, *_):
            pass

        convert_module = _crash
    monkeypatch.setattr(importer, "Converter", Crashes)
    with pytest.raises(ember.CompileError) as info:
        ember.compile(Tiny(), (torch.randn(2, 4),))
    error = info.value
    assert (error.signal, error.stage, error.step) == \
        ("SIGSEGV", "frontend", "torch-to-ember conversion")
    assert error.repro_command() is None        # ember-opt does not run torch-mlir's passes
    assert "in stage 'frontend' (torch-to-ember conversion)" in str(error)


def test_worker_exceptions_keep_their_type_fields_and_traceback():
    with pytest.raises(PipelineFailure) as info:
        ember.compile(Tiny(), (torch.randn(2, 4),),
                      graph_pipeline="ember-fuse-epilogue,one-shot-bufferize")
    error = info.value
    assert error.pass_name == "one-shot-bufferize" and error.stage == "graph"
    assert error.repro_command().startswith("ember-opt ")
    assert isinstance(error.__cause__, ember.isolation.WorkerTraceback)
    assert "pipeline.py" in str(error.__cause__)     # where the worker raised it


@pytest.mark.parametrize("how", ["environment", "option"])
def test_isolation_off_compiles_in_process(monkeypatch, how):
    def no_fork():
        raise AssertionError("forked although isolation is off")
    monkeypatch.setattr(os, "fork", no_fork)
    overrides = {}
    if how == "environment":
        monkeypatch.setenv(ember.isolation.ISOLATE_VARIABLE, "0")
    else:
        overrides["isolate"] = False
    model, x = Tiny().eval(), torch.randn(2, 4)
    compiled = ember.compile(model, (x,), **overrides)
    with torch.no_grad():
        assert_close(compiled(x), model(x))


def test_worker_starts_with_what_the_caller_prepared(monkeypatch):
    """What a worker imports or builds once per process is lost with it and made again by the
    next one: the caller imports the modules (ember.compiler.WORKER_MODULES) and compiles the
    C runtime first, which keeps isolation's cost to the fork."""
    from ember.backends.cpu import c_runtime
    run_isolated = ember.isolation.run_isolated

    def recording(work, **kwargs):
        def work_and_record():
            modules, runtimes = set(sys.modules), dict(c_runtime._objects)
            timings = work()
            return {**timings, "imported": sorted(set(sys.modules) - modules),
                    "runtime_compiled": c_runtime._objects != runtimes}
        return run_isolated(work_and_record, **kwargs)
    monkeypatch.setattr(ember.isolation, "run_isolated", recording)
    compiled = ember.compile(Tiny(), (torch.randn(2, 4),))
    assert compiled.compile_timings["imported"] == []
    assert compiled.compile_timings["runtime_compiled"] is False
