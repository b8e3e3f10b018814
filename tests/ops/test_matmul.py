"""Linear and matrix products (ember.gemm), incl. batched, broadcast and 1-D operands."""
from __future__ import annotations

import pytest
import torch

from .conftest import Fn

nn = torch.nn


@pytest.mark.covers("Linear")
@pytest.mark.parametrize("linear,shape", [
    (nn.Linear(7, 5), (3, 7)),
    (nn.Linear(9, 13, bias=False), (2, 3, 9)),
    (nn.Linear(1, 3), (4, 1)),
    (nn.Linear(6, 4), (6,)),                           # 1-D input
], ids=["2d", "3d-no-bias", "k1", "vector"])
def test_linear(check, linear, shape):
    check(linear, [torch.randn(shape)], expect=["gemm"] if len(shape) > 1 else [])


@pytest.mark.covers("Linear", "GELU")
def test_linear_dynamic_batch(check):
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 3))
    batch, seq = torch.export.Dim("batch", min=1, max=32), torch.export.Dim("seq", min=2, max=64)
    check(model, [torch.randn(2, 5, 8)], expect=["gemm"],
          dynamic_shapes={"input": {0: batch, 1: seq}},
          more_inputs=[[torch.randn(1, 2, 8)], [torch.randn(4, 33, 8)]])


@pytest.mark.covers("matmul")
def test_matmul_shapes(check):
    """2-D, batched x 2-D, batched x batched, broadcast batch, and 1-D operands."""
    model = Fn(lambda self, a, b, c, d, e, v: (a @ b, c @ b, c @ d, e @ d, a @ v, v @ b))
    check(model, [torch.randn(3, 5), torch.randn(5, 7), torch.randn(2, 3, 5),
                  torch.randn(2, 5, 4), torch.randn(1, 3, 5), torch.randn(5)],
          expect=["gemm"])


@pytest.mark.covers("mm", "bmm")
def test_mm_bmm(check):
    model = Fn(lambda self, a, b, c, d: (torch.mm(a, b), torch.bmm(c, d)))
    check(model, [torch.randn(5, 3), torch.randn(3, 9), torch.randn(4, 3, 7),
                  torch.randn(4, 7, 2)], expect=["gemm"])


@pytest.mark.covers("baddbmm")
def test_baddbmm(check):
    model = Fn(lambda self, x, a, b, y: (torch.baddbmm(x, a, b), torch.baddbmm(y, a, b),
                                         torch.baddbmm(x, a, b, beta=0.5, alpha=2.0)))
    check(model, [torch.randn(2, 3, 5), torch.randn(2, 3, 4), torch.randn(2, 4, 5),
                  torch.randn(5)])


@pytest.mark.covers("matmul", "mm")
def test_matmul_integer(check):
    """Integer matrix products take the fallback."""
    model = Fn(lambda self, a, b: (a @ b, torch.mm(a, b)))
    check(model, [torch.randint(-5, 5, (3, 4)), torch.randint(-5, 5, (4, 2))])


@pytest.mark.covers("mm")
def test_addmm_integer(check):
    """Integer addmm (kept whole for the float GEMMs, refused by torch-mlir's decomposition)
    as beta * input + alpha * mm, beta=0 ignoring the input as PyTorch does."""
    model = Fn(lambda self, x, a, b: (torch.addmm(x, a, b), torch.addmm(x, a, b, beta=3, alpha=2),
                                      torch.addmm(x, a, b, beta=0)))
    check(model, [torch.randint(-5, 5, (2, 3)), torch.randint(-5, 5, (2, 4)),
                  torch.randint(-5, 5, (4, 3))])


@pytest.mark.covers("matmul", "Linear")
def test_empty_reduction(check):
    """K = 0: every product is an empty sum, so the result is the bias (or zeros); no kernel
    is generated for it (the schedule used to divide by K)."""
    model = Fn(lambda self, a, b, c, d: (a @ b, torch.bmm(c, d)))
    check(model, [torch.randn(3, 0), torch.randn(0, 4), torch.randn(2, 3, 0),
                  torch.randn(2, 0, 5)])
    linear = nn.Linear(0, 5)
    with torch.no_grad():
        linear.bias.normal_()
    check(linear, [torch.randn(2, 0)])


@pytest.mark.covers("Linear")
def test_linear_bf16_weights(check):
    """A bf16 Linear: its weight transpose, folded at compile time, stays bf16 (it was stored
    as f32 values in a bf16 weight, which read back as garbage)."""
    linear = torch.nn.Linear(48, 24).bfloat16()
    check(Fn(lambda self, x: linear(x), linear), [torch.randn(5, 48).bfloat16()],
          expect=["gemm"])


#: One fp16 ulp relative to the output's scale: PyTorch sums fp16 products in f32 and rounds
#: once, and so does ember; summing in fp16 (as ember did) was off by ~30 ulps at K = 512.
FP16_ONE_ULP = torch.finfo(torch.float16).eps


@pytest.mark.covers("mm", "bmm", "Linear")
def test_fp16_products_round_once(check):
    linear = torch.nn.Linear(512, 48).half()
    model = Fn(lambda self, a, b, x, p, q: (a @ b, linear(x), torch.relu(linear(x)), p @ q),
               linear)
    check(model, [torch.randn(32, 512).half(), torch.randn(512, 40).half(),
                  torch.randn(6, 512).half(), torch.randn(3, 8, 512).half(),
                  torch.randn(3, 512, 16).half()], expect=["gemm"], tol=FP16_ONE_ULP)
