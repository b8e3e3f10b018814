"""ember.qgemm -> linalg: per-row activation quantization, then the int8 kernel or a reference.

    lhs f32 [M, K] --amax per row--> scale, inverse [M]
                   --round(a * inverse) + zp--> codes: bytes [M, K] (K padded to a multiple
                                                of 4 for the kernel, which reads words)
    static lhs codes [M, K] (already quantized): scale = lhs_scale in every row; the bytes go
                   to the kernel as they are (top bit flipped if the kernel reads the other
                   signedness, K padded to a multiple of 4); an lhs of patches (a quantized
                   conv) is padded with the zero point and its im2col bytes materialized first
    packed rhs:   func.call @ember_gemm_<i>(words, panels, scale, rhs_scale, compensation,
                                            [bias], [residual], init)   (see lower_packed_gemm;
                  ember-cpu-gemm-kernels gives it the target's integer dot product)
    unpacked rhs: linalg.generic sum_k (code - zp) * rhs, then the dequantizing epilogue

Everything rounds as ember.quant.schemes says (the numpy reference), so every target and the
kernel agree bit for bit on the integer products.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, func, math as mlir_math

from ember.dialect.ops import QGemm
from ember.kit.builders import constant
from ember.kit.epilogue import apply_epilogue
from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.kit.scalar_math import signed_byte
from ember.kit.structured import PARALLEL, REDUCTION, empty_like, filled, generic, \
    generic_into, identity_map, pad, reduce_trailing, tensor_shape
from ember.lowering.gemm_to_linalg import as_row_matrix, from_row_matrix, gemm_kernel_function, \
    materialize_patches
from ember.dialect.ops.quantization import unsigned_codes
from ember.kit.scalar_math import quantize_code
from ember.lowering.quantize_to_linalg import signless, with_storage_type
from ember.quant.schemes import encoding

_F32 = ir.F32Type.get


def lower_qgemm(qgemm: QGemm):
    enc = encoding(qgemm.lhs_encoding)
    storage_type = ir.RankedTensorType(qgemm.result.type)
    out_type = ir.RankedTensorType.get(storage_type.shape, _F32())     # before requantizing
    quant = _result_quantization(qgemm)
    source = signless(qgemm.lhs)
    if qgemm.lhs_patches is not None:
        source = _patches(source, qgemm.lhs_patches, qgemm.lhs_zero_point)
    lhs, residual, f32_type = as_row_matrix(source, qgemm.residual, out_type)
    out2_type = f32_type if quant is None else \
        ir.RankedTensorType.get(f32_type.shape, ir.IntegerType.get_signless(8))
    if qgemm.static:
        scale = filled(ir.RankedTensorType.get(out2_type.shape[:1], _F32()),
                       [(lhs, 0)], qgemm.lhs_scale)
    else:
        scale, inverse = _row_scales(lhs, enc)
    if qgemm.rhs_panel is None:
        if qgemm.static:
            product = _integer_product(lhs, qgemm.rhs, qgemm.lhs_zero_point,
                                       unsigned_codes(qgemm.lhs))
        else:
            product = _integer_product(_codes(lhs, inverse, enc), qgemm.rhs, enc.zero_point,
                                       not enc.signed)
        result = _dequantize(product, scale, qgemm.rhs_scale, None, qgemm.bias, residual,
                             qgemm.activation, empty_like(out2_type, [(lhs, 0), None]), quant)
    else:
        words = _kernel_bytes(lhs, unsigned_codes(qgemm.lhs), enc) if qgemm.static else \
            _codes(lhs, inverse, enc, multiple=4)
        m, k = tensor_shape(words)
        spec = GemmKernelSpec(m=m, n=out_type.shape[-1], k=k // 4, nr=qgemm.rhs_panel,
                              activation=qgemm.activation, bias=qgemm.bias is not None,
                              residual=residual is not None, int8=enc.name,
                              **({} if quant is None else {
                                  "out_scale": qgemm.result_scale,
                                  "out_codes": (qgemm.result_zero_point,
                                                *qgemm.result_range)}))
        operands = [v for v in (words, qgemm.rhs, scale, qgemm.rhs_scale,
                                qgemm.rhs_compensation, qgemm.bias, residual) if v is not None]
        callee = gemm_kernel_function(qgemm.operation, spec,
                                      [v.type for v in operands] + [out2_type], out2_type,
                                      reference=_reference_kernel)
        init = empty_like(out2_type, [(lhs, 0), None])
        result = func.call([out2_type], callee, operands + [init])
    value_type = ir.RankedTensorType.get(storage_type.shape, out2_type.element_type)
    return with_storage_type(from_row_matrix(result, source, value_type), storage_type)


def _result_quantization(qgemm: QGemm):
    """(inverse scale, zero point, lo, hi) of a quantized result, or None."""
    if not qgemm.quantized_result:
        return None
    return (1.0 / qgemm.result_scale, qgemm.result_zero_point, *qgemm.result_range)


def _patches(codes, geometry, zero_point: int):
    """The im2col patch matrix [N, OH, OW, KH*KW*C] of NHWC codes padded with the zero point
    (the code of 0.0; its byte, for unsigned codes above 127, reads as negative i8)."""
    kh, kw, sh, sw, dh, dw, ph, pw = geometry
    padded = pad(codes, [0, ph, pw, 0], [0, ph, pw, 0], zero_point - 256 * (zero_point > 127))
    return materialize_patches(padded, (kh, kw, sh, sw, dh, dw))


def _kernel_bytes(codes, unsigned: bool, enc):
    """Static codes [M, K] (i8 bytes, read unsigned if `unsigned`) as the kernel reads them in
    `enc`: the top bit flipped where the signedness differs (c -/+ 128, which the packed
    compensation accounts for), K zero-padded to a multiple of 4. Codes already in the
    kernel's form pass through uncopied."""
    k = tensor_shape(codes)[1]
    if k % 4:
        codes = pad(codes, [0, 0], [0, -k % 4], 0)
    if unsigned == (not enc.signed):
        return codes
    flip = constant(-128, ir.IntegerType.get_signless(8))
    return generic([codes], empty_like(codes.type, [(codes, 0), None]),
                   [identity_map(2)] * 2, [PARALLEL] * 2, lambda c, _: arith.xori(c, flip))


