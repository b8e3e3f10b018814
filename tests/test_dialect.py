"""The ember dialect: one op table from which the IRDL (in both MLIR builds), builders, typed
views, verifier, docs and the lowering check derive."""
from __future__ import annotations

import os

import pytest
from mlir import ir
from mlir.dialects import func

from ember.dialect import docgen, new_context
from ember.dialect.ops import OPS, Conv2d, Gemm, Transpose, Unary
from ember.dialect.verifier import verify_module
from ember.lowering.lower_to_linalg import LOWERINGS

_UNARY_FUNC = ('func.func @f(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {{\n'
               '  %0 = "ember.unary"(%a) {{kind = "{kind}"}} : (tensor<2x3xf32>) '
               '-> tensor<2x3xf32>\n  return %0 : tensor<2x3xf32>\n}}')


def test_committed_op_reference_is_up_to_date():
    path = os.path.join(os.path.dirname(docgen.__file__), "README.md")
    with open(path) as f:
        assert f.read() == docgen.generate(), "run `make docs` to regenerate python/ember/dialect/README.md"


def test_dialect_loads_into_torch_mlirs_build_too():
    from torch_mlir import ir as tir
    from torch_mlir.dialects import irdl as tirdl

    from ember.dialect import load
    context = tir.Context()
    load(context, tir, tirdl)
    with context:
        module = tir.Module.parse(_UNARY_FUNC.format(kind="relu"))
        assert module.operation.verify()
        with pytest.raises(tir.MLIRError, match="does not satisfy the constraint"):
            tir.Module.parse(_UNARY_FUNC.format(kind="relu2"))


def test_an_unknown_enum_value_fails_at_parse_time():
    with new_context():
        ir.Module.parse(_UNARY_FUNC.format(kind="gelu_tanh"))
        with pytest.raises(ir.MLIRError, match="'\"relu2\"' does not satisfy the constraint"):
            ir.Module.parse(_UNARY_FUNC.format(kind="relu2"))


def test_every_op_is_lowered_or_says_why_not():
    """Each declared op has an entry in ember-lower-to-linalg's LOWERINGS or declares why not
    (`not_lowered`), and LOWERINGS lowers nothing that is not declared."""
    declared = {op.op_name for op in OPS}
    assert set(LOWERINGS) - declared == set(), "LOWERINGS has ops the op table does not declare"
    for op in OPS:
        if op.not_lowered is None:
            assert op.op_name in LOWERINGS, f"{op.op_name}: no lowering and no not_lowered reason"
        else:
            assert op.op_name not in LOWERINGS, f"{op.op_name} says not_lowered but is lowered"
            assert op.not_lowered.strip()


def _build(fn):
    """Builds `fn(args...)` inside a fresh func and returns (module, result op)."""
    context = new_context()
    with context, ir.Location.unknown():
        module = ir.Module.create()
        f32 = ir.F32Type.get()
        types = [ir.RankedTensorType.get(s, f32) for s in ([4, 8], [8, 16], [16], [4, 16])]
        with ir.InsertionPoint(module.body):
            f = func.FuncOp("f", ir.FunctionType.get(types, []))
            block = f.add_entry_block()
            with ir.InsertionPoint(block):
                result = fn(*block.arguments)
                func.ReturnOp([])
        return module, result


def _f32_tensor(*shape):
    return ir.RankedTensorType.get(list(shape), ir.F32Type.get())


def test_gemm_builder_sets_optional_operand_segments():
    def build(a, b, bias, residual):
        return Gemm.build(a, b, _f32_tensor(4, 16), bias=bias, residual=residual,
                          activation="gelu")
    module, result = _build(build)
    gemm = Gemm(result.owner)
    assert list(gemm.operation.attributes["operandSegmentSizes"]) == [1, 1, 1, 1, 0, 0]
    assert gemm.bias == gemm.operation.operands[2]
    assert (gemm.activation, gemm.rhs_panel, gemm.lhs_patches) == ("gelu", None, None)
    assert verify_module(module.operation) == []


def test_views_read_operands_and_attributes_as_python_values():
    def build(a, *_):
        x = Transpose.build(a, _f32_tensor(8, 4), permutation=[1, 0])
        return Unary.build(x, kind="silu")
    _, result = _build(build)
    unary = Unary(result.owner)
    assert unary.kind == "silu" and unary.result.type == unary.input.type
    transpose = Transpose.defining(unary.input)
    assert transpose.permutation == [1, 0] and Unary.defining(transpose.input) is None
    assert unary.attribute_values() == {"kind": "silu"}
    with pytest.raises(TypeError, match="Gemm views ember.gemm, not ember.unary"):
        Gemm(result.owner)


def test_builders_apply_declared_defaults_and_require_the_rest():
    assert str(Conv2d.build_signature) == (
        "(input, filter, result_type, *, bias=None, residual=None, strides=(1, 1), "
        "padding=(0, 0), dilations=(1, 1), groups=1, activation='none', layout='nchw')")
    with pytest.raises(TypeError, match="kind"):
        _build(lambda a, *_: Unary.build(a))


def test_rebuild_replaces_only_what_it_is_given():
    def build(*_):
        x = ir.Operation.create("ember.weight", results=[_f32_tensor(1, 3, 8, 8)],
                                attributes={"name": ir.StringAttr.get("x")}).result
        w = ir.Operation.create("ember.weight", results=[_f32_tensor(4, 3, 3, 3)],
                                attributes={"name": ir.StringAttr.get("w")}).result
        conv = Conv2d(Conv2d.build(x, w, _f32_tensor(1, 4, 4, 4), strides=[2, 2],
                                   padding=[1, 1]).owner)
        return conv.rebuild(conv.result.type, activation="relu")
    module, result = _build(build)
    assert Conv2d(result.owner).attribute_values() == {
        "strides": [2, 2], "padding": [1, 1], "dilations": [1, 1], "groups": 1,
        "activation": "relu", "layout": "nchw"}
    assert verify_module(module.operation) == []


def test_verifier_names_the_broken_rule():
    """Ops built in memory never meet the parser's IRDL check: the verifier checks enum values
    too, with the vocabulary in the message."""
    def build(a, b, bias, residual):
        return Gemm.build(b, b, _f32_tensor(4, 16), activation="swish")
    module, _ = _build(build)
    errors = [message for _, message in verify_module(module.operation)]
    assert len(errors) == 1
    assert "unknown activation 'swish'; expected one of none, relu" in errors[0]


@pytest.mark.parametrize("perm, ok", [([1, 0], True), ([0, 0], False), ([0, 1, 2], False)])
def test_transpose_permutation_rule(perm, ok):
    def build(a, *_):
        return Transpose.build(a, _f32_tensor(8, 4), permutation=perm)
    module, _ = _build(build)
    assert (verify_module(module.operation) == []) == ok
