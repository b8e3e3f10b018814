"""Pass pipelines: one parser and runner for ember-opt, `ember.compile` and repro commands.

A pipeline string is MLIR's textual form, `builtin.module(ember-fuse-epilogue, canonicalize,
func.func(cse))`, where any element may be an ember pass (from the registry) or an upstream MLIR
pass. Upstream MLIR 22's Python API cannot name Python passes inside a textual pipeline, so this
module splits the string itself into pass objects (ember passes, and `UpstreamPass` for MLIR's),
which Python code builds directly too. Each pass runs on its own (an upstream one through its
own PassManager), so a failure names its pass and the IR can be printed after every pass. An ember pass nested under an op name
(`func.func(ember-x)`) runs at module level; ember passes walk the ops they rewrite themselves.
After each ember pass the module is verified (MLIR's verifier plus ember's semantic rules).
"""
from __future__ import annotations

import dataclasses
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from mlir import ir
from mlir.passmanager import PassManager

from ember.dialect.verifier import verify_module
from ember.pipeline.pass_base import REGISTRY, EmberPass, PassContext
from ember.progress import announce


class PipelineError(Exception):
    """A pipeline string that does not parse, or names an unknown pass or option."""


class PipelineFailure(Exception):
    """A pass failed; carries what is needed to reproduce it with ember-opt: the failing pass,
    its pipeline (the stage it belongs to, not the whole compile), the IR that pipeline was
    given and the target whose facts the passes read."""

    def __init__(self, message: str, *, pass_name: str, pipeline: str, ir_input: str,
                 repro_path: Optional[str] = None, target: Optional[str] = None,
                 stage: str = ""):
        self.pass_name, self.pipeline, self.ir_input = pass_name, pipeline, ir_input
        self.repro_path, self.target, self.stage = repro_path, target, stage
        self.detail = message
        where = f" in stage '{stage}'" if stage else ""
        text = f"pass '{pass_name}' failed{where}: {message}"
        if repro_path:
            text += f"\nreproduce with:\n  {self.repro_command()}"
        super().__init__(text)

    def repro_command(self) -> str:
        return repro_command(self.repro_path, self.pipeline, self.target)


def repro_command(path: str, pipeline: str, target: Optional[str]) -> str:
    """The ember-opt command that runs `pipeline` (element text) on the IR saved at `path`
    with `target`'s facts."""
    target = f" --target={shlex.quote(target)}" if target else ""
    return (f"ember-opt {shlex.quote(path)}{target} "
            f"--pass-pipeline={shlex.quote(f'builtin.module({pipeline})')}")


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


@dataclass(frozen=True)
class UpstreamPass:
    """An upstream MLIR pass as a pipeline element, or a nesting of them (`func.func(...)`)."""
    name: str
    options: str = ""
    nested: Optional[Tuple["UpstreamPass", ...]] = None

    def text(self) -> str:
        return Element(self.name, self.options,
                       None if self.nested is None else [Element(p.text()) for p in self.nested]
                       ).text()


def upstream(name: str, *flags: str, **options) -> UpstreamPass:
    """An upstream pass built in Python: `upstream("one-shot-bufferize",
    "bufferize-function-boundaries", function_boundary_type_conversion="identity-layout-map")`
    (bare flags mean true; keyword names use `_` for `-`)."""
    parts = list(flags) + [f"{k.replace('_', '-')}={str(v).lower() if isinstance(v, bool) else v}"
                           for k, v in options.items()]
    return UpstreamPass(name, " ".join(parts))


def nest(op_name: str, *passes: UpstreamPass) -> UpstreamPass:
    """Upstream passes run on each `op_name` op (e.g. `func.func`)."""
    return UpstreamPass(op_name, nested=tuple(passes))


#: One element of a pipeline: an ember pass object or an upstream pass.
PassElement = Union[EmberPass, UpstreamPass]


def element_text(element: PassElement) -> str:
    """An element as pipeline text (ember passes with their non-default options)."""
    return element.pipeline_text() if isinstance(element, EmberPass) else element.text()


def element_name(element: PassElement) -> str:
    """The name an element fails under: the pass, or the one pass inside a nesting."""
    if isinstance(element, EmberPass):
        return element.name
    if element.nested is not None and len(element.nested) == 1:
        return element_name(element.nested[0])
    return element.name


def _is_ember(name: str) -> bool:
    return name in REGISTRY


def _contains_ember(element: Element) -> bool:
    return _is_ember(element.name) or any(_contains_ember(c) for c in element.children or ())


def _to_upstream(element: Element) -> UpstreamPass:
    children = None if element.children is None else \
        tuple(_to_upstream(c) for c in element.children)
    return UpstreamPass(element.name, element.options, children)


