"""Ops torch-mlir lowers only through TMTensor: scatters (scatter_reduce, index_put, boolean
mask assignment, max_unpool), scans (cumsum, cumprod and what decomposes to them) and sorts
(sort, argsort, kthvalue). The frontend turns TMTensor ops into scf loops over tensors
(python/ember/frontend/tm_tensor_to_loops.py)."""
from __future__ import annotations

import pytest
import torch

import ember
from ember.frontend.errors import UnsupportedOpsError

from .conftest import Fn

F = torch.nn.functional


# ------------------------------------------------------------------------------- scatter
@pytest.mark.covers("scatter_reduce")
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_each_mode(check, include_self):
    """Duplicate indices along dim 0 and dim 1; a target position no index reaches keeps its
    value (include_self or not)."""
    index0 = torch.tensor([[0, 1, 0], [3, 0, 0], [0, 1, 2]])
    index1 = torch.tensor([[1, 1, 4], [0, 2, 2], [3, 3, 3], [0, 0, 0]])
    modes = ("sum", "prod", "mean", "amax", "amin")

    def fn(self, x, src):
        return tuple(x.scatter_reduce(d, i, src, mode, include_self=include_self)
                     for mode in modes for d, i in ((0, index0), (1, index1)))
    check(Fn(fn), [torch.randn(4, 5), torch.randn(4, 5)])


@pytest.mark.covers("scatter_reduce")
def test_scatter_reduce_integer(check):
    index = torch.tensor([[0, 2, 2, 0], [1, 1, 0, 2]])
    model = Fn(lambda self, x, i, s: (x.scatter_reduce(1, i, s, "sum"),
                                      x.scatter_reduce(1, i, s, "amax", include_self=False)))
    check(model, [torch.randint(-9, 9, (2, 3)), index, torch.randint(-9, 9, (2, 4))])


@pytest.mark.covers("scatter")
def test_scatter_duplicate_indices_last_writer_wins(check):
    """PyTorch's (CPU) order: of several updates to one position, the last one stays; along
    either dim, for float and integer values, and a scalar value (any writer gives the same)."""
    index = torch.tensor([[2, 2, 0], [2, 1, 1]])
    model = Fn(lambda self, x, s, n: (x.scatter(1, index, s), x.scatter(0, index[:, :2] % 2, s),
                                      x.scatter(1, index, 2.5),
                                      n.scatter(1, index, (s * 10).to(torch.int64))))
    check(model, [torch.zeros(2, 4), torch.arange(6.0).reshape(2, 3) + 1,
                  torch.full((2, 4), -7, dtype=torch.int64)])


# ------------------------------------------------------------------------------ index_put
@pytest.mark.covers("index_put")
@pytest.mark.parametrize("accumulate", [True, False])
def test_index_put_duplicate_indices(check, accumulate):
    """One and two index tensors, a sliced dim in between, negative indices; duplicates add up
    (accumulate) or the last write stays."""
    def fn(self, x, y, i, j, v, w):
        return (x.index_put((i,), v, accumulate=accumulate),
                y.index_put((i, j), w, accumulate=accumulate),
                torch.ops.aten.index_put(y, [None, j], w.expand(5, 4),
                                         accumulate))
    check(Fn(fn), [torch.randn(5, 3), torch.randn(5, 6), torch.tensor([4, 0, -1, 4]),
                   torch.tensor([5, 2, 2, -6]), torch.randn(4, 3), torch.randn(4)])


@pytest.mark.covers("index_put")
def test_boolean_mask_assignment(check):
    """x[mask] = scalar and x[mask] = a broadcast tensor, as in-place updates of a copy."""
    def fn(self, x, m, row_mask, v):
        y = x.clone()
        y[m] = -1.0
        z = x.clone()
        z[row_mask] = v
        return y, z
    check(Fn(fn), [torch.randn(4, 5), torch.randn(4, 5) > 0, torch.tensor([1, 0, 1, 1]) > 0,
                   torch.randn(5)])


@pytest.mark.covers("masked_scatter")
def test_masked_scatter(check):
    check(Fn(lambda self, x, m, s: x.masked_scatter(m, s)),
          [torch.randn(3, 4), torch.randn(3, 4) > 0, torch.randn(3, 4)])


@pytest.mark.covers("index_add")
def test_index_add_nonfinite_source_stays_in_its_row(check):
    """Exact per-row adds: an inf in one source row reaches only its own target row."""
    source = torch.randn(3, 2)
    source[1, 0] = float("inf")
    check(Fn(lambda self, x, i, s: x.index_add(0, i, s)),
          [torch.randn(4, 2), torch.tensor([3, 0, 3]), source])


@pytest.mark.covers("max_unpool2d")
def test_max_unpool2d(check):
    def fn(self, x):
        pooled, indices = F.max_pool2d(x, 2, return_indices=True)
        return F.max_unpool2d(pooled, indices, 2, output_size=x.shape[-2:])
    check(Fn(fn), [torch.randn(2, 3, 6, 8)])


@pytest.mark.covers("max_pool2d_with_indices_backward")
def test_max_pool2d_with_indices_backward(check):
    """The gradient of max pooling (a training-graph op, called directly): each output
    gradient lands at its window's argmax, overlapping windows adding up."""
    def fn(self, grad, x):
        _, indices = torch.ops.aten.max_pool2d_with_indices(x, [3, 3], [2, 2])
        return torch.ops.aten.max_pool2d_with_indices_backward(
            grad, x, [3, 3], [2, 2], [0, 0], [1, 1], False, indices)
    check(Fn(fn), [torch.randn(1, 2, 3, 4), torch.randn(1, 2, 7, 9)])


