"""Semantic verification of ember ops: the rules IRDL cannot state (shapes, enum values).

IRDL already rejects a wrong operand count or attribute kind at parse time. This module checks
what each op means: matching GEMM contraction dims, a valid permutation, a known activation.
Every rule returns a message that names the rule broken, so a user sees *why* an op is malformed.
`verify_module` is run by ember-opt after parsing and after every ember pass.
"""
from __future__ import annotations

import math
import sys

from typing import Callable, Dict, List, Optional, Tuple

from ember.dialect import ACTIVATIONS, BINARY_KINDS, CONV_LAYOUTS, POOL_KINDS, REDUCE_KINDS, UNARY_KINDS
from ember.dialect.builders import optional_operand

DYNAMIC = None


def shape_of(value) -> Optional[List[Optional[int]]]:
    """The dims of a ranked tensor value (None for `?`), or None when unranked."""
    return type_shape(value.type)


def type_shape(t) -> Optional[List[Optional[int]]]:
    """The dims of a ranked tensor type (None for `?`), or None when it is not one."""
    ir = sys.modules[type(t).__module__]
    if not isinstance(t, ir.RankedTensorType):
        return None
    rt = ir.RankedTensorType(t)
    return [None if rt.is_dynamic_dim(i) else rt.shape[i] for i in range(rt.rank)]


def element_type(value):
    ir = sys.modules[type(value.type).__module__]
    return ir.ShapedType(value.type).element_type


def dims_compatible(a: Optional[int], b: Optional[int]) -> bool:
    return a is None or b is None or a == b


def shapes_compatible(a, b) -> bool:
    return len(a) == len(b) and all(dims_compatible(x, y) for x, y in zip(a, b))


def broadcast_shape(a, b) -> Optional[List[Optional[int]]]:
    """numpy broadcasting of two dim lists (None = dynamic); None when incompatible."""
    out = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        else:
            return None
    return out[::-1]


def _fmt(shape) -> str:
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def _attr_str(op, name) -> str:
    ir = sys.modules[type(op).__module__]
    return ir.StringAttr(op.attributes[name]).value


def _attr_int(op, name) -> int:
    ir = sys.modules[type(op).__module__]
    return ir.IntegerAttr(op.attributes[name]).value


def _verify_weight(op) -> Optional[str]:
    shape = shape_of(op.results[0])
    if shape is None or any(d is None for d in shape):
        return "weight must have a static ranked tensor type"
    if not _attr_str(op, "name"):
        return "weight name must not be empty"
    return None


def _verify_gemm(op) -> Optional[str]:
    error = _check_choice(op, "activation", ACTIVATIONS, "activation")
    if error:
        return error
    lhs, rhs, res = shape_of(op.operands[0]), shape_of(op.operands[1]), shape_of(op.results[0])
    if lhs is None or rhs is None or res is None:
        return "operands and result must be ranked tensors"
    if "lhs_patches" in op.attributes:
        lhs = _patch_matrix_shape(op, lhs)
        if isinstance(lhs, str):
            return lhs
    if len(lhs) < 2:
        return f"lhs must have rank >= 2, got {_fmt(lhs)}"
    if "rhs_panel" in op.attributes:
        packed = _packed_rhs_shape(op, lhs, rhs, res)
        if isinstance(packed, str):
            return packed
        rhs = packed
    if len(rhs) != 2 and len(rhs) != len(lhs):
        return f"rhs must have rank 2 or lhs's rank {len(lhs)}, got {_fmt(rhs)}"
    if not dims_compatible(lhs[-1], rhs[-2]):
        return f"contraction dims differ: lhs {_fmt(lhs)} has K={lhs[-1]}, rhs {_fmt(rhs)} " \
               f"has K={rhs[-2]}"
    if len(rhs) == len(lhs) and not shapes_compatible(lhs[:-2], rhs[:-2]):
        return f"batch dims differ: lhs {_fmt(lhs)}, rhs {_fmt(rhs)}"
    expected = lhs[:-1] + [rhs[-1]]
    if not shapes_compatible(res, expected):
        return f"result shape {_fmt(res)} does not match lhs x rhs shape {_fmt(expected)}"
    bias = optional_operand(op, "bias")
    if bias is not None:
        b = shape_of(bias)
        if b is None or len(b) != 1 or not dims_compatible(b[0], rhs[-1]):
            return f"bias must be 1-D of size N={rhs[-1]}, got {_fmt(b or [])}"
    residual = optional_operand(op, "residual")
    if residual is not None:
        r = shape_of(residual)
        if r is None or not shapes_compatible(r, res):
            return f"residual shape {_fmt(r or [])} must equal the result shape {_fmt(res)}"
    types = {str(element_type(v)) for v in list(op.operands) + [op.results[0]]}
    if len(types) != 1:
        return f"operands and result must share one element type, got {sorted(types)}"
    return None


