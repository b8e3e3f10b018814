"""ember-gpu-outline-gemms: each weight-shaped GEMM becomes a call of a GEMM kernel function.

GPU targets give GEMMs (with their fused bias / activation / residual) a dedicated tiled kernel
(ember.backends.gpu.simt_gemm, mma_gemm) instead of the generic loop mapping. This pass, run
before ember-lower-to-linalg, turns every `ember.gemm` with a 2-D rhs into
`func.call @ember_gpu_gemm_<i>(lhs, rhs, [bias], [residual])` on 2-D tensors (leading dims of lhs
and residual collapsed into M, the result expanded back). The private function carries an
`ember.gpu_gemm` spec and a reference body that lowers like any other op; after bufferization
ember-gpu-launch-gemms replaces each call by the tiled kernel. Identical GEMMs share one function.

On a target with tensor cores (cuda) two quantized GEMMs are outlined for the mma.sync kernel
as well, each only where that kernel fits it (else they keep the generic lowering):
  ember.qgemm (int8, rhs an int8 weight [K, N], no patches): the activation codes (a dynamic
    lhs quantized per row here, ember.lowering.qgemm_to_linalg's scheme; a static lhs's codes
    as they are) and the weight stored transposed [N, K'], K' = K padded with zeros to a
    multiple of 16 (whole 16-byte copies), with the row scales, column scales and the
    compensation (zero point x column sums, computed once here);
  weight-only ember.gemm (low-bit codes, K and N multiples of 8): the f32 lhs rounded to f16
    (the kernel multiplies f16 on the tensor cores, summing in f32) and the codes, 4-bit ones
    two per byte ([K/2, N], the even k in the low nibble), with their group scales and offsets.

GPU code is planned statically (one workspace, fixed launch grids), so this pass also refuses a
module with any dynamic dim, asking for static example shapes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from mlir import ir
from mlir.dialects import func, tensor

from ember.backends.gpu.simt_gemm import GEMM_ATTR, GEMM_PREFIX, GpuGemmSpec
from ember.dialect.ops import Gemm, QGemm, Weight
from ember.dialect.ops.quantization import unsigned_codes
from ember.kit.epilogue import narrowed, widened
from ember.kit.ir_queries import walk_ops
from ember.kit.packed_panels import nibble_pairs
from ember.kit.private_functions import kernel_function
from ember.kit.structured import PARALLEL, empty_like, filled, generic, identity_map, pad
from ember.lowering.gemm_to_linalg import dequantized_weight
from ember.lowering.qgemm_to_linalg import dequantize_products, float_residual, integer_product, \
    quantize_rows
from ember.lowering.quantize_to_linalg import signless, with_storage_type
from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.quant.schemes import compensation, encoding
from ember.weights import WeightTable

#: An int8 kernel's K is padded to whole 16-byte copies.
INT8_K_MULTIPLE = 16
#: A low-bit kernel's K and N: whole 16-byte copies of f16.
LOW_BIT_MULTIPLE = 8


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


def _kernel(module, spec: GpuGemmSpec, arg_types, result_type, reference) -> str:
    """The name of the kernel function for `spec` and these types, created on first use with
    `reference(args)` (the arguments by name) as its body."""
    def body(arguments):
        return [reference(dict(zip(spec.arg_names(), arguments)))]
    return kernel_function(module.body, GEMM_ATTR, spec.attr(),
                           ir.FunctionType.get(arg_types, [result_type]), GEMM_PREFIX, body)


def _call(module, op, spec: GpuGemmSpec, operands, out_type, reference) -> None:
    """Replaces op's result by a call of spec's kernel function on `operands` (2-D) whose
    [M, N] result is expanded back to `out_type`'s shape."""
    m = spec.m
    out2 = ir.RankedTensorType.get([m, spec.n], signless_type(out_type.element_type))
    callee = _kernel(module, spec, [v.type for v in operands], out2, reference)
    result = func.call([out2], callee, operands)
    if out_type.rank != 2:
        result = tensor.expand_shape(
            ir.RankedTensorType.get(out_type.shape, out2.element_type), result,
            _rows_and_last(out_type.rank), [], ir.DenseI64ArrayAttr.get(list(out_type.shape)))
    result = with_storage_type(result, out_type)
    op.results[0].replace_all_uses_with(result)
    op.erase()


def signless_type(element: ir.Type) -> ir.Type:
    """ui8 -> i8 (kernels move bytes); other element types unchanged."""
    if isinstance(element, ir.IntegerType) and not ir.IntegerType(element).is_signless:
        return ir.IntegerType.get_signless(ir.IntegerType(element).width)
    return element


