"""Pass pipelines: one parser and runner for ember-opt, `ember.compile` and repro commands.

A pipeline string is MLIR's textual form, `builtin.module(ember-fuse-epilogue, canonicalize,
func.func(cse))`, where any element may be an ember pass (from the registry) or an upstream MLIR
pass. Upstream MLIR 22's Python API cannot name Python passes inside a textual pipeline, so this
module splits the string itself: runs of upstream passes go to MLIR's PassManager as text; each
ember pass runs as a Python object on the whole module. An ember pass nested under an op name
(`func.func(ember-x)`) runs at module level; ember passes walk the ops they rewrite themselves.
After each ember pass the module is verified (MLIR's verifier plus ember's semantic rules).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

from mlir import ir
from mlir.passmanager import PassManager

from ember.dialect.verifier import verify_module
from ember.pipeline.pass_base import EmberPass, PassContext, load_passes

#: Every registered pass (loading them here: a pipeline may name any of them).
REGISTRY = load_passes()


class PipelineError(Exception):
    """A pipeline string that does not parse, or names an unknown pass or option."""


class PipelineFailure(Exception):
    """A pass failed; carries what is needed to reproduce it with ember-opt."""

    def __init__(self, message: str, *, stage: str, remaining: str, ir_before: str,
                 repro_path: Optional[str] = None):
        self.stage, self.remaining, self.ir_before = stage, remaining, ir_before
        self.repro_path = repro_path
        self.detail = message
        text = f"pass '{stage}' failed: {message}"
        if repro_path:
            text += f"\nreproduce with:\n  {self.repro_command()}"
        super().__init__(text)

    def repro_command(self) -> str:
        return f"ember-opt {self.repro_path} --pass-pipeline='builtin.module({self.remaining})'"


@dataclass
class Element:
    """One parsed pipeline element: `name{options}` or `name(children)` for a nesting."""
    name: str
    options: str = ""
    children: Optional[List["Element"]] = None

    def text(self) -> str:
        out = self.name + (f"{{{self.options}}}" if self.options else "")
        if self.children is not None:
            out += "(" + ",".join(c.text() for c in self.children) + ")"
        return out


def parse_elements(text: str) -> List[Element]:
    """Parses a comma-separated list of pipeline elements (braces and parens balanced)."""
    elements, pos = [], 0
    text = text.strip()
    while pos < len(text):
        element, pos = _parse_element(text, pos)
        elements.append(element)
        while pos < len(text) and text[pos] in " ,\n\t":
            pos += 1
    return elements


def _parse_element(text: str, pos: int):
    start = pos
    while pos < len(text) and text[pos] not in "{(,) \n\t":
        pos += 1
    name = text[start:pos]
    if not name:
        raise PipelineError(f"expected a pass name at offset {start} of '{text}'")
    options, children = "", None
    if pos < len(text) and text[pos] == "{":
        end = _matching(text, pos, "{", "}")
        options, pos = text[pos + 1:end].strip(), end + 1
    if pos < len(text) and text[pos] == "(":
        end = _matching(text, pos, "(", ")")
        children, pos = parse_elements(text[pos + 1:end]), end + 1
    return Element(name, options, children), pos


def _matching(text: str, pos: int, open_: str, close: str) -> int:
    depth = 0
    for i in range(pos, len(text)):
        depth += text[i] == open_
        depth -= text[i] == close
        if depth == 0:
            return i
    raise PipelineError(f"unbalanced '{open_}' in '{text}'")


def parse_options(text: str) -> dict:
    """`a=1 b=x,y c` -> {'a': '1', 'b': 'x,y', 'c': ''} (a bare key means true)."""
    out = {}
    for token in text.split():
        key, _, value = token.partition("=")
        out[key] = value
    return out


@dataclass
class UpstreamStage:
    """A run of upstream MLIR passes, handed to MLIR's PassManager as text."""
    text: str

    def describe(self) -> str:
        return self.text


@dataclass
class EmberStage:
    pass_: EmberPass

    def describe(self) -> str:
        return self.pass_.pipeline_text()


Stage = Union[UpstreamStage, EmberStage]


def _is_ember(name: str) -> bool:
    return name in REGISTRY


def _contains_ember(element: Element) -> bool:
    return _is_ember(element.name) or any(_contains_ember(c) for c in element.children or ())


