"""ember-opt: mlir-opt for ember. Parses a .mlir file, verifies it, runs passes, prints it.

    ember-opt in.mlir --ember-canonicalize --ember-fuse-epilogue=residual=false --cse
    ember-opt in.mlir --pass-pipeline='builtin.module(ember-fold-constants,canonicalize)'
    ember-opt in.mlir --split-input-file --verify-diagnostics

    ember-opt in.mlir --target=aarch64:preset=graviton3 --stages=bufferize,kernels

Passes come either as flags, in order (a registered ember pass by name, any other `--name` an
upstream MLIR pass), or as one --pass-pipeline; both go through `ember.pipeline.pipeline`'s
parser and runner. `--stages` then runs named stages of the target's stage table (the same
table `ember.compile` runs). Passes read the target's facts: `--target` (the strings
`ember.compile` takes), else those stamped on the module (`ember.target`, as in a repro), else
this machine's. This module only wires the command line to `ember.tools.source` (input, chunks),
`ember.tools.diagnostics` (printing and --verify-diagnostics) and the pipeline; it holds no pass
or parsing logic of its own.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from mlir import ir

from ember.targets import get_target
from ember.backends.base import PassStage, Target, disable_passes
from ember.dialect import new_context
from ember.dialect.verifier import verify_module
from ember.pipeline import PassContext, PassOptionError
from ember.registry import REGISTRY
from ember.pipeline.pipeline import Pipeline, PipelineError, PipelineFailure
from ember.pipeline.target_info import TargetInfo
from ember.transforms.graph_pipeline import graph_pipeline
from ember.tools import diagnostics as dg
from ember.tools.source import SPLIT_MARKER, Chunk, parse_module, split_input
from ember.weights import WeightTable

TOOL = "ember-opt"


class UsageError(Exception):
    """A bad command line: reported as `ember-opt: error: ...` with exit code 1."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(
        prog=TOOL, add_help=False, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=f"{TOOL} [input.mlir|-] [-o out] [--pass-pipeline=...] [--<pass>[=<options>] ...]"
              " [options]",
        description="Parses, verifies and transforms ember / MLIR IR, like mlir-opt.",
        epilog=describe_passes())
    p.add_argument("input", nargs="?", default="-", help="input file ('-' or none: stdin)")
    p.add_argument("-o", dest="output", default="-", metavar="out",
                   help="output file ('-': stdout)")
    p.add_argument("--pass-pipeline", default=None, metavar="PIPELINE",
                   help="a textual pipeline, e.g. 'builtin.module(ember-canonicalize,cse)'")
    p.add_argument("--target", default=None, metavar="TARGET",
                   help="the target whose facts passes read, e.g. 'host', "
                        "'aarch64:preset=graviton3', 'cuda:arch=sm_90' (default: the module's "
                        "ember.target attribute, else host)")
    p.add_argument("--stages", default="", metavar="NAMES",
                   help="comma-separated pass stages of the target's stage table to run after "
                        "the passes, e.g. 'bufferize,kernels,loops,llvm'")
    p.add_argument("--disable-passes", default="", metavar="NAMES",
                   help="comma-separated passes to leave out of --stages")
    p.add_argument("--split-input-file", action="store_true",
                   help=f"process each chunk between '{SPLIT_MARKER}' lines on its own")
    p.add_argument("--verify-diagnostics", action="store_true",
                   help="check diagnostics against '// expected-error {{...}}' comments")
    p.add_argument("--mlir-print-ir-after-all", action="store_true",
                   help="print the IR to stderr after each pipeline stage")
    p.add_argument("--mlir-print-debuginfo", action="store_true", help="print locations")
    p.add_argument("--mlir-print-op-generic", action="store_true",
                   help="print every op in generic form")
    p.add_argument("--allow-unregistered-dialect", action="store_true",
                   help="accept ops of dialects that are not registered")
    p.add_argument("--weights", default=None, metavar="FILE.safetensors",
                   help="the weights table passes read and fold (default: abstract, no data)")
    p.add_argument("--list-passes", action="store_true", help="list ember's passes and exit")
    p.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    return p


def describe_passes() -> str:
    """The registered ember passes with summaries and options (name: type = default)."""
    lines = ["ember passes (as --<name>[=<options>] flags or inside --pass-pipeline):"]
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        lines.append(f"  --{name:<24} {cls.summary()}")
        for f in cls.options():
            type_name = f.type if isinstance(f.type, str) else f.type.__name__
            default = str(f.default).lower() if isinstance(f.default, bool) else f.default
            lines.append(f"      {f.name.replace('_', '-')}: {type_name} = {default}")
    lines.append("Any other --<name>[=<options>] is an upstream MLIR pass (--canonicalize, --cse).")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line
