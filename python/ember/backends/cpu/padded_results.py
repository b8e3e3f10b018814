"""ember-kernels-write-padding: a GEMM kernel whose result a convolution reads padded writes
the padded tensor's interior itself.

A convolution's input is mostly its producer's [M, N] kernel result, reshaped to NHWC and
padded (tensor.pad; an int8 one's by the zero point's code). Bufferized, that pad copies the
whole activation into a new buffer's interior (ember-fill-pad-borders spares the interior's
fill, not the copy): 8 MiB per 32-channel 64 x 64 layer of a batch-64 ResNet, 8% of its int8
time on AMX. This pass, run before bufferization, makes the padded tensor the kernel's
destination instead:

    %d = tensor.empty (padded shape), its border slabs linalg.fill-ed (the pad's value)
    %p = call @kernel'(operands..., %d)     GemmKernelSpec.out_padding: row m stored at its
                                            pixel of the interior
    a kernel adding the same result as its residual reads it from %p as well (its
    residual_padding), a ResNet block's shortcut; a kernel reading the unpadded result's
    patches (a downsampling 1x1 convolution) reads them from %p's interior (patch_origin)

Rewritten only where those are all the result's uses, the pad a constant's, of H and W only,
and the shapes static. The new kernel functions' reference bodies call the original ones
(and slice the interior): ember-cpu-gemm-kernels replaces them by the generated code, after
which the originals are unused (symbol-dce drops them).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Optional

from mlir import ir
from mlir.dialects import func, tensor

from ember.backends.cpu.pad_borders import border_filled, constant_padding
from ember.kit.gemm_kernel_spec import KERNEL_ATTR, KERNEL_PREFIX, GemmKernelSpec
from ember.kit.ir_queries import walk_ops
from ember.kit.private_functions import kernel_function
from ember.pipeline.pass_base import EmberPass, PassContext, register

_NHWC_ROWS = [[0, 1, 2], [3]]


@register
@dataclass
class KernelsWritePadding(EmberPass):
    """Gives GEMM kernels whose result is only padded for a convolution (and added as a
    residual) the padded tensor as destination."""
    name = "ember-kernels-write-padding"

    def run(self, module, ctx: PassContext) -> None:
        # One rewrite at a time, then a fresh walk: a rewrite replaces the calls that read
        # the result as their residual, whose own results may then be padded in turn.
        while any(_rewrite(call, module) for call in walk_ops(module.operation, ["func.call"])
                  if _in_kernel(call) is None):
            pass


def _in_kernel(op) -> Optional[object]:
    """The kernel function op is in (the reference bodies call kernels too), else None."""
    parent = op.parent
    while parent is not None and parent.name != "func.func":
        parent = parent.parent
    return parent if parent is not None and KERNEL_ATTR in parent.attributes else None


def _spec(fn) -> GemmKernelSpec:
    return GemmKernelSpec.from_attr(fn.attributes[KERNEL_ATTR])


def _rewrite(call, module) -> bool:
    """Rewrites kernel call `call` and its uses when they allow (module doc); whether it
    did."""
    fn = _callee(call)
    if fn is None:
        return False
    spec = _spec(fn)
    result = call.results[0]
    if spec.batch or spec.out_padding or not ir.RankedTensorType(result.type).has_static_shape:
        return False
    expands, residual_users = [], []
    for use in result.uses:
        user = use.owner
        if user.name == "tensor.expand_shape" and _is_nhwc_expand(user):
            expands.append(user)
        elif _residual_index(user) == use.operand_number:
            residual_users.append(user)
        else:
            return False
    if len(expands) != 1:
        return False
    nhwc = ir.RankedTensorType(expands[0].results[0].type)
    users = [use.owner for use in expands[0].results[0].uses]
    pads = [op for op in users if op.name == "tensor.pad"]
    patch_users = [op for op in users if _reads_patches_of(op, nhwc)]
    if len(pads) != 1 or len(pads) + len(patch_users) != len(users):
        return False
    pad = pads[0]
    geometry = _interior(pad, nhwc)
    if geometry is None:
        return False
    padded_type = ir.RankedTensorType(pad.results[0].type)
    low = list(ir.DenseI64ArrayAttr(pad.attributes["static_low"]))
    high = list(ir.DenseI64ArrayAttr(pad.attributes["static_high"]))
    block = module.body
    with ir.InsertionPoint(call), call.location:
        inner = list(ir.RankedTensorType(expands[0].results[0].type).shape)
        dest = border_filled(padded_type, constant_padding(pad), low, high, inner)
        operands = list(call.operands)[:-1]
        name = _padded_kernel(block, call, replace(spec, out_padding=geometry),
                              [v.type for v in operands], padded_type, low, inner)
        padded = func.call([padded_type], name, operands + [dest])
    pad.results[0].replace_all_uses_with(padded)
    pad.erase()
    for user in residual_users:
        _read_padded_residual(block, user, padded, geometry, low, inner)
    for user in patch_users:
        _read_padded_patches(block, user, padded, low, inner)
    expands[0].erase()
    call.erase()
    return True


def _is_nhwc_expand(op) -> bool:
    """Whether `op` reshapes [M, N] rows to [images, H, W, N]."""
    association = [[ir.IntegerAttr(i).value for i in ir.ArrayAttr(group)]
                   for group in ir.ArrayAttr(op.attributes["reassociation"])]
    return association == _NHWC_ROWS


def _interior(pad, nhwc) -> Optional[tuple]:
    """GemmKernelSpec.out_padding for `pad` of the NHWC tensor `nhwc`, or None unless it
    pads H and W only, by constants, with a constant."""
    if constant_padding(pad) is None:
        return None
    low = list(ir.DenseI64ArrayAttr(pad.attributes["static_low"]))
    high = list(ir.DenseI64ArrayAttr(pad.attributes["static_high"]))
    if ir.ShapedType.get_dynamic_size() in low + high or low[0] or low[3] or high[0] or high[3]:
        return None
    _, h, w, _ = nhwc.shape
    padded = ir.RankedTensorType(pad.results[0].type).shape
    return (h, w, low[1], low[2], padded[1], padded[2])


def _residual_index(op) -> Optional[int]:
    """The operand number of kernel call `op`'s residual (unpadded so far), else None."""
    if op.name != "func.call":
        return None
    fn = _callee(op)
    if fn is None:
        return None
    spec = _spec(fn)
    if not spec.residual or spec.residual_padding or spec.batch:
        return None
    return spec.arg_names().index("residual")


