"""The dynamic dims of an FX graph's inputs, as torch.export Dims.

A graph traced with symbolic shapes (a TorchDynamo graph under `dynamic=True`, a program saved
by `torch.export.save`) carries its inputs' example values with SymInt dims, each symbol's range
in its shape environment. Compiling such a graph again with ember means exporting it with one
`torch.export.Dim` per symbol over that range, so nothing is specialised that was dynamic;
ember.dynamo_backend and `ember compile` both do it here.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch


def is_symbolic(size) -> bool:
    """Whether a dim of an example value is dynamic: a SymInt not specialised to a number
    (dynamo's dynamic=True makes every dim a SymInt; those the graph fixes come back as
    numbers)."""
    return isinstance(size, torch.SymInt) and bool(size.node.expr.free_symbols)


def export_dims(example_values: Sequence[Optional[torch.Tensor]], what: Sequence[str]
                ) -> Tuple[List[Optional[Dict[int, object]]], bool]:
    """Per input (its example value, None for a non-tensor), {dim: torch.export.Dim} for its
    symbolic dims, one Dim per symbol with the symbol's range; and whether any dim is dynamic.
    `what` names the inputs for the message refusing a dim that is an expression of others."""
    dims: Dict[str, object] = {}
    specs, dynamic = [], False
    for value, name in zip(example_values, what):
        spec = {}
        for d, size in enumerate(value.shape if isinstance(value, torch.Tensor) else ()):
            if not is_symbolic(size):
                continue
            if not size.node.expr.is_symbol:
                raise ValueError(f"input {name} dim {d} is {size.node.expr}, an expression of "
                                 f"other dims; ember takes dynamic dims that are symbols")
            key = str(size.node.expr)
            if key not in dims:
                low, high = _range_of(size)
                dims[key] = torch.export.Dim(f"s{len(dims)}", min=low, max=high)
            spec[d] = dims[key]
            dynamic = True
        specs.append(spec or None)
    return specs, dynamic


def _range_of(size: torch.SymInt) -> Tuple[Optional[int], Optional[int]]:
    """(min, max) of a size symbol in its shape environment (None: unbounded or unknown)."""
    bounds = size.node.shape_env.var_to_range.get(size.node.expr)
    if bounds is None:
        return None, None
    return _finite(bounds.lower), _finite(bounds.upper)


def _finite(bound) -> Optional[int]:
    """A sympy bound as an int, None when infinite (sympy's oo or torch's int_oo)."""
    if not getattr(bound, "is_finite", True) or getattr(bound, "is_infinite", False):
        return None
    try:
        return int(bound)
    except (TypeError, ValueError, OverflowError, AttributeError):  # sympy's way of saying oo
        return None
