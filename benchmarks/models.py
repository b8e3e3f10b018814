"""The benchmark workloads: torch modules plus deterministic input factories.

Each workload is a row of `WORKLOADS`: how to build the module for one size, how to make its
inputs, which sizes a full and a `--quick` run measure, and the tolerance of the cross-check
against eager. Weights and inputs are seeded, so every worker process (one per backend, see
worker.py) builds bit-identical models and inputs and can compare against eager on its own.

The models are written in plain torch ops (matmul, softmax, conv, batch norm) rather than
fused library modules (no nn.MultiheadAttention fast path), so every backend sees the same
graph and none gets a hand-written kernel the others cannot use.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import nn

_EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)
from mlp_block import MLPBlock  # noqa: E402  (the example model ember ships)
from resnet import BasicBlock  # noqa: E402  (the ResNet-18 example's block)

WEIGHT_SEED = 0
INPUT_SEED = 1


# -- models ----------------------------------------------------------------------------------

class SGEMM(nn.Module):
    """y = x @ W with W a parameter: the square GEMM every backend lowers to its best kernel."""

    def __init__(self, n: int):
        super().__init__()
        # Scaled so outputs stay O(1) and the cross-check tolerance means the same at every n.
        self.weight = nn.Parameter(torch.randn(n, n) / math.sqrt(n))

    def forward(self, x):
        return x @ self.weight


class SmallResNet(nn.Module):
    """A ResNet-style CNN for 3x64x64 images: stem, four BasicBlocks (32, 64, 128, 256 channels,
    the last three downsampling), global average pool, linear classifier."""

    def __init__(self, widths=(32, 64, 128, 256), classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, cin = [], widths[0]
        for i, cout in enumerate(widths):
            blocks.append(BasicBlock(cin, cout, 1 if i == 0 else 2))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        y = self.blocks(self.stem(x))
        return self.fc(y.mean(dim=(2, 3)))


class EncoderLayer(nn.Module):
    """A post-LayerNorm BERT encoder layer; attention spelled out as matmul + softmax."""

    def __init__(self, hidden: int, heads: int, ffn: int):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, ffn)
        self.fc2 = nn.Linear(ffn, hidden)
        self.norm2 = nn.LayerNorm(hidden)

    def _split(self, t):
        b, s, _ = t.shape
        return t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        b, s, h = x.shape
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        context = context.transpose(1, 2).reshape(b, s, h)
        x = self.norm1(x + self.out(context))
        return self.norm2(x + self.fc2(torch.nn.functional.gelu(self.fc1(x))))


class BertEncoder(nn.Module):
    """A stack of BERT-style encoder layers over (batch, seq, hidden) activations."""

    def __init__(self, layers: int = 4, hidden: int = 256, heads: int = 4, ffn: int = 1024):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn) for _ in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class DecodeStack(nn.Module):
    """Four Linear 4096 -> 4096 + SiLU: a decode step's weight traffic (256 MB of fp32 weights
    read once per call at batch 1), the shape where a GEMV is bound by memory bandwidth."""

    def __init__(self, width: int = 4096, layers: int = 4):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = torch.nn.functional.silu(layer(x))
        return x


#: Tokens already in the KV cache of the Llama decode step.
LLAMA_CACHE_TOKENS = 128


def _llama_decode(batch: int) -> nn.Module:
    """One decode step of examples/llama_generate.py's "decode" Llama (338 MB of fp32 Linear
    weights), the KV cache passed in as tensors."""
    from greedy_generation import DecodeStep
    from llama_generate import llama
    return DecodeStep(llama("decode"))


def _llama_decode_inputs(batch: int, g: torch.Generator) -> Tuple[torch.Tensor, ...]:
    """The next token, its position and a cache of LLAMA_CACHE_TOKENS random keys/values."""
    from greedy_generation import cache_shape
    from llama_generate import SIZES
    from transformers import LlamaConfig
    config = LlamaConfig(**SIZES["decode"])
    shape = cache_shape(config, LLAMA_CACHE_TOKENS)
    cache = tuple(torch.randn(shape, generator=g) for _ in range(2 * config.num_hidden_layers))
    return (torch.tensor([[7]]), torch.tensor([[LLAMA_CACHE_TOKENS]])) + cache


def _randomize_batchnorm(module: nn.Module) -> None:
    """Gives every BatchNorm non-trivial statistics, so folding it into the conv is tested."""
    g = torch.Generator().manual_seed(WEIGHT_SEED + 1)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


def _cnn(batch: int) -> nn.Module:
    model = SmallResNet()
    _randomize_batchnorm(model)
    return model


# -- the workload table ----------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    size_name: str                              # what the size parameter is ("batch", "n")
    sizes: Tuple[int, ...]                      # a full run
    quick_sizes: Tuple[int, ...]                # --quick
    build: Callable[[int], nn.Module]           # size -> module (weights not yet seeded)
    input_shapes: Callable[[int], Tuple[Tuple[int, ...], ...]]
    atol: float = 1e-4                          # cross-check: |err| <= atol + rtol * max|ref|
    rtol: float = 1e-4
    report_gflops: bool = True                  # print GFLOP/s (FLOPs counted by torch)
    #: (size, generator) -> the inputs, when they are not all float tensors of input_shapes
    inputs: Optional[Callable[[int, torch.Generator], Tuple[torch.Tensor, ...]]] = None

    def make_model(self, size: int) -> nn.Module:
        torch.manual_seed(WEIGHT_SEED)
        with torch.no_grad():
            return self.build(size).eval()

    def make_inputs(self, size: int) -> Tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(INPUT_SEED)
        if self.inputs is not None:
            return self.inputs(size, g)
        return tuple(torch.randn(shape, generator=g) for shape in self.input_shapes(size))

    def count_flops(self, size: int) -> int:
        """FLOPs of one forward pass as torch's FlopCounterMode counts them (matmuls and
        convolutions; elementwise work is not counted). Done once per size by the driver,
        not in the workers, because the counter's first use costs a second of imports."""
        from torch.utils.flop_counter import FlopCounterMode
        model, inputs = self.make_model(size), self.make_inputs(size)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*inputs)
        return counter.get_total_flops()

    def tolerance(self, reference_max: float) -> float:
        return self.atol + self.rtol * reference_max


