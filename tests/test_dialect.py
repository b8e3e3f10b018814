"""The ember dialect: one IRDL definition in both MLIR builds, builders, verifier, docs."""
from __future__ import annotations

import pytest
from mlir import ir

from ember.dialect import builders as eb
from ember.dialect import docgen, new_context
from ember.dialect.verifier import verify_module


def test_committed_op_reference_is_up_to_date():
    import os
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
        module = tir.Module.parse('func.func @f(%a: tensor<2x3xf32>) -> tensor<2x3xf32> {\n'
                                  '  %0 = "ember.unary"(%a) {kind = "relu"} : (tensor<2x3xf32>) '
                                  '-> tensor<2x3xf32>\n  return %0 : tensor<2x3xf32>\n}')
        assert module.operation.verify()


def _build(fn):
    """Builds `fn(args...)` inside a fresh func and returns (module, result op)."""
    context = new_context()
    with context, ir.Location.unknown():
        module = ir.Module.create()
        f32 = ir.F32Type.get()
        types = [ir.RankedTensorType.get(s, f32) for s in ([4, 8], [8, 16], [16], [4, 16])]
        with ir.InsertionPoint(module.body):
            func_type = ir.FunctionType.get(types, [])
            from mlir.dialects import func
            f = func.FuncOp("f", func_type)
            block = f.add_entry_block()
            with ir.InsertionPoint(block):
                result = fn(*block.arguments)
                func.ReturnOp([])
        return module, result


def test_gemm_builder_sets_optional_operand_segments():
    def build(a, b, bias, residual):
        out = ir.RankedTensorType.get([4, 16], ir.F32Type.get())
        return eb.gemm(a, b, out, bias=bias, residual=residual, activation="gelu")
    module, result = _build(build)
    op = result.owner
    assert list(op.attributes["operandSegmentSizes"]) == [1, 1, 1, 1]
    assert eb.optional_operand(op, "bias") == op.operands[2]
    assert verify_module(module.operation) == []


def test_verifier_names_the_broken_rule():
    def build(a, b, bias, residual):
        out = ir.RankedTensorType.get([4, 16], ir.F32Type.get())
        return eb.gemm(b, b, out, activation="swish")
    module, _ = _build(build)
    errors = [message for _, message in verify_module(module.operation)]
    assert len(errors) == 1 and "unknown activation 'swish'" in errors[0]


@pytest.mark.parametrize("perm, ok", [([1, 0], True), ([0, 0], False), ([0, 1, 2], False)])
def test_transpose_permutation_rule(perm, ok):
    def build(a, *_):
        return eb.transpose(a, perm, ir.RankedTensorType.get([8, 4], ir.F32Type.get()))
    module, _ = _build(build)
    assert (verify_module(module.operation) == []) == ok
