"""ember-runtime-checks: the values a model uses as indices or integer divisors are checked as
it runs, and a bad one is reported to the caller instead of crashing the process.

A gather (Embedding, gather, index_select, x[idx]; torch-mlir lowers them to linalg ops that
load `source[index tensor element]`), a scatter's store, or an integer division (//, %, fmod,
`rounding_mode` divisions) takes a value from a tensor. PyTorch raises IndexError or
ZeroDivisionError for a bad one; unchecked compiled code reads past a buffer or dies of
SIGFPE (torch-mlir's own `cf.assert`s on some gathers abort the process). This pass runs on
bufferized code, before the loops are generated, and:

- gives each public function with a body (the entry point) one more, last argument: the fault
  record, `memref<8xi64>` (layout in ember.runtime.capi / ember_signature.h; the entry stub
  passes it, zeroed, and the C runtime turns a filled one into EMBER_ERROR_INDEX or
  EMBER_ERROR_ZERO_DIVISION with a message naming the op, its source line, the tensors and
  the value);
- guards every `memref.load` / `memref.store` whose index depends on tensor data with an
  unsigned compare against the dim's size (one compare covers both ends): the access runs
  only when every such index is in range, else the first failing check claims the record
  (an atomic `or`, so threads of a parallel loop cannot mix two faults) and the load yields
  zero; nothing out of range is read or written. torch-mlir's `cf.assert`s on those indices
  are removed, the guard subsumes them;
- guards integer divisions and remainders whose divisor depends on tensor data: a zero
  divisor is recorded and replaced by 1, as is the divisor of a signed INT_MIN / -1 (which
  traps on x86 too, PyTorch eager's included; with 1 the result is the two's-complement
  wrap). An integer
  floor division that torch-mlir computes in floating point (`fptosi(floor(sitofp(a) /
  sitofp(b)))`) is checked the same way on `b`;
- turns every other `cf.assert` (torch-mlir's checks of sizes and its "unimplemented" cases,
  e.g. an integer reciprocal of 0) into a fault carrying the assertion's message, which the
  runtime reports as an ExecutionError: lowered as they are, they call abort() and kill the
  caller's process.

Indices and divisors computed only from constants, loop counters, `linalg.index` and dims are
the compiler's own and are trusted; a value loaded from a tensor, or an element a linalg op
reads, is data, and so is anything computed from one. The reported value is the element of the
index tensor when the index comes from one element (so a wrapped negative index reads as the
user wrote it), else the computed index. Private functions (the GEMM kernels) are not checked:
they get no record and index only with what their callers computed.

The cost: a compare and a predictable branch per checked access, which replaces the two
compares and branches of torch-mlir's asserts where it had them (a BERT-style model's three
embedding lookups ran about 10% faster than with the asserts; the whole model's latency did
not change measurably). Integer divisions are no longer vectorized (no target has a vector
integer divide).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List

from mlir import ir
from mlir.dialects import arith, cf, func, memref, scf

from ember.kit.builders import constant, if_, index
from ember.kit.ir_queries import INTEGER_DIVISIONS, walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.runtime import capi
from ember.source_locations import describe_origin

#: Marks the fault record argument of an entry function.
RECORD_ATTR = "ember.fault_record"
#: Ops whose results are tensor data (roots of the data a check looks for).
_READS = ("memref.load", "tensor.extract", "memref.atomic_rmw", "func.call", "vector.load",
          "vector.transfer_read", "vector.maskedload", "vector.gather")
#: Types of values that are buffers, not data.
_BUFFERS = (ir.MemRefType, ir.UnrankedMemRefType, ir.RankedTensorType, ir.UnrankedTensorType)
#: Ops whose block arguments are loop counters, never data.
_LOOPS = ("scf.for", "scf.parallel", "scf.forall", "affine.for", "affine.parallel")
#: View-like ops a checked tensor is traced through to the entry's argument it comes from.
_VIEWS = ("memref.subview", "memref.expand_shape", "memref.collapse_shape", "memref.cast",
          "memref.reinterpret_cast", "memref.transpose", "memref.memory_space_cast")
#: Rounding between a float division and its conversion back to an integer.
_ROUNDINGS = ("math.floor", "math.ceil", "math.trunc", "math.round", "math.roundeven")


def _name(op) -> str:
    return op.operation.name


def _i64():
    return ir.IntegerType.get_signless(64)


def _is_scalar_integer(t) -> bool:
    return isinstance(t, (ir.IntegerType, ir.IndexType))


class _DataFlow:
    """Which scalar values depend on tensor data: `roots(v)` is the set of data values (loaded
    elements, linalg elements, results of ops with regions) `v` is computed from; empty for
    the compiler's own values."""

    def __init__(self):
        self._cache: Dict[ir.Value, FrozenSet[ir.Value]] = {}

    def roots(self, value) -> FrozenSet[ir.Value]:
        found = self._cache.get(value)
        if found is None:
            self._cache[value] = frozenset()      # cycles (loop-carried values) end here
            found = self._cache[value] = self._compute(value)
        return found

    def _compute(self, value) -> FrozenSet[ir.Value]:
        if isinstance(value.type, _BUFFERS):
            return frozenset()                    # buffers and their shapes are not data
        if isinstance(value, ir.BlockArgument):
            parent = value.owner.owner
            name = _name(parent)
            if name == "func.func":
                return frozenset()
            if name in _LOOPS and (name != "scf.for" or value.arg_number == 0):
                return frozenset()
            return frozenset([value])             # a linalg element, a loop-carried value
        op = value.owner
        if _name(op) in _READS or len(op.regions):
            return frozenset([value])             # loaded, or yielded by a region
        found = frozenset()
        for operand in op.operands:
            found |= self.roots(operand)
        return found


