"""The CPU GEMM kernel function: what it computes (`GemmKernelSpec`) and its signature.

The contract between the lowering (which creates kernel functions) and the CPU backend (which
generates their bodies), so it lives below both. Three passes meet at these functions, one stage each:
  ember-pack-weights      rewrites a weight rhs [K, N] into panels (ember.kit.packed_panels)
  ember-lower-to-linalg   turns a packed ember.gemm into a call of a private kernel function
                          whose body is a linalg reference and whose `ember.gemm_kernel`
                          attribute is its `GemmKernelSpec` (ember-cpu-contractions does the same
                          for run-time products)
  ember-cpu-gemm-kernels  (after bufferization) checks the function against its spec and
                          replaces its body by the micro-kernel's code
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

from mlir import ir

from ember.kit.packed_panels import packed_shape
from ember.kit.attr_codec import omitted_at_default
from ember.kit.gemm_spec import GemmSpec

#: Attribute on a kernel function: its GemmKernelSpec.
KERNEL_ATTR = "ember.gemm_kernel"
#: Name prefix of generated kernel functions.
KERNEL_PREFIX = "ember_gemm_"


@dataclass(frozen=True, kw_only=True)
class GemmKernelSpec(GemmSpec):
    """A CPU GEMM kernel function: C[M, N] = residual + act(A[M, K] @ B + bias), B packed in
    panels of `nr` columns (or row-major, see `rhs_packed`).

    The function's arguments are GemmSpec's (B packed), C written in place.
    `patches` = (Hp, Wp, C, KH, KW, SH, SW, DH, DW) when A is implicit im2col patches (see
    ember.gemm's lhs_patches): the A argument is then the padded NHWC input [N, Hp, Wp, C], and
    A[m, k] = input[m / (OH*OW), (m / OW % OH)*SH + kh*DH, (m % OW)*SW + kw*DW, c] with
    k = (kh*KW + kw)*C + c.

    An int8 kernel's `k` counts *words* of 4 consecutive int8 k values: A is bytes i8 [M, 4K]
    read a word at a time (with `patches`: the padded NHWC bytes, C a multiple of 4), B i32
    panels [ceil(N/NR), K, NR] of words. A low-bit B is i8 panels [ceil(N/NR), K, NR] (for i4
    [.., K/2, ..] bytes) with group scales and offsets f32 [ceil(N/NR), ceil(K/group), NR].
    """
    nr: int
    patches: Optional[Tuple[int, ...]] = omitted_at_default(None)
    #: Leading batch dim of A, B and C (one product per entry): 0 none, -1 dynamic, else its
    #: size. Batched kernels take B row-major.
    batch: int = omitted_at_default(0)
    #: B is the packed weight [ceil(N/NR), K, NR]; False: a row-major [(batch,) K, N] tensor
    #: computed at run time (attention's K^T and V), read in place with masked tail columns.
    rhs_packed: bool = omitted_at_default(True)
    #: A's and B's element type when it differs from C's: "f16" or "bf16" operands of a
    #: product summed into an f32 C (a 16-bit model's attention products), "i16" ones summed
    #: into an i32 C (an integer GEMM, always in `pairs`); "" the same.
    operands: str = omitted_at_default("")
    #: A bf16 (or i16) kernel whose B is packed as pairs (ember.gemm's rhs_pairs): `k` counts
    #: *words* of 2 consecutive k, A is bf16 [M, 2K] read a pair at a time, B i32 panels
    #: [ceil(N/NR), K, NR] of words (AMX-BF16's tdpbf16ps multiplies them; vpmaddwd i16 ones).
    pairs: bool = omitted_at_default(False)
    #: C is the padded NHWC tensor a convolution reads, [images, Hp, Wp, N], whose interior
    #: the rows fill: (OH, OW, top, left, Hp, Wp), row m the pixel (m / (OH*OW), top +
    #: m / OW % OH, left + m % OW) (its border is the caller's); () C is [M, N].
    out_padding: Tuple[int, ...] = omitted_at_default(())
    #: Likewise the residual: the interior of such a padded tensor; () it is [M, N].
    residual_padding: Tuple[int, ...] = omitted_at_default(())
    #: A patch lhs read from the interior of a padded input (its producer's out_padding):
    #: (top, left, OH, OW), the output grid's first input pixel and its size; () the grid
    #: starts at (0, 0) and its size follows from the input's.
    patch_origin: Tuple[int, ...] = omitted_at_default(())

    @property
    def integer(self) -> bool:
        """Whether this is an integer GEMM's kernel: i16 pairs summed into i32, no epilogue."""
        return self.operands == "i16"

    @property
    def tap_k(self) -> int:
        """k per filter tap of a patch kernel: its C channels (words of 4 in an int8 one, of 2
        in a bf16 pairs one)."""
        return self.patches[2] // 4 if self.int8 else \
            self.patches[2] // 2 if self.pairs else self.patches[2]

    @property
    def patch_output(self) -> Tuple[int, int]:
        """(OH, OW) of a patch lhs."""
        if self.patch_origin:
            return tuple(self.patch_origin[2:])
        hp, wp, _, kh, kw, sh, sw, dh, dw = self.patches
        return (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1

    @property
    def panels(self) -> int:
        return -(-self.n // self.nr)

    def memref_types(self, element: ir.Type) -> List[ir.Type]:
        """The kernel's argument types after bufferization (identity layouts)."""
        dyn = ir.ShapedType.get_dynamic_size()
        m = dyn if self.m is None else self.m
        if self.patches is None:
            lhs = [m, self.k]
        else:
            images = dyn if self.m is None else self.m // math.prod(self.patch_output)
            lhs = [images, *self.patches[:3]]
        lead = [] if not self.batch else [dyn if self.batch < 0 else self.batch]
        rhs = packed_shape(self.k, self.n, self.nr) if self.rhs_packed else \
            lead + [self.k, self.n]
        operand = ir.IntegerType.get_signless(32) if self.int8 else \
            ir.Type.parse(self.operands) if self.operands else element
        if self.int8 and self.patches is None:
            lhs = [m, 4 * self.k]
        if self.pairs:
            operand = ir.IntegerType.get_signless(32)
            if self.patches is None:
                lhs = [m, 2 * self.k]
        i8 = ir.IntegerType.get_signless(8)
        if self.low_bit:
            rhs = packed_shape(self.k // 2 if self.weights == "i4" else self.k, self.n, self.nr)
        lhs_element = i8 if self.int8 else ir.Type.parse(self.operands) if self.operands \
            else element
        types = [ir.MemRefType.get(lead + lhs, lhs_element),
                 ir.MemRefType.get(rhs, i8 if self.low_bit else
                                   ir.Type.parse(self.weights) if self.weights else operand)]
        if self.low_bit:
            groups = packed_shape(-(-self.k // self.group), self.n, self.nr)
            types += [ir.MemRefType.get(groups, element)] * (1 + self.offsets)
        if self.int8:
            types += [ir.MemRefType.get([m], element)] * (not self.lhs_scale) + \
                [ir.MemRefType.get([self.n], element), ir.MemRefType.get([self.n], operand)]
        if self.bias:
            types.append(ir.MemRefType.get([self.n], element))
        if self.residual:
            types.append(ir.MemRefType.get(self._rows_shape(lead + [m], self.residual_padding) +
                                           [self.n], i8 if self.residual_scale else element))
        types.append(ir.MemRefType.get(self._rows_shape(lead + [m], self.out_padding) +
                                       [self.n], ir.IntegerType.get_signless(8)
                                       if self.out_scale else element))
        return types

    def _rows_shape(self, rows: List[int], padding: Tuple[int, ...]) -> List[int]:
        """The shape of C's (or the residual's) rows: `rows`, or the padded NHWC tensor
        [images, Hp, Wp] whose interior holds them (out_padding)."""
        if not padding:
            return rows
        oh, ow, _, _, hp, wp = padding
        images = ir.ShapedType.get_dynamic_size() if self.m is None else self.m // (oh * ow)
        return [images, hp, wp]


def check_kernel_signature(fn, spec: GemmKernelSpec) -> Optional[str]:
    """Why `fn` cannot take a generated body (not bufferized in place, wrong types), or None."""
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    if fn_type.results:
        return ("kernel function still returns a value: bufferization did not write its "
                "result in place of the `out` argument (run drop-equivalent-buffer-results)")
    inputs = list(fn_type.inputs)
    if len(inputs) != len(spec.arg_names()):
        return f"kernel function has {len(inputs)} arguments, its spec expects " \
               f"{len(spec.arg_names())} ({', '.join(spec.arg_names())})"
    if not all(isinstance(t, ir.MemRefType) for t in inputs):
        return "kernel function arguments must be memrefs (run it after bufferization)"
    # The floats' type: C's (an int8 kernel writing codes computes in f32).
    element = ir.F32Type.get() if spec.out_scale else ir.MemRefType(inputs[-1]).element_type
    expected = spec.memref_types(element)
    for name, got, want in zip(spec.arg_names(), inputs, expected):
        if str(got) != str(want):
            return f"kernel argument '{name}' has type {got}, expected {want}"
    if spec.integer:
        return None if str(element) == "i32" else \
            f"an integer kernel (i16 operands) writes i32, got {element}"
    if not isinstance(element, (ir.F32Type, ir.F16Type, ir.BF16Type)) or \
            (spec.int8 and not isinstance(element, ir.F32Type)):
        return f"only f32, f16 and bf16 kernels (int8 ones: f32) are generated, got {element}"
    return None


def is_bufferized(fn) -> bool:
    """Whether kernel function `fn` takes memrefs (after bufferization), not tensors."""
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    return not any(isinstance(t, ir.RankedTensorType) for t in fn_type.inputs)


def kernel_functions(module) -> List[object]:
    """The func.func ops of `module` carrying a GEMM kernel spec (`KERNEL_ATTR`)."""
    return [op for op in module.body.operations
            if op.operation.name == "func.func" and KERNEL_ATTR in op.attributes]
