"""Activations and softmaxes: each op applied to inputs of several shapes in one compile."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from .conftest import Fn

#: Odd sizes, rank 1 to 4, a size-1 dim.
SHAPES = [(7,), (3, 5), (2, 1, 9), (2, 3, 5, 7)]


def _inputs(scale: float = 3.0):
    return [torch.randn(s) * scale for s in SHAPES]


def _each(op):
    """A module applying `op` to each of its inputs."""
    return Fn(lambda self, *xs: tuple(op(x) for x in xs))


#: (op-table row, function, ember ops the frontend must produce: [] where torch-mlir lowers it).
ACTIVATIONS = [
    ("ReLU", torch.relu, ["unary:relu"]),
    ("ReLU6", F.relu6, []),
    ("LeakyReLU", lambda x: F.leaky_relu(x, 0.1), []),
    ("GELU", F.gelu, ["unary:gelu"]),
    ("GELU", lambda x: F.gelu(x, approximate="tanh"), ["unary:gelu_tanh"]),
    ("SiLU", F.silu, ["unary:silu"]),
    ("Sigmoid", torch.sigmoid, ["unary:sigmoid"]),
    ("Tanh", torch.tanh, ["unary:tanh"]),
    ("Hardswish", F.hardswish, []),
    ("Hardsigmoid", F.hardsigmoid, []),
]


@pytest.mark.parametrize("fn,expect", [
    pytest.param(fn, expect, id=f"{row}-{i}", marks=pytest.mark.covers(row))
    for i, (row, fn, expect) in enumerate(ACTIVATIONS)])
def test_activation(check, fn, expect):
    check(_each(fn), _inputs(), expect=expect)


@pytest.mark.covers("ReLU", "ReLU6", "LeakyReLU", "Hardswish", "Hardsigmoid")
def test_activation_modules(check):
    """The nn.Module forms, chained, on a batch of images."""
    model = torch.nn.Sequential(torch.nn.Hardswish(), torch.nn.LeakyReLU(0.2), torch.nn.ReLU6(),
                                torch.nn.Hardsigmoid(), torch.nn.ReLU())
    check(model, [torch.randn(2, 3, 5, 5) * 4])


@pytest.mark.covers("Softmax")
def test_softmax_every_axis(check):
    x = torch.randn(2, 3, 5, 7)
    check(Fn(lambda self, x: tuple(torch.softmax(x, d) for d in (-1, 0, 1, 2))), [x * 4],
          expect=["softmax"])


@pytest.mark.covers("LogSoftmax")
def test_log_softmax(check):
    check(Fn(lambda self, x, y: (F.log_softmax(x, -1), F.log_softmax(x, 1), F.log_softmax(y, 0))),
          [torch.randn(3, 5, 7) * 4, torch.randn(9)])


@pytest.mark.covers("Softmax", "GELU")
def test_softmax_dynamic_batch(check):
    """softmax and gelu keep their ember ops with a dynamic batch dim."""
    batch = torch.export.Dim("batch", min=1, max=64)
    check(Fn(lambda self, x: torch.softmax(F.gelu(x), -1)), [torch.randn(4, 9)],
          expect=["softmax", "unary:gelu"], dynamic_shapes={"xs": ({0: batch},)},
          more_inputs=[[torch.randn(1, 9)], [torch.randn(13, 9)]])