def _traced_argument(buffer, entry_block) -> int:
    """The entry's argument number `buffer` is a view of, or -1 (an intermediate)."""
    while not isinstance(buffer, ir.BlockArgument) and _name(buffer.owner) in _VIEWS:
        buffer = buffer.owner.operands[0]
    if isinstance(buffer, ir.BlockArgument) and buffer.owner == entry_block:
        return buffer.arg_number
    return -1


def _root_buffer(root):
    """The buffer a data root was read from: the load's memref (also of a load this pass
    guarded: the scf.if yielding it), or the linalg operand whose element a body argument is;
    None for other roots."""
    if isinstance(root, ir.BlockArgument):
        parent = root.owner.owner
        if _name(parent).startswith("linalg.") and root.arg_number < len(parent.operands):
            return parent.operands[root.arg_number]
        return None
    op = root.owner
    if _name(op) == "scf.if" and len(op.regions[0].blocks):
        yielded = op.regions[0].blocks[0].operations[-1].operands
        if len(yielded) == 1 and not isinstance(yielded[0], ir.BlockArgument):
            op = yielded[0].owner
    return op.operands[0] if _name(op) in ("memref.load", "tensor.extract") else None


def _as_i64(value):
    t = value.type
    if isinstance(t, ir.IndexType):
        return arith.index_cast(_i64(), value)
    if isinstance(t, ir.IntegerType) and ir.IntegerType(t).width < 64:
        return arith.extsi(_i64(), value)
    return value


