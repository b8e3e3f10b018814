"""Quantization: what a user asks for (`Int8`) and the number formats behind it (`schemes`).

    compiled = ember.compile(model, inputs, quantize=ember.quant.Int8())
    compiled = ember.compile(model, inputs, quantize=ember.quant.Int8(exclude=r"classifier"))
    compiled = ember.compile(model, inputs, quantize=ember.quant.Int8(
        mode="static", calibration=[(x,) for x in sample_batches], method="entropy"))

`Int8(mode="dynamic")` stores the chosen GEMM weights as int8 per output channel and
embedding tables as int8 per row (about 4x smaller) and quantizes their activations per row at run time; the products run on the target's
integer dot-product instructions (see ember.quant.schemes and ember-quantize).
`Int8(mode="static")` fixes every activation's scale ahead of time from calibration inputs
(PyTorch's PT2E flow, see ember.frontend.static_quantization): the int8 ops then pass int8
activations between them. A model the user quantized with PT2E themselves compiles as it is.
`ember.quant.report(model, compiled, inputs)` shows which layers lose the most (SQNR).

    compiled = ember.compile(model, inputs, quantize=ember.quant.WeightOnly(bits=4, group_size=64))

`WeightOnly` stores the chosen Linear layers' weights as int8 or int4 codes with a scale (and
offset) per group of `group_size` input features (ember.quant.low_bit); activations stay in
floating point and the GEMM kernels dequantize each weight vector in registers, so a
memory-bound decode step reads 4x (int8) or 8x (int4) fewer weight bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ember.weights import PROVIDED_CODES

__all__ = ["Int8", "WeightOnly", "selects", "report", "QuantizationReport"]

#: What `Int8` quantizes in each mode; `filter`/`exclude` match these kinds or module paths.
#: "Embedding" covers nn.Embedding and nn.EmbeddingBag tables (int8 rows, one scale each);
#: "Attention" scaled-dot-product attention's two activation x activation products.
QUANTIZABLE_KINDS = {"dynamic": ("Linear", "Embedding", "Attention"),
                     "static": ("Linear", "Conv2d", "Embedding", "Attention")}
MODES = tuple(QUANTIZABLE_KINDS)
#: How static mode picks an activation's range from the calibration inputs.
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


def selects(filter: str, exclude: str, kind: str, module_path: str) -> bool:
    """Whether an op of `kind` ("Linear") at `module_path` is quantized: `filter` matches one
    of the two names (`re.search`) and `exclude` (when set) neither."""
    names = (kind, module_path)
    return any(re.search(filter, s) for s in names) and \
        not (exclude and any(re.search(exclude, s) for s in names))


@dataclass(frozen=True)
class Int8:
    """int8 quantization settings.

    mode:        "dynamic": weights int8 (per output channel, symmetric), activations
                 quantized per row at each call (Linear layers).
                 "static": weights as in dynamic; each activation quantized per tensor with a
                 scale and zero point fixed from `calibration` (Linear and Conv2d layers).
                 In both modes Embedding and EmbeddingBag tables are stored int8, one
                 symmetric scale per row, dequantized as rows are looked up (kind
                 "Embedding"), and attention's two products run in int8, quantized per
                 row at run time (kind "Attention").
    filter:      a regular expression; an op is quantized when it matches its kind ("Linear")
                 or its module path ("encoder.layer.0.attention.self.query"), like Ampere's
                 AIO_QUANTIZE_INT8_FILTER. Default: everything quantizable.
    exclude:     a regular expression over the same names; matches stay in floating point.
    calibration: static mode: example inputs to observe, an iterable of input tuples (or of
                 single tensors for a one-input model); 32 representative batches is typical.
    method:      static mode: "percentile" (the default: the range holding `percentile` %
                 of the values, clipping outliers), "minmax" (the observed range) or "entropy"
                 (the range whose quantized histogram keeps the most information, KL
                 divergence as in TensorRT's calibrator). On the benchmark CNN percentile
                 keeps the fp32 argmax on 97.9% of 1024 inputs, minmax on 97.0%
                 (benchmarks/int8_argmax.py).
    percentile:  for method "percentile".
    bias_correction: static mode: after calibrating, add to each quantized layer's bias the
                 mean shift (per output channel, on the calibration inputs) that quantizing
                 it and the layers before it leaves (as NNCF's bias correction); on by default.
    quantize_outputs: static mode: whether the layers whose result is a model output (a
                 classifier, a regression head) are quantized too. Off by default: their input
                 quantization error reaches the outputs undiluted (a CNN's classifier reads
                 pooled features that differ from image to image by little against their
                 range: all-int8 keeps the benchmark CNN's argmax on 95.7% of inputs, a float
                 classifier on 97.9%), and int8 speeds them least (their result is f32
                 anyway). Dynamic mode, which scales each row as it runs, quantizes them.
    """
    mode: str = "dynamic"
    filter: str = ".*"
    exclude: str = ""
    calibration: Optional[Sequence[Any]] = field(default=None, compare=False, repr=False)
    method: str = "percentile"
    percentile: float = 99.99
    bias_correction: bool = True
    quantize_outputs: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"ember.quant.Int8: mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "static":
            if self.calibration is None:
                raise ValueError("ember.quant.Int8: mode='static' needs calibration= example "
                                 "inputs (an iterable of input tuples)")
            batches = tuple(b if isinstance(b, (tuple, list)) else (b,)
                            for b in self.calibration)
            if not batches:
                raise ValueError("ember.quant.Int8: calibration is empty")
            object.__setattr__(self, "calibration", batches)
        elif self.calibration is not None:
            raise ValueError("ember.quant.Int8: calibration is for mode='static'; dynamic mode "
                             "measures each activation as it runs")
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"ember.quant.Int8: method must be one of {CALIBRATION_METHODS}, "
                             f"got {self.method!r}")
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"ember.quant.Int8: percentile must lie in (50, 100], got "
                             f"{self.percentile}")
        _check_patterns("Int8", self.filter, self.exclude)

    def selects(self, kind: str, module_path: str) -> bool:
        """Whether the op of `kind` at `module_path` is quantized."""
        return kind in QUANTIZABLE_KINDS[self.mode] and \
            selects(self.filter, self.exclude, kind, module_path)

    def pass_options(self) -> dict:
        """The options of the ember-quantize pass that carry out dynamic mode."""
        return {"mode": self.mode, "filter": self.filter, "exclude": self.exclude}


def _check_patterns(who: str, filter: str, exclude: str) -> None:
    """Raises ValueError unless filter and exclude are each a regular expression that can
    travel as a pass option in a textual pipeline (and the ember-opt command that reproduces a
    failure), where whitespace ends it and braces nest."""
    for what, pattern in (("filter", filter), ("exclude", exclude)):
        try:
            re.compile(pattern)
        except re.error as e:
            raise ValueError(f"ember.quant.{who}: {what} {pattern!r} is not a regular "
                             f"expression: {e}") from None
        if re.search(r"\s", pattern) or pattern.count("{") != pattern.count("}"):
            raise ValueError(f"ember.quant.{who}: {what} {pattern!r} may not contain "
                             f"whitespace or unbalanced braces; write \\s for a space")


@dataclass(frozen=True)
class WeightOnly:
    """Weight-only quantization of Linear layers (LLM decode: GPTQ/AWQ/llama.cpp style).

    bits:       8 or 4: the codes' width (ember.quant.low_bit).
    group_size: input features per scale: each output column gets one scale (and offset) per
                `group_size` consecutive rows of K (32, 64, 128: smaller groups, more accurate
                and larger). A layer with K below it gets one group.
    symmetric:  codes centred on 0 (int8: [-127, 127]; int4: [-7, 7] + 8); False: each group
                spans [min, max] with a zero point (better int4 accuracy). Default: int8
                symmetric, int4 asymmetric.
    filter:     a regular expression over the kind ("Linear") and the module path, as
                Int8's; exclude: the layers that keep f32 weights (an LM head, say).
    weights:    codes you already have (GPTQ/AWQ-style), by module path: {"layers.0.fc":
                (qweight, scales, zeros)} with qweight the codes [out, in] (unpacked
                integers: int8 in [-128, 127], int4 in [0, 15]), scales and zeros
                [out, ceil(in / group_size)] (zeros None: symmetric, 0 for int8, 8 for int4),
                w = (q - zero) * scale. Those layers compute exactly that weight (their
                f32 weight is replaced by it) and are never merged with a sibling.

    Activations, sums, the epilogue and everything outside the chosen GEMMs stay in floating
    point: the kernel widens each weight vector and applies its group's scale in registers.
    """
    bits: int = 4
    group_size: int = 128
    symmetric: Optional[bool] = None
    filter: str = ".*"
    exclude: str = ""
    weights: Optional[Mapping[str, Sequence[Any]]] = field(default=None, compare=False,
                                                            repr=False)

    def __post_init__(self):
        for path, parts in (self.weights or {}).items():
            if not isinstance(parts, (tuple, list)) or len(parts) not in (2, 3):
                raise ValueError(f"ember.quant.WeightOnly: weights[{path!r}] must be "
                                 f"(qweight, scales) or (qweight, scales, zeros)")
        if self.bits not in (4, 8):
            raise ValueError(f"ember.quant.WeightOnly: bits must be 8 or 4, got {self.bits}")
        if not isinstance(self.group_size, int) or self.group_size < 2 or \
                self.group_size % 2:
            raise ValueError(f"ember.quant.WeightOnly: group_size must be an even integer >= 2 "
                             f"(32, 64, 128), got {self.group_size!r}")
        if self.symmetric is None:
            object.__setattr__(self, "symmetric", self.bits == 8)
        _check_patterns("WeightOnly", self.filter, self.exclude)

    #: What weight-only mode quantizes (Int8's `mode` for the shared report and checks).
    mode = "weight-only"

    def selects(self, kind: str, module_path: str) -> bool:
        """Whether the op of `kind` at `module_path` gets low-bit weights."""
        return kind == "Linear" and selects(self.filter, self.exclude, kind, module_path)

    def provided_entries(self, model) -> dict:
        """The weights-table entries of the user-supplied codes (`weights`) of `model`'s
        Linear layers: "<path>.weight" (the f32 weight the codes stand for, [out, in]) and
        "<path>.weight#codes", "#scale", "#offset" (ember's layout; see
        ember.weights.PROVIDED_CODES and ember-quantize)."""
        import torch
        from ember.quant.low_bit import dequantize, provided_codes
        entries = {}
        for path, (qweight, scales, *zeros) in (self.weights or {}).items():
            try:
                layer = model.get_submodule(path)
            except AttributeError:
                raise ValueError(f"ember.quant.WeightOnly(weights=...): the model has no module "
                                 f"{path!r}") from None
            if not isinstance(layer, torch.nn.Linear):
                raise ValueError(f"ember.quant.WeightOnly(weights=...): {path!r} is a "
                                 f"{type(layer).__name__}, not an nn.Linear")
            group = min(self.group_size, layer.in_features)
            parts = provided_codes(path, tuple(layer.weight.shape), qweight, scales,
                                   zeros[0] if zeros else None, self.bits, group)
            param = f"{path}.weight"
            entries[param] = np.ascontiguousarray(dequantize(*parts, self.bits, group).T)
            for suffix, array in zip(PROVIDED_CODES, parts):
                if array is not None:
                    entries[param + suffix] = array
        return entries

    def pass_options(self) -> dict:
        """The options of the ember-quantize pass that carry it out."""
        return {"mode": self.mode, "bits": self.bits, "group_size": self.group_size,
                "symmetric": self.symmetric, "filter": self.filter, "exclude": self.exclude}


from ember.quant.report import QuantizationReport, report  # noqa: E402  (needs Int8 above)