def _rows(op) -> int:
    return math.prod(ir.RankedTensorType(op.operands[0].type).shape[:-1])


def outline_gemm(module, op) -> None:
    """A float ember.gemm with a 2-D rhs -> its kernel call (the reference: a 2-D ember.gemm)."""
    gemm = Gemm(op)
    lhs, rhs, bias, residual = gemm.lhs, gemm.rhs, gemm.bias, gemm.residual
    k, n = ir.RankedTensorType(rhs.type).shape
    m = _rows(op)
    spec = GpuGemmSpec(m=m, n=n, k=k, activation=gemm.activation,
                       bias=bias is not None, residual=residual is not None)
    out2 = ir.RankedTensorType.get([m, n], ir.RankedTensorType(gemm.result.type).element_type)

    def reference(args):
        return Gemm.build(args["lhs"], args["rhs"], out2, bias=args.get("bias"),
                          residual=args.get("residual"), activation=spec.activation)
    with ir.InsertionPoint(op), op.location:
        operands = [_collapse(lhs, m), rhs] + [v for v in (bias,) if v is not None] + \
            [_collapse(v, m) for v in (residual,) if v is not None]
        _call(module, op, spec, operands, ir.RankedTensorType(gemm.result.type), reference)


def outline_low_bit_gemm(module, op, weights: WeightTable) -> None:
    """A weight-only ember.gemm on codes [K, N] (K and N multiples of 8, codes, scales and
    offsets weights) -> the tensor-core kernel's call on an f16 lhs; else left alone."""
    gemm = Gemm(op)
    parts = [Weight.defining(v) for v in (gemm.rhs, gemm.rhs_scale, gemm.rhs_offset)
             if v is not None]
    k, n = ir.RankedTensorType(gemm.rhs.type).shape
    if gemm.rhs_panel is not None or None in parts or k % LOW_BIT_MULTIPLE or \
            n % LOW_BIT_MULTIPLE:
        return
    m, bits = _rows(op), gemm.rhs_bits
    spec = GpuGemmSpec(m=m, n=n, k=k, activation=gemm.activation, bias=gemm.bias is not None,
                       residual=gemm.residual is not None, weights=f"i{bits}",
                       group=gemm.rhs_group, offsets=gemm.rhs_offset is not None)
    f16, f32 = ir.F16Type.get(), ir.F32Type.get()
    out2 = ir.RankedTensorType.get([m, n], f32)

    def reference(args):
        weight = dequantized_weight(args["rhs"], args["rhs_scale"], args.get("rhs_offset"),
                                    bits, spec.group, k, pairs=bits == 4)
        return Gemm.build(_converted(args["lhs"], f32), weight, out2, bias=args.get("bias"),
                          residual=args.get("residual"), activation=spec.activation)
    with ir.InsertionPoint(op), op.location:
        codes = gemm.rhs
        if bits == 4:
            codes = Weight.build(ir.RankedTensorType.get([k // 2, n], ir.IntegerType.get_signless(
                8)), name=weights.derive(f"{parts[0].name}.nibbles", nibble_pairs,
                                          [parts[0].name]))
        operands = [_converted(_collapse(gemm.lhs, m), f16), codes] + \
            [v for v in (gemm.rhs_scale, gemm.rhs_offset, gemm.bias) if v is not None] + \
            [_collapse(v, m) for v in (gemm.residual,) if v is not None]
        _call(module, op, spec, operands, ir.RankedTensorType(gemm.result.type), reference)
    _erase_if_unused(parts[0])


def _erase_if_unused(weight: Weight) -> None:
    """Erases a weight op whose data the kernel now reads in another layout, so that the
    artifact does not store both."""
    if not list(weight.operation.results[0].uses):
        weight.operation.erase()


def _converted(x, element: ir.Type):
    """Float tensor x with its elements converted to `element` (a linalg.generic)."""
    t = ir.RankedTensorType(x.type)
    if t.element_type == element:
        return x
    init = empty_like(ir.RankedTensorType.get(t.shape, element), [(x, i) for i in range(t.rank)])
    convert = narrowed if ir.FloatType(element).width < ir.FloatType(t.element_type).width \
        else widened
    return generic([x], init, [identity_map(t.rank)] * 2, [PARALLEL] * t.rank,
                   lambda v, _: convert(v, element))


