"""Normalizations: BatchNorm (eval), LayerNorm, GroupNorm, InstanceNorm, RMSNorm."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from .conftest import Fn

nn = torch.nn


def _randomize(norm):
    """Non-trivial affine parameters and running statistics."""
    with torch.no_grad():
        for name in ("weight", "bias"):
            p = getattr(norm, name, None)
            if p is not None:
                p.uniform_(0.5, 1.5) if name == "weight" else p.uniform_(-0.5, 0.5)
        if getattr(norm, "running_mean", None) is not None:
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return norm


@pytest.mark.covers("BatchNorm")
@pytest.mark.parametrize("norm,shape", [
    (nn.BatchNorm1d(5), (4, 5)),
    (nn.BatchNorm1d(3), (2, 3, 7)),
    (nn.BatchNorm2d(3), (2, 3, 9, 11)),
    (nn.BatchNorm3d(2, affine=False), (1, 2, 3, 5, 4)),
], ids=["1d", "1d-sequence", "2d", "3d-no-affine"])
def test_batch_norm(check, norm, shape):
    check(_randomize(norm), [torch.randn(shape)])


@pytest.mark.covers("LayerNorm")
@pytest.mark.parametrize("norm,shape", [
    (nn.LayerNorm(9), (2, 5, 9)),
    (nn.LayerNorm((5, 7), elementwise_affine=False), (3, 5, 7)),
    (nn.LayerNorm(1), (6, 1)),
    (nn.LayerNorm(33, bias=False, eps=1e-3), (33,)),
], ids=["last-dim", "two-dims-no-affine", "size-1", "no-bias-rank1"])
def test_layer_norm(check, norm, shape):
    check(_randomize(norm), [torch.randn(shape) * 3 + 1], expect=["layer_norm"])


@pytest.mark.covers("GroupNorm")
@pytest.mark.parametrize("groups,channels,shape", [
    (2, 4, (2, 4, 5, 6)), (1, 3, (1, 3, 7)), (6, 6, (2, 6, 3, 3)), (3, 6, (2, 6, 5))])
def test_group_norm(check, groups, channels, shape):
    check(_randomize(nn.GroupNorm(groups, channels)), [torch.randn(shape) * 2 + 1])


@pytest.mark.covers("InstanceNorm")
@pytest.mark.parametrize("norm,shape", [
    (nn.InstanceNorm2d(3), (2, 3, 9, 11)),
    (nn.InstanceNorm2d(3, affine=True), (2, 3, 5, 7)),
    (nn.InstanceNorm1d(4, affine=True), (2, 4, 9)),
], ids=["2d", "2d-affine", "1d-affine"])
def test_instance_norm(check, norm, shape):
    check(_randomize(norm), [torch.randn(shape) * 2 + 1])


@pytest.mark.covers("RMSNorm")
@pytest.mark.parametrize("norm,shape", [
    (nn.RMSNorm(8), (2, 5, 8)),
    (nn.RMSNorm(8, eps=1e-5), (3, 8)),
    (nn.RMSNorm((3, 5), elementwise_affine=False), (2, 3, 5)),
    (nn.RMSNorm(7), (7,)),
], ids=["default-eps", "eps", "two-dims-no-weight", "rank1"])
def test_rms_norm(check, norm, shape):
    check(_randomize(norm), [torch.randn(shape) * 3], expect=["rms_norm"])


@pytest.mark.covers("RMSNorm")
def test_rms_norm_functional(check):
    w = torch.rand(6) + 0.5
    check(Fn(lambda self, x: (F.rms_norm(x, (6,), w, 1e-6), F.rms_norm(x, (6,)))),
          [torch.randn(4, 6)], expect=["rms_norm"])


@pytest.mark.covers("LayerNorm", "RMSNorm")
def test_norms_dynamic_batch(check):
    """LayerNorm and RMSNorm keep their ember ops with dynamic leading dims."""
    model = Fn(lambda self, x: self.mods[1](self.mods[0](x)),
               _randomize(nn.LayerNorm(12)), _randomize(nn.RMSNorm(12)))
    batch, seq = torch.export.Dim("batch", min=1, max=8), torch.export.Dim("seq", min=1, max=64)
    check(model, [torch.randn(2, 5, 12)], expect=["layer_norm", "rms_norm"],
          dynamic_shapes={"xs": ({0: batch, 1: seq},)},
          more_inputs=[[torch.randn(1, 1, 12)], [torch.randn(3, 17, 12)]])


@pytest.mark.covers("LayerNorm", "RMSNorm")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_norms_compute_statistics_in_f32(check, dtype):
    """f16/bf16 LayerNorm and RMSNorm sum in f32, as PyTorch does: values of a few hundred
    square past f16's 65504 (the RMSNorm row came out all zeros) and a long f16 or bf16 sum
    loses the mean's low bits."""
    weight, bias = (torch.rand(48) + 0.5).to(dtype), (torch.rand(48) - 0.5).to(dtype)
    model = Fn(lambda self, x: (F.rms_norm(x, (48,), weight, 1e-6),
                                F.layer_norm(x, (48,), weight, bias), F.rms_norm(x, (48,))))
    x = (torch.randn(3, 4, 48) * 300 + 40).to(dtype)
    check(model, [x], expect=["rms_norm", "layer_norm"])
