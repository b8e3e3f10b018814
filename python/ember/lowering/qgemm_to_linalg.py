"""ember.qgemm -> linalg: per-row activation quantization, then the int8 kernel or a reference.

    lhs f32 [M, K] --amax per row--> scale, inverse [M]
                   --round(a * inverse) + zp--> codes: bytes [M, K] (K padded to a multiple
                                                of 4 for the kernel, which reads words; a big
                                                static lhs in chunks of rows, each chunk's
                                                amax, codes and scales in one pass)
    static lhs codes [M, K] (already quantized): scale = lhs_scale in every row; the bytes go
                   to the kernel as they are (top bit flipped if the kernel reads the other
                   signedness, K padded to a multiple of 4); an lhs of patches (a quantized
                   conv) is padded with the zero point, and the kernel reads the patches in
                   place (whole words of channels) or from a materialized im2col copy
    packed rhs:   func.call @ember_gemm_<i>(words, panels, [scale], rhs_scale, compensation,
                                            [bias], [residual], init)   (see lower_packed_gemm;
                  a static lhs's one scale is the spec's lhs_scale, not an operand;
                  ember-cpu-gemm-kernels gives it the target's integer dot product)
    unpacked rhs: linalg.generic sum_k (code - zp) * rhs, then the dequantizing epilogue

Everything rounds as ember.quant.schemes says (the numpy reference), so every target and the
kernel agree bit for bit on the integer products.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, func, math as mlir_math, scf, tensor

from ember.dialect.ops import QGemm
from ember.dialect.ops.quantization import storage_range, unsigned_codes
from ember.dialect.shapes import patch_matrix_shape
from ember.kit.builders import constant
from ember.kit.epilogue import apply_epilogue
from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.kit.ir_queries import in_parallel_loop
from ember.kit.scalar_math import ACTIVATIONS, quantize_code, signed_byte
from ember.kit.structured import PARALLEL, REDUCTION, element_type, empty_like, filled, \
    generic, generic_into, identity_map, pad, tensor_shape
from ember.lowering.gemm_to_linalg import as_row_matrix, from_row_matrix, gemm_kernel_function, \
    materialize_patches, result_codes_spec, row_matrix_init
from ember.lowering.quantize_to_linalg import dequantized, signless, with_storage_type
from ember.quant.schemes import encoding

_F32 = ir.F32Type.get


def lower_qgemm(qgemm: QGemm):
    enc = encoding(qgemm.lhs_encoding)
    storage_type = ir.RankedTensorType(qgemm.result.type)
    out_type = ir.RankedTensorType.get(storage_type.shape, _F32())     # before requantizing
    quant = qgemm.result_quantization()
    source = signless(qgemm.lhs)
    implicit = qgemm.reads_patches_in_place()
    logical = None
    if qgemm.lhs_patches is not None:
        # in place: the kernel reads the patches from the padded codes a word of channels at
        # a time (channels padded to whole words; the packed weight's padding rows are 0)
        source = zero_point_padded(source, qgemm.lhs_patches, qgemm.lhs_zero_point,
                                   whole_words=implicit)
        if implicit:
            logical = patch_matrix_shape(tensor_shape(source), qgemm.lhs_patches[:6])
        else:
            source = materialize_patches(source, qgemm.lhs_patches[:6])
    residual, residual_codes = qgemm.residual, {}
    if qgemm.residual_codes and qgemm.rhs_panel is not None:    # dequantized in the kernel
        residual_codes = dict(residual_scale=qgemm.residual_scale, residual_codes=(
            qgemm.residual_zero_point, *storage_range(qgemm.residual)))
        residual = signless(residual)
    else:
        residual = float_residual(qgemm)
    lhs, residual, f32_type = as_row_matrix(source, residual, out_type, logical)
    out2_type = f32_type if quant is None else \
        ir.RankedTensorType.get(f32_type.shape, ir.IntegerType.get_signless(8))
    init = row_matrix_init(out2_type, lhs, logical)
    if qgemm.static:
        scale = qgemm.lhs_scale             # every row's: a number, not a tensor
    elif qgemm.rhs_panel is not None:       # the kernel's words
        codes, scale = quantize_rows_in_chunks(lhs, enc, multiple=4)
    else:
        scale, inverse = _row_scales(lhs, enc)
    if qgemm.rhs_panel is None:
        if qgemm.static:
            product = integer_product(lhs, qgemm.rhs, qgemm.lhs_zero_point,
                                       unsigned_codes(qgemm.lhs))
        else:
            product = integer_product(_codes(lhs, inverse, enc), qgemm.rhs, enc.zero_point,
                                       not enc.signed)
        result = dequantize_products(product, scale, qgemm.rhs_scale, None, qgemm.bias, residual,
                             qgemm.activation, init, quant, qgemm.output_activation)
    else:
        if implicit:
            words = _in_kernel_encoding(lhs, unsigned_codes(qgemm.lhs), enc)
            m, k = (None if f32_type.is_dynamic_dim(0) else f32_type.shape[0]), logical[-1]
            patches = tuple(tensor_shape(lhs)[1:]) + tuple(qgemm.lhs_patches[:6])
        else:
            words = _kernel_bytes(lhs, unsigned_codes(qgemm.lhs), enc) if qgemm.static else codes
            (m, k), patches = tensor_shape(words), None
        spec = GemmKernelSpec(m=m, n=out_type.shape[-1], k=k // 4, nr=qgemm.rhs_panel,
                              patches=patches,
                              activation=qgemm.activation, bias=qgemm.bias is not None,
                              residual=residual is not None, int8=enc.name,
                              output_activation=qgemm.output_activation or "",
                              lhs_scale=scale if qgemm.static else 0.0,
                              **residual_codes, **result_codes_spec(qgemm))
        operands = [v for v in (words, qgemm.rhs, None if qgemm.static else scale,
                                qgemm.rhs_scale, qgemm.rhs_compensation, qgemm.bias, residual)
                    if v is not None]
        result = int8_kernel_call(qgemm.operation, spec, operands, init)
    value_type = ir.RankedTensorType.get(storage_type.shape, out2_type.element_type)
    return with_storage_type(from_row_matrix(result, source, value_type), storage_type)


def float_residual(qgemm: QGemm):
    """The qgemm's residual as f32 (codes dequantized), or None without one."""
    if qgemm.residual is None or not qgemm.residual_codes:
        return qgemm.residual
    return dequantized(qgemm.residual, qgemm.residual_scale, qgemm.residual_zero_point)