def patch_geometry(op):
    """(KH, KW, SH, SW, DH, DW) of a GEMM whose lhs is implicit im2col patches, else None."""
    if "lhs_patches" not in op.attributes:
        return None
    return tuple(op.attributes["lhs_patches"])


def patch_matrix_shape(padded, geometry):
    """The patch matrix [N, OH, OW, KH*KW*C] that a padded NHWC input [N, Hp, Wp, C] stands for
    under `geometry` (KH, KW, SH, SW, DH, DW); None entries stay dynamic."""
    n, hp, wp, c = padded
    kh, kw, sh, sw, dh, dw = geometry
    return [n, conv2d_output_size(hp, kh, sh, 0, dh), conv2d_output_size(wp, kw, sw, 0, dw),
            None if c is None else kh * kw * c]


def _patch_matrix_shape(op, lhs):
    """`lhs_patches` (see ember.gemm's doc): the logical lhs, or the broken rule."""
    ir = sys.modules[type(op).__module__]
    attr = op.attributes["lhs_patches"]
    if not isinstance(attr, ir.DenseI64ArrayAttr) or len(attr) != 6 or min(attr) < 1:
        return f"lhs_patches must be array<i64: KH, KW, SH, SW, DH, DW> of positive values, " \
               f"got {attr}"
    if len(lhs) != 4 or None in lhs[1:]:
        return f"an lhs of patches must be a padded NHWC input [N, Hp, Wp, C] with static " \
               f"Hp, Wp, C, got {_fmt(lhs)}"
    kh, kw, _, _, dh, dw = tuple(attr)
    if lhs[1] < dh * (kh - 1) + 1 or lhs[2] < dw * (kw - 1) + 1:
        return f"the patch window {kh}x{kw} (dilation {dh}x{dw}) does not fit the lhs " \
               f"{_fmt(lhs)}"
    return patch_matrix_shape(lhs, tuple(attr))


