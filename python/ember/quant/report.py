"""`ember.quant.report`: where quantization loses accuracy, layer by layer.

    compiled = ember.compile(model, inputs, quantize=ember.quant.Int8())
    print(ember.quant.report(model, compiled, inputs))

For every quantized layer, the signal-to-quantization-noise ratio (SQNR, in dB) of its output
when it alone is quantized: the fp32 model runs once, each quantized Linear/Conv2d/Embedding's
input is captured, and the layer is recomputed on that input the way ember computes it
(dynamic mode: ember.quant.schemes' reference, bit for bit the kernels' products, with the
compiled target's activation encoding; static mode: the calibrated input scale and the int8
weights the compiled model uses; tables: the int8 rows, either mode; weight-only: the low-bit
weight's dequantized values). Layers come worst first: the ones to try in `exclude=`. Then the
end-to-end error of the compiled model against the fp32 one on the same inputs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Union

import numpy as np

from ember.quant import Int8, WeightOnly
from ember.quant.low_bit import dequantize, provided_codes, quantize_groups
from ember.quant.schemes import encoding, quantize_table, quantize_weight, reference_qgemm


@dataclass
class QuantizationRecord:
    """What a compiled model's quantization was: the settings, the target's activation
    encoding (dynamic mode) and, in static mode, each layer's parameters by module path
    (ember.frontend.static_quantization.layer_parameters)."""
    scheme: Union[Int8, WeightOnly]
    encoding: str
    static_layers: Dict[str, dict] = field(default_factory=dict)


@dataclass
class LayerError:
    path: str
    kind: str
    sqnr_db: float


@dataclass
class QuantizationReport:
    layers: List[LayerError]          # the quantized layers, lowest SQNR (most loss) first
    output_sqnr_db: float
    max_abs_error: float
    cosine: float
    #: Static mode: the layers filter/exclude chose that stayed in floating point (a model
    #: output's layer without quantize_outputs=True, one PT2E's quantizer left alone).
    float_layers: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        width = max([len(layer.path) for layer in self.layers] + [12])
        lines = [f"{'layer':<{width}}  {'kind':<9} SQNR dB"]
        lines += [f"{layer.path:<{width}}  {layer.kind:<9} {layer.sqnr_db:7.1f}"
                  for layer in self.layers]
        if self.float_layers:
            lines.append(f"kept in floating point: {', '.join(self.float_layers)}")
        lines.append(f"end to end: SQNR {self.output_sqnr_db:.1f} dB, max |error| "
                     f"{self.max_abs_error:.4g}, cosine {self.cosine:.6f}")
        return "\n".join(lines)


def sqnr_db(reference, actual) -> float:
    """10 log10(signal power / noise power); inf when they are equal."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((reference - np.asarray(actual, dtype=np.float64)) ** 2))
    signal = float(np.sum(reference ** 2))
    return math.inf if noise == 0 else 10 * math.log10(max(signal, 1e-300) / noise)


def _dynamic_linear(module, x, enc: str):
    w = module.weight.detach().numpy().T
    q, scale = quantize_weight(w)
    rows = x.reshape(-1, w.shape[0]).numpy()
    y = reference_qgemm(rows, q, scale, encoding(enc))
    if module.bias is not None:
        y = y + module.bias.detach().numpy()
    return y.reshape(*x.shape[:-1], w.shape[1])


def _weight_only_linear(module, path: str, x, scheme):
    """A Linear's output with its weight as ember-quantize's weight-only mode stores it (the
    user's codes for a layer given them)."""
    w = module.weight.detach().numpy().T
    group = min(scheme.group_size, w.shape[0])
    given = (scheme.weights or {}).get(path)
    parts = provided_codes(path, w.T.shape, given[0], given[1],
                           given[2] if len(given) > 2 else None, scheme.bits, group) \
        if given is not None else quantize_groups(w, scheme.bits, group, scheme.symmetric)
    y = x.reshape(-1, w.shape[0]).numpy() @ dequantize(*parts, scheme.bits, group)
    if module.bias is not None:
        y = y + module.bias.detach().numpy()
    return y.reshape(*x.shape[:-1], w.shape[1])