class _Checker:
    """Inserts the checks into one entry function."""

    def __init__(self, module, fn, texts: Dict[str, str]):
        self.module, self.fn = module, fn
        self.block = fn.regions[0].blocks[0]
        self.flow = _DataFlow()
        self.texts = texts                        # constant text -> global symbol (module-wide)
        self.record = self._add_record_argument()
        self.checked_roots: set = set()

    # -- the record ------------------------------------------------------------------------
    def _add_record_argument(self):
        record_type = ir.MemRefType.get([capi.FAULT_WORDS], _i64())
        record = self.block.add_argument(record_type, self.fn.location)
        fn_type = ir.FunctionType(ir.TypeAttr(self.fn.attributes["function_type"]).value)
        self.fn.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get([*fn_type.inputs, record_type], fn_type.results))
        if "arg_attrs" in self.fn.attributes:
            attrs = list(ir.ArrayAttr(self.fn.attributes["arg_attrs"]))
            attrs += [ir.DictAttr.get({})] * (len(fn_type.inputs) - len(attrs))
            attrs.append(ir.DictAttr.get({RECORD_ATTR: ir.UnitAttr.get()}))
            self.fn.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)
        else:
            self.fn.attributes["arg_attrs"] = ir.ArrayAttr.get(
                [ir.DictAttr.get({})] * len(fn_type.inputs) +
                [ir.DictAttr.get({RECORD_ATTR: ir.UnitAttr.get()})])
        return record

    def _origin_address(self, location):
        """The address (i64) of a NUL-terminated "aten.x at file.py:N" for `location`."""
        return self._string_address(describe_origin(str(location)))

    def _string_address(self, text: str):
        """The address (i64) of a NUL-terminated constant `text` (one global per text)."""
        symbol = self.texts.get(text)
        data = list(text.encode("utf-8")) + [0]
        global_type = ir.MemRefType.get([len(data)], ir.IntegerType.get_signless(8))
        if symbol is None:
            symbol = self.texts[text] = f"ember_fault_text_{len(self.texts)}"
            tensor_type = ir.RankedTensorType.get([len(data)], ir.IntegerType.get_signless(8))
            with ir.InsertionPoint.at_block_begin(self.module.body), ir.Location.unknown():
                memref.GlobalOp(symbol, ir.TypeAttr.get(global_type), sym_visibility="private",
                                initial_value=ir.DenseElementsAttr.get(
                                    bytes(data), type=tensor_type),
                                constant=True)
        view = memref.get_global(global_type, symbol)
        return arith.index_cast(_i64(), memref.extract_aligned_pointer_as_index(view))

    def _report(self, location, kind: int, value, bound, dim, tensor, source):
        """Claims the record (first fault wins) and fills it (every field an i64 value)."""
        i64 = _i64()
        old = memref.atomic_rmw(arith.AtomicRMWKind.ori, constant(1, i64), self.record,
                                [index(capi.FAULT_CLAIMED)])
        first = arith.cmpi(arith.CmpIPredicate.eq, old, constant(0, i64))

        def fill():
            words = {capi.FAULT_KIND: constant(kind, i64), capi.FAULT_VALUE: value,
                     capi.FAULT_BOUND: bound, capi.FAULT_DIM: dim,
                     capi.FAULT_ORIGIN: self._origin_address(location),
                     capi.FAULT_TENSOR: tensor, capi.FAULT_SOURCE: source}
            for word, v in words.items():
                memref.store(v, self.record, [index(word)])
        if_(first, build_then=fill)

    def _source_argument(self, roots) -> int:
        buffers = {_root_buffer(r) for r in roots}
        if len(buffers) != 1 or None in buffers:
            return -1
        return _traced_argument(buffers.pop(), self.block)

    # -- accesses --------------------------------------------------------------------------
    def check_access(self, op) -> None:
        """Guards a memref.load / memref.store whose indices depend on data."""
        is_load = _name(op) == "memref.load"
        buffer = op.operands[0 if is_load else 1]
        indices = list(op.operands)[1 if is_load else 2:]
        checked = [(d, i, self.flow.roots(i)) for d, i in enumerate(indices)
                   if self.flow.roots(i)]
        if not checked:
            return
        result_type = op.results[0].type if is_load else None
        if is_load and not isinstance(result_type, (ir.IntegerType, ir.IndexType, ir.FloatType)):
            return                                # no zero to yield; none in ember's models
        location = op.location
        with ir.InsertionPoint(op), location:
            guards = []                           # (dim, index, roots, size, in range)
            for d, i, roots in checked:
                size = memref.dim(buffer, index(d))
                guards.append((d, i, roots, size,
                               arith.cmpi(arith.CmpIPredicate.ult, i, size)))
            ok = guards[0][4]
            for more in guards[1:]:
                ok = arith.andi(ok, more[4])
            guard = scf.IfOp(ok, [result_type] if is_load else [], has_else=True)
            with ir.InsertionPoint(guard.then_block):
                inner = scf.YieldOp([op.results[0]] if is_load else [])
            with ir.InsertionPoint(guard.else_block):
                self._report_access(location, guards, buffer)
                scf.YieldOp([constant(0, result_type)] if is_load else [])
        op.move_before(inner)
        if is_load:
            op.results[0].replace_all_uses_except(guard.results[0], inner.operation)
        for _, _, roots in checked:
            self.checked_roots |= roots

    def _report_access(self, location, guards, buffer) -> None:
        """The first failing index's value, dim size, dim and source tensor into the record."""
        def reported(d, i, roots, size, _):
            root = next(iter(roots))
            shown = root if len(roots) == 1 and _is_scalar_integer(root.type) else i
            return (_as_i64(shown), _as_i64(size), constant(d, _i64()),
                    constant(self._source_argument(roots), _i64()))
        fields = reported(*guards[-1])
        for guard in reversed(guards[:-1]):
            fields = tuple(arith.select(guard[4], later, here)
                           for later, here in zip(fields, reported(*guard)))
        value, bound, dim, source = fields
        self._report(location, capi.FAULT_INDEX, value, bound, dim,
                     constant(_traced_argument(buffer, self.block), _i64()), source)

    def remove_subsumed_asserts(self) -> None:
        """torch-mlir's asserts on values the guards check: the guards report them."""
        for op in walk_ops(self.fn, ["cf.assert"]):
            roots = self.flow.roots(op.operands[0])
            if roots and roots <= self.checked_roots:
                op.erase()

    def report_asserts(self) -> None:
        """The asserts left (not subsumed by a guard) as faults with their messages. One in
        the function's own block (torch-mlir's checks of sizes, which the code after it relies
        on: a reshape's, a broadcast's) returns at once when it fails; one inside a loop or a
        linalg body (checks of values, e.g. "unimplemented: tensor with zero element" of an
        integer reciprocal) is recorded and the loop goes on, as a bad index or divisor is."""
        i64 = _i64()
        returns_nothing = not ir.FunctionType(
            ir.TypeAttr(self.fn.attributes["function_type"]).value).results
        for op in walk_ops(self.fn, ["cf.assert"]):
            message = ir.StringAttr(op.attributes["msg"]).value
            location, holds = op.location, op.operands[0]

            def report(location=location, message=message):
                self._report(location, capi.FAULT_ASSERT, self._string_address(message),
                             constant(0, i64), constant(0, i64), constant(-1, i64),
                             constant(-1, i64))
            if op.operation.parent == self.fn.operation and returns_nothing:
                self._return_unless(op, holds, report)
            else:
                with ir.InsertionPoint(op), location:
                    if_(arith.xori(holds, constant(1, holds.type)), build_then=report)
            op.erase()

    def _return_unless(self, op, holds, report) -> None:
        """Splits the function's block holding `op` at it: the ops after it run when `holds`,
        else `report()` fills the record and the function returns."""
        block = op.operation.block
        ops = [o.operation for o in block.operations]
        after = ops[ops.index(op.operation) + 1:]
        rest = block.create_after()
        failed = rest.create_after()
        for moved in after:
            ir.InsertionPoint(rest).insert(moved.detach_from_parent())
        with ir.InsertionPoint(op), op.location:
            cf.CondBranchOp(holds, [], [], rest, failed)
        with ir.InsertionPoint(failed), op.location:
            report()
            func.ReturnOp([])

    # -- divisions -------------------------------------------------------------------------
    def check_division(self, op) -> None:
        """Replaces a data-dependent divisor by 1 where it is 0 (recording the fault), or where
        a signed division would overflow."""
        divisor = op.operands[1]
        if not _is_scalar_integer(divisor.type) or not self.flow.roots(divisor):
            return
        with ir.InsertionPoint(op), op.location:
            t = divisor.type
            zero = arith.cmpi(arith.CmpIPredicate.eq, divisor, constant(0, t))
            bad = zero
            if INTEGER_DIVISIONS[_name(op)]:
                width = 64 if isinstance(t, ir.IndexType) else ir.IntegerType(t).width
                overflow = arith.andi(
                    arith.cmpi(arith.CmpIPredicate.eq, op.operands[0],
                               constant(-(1 << (width - 1)), t)),
                    arith.cmpi(arith.CmpIPredicate.eq, divisor, constant(-1, t)))
                bad = arith.ori(zero, overflow)
            self._report_division(op.location, zero, divisor)
            op.operands[1] = arith.select(bad, constant(1, t), divisor)

    def check_float_division(self, op) -> None:
        """`fptosi(round(sitofp(a) / sitofp(b)))`: an integer division done in floats."""
        converted = op.operands[1]
        if isinstance(converted, ir.BlockArgument) or \
                _name(converted.owner) not in ("arith.sitofp", "arith.uitofp") or \
                not _feeds_integer_conversion(op):
            return
        divisor = converted.owner.operands[0]
        if not _is_scalar_integer(divisor.type) or not self.flow.roots(divisor):
            return
        with ir.InsertionPoint(op), op.location:
            t = divisor.type
            zero = arith.cmpi(arith.CmpIPredicate.eq, divisor, constant(0, t))
            self._report_division(op.location, zero, divisor)
            safe = arith.select(zero, constant(1, t), divisor)
            op.operands[1] = (arith.sitofp if _name(converted.owner) == "arith.sitofp"
                              else arith.uitofp)(converted.type, safe)

    def _report_division(self, location, zero, divisor) -> None:
        source = self._source_argument(self.flow.roots(divisor))
        i64 = _i64()
        if_(zero, build_then=lambda: self._report(
            location, capi.FAULT_DIVISION, constant(0, i64), constant(0, i64), constant(0, i64),
            constant(-1, i64), constant(source, i64)))


