"""ember-vectorize-generics: which linalg ops it vectorizes (and how wide), elementwise models
whose last dim is a multiple of the vector, shorter than it, or has a tail, with a dynamic
batch, and models reducing rows (softmax, LayerNorm, amax, a dynamic int8 Linear) or columns
(sum, amax, mean over leading dims), compiled with and without it and compared with PyTorch."""
from __future__ import annotations

import pytest
import torch
from mlir import ir
from torch import nn

import ember
from compare import assert_close
from ember.dialect import new_context
from ember.kit.ir_queries import walk_ops
from ember.backends.cpu.vectorize_generics import vector_tiles

ID2 = "affine_map<(d0, d1) -> (d0, d1)>"


CASES = {
    # name: (function text, expected plan with 16 lanes)
    "divisible": ("""
func.func @f(%x: memref<8x32xf32>, %out: memref<8x32xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x32xf32>) outs(%out : memref<8x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %0 = arith.mulf %a, %a : f32
    linalg.yield %0 : f32
  }
  return
}""", ((1, 16), False)),
    "short-tail": ("""
func.func @f(%x: memref<8x10xf32>, %out: memref<8x10xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x10xf32>) outs(%out : memref<8x10xf32>) {
  ^bb0(%a: f32, %o: f32):
    %0 = arith.negf %a : f32
    linalg.yield %0 : f32
  }
  return
}""", ((1, 8), True)),
    "too-short": ("""
func.func @f(%x: memref<8x3xf32>, %out: memref<8x3xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x3xf32>) outs(%out : memref<8x3xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  return
}""", None),
    "dynamic": ("""
func.func @f(%x: memref<?x?xf32>, %out: memref<?x?xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<?x?xf32>) outs(%out : memref<?x?xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  return
}""", ((1, 16), True)),
    "broadcast-rows": ("""
func.func @f(%x: memref<8x64xf32>, %s: memref<8xf32>, %out: memref<8x64xf32>) {
  linalg.generic {indexing_maps = [#id, affine_map<(d0, d1) -> (d0)>, #id],
                  iterator_types = ["parallel", "parallel"]}
      ins(%x, %s : memref<8x64xf32>, memref<8xf32>) outs(%out : memref<8x64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %0 = arith.mulf %a, %b : f32
    linalg.yield %0 : f32
  }
  return
}""", ((1, 16), False)),
    "transposed": ("""
func.func @f(%x: memref<64x64xf32>, %out: memref<64x64xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, #id],
                  iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<64x64xf32>) outs(%out : memref<64x64xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  return
}""", None),
    "reduction": ("""
func.func @f(%x: memref<64x64xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x64xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %0 = arith.addf %a, %o : f32
    linalg.yield %0 : f32
  }
  return
}""", None),
    "reassociable-sum": ("""
func.func @f(%x: memref<64x512xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x512xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %0 = arith.addf %a, %o fastmath<reassoc> : f32
    linalg.yield %0 : f32
  }
  return
}""", ((1, 128), False)),
    "max-with-tail": ("""
func.func @f(%x: memref<64x40xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x40xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    %0 = arith.maximumf %o, %a : f32
    linalg.yield %0 : f32
  }
  return
}""", ((1, 48), True)),
    "column-sum": ("""
func.func @f(%x: memref<64x40xf32>, %out: memref<40xf32>) {
  linalg.generic {indexing_maps = [#id, affine_map<(d0, d1) -> (d1)>],
                  iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<64x40xf32>) outs(%out : memref<40xf32>) {
  ^bb0(%a: f32, %o: f32):
    %0 = arith.addf %o, %a : f32
    linalg.yield %0 : f32
  }
  return
}""", ((1, 16), True)),
    "column-argmax": ("""
func.func @f(%x: memref<64x40xf32>, %out: memref<40xf32>, %at: memref<40xi64>) {
  linalg.generic {indexing_maps = [#id, affine_map<(d0, d1) -> (d1)>,
                                   affine_map<(d0, d1) -> (d1)>],
                  iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<64x40xf32>) outs(%out, %at : memref<40xf32>, memref<40xi64>) {
  ^bb0(%a: f32, %o: f32, %i: i64):
    %0 = arith.maximumf %o, %a : f32
    linalg.yield %0, %i : f32, i64
  }
  return
}""", None),
    "bool": ("""
func.func @f(%x: memref<8x64xf32>, %out: memref<8x64xi1>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x64xf32>) outs(%out : memref<8x64xi1>) {
  ^bb0(%a: f32, %o: i1):
    %c = arith.constant 0.0 : f32
    %0 = arith.cmpf ogt, %a, %c : f32
    linalg.yield %0 : i1
  }
  return
}""", None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_vector_tiles(name):
    text, expected = CASES[name]
    with new_context():
        module = ir.Module.parse(f"#id = {ID2}\n{text}")
        (op,) = walk_ops(module.operation, ["linalg.generic"])
        assert vector_tiles(op, 16) == expected


class Elementwise(nn.Module):
    """x * sigmoid(x) + bias, and a ReLU of a residual sum: elementwise ops broadcasting a
    per-channel vector along the last dim."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(channels))

    def forward(self, x, r):
        y = x * torch.sigmoid(x) + self.bias
        return torch.relu(y + r), y * 0.5


@pytest.mark.parametrize("vectorize", [True, False], ids=["vector", "scalar"])
@pytest.mark.parametrize("channels", [3, 10, 16, 37, 64])
def test_elementwise_models(channels, vectorize):
    torch.manual_seed(channels)
    model = Elementwise(channels).eval()
    batch = torch.export.Dim("batch", max=64)
    args = (torch.randn(4, 5, channels), torch.randn(4, 5, channels))
    compiled = ember.compile(model, args, dynamic_shapes={"x": {0: batch}, "r": {0: batch}},
                             disabled_passes=() if vectorize else ("ember-vectorize-generics",))
    for n in (1, 7):
        x, r = torch.randn(n, 5, channels), torch.randn(n, 5, channels)
        with torch.no_grad():
            assert_close(compiled(x, r), model(x, r))


class RowReductions(nn.Module):
    """Softmax, LayerNorm and amax over rows of `width`, and a Linear quantized dynamically
    (per-row amax of its input)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 8)

    def forward(self, x):
        return torch.softmax(x, -1), self.norm(x), x.abs().amax(-1), self.fc(x)


@pytest.mark.parametrize("vectorize", [True, False], ids=["vector", "scalar"])
@pytest.mark.parametrize("width", [40, 128, 300])
def test_row_reductions(width, vectorize):
    import ember.quant
    torch.manual_seed(width)
    model = RowReductions(width).eval()
    x = torch.randn(6, width) * 3
    x[1, 7] = float("nan")                                      # NaN rows stay NaN
    compiled = ember.compile(model, (x,), quantize=ember.quant.Int8(),
                             disabled_passes=() if vectorize else ("ember-vectorize-generics",))
    with torch.no_grad():
        ours, ref = compiled(x), model(x)
    for a, b in zip(ours[:3], ref[:3]):
        assert_close(a, b)
    assert torch.isnan(ours[3][1]).all()
    clean = [0, 2, 3, 4, 5]
    assert torch.nn.functional.cosine_similarity(ours[3][clean].flatten(),
                                                 ref[3][clean].flatten(), dim=0) > 0.999


class ColumnReductions(nn.Module):
    """Reductions over leading dims, the last one kept: a sum, an amax (as int8 attention's
    per-channel scales of V) and a mean over two dims (a CNN's global pooling in NHWC)."""

    def forward(self, x):
        return x.sum(1), x.abs().amax(1), x.mean(dim=(0, 1))


@pytest.mark.parametrize("vectorize", [True, False], ids=["vector", "scalar"])
@pytest.mark.parametrize("width", [40, 64, 300])
def test_column_reductions(width, vectorize):
    torch.manual_seed(width)
    x = torch.randn(3, 50, width) * 3
    x[1, 7, 5] = float("nan")                                   # NaN columns stay NaN
    compiled = ember.compile(ColumnReductions().eval(), (x,),
                             disabled_passes=() if vectorize else ("ember-vectorize-generics",))
    with torch.no_grad():
        for ours, ref in zip(compiled(x), ColumnReductions()(x)):
            ours = torch.as_tensor(ours)
            assert torch.equal(torch.isnan(ours), torch.isnan(ref))
            assert_close(ours.nan_to_num(), ref.nan_to_num())


def test_column_reductions_of_dynamic_sizes():
    """Rows and columns of run-time sizes: masked vectors over the columns, any row count."""
    x = torch.randn(3, 50, 40)
    dims = {"x": {1: torch.export.Dim("rows", max=200), 2: torch.export.Dim("cols", max=300)}}
    compiled = ember.compile(ColumnReductions().eval(), (x,), dynamic_shapes=dims)
    for shape in [(3, 7, 13), (3, 120, 257), (3, 1, 16)]:
        y = torch.randn(*shape)
        with torch.no_grad():
            assert_close(compiled(y), ColumnReductions()(y))
