"""Quantization: what a user asks for (`Int8`) and the number formats behind it (`schemes`).

    compiled = ember.compile(model, inputs, quantize=ember.quant.Int8())
    compiled = ember.compile(model, inputs, quantize=ember.quant.Int8(exclude=r"classifier"))

`Int8(mode="dynamic")` stores the chosen GEMM weights as int8 per output channel (about 4x
smaller) and quantizes their activations per row at run time; the products run on the target's
integer dot-product instructions (see ember.quant.schemes and ember-quantize).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Int8"]

#: What `Int8` quantizes; `filter`/`exclude` match these kinds or module paths.
QUANTIZABLE_KINDS = ("Linear",)


@dataclass(frozen=True)
class Int8:
    """int8 quantization settings.

    mode:    "dynamic": weights int8 (per output channel, symmetric), activations quantized per
             row at each call. ("static", with calibration, is not built yet.)
    filter:  a regular expression; an op is quantized when it matches its kind ("Linear") or
             its module path ("encoder.layer.0.attention.self.query"), like Ampere's
             AIO_QUANTIZE_INT8_FILTER. Default: everything quantizable.
    exclude: a regular expression over the same names; matches stay in floating point.
    """
    mode: str = "dynamic"
    filter: str = ".*"
    exclude: str = ""

    def __post_init__(self):
        if self.mode != "dynamic":
            raise ValueError(f"ember.quant.Int8: mode {self.mode!r} is not supported yet; "
                             f"use mode='dynamic'")
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

    def pass_options(self) -> dict:
        """The options of the ember-quantize pass that carry out these settings."""
        return {"mode": self.mode, "filter": self.filter, "exclude": self.exclude}