def int8_kernel_call(anchor, spec: GemmKernelSpec, operands, init):
    """A call of the int8 kernel function for `spec` (created in anchor's module on first
    use, with the linalg reference body) on operands (codes, panels, row scales, column
    scales, compensation[, bias][, residual]) into `init`."""
    callee = gemm_kernel_function(anchor, spec, [v.type for v in operands] + [init.type],
                                  init.type, reference=_reference_kernel)
    return func.call([init.type], callee, list(operands) + [init])


def zero_point_padded(codes, geometry, zero_point: int, whole_words: bool = False):
    """NHWC codes padded by (PH, PW) = geometry[6:] with the zero point (the code of 0.0; its
    byte, for unsigned codes above 127, reads as negative i8); with `whole_words`, C too,
    up to a multiple of 4."""
    ph, pw = geometry[6:]
    channels = -tensor_shape(codes)[3] % 4 if whole_words else 0
    return pad(codes, [0, ph, pw, 0], [0, ph, pw, channels],
               zero_point - 256 * (zero_point > 127))


def _kernel_bytes(codes, unsigned: bool, enc):
    """Static codes [M, K] (i8 bytes, read unsigned if `unsigned`) as the kernel reads them in
    `enc` (see _in_kernel_encoding), K zero-padded to a multiple of 4."""
    k = tensor_shape(codes)[1]
    if k % 4:
        codes = pad(codes, [0, 0], [0, -k % 4], 0)
    return _in_kernel_encoding(codes, unsigned, enc)


def _in_kernel_encoding(codes, unsigned: bool, enc):
    """Bytes read unsigned if `unsigned` as a kernel reading `enc` sees them: the top bit
    flipped where the signedness differs (c -/+ 128, which the packed compensation accounts
    for). Codes already in the kernel's form pass through uncopied."""
    if unsigned == (not enc.signed):
        return codes
    flip = constant(-128, ir.IntegerType.get_signless(8))
    rank = len(tensor_shape(codes))
    return generic([codes], empty_like(codes.type, [(codes, i) for i in range(rank)]),
                   [identity_map(rank)] * 2, [PARALLEL] * rank,
                   lambda c, _: arith.xori(c, flip))


