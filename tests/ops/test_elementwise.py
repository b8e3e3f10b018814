"""Elementwise arithmetic with numpy broadcasting, unary math, where; float, int and bool."""
from __future__ import annotations

import pytest
import torch

from .conftest import Fn

#: Pairs that broadcast: same shape, trailing vector, size-1 dims both sides, rank 0, odd sizes.
PAIRS = [((3, 5), (3, 5)), ((2, 3, 7), (7,)), ((4, 1, 5), (3, 1)), ((2, 3), ()),
         ((1, 9), (5, 1))]


def _pair_inputs(positive_rhs: bool = False):
    inputs = []
    for a, b in PAIRS:
        rhs = torch.randn(b)
        inputs += [torch.randn(a) * 2, rhs.abs() + 0.5 if positive_rhs else rhs]
    return inputs


def _pairwise(op):
    """A module applying `op` to consecutive input pairs."""
    return Fn(lambda self, *xs: tuple(op(xs[i], xs[i + 1]) for i in range(0, len(xs), 2)))


BINARY = [
    ("add", torch.add, "binary:add"),
    ("sub", torch.sub, "binary:sub"),
    ("mul", torch.mul, "binary:mul"),
    ("div", torch.div, "binary:div"),
    ("max", torch.maximum, "binary:max"),
    ("min", torch.minimum, "binary:min"),
]


@pytest.mark.parametrize("op,expect", [
    pytest.param(op, expect, id=row, marks=pytest.mark.covers(row)) for row, op, expect in BINARY])
def test_binary_broadcasting(check, op, expect):
    check(_pairwise(op), _pair_inputs(positive_rhs=op is torch.div), expect=[expect])


@pytest.mark.covers("add", "sub", "mul", "div")
def test_binary_scalars(check):
    """Python scalars and alpha: x + 2, x - 0.5, 3 * x, x / 4, add/sub with alpha, rsub."""
    model = Fn(lambda self, x, y: (x + 2, x - 0.5, 3 * x, x / 4, torch.add(x, y, alpha=2),
                                   torch.sub(x, y, alpha=0.5), 1 - x, 2 / (x.abs() + 1)))
    check(model, [torch.randn(3, 5), torch.randn(5)], expect=["binary:add", "binary:mul"])


@pytest.mark.covers("pow")
def test_pow(check):
    model = Fn(lambda self, x, y: (x ** 2, x.abs() ** 0.5, torch.pow(x.abs() + 0.1, y),
                                   x ** 3, torch.pow(2.0, y)))
    check(model, [torch.randn(3, 7), torch.randn(7)], expect=["binary:pow"])


UNARY = [
    ("neg", torch.neg, "unary:neg", False),
    ("sqrt", torch.sqrt, "unary:sqrt", True),
    ("rsqrt", torch.rsqrt, "unary:rsqrt", True),
    ("exp", torch.exp, "unary:exp", False),
    ("log", torch.log, "unary:log", True),
]


@pytest.mark.parametrize("op,expect,positive", [
    pytest.param(op, expect, positive, id=row, marks=pytest.mark.covers(row))
    for row, op, expect, positive in UNARY])
def test_unary(check, op, expect, positive):
    shapes = [(7,), (3, 5), (2, 1, 3, 4)]
    inputs = [torch.rand(s) * 4 + 0.1 if positive else torch.randn(s) * 2 for s in shapes]
    check(Fn(lambda self, *xs: tuple(op(x) for x in xs)), inputs, expect=[expect])


@pytest.mark.covers("where")
def test_where(check):
    """where with a computed condition, a bool input, scalars, and broadcasting."""
    model = Fn(lambda self, x, y, m: (torch.where(x > 0, x, y), torch.where(m, x, 0.0),
                                      torch.where(m[:1], 1.0, y), x.masked_fill(~m, -1.0)))
    check(model, [torch.randn(4, 5), torch.randn(5), torch.rand(4, 5) > 0.5])


@pytest.mark.covers("add", "mul", "sub", "max", "min", "where")
def test_integer_and_bool_tensors(check):
    """Integer and bool tensors take the fallback (ember ops are float only)."""
    model = Fn(lambda self, a, b, m: (a + b, a * 3 - b, torch.maximum(a, b), torch.minimum(a, b),
                                      m & (a > b), torch.where(m, a, b), (a + b).to(torch.int32)))
    check(model, [torch.randint(-9, 9, (3, 4)), torch.randint(-9, 9, (4,)),
                  torch.rand(3, 4) > 0.5])


@pytest.mark.covers("add", "mul", "exp", "where")
def test_elementwise_dynamic(check):
    """Broadcasting against a dynamic batch dim."""
    batch = torch.export.Dim("batch", min=1, max=128)
    model = Fn(lambda self, x, b: (torch.where(x > 0, torch.exp(-x) * b, x + b)))
    check(model, [torch.randn(3, 6), torch.randn(6)], expect=["unary:exp", "binary:mul"],
          dynamic_shapes={"xs": ({0: batch}, None)},
          more_inputs=[[torch.randn(1, 6), torch.randn(6)], [torch.randn(50, 6), torch.randn(6)]])


