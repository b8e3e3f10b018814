"""ember.gemm -> linalg: a contraction plus one epilogue op, or a call of a GEMM kernel function.

A GEMM whose rhs is packed in panels (`rhs_panel`, see ember-pack-weights) becomes a call of a
private kernel function (destination-passing style) whose body is a linalg reference and whose
`ember.gemm_kernel` attribute is its GemmKernelSpec, so that a target can replace the body
after bufferization (ember-cpu-gemm-kernels); ember-cpu-contractions calls the same functions
for run-time products (`gemm_kernel_function`). Any other GEMM becomes a linalg contraction
(implicit im2col patches materialized first) and one elementwise epilogue op that the target
pipeline fuses into the contraction's tiles.
"""
from __future__ import annotations

import math

import numpy as np

from mlir import ir
from mlir.dialects import arith, func, linalg, tensor

from ember.dialect.ops import Gemm
from ember.dialect.shapes import last_two_swapped, patch_matrix_shape
from ember.kit.builders import constant, i64
from ember.kit.epilogue import accumulator_type, epilogue_op, widened
from ember.kit.ir_queries import defined_by, defining_op
from ember.kit.gemm_kernel_spec import KERNEL_ATTR, KERNEL_PREFIX, GemmKernelSpec
from ember.kit.private_functions import kernel_function
from ember.kit.structured import PARALLEL, REDUCTION, element_type, empty_like, filled, \
    generic, identity_map, tensor_dim, tensor_shape
from ember.lowering.quantize_to_linalg import with_storage_type


def _gather_map(strides, dilations) -> ir.AffineMap:
    """(n, oh, ow, kh, kw, c) -> (n, oh*SH + kh*DH, ow*SW + kw*DW, c)."""
    d = [ir.AffineDimExpr.get(i) for i in range(6)]
    return ir.AffineMap.get(6, 0, [d[0], d[1] * strides[0] + d[3] * dilations[0],
                                   d[2] * strides[1] + d[4] * dilations[1], d[5]])


def materialize_patches(padded, geometry):
    """The [N, OH, OW, KH*KW*C] im2col matrix of a padded NHWC input, for a GEMM with
    `lhs_patches = geometry` (KH, KW, SH, SW, DH, DW) that is not lowered to the CPU kernel
    (which reads the patches in place)."""
    kh, kw, sh, sw, dh, dw = geometry
    shape = patch_matrix_shape(tensor_shape(padded), geometry)
    c = tensor_shape(padded)[3]
    dyn = ir.ShapedType.get_dynamic_size()
    lead = [dyn if d is None else d for d in shape[:3]]
    element = element_type(padded)
    patches_type = ir.RankedTensorType.get(lead + [kh, kw, c], element)
    init = empty_like(patches_type, [(padded, 0)] + [None] * 5)
    patches = generic([padded], init, [_gather_map((sh, sw), (dh, dw)), identity_map(6)],
                      [PARALLEL] * 6, lambda v, _: v)
    matrix_type = ir.RankedTensorType.get(lead + [kh * kw * c], element)
    return tensor.CollapseShapeOp(matrix_type, patches, [[0], [1], [2], [3, 4, 5]]).result


def lower_gemm(gemm: Gemm):
    if gemm.rhs_panel is not None:
        return lower_packed_gemm(gemm)
    lhs, rhs = gemm.lhs, gemm.rhs
    if gemm.low_bit:            # a target without a low-bit kernel: the f32 weight, computed
        rhs = _dequantized(gemm)    # from the codes at run time
    if gemm.lhs_patches is not None:
        lhs = materialize_patches(lhs, gemm.lhs_patches)
    storage_type = gemm.result.type
    out_type = _computed_type(gemm)
    lhs_shape, rhs_shape = tensor_shape(lhs), tensor_shape(rhs)
    rank = len(lhs_shape)
    dim_sources = [(lhs, i) for i in range(rank - 1)] + [(rhs, len(rhs_shape) - 1)]
    acc_type = accumulator_type(out_type)
    acc = filled(acc_type, dim_sources, 0.0)
    acc_element = ir.RankedTensorType(acc_type).element_type
    if rank == 2:
        product = linalg.matmul(lhs, rhs, outs=[acc])
    else:
        # Iteration space (batch..., m, n, k).
        n_dims = rank + 1
        b = list(range(rank - 2))
        m, n, k = rank - 2, rank - 1, rank
        lhs_map = identity_map(n_dims, b + [m, k])
        rhs_dims = [k, n]
        source = _swapped_last_two(rhs) if len(rhs_shape) == rank else None
        if source is not None:      # read B through the transpose: no copy of its own
            rhs, rhs_dims = source, [n, k]
        rhs_map = identity_map(n_dims, ([] if len(rhs_shape) == 2 else b) + rhs_dims)
        out_map = identity_map(n_dims, b + [m, n])
        product = generic([lhs, rhs], acc, [lhs_map, rhs_map, out_map],
                          [PARALLEL] * rank + [REDUCTION],
                          lambda a, w, c: arith.addf(c, arith.mulf(widened(a, acc_element),
                                                                   widened(w, acc_element))))
    result_type = out_type if not gemm.quantized_result else _codes_type(out_type)
    result = epilogue_op(product, result_type, bias=gemm.bias, residual=gemm.residual,
                         activation=gemm.activation, channel_axis=rank - 1,
                         quant=gemm.result_quantization())
    return with_storage_type(result, storage_type)