def quantize_rows(x, enc, multiple: int = 1):
    """(codes i8 [M, K'], scales f32 [M]) of f32 x [M, K] quantized per row in encoding `enc`
    (ember.quant.schemes.quantize_rows' scheme), K' = K zero-padded to a multiple of
    `multiple`."""
    scale, inverse = _row_scales(x, enc)
    return _codes(x, inverse, enc, multiple), scale


def quantize_rows_in_chunks(x, enc, multiple: int = 1):
    """quantize_rows(x, enc, multiple), for a big static x (ROW_CHUNK_ELEMENTS or more) outside
    any parallel loop, in chunks of whole rows: the iterations of an scf.forall (OpenMP
    threads on the host), each computing its rows' amax, codes and scales while they are in
    L1, written in place into the results. One pass over x (whose rows at a large batch come
    from DRAM: the BERT encoder's FFN2 input is 128 MiB of f32 at batch 256) and one fork,
    where quantize_rows reads x twice (its amax, then its codes) in two parallel loops."""
    m, k = tensor_shape(x)
    chunk = _row_chunk(m, k)
    if chunk is None or k % multiple or \
            in_parallel_loop(ir.InsertionPoint.current.block.owner):
        return quantize_rows(x, enc, multiple)
    forall = scf.ForallOp([0], [m // chunk], [1], [
        tensor.empty([m, k], ir.IntegerType.get_signless(8)), tensor.empty([m], _F32())])
    with ir.InsertionPoint(forall.body):
        row = arith.muli(forall.induction_variables[0], constant(chunk, ir.IndexType.get()))
        codes_out, scales_out = forall.inner_iter_args
        codes_at, scales_at = _row_slice(codes_out, row, chunk), _row_slice(scales_out, row, chunk)
        rows = _row_slice(x, row, chunk)
        amax = row_amax_bits(rows)
        codes = generic([rows, amax], codes_at, [identity_map(2), identity_map(2, [0]),
                                                 identity_map(2)], [PARALLEL] * 2,
                        lambda v, a, _: arith.trunci(ir.IntegerType.get_signless(8), code_of(
                            v, _inverse_of(_from_bits(a), enc), enc)))
        scales = generic([amax], scales_at, [identity_map(1)] * 2, [PARALLEL],
                         lambda a, _: _scale_of(_from_bits(a), enc))
        with ir.InsertionPoint(forall.terminator().block):
            for part, dest in ((codes, codes_out), (scales, scales_out)):
                _insert_rows(part, dest, row, chunk)
    return forall.results[0], forall.results[1]


#: Elements of x from which quantize_rows_in_chunks splits it over threads (a fork costs a few
#: microseconds: ember-parallelize-loops' default threshold), and the most elements of one
#: chunk (16 KiB of f32, in L1 between its amax and its codes) unless one row is longer.
ROW_CHUNK_ELEMENTS = 32768
CHUNK_ELEMENTS = 4096


def _row_chunk(m, k):
    """Rows per chunk of a static x [m, k]: the largest power of two dividing m with at most
    CHUNK_ELEMENTS elements (1 for longer rows); None for a small or dynamic x."""
    if m is None or k is None or m * k < ROW_CHUNK_ELEMENTS:
        return None
    chunk = 1
    while m % (2 * chunk) == 0 and 2 * chunk * k <= CHUNK_ELEMENTS:
        chunk *= 2
    return chunk


def _row_slice(x, row, count: int):
    """Rows [row, row + count) of a static tensor x (rank 1 or 2)."""
    shape = tensor_shape(x)
    dyn = ir.ShapedType.get_dynamic_size()
    sizes = [count] + shape[1:]
    return tensor.ExtractSliceOp(ir.RankedTensorType.get(sizes, element_type(x)), x, [row], [],
                                 [], [dyn] + [0] * (len(shape) - 1), sizes,
                                 [1] * len(shape)).result


