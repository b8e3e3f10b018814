"""ember-fill-pad-borders: a padded tensor's value is written only where it stays.

Bufferized as it is, `tensor.pad` fills its whole new buffer with the padding value and then
copies the source over the interior: for a convolution's input (a 64 x 64 image padded by one
pixel) 94% of the fill is overwritten at once. This pass, run before bufferization, rewrites a
pad by a constant with static low and high widths into

    %e   = tensor.empty                                  (the padded shape)
    per padded dim d, the slab before and the slab after the source along d (over the
    interior of the dims before d and all of the dims after it: the slabs tile the border
    once): tensor.extract_slice of the tensor so far, linalg.fill, tensor.insert_slice back
    %out = tensor.insert_slice %source into the interior

which one-shot bufferization writes in place: fills of the border's subviews, then the copy.
A source that a linalg op computes for the pad alone (into a new tensor) is computed into the
interior instead (its init becomes the interior's slice), so that nothing is copied: the stem's
NCHW -> NHWC transpose writes the padded image (whose channel runs of 3 bytes the copy took
one at a time). Pads with run-time widths or a computed padding value are left as they are,
and so are small ones (`min-elements`, dynamic dims counted as 1): their double write costs
little, and their slabs' loops have static trip counts so small that LLVM unrolls them fully,
into blocks of hundreds of masked stores that its DAG combiner takes minutes over (a 9-channel
[3, 8, 10] input padded by 3: 13 minutes in `visitTokenFactor`, 6 s with the plain pad).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register

_DYNAMIC = ir.ShapedType.get_dynamic_size()


@register
@dataclass
class FillPadBorders(EmberPass):
    """Rewrites each tensor.pad by a constant into border fills and an insert of the source."""
    name = "ember-fill-pad-borders"
    #: Elements a padded tensor needs (dynamic dims counted as 1) before it is rewritten.
    min_elements: int = 65536

    def run(self, module, ctx: PassContext) -> None:
        for pad in walk_ops(module.operation, ["tensor.pad"]):
            value = constant_padding(pad)
            low, high = (list(ir.DenseI64ArrayAttr(pad.attributes[k]))
                         for k in ("static_low", "static_high"))
            shape = ir.RankedTensorType(pad.results[0].type).shape
            if value is None or _DYNAMIC in low + high or \
                    math.prod(1 if d == _DYNAMIC else d for d in shape) < self.min_elements:
                continue
            with ir.InsertionPoint(pad), pad.location:
                result = _filled_borders(pad.operands[0], value, low, high,
                                         ir.RankedTensorType(pad.results[0].type))
            pad.results[0].replace_all_uses_with(result)
            pad.erase()


def constant_padding(pad):
    """The pad's padding value as an attribute when it is a constant, else None."""
    yielded = list(pad.regions[0].blocks[0].operations)[-1].operands[0]
    if not isinstance(yielded, ir.OpResult) or yielded.owner.name != "arith.constant":
        return None
    return yielded.owner.attributes["value"]


class _Extent:
    """Offsets and sizes of a slice, each an int or an index value."""

    def __init__(self, offsets: List, sizes: List):
        self.offsets, self.sizes = offsets, sizes

    def split(self):
        """The (dynamic offsets, dynamic sizes, dynamic strides, static offsets, static
        sizes, static strides) tensor.extract_slice and insert_slice take."""
        def parts(values):
            return ([v for v in values if isinstance(v, ir.Value)],
                    [_DYNAMIC if isinstance(v, ir.Value) else v for v in values])
        (offsets, static_offsets), (sizes, static_sizes) = parts(self.offsets), \
            parts(self.sizes)
        return offsets, sizes, [], static_offsets, static_sizes, [1] * len(self.sizes)

    def slice_type(self, element):
        return ir.RankedTensorType.get(
            [_DYNAMIC if isinstance(s, ir.Value) else s for s in self.sizes], element)


def border_filled(result_type, value, low, high, inner):
    """A new tensor of `result_type` whose border (`low` and `high` wide around an interior of
    sizes `inner`, ints or index values) holds `value` (an attribute), its interior
    unwritten: tensor.empty and a linalg.fill per border slab."""
    element, rank = result_type.element_type, result_type.rank
    outer = [_offset(inner[d], low[d] + high[d]) if isinstance(inner[d], ir.Value)
             else result_type.shape[d] for d in range(rank)]
    padded = tensor.empty(outer, element)
    fill_value = arith.constant(element, value)
    for d in range(rank):
        for start, width in ((0, low[d]), (_offset(inner[d], low[d]), high[d])):
            if not width:
                continue
            slab = _Extent(low[:d] + [start] + [0] * (rank - d - 1),
                           inner[:d] + [width] + outer[d + 1:])
            part = tensor.ExtractSliceOp(slab.slice_type(element), padded, *slab.split())
            filled = linalg.fill(fill_value, outs=[part.result])
            padded = tensor.InsertSliceOp(filled, padded, *slab.split()).result
    return padded


def _offset(size, by):
    return arith.addi(size, arith.constant(ir.IndexType.get(), by)) \
        if isinstance(size, ir.Value) else size + by


def _filled_borders(source, value, low, high, result_type):
    """The padded tensor: an empty one, its border slabs filled with `value`, `source` in the
    interior."""
    source_type = ir.RankedTensorType(source.type)
    inner = [tensor.dim(source, arith.constant(ir.IndexType.get(), d))
             if source_type.is_dynamic_dim(d) else source_type.shape[d]
             for d in range(source_type.rank)]
    padded = border_filled(result_type, value, low, high, inner)
    interior = _Extent(list(low), inner)
    producer = _linalg_producer(source)
    if producer is not None:        # computed in place, in the interior: no copy
        slot = tensor.ExtractSliceOp(source.type, padded, *interior.split())
        producer.operands[len(producer.operands) - 1] = slot.result
        producer.move_after(slot)
    return tensor.InsertSliceOp(source, padded, *interior.split()).result


def _linalg_producer(source):
    """The linalg op computing `source` into a new tensor (its one init a tensor.empty of
    source's type) for the pad alone, or None: such an op can write into the padded tensor's
    interior instead (the stem's NCHW -> NHWC transpose of an image)."""
    if not isinstance(source, ir.OpResult):
        return None
    op = source.owner
    if not op.name.startswith("linalg.") or len(op.results) != 1 or \
            len(list(source.uses)) != 1:
        return None
    init = op.operands[len(op.operands) - 1]
    if not isinstance(init, ir.OpResult) or init.owner.name != "tensor.empty" or \
            init.type != source.type:
        return None
    return op