# --------------------------------------------------------------------------------- scans
@pytest.mark.covers("cumsum", "cumprod")
def test_cumsum_cumprod_each_dim(check):
    def fn(self, x, n):
        return (*(torch.cumsum(x, d) for d in (0, 1, -1)),
                *(torch.cumprod(x, d) for d in (0, 2)),
                torch.cumsum(n, 1), torch.cumsum(x, 1, dtype=torch.float64))
    check(Fn(fn), [torch.rand(3, 4, 5) + 0.5, torch.randint(-5, 5, (2, 6))])


@pytest.mark.covers("cumsum")
def test_cumsum_dynamic_length(check):
    length = torch.export.Dim("length", min=1, max=64)
    check(Fn(lambda self, x: torch.cumsum(x, 1)), [torch.randn(2, 9)],
          dynamic_shapes={"xs": ({1: length},)},
          more_inputs=[[torch.randn(2, 1)], [torch.randn(2, 33)]])


@pytest.mark.covers("logcumsumexp")
def test_logcumsumexp(check):
    check(Fn(lambda self, x: (torch.logcumsumexp(x, 0), torch.logcumsumexp(x, 1))),
          [torch.randn(4, 6) * 3])


@pytest.mark.covers("logcumsumexp")
def test_logcumsumexp_large_and_infinite_values(check):
    """Values in the hundreds, -inf prefixes, +inf and a tiny value before large ones: torch-
    mlir's log(cumsum(exp(x))) overflowed (errors ~1e4) and gave NaN for -inf prefixes; ember's
    decomposition takes a max-shifted logsumexp of each prefix."""
    x = torch.randn(3, 7) * 300
    x[0, :3] = float("-inf")
    x[1, 2] = float("inf")
    x[2, 0] = -1000.0
    check(Fn(lambda self, x, h: (torch.logcumsumexp(x, 1), torch.logcumsumexp(x, 0),
                                 torch.logcumsumexp(h, 0))),
          [x, (torch.randn(5) * 50).half()])


@pytest.mark.covers("repeat_interleave")
def test_repeat_interleave(check):
    def fn(self, x, repeats):
        return (x.repeat_interleave(2, dim=1),
                x.repeat_interleave(repeats, dim=0, output_size=7))
    check(Fn(fn), [torch.randn(3, 4), torch.tensor([2, 0, 5])])


# --------------------------------------------------------------------------------- sorts
@pytest.mark.covers("sort", "argsort")
def test_sort_and_argsort(check):
    """Ascending and descending along each dim; stable sorts keep ties in input order."""
    ties = torch.tensor([[3.0, 1.0, 3.0, 2.0, 1.0, 3.0], [0.5, 0.5, -1.0, 0.5, 2.0, -1.0]])

    def fn(self, x, t):
        return (*torch.sort(x, 1), *torch.sort(x, 0, descending=True),
                *torch.sort(t, dim=1, stable=True), *torch.sort(t, dim=1, descending=True, stable=True),
                torch.argsort(t, dim=1, stable=True), torch.argsort(x, 0))
    check(Fn(fn), [torch.randn(5, 7), ties])


@pytest.mark.covers("sort")
def test_sort_integer(check):
    check(Fn(lambda self, x: torch.sort(x, dim=-1, descending=True, stable=True)),
          [torch.randint(-4, 4, (3, 9))])


@pytest.mark.covers("kthvalue")
def test_kthvalue(check):
    def fn(self, x):
        return (*torch.kthvalue(x, 1, 1), *torch.kthvalue(x, 4, 0), *torch.kthvalue(x, 7, 1))
    check(Fn(fn), [torch.randn(5, 7)])


@pytest.mark.covers("topk")
def test_topk_with_ties(check):
    """Which of tied entries topk returns is PyTorch's implementation detail: the indices are
    checked by gathering the values back."""
    def fn(self, x):
        top, top_index = torch.topk(x, 3)
        low, low_index = torch.topk(x, 2, largest=False)
        return top, x.gather(1, top_index), low, x.gather(1, low_index)
    check(Fn(fn), [torch.tensor([[1.0, 5.0, 5.0, 2.0, 5.0], [0.0, -1.0, 0.0, 3.0, 3.0]])])


# -------------------------------------------------------------------------- what is refused
class _DataDependentSizes(torch.nn.Module):
    def forward(self, x, counts):
        return torch.nonzero(x), x[x > 0], torch.bincount(counts)


def test_data_dependent_sizes_are_refused_naming_the_ops():
    """The output sizes of nonzero, a boolean mask read and bincount depend on the data, which
    ember's shapes (all derived from input shapes) cannot express; torch-mlir's lowering of
    such shapes does not finish."""
    with pytest.raises(UnsupportedOpsError) as info:
        ember.compile(_DataDependentSizes(), (torch.randn(3, 4), torch.tensor([1, 3, 3])))
    assert [op.aten_op for op in info.value.ops] == [
        "aten.nonzero", "aten.index.Tensor", "aten.bincount"]
    line = f"test_scatter_scan_sort.py:{_DataDependentSizes.forward.__code__.co_firstlineno + 1}"
    assert all(op.source.endswith(line) for op in info.value.ops)
    assert "data-dependent shape" in str(info.value)
