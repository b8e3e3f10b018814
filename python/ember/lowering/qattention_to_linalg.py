"""int8 attention: ember.attention's two products on the int8 GEMM kernel, head by head.

    keys K [Sk, D]:     s8 codes per key (row), symmetric, scales k_s [Sk]: the product's
                        columns, packed at run time into the kernel's word panels
                        [ceil(Sk/NR), D/4, NR]
    scores [Sq, Sk] =   qgemm(Q, K panels, column scales k_s * scale, residual = the mask)
    P = softmax(scores), never written: its per-row codes come straight from exp(s - max)
                        (the row's largest probability, 1/sum, takes the top code; the sum
                        moves into the row scale), zero point 0 (probabilities are >= 0)
    values V [Sk, Dv]:  s8 codes per channel (column), scales v_s [Dv], packed into word
                        panels [ceil(Dv/NR), Sk/4, NR] from V's rows as they lie (a word
                        holds 4 consecutive keys of one channel)
    out [Sq, Dv] =      int8 kernel(P codes, row scales, V panels, v_s)

The first product is an `ember.qgemm` with a run-time packed rhs, lowered on the spot by
qgemm_to_linalg (Q quantized per row as the target's kernel reads it: the dynamic scheme of
a quantized Linear, K's compensation of that encoding's zero point summed at run time); the
second calls the same int8 kernel on the probabilities' codes. The target's int8 kernel (AMX,
VNNI, smmla, ...) does the products. Sequence lengths and head dims must be static (the
kernel's N and K). A head may be a strided slice (layout "bshd": [S, H, D]): Q and K are read
by their quantization, V by its packing, and the head's output is written into its place.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, linalg, math as mmath, tensor

from ember.dialect.ops import QGemm
from ember.dialect.shapes import heads_major
from ember.kit.builders import constant
from ember.kit.gemm_kernel_spec import GemmKernelSpec
from ember.kit.structured import LOWEST_F32, PARALLEL, REDUCTION, element_type, elementwise, \
    empty_like, filled, generic, identity_map, pad, reduce_trailing, tensor_shape
from ember.kit.vector_math import exp_to_codes
from ember.lowering.qgemm_to_linalg import code_of, int8_kernel_call, lower_qgemm, \
    magnitude_bits, quantize_rows, scales_from_amax
from ember.quant.schemes import encoding


def int8_attention_supported(q, k, v, mask, layout: str = "bhsd") -> bool:
    """Whether the int8 path takes these operands: f32, rank 2 or 3 (heads leading, or in
    layout "bshd" heads in the middle: [S, H, D]), every size static, no mask or a static f32
    one broadcastable to the scores [(H,) Sq, Sk]."""
    values = [q, k, v] + ([mask] if mask is not None else [])
    if any(not isinstance(ir.RankedTensorType(x.type).element_type, ir.F32Type)
           for x in values):
        return False
    shapes = [tensor_shape(x) for x in values]
    ranks = (2, 3) if layout == "bhsd" else (3,)
    if len(shapes[0]) not in ranks or any(None in s for s in shapes):
        return False
    if mask is None:
        return True
    qs, ks = (heads_major(x, layout) for x in shapes[:2])
    scores = qs[:-1] + [ks[-2]]
    m = shapes[3]
    return len(m) <= len(scores) and \
        all(d in (1, s) for d, s in zip(reversed(m), reversed(scores)))


def int8_attention(q, k, v, mask, scale: float, out_type, encoding_name: str, panel: int,
                   after_scores=None, layout: str = "bhsd", dest=None):
    """softmax(q k^T * scale + mask) v with both products on the int8 kernel, for operands
    int8_attention_supported takes (the head dim is looped over; in "bshd" each head is a
    strided slice, read where it lies). `after_scores`, when given, transforms one head's f32
    scores before the softmax (the causal mask). `dest` (of out_type), when given, receives
    the heads in place of a new tensor."""
    def head(qh, kh, vh, mh, init):
        scores = _key_product(qh, kh, mh, scale, encoding_name, panel)
        if after_scores is not None:
            scores = after_scores(scores)
        return _value_product(scores, vh, init, encoding_name, panel)

    shape = list(out_type.shape)
    result = tensor.empty(shape, ir.F32Type.get()) if dest is None else dest
    if len(shape) == 2:
        return head(q, k, v, _head_mask(mask, 0, q, k), result)
    at = 0 if layout == "bhsd" else 1
    heads = tensor_shape(q)[at]
    for h in range(heads):
        qh = _head_of(q, h, at)
        kh = _head_of(k, h, at)
        part = head(qh, kh, _head_of(v, h, at), _head_mask(mask, h, qh, kh),
                    tensor.empty(shape[:at] + shape[at + 1:], ir.F32Type.get()))
        # Copied into its place by a linalg.copy (vector loads and stores of its rows), which
        # the insert then leaves in place: an insert alone bufferizes to a memcpy call per row.
        part = linalg.copy(part, outs=[_head_of(result, h, at)])
        offsets, sizes = [0, 0, 0], list(shape)
        offsets[at], sizes[at] = h, 1
        result = tensor.InsertSliceOp(part, result, [], [], [], offsets, sizes,
                                      [1, 1, 1]).result
    return result


def _head_mask(mask, h: int, q, k):
    """Head h's additive mask for the scores' kernel, as (bias [Sk], residual [Sq, Sk]), one of
    them None: a mask shared by every query (a padding mask, [.., 1, Sk]) is the product's
    bias, read once per column; any other is its residual, broadcast to [Sq, Sk] where it
    is (a per-head mask sliced first)."""
    if mask is None:
        return None, None
    if len(tensor_shape(mask)) == 3:
        mask = _head_of(mask, h if tensor_shape(mask)[0] > 1 else 0, 0)
    scores = [tensor_shape(q)[0], tensor_shape(k)[0]]
    shape = tensor_shape(mask)
    if shape[-1] == scores[1] and all(d == 1 for d in shape[:-1]):
        if len(shape) == 1:
            return mask, None
        row = ir.RankedTensorType.get(shape[-1:], ir.F32Type.get())
        return tensor.ExtractSliceOp(row, mask, [], [], [], [0, 0], [1, shape[-1]],
                                     [1, 1]).result, None
    if shape == scores:
        return None, mask
    return None, elementwise([mask], ir.RankedTensorType.get(scores, ir.F32Type.get()),
                             lambda x: x)


def _head_of(x, h: int, at: int):
    """Head h of a rank-3 tensor whose dim `at` is the heads ([H, S, D]: x[h]; [S, H, D]:
    x[:, h], a strided view), as [S, D]."""
    shape = tensor_shape(x)
    offsets, sizes = [0, 0, 0], list(shape)
    offsets[at], sizes[at] = h, 1
    out_type = ir.RankedTensorType.get(shape[:at] + shape[at + 1:],
                                       ir.RankedTensorType(x.type).element_type)
    return tensor.ExtractSliceOp(out_type, x, [], [], [], offsets, sizes, [1, 1, 1]).result


def _key_product(q, k, mask, scale: float, encoding_name: str, nr: int):
    """q k^T * scale + mask (bias, residual): K's rows are the product's columns; the softmax
    scale joins their scales."""
    panels, scales, comp = _runtime_rhs(k, encoding_name, nr)
    scales = elementwise([scales], scales.type,
                         lambda s: arith.mulf(s, constant(scale, s.type)))
    sq, sk = tensor_shape(q)[0], tensor_shape(k)[0]
    bias, residual = mask
    qgemm = QGemm.build(q, panels, scales, ir.RankedTensorType.get([sq, sk], ir.F32Type.get()),
                        rhs_compensation=comp, bias=bias, residual=residual,
                        lhs_encoding=encoding_name, rhs_panel=nr)
    value = lower_qgemm(QGemm(qgemm.owner))
    qgemm.owner.erase()
    return value


def _value_product(scores, v, init, encoding_name: str, nr: int):
    """softmax(scores) v into `init` (f32 [Sq, Dv]): the probabilities' codes straight from
    the softmax, V's channels the product's columns, packed from V's rows where they lie (no
    transpose)."""
    panels, scales = _value_panels(v, nr)
    codes, row_scales = _probability_codes(scores, encoding(encoding_name))
    m, k4 = tensor_shape(codes)
    dv = tensor_shape(v)[1]
    spec = GemmKernelSpec(m=m, n=dv, k=k4 // 4, nr=nr, int8=encoding_name)
    # The probabilities' codes have zero point 0: the product owes no compensation.
    none_owed = filled(ir.RankedTensorType.get([dv], ir.IntegerType.get_signless(32)),
                       [None], 0)
    return int8_kernel_call(codes.owner, spec, [codes, panels, row_scales, scales, none_owed],
                            init)


def _value_panels(v, nr: int):
    """V [Sk, Dv] (f32; its rows may be strided, a head of a [S, H, D] tensor) as the int8
    kernel's rhs: (word panels i32 [ceil(Dv/NR), ceil(Sk/4), NR], a word holding the s8 codes
    of 4 consecutive keys of one channel, zero-padded; the channels' symmetric scales f32
    [Dv]). Made from V's rows as they lie: word (p, w, c) reads rows 4w..4w+3 at channel
    p*NR + c, contiguous in c for each of the four, so it is one vectorized pass (a transpose
    of V first cost ~10% of the attention, in gathers)."""
    sk, dv = tensor_shape(v)
    f32, i32 = ir.F32Type.get(), ir.IntegerType.get_signless(32)
    amax = generic([v], filled(ir.RankedTensorType.get([dv], i32), [None], 0),
                   [identity_map(2), identity_map(2, [1])], [REDUCTION, PARALLEL],
                   lambda x, acc: arith.maxsi(acc, magnitude_bits(x)))
    enc = encoding("s8")
    scales, inverse = scales_from_amax(amax, enc)
    panels, words = -(-dv // nr), -(-sk // 4)
    if (words * 4, panels * nr) != (sk, dv):
        v = pad(v, [0, 0], [words * 4 - sk, panels * nr - dv])
        inverse = pad(inverse, [0], [panels * nr - dv])
    inverse = _split_last(inverse, [panels, nr])
    rows = [_split_last(tensor.ExtractSliceOp(
        ir.RankedTensorType.get([words, panels * nr], f32), v, [], [], [], [j, 0],
        [words, panels * nr], [4, 1]).result, [panels, nr]) for j in range(4)]
    p, w, c = (ir.AffineDimExpr.get(i) for i in range(3))

    def word(*args):
        *xs, inv, _ = args
        out = arith.andi(code_of(xs[0], inv, enc), constant(0xFF, i32))
        for j in range(1, 4):
            byte = arith.andi(code_of(xs[j], inv, enc), constant(0xFF, i32))
            out = arith.ori(out, arith.shli(byte, constant(8 * j, i32)))
        return out
    init = empty_like(ir.RankedTensorType.get([panels, words, nr], i32), [None] * 3)
    packed = generic(rows + [inverse], init,
                     [ir.AffineMap.get(3, 0, [w, p, c])] * 4 +
                     [identity_map(3, [0, 2]), identity_map(3)], [PARALLEL] * 3, word)
    return packed, scales


def _split_last(x, sizes):
    """x [..., prod(sizes)] viewed as [..., *sizes] (static shapes; a view, even of a strided
    slice)."""
    shape = tensor_shape(x)
    lead = len(shape) - 1
    groups = [[d] for d in range(lead)] + [list(range(lead, lead + len(sizes)))]
    out = ir.RankedTensorType.get(shape[:-1] + list(sizes), element_type(x))
    return tensor.expand_shape(out, x, groups, [], ir.DenseI64ArrayAttr.get(list(out.shape)))


def _probability_codes(scores, enc):
    """(codes i8 [Sq, Sk'], row scales f32 [Sq]) of softmax(scores) quantized per row for the
    kernel's encoding `enc`, without the probabilities themselves. Probabilities are never
    negative, so their codes take zero point 0 and the encoding's whole top range (top =
    zero point + qmax: 255 for u8, 127 for s8 and u7) and the product owes no compensation.
    A row's largest probability is 1 / sum (its exp(max - max) = 1), so the codes are
    roundeven(exp(s - max) * top) and the row's scale 1 / (sum * top), the division by the
    sum moved into the scale; exp to 1e-5 relative (exp_to_codes: a code's rounding error is
    400 times that), half the instructions of a full-precision exp, the attention's largest
    cost. A fully masked row (sum 0) gets scale 0: zeros, as PyTorch's
    attention gives; a row with a NaN score, NaN. Sk' is Sk padded to a multiple of 4 with
    scores whose exp is 0."""
    sq, sk = tensor_shape(scores)
    if sk % 4:
        scores = pad(scores, [0, 0], [0, -sk % 4], LOWEST_F32)
    mx = reduce_trailing(scores, 1, LOWEST_F32, arith.maximumf)
    # exp once per score (written, then summed and coded): a second exp cost more than the
    # write and the two reads of this L2-sized tile.
    exps = generic([scores, mx], empty_like(scores.type, [None, None]),
                   [identity_map(2), identity_map(2, [0]), identity_map(2)], [PARALLEL] * 2,
                   lambda v, m, _: exp_to_codes(arith.subf(v, m)))
    total = reduce_trailing(exps, 1, 0.0, arith.addf)
    f32 = ir.F32Type.get()
    top = constant(float(enc.zero_point + enc.qmax), f32)
    i8 = ir.IntegerType.get_signless(8)

    def code(e):
        c = arith.fptosi(ir.IntegerType.get_signless(32), mmath.roundeven(arith.mulf(e, top)))
        return arith.trunci(i8, c)
    codes = elementwise([exps], ir.RankedTensorType.get(tensor_shape(scores), i8), code)

    def row_scale(t):
        positive = arith.cmpf(arith.CmpFPredicate.UNE, t, constant(0.0, f32))   # NaN: NaN
        safe = arith.select(positive, arith.mulf(t, top), constant(1.0, f32))
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
