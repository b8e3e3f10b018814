"""ember.attention -> softmax(q k^T * scale + mask) v as two batched contractions around a
softmax, split over the batch entries in an scf.forall when they are independent. In layout
"bshd" the int8 path reads each head in place; the float path transposes each batch entry
(cache-sized) into the heads-major layout its GEMM kernels recognize.

f16 and bf16 attention computes its scores, softmax and weighted sum in f32 and rounds once
(accumulator_type), as PyTorch's CPU kernels do: bf16 scores of magnitude ~100 are off by
~0.4, which turns into wrong softmax weights.
"""
from __future__ import annotations

from mlir import ir
from mlir.dialects import arith, linalg, scf, tensor

from ember.dialect.ops import Attention
from ember.dialect.shapes import heads_major, heads_seq_swapped
from ember.kit.builders import constant
from ember.kit.epilogue import accumulator_type, narrowed, widened
from ember.kit.structured import LOWEST_F32, PARALLEL, REDUCTION, element_type, elementwise, \
    empty_like, filled, generic, identity_map, tensor_dim, tensor_shape, type_shape
from ember.lowering.qattention_to_linalg import int8_attention, int8_attention_supported
from ember.lowering.reductions_to_linalg import softmax_along


def _batched_contraction(a, b, out_type, dim_sources, a_dims, b_dims):
    """out[..., i, j] = sum_r a[a_dims] * b[b_dims] over iteration space (..., i, j, r)."""
    rank = len(type_shape(out_type))
    acc = filled(out_type, dim_sources, 0.0)
    maps = [identity_map(rank + 1, a_dims), identity_map(rank + 1, b_dims),
            identity_map(rank + 1, range(rank))]
    return generic([a, b], acc, maps, [PARALLEL] * rank + [REDUCTION],
                   lambda x, y, c: arith.addf(c, arith.mulf(widened(x, c.type),
                                                            widened(y, c.type))))


def _causal_mask(scores):
    """scores with -inf-like values where key j > query i + (Sk - Sq)."""
    rank = len(tensor_shape(scores))
    offset = arith.subi(tensor_dim(scores, rank - 1), tensor_dim(scores, rank - 2))
    init = empty_like(scores.type, [(scores, i) for i in range(rank)])

    def body(s, _):
        i = linalg.IndexOp(rank - 2).result
        j = linalg.IndexOp(rank - 1).result
        allowed = arith.cmpi(arith.CmpIPredicate.sle, j, arith.addi(i, offset))
        return arith.select(allowed, s, constant(LOWEST_F32, s.type))
    return generic([scores], init, [identity_map(rank)] * 2, [PARALLEL] * rank, body)


def _attention(q, k, v, mask, scale: float, causal: bool, out_type):
    """softmax(q k^T * scale + mask) v on tensors of any rank >= 2."""
    qs, ks = tensor_shape(q), tensor_shape(k)
    rank = len(qs)
    lead = list(range(rank - 2))
    i, j, r = rank - 2, rank - 1, rank
    compute = ir.RankedTensorType(accumulator_type(out_type)).element_type
    scores_type = ir.RankedTensorType.get(
        [ir.ShapedType.get_dynamic_size() if d is None else d for d in qs[:-1] + [ks[-2]]],
        compute)
    scores = _batched_contraction(q, k, scores_type,
                                  [(q, d) for d in range(rank - 1)] + [(k, rank - 2)],
                                  lead + [i, r], lead + [j, r])
    operands = [scores] + ([mask] if mask is not None else [])
    scores = elementwise(operands, scores_type,
                         lambda s, *m: arith.addf(arith.mulf(s, constant(scale, s.type)),
                                                  widened(m[0], s.type)) if m
                         else arith.mulf(s, constant(scale, s.type)))
    if causal:
        scores = _causal_mask(scores)
    probs = softmax_along(scores, rank - 1, zero_empty_rows=True)
    vs = tensor_shape(v)
    # Iteration space (..., i, r, j): the innermost loop runs along rows of v and of the
    # output (contiguous), so it vectorizes without reassociating the sum.
    acc = filled(accumulator_type(out_type),
                 [(q, d) for d in range(rank - 1)] + [(v, len(vs) - 1)], 0.0)
    maps = [identity_map(rank + 1, lead + [i, j]), identity_map(rank + 1, lead + [j, r]),
            identity_map(rank + 1, lead + [i, r])]
    out = generic([probs, v], acc, maps, [PARALLEL] * (rank - 1) + [REDUCTION, PARALLEL],
                  lambda x, y, c: arith.addf(c, arith.mulf(x, widened(y, c.type))))
    if out.type == out_type:
        return out
    return elementwise([out], out_type,
                       lambda x: narrowed(x, ir.RankedTensorType(out_type).element_type))


