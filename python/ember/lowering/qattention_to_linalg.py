"""int8 attention: ember.attention's two products on the int8 GEMM kernel, head by head.

    keys K [Sk, D]:     s8 codes per key (row), symmetric, scales k_s [Sk]: the product's
                        columns, packed at run time into the kernel's word panels
                        [ceil(Sk/NR), D/4, NR]
    scores [Sq, Sk] =   qgemm(Q, K panels, column scales k_s * scale, residual = the mask)
    P = softmax(scores), never written: its per-row codes come straight from exp(s - max)
                        (the row's largest probability, 1/sum, takes the top code; the sum
                        moves into the row scale)
    values V [Sk, Dv]:  s8 codes per channel (column), scales v_s [Dv], packed likewise from
                        V^T (a word holds 4 consecutive keys of one channel)
    out [Sq, Dv] =      int8 kernel(P codes, row scales, V panels, v_s)

The first product is an `ember.qgemm` with a run-time packed rhs, lowered on the spot by
qgemm_to_linalg (Q quantized per row as the target's kernel reads it: the dynamic scheme of
a quantized Linear); the second calls the same int8 kernel on the probabilities' codes; the compensation of that encoding's zero point is
summed at run time, and the target's int8 kernel (AMX, VNNI, smmla, ...) does the products.
Sequence lengths and head dims must be static (the kernel's N and K).
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, linalg, math as mmath, tensor

from ember.dialect.ops import QGemm
from ember.kit.builders import constant
from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.kit.structured import LOWEST_F32, PARALLEL, REDUCTION, elementwise, empty_like, \
    filled, generic, identity_map, pad, reduce_trailing, tensor_shape
from ember.lowering.qgemm_to_linalg import int8_kernel_call, lower_qgemm, quantize_rows
from ember.quant.schemes import encoding


def int8_attention_supported(q, k, v, mask) -> bool:
    """Whether the int8 path takes these operands: f32, rank 2 or 3 (heads leading), every
    size static, no mask or a static f32 one broadcastable to the scores [(H,) Sq, Sk]."""
    values = [q, k, v] + ([mask] if mask is not None else [])
    if any(not isinstance(ir.RankedTensorType(x.type).element_type, ir.F32Type)
           for x in values):
        return False
    shapes = [tensor_shape(x) for x in values]
    if len(shapes[0]) not in (2, 3) or any(None in s for s in shapes):
        return False
    if mask is None:
        return True
    scores = shapes[0][:-1] + [shapes[1][-2]]
    m = shapes[3]
    return len(m) <= len(scores) and \
        all(d in (1, s) for d, s in zip(reversed(m), reversed(scores)))


def int8_attention(q, k, v, mask, scale: float, out_type, encoding_name: str, panel: int,
                   after_scores=None):
    """softmax(q k^T * scale + mask) v with both products on the int8 kernel, for operands
    int8_attention_supported takes (a leading head dim is looped over). `after_scores`, when
    given, transforms one head's f32 scores before the softmax (the causal mask)."""
    def head(qh, kh, vh, mh, result_type):
        scores = _key_product(qh, kh, mh, scale, encoding_name, panel)
        if after_scores is not None:
            scores = after_scores(scores)
        return _value_product(scores, vh, result_type, encoding_name, panel)

    if len(tensor_shape(q)) == 2:
        return head(q, k, v, _head_mask(mask, 0, q, k), out_type)
    heads = tensor_shape(q)[0]
    head_type = ir.RankedTensorType.get(list(out_type.shape)[1:], out_type.element_type)
    result = tensor.empty(list(out_type.shape), out_type.element_type)
    for h in range(heads):
        qh = _head_of(q, h)
        kh = _head_of(k, h)
        part = head(qh, kh, _head_of(v, h), _head_mask(mask, h, qh, kh), head_type)
        s, d = tensor_shape(part)
        result = tensor.InsertSliceOp(part, result, [], [], [], [h, 0, 0], [1, s, d],
                                      [1, 1, 1]).result
    return result


def _head_mask(mask, h: int, q, k):
    """Head h's additive mask as the scores' [Sq, Sk] (the kernel adds it as its residual):
    its slice of a per-head mask, broadcast where the mask is."""
    if mask is None:
        return None
    if len(tensor_shape(mask)) == 3:
        mask = _head_of(mask, h if tensor_shape(mask)[0] > 1 else 0)
    scores = [tensor_shape(q)[0], tensor_shape(k)[0]]
    if tensor_shape(mask) == scores:
        return mask
    return elementwise([mask], ir.RankedTensorType.get(scores, ir.F32Type.get()), lambda x: x)


def _head_of(x, h: int):
    """x[h] of a [H, S, D] tensor, as [S, D]."""
    _, s, d = tensor_shape(x)
    out_type = ir.RankedTensorType.get([s, d], ir.RankedTensorType(x.type).element_type)
    return tensor.ExtractSliceOp(out_type, x, [], [], [], [h, 0, 0], [1, s, d],
                                 [1, 1, 1]).result


def _key_product(q, k, mask, scale: float, encoding_name: str, nr: int):
    """q k^T * scale + mask: K's rows are the product's columns; the softmax scale joins
    their scales."""
    panels, scales, comp = _runtime_rhs(k, encoding_name, nr)
    scales = elementwise([scales], scales.type,
                         lambda s: arith.mulf(s, constant(scale, s.type)))
    sq, sk = tensor_shape(q)[0], tensor_shape(k)[0]
    return _product(q, panels, scales, comp, mask,
                    ir.RankedTensorType.get([sq, sk], ir.F32Type.get()), encoding_name, nr)


