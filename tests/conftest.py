"""Shared fixtures: example models and a helper comparing ember against PyTorch."""
from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples"))


@pytest.fixture(scope="session")
def mlp_block():
    from mlp_block import MLPBlock
    torch.manual_seed(0)
    return MLPBlock().eval()


def max_abs_error(actual, expected) -> float:
    actual = torch.as_tensor(actual)
    return (actual - expected).abs().max().item()
