"""torch dialect -> ember dialect, inside torch-mlir's own MLIR context.

Runs after torch-mlir's backend-contract pipeline (value tensors, static dtypes) and before its
linalg lowering. Each table entry maps one ATen op to ember ops 1:1 (fusion is a later pass's
job); ember ops work on builtin tensors, so operands cross through `torch_c.to_builtin_tensor`
and results through `torch_c.from_builtin_tensor`, casts that torch-mlir's backend type
conversion folds away. A converter returns None to decline (unsupported dtype, rank, or
non-constant attribute) and the op stays for the linalg fallback, so coverage never drops below
torch-mlir's. Weights (function arguments named in the signature) become `ember.weight` ops.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Collection, Dict, List, Optional, Sequence, Tuple

from ember.dialect.ops import (Attention, Binary, Broadcast, Concat, Conv2d, Dequantize,
                               Embedding, Gemm, LayerNorm, Pool2d, Quantize, Reduce, Reshape,
                               RmsNorm, Slice, Softmax, Transpose, Unary, Weight)
from ember.dialect.shapes import conv2d_output_size

FLOAT_DTYPES = ("f32", "f64", "f16", "bf16")
_VTENSOR = re.compile(r"!torch\.vtensor<\[([^\]]*)\],([a-z0-9]+)>")
_DTYPES = {"si64": "i64", "si32": "i32", "si16": "i16", "si8": "i8", "ui8": "ui8", "i1": "i1"}


class NotConstant(Exception):
    """An op attribute is computed at run time; the converter declines."""


class Converter:
    """Rewrites one module in torch-mlir's context; `ir` is torch-mlir's ir module."""

    def __init__(self, ir):
        self.ir = ir
        #: (aten op, location text, why) of each ATen op left to the linalg fallback, in order.
        self.fallbacks: List[Tuple[str, str, str]] = []

    # ------------------------------------------------------------------ type and value helpers
    def builtin_type(self, vtensor_type):
        """`!torch.vtensor<[?,512],f32>` -> `tensor<?x512xf32>`, or None (unranked/unknown)."""
        m = _VTENSOR.fullmatch(str(vtensor_type))
        if not m:
            return None
        dims = [d.strip() for d in m.group(1).split(",") if d.strip()]
        dtype = _DTYPES.get(m.group(2), m.group(2))
        shape = "x".join(dims + [dtype]) if dims else dtype
        return self.ir.Type.parse(f"tensor<{shape}>")

    def dtype(self, value) -> Optional[str]:
        m = _VTENSOR.fullmatch(str(value.type))
        return m.group(2) if m else None

    def rank(self, value) -> Optional[int]:
        m = _VTENSOR.fullmatch(str(value.type))
        return len([d for d in m.group(1).split(",") if d.strip()]) if m else None

    def to_builtin(self, value):
        return self.ir.Operation.create("torch_c.to_builtin_tensor",
                                        results=[self.builtin_type(value.type)],
                                        operands=[value]).result

    def from_builtin(self, value, vtensor_type):
        return self.ir.Operation.create("torch_c.from_builtin_tensor", results=[vtensor_type],
                                        operands=[value]).result

    def const(self, value):
        """The Python value of a torch constant operand (int, float, bool, str, None, list)."""
        op = value.owner
        name = getattr(op, "name", None)
        ir = self.ir
        if name == "torch.constant.none":
            return None
        if name == "torch.constant.int":
            return ir.IntegerAttr(op.attributes["value"]).value
        if name == "torch.constant.float":
            return ir.FloatAttr(op.attributes["value"]).value
        if name == "torch.constant.bool":
            return ir.BoolAttr(op.attributes["value"]).value
        if name == "torch.constant.str":
            return ir.StringAttr(op.attributes["value"]).value
        if name == "torch.prim.ListConstruct":
            return [self.const(v) for v in op.operands]
        raise NotConstant(name)

    def all_float(self, values: Sequence) -> bool:
        dtypes = {self.dtype(v) for v in values}
        return len(dtypes) == 1 and dtypes.pop() in FLOAT_DTYPES

    # ------------------------------------------------------------------ the rewrite driver
    def convert_module(self, module, weight_names: Sequence[str],
                       mutable: Collection[str] = ()) -> None:
        for fn in module.body.operations:
            if fn.operation.name == "func.func":
                self._bind_weights(fn, weight_names, mutable)
                self._convert_ops(fn)

    def _bind_weights(self, fn, weight_names: Sequence[str], mutable: Collection[str]) -> None:
        """Leading function arguments (one per weight) -> `ember.weight` ops (`mutable` for
        the buffers the model changes in place)."""
        ir = self.ir
        block = fn.regions[0].blocks[0]
        first = block.operations[0] if len(block.operations) else None
        for name in weight_names:
            arg = block.arguments[0]
            with ir.InsertionPoint(first) if first is not None else ir.InsertionPoint(block), \
                    ir.Location.unknown():
                w = Weight.build(self.builtin_type(arg.type), name=name,
                                 **({"mutable": True} if name in mutable else {}))
                v = self.from_builtin(w, arg.type)
            arg.replace_all_uses_with(v)
            block.erase_argument(0)
        fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
        fn.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get([a.type for a in block.arguments], fn_type.results))
        if "arg_attrs" in fn.attributes:
            attrs = list(ir.ArrayAttr(fn.attributes["arg_attrs"]))[len(weight_names):]
            fn.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)

    def _convert_ops(self, fn) -> None:
        ops: List = []
        fn.walk(lambda op: (ops.append(op), self.ir.WalkResult.ADVANCE)[1])
        for op in ops:
            rule = CONVERSIONS.get(op.name)
            why = self._convert(op, rule) if rule is not None else "ember has no op for it"
            if why is not None and op.name.startswith("torch.aten.") and any(
                    _VTENSOR.fullmatch(str(r.type)) for r in op.results):
                self.fallbacks.append((op.name[len("torch."):], str(op.location), why))

    def _convert(self, op, rule) -> Optional[str]:
        """Replaces `op` by what `rule` builds; None when it did, else why it declined."""
        with self.ir.InsertionPoint(op), op.location:
            try:
                result = rule(self, op)
            except NotConstant:
                return "an argument is computed at run time"
        if result is None:
            operands = ", ".join(_describe(v.type) for v in op.operands
                                 if _VTENSOR.fullmatch(str(v.type)))
            return f"ember's conversion does not take these operands ({operands})"
        op.results[0].replace_all_uses_with(self.from_builtin_at(op, result))
        op.erase()
        return None

    def from_builtin_at(self, op, value):
        with self.ir.InsertionPoint(op), op.location:
            return self.from_builtin(value, op.results[0].type)


def _describe(vtensor_type) -> str:
    """`!torch.vtensor<[2,?],f64>` -> "[2,?] f64"."""
    dims, dtype = _VTENSOR.fullmatch(str(vtensor_type)).groups()
    return f"[{dims}] {_DTYPES.get(dtype, dtype)}"


# ---------------------------------------------------------------------- conversion rules
def _result_type(c: Converter, op):
    return c.builtin_type(op.results[0].type)


def _is_none(value) -> bool:
    return getattr(value.owner, "name", None) == "torch.constant.none"


def _shape(c: Converter, value) -> List[Optional[int]]:
    """Static dims as ints, dynamic ones as None."""
    t = c.ir.RankedTensorType(c.builtin_type(value.type))
    return [None if t.is_dynamic_dim(i) else t.shape[i] for i in range(t.rank)]


def _static_trailing(c: Converter, value, count: int) -> bool:
    """Whether the last `count` dims of `value` are static (leading ones may be dynamic)."""
    shape = _shape(c, value)
    return len(shape) >= count and None not in shape[len(shape) - count:]


def _same_batch(lhs: Sequence[Optional[int]], rhs: Sequence[Optional[int]]) -> bool:
    """Whether two batch shapes are equal rather than broadcast. A dynamic dim against a
    dynamic one counts as equal: torch.export proves (and guards) that broadcast operands'
    symbolic dims are equal, since it assumes a symbol is never 1; against a static 1 it is a
    broadcast."""
    return all(x == y if None not in (x, y) else (x, y) != (None, 1) and (x, y) != (1, None)
               for x, y in zip(lhs, rhs))


def _linear(c: Converter, op):
    x, w, b = op.operands[0], op.operands[1], op.operands[2]
    bias_is_none = getattr(b.owner, "name", None) == "torch.constant.none"
    tensors = [x, w] + ([] if bias_is_none else [b])
    if not c.all_float(tensors) or c.rank(x) is None or c.rank(x) < 2 or c.rank(w) != 2:
        return None
    w_type = c.ir.RankedTensorType(c.builtin_type(w.type))
    wt_type = c.ir.RankedTensorType.get(list(reversed(w_type.shape)), w_type.element_type)
    wt = Transpose.build(c.to_builtin(w), wt_type, permutation=[1, 0])
    out_type = _result_type(c, op)
    y = Gemm.build(c.to_builtin(x), wt, out_type)
    return y if bias_is_none else Binary.build(y, c.to_builtin(b), out_type, kind="add")


def _matmul(c: Converter, op):
    a, b = op.operands[0], op.operands[1]
    ra, rb = c.rank(a), c.rank(b)
    if not c.all_float([a, b]) or ra is None or rb is None or ra < 2 or \
            not (rb == 2 or rb == ra):
        return None
    if rb == ra > 2 and not _same_batch(_shape(c, a)[:-2], _shape(c, b)[:-2]):
        return None  # broadcast batch dims (matmul): ember.gemm wants them equal
    return Gemm.build(c.to_builtin(a), c.to_builtin(b), _result_type(c, op))


def _addmm(c: Converter, op):
    bias, a, b = op.operands[0], op.operands[1], op.operands[2]
    beta, alpha = c.const(op.operands[3]), c.const(op.operands[4])
    if beta != 1 or alpha != 1 or not c.all_float([bias, a, b]) or c.rank(bias) != 1:
        return None
    out_type = _result_type(c, op)
    y = Gemm.build(c.to_builtin(a), c.to_builtin(b), out_type)
    return Binary.build(y, c.to_builtin(bias), out_type, kind="add")


def _gelu(c: Converter, op):
    approximate = c.const(op.operands[1])
    kind = {"none": "gelu", "tanh": "gelu_tanh"}.get(approximate)
    if kind is None or not c.all_float([op.operands[0]]):
        return None
    return Unary.build(c.to_builtin(op.operands[0]), _result_type(c, op), kind=kind)


def _unary(kind: str) -> Callable:
    def convert(c: Converter, op):
        if not c.all_float([op.operands[0]]) or c.dtype(op.results[0]) != \
                c.dtype(op.operands[0]):
            return None
        return Unary.build(c.to_builtin(op.operands[0]), _result_type(c, op), kind=kind)
    return convert


def _binary(kind: str, has_alpha: bool = False) -> Callable:
    def convert(c: Converter, op):
        lhs, rhs = op.operands[0], op.operands[1]
        if has_alpha and c.const(op.operands[2]) != 1:
            return None
        if not c.all_float([lhs, rhs, op.results[0]]):
            return None
        return Binary.build(c.to_builtin(lhs), c.to_builtin(rhs), _result_type(c, op), kind=kind)
    return convert


def _layer_norm(c: Converter, op):
    x, shape, w, b, eps = (op.operands[i] for i in range(5))
    normalized = c.const(shape)
    weight = None if getattr(w.owner, "name", None) == "torch.constant.none" else w
    bias = None if getattr(b.owner, "name", None) == "torch.constant.none" else b
    if not c.all_float([x] + [v for v in (weight, bias) if v is not None]) or \
            not _static_trailing(c, x, len(normalized)):
        return None
    return LayerNorm.build(c.to_builtin(x), _result_type(c, op),
                           weight=c.to_builtin(weight) if weight is not None else None,
                           bias=c.to_builtin(bias) if bias is not None else None,
                           epsilon=float(c.const(eps)), normalized_ndim=len(normalized))


def _softmax(c: Converter, op):
    x = op.operands[0]
    dim = c.const(op.operands[1])
    # softmax(x, dim, dtype=...) (Llama's dtype=torch.float32) is a plain softmax when the
    # dtype is x's own; a conversion to another dtype is left to the fallback.
    if op.name == "torch.aten.softmax.int" and c.const(op.operands[2]) is not None and \
            c.dtype(x) != c.dtype(op.results[0]):
        return None
    if op.name == "torch.aten._softmax" and c.const(op.operands[2]):
        return None
    if not c.all_float([x, op.results[0]]):
        return None
    rank = c.rank(x)
    return Softmax.build(c.to_builtin(x), _result_type(c, op), axis=dim % rank)


def _permute(c: Converter, op):
    x = op.operands[0]
    rank = c.rank(x)
    if rank is None:
        return None
    if op.name == "torch.aten.t":
        perm = [1, 0] if rank == 2 else list(range(rank))
    elif op.name == "torch.aten.transpose.int":
        d0, d1 = c.const(op.operands[1]) % rank, c.const(op.operands[2]) % rank
        perm = list(range(rank))
        perm[d0], perm[d1] = perm[d1], perm[d0]
    else:
        perm = [d % rank for d in c.const(op.operands[1])]
    return Transpose.build(c.to_builtin(x), _result_type(c, op), permutation=perm)


def _broadcast(c: Converter, op):
    """expand / broadcast_to at equal rank: each dim kept, or a size-1 dim repeated to a
    static size (Hugging Face's repeat_kv); new leading dims are left to the fallback."""
    x = op.operands[0]
    if c.rank(x) is None or c.rank(x) != c.rank(op.results[0]):
        return None
    shape, result = _shape(c, x), _shape(c, op.results[0])
    if any(a == 1 and b is None or a != 1 and a != b for a, b in zip(shape, result)):
        return None
    return Broadcast.build(c.to_builtin(x), _result_type(c, op))


def _convolution(c: Converter, op):
    x, w, b = op.operands[0], op.operands[1], op.operands[2]
    strides, padding, dilations = (c.const(op.operands[i]) for i in (3, 4, 5))
    transposed, groups = c.const(op.operands[6]), c.const(op.operands[8])
    bias_is_none = getattr(b.owner, "name", None) == "torch.constant.none"
    tensors = [x, w] + ([] if bias_is_none else [b])
    if transposed or c.rank(x) != 4 or not c.all_float(tensors) or \
            len(strides) != 2 or len(padding) != 2 or len(dilations) != 2 or \
            not _static_trailing(c, x, 3):
        return None
    if groups != 1:
        w_type = c.ir.RankedTensorType(c.builtin_type(w.type))
        if w_type.shape[1] != 1 or w_type.shape[0] != groups:
            return None  # grouped (not depthwise): the fallback handles it
    return Conv2d.build(c.to_builtin(x), c.to_builtin(w), _result_type(c, op), strides=strides,
                        padding=padding, dilations=dilations, groups=groups,
                        bias=None if bias_is_none else c.to_builtin(b))


def _scalar_tensor(c: Converter, value: float, like):
    """A rank-0 builtin tensor constant of `like`'s element type holding `value`."""
    element = c.ir.RankedTensorType(c.builtin_type(like.type)).element_type
    t = c.ir.RankedTensorType.get([], element)
    attr = c.ir.DenseElementsAttr.get_splat(t, c.ir.FloatAttr.get(element, float(value)))
    return c.ir.Operation.create("arith.constant", results=[t], attributes={"value": attr}).result


def _binary_scalar(kind: str, has_alpha: bool = False) -> Callable:
    def convert(c: Converter, op):
        x = op.operands[0]
        if has_alpha and c.const(op.operands[2]) != 1:
            return None
        scalar = c.const(op.operands[1])
        if not isinstance(scalar, (int, float)) or not c.all_float([x, op.results[0]]):
            return None
        return Binary.build(c.to_builtin(x), _scalar_tensor(c, scalar, x), _result_type(c, op),
                            kind=kind)
    return convert


def _pool(c: Converter, op, kind: str, kernel, strides, padding):
    x = op.operands[0]
    if c.rank(x) != 4 or not c.all_float([x]) or len(kernel) != 2 or \
            not _static_trailing(c, x, 3):
        return None
    strides = list(strides) or list(kernel)  # PyTorch: an empty stride means the kernel
    if len(strides) != 2 or len(padding) != 2:
        return None
    spatial = _shape(c, x)[2:]
    if _shape(c, op.results[0])[2:] != [conv2d_output_size(n, k, st, p, 1) for n, k, st, p in
                                        zip(spatial, kernel, strides, padding)]:
        return None  # a result that is not these windows' (never a valid ember.pool2d)
    return Pool2d.build(c.to_builtin(x), _result_type(c, op), kind=kind, kernel=kernel,
                        strides=strides, padding=padding)


def _max_pool2d(c: Converter, op):
    kernel, strides, padding, dilation, ceil_mode = (c.const(op.operands[i]) for i in range(1, 6))
    if ceil_mode or any(d != 1 for d in dilation):
        return None
    return _pool(c, op, "max", kernel, strides, padding)


def _avg_pool2d(c: Converter, op):
    kernel, strides, padding, ceil_mode, count_include_pad = \
        (c.const(op.operands[i]) for i in range(1, 6))
    divisor = c.const(op.operands[6])
    if ceil_mode or divisor is not None or (any(padding) and not count_include_pad):
        return None
    return _pool(c, op, "avg", kernel, strides, padding)


def _adaptive_avg_pool2d(c: Converter, op):
    """Only the global case (output 1x1), the one classification heads use."""
    x = op.operands[0]
    if list(c.const(op.operands[1])) != [1, 1] or c.rank(x) != 4:
        return None
    shape = c.ir.RankedTensorType(c.builtin_type(x.type)).shape
    if any(d < 0 for d in shape[2:]):
        return None
    return _pool(c, op, "avg", shape[2:], shape[2:], [0, 0])


def _reduction(kind: str, has_dtype: bool) -> Callable:
    """sum.dim_IntList / mean.dim (x, dims, keepdim, dtype) and amax / amin (x, dims, keepdim)."""
    def convert(c: Converter, op):
        x = op.operands[0]
        rank = c.rank(x)
        dims, keepdim = c.const(op.operands[1]), c.const(op.operands[2])
        if has_dtype and c.const(op.operands[3]) is not None:
            return None
        if not rank or not c.all_float([x, op.results[0]]):
            return None             # unknown rank, or a scalar (no axis): torch-mlir's lowering
        axes = sorted({d % rank for d in (dims or range(rank))})
        return Reduce.build(c.to_builtin(x), _result_type(c, op), kind=kind, axes=axes,
                            keepdim=bool(keepdim))
    return convert


def _cat(c: Converter, op):
    """cat of exactly two float tensors (ember.concat is binary; wider cats use the fallback)."""
    list_op = op.operands[0].owner
    if getattr(list_op, "name", None) != "torch.prim.ListConstruct" or \
            len(list_op.operands) != 2:
        return None
    lhs, rhs = list_op.operands[0], list_op.operands[1]
    rank = c.rank(lhs)
    if rank is None or not c.all_float([lhs, rhs, op.results[0]]):
        return None
    out_type = _result_type(c, op)
    axis = c.const(op.operands[1]) % rank
    return Concat.build(c.to_builtin(lhs), c.to_builtin(rhs), out_type, axis=axis)


def _slice(c: Converter, op):
    """slice.Tensor(x, dim, start, end, 1) with a static extent along `dim` -> ember.slice."""
    x = op.operands[0]
    rank = c.rank(x)
    dim, start, end, step = (c.const(op.operands[i]) for i in range(1, 5))
    if rank is None or step != 1 or not c.all_float([x]):
        return None
    dim %= rank
    size = c.ir.RankedTensorType(c.builtin_type(x.type)).shape[dim]
    if size < 0:
        return None
    start = 0 if start is None else (start + size if start < 0 else start)
    end = size if end is None else min(end + size if end < 0 else end, size)
    start = max(0, min(start, size))
    if end < start:
        return None
    return Slice.build(c.to_builtin(x), _result_type(c, op), axis=dim, start=start,
                       size=end - start)


def _static_reshape(c: Converter, op):
    """view/reshape/unsqueeze/squeeze/flatten between static shapes -> ember.reshape."""
    x = op.operands[0]
    in_type, out_type = c.builtin_type(x.type), _result_type(c, op)
    if in_type is None or out_type is None or not c.all_float([x]):
        return None
    if not (c.ir.RankedTensorType(in_type).has_static_shape and
            c.ir.RankedTensorType(out_type).has_static_shape):
        return None
    return Reshape.build(c.to_builtin(x), out_type)


def _attention(c: Converter, op):
    """scaled_dot_product_attention -> ember.attention. export.py's decomposition hands it over
    normalized: a float mask (never bool), no GQA, and is_causal only where query and key
    lengths are provably equal (PyTorch's causal mask is aligned top-left, ember's bottom-right;
    they agree on square score matrices), which also covers dynamic lengths seen here as `?`."""
    q, k, v, mask = (op.operands[i] for i in range(4))
    dropout, causal, scale = (c.const(op.operands[i]) for i in (4, 5, 6))
    gqa = len(op.operands) > 7 and c.const(op.operands[7])
    mask = None if _is_none(mask) else mask
    tensors = [q, k, v] + ([mask] if mask is not None else [])
    if dropout or gqa or not c.all_float(tensors + [op.results[0]]):
        return None
    rank = c.rank(q)
    if rank is None or rank < 2 or c.rank(k) != rank or c.rank(v) != rank or \
            (mask is not None and c.rank(mask) > rank):
        return None
    qs, ks, vs = _shape(c, q), _shape(c, k), _shape(c, v)
    if not (_same_batch(qs[:-2], ks[:-2]) and _same_batch(ks[:-2], vs[:-2])):
        return None  # broadcast batch dims: ember.attention wants them equal
    if causal and None not in (qs[-2], ks[-2]) and qs[-2] != ks[-2]:
        return None
    if scale is None:
        if qs[-1] is None:
            return None
        scale = 1.0 / math.sqrt(qs[-1])
    return Attention.build(c.to_builtin(q), c.to_builtin(k), c.to_builtin(v), _result_type(c, op),
                           mask=c.to_builtin(mask) if mask is not None else None,
                           scale=float(scale), causal=bool(causal))


def _embedding(c: Converter, op):
    """embedding(weight, indices, padding_idx, scale_grad_by_freq, sparse) -> ember.embedding
    (padding_idx and the rest only shape gradients)."""
    weight, indices = op.operands[0], op.operands[1]
    if c.rank(weight) != 2 or not c.all_float([weight, op.results[0]]) or \
            c.dtype(indices) not in ("si64", "si32"):
        return None
    return Embedding.build(c.to_builtin(weight), c.to_builtin(indices), _result_type(c, op))


#: torch.finfo(dtype).eps: rms_norm's epsilon when none is given.
_FINFO_EPS = {"f32": 1.1920928955078125e-07, "f64": 2.220446049250313e-16,
              "f16": 0.0009765625, "bf16": 0.0078125}


def _rms_norm(c: Converter, op):
    x, shape, w, eps = (op.operands[i] for i in range(4))
    normalized = c.const(shape)
    weight = None if _is_none(w) else w
    if not c.all_float([x, op.results[0]] + ([weight] if weight is not None else [])) or \
            not _static_trailing(c, x, len(normalized)):
        return None
    epsilon = c.const(eps)
    epsilon = _FINFO_EPS[c.dtype(x)] if epsilon is None else float(epsilon)
    return RmsNorm.build(c.to_builtin(x), _result_type(c, op),
                         weight=c.to_builtin(weight) if weight is not None else None,
                         epsilon=epsilon, normalized_ndim=len(normalized))


def _quantize_per_tensor(c: Converter, op):
    """PT2E's quantize_per_tensor(x, scale, zero_point, quant_min, quant_max, dtype)."""
    x = op.operands[0]
    scale, zero_point, lo, hi = (c.const(op.operands[i]) for i in range(1, 5))
    if c.dtype(x) != "f32" or c.dtype(op.results[0]) not in ("ui8", "si8"):
        return None
    return Quantize.build(c.to_builtin(x), _result_type(c, op), scale=float(scale),
                          zero_point=int(zero_point), quant_min=int(lo), quant_max=int(hi))


def _dequantize(per_channel: bool) -> Callable:
    """PT2E's dequantize_per_tensor(q, scale, zero_point, quant_min, quant_max, dtype,
    out_dtype) and dequantize_per_channel(q, scales, zero_points, axis, ..., out_dtype)."""
    def convert(c: Converter, op):
        q = op.operands[0]
        out_dtype = c.const(op.operands[len(op.operands) - 1])
        if c.dtype(q) not in ("ui8", "si8") or c.dtype(op.results[0]) != "f32" or \
                out_dtype not in (None, 6):            # 6: torch.float32's ScalarType
            return None
        if per_channel:
            scales, zero_points = op.operands[1], op.operands[2]
            if c.dtype(scales) != "f32" or c.rank(scales) != 1:
                return None
            return Dequantize.build(c.to_builtin(q), _result_type(c, op),
                                    scales=c.to_builtin(scales),
                                    zero_points=c.to_builtin(zero_points),
                                    axis=c.const(op.operands[3]) % c.rank(q))
        return Dequantize.build(c.to_builtin(q), _result_type(c, op),
                                scale=float(c.const(op.operands[1])),
                                zero_point=int(c.const(op.operands[2])))
    return convert


#: torch op name -> converter. Everything else is left to torch-mlir's linalg lowering.
CONVERSIONS: Dict[str, Callable] = {
    "torch.aten.linear": _linear,
    "torch.aten.mm": _matmul,
    "torch.aten.matmul": _matmul,
    "torch.aten.bmm": _matmul,
    "torch.aten.addmm": _addmm,
    "torch.aten.gelu": _gelu,
    "torch.aten.relu": _unary("relu"),
    "torch.aten.sigmoid": _unary("sigmoid"),
    "torch.aten.tanh": _unary("tanh"),
    "torch.aten.silu": _unary("silu"),
    "torch.aten.exp": _unary("exp"),
    "torch.aten.log": _unary("log"),
    "torch.aten.neg": _unary("neg"),
    "torch.aten.sqrt": _unary("sqrt"),
    "torch.aten.rsqrt": _unary("rsqrt"),
    "torch.aten.abs": _unary("abs"),
    "torch.aten.reciprocal": _unary("reciprocal"),
    "torch.aten.convolution": _convolution,
    "torch.aten.max_pool2d": _max_pool2d,
    "torch.aten.avg_pool2d": _avg_pool2d,
    "torch.aten.adaptive_avg_pool2d": _adaptive_avg_pool2d,
    "torch.aten.add.Scalar": _binary_scalar("add", has_alpha=True),
    "torch.aten.sub.Scalar": _binary_scalar("sub", has_alpha=True),
    "torch.aten.mul.Scalar": _binary_scalar("mul"),
    "torch.aten.div.Scalar": _binary_scalar("div"),
    "torch.aten.view": _static_reshape,
    "torch.aten.reshape": _static_reshape,
    "torch.aten.unsqueeze": _static_reshape,
    "torch.aten.squeeze.dim": _static_reshape,
    "torch.aten.squeeze": _static_reshape,
    "torch.aten.flatten.using_ints": _static_reshape,
    "torch.aten.sum.dim_IntList": _reduction("sum", has_dtype=True),
    "torch.aten.mean.dim": _reduction("mean", has_dtype=True),
    "torch.aten.amax": _reduction("max", has_dtype=False),
    "torch.aten.amin": _reduction("min", has_dtype=False),
    "torch.aten.cat": _cat,
    "torch.aten.slice.Tensor": _slice,
    "torch.aten.add.Tensor": _binary("add", has_alpha=True),
    "torch.aten.sub.Tensor": _binary("sub", has_alpha=True),
    "torch.aten.mul.Tensor": _binary("mul"),
    "torch.aten.div.Tensor": _binary("div"),
    "torch.aten.maximum": _binary("max"),
    "torch.aten.minimum": _binary("min"),
    "torch.aten.pow.Tensor_Tensor": _binary("pow"),
    "torch.aten.layer_norm": _layer_norm,
    "torch.aten.softmax.int": _softmax,
    "torch.aten._softmax": _softmax,
    "torch.aten.t": _permute,
    "torch.aten.transpose.int": _permute,
    "torch.aten.permute": _permute,
    "torch.aten.broadcast_to": _broadcast,
    "torch.aten.expand": _broadcast,
    "torch.aten.pow.Tensor_Scalar": _binary_scalar("pow"),
    "torch.aten.scaled_dot_product_attention": _attention,
    "torch.aten.rms_norm": _rms_norm,
    "torch.aten.embedding": _embedding,
    "torch.quantized_decomposed.quantize_per_tensor": _quantize_per_tensor,
    "torch.quantized_decomposed.dequantize_per_tensor": _dequantize(per_channel=False),
    "torch.quantized_decomposed.dequantize_per_channel": _dequantize(per_channel=True),
}