def _value_product(scores, v, result_type, encoding_name: str, nr: int):
    """softmax(scores) v: the probabilities' codes straight from the softmax, V's channels
    (the rows of V^T) the product's columns."""
    sk, dv = tensor_shape(v)
    init = tensor.empty([dv, sk], ir.RankedTensorType(v.type).element_type)
    vt = linalg.transpose(v, outs=[init], permutation=[1, 0]).results[0]
    panels, scales, comp = _runtime_rhs(vt, encoding_name, nr)
    codes, row_scales = _probability_codes(scores, encoding(encoding_name))
    m, k4 = tensor_shape(codes)
    spec = GemmKernelSpec(m=m, n=dv, k=k4 // 4, nr=nr, int8=encoding_name)
    return int8_kernel_call(codes.owner, spec, [codes, panels, row_scales, scales, comp],
                            tensor.empty(list(ir.RankedTensorType(result_type).shape),
                                         ir.F32Type.get()))


def _probability_codes(scores, enc):
    """(codes i8 [Sq, Sk'], row scales f32 [Sq]) of softmax(scores) quantized per row in
    `enc`, without the probabilities themselves: a row's largest probability is 1 / sum
    (its exp(max - max) = 1), so the per-row codes are roundeven(exp(s - max) * qmax) + zp
    and the row's scale 1 / (sum * qmax), the division by the sum moved into the scale. A
    fully masked row (sum 0) gets scale 0: zeros, as PyTorch's attention gives; a row with
    a NaN score, NaN. Sk' is Sk
    padded to a multiple of 4 with scores whose exp is 0."""
    sq, sk = tensor_shape(scores)
    if sk % 4:
        scores = pad(scores, [0, 0], [0, -sk % 4], LOWEST_F32)
    mx = reduce_trailing(scores, 1, LOWEST_F32, arith.maximumf)
    # exp once per score (written, then summed and coded): a second exp cost more than the
    # write and the two reads of this L2-sized tile.
    exps = generic([scores, mx], empty_like(scores.type, [None, None]),
                   [identity_map(2), identity_map(2, [0]), identity_map(2)], [PARALLEL] * 2,
                   lambda v, m, _: mmath.exp(arith.subf(v, m)))
    total = reduce_trailing(exps, 1, 0.0, arith.addf)
    f32 = ir.F32Type.get()
    qmax = constant(float(enc.qmax), f32)
    i8 = ir.IntegerType.get_signless(8)

    def code(e):
        c = arith.fptosi(ir.IntegerType.get_signless(32), mmath.roundeven(arith.mulf(e, qmax)))
        return arith.trunci(i8, arith.addi(c, constant(enc.zero_point, c.type)))
    codes = elementwise([exps], ir.RankedTensorType.get(tensor_shape(scores), i8), code)

    def row_scale(t):
        positive = arith.cmpf(arith.CmpFPredicate.UNE, t, constant(0.0, f32))   # NaN: NaN
        safe = arith.select(positive, arith.mulf(t, qmax), constant(1.0, f32))
        return arith.select(positive, arith.divf(constant(1.0, f32), safe), constant(0.0, f32))
    return codes, elementwise([total], total.type, row_scale)


def _runtime_rhs(rows, encoding_name: str, nr: int):
    """The int8 kernel's rhs for rhs[k, n] = rows[n, k] (f32 rows [N, K]): (word panels i32
    [ceil(N/NR), ceil(K/4), NR], s8 codes 4 consecutive k to a word, zero-padded; the rows'
    symmetric scales f32 [N]; the compensation i32 [N] of the kernel's activation zero point,
    zp * sum_k codes[n, k])."""
    codes, scales = quantize_rows(rows, encoding("s8"), multiple=4)
    n, k4 = tensor_shape(codes)
    panels = -(-n // nr)
    padded = pad(codes, [0, 0], [panels * nr - n, 0], 0) if panels * nr != n else codes
    i32 = ir.IntegerType.get_signless(32)
    p, w, c = (ir.AffineDimExpr.get(i) for i in range(3))
    maps = [ir.AffineMap.get(3, 0, [p * nr + c, w * 4 + j]) for j in range(4)]

    def word(*args):
        *parts, _ = args
        out = arith.extui(i32, parts[0])
        for j in range(1, 4):
            out = arith.ori(out, arith.shli(arith.extui(i32, parts[j]), constant(8 * j, i32)))
        return out
    words = generic([padded] * 4, empty_like(ir.RankedTensorType.get([panels, k4 // 4, nr], i32),
                                             [None] * 3),
                    maps + [identity_map(3)], [PARALLEL] * 3, word)
    zero_point = constant(encoding(encoding_name).zero_point, i32)
    sums = filled(ir.RankedTensorType.get([n], i32), [None], 0)
    comp = generic([codes], sums, [identity_map(2), identity_map(2, [0])],
                   [PARALLEL, REDUCTION],
                   lambda x, acc: arith.addi(acc, arith.muli(arith.extsi(i32, x), zero_point)))
    return words, scales, comp


def _product(lhs, panels, scales, comp, residual, result_type, encoding_name: str, nr: int):
    """lhs (f32, quantized per row) times the packed rhs: an ember.qgemm built at the
    insertion point and lowered there by lower_qgemm (its kernel function joins the
    module)."""
    qgemm = QGemm.build(lhs, panels, scales, result_type, rhs_compensation=comp,
                        residual=residual, lhs_encoding=encoding_name, rhs_panel=nr)
    value = lower_qgemm(QGemm(qgemm.owner))
    qgemm.owner.erase()
    return value