def _computed_type(gemm: Gemm):
    """The type of a GEMM's values before they are stored: its result's, f32 for codes."""
    storage = ir.RankedTensorType(gemm.result.type)
    if not gemm.quantized_result:
        return storage
    return ir.RankedTensorType.get(storage.shape, ir.F32Type.get())


def _codes_type(tensor_type):
    """`tensor_type` holding signless bytes: what a lowering writes codes into."""
    return ir.RankedTensorType.get(ir.RankedTensorType(tensor_type).shape,
                                   ir.IntegerType.get_signless(8))


def result_codes_spec(op) -> dict:
    """The kernel spec fields (out_scale, out_codes) of an op writing codes (ember.gemm or
    ember.qgemm with result_scale); empty for f32."""
    if not op.quantized_result:
        return {}
    return {"out_scale": op.result_scale,
            "out_codes": (op.result_zero_point, *op.result_range)}


def _swapped_last_two(value):
    """x when `value` is a run-time tensor x with its last two dims swapped (ember.transpose or
    its linalg.transpose: attention's K^T), else None."""
    op = defining_op(value)
    if op is None or op.name not in ("ember.transpose", "linalg.transpose"):
        return None
    perm = list(ir.DenseI64ArrayAttr(op.attributes["permutation"]))
    if perm != last_two_swapped(len(perm)):
        return None
    source = op.operands[0]
    return None if defined_by(source, "ember.weight") is not None else source


def lower_packed_gemm(gemm: Gemm):
    """A panel-packed GEMM (`rhs_panel`, see ember-pack-weights) -> a kernel function call.

    The GEMM becomes `func.call @ember_gemm_<i>(lhs, packed, [bias], [residual], init)` in
    destination-passing style: the private kernel function writes its result into `init` and
    returns it, so one-shot bufferization writes the caller's buffer in place. Its body is a
    linalg reference (any target can run it); its `ember.gemm_kernel` attribute describes it,
    so a target replaces the body after bufferization (ember-cpu-gemm-kernels). Leading batch
    dims of lhs are collapsed into M. Identical kernels are shared.
    """
    lhs, packed, bias = gemm.lhs, gemm.rhs, gemm.bias
    out_type = _computed_type(gemm)
    geometry = gemm.lhs_patches
    logical = patch_matrix_shape(tensor_shape(lhs), geometry) if geometry else None
    lhs, residual, out2_type = as_row_matrix(lhs, gemm.residual, out_type, logical)
    if gemm.quantized_result:
        out2_type = _codes_type(out2_type)
    m, k = out2_type.shape[0] if not out2_type.is_dynamic_dim(0) else None, \
        (logical or tensor_shape(lhs))[-1]
    n = out_type.shape[-1]
    patches = None if geometry is None else tuple(tensor_shape(lhs)[1:]) + tuple(geometry)
    pairs = bool(gemm.rhs_pairs)
    weights = element_type(packed)
    integer = str(element_type(lhs)) == "i16"      # an integer GEMM: i16 pairs into i32
    low_bit = dict(weights=f"i{gemm.rhs_bits}", group=gemm.rhs_group,
                   offsets=gemm.rhs_offset is not None) if gemm.low_bit else \
        dict(weights="" if pairs or weights == element_type(lhs) else str(weights))
    spec = GemmKernelSpec(m=m, n=n, k=k // 2 if pairs else k, nr=gemm.rhs_panel,
                          activation=gemm.activation, bias=bias is not None,
                          residual=residual is not None, patches=patches, pairs=pairs,
                          operands="i16" if integer else "", **low_bit,
                          **result_codes_spec(gemm))
    operands = [v for v in (lhs, packed, gemm.rhs_scale, gemm.rhs_offset, bias, residual)
                if v is not None]
    callee = gemm_kernel_function(gemm.operation, spec, [v.type for v in operands] + [out2_type],
                                  out2_type)
    result = func.call([out2_type], callee, operands + [row_matrix_init(out2_type, lhs, logical)])
    value_type = ir.RankedTensorType.get(out_type.shape, out2_type.element_type)
    return with_storage_type(from_row_matrix(result, gemm.lhs, value_type), gemm.result.type)


