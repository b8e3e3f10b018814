"""ember-cpu-contractions: products of two run-time tensors on the GEMM micro-kernel.

Batched and plain matmuls whose rhs is an input (not a weight), with the rhs given as [K, N]
or as [N, K] (a @ b^T, transposed once, or for at most 4 rows of A computed as (b a^T)^T),
odd sizes (tails in M, N and K smaller than a tile, single rows and columns), several batch
dims (attention's batch and heads, collapsed into one) and dynamic ones, against PyTorch.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import ember
from compare import assert_close


class Product(nn.Module):
    def __init__(self, transpose_b: bool):
        super().__init__()
        self.transpose_b = transpose_b

    def forward(self, a, b):
        return torch.matmul(a, b.transpose(-1, -2) if self.transpose_b else b)


def _inputs(batch, m, k, n, transpose_b):
    g = torch.Generator().manual_seed(m * 1000 + k * 10 + n)
    lead = batch if isinstance(batch, tuple) else (batch,) if batch else ()
    a = torch.randn(*lead, m, k, generator=g)
    b = torch.randn(*lead, *((n, k) if transpose_b else (k, n)), generator=g)
    return a, b


@pytest.mark.parametrize("batch,m,k,n", [
    (3, 13, 5, 17),       # every dim smaller than a tile, N tail masked
    (2, 1, 70, 33),       # one row; N one past a panel
    (4, 40, 64, 100),     # several row tiles and panels, N tail
    (0, 29, 31, 1),       # unbatched, a single column
    ((1, 16), 1, 64, 129),  # a decode step's heads: two batch dims, one query row
    ((2, 3), 4, 24, 37),    # four query rows (a grouped-query step), N tail
    ((2, 1, 3), 5, 8, 20),  # three batch dims, five rows: the keys transposed
], ids=["small", "one-row", "tiles", "2d-one-col", "heads-decode", "heads-4-rows",
        "3-batch-dims"])
@pytest.mark.parametrize("transpose_b", [False, True], ids=["kn", "nk"])
def test_products(batch, m, k, n, transpose_b):
    model = Product(transpose_b).eval()
    inputs = _inputs(batch, m, k, n, transpose_b)
    compiled = ember.compile(model, inputs)
    assert_close(compiled(*inputs), model(*inputs))


@pytest.mark.parametrize("rows", [9, 2], ids=["keys-transposed", "swapped"])
def test_dynamic_batch(rows):
    model = Product(transpose_b=True).eval()
    batch = torch.export.Dim("batch", max=16)
    compiled = ember.compile(model, _inputs(2, rows, 16, 24, True),
                             dynamic_shapes={"a": {0: batch}, "b": {0: batch}})
    for size in (1, 2, 7):
        inputs = _inputs(size, rows, 16, 24, True)
        assert_close(compiled(*inputs), model(*inputs))


def test_dynamic_heads_and_keys():
    """Batch and heads dynamic, the cache length too (a decode step over a growing cache)."""
    model = Product(transpose_b=True).eval()
    batch, keys = torch.export.Dim("batch", max=8), torch.export.Dim("keys", max=64)
    compiled = ember.compile(model, _inputs((2, 4), 1, 16, 24, True),
                             dynamic_shapes={"a": {0: batch}, "b": {0: batch, 2: keys}})
    for size, n in ((1, 5), (3, 24), (2, 64)):
        inputs = _inputs((size, 4), 1, 16, n, True)
        assert_close(compiled(*inputs), model(*inputs))
