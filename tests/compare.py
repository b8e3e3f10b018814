"""The one way tests compare ember's outputs with a reference (PyTorch eager, numpy, a formula).

`assert_close(actual, expected)` takes one output or a sequence of them (tensors or arrays) and
checks the count of outputs, then for each: shape, dtype, where the nans are, the infinities, and
the values. Integer and bool outputs must be equal; complex ones compare as their parts' float
dtype. Floating outputs are compared at the finite
positions with one rule, relative to the output's scale:

    max |actual - expected| <= tol * max(1, max |expected|)

where `tol` is TOLERANCE[dtype] unless a test passes `tol=` (and says why). A relative rule per
element would fail near zero, where compiled code that sums in another order (vector lanes,
threads, blocked GEMMs) or uses polynomial exp/erf differs by rounding of the larger terms; an
absolute one would depend on each model's output range.
"""
from __future__ import annotations

from typing import Optional

import torch

#: Default tolerance by dtype, relative to the output scale: float32 allows about 800 ulps of the
#: scale (reassociated sums, polynomial transcendentals), float64 is for references and models of
#: kernels computed in double, half types carry about three decimal digits.
TOLERANCE = {
    torch.float64: 1e-10,
    torch.float32: 1e-4,
    torch.float16: 1e-2,
    torch.bfloat16: 2e-2,
}


def _as_tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _as_cpu_tensor(x) -> torch.Tensor:
    return torch.as_tensor(x).detach().cpu()


def _assert_one_close(actual, expected, tol: Optional[float], what: str) -> None:
    actual, expected = _as_cpu_tensor(actual), _as_cpu_tensor(expected)
    assert actual.shape == expected.shape, \
        f"{what}: shape {list(actual.shape)} != {list(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    if expected.is_complex():  # real and imaginary parts, as their float dtype
        _assert_one_close(torch.view_as_real(actual), torch.view_as_real(expected), tol, what)
        return
    if not expected.is_floating_point():
        assert torch.equal(actual, expected), f"{what}: values differ"
        return
    if tol is None:
        assert expected.dtype in TOLERANCE, f"{what}: no default tolerance for {expected.dtype}"
        tol = TOLERANCE[expected.dtype]
    nan, inf = torch.isnan(expected), torch.isinf(expected)
    assert torch.equal(nan, torch.isnan(actual)), f"{what}: nan positions differ"
    assert torch.equal(inf, torch.isinf(actual)) and torch.equal(actual[inf], expected[inf]), \
        f"{what}: infinities differ"
    finite = ~(nan | inf)
    if not finite.any():
        return
    scale = max(1.0, expected[finite].abs().max().item())
    error = (actual[finite] - expected[finite]).abs().max().item()
    assert error <= tol * scale, f"{what}: max abs error {error:.3g} > {tol:g} * {scale:.3g}"


def assert_close(actual, expected, *, tol: Optional[float] = None, what: str = "output") -> None:
    """Asserts that `actual` (one output or a tuple/list of them) matches `expected` under the
    module's rule; `tol` overrides the dtype's default tolerance, `what` names the outputs in
    failure messages."""
    actual, expected = _as_tuple(actual), _as_tuple(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        _assert_one_close(a, e, tol, what if len(expected) == 1 else f"{what} {i}")