def _packed_rhs_shape(op, lhs, rhs, res):
    """The logical [K, N] of a panel-packed rhs (`rhs_panel = NR`), or the broken rule."""
    ir = sys.modules[type(op).__module__]
    attr = op.attributes["rhs_panel"]
    if not isinstance(attr, ir.IntegerAttr) or ir.IntegerAttr(attr).value <= 0:
        return f"rhs_panel must be a positive integer, got {attr}"
    nr = ir.IntegerAttr(attr).value
    n, k = res[-1], lhs[-1]
    if n is None or k is None:
        return "a panel-packed rhs needs static K and N"
    expected = [-(-n // nr), k, nr]
    if rhs != expected:
        return f"panel-packed rhs must be [ceil(N/{nr}), K, {nr}] = {_fmt(expected)} for " \
               f"K={k}, N={n}, got {_fmt(rhs)}"
    return [k, n]


def _verify_layer_norm(op) -> Optional[str]:
    x, res = shape_of(op.operands[0]), shape_of(op.results[0])
    n = _attr_int(op, "normalized_ndim")
    if x is None or not 1 <= n <= len(x):
        return f"normalized_ndim must be in [1, rank], got {n}"
    if not shapes_compatible(x, res):
        return "result must have the input's shape"
    for name in ("weight", "bias"):
        v = optional_operand(op, name)
        if v is not None and not shapes_compatible(shape_of(v) or [], x[-n:]):
            return f"{name} shape {_fmt(shape_of(v) or [])} must equal the normalized dims " \
                   f"{_fmt(x[-n:])}"
    return None


def _verify_softmax(op) -> Optional[str]:
    x = shape_of(op.operands[0])
    axis = _attr_int(op, "axis")
    if x is None or not 0 <= axis < len(x):
        return f"axis {axis} out of range for rank {len(x or [])}"
    if not shapes_compatible(x, shape_of(op.results[0]) or []):
        return "result must have the input's shape"
    return None


def _verify_unary(op) -> Optional[str]:
    error = _check_choice(op, "kind", UNARY_KINDS, "unary kind")
    if error:
        return error
    if not shapes_compatible(shape_of(op.operands[0]) or [], shape_of(op.results[0]) or []):
        return "result must have the input's shape"
    return None


def _verify_binary(op) -> Optional[str]:
    error = _check_choice(op, "kind", BINARY_KINDS, "binary kind")
    if error:
        return error
    lhs, rhs, res = (shape_of(v) for v in (op.operands[0], op.operands[1], op.results[0]))
    expected = broadcast_shape(lhs, rhs)
    if expected is None:
        return f"operand shapes {_fmt(lhs)} and {_fmt(rhs)} do not broadcast"
    if not shapes_compatible(res, expected):
        return f"result shape {_fmt(res)} must be the broadcast shape {_fmt(expected)}"
    return None


def _verify_transpose(op) -> Optional[str]:
    x, res = shape_of(op.operands[0]), shape_of(op.results[0])
    perm = list(op.attributes["permutation"])
    if sorted(perm) != list(range(len(x))):
        return f"permutation {perm} is not a permutation of [0, {len(x)})"
    if not shapes_compatible(res, [x[p] for p in perm]):
        return f"result shape {_fmt(res)} must be the permuted input shape " \
               f"{_fmt([x[p] for p in perm])}"
    return None


def _verify_reshape(op) -> Optional[str]:
    x, res = shape_of(op.operands[0]), shape_of(op.results[0])
    if None in x or None in res:
        return None
    if math.prod(x) != math.prod(res):
        return f"element counts differ: {_fmt(x)} has {math.prod(x)}, {_fmt(res)} has " \
               f"{math.prod(res)}"
    return None


def conv2d_output_size(size, kernel, stride, pad, dilation):
    """One spatial output size of a convolution or pooling window (None stays dynamic)."""
    if size is None:
        return None
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _window_settings(op, keys):
    """(settings, error) for a conv/pool op's 2-value array attributes (padding may be 0)."""
    settings = {k: list(op.attributes[k]) for k in keys}
    for key, values in settings.items():
        if len(values) != 2 or min(values) < (0 if key == "padding" else 1):
            kind = "non-negative" if key == "padding" else "positive"
            return settings, f"{key} must be 2 {kind} values, got {values}"
    return settings, None


def _check_choice(op, attr: str, allowed, what: str) -> Optional[str]:
    value = _attr_str(op, attr)
    if value not in allowed:
        return f"unknown {what} '{value}'; expected one of {', '.join(allowed)}"
    return None


def _verify_conv2d(op) -> Optional[str]:
    error = _check_choice(op, "activation", ACTIVATIONS, "activation") or \
        _check_choice(op, "layout", CONV_LAYOUTS, "layout")
    settings, window_error = _window_settings(op, ("strides", "padding", "dilations"))
    if error or window_error:
        return error or window_error
    layout = _attr_str(op, "layout")
    x, w, res = shape_of(op.operands[0]), shape_of(op.operands[1]), shape_of(op.results[0])
    if x is None or w is None or res is None or len(x) != 4 or len(w) != 4 or len(res) != 4:
        return "input, filter and result must be rank-4 tensors"
    if layout == "nchw":
        (n, c, h, wd), (f, cg, kh, kw), (rn, rf, rh, rw) = x, w, res
    else:
        (n, h, wd, c), (kh, kw, cg, f), (rn, rh, rw, rf) = x, w, res
    groups = _attr_int(op, "groups")
    if groups != 1 and not (groups == c == f and cg == 1):
        return f"groups must be 1 or equal input and output channels (depthwise), got {groups}"
    if not dims_compatible(c, None if cg is None else cg * groups):
        return f"filter expects {cg * groups} input channels, input has {c}"
    expected = [n, f] + [conv2d_output_size(s, k, st, p, d) for s, k, st, p, d in
                         zip((h, wd), (kh, kw), settings["strides"], settings["padding"],
                             settings["dilations"])]
    got = [rn, rf, rh, rw]
    if not shapes_compatible(got, expected):
        return f"result shape {_fmt(res)} does not match the convolution's {_fmt(expected)} " \
               f"(N, F, OH, OW)"
    bias = optional_operand(op, "bias")
    if bias is not None and not shapes_compatible(shape_of(bias) or [], [f]):
        return f"bias must be 1-D of size F={f}, got {_fmt(shape_of(bias) or [])}"
    residual = optional_operand(op, "residual")
    if residual is not None and not shapes_compatible(shape_of(residual) or [], res):
        return f"residual shape {_fmt(shape_of(residual) or [])} must equal the result shape " \
               f"{_fmt(res)}"
    return None


def _verify_pool2d(op) -> Optional[str]:
    error = _check_choice(op, "kind", POOL_KINDS, "pooling kind") or \
        _check_choice(op, "layout", CONV_LAYOUTS, "layout")
    settings, window_error = _window_settings(op, ("kernel", "strides", "padding"))
    if error or window_error:
        return error or window_error
    layout = _attr_str(op, "layout")
    if any(2 * p > k for p, k in zip(settings["padding"], settings["kernel"])):
        return f"padding {settings['padding']} must be at most half the kernel " \
               f"{settings['kernel']}"
    x, res = shape_of(op.operands[0]), shape_of(op.results[0])
    if x is None or res is None or len(x) != 4 or len(res) != 4:
        return "input and result must be rank-4 tensors"
    spatial, channel = ((2, 3), 1) if layout == "nchw" else ((1, 2), 3)
    expected = list(x)
    for d, k, st, p in zip(spatial, settings["kernel"], settings["strides"], settings["padding"]):
        expected[d] = conv2d_output_size(x[d], k, st, p, 1)
    if not shapes_compatible(res, expected):
        return f"result shape {_fmt(res)} does not match the pooled shape {_fmt(expected)}"
    return None


def _verify_attention(op) -> Optional[str]:
    q, k, v, res = (shape_of(x) for x in (op.operands[0], op.operands[1], op.operands[2],
                                          op.results[0]))
    if any(s is None or len(s) < 2 for s in (q, k, v, res)):
        return "query, key, value and result must have rank >= 2"
    if not (len(q) == len(k) == len(v) == len(res)):
        return "query, key, value and result must have the same rank"
    lead = len(q) - 2
    if not (shapes_compatible(q[:lead], k[:lead]) and shapes_compatible(k[:lead], v[:lead])):
        return f"leading dims differ: query {_fmt(q)}, key {_fmt(k)}, value {_fmt(v)}"
    if not dims_compatible(q[-1], k[-1]):
        return f"query and key head dims differ: {q[-1]} vs {k[-1]}"
    if not dims_compatible(k[-2], v[-2]):
        return f"key and value sequence lengths differ: {k[-2]} vs {v[-2]}"
    expected = q[:-1] + [v[-1]]
    if not shapes_compatible(res, expected):
        return f"result shape {_fmt(res)} must be {_fmt(expected)}"
    mask = optional_operand(op, "mask")
    if mask is not None:
        m = shape_of(mask) or []
        if broadcast_shape(m, q[:-1] + [k[-2]]) is None or len(m) > len(q):
            return f"mask shape {_fmt(m)} does not broadcast to the scores " \
                   f"{_fmt(q[:-1] + [k[-2]])}"
    return None


def _verify_rms_norm(op) -> Optional[str]:
    x = shape_of(op.operands[0])
    n = _attr_int(op, "normalized_ndim")
    if x is None or not 1 <= n <= len(x):
        return f"normalized_ndim must be in [1, rank], got {n}"
    weight = optional_operand(op, "weight")
    if weight is not None and not shapes_compatible(shape_of(weight) or [], x[-n:]):
        return f"weight shape {_fmt(shape_of(weight) or [])} must equal the normalized dims " \
               f"{_fmt(x[-n:])}"
    if not shapes_compatible(x, shape_of(op.results[0]) or []):
        return "result must have the input's shape"
    return None


def _verify_rotary_embedding(op) -> Optional[str]:
    x = shape_of(op.operands[0])
    if x is None or not x or (x[-1] is not None and x[-1] % 2):
        return "input's last dim must be even (it is rotated in halves)"
    for name, value in (("cos", op.operands[1]), ("sin", op.operands[2])):
        shape = shape_of(value) or []
        b = broadcast_shape(shape, x)
        if b is None or not shapes_compatible(b, x):
            return f"{name} shape {_fmt(shape)} does not broadcast to the input {_fmt(x)}"
    if not shapes_compatible(x, shape_of(op.results[0]) or []):
        return "result must have the input's shape"
    return None


def _verify_slice(op) -> Optional[str]:
    x, res = shape_of(op.operands[0]), shape_of(op.results[0])
    axis, start, size = (_attr_int(op, k) for k in ("axis", "start", "size"))
    if x is None or res is None or not 0 <= axis < len(x):
        return f"axis {axis} out of range for rank {len(x or [])}"
    if start < 0 or size < 0 or (x[axis] is not None and start + size > x[axis]):
        return f"slice [{start}, {start + size}) is outside dim {axis} of size {x[axis]}"
    expected = list(x)
    expected[axis] = size
    if not shapes_compatible(res, expected):
        return f"result shape {_fmt(res)} must be {_fmt(expected)}"
    return None


def _verify_reduce(op) -> Optional[str]:
    error = _check_choice(op, "kind", REDUCE_KINDS, "reduction kind")
    if error:
        return error
    x, res = shape_of(op.operands[0]), shape_of(op.results[0])
    axes = list(op.attributes["axes"])
    if x is None or res is None:
        return "input and result must be ranked tensors"
    if not axes or axes != sorted(set(axes)) or axes[0] < 0 or axes[-1] >= len(x):
        return f"axes {axes} must be sorted, distinct and in [0, {len(x)})"
    keepdim = sys.modules[type(op).__module__].BoolAttr(op.attributes["keepdim"]).value
    expected = [1 if d in axes else n for d, n in enumerate(x)] if keepdim else \
        [n for d, n in enumerate(x) if d not in axes]
    if not shapes_compatible(res, expected):
        return f"result shape {_fmt(res)} must be {_fmt(expected)}"
    return None


def _verify_concat(op) -> Optional[str]:
    shapes = [shape_of(v) for v in op.operands]
    res = shape_of(op.results[0])
    axis = _attr_int(op, "axis")
    if not shapes or res is None or any(s is None or len(s) != len(res) for s in shapes):
        return "inputs and result must be ranked tensors of one rank"
    if not 0 <= axis < len(res):
        return f"axis {axis} out of range for rank {len(res)}"
    for s in shapes:
        if not shapes_compatible([d for i, d in enumerate(s) if i != axis],
                                 [d for i, d in enumerate(res) if i != axis]):
            return f"input shape {_fmt(s)} differs from the result {_fmt(res)} off axis {axis}"
    sizes = [s[axis] for s in shapes]
    if None not in sizes and res[axis] is not None and sum(sizes) != res[axis]:
        return f"inputs add up to {sum(sizes)} along axis {axis}, result has {res[axis]}"
    return None


#: One semantic rule per op.
VERIFIERS: Dict[str, Callable] = {
    "ember.weight": _verify_weight,
    "ember.gemm": _verify_gemm,
    "ember.conv2d": _verify_conv2d,
    "ember.pool2d": _verify_pool2d,
    "ember.attention": _verify_attention,
    "ember.rms_norm": _verify_rms_norm,
    "ember.rotary_embedding": _verify_rotary_embedding,
    "ember.slice": _verify_slice,
    "ember.reduce": _verify_reduce,
    "ember.concat": _verify_concat,
    "ember.layer_norm": _verify_layer_norm,
    "ember.softmax": _verify_softmax,
    "ember.unary": _verify_unary,
    "ember.binary": _verify_binary,
    "ember.transpose": _verify_transpose,
    "ember.reshape": _verify_reshape,
}


#: Ops that only move data: any element type, the same in and out.
DATA_MOVEMENT_OPS = ("ember.transpose", "ember.reshape", "ember.slice", "ember.concat")
#: Ops that compute in floating point: every tensor operand and the result share one float type.
FLOAT_OPS = frozenset(VERIFIERS) - {"ember.weight", *DATA_MOVEMENT_OPS}
FLOAT_TYPES = ("f16", "bf16", "f32", "f64")


def _verify_element_types(op) -> Optional[str]:
    types = [str(element_type(v)) for v in list(op.operands) + [op.results[0]]]
    if len(set(types)) != 1:
        return f"operands and result must share one element type, got {sorted(set(types))}"
    if types[0] not in FLOAT_TYPES:
        return f"computes in floating point ({', '.join(FLOAT_TYPES)}); got {types[0]}"
    return None


def verify_op(op) -> Optional[str]:
    """The broken rule's message for one ember op, or None when it is well formed."""
    if op.name in FLOAT_OPS:
        message = _verify_element_types(op)
        if message:
            return message
    elif op.name in DATA_MOVEMENT_OPS and \
            len({str(element_type(v)) for v in list(op.operands) + [op.results[0]]}) != 1:
        return "result must have the inputs' element type"
    rule = VERIFIERS.get(op.name)
    return rule(op) if rule else None


def verify_module(module_op) -> List[Tuple[object, str]]:
    """(op, message) for every malformed ember op under `module_op`."""
    ir = sys.modules[type(module_op).__module__]
    errors = []

    def visit(op):
        if op.name.startswith("ember."):
            msg = verify_op(op.opview if hasattr(op, "opview") else op)
            if msg:
                errors.append((op, f"'{op.name}' op {msg}"))
        return ir.WalkResult.ADVANCE

    module_op.walk(visit)
    return errors
