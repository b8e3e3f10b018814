"""Gathers and scatters: Embedding, EmbeddingBag, tensor indexing, index_add, scatter, topk.

index_add and scatter lower in torch-mlir only through TMTensor, whose ops the frontend turns
into loops (python/ember/frontend/tm_tensor_to_loops.py; more in test_scatter_scan_sort.py);
topk is decomposed at export time (python/ember/frontend/decompositions.py)."""
from __future__ import annotations

import pytest
import torch

from .conftest import Fn

nn = torch.nn


@pytest.mark.covers("Embedding")
def test_embedding(check):
    model = Fn(lambda self, i, j: (self.mods[0](i), self.mods[1](j)),
               nn.Embedding(11, 6), nn.Embedding(7, 3, padding_idx=0))
    check(model, [torch.randint(0, 11, (2, 5)), torch.tensor([0, 6, 3, 0])])


@pytest.mark.covers("Embedding")
def test_embedding_dynamic_sequence(check):
    seq = torch.export.Dim("seq", min=1, max=128)
    model = nn.Embedding(50, 8)
    check(model, [torch.randint(0, 50, (2, 7))], dynamic_shapes={"input": {1: seq}},
          more_inputs=[[torch.randint(0, 50, (2, 1))], [torch.randint(0, 50, (2, 40))]])


@pytest.mark.covers("EmbeddingBag (sum, mean)")
def test_embedding_bag_sum(check):
    """Offsets (with an empty bag) and the 2-D fixed-length form."""
    model = Fn(lambda self, i, o, j: (self.mods[0](i, o), self.mods[0](j)),
               nn.EmbeddingBag(10, 6, mode="sum"))
    check(model, [torch.randint(0, 10, (9,)), torch.tensor([0, 3, 3, 7]),
                  torch.randint(0, 10, (3, 4))])


@pytest.mark.covers("EmbeddingBag (sum, mean)")
def test_embedding_bag_per_sample_weights(check):
    """Weighted bags (torch-mlir's lowering ignored the weights: plain sums), with an empty
    bag, a padding index and include_last_offset."""
    bag = nn.EmbeddingBag(10, 6, mode="sum")
    padded = nn.EmbeddingBag(10, 6, mode="sum", padding_idx=2, include_last_offset=True)
    model = Fn(lambda self, i, o, w, last: (self.mods[0](i, o, per_sample_weights=w),
                                            self.mods[1](i, last, per_sample_weights=w)),
               bag, padded)
    i = torch.tensor([5, 1, 2, 6, 5, 2, 9, 0, 6])
    check(model, [i, torch.tensor([0, 3, 3, 7]), torch.randn(9), torch.tensor([0, 3, 3, 7, 9])])


@pytest.mark.covers("EmbeddingBag (sum, mean)")
def test_embedding_bag_mean(check):
    """Averages over each bag's entries that are not padding_idx (an empty bag, and one of
    padding only, give zeros), offsets and the 2-D form."""
    plain = nn.EmbeddingBag(10, 6, mode="mean")
    padded = nn.EmbeddingBag(10, 6, mode="mean", padding_idx=2)
    model = Fn(lambda self, i, o, j: (self.mods[0](i, o), self.mods[1](i, o), self.mods[0](j)),
               plain, padded)
    i = torch.tensor([5, 1, 2, 6, 5, 2, 2, 0, 6])
    check(model, [i, torch.tensor([0, 3, 3, 5, 7]), torch.randint(0, 10, (3, 4))])


@pytest.mark.covers("index (basic)")
def test_index(check):
    model = Fn(lambda self, x, i, j: (x[i], x[:, i], x[i, j], x[i, :, j], x[..., j],
                                      x[i.view(2, 2)]))
    check(model, [torch.randn(5, 6, 7), torch.tensor([4, 0, 2, 4]), torch.tensor([1, 5, 0, 3])])


@pytest.mark.covers("index_add")
def test_index_add(check):
    model = Fn(lambda self, x, i, t, y, j, u: (x.index_add(0, i, t), y.index_add(1, j, u),
                                               x.index_add(0, i, t, alpha=-2.0),
                                               torch.zeros(5).index_add(0, i, t[:, 0])))
    check(model, [torch.randn(5, 3), torch.tensor([0, 2, 2, 4]), torch.randn(4, 3),
                  torch.randn(2, 7, 3), torch.tensor([6, 1, 6]), torch.randn(2, 3, 3)])


@pytest.mark.covers("index_add")
def test_index_add_integer(check):
    model = Fn(lambda self, x, i, t: x.index_add(1, i, t))
    check(model, [torch.randint(-5, 5, (3, 4)), torch.tensor([3, 0, 3]),
                  torch.randint(-5, 5, (3, 3))])


@pytest.mark.covers("scatter")
def test_scatter(check):
    """Along each dim, an index smaller than the input, a scalar value, scatter_add."""
    x = torch.randn(3, 5)
    i1 = torch.tensor([[0, 4], [2, 3], [4, 1]])                # dim 1, distinct per row
    i0 = torch.tensor([[2, 0, 1, 1, 0], [0, 1, 2, 0, 2]])       # dim 0, distinct per column
    i_small = torch.tensor([[1, 3], [0, 2]])                    # index 2x2 into 3x5
    model = Fn(lambda self, x, i1, i0, s, s0, i_small:
               (x.scatter(1, i1, s), x.scatter(0, i0, s0), x.scatter(1, i_small, s),
                x.scatter(1, i1, -1.5), x.scatter_add(0, i0, s0),
                torch.zeros(2, 4, dtype=torch.int64).scatter(1, i_small, 7)))
    check(model, [x, i1, i0, torch.randn(3, 2), torch.randn(2, 5), i_small])


@pytest.mark.covers("topk")
def test_topk(check):
    x = torch.randn(4, 9)
    model = Fn(lambda self, x, y: (*torch.topk(x, 3), *torch.topk(x, 2, dim=0),
                                   *torch.topk(x, 4, largest=False), *torch.topk(y, 1),
                                   *torch.topk(y, 5)))
    check(model, [x, torch.randn(2, 3, 6)])


@pytest.mark.covers("topk")
def test_topk_dynamic_batch(check):
    batch = torch.export.Dim("batch", min=1, max=64)
    model = Fn(lambda self, x: torch.topk(torch.softmax(x, -1), 2))
    check(model, [torch.randn(3, 10)], dynamic_shapes={"xs": ({0: batch},)},
          more_inputs=[[torch.randn(1, 10)], [torch.randn(17, 10)]])
