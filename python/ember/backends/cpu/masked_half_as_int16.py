"""ember-masked-half-as-int16: masked loads and stores of f16/bf16 vectors move i16 lanes.

ember-vectorize-generics masks the tail of a row whose length its vector width does not divide.
LLVM 22 legalizes a masked load or store of `<N x bfloat>` (and `<N x half>`) on a CPU without
native 16-bit float vectors by scalarizing it and converting every lane through f32 and back
(a call to `__truncsfbf2` per bf16 lane; a signaling NaN comes back quiet). The lanes are only
moved, never computed on, so this pass, on the LLVM dialect, gives those ops i16 vectors of the
same bits (`llvm.bitcast` on either side), which every x86 and AArch64 CPU loads and stores as
is, in vector instructions.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register

MASKED_LOAD = "llvm.intr.masked.load"
MASKED_STORE = "llvm.intr.masked.store"


def _as_int16(vector_type):
    """The i16 vector type of an f16 or bf16 vector type, else None."""
    if not isinstance(vector_type, ir.VectorType) or \
            not isinstance(vector_type.element_type, (ir.F16Type, ir.BF16Type)):
        return None
    return ir.VectorType.get(vector_type.shape, ir.IntegerType.get_signless(16),
                             scalable=vector_type.scalable_dims)


def _bitcast(value, to_type):
    return ir.Operation.create("llvm.bitcast", results=[to_type], operands=[value]).result


def _attributes(op) -> dict:
    return {name: op.attributes[name] for name in op.attributes}


def _retype_load(op, int_type) -> None:
    """load(ptr, mask, passthru?) -> bitcast(load(ptr, mask, bitcast(passthru)?))."""
    half_type = op.results[0].type
    operands = list(op.operands)
    operands[2:] = [_bitcast(v, int_type) for v in operands[2:]]
    load = ir.Operation.create(MASKED_LOAD, results=[int_type], operands=operands,
                               attributes=_attributes(op))
    op.results[0].replace_all_uses_with(_bitcast(load.result, half_type))
    op.erase()


def _retype_store(op, int_type) -> None:
    """store(value, ptr, mask) -> store(bitcast(value), ptr, mask)."""
    value, *rest = list(op.operands)
    ir.Operation.create(MASKED_STORE, operands=[_bitcast(value, int_type), *rest],
                        attributes=_attributes(op))
    op.erase()


@register
@dataclass
class MaskedHalfAsInt16(EmberPass):
    """Masked f16/bf16 vector loads and stores as i16 ones (no per-lane float conversions)."""
    name = "ember-masked-half-as-int16"

    def run(self, module, ctx: PassContext) -> None:
        for op in walk_ops(module.operation, [MASKED_LOAD, MASKED_STORE]):
            is_load = op.name == MASKED_LOAD
            int_type = _as_int16(op.results[0].type if is_load else op.operands[0].type)
            if int_type is None:
                continue
            with ir.InsertionPoint(op), op.location:
                (_retype_load if is_load else _retype_store)(op, int_type)