@dataclass
class Options:
    input: str = "-"
    output: str = "-"
    pipeline: str = ""
    split_input_file: bool = False
    verify_diagnostics: bool = False
    print_ir_after_all: bool = False
    print_debuginfo: bool = False
    print_op_generic: bool = False
    allow_unregistered_dialect: bool = False
    weights: Optional[str] = None
    target: Optional[str] = None
    stages: Tuple[str, ...] = ()
    disabled_passes: Tuple[str, ...] = ()
    list_passes: bool = False
    help: bool = False


#: Tool options that take a value in the next argument when written without `=`.
_VALUE_OPTIONS = ("-o", "--pass-pipeline", "--weights", "--target", "--stages",
                  "--disable-passes")


def split_pass_flags(argv: Sequence[str], known: Sequence[str]) -> Tuple[List[str], List[str]]:
    """Separates `--<pass>[=<options>]` flags (in order) from the tool's own arguments.

    Like mlir-opt, a long option may be written with one dash (`-canonicalize`).
    """
    tool_args, pass_flags = [], []
    takes_value = False
    for arg in argv:
        if takes_value:
            tool_args.append(arg)
            takes_value = False
            continue
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            arg = "-" + arg
        name = arg.split("=", 1)[0]
        if arg.startswith("--") and arg != "--" and name not in known:
            pass_flags.append(arg)
            continue
        tool_args.append(arg)
        takes_value = arg in _VALUE_OPTIONS
    return tool_args, pass_flags


def flag_to_element(flag: str) -> str:
    """`--ember-fuse-epilogue=bias=false residual=false` -> `ember-fuse-epilogue{bias=...}`."""
    name, _, options = flag[2:].partition("=")
    options = options.strip().strip("'\"").strip()
    if options.startswith("{") and options.endswith("}"):
        options = options[1:-1].strip()
    return name + (f"{{{options}}}" if options else "")


def parse_command_line(argv: Sequence[str]) -> Options:
    """Options from `argv` (without the program name); raises UsageError."""
    parser = build_parser()
    known = [s for action in parser._actions for s in action.option_strings]
    tool_args, pass_flags = split_pass_flags(argv, known)
    ns = parser.parse_args(tool_args)
    if pass_flags and ns.pass_pipeline is not None:
        raise UsageError("pass flags (" + " ".join(pass_flags) + ") and --pass-pipeline "
                         "cannot be used together")
    pipeline = ns.pass_pipeline if ns.pass_pipeline is not None else \
        ",".join(flag_to_element(f) for f in pass_flags)
    return Options(input=ns.input, output=ns.output, pipeline=pipeline,
                   split_input_file=ns.split_input_file,
                   verify_diagnostics=ns.verify_diagnostics,
                   print_ir_after_all=ns.mlir_print_ir_after_all,
                   print_debuginfo=ns.mlir_print_debuginfo,
                   print_op_generic=ns.mlir_print_op_generic,
                   allow_unregistered_dialect=ns.allow_unregistered_dialect,
                   weights=ns.weights, target=ns.target,
                   stages=tuple(filter(None, ns.stages.split(","))),
                   disabled_passes=tuple(filter(None, ns.disable_passes.split(","))),
                   list_passes=ns.list_passes, help=ns.help)


# ----------------------------------------------------------------------------- processing
@dataclass
class ChunkResult:
    output: str  # the printed module, or "" when the chunk failed
    ok: bool


def process_chunk(chunk: Chunk, filename: str, pipeline: Pipeline, options: Options,
                  weights: dict) -> ChunkResult:
    """Parses, verifies and transforms one chunk; reports its diagnostics on stderr."""
    module, produced, failure = _transform(chunk, filename, pipeline, options, weights)
    if options.verify_diagnostics:
        expectations, problems = dg.parse_expectations(chunk.text, filename, chunk.first_line)
        problems += dg.verify(expectations, produced)
        for problem in problems:
            print(problem, file=sys.stderr)
        ok = not problems
    else:
        for diag in produced:
            print(diag.format(), file=sys.stderr)
        if failure:
            print(f"{TOOL}: error: {failure}", file=sys.stderr)
        ok = module is not None
    if module is None:
        return ChunkResult("", ok)
    text = module.operation.get_asm(enable_debug_info=options.print_debuginfo,
                                    print_generic_op_form=options.print_op_generic)
    return ChunkResult(text if text.endswith("\n") else text + "\n", ok)