def _insert_rows(part, dest, row, count: int):
    """tensor.parallel_insert_slice of `part` at rows [row, row + count) of `dest`."""
    shape = tensor_shape(dest)
    dyn = ir.ShapedType.get_dynamic_size()
    tensor.ParallelInsertSliceOp(part, dest, [row], [], [], [dyn] + [0] * (len(shape) - 1),
                                 [count] + shape[1:], [1] * len(shape))


def _row_scales(lhs, enc):
    """(scale, inverse) f32 [M]: amax / qmax and qmax / amax per row (1 and 0 for a zero row;
    NaN for a row holding a NaN, so that its outputs are NaN as in floating point)."""
    return scales_from_amax(row_amax_bits(lhs), enc)


#: A float's bits less its sign: |x|'s bits, which for floats >= 0 order as the values do
#: (as integers), a NaN's above +inf's.
MAGNITUDE_BITS = 0x7FFFFFFF


def magnitude_bits(x):
    """The bits of |x| (f32 scalar) as i32: what an amax reduces with an integer max, one
    vpmaxsd per vector where a NaN-keeping float max (arith.maximumf) costs a compare and a
    blend more; a NaN stays the largest, so a row holding one still gets a NaN amax."""
    i32 = ir.IntegerType.get_signless(32)
    return arith.andi(arith.bitcast(i32, x), constant(MAGNITUDE_BITS, i32))


def _from_bits(bits):
    """The f32 whose bits are i32 `bits` (an amax from magnitude_bits)."""
    return arith.bitcast(_F32(), bits)


def row_amax_bits(x):
    """max |x| per row of f32 x [M, K], as its bits (i32 [M], see magnitude_bits)."""
    i32 = ir.IntegerType.get_signless(32)
    m = tensor_shape(x)[0]
    init = filled(ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size() if m is None
                                           else m], i32), [(x, 0)], 0)
    return generic([x], init, [identity_map(2), identity_map(2, [0])], [PARALLEL, REDUCTION],
                   lambda v, acc: arith.maxsi(acc, magnitude_bits(v)))


def scales_from_amax(amax_bits, enc):
    """(scale, inverse) f32 [N] of symmetric codes in `enc` for values whose largest
    magnitudes are `amax_bits` [N] (as i32 bits: magnitude_bits; see _row_scales)."""
    f32 = ir.RankedTensorType.get(ir.RankedTensorType(amax_bits.type).shape, _F32())
    inits = [empty_like(f32, [(amax_bits, 0)]) for _ in range(2)]

    def scales(bits, _s, _i):
        a = _from_bits(bits)
        return [_scale_of(a, enc), _inverse_of(a, enc)]
    return generic_into([amax_bits], inits, [identity_map(1)] * 3, [PARALLEL], scales)


def _scale_of(amax, enc):
    """amax / qmax, 1 for amax = 0 (a scalar or vector)."""
    nonzero, safe = _nonzero_and_safe(amax)
    return arith.select(nonzero, arith.divf(safe, constant(enc.qmax, amax.type)),
                        constant(1.0, amax.type))


def _inverse_of(amax, enc):
    """qmax / amax, 0 for amax = 0."""
    nonzero, safe = _nonzero_and_safe(amax)
    return arith.select(nonzero, arith.divf(constant(enc.qmax, amax.type), safe),
                        constant(0.0, amax.type))


def _nonzero_and_safe(amax):
    """(amax != 0, amax or 1 where it is 0): a divisor and dividend that never divide by 0."""
    nonzero = arith.cmpf(arith.CmpFPredicate.UNE, amax, constant(0.0, amax.type))
    return nonzero, arith.select(nonzero, amax, constant(1.0, amax.type))


def code_of(x, inv, enc):
    """i32 q + zp, q = roundeven(x * inverse): no clamp, since every inverse here is qmax /
    the amax of the values it codes (|x * inverse| <= qmax (1 + 2^-23), which rounds to qmax);
    the clamp's two instructions were a sixth of a dynamic quantization's work."""
    q = mlir_math.roundeven(arith.mulf(x, inv))
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
                   [PARALLEL] * 2, lambda x, inv, _: arith.trunci(i8, code_of(x, inv, enc)))


