"""Reductions: mean, sum, max and min (values, indices, whole tensor), argmax/argmin."""
from __future__ import annotations

import pytest
import torch

from .conftest import Fn


@pytest.mark.covers("mean", "sum")
def test_mean_sum(check):
    model = Fn(lambda self, x: (x.mean(-1), x.mean((0, 2)), x.mean(1, keepdim=True), x.mean(),
                                x.sum(0), x.sum((1, 2), keepdim=True), x.sum(), x.sum(-1)))
    check(model, [torch.randn(3, 5, 7) * 3])


@pytest.mark.covers("max", "min")
def test_max_min_reductions(check):
    model = Fn(lambda self, x: (*x.max(1), *x.min(-1, keepdim=True), x.max(), x.min(),
                                x.amax((0, 2)), x.amin(-1), x.argmax(0), x.argmin(-1)))
    check(model, [torch.randn(3, 5, 7)])


@pytest.mark.covers("sum", "max", "min")
def test_integer_reductions(check):
    model = Fn(lambda self, x: (x.sum(1), x.amax(0), x.min(), x.sum()))
    check(model, [torch.randint(-50, 50, (4, 6))])


@pytest.mark.covers("mean", "sum", "max")
def test_reductions_dynamic(check):
    batch = torch.export.Dim("batch", min=1, max=64)
    model = Fn(lambda self, x: (x.mean(-1), x.sum(0), x.amax(-1), x.max()))
    check(model, [torch.randn(3, 8)], dynamic_shapes={"xs": ({0: batch},)},
          more_inputs=[[torch.randn(1, 8)], [torch.randn(20, 8)]])


@pytest.mark.covers("mean", "sum", "max", "min")
def test_reductions_of_a_scalar(check):
    """Rank-0 inputs: no axis to reduce (ember.reduce needs one; torch-mlir's lowering takes
    them), whole-tensor and dim=0 forms alike."""
    model = Fn(lambda self, x: (x.sum(), x.mean(), x.amax(), x.amin(), x.sum(0), x.max()))
    check(model, [torch.tensor(2.5)])
