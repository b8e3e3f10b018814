"""Compiling in a worker process, so that native code dying becomes a CompileError.

MLIR and LLVM abort the process on a failed assertion or a fatal error, so does torch-mlir's
PassManager, and a Python binding can crash on a null result: none of these raises an
exception, and the caller's process would die with them. As IREE runs `iree-compile` in a
process of its own, `run_isolated` runs the native part of a compile (torch-mlir's import, the
stage table, code generation) in a child forked from the caller. The child inherits the model,
the weights and the options without copying or pickling them (weights never pass through the
IR printer nor a pipe), writes the artifact to disk and sends back only what `work` returns, or
the exception it raised, and the warnings it gave; what it printed on stderr is then printed on
the caller's. If it dies instead, the parent raises CompileError naming the stage and pass that
were running (the child keeps ember.progress's announcements in a file), the signal or exit
status, the tail of the child's stderr (with the innermost frames of the Python stack
faulthandler prints at a crash) and the ember-opt command that replays the stage.

A fork costs milliseconds when the caller has done the one-time setup the child would repeat
(`ember.compiler._prepare_caller`): what a child sets up is lost with it. Set EMBER_ISOLATE=0
to compile in the calling process (under a debugger, say); where `os.fork` does not exist the
compile runs in-process too.
"""
from __future__ import annotations

import faulthandler
import json
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from ember import progress
from ember.pipeline.pipeline import repro_command, save_repro

#: Environment variable: "0" compiles in the calling process (no worker).
ISOLATE_VARIABLE = "EMBER_ISOLATE"
#: How many of the worker's last stderr lines a CompileError quotes, and how many frames (the
#: innermost) of the Python stack faulthandler printed when it died.
STDERR_TAIL_LINES = 20
STACK_FRAMES = 8

#: Deduplicates replayed warnings as the `default` filter does for ones given in-process.
_WARNING_REGISTRY: Dict[Any, Any] = {}


def isolation_enabled(requested: bool) -> bool:
    """Whether to compile in a worker: requested, not turned off by EMBER_ISOLATE=0, and
    possible here (os.fork exists)."""
    return requested and os.environ.get(ISOLATE_VARIABLE, "1") != "0" and hasattr(os, "fork")


class CompileError(RuntimeError):
    """The compiler died in native code (a signal, or LLVM's fatal-error exit) while ember
    compiled in a worker process; the caller's process lives on.

    `stage` and `pass_name` say what was running (`step` too in the frontend), `signal` the
    signal's name (SIGABRT, SIGSEGV) or `exit_status` the status it exited with, `stderr` the
    last lines it printed, and `repro_command()` the ember-opt command that replays the pass
    stage on its input (saved at `repro_path`); for a code generation stage that is the pass
    stage (`repro_stage`) whose output it was given."""

    def __init__(self, *, stage: Optional[str], pass_name: Optional[str] = None,
                 step: Optional[str] = None, signal: Optional[str] = None,
                 exit_status: Optional[int] = None, stderr: str = "",
                 repro_path: Optional[str] = None, repro_stage: Optional[str] = None,
                 pipeline: Optional[str] = None, target: Optional[str] = None):
        self.stage, self.pass_name, self.step = stage, pass_name, step
        self.signal, self.exit_status, self.stderr = signal, exit_status, stderr
        self.repro_path, self.repro_stage = repro_path, repro_stage
        self.pipeline, self.target = pipeline, target
        super().__init__(self._message())

    def repro_command(self) -> Optional[str]:
        if not (self.repro_path and self.pipeline is not None):
            return None
        return repro_command(self.repro_path, self.pipeline, self.target)

    def _message(self) -> str:
        how = f"was killed by {self.signal}" if self.signal else \
            f"exited with status {self.exit_status}"
        lines = [f"ember's compile worker {how} {self._where()} (your process is unharmed)"]
        if self.stderr.strip():
            lines.append("the end of its stderr:")
            lines += ["  " + line for line in self.stderr.rstrip().splitlines()]
        command = self.repro_command()
        if command:
            what = "" if self.repro_stage == self.stage else \
                f" its input (the output of stage '{self.repro_stage}')"
            lines += [f"reproduce{what} with:", f"  {command}"]
        lines.append("This is a bug in ember or in the MLIR, LLVM or torch-mlir it runs: please "
                     "report it with the model (and the repro file). EMBER_ISOLATE=0 compiles "
                     "in your process, e.g. under a debugger.")
        return "\n".join(lines)

    def _where(self) -> str:
        if self.stage is None:
            return "before the compile began"
        where = f"in stage '{self.stage}'"
        if self.step:
            where += f" ({self.step})"
        if self.pass_name:
            where += f", pass '{self.pass_name}'"
        return where


