"""The operator suite's cases: PyTorch's OpInfo database, as modules a user would write.

A case is a plain dict (it travels to the worker processes as JSON):
`{"id", "op", "variant", "dtype", "sample", "mode"}`. `enumerate_cases` makes them from the
OpInfos alone (cheap: no sample is built); `build_case` builds, in a worker, the module and the
inputs: sample `sample` of `op.sample_inputs("cpu", dtype)` (seeded, so every worker builds the
same tensors), with every tensor in the sample as a module input and every other value (ints,
lists, dims, strings) a constant of the module.

Modes: `static` (shapes as given), `dynamic` (every input dim marked `Dim.AUTO` with a bound, so
torch.export keeps dynamic whatever the op allows) and `inplace` (the op's in-place variant,
e.g. `add_`, applied to a copy of the first input inside the module: a mutating op in the
graph; ember compiles inference graphs, so a module mutating its *inputs* is out of scope).

`compare(actual, expected, unchecked)` is tests/compare.py's rule, plus complex outputs
(compared as their real and imaginary parts); for random ops and uninitialized results
(`eager_reference` says which) only count, shapes and dtypes are compared.
"""
from __future__ import annotations

import itertools
import re
from typing import Dict, List, Optional, Sequence

import torch
import torch.utils._pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

#: The suite's dtype columns; of each group, the first dtype the op supports is used (int64,
#: else int32, ...).
DTYPE_GROUPS = (
    ("float32",),
    ("float16",),
    ("bfloat16",),
    ("int64", "int32", "int16", "int8", "uint8", "bool"),
    ("complex64",),
)
#: Each dynamic dim may grow to this multiple of its example size (plus a margin).
DYNAMIC_GROWTH = 4


class NotApplicable(Exception):
    """The case cannot be built or has no reference (no such sample, eager itself raises, the
    op returns no tensor): it is skipped, not counted against either path."""


_OPS: Optional[Dict[tuple, object]] = None


def op_infos() -> Dict[tuple, object]:
    """(name, variant_test_name) -> OpInfo, for every entry of PyTorch's op_db."""
    global _OPS
    if _OPS is None:
        from torch.testing._internal.common_methods_invocations import op_db
        _OPS = {(op.name, op.variant_test_name): op for op in op_db}
    return _OPS


def _supported(op, names: Sequence[str]) -> Optional[str]:
    dtypes = op.supported_dtypes("cpu")
    return next((n for n in names if getattr(torch, n) in dtypes), None)


def enumerate_cases(patterns: Sequence[str] = (), limit: Optional[int] = None,
                    fp32_samples: int = 1) -> List[dict]:
    """All cases, op by op in op_db order; `patterns` (regexes matched against the op's full
    name, e.g. `nn.functional.conv2d` or `norm.fro`) keep the ops any one matches; `limit`
    keeps the first N ops; `fp32_samples` float32 samples per op (one for other dtypes)."""
    cases, ops = [], 0
    for (name, variant), op in op_infos().items():
        full = f"{name}.{variant}" if variant else name
        if patterns and not any(re.search(p, full) for p in patterns):
            continue
        if limit is not None and ops >= limit:
            break
        ops += 1

        def add(dtype, sample, mode):
            cases.append({"id": f"{full}|{dtype}|{sample}|{mode}", "op": name,
                          "variant": variant, "dtype": dtype, "sample": sample, "mode": mode})

        chosen = []
        for names in DTYPE_GROUPS:
            dtype = _supported(op, names)
            if dtype is not None:
                chosen.append(dtype)
                for i in range(fp32_samples if dtype == "float32" else 1):
                    add(dtype, i, "static")
        if chosen:  # float32 if the op has it, else its first dtype
            add(chosen[0], 0, "dynamic")
            if op.inplace_variant is not None:
                add(chosen[0], 0, "inplace")
    return cases


class OpModule(torch.nn.Module):
    """Calls one op on a sample; the sample's tensors are the inputs, the rest constants.
    Returns the tensors of the op's result, flattened (a module returns tensors only)."""

    def __init__(self, fn, leaves, spec, tensor_positions, inplace: bool):
        super().__init__()
        self.fn, self.spec, self.inplace = fn, spec, inplace
        self.leaves, self.tensor_positions = list(leaves), list(tensor_positions)

    def forward(self, *tensors):
        leaves = list(self.leaves)
        for position, tensor in zip(self.tensor_positions, tensors):
            leaves[position] = tensor
        if self.inplace:
            leaves[0] = leaves[0].clone()
        first, args, kwargs = pytree.tree_unflatten(leaves, self.spec)
        result = self.fn(first, *args, **kwargs)
        return tuple(t for t in pytree.tree_leaves(result) if isinstance(t, torch.Tensor))


