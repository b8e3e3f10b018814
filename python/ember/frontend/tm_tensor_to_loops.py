"""torch-mlir's TMTensor ops -> scf loops over tensors, inside torch-mlir's own MLIR context.

torch-mlir lowers some ATen ops only to its TMTensor dialect, which the compiler's MLIR lacks:
  tm_tensor.scatter  scatter, scatter_add, scatter_reduce, index_put (boolean masks included),
                     bincount, max_pool2d_with_indices_backward, and what decomposes to them
                     (index_add, masked_scatter, max_unpool, ...)
  tm_tensor.scan     cumsum, cumprod (logcumsumexp, repeat_interleave, nonzero, ...)
  tm_tensor.sort     sort, argsort, kthvalue
  tm_tensor.topk     kthvalue
torch-mlir's own `tm-tensor-to-loops` works on memrefs, which would put buffers into the
compiler's tensor-level input. This rewrite emits the same scalar loops (the semantics of
TMTensor's `generateScalarImplementation`) on tensors instead: scf.for nests carrying the
output tensors, tensor.extract / tensor.insert, and the op's region (combiner or comparator)
inlined into the loop body. One-shot bufferization later updates the tensors in place.

The loops are sequential and simple: a scatter with duplicate indices applies its updates in
index order (PyTorch's last writer for plain scatter), and sort is a stable bubble sort
(O(n^2) along the sorted dim). A negative scatter index counts from the end, as index_put's do
in PyTorch (torch-mlir passes them through unchanged; PyTorch's other scatters reject them). A
position still outside the target is not skipped here: the element read and written there
depends on tensor data, which the CPU targets' run-time checks (ember-runtime-checks) guard, so
the run fails with an IndexOutOfRangeError naming the op, as PyTorch's does, and nothing out of
range is read or written. The GPU targets run only kernels, so they refuse these host loops.
Ops this module does not know (tm_tensor.attention) are left for the importer's leftover check.
"""
from __future__ import annotations

from typing import Callable, List, Sequence


class _Builder:
    """Scalar-loop helpers over torch-mlir's `ir` and dialect modules."""

    def __init__(self):
        from torch_mlir import ir
        from torch_mlir.dialects import arith, scf, tensor
        self.ir, self.arith, self.scf, self.tensor = ir, arith, scf, tensor
        self.index_type = ir.IndexType.get()

    def index(self, value: int):
        return self.arith.ConstantOp(self.index_type, value).result

    def dim(self, tensor_value, d: int):
        """The size of dim `d` of a tensor, as an index (a constant when static)."""
        shaped = self.ir.RankedTensorType(tensor_value.type)
        if not shaped.is_dynamic_dim(d):
            return self.index(shaped.shape[d])
        return self.tensor.DimOp(tensor_value, self.index(d)).result

    def dims(self, tensor_value) -> List:
        return [self.dim(tensor_value, d)
                for d in range(self.ir.RankedTensorType(tensor_value.type).rank)]

    def extract(self, tensor_value, indices: Sequence):
        return self.tensor.ExtractOp(tensor_value, list(indices)).result

    def insert(self, scalar, tensor_value, indices: Sequence):
        return self.tensor.InsertOp(scalar, tensor_value, list(indices)).result

    def to_index(self, value):
        return self.arith.IndexCastOp(self.index_type, value).result

    def cast_integer(self, value, to_type):
        """An index or integer value as the integer (or index) type `to_type`."""
        if value.type == to_type:
            return value
        if isinstance(value.type, self.ir.IndexType) or isinstance(to_type, self.ir.IndexType):
            return self.arith.IndexCastOp(to_type, value).result
        if self.ir.IntegerType(value.type).width < self.ir.IntegerType(to_type).width:
            return self.arith.ExtSIOp(to_type, value).result
        return self.arith.TruncIOp(to_type, value).result

    def cmp(self, predicate: str, lhs, rhs):
        return self.arith.CmpIOp(getattr(self.arith.CmpIPredicate, predicate), lhs, rhs).result

    def loops(self, upper: Sequence, carried: Sequence,
              body: Callable[[List, List], List]) -> List:
        """A nest of scf.for over [0, upper[i]) carrying `carried`; `body(ivs, values)` builds
        one iteration and returns the new carried values."""
        if not upper:
            return list(body([], list(carried)))
        loop = self.scf.ForOp(self.index(0), upper[0], self.index(1), list(carried))
        with self.ir.InsertionPoint(loop.body):
            inner = self.loops(upper[1:], list(loop.inner_iter_args),
                               lambda ivs, values: body([loop.induction_variable] + ivs,
                                                        values))
            self.scf.YieldOp(inner)
        return list(loop.results)

    def if_else(self, condition, result_types: Sequence, then_body: Callable[[], List],
                else_body: Callable[[], List]) -> List:
        branch = self.scf.IfOp(condition, list(result_types), has_else=True)
        for block, body in ((branch.then_block, then_body), (branch.else_block, else_body)):
            with self.ir.InsertionPoint(block):
                self.scf.YieldOp(body())
        return list(branch.results)

    def inline(self, region, args: Sequence) -> List:
        """Moves the ops of `region`'s one block to the insertion point, with its block
        arguments replaced by `args`; returns the values its terminator yields."""
        block = region.blocks[0]
        for arg, value in zip(block.arguments, args):
            arg.replace_all_uses_with(value)
        ops = list(block.operations)
        for op in ops[:-1]:
            self.ir.InsertionPoint.current.insert(op.detach_from_parent())
        return list(ops[-1].operands)


