"""What a GEMM kernel function computes, as a frozen dataclass that is also its attribute.

C[M, N] = residual + act(A[M, K] @ B + bias), the contract between the pass that outlines a
GEMM into a kernel function and the generator that later writes its body. The CPU spec
(ember.kit.gemm_kernel_spec) adds the packed and implicit-im2col layouts to these
fields, the GPU spec (ember.backends.gpu.simt_gemm) nothing; both are encoded by the one codec
of ember.kit.attr_codec.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from mlir import ir

from ember.kit.attr_codec import from_attr, to_attr


@dataclass(frozen=True)
class GemmSpec:
    """C[M, N] = residual + act(A[M, K] @ B + bias); `m` is None when M is dynamic."""
    m: Optional[int]
    n: int
    k: int
    activation: str = "none"
    bias: bool = False
    residual: bool = False

    def arg_names(self) -> List[str]:
        """The kernel function's arguments, in order: A, B, [bias], [residual], C (written)."""
        return ["lhs", "rhs"] + ["bias"] * self.bias + ["residual"] * self.residual + ["out"]

    def attr(self) -> ir.DictAttr:
        return to_attr(self)

    @classmethod
    def from_attr(cls, attr):
        return from_attr(cls, attr)