def _flatten(element: Element) -> List[PassElement]:
    """Ember passes become pass objects; an upstream nesting holding ember passes is split
    around them (ember passes run on the whole module and walk the ops they rewrite)."""
    if _is_ember(element.name):
        if element.children is not None:
            raise PipelineError(f"ember pass '{element.name}' cannot nest passes")
        return [REGISTRY[element.name].from_options(parse_options(element.options))]
    if element.children is None or not _contains_ember(element):
        return [_to_upstream(element)]
    out: List[PassElement] = []
    run: List[UpstreamPass] = []
    for child in element.children:
        for part in _flatten(child):
            if isinstance(part, UpstreamPass):
                run.append(part)
            else:
                if run:
                    out.append(UpstreamPass(element.name, element.options, tuple(run)))
                    run = []
                out.append(part)
    if run:
        out.append(UpstreamPass(element.name, element.options, tuple(run)))
    return out


@dataclass
class Pipeline:
    """An ordered list of passes, each run on its own: a failure names its pass, and
    `--mlir-print-ir-after-all` sees every one."""
    passes: List[PassElement] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, context: Optional[ir.Context] = None) -> "Pipeline":
        """Parses `builtin.module(...)` or a bare element list; validates every name."""
        elements = parse_elements(text)
        if len(elements) == 1 and elements[0].name == "builtin.module" and \
                elements[0].children is not None:
            elements = elements[0].children
        return cls.of([part for e in elements for part in _flatten(e)], context)

    @classmethod
    def of(cls, passes: Sequence[PassElement], context=None) -> "Pipeline":
        """A pipeline of pass objects (ember passes and `upstream(...)` / `nest(...)`)."""
        pipeline = cls(list(passes))
        pipeline._validate(context)
        return pipeline

    def _validate(self, context) -> None:
        with context or ir.Context():
            for element in self.passes:
                if isinstance(element, UpstreamPass):
                    try:
                        PassManager.parse(f"builtin.module({element.text()})")
                    except Exception as e:
                        known = ", ".join(sorted(REGISTRY)) or "none registered: import ember.registry"
                        raise PipelineError(f"invalid pipeline element in '{element.text()}': "
                                            f"{_first_line(e)} (ember passes: {known})") from None

    def text(self) -> str:
        return ",".join(element_text(e) for e in self.passes)

    def names(self) -> List[str]:
        return [element_name(e) for e in self.passes]

    def __add__(self, other: "Pipeline") -> "Pipeline":
        return Pipeline(self.passes + other.passes)

    def without(self, names: Sequence[str]) -> "Pipeline":
        """This pipeline without the passes named in `names` (a copy)."""
        return Pipeline([e for e in self.passes if element_name(e) not in names])

    def with_options(self, name: str, options: Mapping[str, object]) -> "Pipeline":
        """This pipeline with every ember pass `name` given `options` (field names, typed
        values; a copy)."""
        return Pipeline([dataclasses.replace(e, **options)
                         if isinstance(e, EmberPass) and e.name == name else e
                         for e in self.passes])

    def run(self, module: ir.Module, ctx: Optional[PassContext] = None, *,
            repro_dir: Optional[str] = None, print_ir_after_all=None,
            stage: str = "") -> None:
        """Runs every pass in order on `module`; on failure raises PipelineFailure naming the
        pass.

        With `repro_dir`, the pipeline's input is kept (printed once, not before every pass: a
        large model's IR takes a while to print) and saved there on failure, and the error
        quotes the ember-opt command that replays this pipeline on it (with the context's
        target, if any).
        """
        ctx = ctx or PassContext()
        given = module.operation.get_asm(enable_debug_info=True) if repro_dir else ""
        target = ctx.target.spec if ctx.target is not None else None
        announce(stage=stage, pipeline=self.text(), ir_input=given, target=target)
        for element in self.passes:
            announce(pass_name=element_name(element))
            try:
                _run_element(element, module, ctx)
            except Exception as e:
                raise PipelineFailure(
                    str(e), pass_name=element_name(element), pipeline=self.text(),
                    ir_input=given, repro_path=save_repro(given, repro_dir), target=target,
                    stage=stage) from e
            if print_ir_after_all is not None:
                print_ir_after_all.write(f"// -----// IR Dump After {element_text(element)} "
                                         f"//----- //\n{module}\n")


def save_repro(text: str, repro_dir: Optional[str]) -> Optional[str]:
    """Saves a pipeline's input `text` in `repro_dir` (made if needed); returns its path, or
    None without a directory."""
    if not repro_dir:
        return None
    os.makedirs(repro_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="ember-repro-", suffix=".mlir", dir=repro_dir)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _run_element(element: PassElement, module: ir.Module, ctx: PassContext) -> None:
    if isinstance(element, UpstreamPass):
        with module.context:
            PassManager.parse(f"builtin.module({element.text()})").run(module.operation)
        return
    with module.context, ir.Location.unknown():
        element.run(module, ctx)
    module.operation.verify()
    errors = verify_module(module.operation)
    if errors:
        for op, message in errors:
            op.location.emit_error(message)
        op, message = errors[0]
        raise RuntimeError(f"{op.location}: {message}"
                           + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))

