"""ember-gpu-outline-gemms: each weight-shaped ember.gemm becomes a call of a GEMM kernel function.

GPU targets give GEMMs (with their fused bias / activation / residual) a dedicated tiled kernel
(ember.backends.gpu.simt_gemm) instead of the generic loop mapping. This pass, run before
ember-lower-to-linalg, turns every `ember.gemm` with a 2-D rhs into
`func.call @ember_gpu_gemm_<i>(lhs, rhs, [bias], [residual])` on 2-D tensors (leading dims of lhs
and residual collapsed into M, the result expanded back). The private function carries an
`ember.gpu_gemm` spec and keeps the 2-D ember.gemm as its reference body, which lowers like any
other; after bufferization ember-gpu-launch-gemms replaces each call by the tiled kernel. Identical
GEMMs share one function.

GPU code is planned statically (one workspace, fixed launch grids), so this pass also refuses a
module with any dynamic dim, asking for static example shapes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from mlir import ir
from mlir.dialects import func, tensor

from ember.backends.gpu.simt_gemm import GEMM_ATTR, GEMM_PREFIX, GpuGemmSpec
from ember.dialect.ops import Gemm
from ember.kit.ir_queries import walk_ops
from ember.kit.private_functions import kernel_function
from ember.pipeline.pass_base import EmberPass, PassContext, register


class DynamicShapeError(ValueError):
    """A GPU target was given a model with dynamic dims."""


def require_static_shapes(module) -> None:
    """Raises DynamicShapeError naming the first value with a dynamic dim."""
    for fn in walk_ops(module.operation, ["func.func"]):
        fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
        for kind, types in (("argument", fn_type.inputs), ("result", fn_type.results)):
            for i, t in enumerate(types):
                if isinstance(t, ir.ShapedType) and not ir.ShapedType(t).has_static_shape:
                    name = ir.StringAttr(fn.attributes["sym_name"]).value
                    raise DynamicShapeError(
                        f"GPU targets need static shapes, but @{name} {kind} {i} has type {t}; "
                        f"compile with static example shapes (no dynamic_shapes) and recompile "
                        f"for each shape you need")


def _rows_and_last(rank: int) -> ir.ArrayAttr:
    """The reassociation [[0, .., rank - 2], [rank - 1]] between [..., X] and [M, X]."""
    i64 = ir.IntegerType.get_signless(64)
    return ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(i64, d)
                                               for d in range(rank - 1)]),
                             ir.ArrayAttr.get([ir.IntegerAttr.get(i64, rank - 1)])])


def _collapse(value, m: int):
    """`value` [..., X] as [m, X] (identity for rank 2)."""
    t = ir.RankedTensorType(value.type)
    if t.rank == 2:
        return value
    return tensor.collapse_shape(ir.RankedTensorType.get([m, t.shape[-1]], t.element_type),
                                 value, _rows_and_last(t.rank))


def _kernel(module, spec: GpuGemmSpec, arg_types, result_type) -> str:
    """The name of the kernel function for `spec` and these types, created on first use."""
    def body(arguments):
        args = dict(zip(spec.arg_names(), arguments))
        return [Gemm.build(args["lhs"], args["rhs"], result_type, bias=args.get("bias"),
                           residual=args.get("residual"), activation=spec.activation)]
    return kernel_function(module.body, GEMM_ATTR, spec.attr(),
                           ir.FunctionType.get(arg_types, [result_type]), GEMM_PREFIX, body)


def outline_gemm(module, op) -> None:
    gemm = Gemm(op)
    lhs, rhs, bias, residual = gemm.lhs, gemm.rhs, gemm.bias, gemm.residual
    if ir.RankedTensorType(rhs.type).rank != 2 or gemm.low_bit:
        # batched rhs, or low-bit codes (the tiled kernels read float weights): left to the
        # generic lowering, which computes the f32 weight from the codes first
        return
    out_type = ir.RankedTensorType(gemm.result.type)
    k, n = ir.RankedTensorType(rhs.type).shape
    m = math.prod(ir.RankedTensorType(lhs.type).shape[:-1])
    spec = GpuGemmSpec(m=m, n=n, k=k, activation=gemm.activation,
                       bias=bias is not None, residual=residual is not None)
    with ir.InsertionPoint(op), op.location:
        operands = [_collapse(lhs, m), rhs] + [v for v in (bias,) if v is not None] + \
            [_collapse(v, m) for v in (residual,) if v is not None]
        out2 = ir.RankedTensorType.get([m, n], out_type.element_type)
        callee = _kernel(module, spec, [v.type for v in operands], out2)
        result = func.call([out2], callee, operands)
        if out_type.rank != 2:
            result = tensor.expand_shape(out_type, result, _rows_and_last(out_type.rank), [],
                                         ir.DenseI64ArrayAttr.get(list(out_type.shape)))
    op.results[0].replace_all_uses_with(result)
    op.erase()


@register
@dataclass
class GpuOutlineGemms(EmberPass):
    """Turns ember.gemm ops with a 2-D rhs into calls of GPU GEMM kernel functions."""
    name = "ember-gpu-outline-gemms"

    def run(self, module, ctx: PassContext) -> None:
        require_static_shapes(module)
        for fn in walk_ops(module.operation, ["func.func"]):
            if GEMM_ATTR in fn.attributes:
                continue                          # a kernel's own reference body
            for op in walk_ops(fn, [Gemm.op_name]):
                outline_gemm(module, op)