def integer_product(codes, rhs, zero_point: int, unsigned: bool, rhs_transposed=False):
    """i32 [M, N] = sum_k (codes[m, k] - zero_point) * rhs[k, n] (codes i8 bytes, read
    unsigned if `unsigned`; rhs i8 [K, N], or [N, K] if `rhs_transposed`)."""
    i32 = ir.IntegerType.get_signless(32)
    n = tensor_shape(rhs)[0 if rhs_transposed else 1]
    dyn = ir.ShapedType.get_dynamic_size()
    m = tensor_shape(codes)[0]
    acc = filled(ir.RankedTensorType.get([dyn if m is None else m, n], i32),
                 [(codes, 0), None], 0)
    zp = constant(zero_point, i32)

    def mac(a, w, c):
        code = arith.extui(i32, a) if unsigned else arith.extsi(i32, a)
        return arith.addi(c, arith.muli(arith.subi(code, zp), arith.extsi(i32, w)))
    return generic([codes, rhs], acc, [identity_map(3, [0, 2]),
                                       identity_map(3, [1, 2] if rhs_transposed else [2, 1]),
                                       identity_map(3, [0, 1])],
                   [PARALLEL, PARALLEL, REDUCTION], mac)


def dequantize_products(product, row_scale, col_scale, compensation, bias, residual, activation,
                        init, quant=None, output_activation=None):
    """f32 [M, N] = `dequantized_product` of each product (or its codes, with `quant`);
    `row_scale` f32 [M], or one number for every row (a static lhs's scale)."""
    rows = isinstance(row_scale, ir.Value)
    operands = [product] + [row_scale] * rows + [col_scale] + \
        [v for v in (compensation, bias, residual) if v is not None]
    maps = [identity_map(2)] + [identity_map(2, [0])] * rows + [identity_map(2, [1])] + \
        [identity_map(2, [1])] * ((compensation is not None) + (bias is not None)) + \
        [identity_map(2)] * (residual is not None) + [identity_map(2)]

    def body(acc, *rest):
        rest = list(rest[:-1])
        sa = rest.pop(0) if rows else constant(float(row_scale), _F32())
        sb = rest.pop(0)
        comp = rest.pop(0) if compensation is not None else None
        b = rest.pop(0) if bias is not None else None
        r = rest.pop(0) if residual is not None else None
        return dequantized_product(acc, sa, sb, comp, b, r, activation, quant,
                                   output_activation)
    return generic(operands, init, maps, [PARALLEL] * 2, body)


def dequantized_product(acc, row_scale, col_scale, compensation, bias, residual, activation,
                        quant=None, output_activation=None):
    """One int32 product's result: output_activation(residual + act(float(acc -
    compensation) * (row * col scale) + bias)), in ember.quant.schemes.reference_qgemm's order;
    with `quant` (inverse scale, zero point, lo, hi) its code, as ember.quantize computes it.
    Scalars; the CPU reference and the GPU tensor-core epilogue both compute it."""
    if compensation is not None:
        acc = arith.subi(acc, compensation)
    y = arith.mulf(arith.sitofp(_F32(), acc), arith.mulf(row_scale, col_scale))
    y = apply_epilogue(y, activation, bias, residual)
    y = ACTIVATIONS[output_activation or "none"](y)
    return y if quant is None else quantize_code(y, *quant)


def _reference_kernel(spec: GemmKernelSpec, codes, panels, *rest):
    """The int8 kernel function's linalg body (before ember-cpu-gemm-kernels replaces it):
    byte j of weight word w times code 4w + j, then the dequantizing epilogue."""
    *epilogue, init = rest
    row_scale = spec.lhs_scale or epilogue.pop(0)
    col_scale, compensation = epilogue.pop(0), epilogue.pop(0)
    bias = epilogue.pop(0) if spec.bias else None
    residual = epilogue.pop(0) if spec.residual else None
    if spec.residual_dequantization:
        residual = dequantized(residual, *spec.residual_dequantization)
    if spec.patches is not None:
        codes, _, _ = as_row_matrix(materialize_patches(codes, spec.patches[3:]), None,
                                    ir.RankedTensorType(init.type),
                                    None)
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
    quant = spec.out_quantization
    return dequantize_products(product, row_scale, col_scale, compensation, bias, residual,
                       spec.activation, init, quant, spec.output_activation)