def row_matrix_init(row_matrix_type, lhs, logical=None):
    """An empty [M, N] tensor of `row_matrix_type` for a GEMM on the 2-D `lhs` (or, with
    `logical` the patch matrix shape, on the padded NHWC input standing for it), its dynamic M
    read from lhs: lhs's rows, or images x OH x OW."""
    if not row_matrix_type.is_dynamic_dim(0) or logical is None:
        return empty_like(row_matrix_type, [(lhs, 0), None])
    rows_per_image = arith.constant(ir.IndexType.get(), math.prod(logical[1:-1]))
    return tensor.empty([arith.muli(tensor_dim(lhs, 0), rows_per_image),
                         row_matrix_type.shape[1]], row_matrix_type.element_type)


def _rows(rank: int) -> ir.ArrayAttr:
    """The reassociation [[0 .. rank-2], [rank-1]]: leading dims into one."""
    return ir.ArrayAttr.get([ir.ArrayAttr.get([i64(d) for d in range(rank - 1)]),
                             ir.ArrayAttr.get([i64(rank - 1)])])


def as_row_matrix(lhs, residual, out_type, logical=None):
    """(lhs, residual, result type) of a GEMM as 2-D matrices: leading dims collapsed into M.
    `logical`: the patch matrix shape of an implicit-im2col lhs, which stays the padded input
    the kernel reads (only its M is computed)."""
    shape = logical or tensor_shape(lhs)
    rank, lead = len(shape), shape[:-1]
    m = None if None in lead else math.prod(lead)
    dyn = ir.ShapedType.get_dynamic_size()
    m_dim = dyn if m is None else m
    out2_type = ir.RankedTensorType.get([m_dim, out_type.shape[-1]], out_type.element_type)
    if rank > 2:
        if logical is None:
            lhs = tensor.collapse_shape(ir.RankedTensorType.get(
                [m_dim, shape[-1]], element_type(lhs)), lhs, _rows(rank))
        if residual is not None:        # f32, or an int8 kernel's residual codes
            residual = tensor.collapse_shape(ir.RankedTensorType.get(
                out2_type.shape, element_type(residual)), residual, _rows(rank))
    return lhs, residual, out2_type


def from_row_matrix(result, lhs, out_type):
    """A GEMM's 2-D result expanded back to `out_type`, its leading dims read from the
    original `lhs` where dynamic."""
    rank = out_type.rank
    if rank == 2:
        return result
    sizes = [tensor_dim(lhs, d) for d in range(rank - 1) if out_type.is_dynamic_dim(d)]
    return tensor.expand_shape(out_type, result, _rows(rank), sizes,
                               ir.DenseI64ArrayAttr.get(list(out_type.shape)))


def gemm_kernel_function(op, spec, arg_types, result_type, reference=None) -> str:
    """The name of the GEMM kernel function for `spec` in op's module, created on first use
    with a linalg reference body (packed GEMMs here, int8 ones in qgemm_to_linalg, run-time
    products in ember-cpu-contractions); `reference(spec, *args)` builds it (default: the f32
    GEMM's)."""
    reference = reference or _reference_gemm
    module_op = op.operation
    while module_op.name != "builtin.module":
        module_op = module_op.parent
    return kernel_function(module_op.regions[0].blocks[0], KERNEL_ATTR, spec.attr(),
                           ir.FunctionType.get(arg_types, [result_type]), KERNEL_PREFIX,
                           lambda args: [reference(spec, *args)])


def _dequantized(gemm: Gemm):
    """The f32 [K, N] weight that a low-bit GEMM's unpacked codes stand for."""
    return dequantized_weight(gemm.rhs, gemm.rhs_scale, gemm.rhs_offset, gemm.rhs_bits,
                              gemm.rhs_group, tensor_shape(gemm.rhs)[0])