class WorkerTraceback(Exception):
    """The traceback of an exception the compile worker raised: the `__cause__` of the same
    exception raised again in the caller (as multiprocessing.pool does)."""

    def __str__(self) -> str:
        return "\n\n" + self.args[0]


#: ember's own source files: their warnings always show.
_EMBER = os.path.dirname(os.path.abspath(__file__))


def run_isolated(work: Callable[[], Any], *, repro_dir: Optional[str]) -> Any:
    """`work()`, run in a forked worker: its result, or the exception it raised (with the
    worker's traceback as cause), its warnings given again here; CompileError if the worker
    dies. `repro_dir` receives the input of the pass stage that was running then."""
    receiver, sender = multiprocessing.Pipe(duplex=False)
    _flush_standard_streams()       # or the worker would write what they hold once more
    with tempfile.TemporaryFile() as stderr, tempfile.TemporaryFile() as where, \
            tempfile.TemporaryFile() as stage_input:
        pid = os.fork()
        if pid == 0:
            receiver.close()
            _worker(work, sender, stderr, _Whereabouts(where, stage_input))
        sender.close()
        try:
            try:
                with progress.CompileProgress() as shown:
                    while not receiver.poll(0.25):      # the worker's stage, while it works
                        shown.show(json.loads(_read(where) or "{}"))
                with progress.quiet_library_deprecations():   # torch's, on unpickling
                    outcome = receiver.recv()
            except EOFError:        # it died first
                outcome = None
            _, status = os.waitpid(pid, 0)
        except BaseException:       # KeyboardInterrupt: the worker goes too
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        finally:
            receiver.close()
        printed = _read(stderr)
        if outcome is None:
            raise _death(json.loads(_read(where) or "{}"), status, printed, _read(stage_input),
                         repro_dir)
    if printed:
        sys.stderr.write(printed)
    kind, value, given = outcome
    for message, category, filename, lineno in given:
        if not issubclass(category, progress.THIRD_PARTY_DEPRECATIONS) or \
                filename.startswith(_EMBER):
            warnings.warn_explicit(message, category, filename, lineno,
                                   registry=_WARNING_REGISTRY)
    if kind == "raised":
        error, text = value
        error = error.rebuild() if isinstance(error, _Rebuild) else error
        raise error from WorkerTraceback(text)
    return value


# ----------------------------------------------------------------------------- the worker
class _Whereabouts:
    """The worker's listener to ember.progress: keeps where the compile is (stage, step, pass,
    and the pass stage that replays it) and that pass stage's input in two files, which the
    parent reads only if the worker dies. A file write per announcement, no message: the parent
    is not woken a hundred times per compile."""

    def __init__(self, where, stage_input):
        self.where, self.stage_input = where, stage_input
        self.state: Dict[str, Any] = {}

    def __call__(self, fields: Dict[str, Any]) -> None:
        if "stage" in fields:
            self.state.update(pass_name=None, step=None)
        if "pipeline" in fields:
            _rewrite(self.stage_input, fields.pop("ir_input", ""))
            self.state["repro"] = {"stage": fields["stage"], "pipeline": fields.pop("pipeline"),
                                   "target": fields.pop("target", None)}
        self.state.update(fields)
        _rewrite(self.where, json.dumps(self.state))


