"""ember's own FX-level decompositions, applied with torch-mlir's table at torch.export time.

Four kinds of entries:
- `adaptive_avg_pool2d` with uneven windows, which torch-mlir's lowering rejects at run time
  (PyTorch's own decomposition).
- `scaled_dot_product_attention`, normalized into the form `ember.attention` takes (a float
  additive mask, no GQA, `is_causal` only when query and key lengths are provably equal, since
  PyTorch aligns its causal mask top-left and ember.attention bottom-right). A call already in
  that form is kept whole (the function returns NotImplemented).
- `sort(stable=...)`, which torch-mlir does not know, as plain `sort`.
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


#: aten op overload -> decomposition; export.py merges these over torch-mlir's table.
DECOMPOSITIONS: Dict[object, Callable] = {
    ATEN.scaled_dot_product_attention.default: scaled_dot_product_attention,
    ATEN.adaptive_avg_pool2d.default: adaptive_avg_pool2d,
    ATEN.sort.stable: stable_sort,
    ATEN.topk.default: topk,
}