def dequantized_weight(codes, scale, offset, bits: int, group: int, k: int, pairs=False):
    """The f32 [K, N] weight low-bit codes [K, N] (`pairs`: 4-bit codes two per byte,
    [K/2, N], the even k in the low nibble) stand for: q * scale + offset of its group
    (ember.quant.low_bit)."""
    n = tensor_shape(codes)[1]
    f32 = ir.F32Type.get()
    d = [ir.AffineDimExpr.get(i) for i in range(2)]
    group_map = ir.AffineMap.get(2, 0, [ir.AffineExpr.get_floor_div(
        d[0], ir.AffineConstantExpr.get(group)), d[1]])
    code_map = ir.AffineMap.get(2, 0, [ir.AffineExpr.get_floor_div(
        d[0], ir.AffineConstantExpr.get(2)), d[1]]) if pairs else identity_map(2)
    inputs = [v for v in (codes, scale, offset) if v is not None]
    init = tensor.empty([k, n], f32)

    def body(code, scale, *rest):
        offset = rest[0] if len(rest) == 2 else None
        return dequantize_code(_nibble(code, 0) if pairs else code, bits, scale, offset)
    return generic(inputs, init, [code_map] + [group_map] * (len(inputs) - 1) +
                   [identity_map(2)], [PARALLEL, PARALLEL], body)


def _nibble(byte, k_dim: int):
    """A byte of two 4-bit codes shifted so that the code of k (the iteration index `k_dim`;
    an even k in the low nibble) is in the low nibble."""
    odd = arith.remui(linalg.IndexOp(k_dim).result, arith.constant(ir.IndexType.get(), 2))
    return arith.shrui(byte, arith.index_cast(byte.type, arith.muli(
        odd, arith.constant(ir.IndexType.get(), 4))))


def dequantize_code(code, bits: int, scale, offset):
    """One i8 code (a 4-bit one already in the low nibble) as f32: q * scale + offset; on
    scalars or vectors alike (the GPU tensor-core kernel dequantizes a chunk at a time)."""
    q = arith.sitofp(scale.type, code) if bits == 8 else \
        arith.uitofp(scale.type, arith.andi(code, constant(0xF, code.type)))
    w = arith.mulf(q, scale)
    return w if offset is None else arith.addf(w, offset)


def _low_bit_product(spec, lhs, codes, scale, offset, acc):
    """The contraction of a low-bit kernel over (m, n, k): codes, scales and offsets read
    through the panel layout (a 4-bit code from the nibble k % 2 of byte k / 2), each weight
    dequantized (`dequantize_code`), summed in f32."""
    d = [ir.AffineDimExpr.get(i) for i in range(3)]
    nr = ir.AffineConstantExpr.get(spec.nr)
    pairs = spec.weights == "i4"

    def panel_map(row):
        return ir.AffineMap.get(3, 0, [ir.AffineExpr.get_floor_div(d[1], nr), row,
                                       ir.AffineExpr.get_mod(d[1], nr)])
    rows = ir.AffineExpr.get_floor_div(d[2], ir.AffineConstantExpr.get(2)) if pairs else d[2]
    group = ir.AffineExpr.get_floor_div(d[2], ir.AffineConstantExpr.get(spec.group))
    inputs = [v for v in (lhs, codes, scale, offset) if v is not None]

    def body(x, code, s, *rest):
        *o, c = rest
        if pairs:
            code = _nibble(code, 2)
        w = dequantize_code(code, 4 if pairs else 8, s, o[0] if o else None)
        return arith.addf(c, arith.mulf(x, w))
    return generic(inputs, acc, [identity_map(3, [0, 2]), panel_map(rows)] +
                   [panel_map(group)] * (len(inputs) - 2) + [identity_map(3, [0, 1])],
                   [PARALLEL, PARALLEL, REDUCTION], body)


