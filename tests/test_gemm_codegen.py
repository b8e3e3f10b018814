"""CPU GEMM code generation: packed weights, kernel functions, vector micro-kernels, threads.

Each case compiles one `ember.gemm` through the host target's lowering pipeline
(ember-pack-weights ... ember-host-to-llvm, then LLVM and `cc`) into a shared library and
compares its output with numpy / torch on odd shapes: tails smaller than a register tile in M
and N, K = 1, dynamic M, every activation, bias and residual present or not, batched lhs,
several K blocks, serial code and 1-3 threads. Shapes are small so the file runs in well under
a minute; a dynamic-M library is compiled once and run for every M.
"""
from __future__ import annotations

import ctypes
import math
import tempfile

import numpy as np
import pytest
import torch

from mlir import ir

from ember.backends.cpu import microkernel
from ember.backends.cpu.gemm_kernel_spec import GemmKernelSpec
from ember.backends.cpu.gemm_schedule import choose_schedule
from ember.backends.cpu.microkernel import CpuTraits
from ember.backends.cpu.packed_panels import pack_panels
from ember.dialect import new_context
from ember.pipeline import PassContext
from ember.pipeline.pipeline import Pipeline
from ember.runtime.descriptors import describe, pack
from ember.backends import get_target
from ember.backends.base import CompileJob
from ember.weights import WeightTable

ACTIVATIONS = {
    "none": lambda x: x,
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "silu": torch.nn.functional.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}

LOWERING = ("ember-pack-weights,ember-lower-to-linalg,canonicalize,cse,ember-bind-weights,"
            "ember-host-to-llvm")


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
                f'operandSegmentSizes = array<i32: 1, 1, {int(bias)}, {int(residual)}>}} : '
                f'({", ".join(types)}) -> {out}')
    lines = "\n  ".join(body)
    return f"func.func @main({', '.join(args)}) -> {out} {{\n  {lines}\n  return %y : {out}\n}}"


class CompiledGemm:
    """One compiled GEMM library: call with lhs (and residual), get the output array."""

    def __init__(self, lead, k, n, activation="none", bias=False, residual=False, *,
                 host_options="", target_options=None, seed=0):
        rng = np.random.default_rng(seed)
        self.k, self.n, self.activation = k, n, activation
        self.w = rng.standard_normal((k, n), dtype=np.float32) / math.sqrt(k)
        self.b = rng.standard_normal(n, dtype=np.float32) if bias else None
        self.residual = residual
        weights = {"w": self.w} if self.b is None else {"w": self.w, "b": self.b}
        context = new_context()
        with context:
            module = ir.Module.parse(gemm_source(lead, k, n, activation, bias, residual))
        target = get_target("host", **(target_options or {}))
        pass_ctx = PassContext(weights=WeightTable(weights), target=target)
        lowering = LOWERING + (f"{{{host_options}}}" if host_options else "")
        Pipeline.parse(lowering, context).run(module, pass_ctx)
        names = pass_ctx.bound_weights["main"]
        self.constants = [pass_ctx.weights.get(name) for name in names]
        self.workdir = tempfile.mkdtemp(prefix="ember-gemm-test-")
        job = CompileJob(self.workdir, 1 + residual, 1, len(names))
        result = target.codegen(module, job)
        self.library = ctypes.CDLL(result.files["model.so"])

    def set_threads(self, count: int) -> None:
        assert self.library.ember_set_num_threads(count) == 0

    def __call__(self, a, r=None):
        out = np.full(a.shape[:-1] + (self.n,), np.nan, dtype=np.float32)
        arrays = [a] + ([r] if self.residual else []) + self.constants + [out]
        descriptors = [describe(x.ctypes.data, x.shape) for x in arrays]
        self.library.ember_entry(pack(descriptors))
        return out

    def reference(self, a, r=None):
        y = torch.from_numpy(a.astype(np.float64)) @ torch.from_numpy(self.w.astype(np.float64))
        if self.b is not None:
            y = y + torch.from_numpy(self.b.astype(np.float64))
        y = ACTIVATIONS[self.activation](y)
        if r is not None:
            y = y + torch.from_numpy(r.astype(np.float64))
        return y.numpy()

    def check(self, lead, *, scale=1.0, seed=1):
        rng = np.random.default_rng(seed)
        a = (rng.standard_normal(tuple(lead) + (self.k,), dtype=np.float32) * scale)
        r = rng.standard_normal(tuple(lead) + (self.n,), dtype=np.float32) \
            if self.residual else None
        out, ref = self(a, r), self.reference(a, r)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()),
                                   err_msg=f"lead={lead} K={self.k} N={self.n} "
                                           f"act={self.activation}")


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
    traits = get_target("host", cpu=cpu).cpu_traits()
    assert traits.lanes == lanes and traits.registers == (32 if lanes == 16 else 16)


def test_kernel_bufferizes_in_place():
    """The kernel function's result is its `out` argument: after bufferization it returns
    nothing and the caller passes the buffer it reads afterwards."""
    from ember.backends.cpu.host_to_llvm import BUFFERIZE, mark_kernel_destinations
    from mlir.passmanager import PassManager
    context = new_context()
    with context:
        module = ir.Module.parse(gemm_source([None], 8, 20, "relu", bias=True))
    Pipeline.parse("ember-pack-weights{panel=16},ember-lower-to-linalg,ember-bind-weights",
                   context).run(module, PassContext())
    with context:
        mark_kernel_destinations(module)
        PassManager.parse(f"builtin.module({','.join(BUFFERIZE)})").run(module.operation)
        kernels = microkernel.kernel_functions(module)
        assert len(kernels) == 1
        fn_type = ir.FunctionType(ir.TypeAttr(kernels[0].attributes["function_type"]).value)
        assert not fn_type.results and len(fn_type.inputs) == 4
    text = str(module)
    assert "call @ember_gemm_0(" in text and ") -> ()" in text


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
                        host_options="gemm=kc=24,mc=12,mr=6,unroll=3")
    for m in (1, 13, 50):
        gemm.check([m])


def test_unpacked_a_and_avx2_width():
    gemm = CompiledGemm([None], 33, 45, "sigmoid", bias=True,
                        host_options="gemm=pack-a=false,lanes=8",
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
