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
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

__all__ = ["Int8", "selects", "report", "QuantizationReport"]

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
    method:      static mode: "minmax" (the observed range), "percentile" (the range holding
                 `percentile` % of the values, clipping outliers) or "entropy" (the range
                 whose quantized histogram keeps the most information, KL divergence as in
                 TensorRT's calibrator).
    percentile:  for method "percentile".
    bias_correction: static mode: after calibrating, add to each quantized layer's bias the
                 mean shift (per output channel, on the calibration inputs) that quantizing
                 it and the layers before it leaves (as NNCF's bias correction); on by default.
    """
    mode: str = "dynamic"
    filter: str = ".*"
    exclude: str = ""
    calibration: Optional[Sequence[Any]] = field(default=None, compare=False, repr=False)
    method: str = "minmax"
    percentile: float = 99.99
    bias_correction: bool = True

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
        for what in ("filter", "exclude"):
            pattern = getattr(self, what)
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"ember.quant.Int8: {what} {pattern!r} is not a regular "
                                 f"expression: {e}") from None
            # The pattern travels as a pass option in a textual pipeline (and the ember-opt
            # command that reproduces a failure), where whitespace ends it and braces nest.
            if re.search(r"\s", pattern) or pattern.count("{") != pattern.count("}"):
                raise ValueError(f"ember.quant.Int8: {what} {pattern!r} may not contain "
                                 f"whitespace or unbalanced braces; write \\s for a space")

    def selects(self, kind: str, module_path: str) -> bool:
        return kind in QUANTIZABLE_KINDS[self.mode] and \
            selects(self.filter, self.exclude, kind, module_path)

    def pass_options(self) -> dict:
        """The options of the ember-quantize pass that carry out dynamic mode."""
        return {"mode": self.mode, "filter": self.filter, "exclude": self.exclude}


from ember.quant.report import QuantizationReport, report  # noqa: E402  (needs Int8 above)
