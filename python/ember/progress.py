"""Where a compile is: each frontend step, stage and pass says so here as it starts.

Native code (MLIR, LLVM, torch-mlir) can kill the process it runs in. `ember.compile` therefore
compiles in a worker process (ember.isolation), which listens here and passes every
announcement to its parent; when the worker dies, the parent knows the stage and pass that
were running and holds the input and pipeline that replay that stage in ember-opt. With no
listener (a compile in this process, ember-opt) an announcement costs one function call.

Announcements are keyword fields: `stage` (a stage name, "frontend" for torch-mlir's part),
`step` (what the frontend is doing), `pass_name`, and for a pass stage `pipeline`,
`ir_input` (its input text) and `target` (the target string its passes read).

What the user sees of it: `CompileProgress`, a progress bar with the current stage (tqdm, after
two seconds, on a terminal, off with EMBER_PROGRESS=0), the `ember` logger (level from
EMBER_LOG_LEVEL), and what it does not see: the libraries' warnings about their own APIs
(`quiet_library_deprecations`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from typing import Callable, Optional

_listener: Optional[Callable[[dict], None]] = None


def listen(listener: Optional[Callable[[dict], None]]) -> None:
    """Sends every later announcement to `listener` (None: to nobody)."""
    global _listener
    _listener = listener


def announce(**fields) -> None:
    """Tells the listener, if any, what starts now."""
    if _listener is not None:
        _listener(fields)


# ----------------------------------------------------------------------------- what users see
#: Environment variable: "0" turns the compile progress bar off.
PROGRESS_VARIABLE = "EMBER_PROGRESS"
#: Environment variable: the level of the `ember` logger ("INFO", "DEBUG", ...).
LOG_LEVEL_VARIABLE = "EMBER_LOG_LEVEL"
#: A compile shows its bar only once it has run this long (seconds).
PROGRESS_DELAY_S = 2.0

logger = logging.getLogger("ember")
#: Warnings the libraries ember drives raise about their own APIs (torch's pytree LeafSpec on
#: every deepcopy of a program, transformers' renamed arguments): nothing a user of ember can
#: act on, so not shown. ember's own warnings always show.
THIRD_PARTY_DEPRECATIONS = (FutureWarning, DeprecationWarning)


@contextlib.contextmanager
def quiet_library_deprecations():
    """Hides THIRD_PARTY_DEPRECATIONS raised inside (ember's own calls into torch and the
    model's libraries)."""
    with warnings.catch_warnings():
        for category in THIRD_PARTY_DEPRECATIONS:
            warnings.simplefilter("ignore", category)
        yield


def configure_logging() -> None:
    """Sets the `ember` logger's level from EMBER_LOG_LEVEL and, when set, gives it a stderr
    handler (otherwise logging stays the application's to configure, as a library's should)."""
    level = os.environ.get(LOG_LEVEL_VARIABLE)
    if not level or getattr(configure_logging, "done", None) == level:
        return
    logger.setLevel(level.upper())
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s "
                                               "%(message)s"))
        logger.addHandler(handler)
    configure_logging.done = level


class CompileProgress:
    """A tqdm bar showing the stage (and pass) a compile is in, shown once it has taken
    PROGRESS_DELAY_S, only on a terminal and unless EMBER_PROGRESS=0; every stage also goes to
    the `ember` logger (INFO). Fed with announcement fields (`__call__`, a listener for a
    compile in this process) or the whole state a worker keeps (`show`)."""

    def __init__(self, what: str = "ember compile"):
        self.state: dict = {}
        self.shown = None
        enabled = os.environ.get(PROGRESS_VARIABLE, "1") != "0" and sys.stderr.isatty()
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(desc=what, bar_format="{desc}: {postfix} [{elapsed}]",
                            delay=PROGRESS_DELAY_S, file=sys.stderr, leave=False)

    def __call__(self, fields: dict) -> None:
        if "stage" in fields:
            self.state = {}
        self.state.update({k: v for k, v in fields.items() if k in ("stage", "step",
                                                                    "pass_name")})
        self.show(self.state)

    def show(self, state: dict) -> None:
        """Displays where the compile is: its stage, step or pass."""
        text = " / ".join(str(state[k]) for k in ("stage", "step", "pass_name") if state.get(k))
        if text and text != self.shown:
            if state.get("stage") != (self.shown or "").split(" / ")[0]:
                logger.info("compile stage %s", state.get("stage"))
            logger.debug("compile at %s", text)
            self.shown = text
            if self.bar is not None:
                self.bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "CompileProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