def _bf16_with_special_values(*shape, denormal: bool) -> torch.Tensor:
    """Random bf16 values plus a NaN, infinities, signed zeros and (with `denormal`) a
    denormal."""
    x = torch.randn(*shape).bfloat16().flatten()
    x[:6] = torch.tensor([float("nan"), float("inf"), -float("inf"), 3e-39 if denormal else 1.0,
                          0.0, -0.0])
    return x.reshape(shape)


@pytest.mark.covers("add", "mul", "div", "max")
@pytest.mark.parametrize("target,denormal", [("host", False), ("host:cpu=haswell", True)],
                         ids=["this-cpu", "cpu-without-bf16-conversion"])
def test_bf16_elementwise_rounds_like_pytorch(check, target, denormal):
    """bf16 arithmetic on any x86 CPU: on a CPU without a bf16 conversion instruction (haswell)
    LLVM rounds with calls to `__truncsfbf2`, which no library here defined, so the model did
    not load; cpu_support.c now defines it. Each op computes in f32 and rounds to nearest even
    once, as PyTorch's eager ops, so the bits agree exactly (tol=0), NaN, infinities and signed
    zeros included; so does an f32 -> bf16 cast. Denormal results too where ember rounds
    (haswell); a CPU with the instruction (AVX512-BF16) flushes them to zero, so this CPU's
    case has none."""
    model = Fn(lambda self, x, y, f: (x + y, x * y, x / (y.abs() + 1), torch.maximum(x, y),
                                      f.bfloat16(), (f * 3).bfloat16() - x))
    check(model, [_bf16_with_special_values(4, 33, denormal=denormal),
                  torch.randn(4, 33).bfloat16(), torch.randn(4, 33) * 1e3],
          target=target, tol=0.0)


@pytest.mark.covers("add", "mul")
@pytest.mark.parametrize("target", ["host", "host:cpu=haswell"], ids=["this-cpu", "haswell"])
def test_double_to_bf16_casts_like_pytorch(check, target):
    """A double cast to bf16 (random ops compute in double): LLVM calls `__truncdfbf2` even on
    CPUs that convert f32 to bf16, and the library failed to load without it. PyTorch's cast goes
    through float (two roundings), so 1 + 2^-8 + 2^-40 becomes 1.0; the bits agree (tol=0)."""
    d = torch.randn(4, 33, dtype=torch.float64) * 100
    d.view(-1)[:5] = torch.tensor([1 + 2**-8 + 2**-40, 1 + 3 * 2**-8 - 2**-40, float("nan"),
                                   -float("inf"), 1e300], dtype=torch.float64)
    check(Fn(lambda self, d: (d.bfloat16(), (d * 3).bfloat16())), [d], target=target, tol=0.0)


@pytest.mark.covers("add", "sub", "mul")
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_complex_tensors(check, dtype):
    """Complex inputs and outputs, and arithmetic on them: add, sub, mul (complex, real and
    Python-scalar factors), abs, real, imag, view_as_real / view_as_complex, torch.complex."""
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    model = Fn(lambda self, z, w, x: (z + w, z - w * 2, z * w, z * x + 1j, z.abs(),
                                      z.real * w.imag, torch.view_as_real(z * w),
                                      torch.view_as_complex(torch.view_as_real(w) * 2),
                                      torch.complex(x, x * 2)))
    check(model, [torch.randn(4, 3, dtype=dtype), torch.randn(4, 3, dtype=dtype),
                  torch.randn(3, dtype=real)])


@pytest.mark.covers("add", "sub", "mul", "div", "max", "min", "sum")
def test_uint8_tensors_are_unsigned(check):
    """uint8 inputs and outputs with unsigned semantics where signed bytes would differ (values
    above 127): wrapping add/sub/mul, true and floor division, remainder, comparisons with
    tensors and scalars, shifts, max/min, abs, sums (int64) and casts both ways."""
    a = torch.randint(0, 256, (4, 16), dtype=torch.uint8)
    a[0, :4] = torch.tensor([255, 200, 128, 129], dtype=torch.uint8)
    b = torch.randint(1, 256, (4, 16), dtype=torch.uint8)
    model = Fn(lambda self, a, b: (a + b, a - b, a * b, a / b, a // b, a % b, a % 7, a < b,
                                   a > 130, a >> 2, a << 1, torch.maximum(a, b), a.amax(1),
                                   a.abs(), a.sum(1), a.sum(), a.to(torch.int32), a.float(),
                                   (a.float() * 0.5).to(torch.uint8)))
    check(model, [a, b])


@pytest.mark.covers("exp")
def test_exp_overflows_to_inf(check):
    """exp past ln(FLT_MAX) is +inf, of -inf 0, of NaN NaN (ember's polynomial exp clamped its
    input and returned 2.4e38 for exp(89) and exp(inf)); vectors and their tails alike."""
    x = torch.tensor([0.5, 88.0, 89.0, 100.0, float("inf"), -float("inf"), -50.0,
                      float("nan")] * 5)
    check(Fn(lambda self, x: (torch.exp(x), torch.sigmoid(-x))), [x])