def _feeds_integer_conversion(op) -> bool:
    """Whether `op`'s result reaches fptosi / fptoui, directly or through a rounding."""
    for use in op.results[0].uses:
        user = use.owner
        if _name(user) in ("arith.fptosi", "arith.fptoui"):
            return True
        if _name(user) in _ROUNDINGS and _feeds_integer_conversion(user):
            return True
    return False


def _entry_functions(module) -> List:
    found = []
    for fn in walk_ops(module.operation, ["func.func"]):
        visibility = ir.StringAttr(fn.attributes["sym_visibility"]).value \
            if "sym_visibility" in fn.attributes else "public"
        if fn.regions[0].blocks and visibility == "public":
            found.append(fn)
    return found


@register
@dataclass
class RuntimeChecks(EmberPass):
    """Checks data-dependent indices and integer divisors as the model runs (fault record)."""
    name = "ember-runtime-checks"

    def run(self, module, ctx: PassContext) -> None:
        texts: Dict[str, str] = {}
        for fn in _entry_functions(module):
            checker = _Checker(module, fn, texts)
            for op in walk_ops(fn, ["memref.load", "memref.store", "arith.divf",
                                    *INTEGER_DIVISIONS]):
                name = _name(op)
                if name in ("memref.load", "memref.store"):
                    checker.check_access(op)
                elif name == "arith.divf":
                    checker.check_float_division(op)
                else:
                    checker.check_division(op)
            checker.remove_subsumed_asserts()
            checker.report_asserts()
