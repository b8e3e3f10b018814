"""ember's own FX-level decompositions, applied with torch-mlir's table at torch.export time.

Ten kinds of entries:
- `adaptive_avg_pool2d` and `adaptive_max_pool2d` with uneven windows, which torch-mlir's
  lowering rejects at run time (PyTorch's own decomposition for avg; window gathers for max).
- arithmetic on complex tensors (add, sub, mul, abs) as real arithmetic on their parts, where
  torch-mlir's lowering emits invalid IR or none; real tensors keep the ops (NotImplemented).
- uint8 ops whose torch-mlir lowering treats the bytes as signed, computed on int16 copies.
- `scaled_dot_product_attention`, normalized into the form `ember.attention` takes (a float
  additive mask, no GQA, `is_causal` only when query and key lengths are provably equal, since
  PyTorch aligns its causal mask top-left and ember.attention bottom-right). A call already in
  that form is kept whole (the function returns NotImplemented).
- `sort(stable=...)`, which torch-mlir does not know, as plain `sort`.
- `reciprocal` of integers on the float tensor PyTorch returns (torch-mlir's lowering asserts
  that no element is 0, where PyTorch gives inf).
- `embedding_bag` (modes sum, with or without `per_sample_weights`, and mean) as an embedding
  lookup (ember.embedding, which ember-quantize can make int8), a scaling and an index_add
  into the bags: torch-mlir's lowering ignores the weights (plain sums, silently wrong) and
  refuses the mean mode.
- `logcumsumexp` along a static dim of at most 1024 as a max-shifted logsumexp of each prefix
  (O(n^2), as the sorts are): torch-mlir's log(cumsum(exp(x))) overflows past x ~ 88 and turns
  -inf prefixes into NaN.
- `addmm` on integers as `beta * input + alpha * mm`: ember keeps addmm whole for its float
  GEMMs, and torch-mlir's own decomposition of it declines integers (its mm lowers them).
- `topk` as k passes of argmax: torch-mlir's topk is a full sort, which its TMTensor lowering
  (and so ember's, tm_tensor_to_loops.py) does as an O(n^2) bubble sort; k passes are O(k n).
  Ties pick the lowest index first; an input holding -inf (+inf for smallest) among the top k
  may repeat an index.
Nothing here knows about MLIR.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch

ATEN = torch.ops.aten


def _statically_equal(a, b) -> bool:
    from torch.fx.experimental.symbolic_shapes import statically_known_true
    return statically_known_true(a == b)


def _along(values: torch.Tensor, dim: int, rank: int) -> torch.Tensor:
    """A 1-D tensor reshaped to broadcast along `dim` of a rank-`rank` tensor."""
    return values.reshape([-1 if d == dim else 1 for d in range(rank)])


def _lowest(dtype: torch.dtype):
    return float("-inf") if dtype.is_floating_point else torch.iinfo(dtype).min


# ------------------------------------------------------------------ attention
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    changed = bool(enable_gqa)
    if enable_gqa and not _statically_equal(query.size(-3), key.size(-3)):
        groups = query.size(-3) // key.size(-3)   # kv head j serves q heads j*groups + g

        def repeat(t):
            return t.unsqueeze(-3).expand(*t.shape[:-2], groups, *t.shape[-2:]).flatten(-4, -3)
        key, value = repeat(key), repeat(value)
    mask = attn_mask
    if is_causal and not _statically_equal(query.size(-2), key.size(-2)):
        rows = torch.arange(query.size(-2), device=query.device)
        cols = torch.arange(key.size(-2), device=query.device)
        keep = cols[None, :] <= rows[:, None]       # PyTorch's top-left aligned causal mask
        if mask is None or mask.dtype == torch.bool:
            mask = keep if mask is None else mask & keep
        else:
            mask = mask.masked_fill(~keep, float("-inf"))
        is_causal, changed = False, True
    if mask is not None and mask.dtype == torch.bool:
        zero = torch.zeros((), dtype=query.dtype, device=query.device)
        mask = torch.where(mask, zero, zero - float("inf"))
        changed = True
    if not changed:
        return NotImplemented  # already in ember.attention's form: keep it whole
    return ATEN.scaled_dot_product_attention.default(query, key, value, mask, dropout_p,
                                                     is_causal, scale=scale)


# ------------------------------------------------------------------ pooling
def adaptive_avg_pool2d(x, output_size):
    """Kept whole when every window has the same size (ember.pool2d for the global case,
    torch-mlir's lowering otherwise); uneven windows, which that lowering rejects with a
    run-time abort, take PyTorch's general decomposition (gathers and a masked mean)."""
    if all(_statically_equal(i % o, 0) for i, o in zip(x.shape[-2:], output_size)):
        return NotImplemented
    from torch._decomp.decompositions import adaptive_avg_pool2d as general
    return general(x, output_size)


def _window_positions(size: int, out: int, device) -> torch.Tensor:
    """[out, longest window] input positions of each adaptive window along one dim (PyTorch's
    windows: start floor(i*size/out), end ceil((i+1)*size/out)); a window shorter than the
    longest repeats its last position, which changes neither its max nor which one is first."""
    longest = max(-((i + 1) * size // -out) - i * size // out for i in range(out))
    window = torch.arange(out, device=device)
    starts = torch.div(window * size, out, rounding_mode="floor")
    last = torch.div((window + 1) * size + out - 1, out, rounding_mode="floor") - 1
    return torch.minimum(starts[:, None] + torch.arange(longest, device=device), last[:, None])


def adaptive_max_pool2d(x, output_size):
    """Kept whole when every window has the same size (torch-mlir decomposes that into
    max_pool2d); uneven windows, for which torch-mlir emits a max_pool2d whose result shape is
    not its window's (with a failing run-time assert) and PyTorch has no decomposition, become a
    gather of each window (short windows repeat their last element) and a max over it. Returns
    the values and PyTorch's indices (flat h * W + w of each window's first maximum)."""
    height, width = x.shape[-2:]
    if any(isinstance(d, torch.SymInt) for d in (height, width)) or \
            all(i % o == 0 for i, o in zip((height, width), output_size)):
        return NotImplemented
    rows = _window_positions(height, output_size[0], x.device)        # [oh, kh]
    cols = _window_positions(width, output_size[1], x.device)         # [ow, kw]
    windows = x[..., rows[:, :, None, None], cols]                    # [..., oh, kh, ow, kw]
    windows = windows.movedim(-3, -2).flatten(-2)                     # [..., oh, ow, kh*kw]
    values, picked = windows.max(-1)
    flat = (rows[:, :, None, None] * width + cols).movedim(1, 2).flatten(-2)   # [oh, ow, kh*kw]
    indices = torch.gather(flat.expand(*picked.shape, flat.size(-1)), -1, picked[..., None])
    return values, indices[..., 0]


# ------------------------------------------------------------------ topk and sort
def topk(x, k, dim=-1, largest=True, sorted=True):
    """k passes of max (or min) along `dim`, each masking out the element it picked.

    Ties pick the lowest index first; an input holding -inf (+inf for smallest) among the
    top k may repeat an index."""
    if x.dim() == 0 or k == 0:
        return NotImplemented
    dim = dim % x.dim()
    work = x if largest else -x
    positions = _along(torch.arange(x.size(dim), device=x.device), dim, x.dim())
    picked = []
    for _ in range(k):
        index = torch.argmax(work, dim, keepdim=True)
        picked.append(index)
        work = torch.where(positions == index, _lowest(work.dtype), work)
    indices = torch.cat(picked, dim)
    return torch.gather(x, dim, indices), indices


def stable_sort(x, *, stable=None, dim=-1, descending=False):
    """`sort(stable=...)`, which torch-mlir does not know, as plain `sort`: torch-mlir's sort
    lowering (a bubble sort, see tm_tensor_to_loops.py) is stable anyway."""
    return ATEN.sort.default(x, dim, descending)


# ------------------------------------------------------------------ complex arithmetic
def _is_complex(x) -> bool:
    return isinstance(x, complex) or (isinstance(x, torch.Tensor) and x.is_complex())


def _parts(x):
    """(real, imaginary) of a complex or real tensor or Python number."""
    if isinstance(x, torch.Tensor):
        return (x.real, x.imag) if x.is_complex() else (x, torch.zeros_like(x))
    value = complex(x)
    return value.real, value.imag


def _complex_linear(sign: int):
    """add/sub(a, b, alpha) of complex operands as real arithmetic on their parts:
    torch-mlir's lowering multiplies a complex `alpha` with arith.muli (invalid IR)."""
    def decompose(a, b, alpha=1):
        if not (_is_complex(a) or _is_complex(b)):
            return NotImplemented
        (ar, ai), (br, bi) = _parts(a), _parts(b)
        scale = sign * alpha
        return torch.complex(ar + br * scale, ai + bi * scale)
    return decompose


def complex_mul(a, b):
    """A complex product with a scalar or real factor (whose torch-mlir lowering, mul.Scalar,
    rejects complex tensors), and complex * complex alike, as (ar*br - ai*bi, ar*bi + ai*br)."""
    if not (_is_complex(a) or _is_complex(b)):
        return NotImplemented
    (ar, ai), (br, bi) = _parts(a), _parts(b)
    return torch.complex(ar * br - ai * bi, ar * bi + ai * br)


def abs_(x):
    """|x| of a complex tensor (torch-mlir emits math.absf on complex values, invalid IR); of
    a uint8 tensor, x itself (torch-mlir negates the bytes it reads as signed)."""
    if x.dtype == torch.uint8:
        return x.clone()
    if not x.is_complex():
        return NotImplemented
    return torch.sqrt(x.real * x.real + x.imag * x.imag)


# ------------------------------------------------------------------ embedding_bag
def embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Each bag's rows (looked up with `embedding`, ember.embedding: an int8 table stays int8)
    summed (mode 0, times their per_sample_weights when given) or averaged (mode 1, over the
    bag's entries that are not padding_idx; an empty bag gives zeros); the other three results
    as PyTorch's CPU kernel gives them in the sum mode (an empty offset2bag, zeros). Mode 2
    (max) stays with torch-mlir."""
    if indices.dim() != 1 or mode not in (0, 1) or \
            (per_sample_weights is not None and mode != 0):
        return NotImplemented
    bags = offsets.shape[0] - (1 if include_last_offset else 0)
    positions = torch.arange(indices.shape[0], device=indices.device)
    # The bag of each position: how many bag starts are at or before it, less one.
    bag_of = (positions[:, None] >= offsets[None, :bags]).sum(1) - 1
    counted = torch.ones(indices.shape[0], dtype=weight.dtype, device=weight.device)
    if padding_idx is not None and padding_idx >= 0:
        counted = torch.where(indices == padding_idx, torch.zeros_like(counted), counted)
    if include_last_offset:  # positions past the last offset belong to no bag
        counted = torch.where(positions < offsets[bags], counted, torch.zeros_like(counted))
        bag_of = bag_of.clamp(max=bags - 1)
    scale = counted if per_sample_weights is None else counted * per_sample_weights
    rows = torch.nn.functional.embedding(indices, weight) * scale[:, None]
    out = torch.zeros(bags, weight.shape[1], dtype=weight.dtype,
                      device=weight.device).index_add(0, bag_of, rows)
    if mode == 1:
        sizes = torch.zeros(bags, dtype=weight.dtype, device=weight.device).index_add(
            0, bag_of, counted)
        out = out / sizes.clamp(min=1)[:, None]
    empty = torch.zeros(0, dtype=torch.int64, device=indices.device)
    zeros = torch.zeros(bags, dtype=torch.int64, device=indices.device)
    return out, empty, zeros, zeros.clone()


# ------------------------------------------------------------------ logcumsumexp
#: Longest dim logcumsumexp is decomposed along (its n x n prefix matrix).
LOGCUMSUMEXP_MAX_LENGTH = 1024


def logcumsumexp(x, dim):
    n = x.shape[dim] if x.dim() else 1
    if not isinstance(n, int) or n > LOGCUMSUMEXP_MAX_LENGTH or not x.dtype.is_floating_point:
        return NotImplemented
    if x.dim() == 0:
        return x.clone()
    last = x.movedim(dim, -1)
    prefix = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()  # [i, j]: j <= i
    rows = torch.where(prefix, last.unsqueeze(-2), torch.full_like(last.unsqueeze(-2),
                                                                     float("-inf")))
    shift = rows.max(dim=-1, keepdim=True).values
    shift = torch.where(torch.isinf(shift), torch.zeros_like(shift), shift)
    out = torch.log(torch.exp(rows - shift).sum(-1)) + shift.squeeze(-1)
    return out.movedim(-1, dim)


# ------------------------------------------------------------------ integer addmm
def integer_addmm(input, mat1, mat2, *, beta=1, alpha=1):
    if mat1.dtype.is_floating_point or mat1.is_complex():
        return NotImplemented
    product = torch.mm(mat1, mat2)
    product = product if alpha == 1 else product * alpha
    return product if beta == 0 else product + (input if beta == 1 else input * beta)


def integer_reciprocal(x):
    if x.dtype.is_floating_point or x.is_complex():
        return NotImplemented
    return torch.reciprocal(x.to(torch.get_default_dtype()))


# ------------------------------------------------------------------ uint8
def _is_uint8(x) -> bool:
    return isinstance(x, torch.Tensor) and x.dtype == torch.uint8


def _uint8_widened(op, back_to_uint8: bool) -> Callable:
    """`op` on uint8 tensors computed on int16 copies (then cast back to uint8 when PyTorch's
    result is uint8). torch-mlir's lowering reads uint8 as signed bytes in these ops (sums,
    remainders, true division, comparisons with a scalar) or has none (floor division); int16
    holds every uint8 value."""
    def decompose(*args, **kwargs):
        if not any(_is_uint8(a) for a in args):
            return NotImplemented
        result = op(*[a.to(torch.int16) if _is_uint8(a) else a for a in args], **kwargs)
        return result.to(torch.uint8) if back_to_uint8 else result
    return decompose


_UINT8_WIDENED = {
    **{o: _uint8_widened(o, back_to_uint8=True) for o in (
        ATEN.remainder.Tensor, ATEN.remainder.Scalar, ATEN.floor_divide.default)},
    **{o: _uint8_widened(o, back_to_uint8=False) for o in (
        ATEN.sum.default, ATEN.sum.dim_IntList, ATEN.div.Tensor, ATEN.gt.Scalar, ATEN.ge.Scalar,
        ATEN.lt.Scalar, ATEN.le.Scalar, ATEN.eq.Scalar, ATEN.ne.Scalar)},
}


#: aten op overload -> decomposition; export.py merges these over torch-mlir's table.
DECOMPOSITIONS: Dict[object, Callable] = {
    ATEN.scaled_dot_product_attention.default: scaled_dot_product_attention,
    ATEN.adaptive_avg_pool2d.default: adaptive_avg_pool2d,
    ATEN.adaptive_max_pool2d.default: adaptive_max_pool2d,
    ATEN.sort.stable: stable_sort,
    ATEN.topk.default: topk,
    ATEN.addmm.default: integer_addmm,
    ATEN.logcumsumexp.default: logcumsumexp,
    ATEN.embedding_bag.padding_idx: embedding_bag,
    ATEN.embedding_bag.default: embedding_bag,
    ATEN.reciprocal.default: integer_reciprocal,
    ATEN.add.Tensor: _complex_linear(1),
    ATEN.sub.Tensor: _complex_linear(-1),
    ATEN.mul.Tensor: complex_mul,
    ATEN.abs.default: abs_,
    **_UINT8_WIDENED,
}