def _heads_swapped(x):
    """x with dims -3 and -2 swapped ([.., S, H, D] <-> [.., H, S, D]), a linalg.transpose: a
    "bshd" attention's batch entry (cache-sized) for the float path, whose products
    ember-cpu-contractions (and the GPU kernels) recognize in the heads-major layout only."""
    shape = tensor_shape(x)
    perm = heads_seq_swapped(len(shape))
    init = empty_like(ir.RankedTensorType.get(
        [ir.ShapedType.get_dynamic_size() if shape[p] is None else shape[p] for p in perm],
        element_type(x)), [(x, p) for p in perm])
    return linalg.transpose(x, outs=[init], permutation=perm).results[0]


def _attention_on(op: Attention, q, k, v, mask, out_type, dest=None):
    """One attention (of a batch entry, when split): on the int8 kernel where the op is int8
    for a target (int8_panel) and the operands allow, else in the op's own precision. `dest`
    (of out_type): where the int8 path writes its heads (the forall's slice of the result,
    so that no buffer of its own is copied there)."""
    layout = op.layout_name
    if op.int8 and op.int8_panel is not None and \
            int8_attention_supported(q, k, v, mask, layout):
        return int8_attention(q, k, v, mask, op.scale, out_type, op.int8_encoding,
                              op.int8_panel, _causal_mask if op.causal else None, layout,
                              dest)
    if layout == "bhsd":
        return _attention(q, k, v, mask, op.scale, op.causal, out_type)
    heads_major_type = ir.RankedTensorType.get(heads_major(list(out_type.shape), layout),
                                               out_type.element_type)
    return _heads_swapped(_attention(*(_heads_swapped(x) for x in (q, k, v)), mask, op.scale,
                                     op.causal, heads_major_type))


def _same_leading_dim(a, b) -> bool:
    """Whether dim 0 of a and b is provably the same size (equal static, or both dynamic)."""
    da, db = tensor_shape(a)[0], tensor_shape(b)[0]
    return da == db


def _slice_leading(x, index):
    """x[index] (dim 0 dropped) as a rank-reduced tensor.extract_slice."""
    shape = tensor_shape(x)
    dyn = ir.ShapedType.get_dynamic_size()
    sizes = [1] + [dyn if d is None else d for d in shape[1:]]
    dynamic = [tensor_dim(x, d) for d in range(1, len(shape)) if shape[d] is None]
    out_type = ir.RankedTensorType.get(sizes[1:], element_type(x))
    static_offsets = [dyn] + [0] * (len(shape) - 1) if not isinstance(index, int) \
        else [index] + [0] * (len(shape) - 1)
    offsets = [] if isinstance(index, int) else [index]
    return tensor.ExtractSliceOp(out_type, x, offsets, dynamic, [], static_offsets, sizes,
                                 [1] * len(shape)).result


def lower_attention(op: Attention):
    """softmax(q k^T * scale + mask) v, as two batched contractions around a softmax.

    With a leading (batch) dim shared by q, k, v (and the mask, or a mask broadcast over it),
    the batch entries are the iterations of an scf.forall (OpenMP threads on the host), each
    computing one entry's attention in cache-sized pieces. (In layout "bshd" dim 0 of a rank-3
    operand is the sequence: it is split from rank 4 on.)"""
    q, k, v, mask = op.query, op.key, op.value, op.mask
    out_type = ir.RankedTensorType(op.result.type)
    rank = len(tensor_shape(q))
    least = 3 if op.layout_name == "bhsd" else 4
    split = rank >= least and _same_leading_dim(q, k) and _same_leading_dim(q, v)
    mask_rank = len(tensor_shape(mask)) if mask is not None else 0
    if split and mask_rank == rank:
        split = tensor_shape(mask)[0] == 1 or _same_leading_dim(q, mask)
    if not split:
        return _attention_on(op, q, k, v, mask, out_type)
    init = empty_like(out_type, [(q, d) for d in range(rank - 1)] + [(v, rank - 1)])
    batch = tensor_shape(q)[0]
    forall = scf.ForallOp([0], [batch if batch is not None else tensor_dim(q, 0)], [1], [init])
    with ir.InsertionPoint(forall.body):
        b = forall.induction_variables[0]
        dest = forall.inner_iter_args[0]
        sub_mask = mask
        if mask is not None and mask_rank == rank:
            sub_mask = _slice_leading(mask, 0 if tensor_shape(mask)[0] == 1 else b)
        sub_type = ir.RankedTensorType.get(list(out_type.shape)[1:], out_type.element_type)
        part = _attention_on(op, _slice_leading(q, b), _slice_leading(k, b),
                             _slice_leading(v, b), sub_mask, sub_type, _slice_leading(dest, b))
        dyn = ir.ShapedType.get_dynamic_size()
        out_shape = tensor_shape(op.result)
        sizes = [1] + [dyn if d is None else d for d in out_shape[1:]]
        dynamic = [tensor_dim(part, d - 1) for d in range(1, rank) if out_shape[d] is None]
        with ir.InsertionPoint(forall.terminator().block):
            tensor.ParallelInsertSliceOp(part, dest, [b], dynamic, [],
                                         [dyn] + [0] * (rank - 1), sizes, [1] * rank)
    return forall.results[0]