def _row_scales(lhs, enc):
    """(scale, inverse) f32 [M]: amax / qmax and qmax / amax per row (1 and 0 for a zero row)."""
    amax = reduce_trailing(lhs, 1, 0.0, arith.maximumf, pre=mlir_math.absf)
    qmax = constant(enc.qmax, _F32())
    zero, one = constant(0.0, _F32()), constant(1.0, _F32())

    def scales(a, _s, _i):
        nonzero = arith.cmpf(arith.CmpFPredicate.OGT, a, zero)
        safe = arith.select(nonzero, a, one)
        return [arith.select(nonzero, arith.divf(safe, qmax), one),
                arith.select(nonzero, arith.divf(qmax, safe), zero)]
    inits = [empty_like(amax.type, [(lhs, 0)]) for _ in range(2)]
    return generic_into([amax], inits, [identity_map(1)] * 3, [PARALLEL], scales)


def _code(x, inv, enc):
    """i32 q + zp, q = clamp(roundeven(x * inverse), -qmax, qmax)."""
    q = mlir_math.roundeven(arith.mulf(x, inv))
    limit = constant(float(enc.qmax), _F32())
    q = arith.minimumf(arith.maximumf(q, arith.negf(limit)), limit)
    code = arith.fptosi(ir.IntegerType.get_signless(32), q)
    return arith.addi(code, constant(enc.zero_point, code.type)) if enc.zero_point else code


def _codes(lhs, inverse, enc, multiple: int = 1):
    """The codes of lhs [M, K] as bytes (i8; an unsigned encoding's bytes read as unsigned),
    K zero-padded to a multiple of `multiple` (the int8 kernel reads 4 k per word; the
    padding's codes meet zero-padded weight bytes)."""
    m, k = tensor_shape(lhs)
    if k % multiple:
        lhs = pad(lhs, [0, 0], [0, -k % multiple])
    i8 = ir.IntegerType.get_signless(8)
    dyn = ir.ShapedType.get_dynamic_size()
    out_type = ir.RankedTensorType.get([dyn if m is None else m, k + -k % multiple], i8)
    init = empty_like(out_type, [(lhs, 0), None])
    return generic([lhs, inverse], init, [identity_map(2), identity_map(2, [0]),
                                          identity_map(2)],
                   [PARALLEL] * 2, lambda x, inv, _: arith.trunci(i8, _code(x, inv, enc)))


