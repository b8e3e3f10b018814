"""ember-opt under mutated input: a diagnostic or success, never a signal or a Python traceback.

The inputs are the lit tests' own files (valid IR near many verifier and pass edge cases); each
example mutates one of them (drops, repeats or swaps lines, cuts the file short, rewrites a
number, a type or a shape) and runs ember-opt on it with that file's RUN-line flags (its passes,
stages and target) in a child process, so that a crash is observed instead of suffered.
Hypothesis draws the mutations from a fixed seed, so a failure reproduces; the failing input is
written next to the assertion message for `ember-opt` to be rerun by hand.
"""
from __future__ import annotations

import pathlib
import re
import shlex
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

LIT = pathlib.Path(__file__).resolve().parent.parent / "lit_tests"
#: Flags of the first ember-opt command of a RUN line, after `%s` and before a pipe.
_RUN = re.compile(r"//\s*RUN:\s*(?:not\s+)?ember-opt\s+(.*?)(?:\||$)")
#: Flags that steer checking or files rather than the compiler; dropped from fuzzed runs.
_DROPPED = ("--verify-diagnostics", "--weights", "-o")


def _flags(text: str) -> list:
    match = _RUN.search(text)
    if not match:
        return []
    words = shlex.split(match.group(1).replace("%s", "").replace("< ", ""))
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("--weights", "-o"):
            skip = True
            continue
        if word.startswith(_DROPPED) or word.startswith("%") or word.startswith("2>"):
            continue
        kept.append(word)
    return kept


def _corpus():
    cases = []
    for path in sorted(LIT.rglob("*.mlir")):
        if "Output" in path.parts:
            continue
        text = path.read_text()
        body = [line for line in text.splitlines() if not line.lstrip().startswith("//")
                or line.strip() == "// -----"]
        if any(line.strip() for line in body):
            cases.append((path.relative_to(LIT).as_posix(), body, _flags(text)))
    return cases


CORPUS = _corpus()
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?![\w.])")
_TYPE = re.compile(r"\b(f32|f16|bf16|i1|i8|i32|i64|index)\b")
_DIMS = re.compile(r"(?<=[<x])(\d+|\?)(?=x)")
_NUMBERS = ("0", "-1", "1", "7", "4294967296", "-9223372036854775808")
_TYPES = ("f32", "f16", "bf16", "i1", "i8", "i64", "index", "complex<f32>")


def _mutate(lines, data):
    lines = list(lines)
    kind = data.draw(st.sampled_from(
        ["drop", "repeat", "swap", "cut", "number", "type", "dim"]), label="mutation")
    at = data.draw(st.integers(0, len(lines) - 1), label="line")
    if kind == "drop":
        del lines[at]
    elif kind == "repeat":
        lines.insert(at, lines[at])
    elif kind == "swap":
        other = data.draw(st.integers(0, len(lines) - 1), label="other line")
        lines[at], lines[other] = lines[other], lines[at]
    elif kind == "cut":
        text = "\n".join(lines)
        return text[:data.draw(st.integers(0, len(text)), label="cut at")]
    else:
        pattern, choices = {"number": (_NUMBER, _NUMBERS), "type": (_TYPE, _TYPES),
                            "dim": (_DIMS, ("0", "?", "1", "65536"))}[kind]
        hits = [(i, m) for i, line in enumerate(lines) for m in pattern.finditer(line)]
        if hits:
            i, m = hits[data.draw(st.integers(0, len(hits) - 1), label="site")]
            new = data.draw(st.sampled_from(choices), label="replacement")
            lines[i] = lines[i][:m.start()] + new + lines[i][m.end():]
    return "\n".join(lines) + "\n"


@settings(max_examples=45, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_lit_input_gives_diagnostic_or_success(data, tmp_path):
    name, lines, flags = data.draw(st.sampled_from(CORPUS), label="lit input")
    source = tmp_path / "mutated.mlir"
    source.write_text(_mutate(lines, data))
    command = [sys.executable, "-m", "ember.tools.ember_opt", str(source), *flags]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    repro = f"{shlex.join(command)}  (from lit_tests/{name})\n--- input ---\n{source.read_text()}"
    assert run.returncode >= 0, f"ember-opt died of signal {-run.returncode}: {repro}"
    assert "Traceback (most recent call last)" not in run.stderr, \
        f"ember-opt raised an internal error:\n{run.stderr[-3000:]}\n{repro}"
    assert run.returncode == 0 or run.stderr.strip(), f"failed without a diagnostic: {repro}"


def test_corpus_covers_the_lit_suite():
    """The fuzzer draws from every lit directory, with the flags its RUN lines use."""
    folders = {name.split("/")[0] for name, _, _ in CORPUS}
    assert {"dialect", "passes", "ember-opt"} <= folders
    assert any("--stages=bufferize,kernels,loops,llvm" in flags for _, _, flags in CORPUS)