WORKLOADS = {w.name: w for w in (
    Workload("mlp", "MLP block 512->2048->512 (Linear, GELU, Linear, +residual, LayerNorm)",
             "batch", (1, 64, 256, 1024), (1, 256),
             lambda batch: MLPBlock(512, 2048), lambda batch: ((batch, 512),)),
    Workload("sgemm", "square sgemm y = x @ W (W a parameter), FLOPs = 2n^3",
             "n", (256, 512, 1024, 2048), (256, 1024),
             SGEMM, lambda n: ((n, n),)),
    Workload("cnn", "ResNet-style CNN: conv-bn-relu stem, 4 BasicBlocks (32..256 ch), "
             "avg pool, linear; input 3x64x64",
             "batch", (8,), (8,), _cnn, lambda batch: ((batch, 3, 64, 64),), atol=1e-3),
    Workload("bert", "BERT-style encoder: 4 layers, hidden 256, 4 heads, FFN 1024, GELU, "
             "post-LayerNorm, seq 128",
             "batch", (8,), (8,), lambda batch: BertEncoder(),
             lambda batch: ((batch, 128, 256),), atol=1e-3),
    Workload("decode", "decode-like stack: 4 x (Linear 4096->4096, SiLU), 256 MB of fp32 "
             "weights read per call",
             "batch", (1,), (1,), lambda batch: DecodeStack(), lambda batch: ((batch, 4096),)),
    Workload("llama", "Llama-style decode step (examples/llama_generate.py --size decode): "
             "6 layers, hidden 1024, SwiGLU 2816, 16/4 GQA heads, vocab 16384, 128 cached "
             "tokens; 338 MB of fp32 Linear weights read per step", "batch", (1,), (1,),
             _llama_decode, lambda batch: (), atol=1e-3, inputs=_llama_decode_inputs),
)}