def outline_qgemm(module, op, weights: WeightTable) -> None:
    """An int8 ember.qgemm on an int8 weight [K, N] (no patches, not packed) -> the
    tensor-core kernel's call; else left alone."""
    qgemm = QGemm(op)
    weight = Weight.defining(qgemm.rhs)
    if weight is None or qgemm.rhs_panel is not None or qgemm.lhs_patches is not None:
        return
    k, n = ir.RankedTensorType(qgemm.rhs.type).shape
    kp = k + -k % INT8_K_MULTIPLE
    m = _rows(op)
    if qgemm.static:
        unsigned, zero_point = unsigned_codes(qgemm.lhs), qgemm.lhs_zero_point
    else:
        unsigned, zero_point = False, encoding("s8").zero_point
    out_type = ir.RankedTensorType(qgemm.result.type)
    spec = GpuGemmSpec(m=m, n=n, k=kp, activation=qgemm.activation,
                       bias=qgemm.bias is not None, residual=qgemm.residual is not None,
                       int8="u8" if unsigned else "s8",
                       output_activation=qgemm.output_activation or "",
                       **({} if not qgemm.quantized_result else dict(
                           out_scale=qgemm.result_scale,
                           out_codes=(qgemm.result_zero_point, *qgemm.result_range))))
    out2 = ir.RankedTensorType.get([m, n], signless_type(out_type.element_type))

    def reference(args):
        product = integer_product(args["lhs"], args["rhs"], 0, unsigned, rhs_transposed=True)
        quant = spec.out_quantization
        return dequantize_products(product, args["lhs_scale"], args["rhs_scale"],
                                   args["rhs_compensation"], args.get("bias"),
                                   args.get("residual"), spec.activation,
                                   empty_like(out2, [(args["lhs"], 0), None]), quant,
                                   spec.output_activation)
    i8, i32 = ir.IntegerType.get_signless(8), ir.IntegerType.get_signless(32)
    with ir.InsertionPoint(op), op.location:
        x = _collapse(signless(qgemm.lhs), m)
        if qgemm.static:
            codes = x if kp == k else pad(x, [0, 0], [0, kp - k], 0)
            row_scale = filled(ir.RankedTensorType.get([m], ir.F32Type.get()), [(x, 0)],
                               qgemm.lhs_scale)
        else:
            codes, row_scale = quantize_rows(x, encoding("s8"), multiple=INT8_K_MULTIPLE)
        transposed = Weight.build(ir.RankedTensorType.get([n, kp], i8), name=weights.derive(
            f"{weight.name}.nk{kp}", lambda q: _transposed_padded(q, kp), [weight.name]))
        comp = Weight.build(ir.RankedTensorType.get([n], i32), name=weights.derive(
            f"{weight.name}.zp{zero_point}_compensation",
            lambda q: compensation(q, zero_point), [weight.name]))
        operands = [codes, transposed, row_scale, qgemm.rhs_scale, comp] + \
            [v for v in (qgemm.bias,) if v is not None] + \
            [_collapse(v, m) for v in (float_residual(qgemm),) if v is not None]
        _call(module, op, spec, operands, out_type, reference)
    _erase_if_unused(weight)


def _transposed_padded(q: np.ndarray, kp: int) -> np.ndarray:
    """int8 [K, N] -> [N, kp], zero-padded past K."""
    out = np.zeros((q.shape[1], kp), dtype=np.int8)
    out[:, :q.shape[0]] = q.T
    return out


@register
@dataclass
class GpuOutlineGemms(EmberPass):
    """Turns ember.gemm ops with a 2-D rhs into calls of GPU GEMM kernel functions (on a
    target with tensor cores, also the int8 ember.qgemm and weight-only ember.gemm ops the
    tensor-core kernel fits)."""
    name = "ember-gpu-outline-gemms"

    def run(self, module, ctx: PassContext) -> None:
        require_static_shapes(module)
        tensor_cores = ctx.target is not None and ctx.target.tensor_cores
        for fn in walk_ops(module.operation, ["func.func"]):
            if GEMM_ATTR in fn.attributes:
                continue                          # a kernel's own reference body
            for op in walk_ops(fn, [Gemm.op_name, QGemm.op_name]):
                if op.name == QGemm.op_name:
                    if tensor_cores:
                        outline_qgemm(module, op, ctx.weights)
                elif ir.RankedTensorType(op.operands[1].type).rank != 2 or \
                        Gemm(op).quantized_result:
                    continue          # a batched rhs, codes: left to the generic lowering
                elif Gemm(op).low_bit:
                    if tensor_cores:
                        outline_low_bit_gemm(module, op, ctx.weights)
                else:
                    outline_gemm(module, op)