def target_of(module: ir.Module, spec: Optional[str]) -> Tuple[Target, TargetInfo]:
    """The target passes compile `module` for, and its facts: `--target` when given, else the
    facts stamped on the module (a repro's), else this machine's."""
    stamped = TargetInfo.stamped_on(module)
    if spec is None and stamped is not None:
        return get_target(stamped.spec), stamped
    target = get_target(spec or "host")
    return target, target.info


def stage_pipeline(target: Target, names: Sequence[str], disabled: Sequence[str]) -> Pipeline:
    """The passes of the named stages of `target`'s stage table, in table order."""
    table = disable_passes(target.stages(graph_pipeline()), disabled) if names or disabled \
        else []
    stages = {s.name: s for s in table}
    pipeline = Pipeline()
    for name in names:
        stage = stages.get(name)
        if not isinstance(stage, PassStage):
            passes = ", ".join(s.name for s in table if isinstance(s, PassStage))
            raise UsageError(f"target '{target.kind}' has no pass stage '{name}' "
                             f"(its pass stages: {passes})")
        pipeline = pipeline + stage.pipeline
    return pipeline


def _transform(chunk: Chunk, filename: str, pipeline: Pipeline, options: Options,
               weights: dict) -> Tuple[Optional[ir.Module], List[dg.Diag], Optional[str]]:
    """(the transformed module or None on any error, every diagnostic, the failed pass)."""
    context = new_context()
    context.allow_unregistered_dialects = options.allow_unregistered_dialect
    module, found, failure = None, [], None
    with dg.DiagnosticCollector(context) as collected:
        try:
            module = parse_module(chunk, context, filename)
            found = [dg.at(op.location, message)
                     for op, message in verify_module(module.operation)]
            if not found and (pipeline.passes or options.stages):
                target, info = target_of(module, options.target)
                if options.target is not None:
                    info.stamp(module)       # the output carries the facts it was made with
                passes = pipeline + stage_pipeline(target, options.stages,
                                                   options.disabled_passes)
                passes.run(module, PassContext(weights=WeightTable(weights), target=info),
                           print_ir_after_all=sys.stderr if options.print_ir_after_all
                           else None)
        except (UsageError, ValueError) as e:   # a bad --stages name or ember.target attribute
            found = [dg.from_text(str(e))]
        except PipelineFailure as e:
            failure = f"pass '{e.pass_name}' failed"
            found = dg.from_exception(e)
            if not found and not collected.has_errors():
                # The pass raised without emitting a diagnostic: its text is the error.
                found = [dg.from_text(e.detail)]
        except ir.MLIRError as e:  # parse and MLIR verifier errors
            found = dg.from_exception(e)
    produced = collected.diags + found
    if any(d.severity == "error" for d in produced):
        module = None
    return module, produced, failure


def _read_input(path: str) -> Tuple[str, str]:
    """The input's text and the name diagnostics give it (stdin is `<stdin>`, like mlir-opt)."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except OSError as e:
        raise UsageError(f"cannot open input file '{path}': {e.strerror}") from None


def _load_weights(path: Optional[str]) -> dict:
    """name -> array from a safetensors file; {} (an abstract table) without one."""
    if path is None:
        return {}
    from safetensors.numpy import load_file
    try:
        return load_file(path)
    except Exception as e:  # missing file, not safetensors
        raise UsageError(f"cannot load weights '{path}': {e}") from None


def _write_output(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def run(options: Options) -> int:
    """Runs ember-opt with parsed options; returns the exit code."""
    if options.help or options.list_passes:
        sys.stdout.write((build_parser().format_help() if options.help else
                          describe_passes() + "\n"))
        return 0
    try:
        pipeline = Pipeline.parse(options.pipeline, new_context())
        if options.target is not None:
            get_target(options.target).info      # a bad target string fails here, once
    except (PipelineError, PassOptionError, ValueError) as e:
        return _fail(str(e))
    try:
        text, filename = _read_input(options.input)
        weights = _load_weights(options.weights)
    except UsageError as e:
        return _fail(str(e))
    chunks = split_input(text) if options.split_input_file else [Chunk(text)]
    results = [process_chunk(c, filename, pipeline, options, weights) for c in chunks]
    try:
        _write_output(options.output, (SPLIT_MARKER + "\n").join(r.output for r in results))
    except OSError as e:
        return _fail(f"cannot write output file '{options.output}': {e.strerror}")
    return 0 if all(r.ok for r in results) else 1


def _fail(message: str) -> int:
    print(f"{TOOL}: error: {message}", file=sys.stderr)
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        options = parse_command_line(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        return _fail(str(e))
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
