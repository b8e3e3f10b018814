"""Shared fixtures: the example models (examples/ is put on sys.path for their modules).

Comparisons with PyTorch or numpy go through tests/compare.py's `assert_close`. The compile
cache is off (EMBER_CACHE=0): each test compiles what it tests; tests/test_compile_cache.py turns
it on in a directory of its own."""
from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples"))
os.environ["EMBER_CACHE"] = "0"


@pytest.fixture(scope="session")
def mlp_block():
    from mlp_block import MLPBlock
    torch.manual_seed(0)
    return MLPBlock().eval()
