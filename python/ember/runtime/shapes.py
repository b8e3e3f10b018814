"""Shapes at run time: binding the manifest's symbols from the actual input shapes.

The compiled code trusts the sizes in its memref descriptors, so every input dimension is checked
here against the manifest (static dims exactly, symbolic dims consistently across inputs and
within the declared ranges) before any pointer reaches C. The bindings then give the actual
output shapes.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ember.runtime.errors import ArgumentError
from ember.symbolic import Dim, SymbolicError, format_shape
from ember.tensor_spec import Shape, TensorSpec


def bind_symbols(specs: Sequence[TensorSpec], shapes: Sequence[Shape],
                 ranges: Mapping[str, Tuple[int, int]]) -> Dict[str, int]:
    """The value of every symbol, from the actual `shapes` of the inputs `specs`.

    A bare symbol dim binds its symbol; a dim such as "2*s0" whose only unbound symbol enters
    affinely is solved for it (torch.export's derived dims). Then every dim must equal its
    expression and every symbol lie in its range; otherwise ArgumentError names the input, the
    dim, what was expected and what was given.
    """
    env: Dict[str, int] = {}
    origin: Dict[str, str] = {}
    for spec, shape in zip(specs, shapes):
        if len(shape) != len(spec.dims):
            raise ArgumentError(f"{spec.label}: expected rank {len(spec.dims)} "
                                f"(shape {format_shape(spec.dims)}), got shape {list(shape)}")
        for i, (dim, size) in enumerate(zip(spec.dims, shape)):
            if dim.symbol is not None and dim.symbol not in env:
                env[dim.symbol], origin[dim.symbol] = size, f"{spec.label} dim {i}"
    _solve_derived(specs, shapes, env, origin)
    unbound = sorted(set(ranges) - set(env))
    if unbound:
        raise ArgumentError(f"cannot infer symbols {unbound} from the input shapes "
                            f"{[list(s) for s in shapes]}")
    for spec, shape in zip(specs, shapes):
        for i, (dim, size) in enumerate(zip(spec.dims, shape)):
            expected = dim.evaluate(env)
            if expected != size:
                how = "" if dim.constant is not None else \
                    f" = {dim.text} with " + ", ".join(
                        f"{s}={env[s]} (from {origin[s]})" for s in sorted(dim.symbols))
                raise ArgumentError(f"{spec.label}: dim {i} must be {expected}{how}, got {size} "
                                    f"(shape {list(shape)}, declared {format_shape(spec.dims)})")
    for symbol, value in env.items():
        lo, hi = ranges[symbol]
        if not lo <= value <= hi:
            raise ArgumentError(f"{origin[symbol]}: {symbol} = {value} is outside the range "
                                f"[{lo}, {hi}] the model was compiled for")
    return env


def _solve_derived(specs, shapes, env: Dict[str, int], origin: Dict[str, str]) -> None:
    """Binds symbols that occur only inside expressions, one affine dim at a time."""
    progress = True
    while progress:
        progress = False
        for spec, shape in zip(specs, shapes):
            for i, (dim, size) in enumerate(zip(spec.dims, shape)):
                unknown = dim.symbols - env.keys()
                if len(unknown) == 1:
                    (symbol,) = unknown
                    value = _solve_affine(dim, size, env, symbol)
                    if value is not None:
                        env[symbol], origin[symbol] = value, f"{spec.label} dim {i} ({dim.text})"
                        progress = True


def _solve_affine(dim: Dim, size: int, env: Mapping[str, int], symbol: str) -> Optional[int]:
    """`symbol` such that `dim` == `size`, if `dim` is affine in it (a*symbol + b), else None.

    The probe at three points is only a heuristic for affinity; `bind_symbols` re-evaluates
    every dim afterwards, so a wrong guess is reported, never trusted.
    """
    try:
        b, a_plus_b, two_a_plus_b = (dim.evaluate({**env, symbol: v}) for v in (0, 1, 2))
    except SymbolicError:
        return None
    a = a_plus_b - b
    if a == 0 or two_a_plus_b != 2 * a + b or (size - b) % a:
        return None
    return (size - b) // a


def max_input_shapes(specs: Sequence[TensorSpec], ranges: Mapping[str, Tuple[int, int]],
                     symbols: Optional[Mapping[str, int]] = None) -> List[Shape]:
    """Input shapes with each symbol at `symbols[name]`, or at its maximum where not given."""
    env = {name: hi for name, (_, hi) in ranges.items()}
    env.update(symbols or {})
    return [spec.shape(env) for spec in specs]