def _reference_gemm(spec, lhs, rhs, *rest):
    """The kernel's linalg body: fill, the contraction (B read through the panel layout when
    packed, A through the patch map for patches; a leading batch dim when batched), epilogue.
    A 16-bit kernel sums in f32 and rounds once, in the epilogue; a low-bit one dequantizes
    each weight as it reads it."""
    if spec.low_bit:
        group_operands, rest = rest[:1 + spec.offsets], rest[1 + spec.offsets:]
    *epilogue_operands, init = rest
    lead = 1 if spec.batch else 0                   # iteration space ([b,] m, n, k)
    rank = lead + 3
    wide_type = accumulator_type(init.type) if not spec.out_scale else \
        ir.RankedTensorType.get(ir.RankedTensorType(init.type).shape, ir.F32Type.get())
    acc = init if wide_type == init.type else \
        empty_like(wide_type, [(init, i) for i in range(rank - 1)])
    wide = element_type(acc)
    acc = linalg.fill(constant(0, wide), outs=[acc])
    if spec.low_bit:
        product = _low_bit_product(spec, lhs, rhs, *group_operands,
                                   *([None] * (not spec.offsets)), acc)
    elif spec.pairs:
        product = _pairs_product(spec, lhs, rhs, acc)
    else:
        b = list(range(lead))
        m, n, k = lead, lead + 1, lead + 2
        if spec.rhs_packed:
            nr = ir.AffineConstantExpr.get(spec.nr)
            d_n = ir.AffineDimExpr.get(n)
            rhs_map = ir.AffineMap.get(rank, 0, [ir.AffineExpr.get_floor_div(d_n, nr),
                                                 ir.AffineDimExpr.get(k),
                                                 ir.AffineExpr.get_mod(d_n, nr)])
        else:
            rhs_map = identity_map(rank, b + [k, n])
        lhs_map = identity_map(rank, b + [m, k]) if spec.patches is None else \
            _patch_map(spec, 3, ir.AffineDimExpr.get(2))
        product = generic([lhs, rhs], acc, [lhs_map, rhs_map, identity_map(rank, b + [m, n])],
                          [PARALLEL] * (rank - 1) + [REDUCTION],
                          lambda x, w, c: arith.addf(c, arith.mulf(widened(x, wide),
                                                                   widened(w, wide))))
    bias = epilogue_operands[0] if spec.bias else None
    residual = epilogue_operands[-1] if spec.residual else None
    return epilogue_op(product, init.type, bias=bias, residual=residual,
                       activation=spec.activation, channel_axis=rank - 2, init=init,
                       quant=spec.out_quantization)


def _pairs_product(spec, lhs, words, acc):
    """The contraction of a pairs kernel over (m, n, w, j): A's element k = 2w + j (a plain
    row, or through the patch map), the half j of B's word w (shifted by a constant [0, 16]
    indexed by j, which also gives the loop its range), summed in f32 (bf16 pairs) or, sign
    extended, in i32 (an integer GEMM's i16 pairs)."""
    shifts_type = ir.RankedTensorType.get([2], ir.IntegerType.get_signless(32))
    shifts = arith.ConstantOp(shifts_type, ir.DenseElementsAttr.get(
        np.array([0, 16], dtype=np.int32), type=shifts_type)).result
    d = [ir.AffineDimExpr.get(i) for i in range(4)]
    k = d[2] * 2 + d[3]
    nr = ir.AffineConstantExpr.get(spec.nr)
    lhs_map = ir.AffineMap.get(4, 0, [d[0], k]) if spec.patches is None else \
        _patch_map(spec, 4, k)
    rhs_map = ir.AffineMap.get(4, 0, [ir.AffineExpr.get_floor_div(d[1], nr), d[2],
                                      ir.AffineExpr.get_mod(d[1], nr)])
    wide = element_type(acc)
    integer = isinstance(wide, ir.IntegerType)

    def body(x, word, shift, c):
        half = arith.trunci(ir.IntegerType.get_signless(16), arith.shrui(word, shift))
        if integer:
            return arith.addi(c, arith.muli(arith.extsi(wide, x), arith.extsi(wide, half)))
        half = arith.bitcast(ir.BF16Type.get(), half)
        return arith.addf(c, arith.mulf(widened(x, wide), widened(half, wide)))
    return generic([lhs, words, shifts], acc,
                   [lhs_map, rhs_map, identity_map(4, [3]), identity_map(4, [0, 1])],
                   [PARALLEL, PARALLEL, REDUCTION, REDUCTION], body)


def _patch_map(spec, dims: int, k) -> ir.AffineMap:
    """(m, ...) -> the padded input element of patch row m (dim 0), column k (an expression
    of the `dims` dims; see ember.gemm's lhs_patches): (m / (OH*OW), (m % (OH*OW)) / OW * SH +
    k / (KW*C) * DH, m % OW * SW + k / C % KW * DW, k % C)."""
    _, _, c, _, kw, sh, sw, dh, dw = spec.patches
    oh, ow = spec.patch_output
    m = ir.AffineDimExpr.get(0)

    def div(e, d):
        return ir.AffineExpr.get_floor_div(e, ir.AffineConstantExpr.get(d))

    def mod(e, d):
        return ir.AffineExpr.get_mod(e, ir.AffineConstantExpr.get(d))
    return ir.AffineMap.get(dims, 0, [div(m, oh * ow), div(mod(m, oh * ow), ow) * sh +
                                   div(k, kw * c) * dh, mod(m, ow) * sw + mod(div(k, c), kw) * dw,
                                   mod(k, c)])