def _split(op):
    """(inputs, outputs) of a destination-style TMTensor op: one output per result."""
    operands = list(op.operands)
    n = len(op.results)
    return operands[:len(operands) - n], operands[len(operands) - n:]


def _int_attr(op, name: str) -> int:
    from torch_mlir import ir
    return ir.IntegerAttr(op.attributes[name]).value


# ------------------------------------------------------------------------------- scatter
def _scatter(b: _Builder, op) -> List:
    """For each update position u: original[start(u)] = region(updates[u], original[...]),
    where start(u) comes from indices[u0, :] placed by dimension_map, plus u's trailing ivs
    for the trailing dims of `original`."""
    (updates, indices), (original,) = _split(op)
    dim_map = list(b.ir.DenseI64ArrayAttr(op.attributes["dimension_map"]))
    rank = b.ir.RankedTensorType(original.type).rank
    update_rank = b.ir.RankedTensorType(updates.type).rank
    sizes = b.dims(original)
    zero = b.index(0)

    def body(ivs, values):
        (target,) = values
        starts = [None] * rank
        offset = rank - (update_rank - 1)
        for k, iv in enumerate(ivs[1:]):
            starts[offset + k] = iv
        for i, d in enumerate(dim_map):
            position = b.to_index(b.extract(indices, [ivs[0], b.index(i)]))
            starts[d] = position if starts[d] is None else \
                b.arith.AddIOp(position, starts[d]).result
        for d in set(dim_map):      # a negative index counts from the end (index_put's)
            wrapped = b.arith.AddIOp(starts[d], sizes[d]).result
            starts[d] = b.arith.SelectOp(b.cmp("slt", starts[d], zero), wrapped,
                                         starts[d]).result
        update = b.extract(updates, ivs)
        current = b.extract(target, starts)
        (value,) = b.inline(op.regions[0], [update, current])
        return [b.insert(value, target, starts)]
    return b.loops(b.dims(updates), [original], body)


# ---------------------------------------------------------------------------------- scan
def _scan(b: _Builder, op) -> List:
    """output[.., 0, ..] = input[.., 0, ..] (inclusive) or accumulator[..] (exclusive);
    output[.., j, ..] = region(output[.., j-1, ..], input[.., j, ..] (or j-1 if exclusive)).
    The accumulator ends as the last output value (TMTensor leaves it unchanged for a length-1
    scan; torch-mlir's users read only the output)."""
    (source,), (output, accumulator) = _split(op)
    axis = _int_attr(op, "dimension")
    inclusive = b.ir.BoolAttr(op.attributes["inclusive"]).value
    element = b.ir.RankedTensorType(output.type).element_type
    sizes = b.dims(source)
    outer_sizes = sizes[:axis] + sizes[axis + 1:]
    one = b.index(1)

    def row(outer, values):
        out, acc = values

        def at(j):
            return outer[:axis] + [j] + outer[axis:]

        def step(ivs, carried):
            (j,), (out, previous) = ivs, carried

            def first():
                return [b.extract(source, at(j)) if inclusive else previous]

            def next_value():
                k = j if inclusive else b.arith.SubIOp(j, one).result
                return b.inline(op.regions[0], [previous, b.extract(source, at(k))])
            (value,) = b.if_else(b.cmp("eq", j, b.index(0)), [element], first, next_value)
            return [b.insert(value, out, at(j)), value]
        out, last = b.loops([sizes[axis]], [out, b.extract(acc, outer)], step)
        return [out, b.insert(last, acc, outer)]
    return b.loops(outer_sizes, [output, accumulator], row)