def _flatten(element: Element) -> List[Union[Element, EmberPass]]:
    """Ember passes come out as pass objects; upstream parts stay elements, split around them."""
    if _is_ember(element.name):
        if element.children is not None:
            raise PipelineError(f"ember pass '{element.name}' cannot nest passes")
        return [REGISTRY[element.name].from_options(parse_options(element.options))]
    if element.children is None or not _contains_ember(element):
        return [element]
    out: List[Union[Element, EmberPass]] = []
    run: List[Element] = []
    for child in element.children:
        for part in _flatten(child):
            if isinstance(part, Element):
                run.append(part)
            else:
                if run:
                    out.append(Element(element.name, element.options, run))
                    run = []
                out.append(part)
    if run:
        out.append(Element(element.name, element.options, run))
    return out


@dataclass
class Pipeline:
    stages: List[Stage] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, context: Optional[ir.Context] = None) -> "Pipeline":
        """Parses `builtin.module(...)` or a bare element list; validates every name."""
        elements = parse_elements(text)
        if len(elements) == 1 and elements[0].name == "builtin.module" and \
                elements[0].children is not None:
            elements = elements[0].children
        return cls.from_elements(elements, context)

    @classmethod
    def from_elements(cls, elements: Sequence[Element], context=None) -> "Pipeline":
        stages: List[Stage] = []
        upstream: List[str] = []
        for element in elements:
            for part in _flatten(element):
                if isinstance(part, Element):
                    upstream.append(part.text())
                else:
                    if upstream:
                        stages.append(UpstreamStage(",".join(upstream)))
                        upstream = []
                    stages.append(EmberStage(part))
        if upstream:
            stages.append(UpstreamStage(",".join(upstream)))
        pipeline = cls(stages)
        pipeline._validate(context)
        return pipeline

    def _validate(self, context) -> None:
        ctx = context or ir.Context()
        with ctx:
            for stage in self.stages:
                if isinstance(stage, UpstreamStage):
                    try:
                        PassManager.parse(f"builtin.module({stage.text})")
                    except Exception as e:
                        known = ", ".join(sorted(REGISTRY))
                        raise PipelineError(f"invalid pipeline element in '{stage.text}': "
                                            f"{_first_line(e)} (ember passes: {known})") from None

    def text(self, start: int = 0) -> str:
        return ",".join(s.describe() for s in self.stages[start:])

    def __add__(self, other: "Pipeline") -> "Pipeline":
        return Pipeline(self.stages + other.stages)

    def run(self, module: ir.Module, ctx: Optional[PassContext] = None, *,
            repro_dir: Optional[str] = None, print_ir_after_all=None) -> None:
        """Runs every stage in order on `module`; on failure raises PipelineFailure.

        With `repro_dir`, the failing stage's input is saved there and the error quotes the
        ember-opt command that reproduces the failure.
        """
        ctx = ctx or PassContext()
        for index, stage in enumerate(self.stages):
            before = module.operation.get_asm(enable_debug_info=True) if repro_dir else ""
            try:
                _run_stage(stage, module, ctx)
            except Exception as e:
                path = None
                if repro_dir:
                    os.makedirs(repro_dir, exist_ok=True)
                    fd, path = tempfile.mkstemp(prefix="ember-repro-", suffix=".mlir",
                                                dir=repro_dir)
                    with os.fdopen(fd, "w") as f:
                        f.write(before)
                raise PipelineFailure(str(e), stage=stage.describe(), remaining=self.text(index),
                                      ir_before=before, repro_path=path) from e
            if print_ir_after_all is not None:
                print_ir_after_all.write(f"// -----// IR Dump After {stage.describe()} //----- //\n"
                                         f"{module}\n")


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _run_stage(stage: Stage, module: ir.Module, ctx: PassContext) -> None:
    if isinstance(stage, UpstreamStage):
        with module.context:
            PassManager.parse(f"builtin.module({stage.text})").run(module.operation)
        return
    with module.context, ir.Location.unknown():
        stage.pass_.run(module, ctx)
    module.operation.verify()
    errors = verify_module(module.operation)
    if errors:
        for op, message in errors:
            op.location.emit_error(message)
        op, message = errors[0]
        raise RuntimeError(f"{op.location}: {message}"
                           + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))


def run_pipeline(module: ir.Module, text: str, ctx: Optional[PassContext] = None, **kw) -> None:
    """Parses and runs `text` on `module` (a convenience for Python users and tests)."""
    Pipeline.parse(text, module.context).run(module, ctx, **kw)