def build_case(case: dict):
    """(module, inputs, dynamic_shapes) for `case`; raises NotApplicable."""
    op = op_infos()[(case["op"], case["variant"])]
    inplace = case["mode"] == "inplace"
    torch.manual_seed(0)
    samples = op.sample_inputs("cpu", getattr(torch, case["dtype"]), requires_grad=False)
    try:
        sample = next(itertools.islice(samples, case["sample"], None), None)
    finally:  # close it now: a generator closed later, by the GC, can land inside a trace
        getattr(samples, "close", lambda: None)()
    if sample is None:
        raise NotApplicable(f"the op has fewer than {case['sample'] + 1} samples")
    leaves, spec = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
    positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
    if inplace and 0 not in positions:
        raise NotApplicable("the sample's first argument is not a tensor")
    module = OpModule(op.inplace_variant if inplace else op.op, leaves, spec, positions,
                      inplace).eval()
    inputs = [leaves[i].detach().clone() for i in positions]
    dynamic = None
    if case["mode"] == "dynamic" and not inputs:
        raise NotApplicable("no tensor input to make dynamic")
    if case["mode"] == "dynamic":
        from torch.export import Dim
        dynamic = (tuple({d: Dim.AUTO(max=DYNAMIC_GROWTH * n + 16) for d, n in enumerate(t.shape)}
                         for t in inputs),)
    return module, inputs, dynamic


#: OpInfos whose result is uninitialized memory (eager's values mean nothing).
UNINITIALIZED = re.compile(r"(^|_)empty")


class _SeededOpSeen(TorchDispatchMode):
    """Notes whether any ATen op with the `nondeterministic_seeded` tag (rand, bernoulli,
    dropout, ...) runs. OpInfo's random ops reseed a fixed generator on every call, so their
    eager result does not change with the seed, yet no compiler reproduces its stream."""

    def __init__(self):
        super().__init__()
        self.seen = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if torch.Tag.nondeterministic_seeded in func.tags:
            self.seen = True
        return func(*args, **(kwargs or {}))


def run_eager(module, inputs, seed: int = 0) -> List[torch.Tensor]:
    torch.manual_seed(seed)
    with torch.no_grad():
        return list(module(*[t.clone() for t in inputs]))


def eager_reference(module, inputs, op_name: str):
    """(outputs, unchecked): eager's outputs, and why their values cannot be compared ("" if
    they can): a random op (one with a seeded ATen op, or whose result changes beyond the
    tolerance with the seed) or an uninitialized result (`empty*`); those cases check count, shapes, dtypes."""
    seeded = _SeededOpSeen()
    try:
        with seeded:
            first = run_eager(module, inputs, 0)
    except Exception as e:
        raise NotApplicable(f"eager raises {type(e).__name__}: {error_summary(e)}") from e
    if not first:
        raise NotApplicable("the op returns no tensor")
    if UNINITIALIZED.search(op_name):
        return first, "uninitialized result"
    second = run_eager(module, inputs, 1)
    if seeded.seen or not _close(second, first):
        return first, "random op"
    return first, ""


def _close(actual, expected) -> bool:
    """Whether two eager runs agree by the suite's rule (LAPACK-based ops can differ in the
    last bits between runs; that does not make them random)."""
    try:
        compare(actual, expected)
        return True
    except AssertionError:
        return False


def error_summary(error: BaseException, limit: int = 300) -> str:
    """The error's first line, continued while a line ends with ':' (a header whose content,
    e.g. the op that failed, is on the next line)."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()] or [""]
    text = lines[0]
    for line in lines[1:]:
        if not text.endswith(":") or len(text) >= limit:
            break
        text += " " + line
    return text[:limit]


def as_torch(value) -> torch.Tensor:
    """A torch tensor of an output (torch already, or numpy; ml_dtypes bfloat16 included)."""
    if isinstance(value, torch.Tensor):
        return value
    import numpy as np
    array = np.asarray(value)
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(array.copy())


def compare(actual: Sequence, expected: Sequence[torch.Tensor], unchecked: str = "") -> None:
    """Raises AssertionError naming the first mismatch (see the module doc for the rule);
    `unchecked` (eager_reference's reason) limits the check to count, shapes and dtypes."""
    from compare import assert_close
    actual = [as_torch(a) for a in actual]
    if unchecked:
        got = [(tuple(a.shape), a.dtype) for a in actual]
        want = [(tuple(e.shape), e.dtype) for e in expected]
        assert got == want, f"{unchecked}: outputs {got} != {want}"
        return
    assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        if a.is_complex() and e.is_complex() and a.dtype == e.dtype:
            a, e = torch.view_as_real(a.resolve_conj()), torch.view_as_real(e.resolve_conj())
        assert_close(a, e, what=f"output {i}")
