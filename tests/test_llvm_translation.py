"""LLVM translation on the CPU: math that lowers to libm calls (vectorized acosh, asinh, atanh,
erf) and complex arithmetic reach LLVM IR and match PyTorch; an op an earlier stage left
unlowered is a TranslationError quoting MLIR's diagnostic (op and location) instead of the
process's death (MLIR 22's binding prints the null module a failed translation returns)."""
from __future__ import annotations

import pytest
import torch

import ember
from compare import assert_close


class LibmMath(torch.nn.Module):
    """Functions with no LLVM intrinsic: convert-math-to-libm calls libm for each vector
    lane, which convert-vector-to-llvm must see afterwards."""

    def forward(self, x):
        return (torch.acosh(x.abs() + 1), torch.asinh(x), torch.atanh(torch.tanh(x) * 0.9),
                torch.erf(x))


class ComplexSquare(torch.nn.Module):
    def forward(self, x):
        z = torch.view_as_complex(x)
        return torch.view_as_real(z * z)


@pytest.mark.parametrize("model,shape", [
    pytest.param(LibmMath(), (8, 64), id="libm-math-vectorized"),
    pytest.param(ComplexSquare(), (4, 8, 2), id="complex-arithmetic"),
])
def test_model_reaches_llvm_ir_and_matches_torch(model, shape):
    x = torch.randn(*shape)
    compiled = ember.compile(model.eval(), (x,))
    with torch.no_grad():
        expected = model(x)
    assert_close(compiled(x), expected)


def test_leftover_op_is_a_translation_error_naming_it():
    from mlir import ir

    from ember.backends.llvm import TranslationError, translate_to_llvm_ir
    from ember.dialect import new_context
    with new_context():
        module = ir.Module.parse("""
            llvm.func @f(%arg0: i64) -> i64 {
              %0 = builtin.unrealized_conversion_cast %arg0 : i64 to index loc("model.py":7:0)
              %1 = builtin.unrealized_conversion_cast %0 : index to i64
              llvm.return %1 : i64
            }""")
    with pytest.raises(TranslationError) as info:
        translate_to_llvm_ir(module)
    message = str(info.value)
    assert "builtin.unrealized_conversion_cast" in message
    assert '"model.py":7:0' in message