def _reads_patches_of(op, nhwc) -> bool:
    """Whether `op` calls a kernel reading its patch lhs (operand 0) from all of NHWC
    tensor `nhwc`, whose grid could as well start inside a padded one (patch_origin)."""
    if op.name != "func.call" or op.operands[0].type != nhwc:
        return False
    fn = _callee(op)
    if fn is None:
        return False
    spec = _spec(fn)
    return spec.patches is not None and not spec.patch_origin and not spec.batch and \
        tuple(spec.patches[:3]) == tuple(nhwc.shape[1:]) and \
        sum(1 for v in op.operands if v == op.operands[0]) == 1


def _callee(call):
    """The kernel function `call` calls, or None."""
    name = ir.FlatSymbolRefAttr(call.attributes["callee"]).value
    module = call.parent
    while module.name != "builtin.module":
        module = module.parent
    for op in module.regions[0].blocks[0].operations:
        if op.operation.name == "func.func" and KERNEL_ATTR in op.attributes and \
                ir.StringAttr(op.attributes["sym_name"]).value == name:
            return op
    return None


def _slices(low, inner):
    """The interior's ([], [], [], offsets, sizes, strides) for extract/insert_slice."""
    return [], [], [], low, inner, [1] * len(inner)


def _padded_kernel(block, call, spec, operand_types, padded_type, low, inner) -> str:
    """The kernel function writing `call`'s result into a padded destination's interior;
    its reference body calls `call`'s kernel and inserts the result."""
    original = ir.FlatSymbolRefAttr(call.attributes["callee"]).value
    result_type = call.results[0].type
    nhwc = ir.RankedTensorType.get(inner, padded_type.element_type)

    def body(args):
        args = list(args)
        rows = func.call([result_type], original,
                         list(args[:-1]) + [tensor.empty(list(result_type.shape),
                                                         result_type.element_type)])
        image = tensor.expand_shape(nhwc, rows, _NHWC_ROWS, [],
                                    ir.DenseI64ArrayAttr.get(inner))
        return [tensor.InsertSliceOp(image, args[-1], *_slices(low, inner)).result]
    return kernel_function(block, KERNEL_ATTR, spec.attr(),
                           ir.FunctionType.get(operand_types + [padded_type], [padded_type]),
                           KERNEL_PREFIX, body)


def _read_padded_patches(block, user, padded, low, inner) -> None:
    """Replaces kernel call `user`, whose patch lhs is the unpadded tensor, by one of a
    kernel reading the patches from the padded tensor's interior (its patch_origin)."""
    spec = _spec(_callee(user))
    image_type = user.operands[0].type
    patches = (*ir.RankedTensorType(padded.type).shape[1:3], *spec.patches[2:])
    origin = (low[1], low[2], *spec.patch_output)

    def arguments(args):
        image = tensor.ExtractSliceOp(image_type, args[0], *_slices(low, inner)).result
        return [image] + args[1:]
    _call_instead(block, user, replace(spec, patches=patches, patch_origin=origin), 0, padded,
                  arguments)


def _read_padded_residual(block, user, padded, geometry, low, inner) -> None:
    """Replaces kernel call `user` by one of a kernel reading its residual from the padded
    tensor's interior."""
    spec = _spec(_callee(user))
    at = spec.arg_names().index("residual")
    rows_type = user.operands[at].type
    nhwc = ir.RankedTensorType.get(inner, ir.RankedTensorType(padded.type).element_type)

    def arguments(args):
        image = tensor.ExtractSliceOp(nhwc, args[at], *_slices(low, inner)).result
        rows = tensor.collapse_shape(rows_type, image, _NHWC_ROWS)
        return args[:at] + [rows] + args[at + 1:]
    _call_instead(block, user, replace(spec, residual_padding=geometry), at, padded,
                  arguments)


def _call_instead(block, user, spec, at: int, padded, arguments) -> None:
    """Replaces kernel call `user` by a call of the kernel of `spec` with operand `at` the
    padded tensor; that kernel's reference body calls `user`'s kernel on
    `arguments(its arguments)` (the interior sliced out)."""
    original = ir.FlatSymbolRefAttr(user.attributes["callee"]).value
    operands: List = list(user.operands)
    operands[at] = padded
    result_types = [r.type for r in user.results]
    with ir.InsertionPoint(user), user.location:
        name = kernel_function(
            block, KERNEL_ATTR, spec.attr(),
            ir.FunctionType.get([v.type for v in operands], result_types), KERNEL_PREFIX,
            lambda args: [func.call(result_types, original, arguments(list(args)))])
        new = func.call(result_types, name, operands)
    user.results[0].replace_all_uses_with(new)
    user.erase()
