"""CPU GEMM code generation: packed weights, kernel functions, vector micro-kernels, threads.

Each case compiles one `ember.gemm` through the host target's stage table (no graph passes;
ember-pack-weights ... ember-cpu-gemm-kernels ..., then LLVM and `cc`) into a shared library and
compares its output with numpy / torch on odd shapes: tails smaller than a register tile in M
and N, K = 1, dynamic M, every activation, bias and residual present or not, batched lhs,
several K blocks, serial code and 1-3 threads. Shapes are small so the file runs in well under
a minute; a dynamic-M library is compiled once and run for every M. That kernel functions
bufferize in place is checked on the IR, in lit_tests/passes/cpu-kernels-in-place.mlir.
"""
from __future__ import annotations

import ctypes
import math
import tempfile

import numpy as np
import pytest
import torch

from compare import assert_close
from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.backends.cpu.gemm_schedule import choose_schedule
from ember.backends.cpu.microkernel import CpuTraits
from ember.kit.packed_panels import pack_panels
from ember.targets import get_target
from ember.backends.base import CompileJob
from ember.dialect import new_context
from ember.compiler import CompileOptions, generate_code, parse_module
from ember.runtime.descriptors import describe, pack

ACTIVATIONS = {
    "none": lambda x: x,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "silu": torch.nn.functional.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def _tensor(shape) -> str:
    return "tensor<" + "x".join("?" if d is None else str(d) for d in shape) + "xf32>"


def gemm_source(lead, k, n, activation="none", bias=False, residual=False) -> str:
    """`@main(lhs [*lead, K], [residual]) -> gemm` with the weight (and bias) as ember.weight."""
    lhs, out = _tensor(list(lead) + [k]), _tensor(list(lead) + [n])
    args = [f"%a: {lhs}"] + ([f"%r: {out}"] if residual else [])
    body = [f'%w = "ember.weight"() {{name = "w"}} : () -> {_tensor([k, n])}']
    operands, types = ["%a", "%w"], [lhs, _tensor([k, n])]
    if bias:
        body.append(f'%b = "ember.weight"() {{name = "b"}} : () -> {_tensor([n])}')
        operands.append("%b")
        types.append(_tensor([n]))
    if residual:
        operands.append("%r")
        types.append(out)
    body.append(f'%y = "ember.gemm"({", ".join(operands)}) {{activation = "{activation}", '
                f'operandSegmentSizes = array<i32: 1, 1, {int(bias)}, {int(residual)}, 0, 0>}} : '
                f'({", ".join(types)}) -> {out}')
    lines = "\n  ".join(body)
    return f"func.func @main({', '.join(args)}) -> {out} {{\n  {lines}\n  return %y : {out}\n}}"


class CompiledGemm:
    """One compiled GEMM library: call with lhs (and residual), get the output array."""

    def __init__(self, lead, k, n, activation="none", bias=False, residual=False, *,
                 kernel_options=None, target_options=None, seed=0):
        rng = np.random.default_rng(seed)
        self.k, self.n, self.activation = k, n, activation
        self.w = rng.standard_normal((k, n), dtype=np.float32) / math.sqrt(k)
        self.b = rng.standard_normal(n, dtype=np.float32) if bias else None
        self.residual = residual
        weights = {"w": self.w} if self.b is None else {"w": self.w, "b": self.b}
        options = CompileOptions(target=get_target("host", **(target_options or {})),
                                 graph_pipeline="",
                                 pass_options={"ember-cpu-gemm-kernels": kernel_options or {}})
        module, ctx = parse_module(gemm_source(lead, k, n, activation, bias, residual),
                                   weights, options.target)
        self.workdir = tempfile.mkdtemp(prefix="ember-gemm-test-")
        result = generate_code(module, ctx, options,
                               CompileJob(self.workdir, 1 + residual, 1, num_weights=0))
        self.constants = [ctx.weights.get(name) for name in ctx.bound_weights["main"]]
        self.library = ctypes.CDLL(result.files["model.so"])

    def set_threads(self, count: int) -> None:
        assert self.library.ember_set_num_threads(count) == 0

    def __call__(self, a, r=None):
        out = np.full(a.shape[:-1] + (self.n,), np.nan, dtype=np.float32)
        arrays = [a] + ([r] if self.residual else []) + self.constants + [out]
        descriptors = [describe(x.ctypes.data, x.shape) for x in arrays]
        self.library.ember_entry(pack(descriptors), None)  # no fault record: the stub's own
        return out

    def reference(self, a, r=None):
        """The GEMM and its epilogue in float64, rounded to float32 once at the end."""
        y = torch.from_numpy(a.astype(np.float64)) @ torch.from_numpy(self.w.astype(np.float64))
        if self.b is not None:
            y = y + torch.from_numpy(self.b.astype(np.float64))
        y = ACTIVATIONS[self.activation](y)
        if r is not None:
            y = y + torch.from_numpy(r.astype(np.float64))
        return y.float().numpy()

    def check(self, lead, *, scale=1.0, seed=1):
        rng = np.random.default_rng(seed)
        a = (rng.standard_normal(tuple(lead) + (self.k,), dtype=np.float32) * scale)
        r = rng.standard_normal(tuple(lead) + (self.n,), dtype=np.float32) \
            if self.residual else None
        assert_close(self(a, r), self.reference(a, r),
                     what=f"lead={lead} K={self.k} N={self.n} act={self.activation}")


# ----------------------------------------------------------------------------- layout, schedule
def test_pack_panels_layout():
    rhs = np.arange(3 * 37, dtype=np.float32).reshape(3, 37)
    packed = pack_panels(rhs, 16)
    assert packed.shape == (3, 3, 16)
    for k in range(3):
        for n in range(48):
            expected = rhs[k, n] if n < 37 else 0.0
            assert packed[n // 16, k, n % 16] == expected


def test_kernel_spec_roundtrip():
    with new_context():
        for spec in (GemmKernelSpec(m=None, n=17, k=3, nr=16, activation="gelu", bias=True),
                     GemmKernelSpec(m=7, n=2048, k=511, nr=32, residual=True),
                     GemmKernelSpec(m=None, n=9, k=27, nr=16, batch=-1, rhs_packed=False,
                                    patches=(6, 6, 3, 3, 3, 1, 1, 1, 1))):
            assert GemmKernelSpec.from_attr(spec.attr()) == spec
        # Fields at their defaults that older attributes lack stay out of the attribute.
        assert str(GemmKernelSpec(m=None, n=20, k=8, nr=16).attr()) == \
            '{activation = "none", bias = false, k = 8 : i64, m = -1 : i64, n = 20 : i64, ' \
            'nr = 16 : i64, residual = false}'


@pytest.mark.parametrize("lanes,registers", [(16, 32), (8, 16), (4, 32)])
def test_schedule_fits_registers(lanes, registers):
    traits = CpuTraits(lanes=lanes, registers=registers, cores=2)
    spec = GemmKernelSpec(m=None, n=1000, k=300, nr=2 * lanes)
    s = choose_schedule(spec, traits)
    assert s.mr * s.vectors + s.vectors + 1 <= registers
    assert s.nr % s.lanes == 0 and 1 <= s.kc <= 300 and s.mc % s.mr == 0


@pytest.mark.parametrize("cpu,lanes", [("haswell", 8), ("znver4", 16), ("skylake-avx512", 16)])
def test_target_vector_shape(cpu, lanes):
    """A target named by CPU (no feature string) still gets that CPU's vector width."""
    info = get_target("host", cpu=cpu).info
    assert info.vector_lanes == lanes and info.vector_registers == (32 if lanes == 16 else 16)


# ----------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("k,n", [(1, 1), (3, 17), (511, 100), (64, 2048)])
def test_shapes_dynamic_m(k, n):
    gemm = CompiledGemm([None], k, n, "none", bias=True, residual=True)
    for m in (1, 7, 33, 1000):
        gemm.check([m])


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_activations(activation):
    gemm = CompiledGemm([None], 19, 37, activation, bias=True)
    for m in (1, 15, 33):
        gemm.check([m], scale=4.0)      # pre-activations span about [-30, 30]: clamps, tails


@pytest.mark.parametrize("bias,residual", [(False, False), (True, False), (False, True),
                                           (True, True)])
def test_epilogue_operands_static_m(bias, residual):
    gemm = CompiledGemm([33], 40, 50, "relu", bias=bias, residual=residual)
    gemm.check([33])


@pytest.mark.parametrize("m", [1, 7])
def test_static_small_m(m):
    CompiledGemm([m], 24, 33, "silu", bias=True).check([m])


def test_batched_lhs():
    gemm = CompiledGemm([2, None], 12, 20, "tanh", bias=True, residual=True)
    for m in (1, 5):
        gemm.check([2, m])


def test_several_k_blocks_and_m_blocks():
    """KC < K (accumulators stored and reloaded between K blocks, epilogue once at the end)
    and MC < M (several row blocks per thread)."""
    gemm = CompiledGemm([None], 100, 70, "gelu", bias=True, residual=True,
                        kernel_options={"kc": 24, "mc": 12, "mr": 6, "unroll": 3})
    for m in (1, 13, 50):
        gemm.check([m])


def test_unpacked_a_and_avx2_width():
    gemm = CompiledGemm([None], 33, 45, "sigmoid", bias=True,
                        kernel_options={"pack_a": "false", "lanes": 8},
                        target_options={"vector_bits": "256"})
    for m in (3, 40):
        gemm.check([m])


def test_serial_code():
    gemm = CompiledGemm([None], 30, 70, "relu", bias=True, target_options={"openmp": "off"})
    gemm.check([45])


def test_thread_counts():
    """Rows split between threads (M large) or panels (M small), for 1-3 threads."""
    gemm = CompiledGemm([None], 16, 200, "none", residual=True)
    for threads in (1, 2, 3):
        gemm.set_threads(threads)
        for m in (2, 150, 301):
            gemm.check([m])
