"""Data movement: transposes, reshapes, expand, pixel shuffle, splits, slices, cat, zeros."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ember
from ember.frontend.errors import UnsupportedOpsError

from .conftest import Fn


@pytest.mark.covers("transpose", "permute")
def test_transpose_permute(check):
    model = Fn(lambda self, x, m: (x.transpose(0, 2) * 2, x.transpose(-1, -2) + 1, m.t() - 1,
                                   x.permute(2, 0, 1) * 3, x.permute(1, 2, 0).contiguous() + 2))
    check(model, [torch.randn(2, 3, 5), torch.randn(3, 7)], expect=["transpose"])


@pytest.mark.covers("view", "reshape", "squeeze", "unsqueeze", "flatten", "contiguous")
def test_reshapes(check):
    model = Fn(lambda self, x, y: (x.view(6, 5) * 2, x.reshape(-1) + 1, y.squeeze() * 2,
                                   y.squeeze(1) + 1, x.unsqueeze(0) * 2, x.unsqueeze(-1) + 1,
                                   x.flatten() * 2, x.flatten(1) + 1,
                                   x.transpose(1, 2).contiguous().view(2, 15)))
    check(model, [torch.randn(2, 3, 5), torch.randn(3, 1, 4, 1)], expect=["reshape"])


@pytest.mark.covers("view", "reshape", "flatten", "unsqueeze")
def test_reshapes_dynamic_batch(check):
    """With a dynamic batch dim, ember.reshape declines and the fallback reshapes."""
    batch = torch.export.Dim("batch", min=1, max=64)
    model = Fn(lambda self, x: (x.view(x.size(0), 3, 4) * 2, x.reshape(-1, 2, 6) + 1,
                                x.flatten() * 3, x.unsqueeze(1) - 1))
    check(model, [torch.randn(3, 12)], dynamic_shapes={"xs": ({0: batch},)},
          more_inputs=[[torch.randn(1, 12)], [torch.randn(10, 12)]])


@pytest.mark.covers("expand")
def test_expand(check):
    model = Fn(lambda self, x, y: (x.expand(3, 4, 5) * 1, y.expand(2, -1, 6) + 0,
                                   x.expand_as(torch.empty(2, 4, 5)) * 2))
    check(model, [torch.randn(4, 1), torch.randn(1, 3, 1)])


@pytest.mark.covers("expand")
def test_expand_dynamic(check):
    """Size-1 dims repeated next to a dynamic dim kept from the input (a cache's length)."""
    n = torch.export.Dim("n", min=2, max=64)
    model = Fn(lambda self, x: x[:, :, None].expand(-1, -1, 4, -1, -1).reshape(1, 8, -1, 16) * 2)
    check(model, [torch.randn(1, 2, 9, 16)], expect=("broadcast",),
          dynamic_shapes={"xs": ({2: n},)}, more_inputs=[[torch.randn(1, 2, 33, 16)]])


@pytest.mark.covers("PixelShuffle")
def test_pixel_shuffle(check):
    model = Fn(lambda self, x, y: (torch.nn.PixelShuffle(2)(x), F.pixel_shuffle(y, 3),
                                   F.pixel_unshuffle(x, 1)))
    check(model, [torch.randn(2, 8, 3, 5), torch.randn(1, 9, 2, 3)])


@pytest.mark.covers("split", "split_with_sizes", "chunk")
def test_split_chunk(check):
    model = Fn(lambda self, x: (*torch.split(x, 3, dim=1), *torch.split(x, [2, 1, 4], dim=1),
                                *torch.chunk(x, 3, dim=0), *x.split_with_sizes([1, 1, 2, 3], -1),
                                *torch.chunk(x, 2, dim=-1)))
    check(model, [torch.randn(5, 7)])


@pytest.mark.covers("slice", "select")
def test_slice_select(check):
    model = Fn(lambda self, x: (x[1:3], x[:, ::2], x[..., -3:], x[:, 1:-1, 2:5:2], x[0],
                                x[:, -1], x.select(2, 3), x[1, :, 0], x.narrow(1, 1, 2)))
    check(model, [torch.randn(4, 5, 6)])


@pytest.mark.covers("cat")
def test_cat(check):
    model = Fn(lambda self, a, b, c: (torch.cat([a, b], 0), torch.cat([a, c], 1),
                                      torch.cat([a, a, a], -1), torch.stack([a, a], 1)))
    check(model, [torch.randn(2, 3), torch.randn(5, 3), torch.randn(2, 1)])


@pytest.mark.covers("cat", "slice")
def test_cat_slice_dynamic(check):
    batch = torch.export.Dim("batch", min=1, max=64)
    model = Fn(lambda self, x, y: (torch.cat([x, y], 1), torch.cat([x, x], 0)[1:], x[:, 1:3]))
    check(model, [torch.randn(3, 4), torch.randn(3, 2)],
          dynamic_shapes={"xs": ({0: batch}, {0: batch})},
          more_inputs=[[torch.randn(1, 4), torch.randn(1, 2)],
                       [torch.randn(9, 4), torch.randn(9, 2)]])


@pytest.mark.covers("cat")
def test_cat_along_a_dynamic_dim(check):
    """Concatenation along a dynamic dim (ember.concat with run-time offsets): two dynamic
    inputs of different sizes, a dynamic and a static one, along the last dim."""
    n, m = torch.export.Dim("n", min=1, max=64), torch.export.Dim("m", min=1, max=64)
    model = Fn(lambda self, x, y, z: (torch.cat([x, y], 0) * 2, torch.cat([z, x], 0),
                                      torch.cat([x.t(), y.t()], 1)))
    check(model, [torch.randn(3, 4), torch.randn(5, 4), torch.randn(2, 4)], expect=["concat"],
          dynamic_shapes={"xs": ({0: n}, {0: m}, None)},
          more_inputs=[[torch.randn(1, 4), torch.randn(9, 4), torch.randn(2, 4)],
                       [torch.randn(17, 4), torch.randn(1, 4), torch.randn(2, 4)]])


@pytest.mark.covers("slice", "cat")
def test_roll(check):
    """roll: torch-mlir's slices of it carry a dynamic result type for a known size (their
    lowering built an extract_slice of the wrong type); both dims, either direction."""
    model = Fn(lambda self, x: (torch.roll(x, 1, 0), torch.roll(x, -2, 1),
                                torch.roll(x, (1, 3), (0, 1))))
    check(model, [torch.randn(4, 5)])


@pytest.mark.covers("zeros", "zeros_like")
def test_zeros(check):
    model = Fn(lambda self, x: (torch.zeros(3, 4), x + torch.zeros(4), torch.zeros_like(x),
                                torch.zeros_like(x, dtype=torch.int64), x.new_zeros(2, 5),
                                torch.zeros(2, 2, dtype=torch.bool)))
    check(model, [torch.randn(3, 4)])


@pytest.mark.covers("contiguous")
def test_repeated_outputs(check):
    """The same tensor returned twice, and an input returned as is."""
    model = Fn(lambda self, x: (x * 2, x * 2, x.contiguous(), x))
    check(model, [torch.randn(3, 4)])


@pytest.mark.covers("cat", "transpose", "permute", "split", "slice", "where", "index_put",
                    "expand", "matmul", "mm")
def test_complex_data_movement_and_products(check):
    """complex64 tensors through torch-mlir's lowering: views, concatenation, splits, indexing,
    scatter by index, padding, flips, triu, where, a broadcast (a scalar loop: no vector of
    complex numbers exists) and complex matrix products. (complex128 tensors pass the
    arithmetic of test_complex_tensors; torch-mlir's importer has no complex128 dtype argument,
    which most of these ops carry.)"""
    def model(self, z, w, idx, keep):
        return (torch.cat([z, w]), torch.stack([z, w], 1), z.t(), z.permute(1, 0).flip(0),
                z.index_select(0, idx), torch.gather(z, 1, idx[:, None].expand(-1, 3)),
                F.pad(z, (1, 2)), F.pad(z[None], (2, 1), mode="reflect"), z.triu(), z.tril(),
                torch.where(keep, z, w), z.expand(2, 4, 3) * 1, torch.bmm(z[None], w.t()[None]),
                *torch.split(w, [1, 3]), z[idx], z @ w.t(), torch.mm(z.t(), w),
                z.index_put((idx,), w[:2]))
    z, w = torch.randn(4, 3, dtype=torch.complex64), torch.randn(4, 3, dtype=torch.complex64)
    check(Fn(model), [z, w, torch.tensor([2, 0]), torch.rand(4, 3) > 0.5])


def test_complex_op_outside_the_list_is_refused_by_name():
    """A complex op torch-mlir lowers wrongly or not at all is refused before it runs, naming
    the op and the dtype (a complex sum aborted the process inside torch-mlir)."""
    with pytest.raises(UnsupportedOpsError, match=r"aten.cumsum \(called as cumsum\) at "
                                                        r".*complex tensors \(complex64\)"):
        ember.compile(Fn(lambda self, z: torch.cumsum(z, 0)),
                      [torch.randn(4, 3, dtype=torch.complex64)])