def _integer_product(codes, rhs, zero_point: int, unsigned: bool):
    """i32 [M, N] = sum_k (codes[m, k] - zero_point) * rhs[k, n] (codes i8 bytes, read
    unsigned if `unsigned`; rhs i8 [K, N])."""
    i32 = ir.IntegerType.get_signless(32)
    n = tensor_shape(rhs)[1]
    dyn = ir.ShapedType.get_dynamic_size()
    m = tensor_shape(codes)[0]
    acc = filled(ir.RankedTensorType.get([dyn if m is None else m, n], i32),
                 [(codes, 0), None], 0)
    zp = constant(zero_point, i32)

    def mac(a, w, c):
        code = arith.extui(i32, a) if unsigned else arith.extsi(i32, a)
        return arith.addi(c, arith.muli(arith.subi(code, zp), arith.extsi(i32, w)))
    return generic([codes, rhs], acc, [identity_map(3, [0, 2]), identity_map(3, [2, 1]),
                                       identity_map(3, [0, 1])],
                   [PARALLEL, PARALLEL, REDUCTION], mac)


def _dequantize(product, row_scale, col_scale, compensation, bias, residual, activation, init,
                quant=None):
    """f32 [M, N] = residual + act(float(product - compensation) * (row * col scale) + bias),
    in ember.quant.schemes.reference_qgemm's order; with `quant` (inverse scale, zero point,
    lo, hi) those values' codes, as ember.quantize computes them."""
    operands = [product, row_scale, col_scale] + \
        [v for v in (compensation, bias, residual) if v is not None]
    maps = [identity_map(2), identity_map(2, [0]), identity_map(2, [1])] + \
        [identity_map(2, [1])] * ((compensation is not None) + (bias is not None)) + \
        [identity_map(2)] * (residual is not None) + [identity_map(2)]

    def body(acc, sa, sb, *rest):
        rest = list(rest[:-1])
        if compensation is not None:
            acc = arith.subi(acc, rest.pop(0))
        y = arith.mulf(arith.sitofp(_F32(), acc), arith.mulf(sa, sb))
        b = rest.pop(0) if bias is not None else None
        y = apply_epilogue(y, activation, b, rest.pop(0) if residual is not None else None)
        return y if quant is None else quantize_code(y, *quant)
    return generic(operands, init, maps, [PARALLEL] * 2, body)


def _reference_kernel(spec: GemmKernelSpec, codes, panels, row_scale, col_scale, compensation,
                      *rest):
    """The int8 kernel function's linalg body (before ember-cpu-gemm-kernels replaces it):
    byte j of weight word w times code 4w + j, then the dequantizing epilogue."""
    *epilogue, init = rest
    bias = epilogue.pop(0) if spec.bias else None
    residual = epilogue.pop(0) if spec.residual else None
    i32 = ir.IntegerType.get_signless(32)
    acc = filled(ir.RankedTensorType.get(ir.RankedTensorType(init.type).shape, i32),
                 [(init, 0), None], 0)
    nr = ir.AffineConstantExpr.get(spec.nr)
    m, n, w = (ir.AffineDimExpr.get(i) for i in range(3))
    code_maps = [ir.AffineMap.get(3, 0, [m, w * 4 + j]) for j in range(4)]
    rhs_map = ir.AffineMap.get(3, 0, [ir.AffineExpr.get_floor_div(n, nr), w,
                                      ir.AffineExpr.get_mod(n, nr)])
    extend = arith.extsi if encoding(spec.int8).signed else arith.extui

    def mac(*args):
        *a, b, c = args
        for j in range(4):
            c = arith.addi(c, arith.muli(extend(i32, a[j]), signed_byte(b, j)))
        return c
    product = generic([codes] * 4 + [panels], acc,
                      code_maps + [rhs_map, identity_map(3, [0, 1])],
                      [PARALLEL, PARALLEL, REDUCTION], mac)
    quant = None if not spec.out_scale else (1.0 / spec.out_scale, *spec.out_codes)
    return _dequantize(product, row_scale, col_scale, compensation, bias, residual,
                       spec.activation, init, quant)