def _int8_table(module, args, kwargs):
    """An Embedding/EmbeddingBag's output with its table's int8 rows (ember-quantize's)."""
    import torch
    codes, scales = quantize_table(module.weight.detach().numpy())
    table = torch.from_numpy(codes.astype(np.float32) * scales[:, None])
    return torch.func.functional_call(module, {"weight": table}, args, kwargs).numpy()


def _static_layer(module, x, params: dict):
    """(reference, quantized) outputs of a statically quantized layer on its captured input:
    the float layer as the quantizer saw it (a following BatchNorm folded in, which the
    module's own output lacks), and the same with the input's codes and the int8 weight."""
    import torch
    import torch.nn.functional as F
    scale, zero_point, lo, hi = params["input"]
    codes = torch.clamp(torch.round(x * (1.0 / scale)) + zero_point, lo, hi)
    x_q = (codes - zero_point) * scale
    w_codes, w_scales, axis = params["weight"]
    shape = [1] * w_codes.dim()
    shape[axis] = -1
    w_q = w_codes.float() * w_scales.reshape(shape)
    w, bias = params.get("float") or (module.weight.detach(), module.bias)

    def layer(inp, weight):
        if isinstance(module, torch.nn.Linear):
            return F.linear(inp, weight, bias).numpy()
        return F.conv2d(inp, weight, bias, module.stride, module.padding, module.dilation,
                        module.groups).numpy()
    return layer(x, w), layer(x_q, w_q)


def report(model, compiled, inputs) -> QuantizationReport:
    """Per-layer SQNR and the end-to-end error of `compiled` (an ember.compile result made
    with `quantize=`) against `model` (the fp32 module it was compiled from) on `inputs`."""
    import torch
    from torch.utils._pytree import tree_leaves
    record = getattr(compiled, "quantization", None)
    if record is None:
        raise ValueError("ember.quant.report needs a model compiled with quantize=")
    kinds = {torch.nn.Linear: "Linear", torch.nn.Conv2d: "Conv2d",
             torch.nn.Embedding: "Embedding", torch.nn.EmbeddingBag: "Embedding"}
    captured, hooks, float_layers = [], [], []
    for path, module in model.named_modules():
        kind = kinds.get(type(module))
        chosen = kind is not None and record.scheme.selects(kind, path)
        if record.scheme.mode == "static" and kind != "Embedding":
            if chosen and path not in record.static_layers:
                float_layers.append(path)
            chosen = path in record.static_layers     # what PT2E quantized
        if chosen:
            hooks.append(module.register_forward_hook(
                lambda m, args, kwargs, out, path=path, kind=kind:
                captured.append((path, kind, m, args, kwargs, out.detach())),
                with_kwargs=True))
    inputs = tuple(inputs)
    try:
        with torch.no_grad():
            expected = model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    layers = []
    with torch.no_grad():
        for path, kind, module, args, kwargs, y in captured:
            reference = y.numpy()
            if kind == "Embedding":
                quantized = _int8_table(module, args, kwargs)
            elif record.scheme.mode == "static":
                reference, quantized = _static_layer(module, args[0],
                                                     record.static_layers[path])
            elif record.scheme.mode == "weight-only":
                quantized = _weight_only_linear(module, path, args[0], record.scheme)
            else:
                quantized = _dynamic_linear(module, args[0], record.encoding)
            layers.append(LayerError(path, kind, sqnr_db(reference, quantized)))
        actual = compiled(*inputs)
    layers.sort(key=lambda layer: layer.sqnr_db)
    ref = np.concatenate([np.asarray(t, np.float64).ravel() for t in tree_leaves(expected)])
    out = np.concatenate([np.asarray(t, np.float64).ravel() for t in tree_leaves(actual)])
    norms = float(np.linalg.norm(ref) * np.linalg.norm(out))
    return QuantizationReport(layers, sqnr_db(ref, out), float(np.max(np.abs(ref - out))),
                              float(ref @ out / norms) if norms else 1.0, float_layers)
