"""ember-opt's Python side: the pipeline parser, pass flags, diagnostics and input splitting.

What the command does on .mlir files (its output, messages, flags, stdin, -o, splitting,
--verify-diagnostics) is checked once, in lit_tests/ember-opt; these tests pin down the pieces
underneath with exact values: how pipeline strings and pass flags parse, which errors come
back, how `// expected-error` designators resolve, and how chunks keep their line numbers. The
few that run the command in-process need what lit cannot give: the exact exit status, or a
test pass registered from Python.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest
from mlir import ir

from ember.dialect import new_context
from ember.pipeline import REGISTRY, EmberPass, PassContext, PassOptionError
from ember.pipeline.pipeline import Pipeline, PipelineError, UpstreamPass, element_text, parse_elements
from ember.tools import diagnostics as dg
from ember.tools.ember_opt import (describe_passes, flag_to_element, main, parse_command_line,
                                   split_pass_flags)
from ember.tools.source import Chunk, parse_module, split_input

GEMM_BIAS = """\
func.func @f(%a: tensor<8x16xf32>, %w: tensor<16x32xf32>, %b: tensor<32xf32>) -> tensor<8x32xf32> {
  %0 = "ember.gemm"(%a, %w) {activation = "none", operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0>} \
: (tensor<8x16xf32>, tensor<16x32xf32>) -> tensor<8x32xf32>
  %1 = "ember.binary"(%0, %b) {kind = "add"} : (tensor<8x32xf32>, tensor<32xf32>) \
-> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}
"""

#: An unknown unary kind: IRDL rejects it at parse time (irdl.any_of).
BAD_KIND = """\
func.func @g(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "ember.unary"(%a) {kind = "swish"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


def run_opt(argv, capsys):
    """Runs ember-opt in-process; returns (exit code, stdout, stderr)."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def source(tmp_path):
    def write(text, name="in.mlir"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


# ----------------------------------------------------------------------------- pipeline parser
def test_parse_elements_nesting_and_options():
    elements = parse_elements("builtin.module(ember-fuse-epilogue{bias=false residual=false},"
                              " func.func(cse, canonicalize{max-iterations=3}))")
    assert len(elements) == 1 and elements[0].name == "builtin.module"
    fuse, nest = elements[0].children
    assert (fuse.name, fuse.options, fuse.children) == \
        ("ember-fuse-epilogue", "bias=false residual=false", None)
    assert nest.name == "func.func"
    assert [c.text() for c in nest.children] == ["cse", "canonicalize{max-iterations=3}"]


def test_pipeline_holds_one_object_per_pass():
    p = Pipeline.parse("builtin.module(canonicalize,cse,ember-fuse-epilogue{residual=false},"
                       "func.func(cse),ember-canonicalize)")
    kinds = [(type(e).__name__, element_text(e)) for e in p.passes]
    assert kinds == [("UpstreamPass", "canonicalize"), ("UpstreamPass", "cse"),
                     ("FuseEpilogue", "ember-fuse-epilogue{residual=false}"),
                     ("UpstreamPass", "func.func(cse)"),
                     ("Canonicalize", "ember-canonicalize")]
    assert p.names() == ["canonicalize", "cse", "ember-fuse-epilogue", "cse",
                         "ember-canonicalize"]


def test_ember_pass_nested_in_func_splits_the_nesting():
    p = Pipeline.parse("builtin.module(func.func(canonicalize,ember-fuse-epilogue,cse))")
    assert [element_text(e) for e in p.passes] == \
        ["func.func(canonicalize)", "ember-fuse-epilogue", "func.func(cse)"]
    assert isinstance(p.passes[1], EmberPass) and isinstance(p.passes[2], UpstreamPass)


def test_bare_element_list_and_empty_pipeline():
    assert [element_text(e) for e in Pipeline.parse("ember-canonicalize, cse").passes] == \
        ["ember-canonicalize", "cse"]
    assert Pipeline.parse("").passes == []


@pytest.mark.parametrize("text, option, value", [
    ("ember-fuse-epilogue{bias=false}", "bias", False),
    ("ember-fuse-epilogue{bias=0}", "bias", False),
    ("ember-fuse-epilogue{bias=1}", "bias", True),
    ("ember-fuse-epilogue{bias}", "bias", True),
    ("ember-fold-constants{max-elements=16}", "max_elements", 16),
])
def test_option_values_are_converted_to_field_types(text, option, value):
    (pass_,) = Pipeline.parse(text).passes
    assert getattr(pass_, option) == value


def test_option_defaults_and_pipeline_text_round_trip():
    (pass_,) = Pipeline.parse("ember-fuse-epilogue{activation=false}").passes
    assert (pass_.bias, pass_.activation, pass_.residual) == (True, False, True)
    assert element_text(pass_) == "ember-fuse-epilogue{activation=false}"
    again = Pipeline.parse(Pipeline.parse("ember-fold-constants{max-elements=7},cse").text())
    assert again.text() == "ember-fold-constants{max-elements=7},cse"


@pytest.mark.parametrize("text, message", [
    ("ember-fuse-epilogue{bogus=1}",
     "pass 'ember-fuse-epilogue' has no option 'bogus' (options: activation, bias, residual)"),
    ("ember-fuse-epilogue{bias=maybe}",
     "pass 'ember-fuse-epilogue': option 'bias' expects bool, got 'maybe'"),
    ("ember-fold-constants{max-elements=1.5}",
     "pass 'ember-fold-constants': option 'max-elements' expects int, got '1.5'"),
    ("ember-canonicalize{x=1}", "pass 'ember-canonicalize' has no option 'x' (options: none)"),
])
def test_bad_ember_options(text, message):
    with pytest.raises(PassOptionError) as e:
        Pipeline.parse(text)
    assert str(e.value) == message


def test_unknown_pass_lists_ember_passes():
    with pytest.raises(PipelineError) as e:
        Pipeline.parse("builtin.module(ember-canonicalize,no-such-pass)")
    text = str(e.value)
    assert "'no-such-pass' does not refer to a registered pass" in text
    assert all(name in text for name in REGISTRY)


@pytest.mark.parametrize("text, message", [
    ("builtin.module(cse", "unbalanced '('"),
    ("ember-canonicalize(cse)", "ember pass 'ember-canonicalize' cannot nest passes"),
    ("canonicalize{bogus=1}", "no such option bogus"),
])
def test_malformed_pipelines(text, message):
    with pytest.raises(PipelineError, match=message.replace("(", r"\(")):
        Pipeline.parse(text)


# ----------------------------------------------------------------------------- command line
KNOWN = ["-o", "--pass-pipeline", "--split-input-file", "--weights"]


def test_pass_flags_keep_order_and_tool_arguments_stay():
    tool, passes = split_pass_flags(
        ["in.mlir", "--cse", "-o", "out.mlir", "-ember-canonicalize",
         "--ember-fuse-epilogue=residual=false", "--split-input-file", "--canonicalize"], KNOWN)
    assert tool == ["in.mlir", "-o", "out.mlir", "--split-input-file"]
    assert passes == ["--cse", "--ember-canonicalize", "--ember-fuse-epilogue=residual=false",
                      "--canonicalize"]


def test_a_value_option_takes_the_next_argument_whatever_it_looks_like():
    tool, passes = split_pass_flags(["--pass-pipeline", "--odd", "-o", "-"], KNOWN)
    assert (tool, passes) == (["--pass-pipeline", "--odd", "-o", "-"], [])


@pytest.mark.parametrize("flag, element", [
    ("--cse", "cse"),
    ("--ember-fuse-epilogue=residual=false", "ember-fuse-epilogue{residual=false}"),
    ("--ember-fuse-epilogue=bias=false residual=false",
     "ember-fuse-epilogue{bias=false residual=false}"),
    ("--ember-fuse-epilogue='bias=false'", "ember-fuse-epilogue{bias=false}"),
    ("--ember-fuse-epilogue={bias=false}", "ember-fuse-epilogue{bias=false}"),
    ("--canonicalize=max-iterations=2", "canonicalize{max-iterations=2}"),
])
def test_flag_to_element(flag, element):
    assert flag_to_element(flag) == element


def test_parse_command_line_builds_the_pipeline_from_flags():
    options = parse_command_line(["x.mlir", "--ember-canonicalize", "--cse",
                                  "--ember-fold-constants=max-elements=4", "--verify-diagnostics"])
    assert options.input == "x.mlir" and options.output == "-"
    assert options.pipeline == "ember-canonicalize,cse,ember-fold-constants{max-elements=4}"
    assert options.verify_diagnostics and not options.split_input_file


def test_tool_options_are_not_abbreviated():
    # `--split` is not --split-input-file: it is taken as a (here unknown) pass name.
    assert parse_command_line(["--split"]).pipeline == "split"


# ----------------------------------------------------------------------------- pass registry
def test_describe_passes_lists_every_registered_pass_with_options():
    """The pass section of --help and --list-passes (lit_tests/ember-opt/help.mlir) comes from
    the registry: every pass with its summary, and every option as `name: type = default`."""
    text = describe_passes()
    for name, cls in REGISTRY.items():
        assert f"--{name} " in text and cls.summary() in text
        for f in cls.options():
            default = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
            assert f"{f.name.replace('_', '-')}: {f.type} = {default}" in text


# ----------------------------------------------------------------------------- main()
#: Each way ember-opt fails (lit_tests/ember-opt checks the messages): (input text or None for
#: a missing file, arguments after the input).
FAILURES = {
    "unknown pass": (GEMM_BIAS, ["--frobnicate"]),
    "bad option": (GEMM_BIAS, ["--ember-fuse-epilogue=bias=yes"]),
    "flags and pipeline": (GEMM_BIAS, ["--cse", "--pass-pipeline=builtin.module(cse)"]),
    "missing input": (None, []),
    "parse error": ("func.func @g( {\n}\n", []),
    "verifier error": (BAD_KIND, []),
    "pass failure": (GEMM_BIAS, ["--pass-pipeline=builtin.module(one-shot-bufferize)"]),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_failures_exit_with_status_1_and_print_nothing_on_stdout(case, source, capsys, tmp_path):
    """Like mlir-opt, every failure is exit status 1 (lit's `not` sees only non-zero)."""
    text, argv = FAILURES[case]
    path = source(text) if text is not None else str(tmp_path / "nope.mlir")
    code, out, err = run_opt([path, *argv], capsys)
    assert (code, out) == (1, "") and err.strip()


def test_weights_file_fills_the_table(source, capsys, tmp_path, monkeypatch):
    np = pytest.importorskip("numpy")
    from safetensors.numpy import save_file
    weights = tmp_path / "w.safetensors"
    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(weights))
    seen = {}

    @dataclasses.dataclass
    class Probe(EmberPass):
        """Records the weights table it is given."""
        name: ClassVar[str] = "test-probe-weights"

        def run(self, module, ctx: PassContext) -> None:
            seen["names"] = ctx.weights.names()
            seen["w"] = ctx.weights.get("w")

    monkeypatch.setitem(REGISTRY, Probe.name, Probe)
    code, _, err = run_opt([source(GEMM_BIAS), "--weights", str(weights), "--test-probe-weights"],
                           capsys)
    assert (code, err) == (0, "")
    assert seen["names"] == ["w"] and seen["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    run_opt([source(GEMM_BIAS), "--test-probe-weights"], capsys)
    assert seen["names"] == []  # abstract table without --weights


# ----------------------------------------------------------------------------- pass failures
@dataclasses.dataclass
class EmitsError(EmberPass):
    """Fails at the first ember.gemm, as a pass reports a located problem."""
    name: ClassVar[str] = "test-emit-error"

    def run(self, module, ctx: PassContext) -> None:
        found = []
        module.operation.walk(lambda op: found.append(op) or ir.WalkResult.ADVANCE)
        gemm = next(op for op in found if op.name == "ember.gemm")
        gemm.location.emit_error("this gemm is not supported here")
        raise RuntimeError("test-emit-error failed")


def test_pass_emitted_error_is_located_and_verifiable(source, capsys, monkeypatch):
    monkeypatch.setitem(REGISTRY, EmitsError.name, EmitsError)
    path = source(GEMM_BIAS)
    code, out, err = run_opt([path, "--test-emit-error"], capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == [f"{path}:2:8: error: this gemm is not supported here",
                                "ember-opt: error: pass 'test-emit-error' failed"]
    expected = GEMM_BIAS.replace(
        '  %0 = "ember.gemm"',
        '  // expected-error @+1 {{not supported here}}\n  %0 = "ember.gemm"')
    code, _, err = run_opt([source(expected), "--test-emit-error", "--verify-diagnostics"], capsys)
    assert (code, err) == (0, "")


def test_ember_verifier_after_a_pass_reports_at_the_op(source, capsys, monkeypatch):
    @dataclasses.dataclass
    class Breaks(EmberPass):
        """Gives every gemm a panel width of 0 (a rule IRDL cannot check)."""
        name: ClassVar[str] = "test-break-gemm"

        def run(self, module, ctx):
            def visit(op):
                if op.name == "ember.gemm":
                    op.attributes["rhs_panel"] = ir.IntegerAttr.get(
                        ir.IntegerType.get_signless(64), 0)
                return ir.WalkResult.ADVANCE
            module.operation.walk(visit)

    monkeypatch.setitem(REGISTRY, Breaks.name, Breaks)
    path = source(GEMM_BIAS)
    code, _, err = run_opt([path, "--test-break-gemm"], capsys)
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:2:8: error: 'ember.gemm' op rhs_panel must be a positive "
                               "integer, got 0 : i64")
    assert lines[-1] == "ember-opt: error: pass 'test-break-gemm' failed"


# ----------------------------------------------------------------------------- source
def test_split_input_records_first_lines():
    chunks = split_input("a\nb\n// -----\nc\n  // ----- trailing\nd\ne\n")
    assert chunks == [Chunk("a\nb\n", 1), Chunk("c\n", 4), Chunk("d\ne\n", 6)]


def test_split_input_without_marker_is_one_chunk():
    assert split_input("x\ny") == [Chunk("x\ny", 1)]


def test_parse_module_keeps_lines_of_later_chunks():
    context = new_context()
    chunk = split_input("// first\n// -----\n" + BAD_KIND.replace("swish", "relu"))[1]
    module = parse_module(chunk, context, "f.mlir")
    op = module.body.operations[0]
    assert str(op.location) == 'loc("f.mlir":3:1)'


def test_parse_module_wraps_several_ops_without_moving_lines():
    context = new_context()
    text = "// -----\nfunc.func private @a()\nfunc.func @b() {\n  return\n}\n"
    module = parse_module(split_input(text)[1], context, "m.mlir")
    names = [op.operation.name for op in module.body.operations]
    assert names == ["func.func", "func.func"]
    assert str(module.body.operations[1].location) == 'loc("m.mlir":3:1)'


def test_parse_module_errors_are_located():
    context = new_context()
    with pytest.raises(ir.MLIRError) as e:
        parse_module(Chunk("\n\n" + BAD_KIND.replace('{kind = "swish"}', ""), 1), context, "p.mlir")
    (diag,) = dg.from_exception(e.value)
    assert (diag.file, diag.line, diag.col) == ("p.mlir", 4, 8)
    assert 'attribute "kind" is expected' in diag.message


# ----------------------------------------------------------------------------- diagnostics
def test_expectation_designators_resolve_to_lines():
    text = "\n".join([
        "op1  // expected-error {{same}}",                 # 11
        "// expected-error @+2 {{plus}}",                  # 12
        "// expected-warning @below {{below}}",            # 13
        "op2",                                             # 14
        "op3",                                             # 15
        "// expected-remark @-2 {{minus}}",                # 16
        "// expected-note @above {{above}}",               # 17
        "// expected-error-re @unknown {{a{{[0-9]+}}b}}",  # 18
    ])
    expectations, errors = dg.parse_expectations(text, "f.mlir", first_line=11)
    assert errors == []
    got = [(e.severity, e.text, e.line, e.comment_line, e.regex) for e in expectations]
    assert got == [("error", "same", 11, 11, False), ("error", "plus", 14, 12, False),
                   ("warning", "below", 14, 13, False), ("remark", "minus", 14, 16, False),
                   ("note", "above", 15, 17, False), ("error", "a{{[0-9]+}}b", None, 18, True)]


def test_designator_outside_the_chunk_is_an_error():
    _, errors = dg.parse_expectations("x\n// expected-error @-5 {{far}}", "f.mlir", 20)
    assert errors == ["f.mlir:21:4: error: expected diagnostic designator @-5 points outside "
                      "the input"]


def test_verify_matches_substrings_severities_and_regexes():
    text = "\n".join(["a // expected-error {{middle}}", "b // expected-warning {{warn}}",
                      "c // expected-error-re {{x{{[0-9]+}}y (}}"])
    expectations, _ = dg.parse_expectations(text, "f.mlir")
    produced = [dg.Diag("error", "the middle part", "f.mlir", 1, 1),
                dg.Diag("warning", "warn!", "f.mlir", 2, 1),
                dg.Diag("error", "in x42y (literal paren)", "f.mlir", 3, 1)]
    assert dg.verify(expectations, produced) == []


def test_verify_reports_unexpected_missing_and_near_misses():
    text = "a // expected-warning {{boom}}\nb // expected-error {{never}}"
    expectations, _ = dg.parse_expectations(text, "f.mlir")
    produced = [dg.Diag("error", "boom", "f.mlir", 1, 3),
                dg.Diag("error", "surprise", "f.mlir", 2, 7),
                dg.Diag("error", "no file")]
    assert dg.verify(expectations, produced) == [
        "f.mlir:1:6: error: 'error' diagnostic emitted when expecting a 'warning'",
        "f.mlir:2:7: error: unexpected error: surprise",
        "<unknown>: error: unexpected error: no file",
        "f.mlir:1:6: error: expected warning \"boom\" was not produced",
        "f.mlir:2:6: error: expected error \"never\" was not produced",
    ]


def test_verify_checks_notes_but_not_the_current_operation_note():
    expectations, _ = dg.parse_expectations("a // expected-error {{bad}}\n"
                                            "b // expected-note {{defined here}}", "f.mlir")
    note = dg.Diag("note", "defined here", "f.mlir", 2, 1)
    current = dg.Diag("note", "see current operation: %0 = ...", "f.mlir", 1, 1)
    diag = dg.Diag("error", "bad", "f.mlir", 1, 1, notes=[current, note])
    assert dg.verify(expectations, [diag]) == []
    assert dg.verify([], [diag]) == ["f.mlir:1:1: error: unexpected error: bad",
                                     "f.mlir:2:1: error: unexpected note: defined here"]


def test_from_text_reads_a_location_prefix():
    d = dg.from_text('loc("x.mlir":3:5): \'ember.gemm\' op bad (really): yes')
    assert (d.file, d.line, d.col) == ("x.mlir", 3, 5)
    assert d.message == "'ember.gemm' op bad (really): yes"
    d = dg.from_text('loc("n"("y.mlir":7:2)): oops')
    assert (d.file, d.line, d.col, d.message) == ("y.mlir", 7, 2, "oops")
    d = dg.from_text("just text")
    assert (d.file, d.message) == (None, "just text")


def test_file_line_col_looks_through_wrapping_locations():
    with ir.Context():
        inner = ir.Location.file("a.mlir", 3, 4)
        assert dg.file_line_col(ir.Location.name("n", childLoc=inner)) == ("a.mlir", 3, 4)
        callsite = ir.Location.callsite(inner, [ir.Location.file("b.mlir", 1, 1)])
        assert dg.file_line_col(callsite) == ("a.mlir", 3, 4)
        assert dg.file_line_col(ir.Location.unknown()) is None


def test_diag_format_is_mlir_opt_style():
    d = dg.Diag("error", "msg", "f.mlir", 2, 3, notes=[dg.Diag("note", "here", "f.mlir", 1, 1)])
    assert d.format() == "f.mlir:2:3: error: msg\nf.mlir:1:1: note: here"