# ---------------------------------------------------------------------------------- sort
def _sort(b: _Builder, op) -> List:
    """A stable bubble sort of every output along `dimension`, all permuted alike: adjacent
    pairs swap where the comparator region, given (a0, b0, a1, b1, ...), yields false."""
    _, outputs = _split(op)
    axis = _int_attr(op, "dimension")
    sizes = b.dims(outputs[0])
    outer_sizes = sizes[:axis] + sizes[axis + 1:]
    one = b.index(1)
    last = b.arith.SubIOp(sizes[axis], one).result

    def row(outer, tensors):
        def at(j):
            return outer[:axis] + [j] + outer[axis:]

        def sweep(ivs, tensors):
            (sweep_index,) = ivs
            end = b.arith.SubIOp(last, sweep_index).result   # the tail is sorted already

            def compare(ivs, tensors):
                (j,) = ivs
                k = b.arith.AddIOp(j, one).result
                pairs = [(b.extract(t, at(j)), b.extract(t, at(k))) for t in tensors]
                (keep,) = b.inline(op.regions[0], [v for pair in pairs for v in pair])
                return b.if_else(keep, [t.type for t in tensors], lambda: list(tensors),
                                 lambda: [b.insert(y, b.insert(x, t, at(k)), at(j))
                                          for t, (x, y) in zip(tensors, pairs)])
            return b.loops([end], tensors, compare)
        return b.loops([last], tensors, sweep)
    return b.loops(outer_sizes, outputs, row)


# ---------------------------------------------------------------------------------- topk
def _topk(b: _Builder, op) -> List:
    """Each input element, in order along `dimension`, is inserted into the k sorted outputs:
    it displaces the first output it beats (comparator region (x, y) true means x goes first;
    of equal values, the lower index goes first), and the displaced entry moves on."""
    inputs, (out_values, out_indices) = _split(op)
    values = inputs[0]
    index_input = inputs[1] if len(inputs) > 1 else None
    axis = _int_attr(op, "dimension")
    index_type = b.ir.RankedTensorType(out_indices.type).element_type
    k = b.dim(out_values, axis)
    second_copy = op.clone(ip=False)     # the comparator runs twice per step: (x, y), (y, x)

    def element(ivs, tensors):
        carried_value = b.extract(values, ivs)
        carried_index = b.extract(index_input, ivs) if index_input is not None \
            else b.cast_integer(ivs[axis], index_type)

        def place(kv, state):
            (slot,), (out_v, out_i, value, index) = kv, state
            at = ivs[:axis] + [slot] + ivs[axis + 1:]
            held_value, held_index = b.extract(out_v, at), b.extract(out_i, at)
            (beats,) = b.inline(op.regions[0], [value, held_value])
            (beaten,) = b.inline(second_copy.regions[0], [held_value, value])
            tie_first = b.arith.AndIOp(b.cmp("eq", beats, beaten),
                                       b.cmp("slt", index, held_index)).result
            index_first = b.arith.OrIOp(beats, tie_first).result
            select = b.arith.SelectOp
            out_v = b.insert(select(beats, value, held_value).result, out_v, at)
            out_i = b.insert(select(index_first, index, held_index).result, out_i, at)
            return [out_v, out_i, select(beats, held_value, value).result,
                    select(index_first, held_index, index).result]
        out_v, out_i, _, _ = b.loops([k], tensors + [carried_value, carried_index], place)
        return [out_v, out_i]
    results = b.loops(b.dims(values), [out_values, out_indices], element)
    second_copy.erase()
    return results


#: TMTensor op -> its loops; each returns the replacement values of the op's results.
LOWERINGS = {
    "tm_tensor.scatter": _scatter,
    "tm_tensor.scan": _scan,
    "tm_tensor.sort": _sort,
    "tm_tensor.topk": _topk,
}


def lower_tm_tensor_ops(module) -> None:
    """Replaces every TMTensor op of `module` that LOWERINGS knows with scf loops."""
    from torch_mlir import ir
    found: List = []

    def visit(op):
        if op.name in LOWERINGS:
            found.append(op)
        return ir.WalkResult.ADVANCE

    with module.context:
        b = _Builder()
        module.operation.walk(visit)
        for op in found:
            with ir.InsertionPoint(op), op.location:
                results = LOWERINGS[op.name](b, op)
            for old, new in zip(op.results, results):
                old.replace_all_uses_with(new)
            op.erase()