def _rewrite(file, text: str) -> None:
    os.ftruncate(file.fileno(), 0)
    os.pwrite(file.fileno(), text.encode(), 0)


def _worker(work, sender, stderr, whereabouts: _Whereabouts) -> None:
    """The child's whole life: run `work`, send the outcome, exit (never return: the caller's
    code after the fork, its finalizers and atexit hooks are not the worker's to run)."""
    status = 0
    try:
        os.dup2(stderr.fileno(), 2)
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
        faulthandler.enable(sys.stderr, all_threads=False)
        progress.listen(whereabouts)
        with warnings.catch_warnings(record=True) as caught:
            try:
                outcome = ("returned", work())
            except BaseException as e:
                outcome = ("raised", _portable(e))
        given = [(str(w.message), w.category if _picklable(w.category) else UserWarning,
                  w.filename, w.lineno) for w in caught]
        try:
            sender.send(outcome + (given,))
        except Exception as e:      # a result that does not pickle
            sender.send(("raised", _portable(e), given))
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        _flush_standard_streams()
        os._exit(status)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:       # closed or replaced by something that cannot flush
            pass


@dataclass
class _Rebuild:
    """An exception whose class cannot be rebuilt from its args alone (keyword-only
    constructors, unpicklable attributes): its class, args and picklable attributes."""
    cls: type
    args: tuple
    state: Dict[str, Any] = field(default_factory=dict)

    def rebuild(self) -> BaseException:
        error = self.cls.__new__(self.cls)
        error.args = self.args
        error.__dict__.update(self.state)
        return error


def _picklable(value) -> bool:
    try:
        pickle.dumps(value)
        return True
    except Exception:
        return False


def _portable(error: BaseException) -> Tuple[Any, str]:
    """(the exception, or what rebuilds it in the caller, its traceback text)."""
    text = "".join(traceback.format_exception(error))
    try:
        pickle.loads(pickle.dumps(error))
        return error, text
    except Exception:
        pass
    cls = type(error)
    if not _picklable(cls):
        return RuntimeError(f"{cls.__qualname__}: {error}"), text
    args = error.args if _picklable(error.args) else (str(error),)
    state = {k: v for k, v in vars(error).items() if _picklable(v)}
    return _Rebuild(cls, args, state), text


# ----------------------------------------------------------------------------- the parent
def _read(file) -> str:
    file.seek(0)
    return file.read().decode(errors="replace")


def _death(state: dict, status: int, printed: str, stage_input: str,
           repro_dir: Optional[str]) -> CompileError:
    repro = state.get("repro") or {}
    return CompileError(
        stage=state.get("stage"), pass_name=state.get("pass_name"), step=state.get("step"),
        signal=_signal_name(os.WTERMSIG(status)) if os.WIFSIGNALED(status) else None,
        exit_status=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        stderr=_stderr_tail(printed),
        repro_path=save_repro(stage_input, repro_dir) if repro and stage_input else None,
        repro_stage=repro.get("stage"), pipeline=repro.get("pipeline"),
        target=repro.get("target"))


def _stderr_tail(printed: str) -> str:
    """The worker's last lines on stderr before its death, and the innermost frames of the
    Python stack faulthandler printed then."""
    before, marker, dump = printed.partition("Fatal Python error: ")
    lines = before.rstrip("\n").splitlines()[-STDERR_TAIL_LINES:]
    if marker:
        dump_lines = (marker + dump).splitlines()
        frames = [line for line in dump_lines if line.startswith("  File ")]
        lines += [dump_lines[0], "Python stack (innermost first):", *frames[:STACK_FRAMES]]
    return "\n".join(lines)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:      # a real-time signal
        return f"signal {number}"
