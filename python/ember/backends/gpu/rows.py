"""Row kernels: reductions over the innermost dims with one warp (or one block) per output row.

The generic GPU mapping (ember-gpu-launch-loops) gives every op one thread per output
element, so a LayerNorm or softmax walks each row serially in one thread, and each of its
linalg ops (sum, mean, centered square sum, rstd, normalize; or max, sum of exp, divide) is a
kernel of its own that reads the row again. Here a *row group* (a run of consecutive linalg
ops on the same rows, at least one of them reducing the innermost dims) becomes one kernel:

- a warp owns a row (rows of up to WARP_ROW_LIMIT elements; `threads / warp` rows per block),
  or a whole block does (longer rows, one row per block);
- a *full* op (elementwise over rows x columns, e.g. normalize) loops each lane over the
  row's elements lane, lane + stride, ... and stores them; every full op of the group uses the
  same element -> lane assignment, so a lane only ever reads back elements it wrote itself;
- a *reduction* op (innermost dims reduced by add/mul/max/min) accumulates each lane's
  elements in the same strided loop, then combines the lanes with a `gpu.shuffle xor`
  butterfly (offsets warp/2 .. 1: every lane ends with the total); a block-wide row then
  goes through shared memory (lane 0 of each warp writes its warp's total, a barrier, every
  thread combines the warps' totals in order);
- a *scalar* op (elementwise over rows only, e.g. mean = sum / n, or the copy of a
  reduction's initial value) runs redundantly in every lane on SSA values.
Per-row scalars stay in registers: a later op of the group reads them as SSA values, and they
are stored (by lane 0) only when something outside the group reads their buffer.

`find_row_groups` chooses the groups; its rules keep the fused kernel free of races without
barriers: a buffer written in the group may only be read again in the group as a per-row
scalar (the SSA value) or a full-row element at the reader's own position, through the same
memref value; a buffer read elsewhere than the reading lane's own position is not written
later in the group. MLIR 22 facts: `gpu.shuffle` lowers through convert-gpu-to-nvvm
(`shfl.sync.bfly`) and convert-gpu-to-rocdl (`ds_bpermute`); `gpu.subgroup_reduce` on f32
lowers through neither, and `gpu.all_reduce` reduces a whole block (not a warp per row), so
the butterfly is built here. NVVM's shuffle lowering masks the lanes below `width`, so the
width is always the whole warp (a narrower one would leave the upper lanes out of their own
shfl.sync mask).

The thread -> (row, lane) map and the butterfly offsets are functions on ints or `Ix` values,
so tests/test_gpu_rows.py runs the same index math in a numpy model of a block.
Nothing here knows about targets; reductions accumulate in f32 only (others stay generic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set

from mlir import ir
from mlir.dialects import affine, arith, gpu, memref

from ember.backends.gpu.simt_gemm import GpuMapping
from ember.kit.builders import Ix, for_, if_, index
from ember.kit.memref_views import VIEW_OPS, viewed_buffer
from ember.kit.structured import identity_map

#: Rows up to this many elements get a warp; longer ones a block.
WARP_ROW_LIMIT = 1024
#: Host ops that run nothing on the device: a group may span them.
INERT_OPS = VIEW_OPS | {"memref.alloc", "memref.alloca", "arith.constant", "memref.get_global"}
#: Combiners of a reduction: the value a lane without elements starts from, and the builder.
COMBINERS = {"arith.addf": (0.0, arith.addf), "arith.mulf": (1.0, arith.mulf),
             "arith.maximumf": (-math.inf, arith.maximumf),
             "arith.minimumf": (math.inf, arith.minimumf),
             "arith.maxnumf": (-math.inf, arith.maxnumf),
             "arith.minnumf": (math.inf, arith.minnumf)}
#: Kernel names of row groups, first match wins: (name, reductions' combiners, an op every
#: such group has); others are "row_reduce" (the two halves of a LayerNorm split by the
#: race rules, a contraction, RMSNorm: their reductions alone do not tell them apart).
GROUP_NAMES = (("softmax", ("arith.maximumf", "arith.addf"), "math.exp"),
               ("layer_norm", ("arith.addf", "arith.addf"), "math.rsqrt"))


# ----------------------------------------------------------------------------- index math
@dataclass(frozen=True)
class RowLayout:
    """How `rows` rows of `length` elements map onto blocks of `threads` threads."""
    rows: int
    length: int
    threads: int = 256
    warp: int = 32

    @property
    def per_block(self) -> bool:
        """One block per row (long rows) instead of one warp per row."""
        return self.length > WARP_ROW_LIMIT and self.threads > self.warp

    @property
    def stride(self) -> int:
        """Lanes sharing one row: a lane handles elements lane, lane + stride, ..."""
        return self.threads if self.per_block else self.warp

    @property
    def rows_per_block(self) -> int:
        return 1 if self.per_block else self.block_threads // self.warp

    @property
    def block_threads(self) -> int:
        """Threads per block: `threads`, fewer when there are fewer rows than warps."""
        if self.per_block:
            return self.threads
        return min(self.threads // self.warp, self.rows) * self.warp

    @property
    def grid(self) -> int:
        return -(-self.rows // self.rows_per_block)

    @property
    def warps(self) -> int:
        return self.block_threads // self.warp


def row_and_lane(layout: RowLayout, block, tid):
    """(row, lane) of thread `tid` of block `block` (ints or Ix); lane < layout.stride."""
    if layout.per_block:
        return block, tid
    return block * layout.rows_per_block + tid // layout.warp, tid % layout.warp


def butterfly_offsets(warp: int) -> List[int]:
    """The xor offsets after which every lane of a warp holds the combination of all."""
    return [1 << i for i in reversed(range(warp.bit_length() - 1))]


def delinearize(linear: Ix, shape: Sequence[int]) -> List[Ix]:
    """Row-major indices of `linear` in `shape`."""
    out = []
    for size in reversed(shape):
        out.append(linear % size)
        linear = linear // size
    return out[::-1]


# ----------------------------------------------------------------------------- analysis
@dataclass
class RowOp:
    """One linalg.generic of a group: `kind` is "scalar", "full" or "reduce"."""
    op: object
    kind: str
    combiner: Optional[str] = None


@dataclass
class RowGroup:
    """Consecutive ops over rows `lead` (the outer dims) of `trail` elements (innermost)."""
    lead: List[int]
    trail: List[int]
    ops: List[RowOp] = field(default_factory=list)

    def layout(self, threads: int, warp: int) -> RowLayout:
        return RowLayout(math.prod(self.lead), math.prod(self.trail), threads, warp)

    @property
    def name(self) -> str:
        """What the group computes, from GROUP_NAMES."""
        combiners = tuple(r.combiner for r in self.ops if r.kind == "reduce")
        body_ops = {inner.operation.name for r in self.ops
                    for inner in r.op.regions[0].blocks[0].operations}
        return next((name for name, want, needed in GROUP_NAMES
                     if combiners == want and needed in body_ops), "row_reduce")


def _shape(value) -> List[int]:
    return list(ir.MemRefType(value.type).shape) if isinstance(value.type, ir.MemRefType) \
        else []


def _maps(op) -> List[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in op.indexing_maps]


def _domain(op) -> Optional[List[int]]:
    """Static loop sizes of a linalg.generic (None when a dim is read from no operand)."""
    sizes: Dict[int, int] = {}
    for value, amap in zip(op.operands, _maps(op)):
        for expr, size in zip(amap.results, _shape(value)):
            if isinstance(expr, ir.AffineDimExpr):
                sizes[expr.position] = size
    n = _maps(op)[0].n_dims
    return [sizes[d] for d in range(n)] if len(sizes) == n else None


def _combiner(op) -> Optional[str]:
    """The op combining the accumulator of a reduction body (acc used once, by it)."""
    block = op.regions[0].blocks[0]
    acc = block.arguments[len(block.arguments) - 1]
    yielded = block.operations[len(block.operations) - 1].operands[0]
    owner = yielded.owner
    uses = list(acc.uses)
    if not isinstance(owner, ir.OpView) or owner.operation.name not in COMBINERS or \
            len(uses) != 1 or uses[0].owner != owner.operation or \
            yielded.type != ir.F32Type.get():
        return None
    return owner.operation.name


def classify(op, lead: Optional[List[int]] = None, trail: Optional[List[int]] = None):
    """(kind, lead, trail, combiner) of a linalg.generic as a row op, or None. With `lead`
    and `trail` given, all-parallel ops are classified against those rows."""
    if op.operation.name != "linalg.generic" or len(list(op.outputs)) != 1:
        return None
    domain = _domain(op)
    if domain is None:
        return None
    iterators = [str(a) for a in op.iterator_types]
    n = len(domain)
    out_map = _maps(op)[-1]
    reducing = [i for i, it in enumerate(iterators) if "reduction" in it]
    if reducing:
        keep = n - len(reducing)
        combiner = _combiner(op)
        if reducing != list(range(keep, n)) or out_map != identity_map(n, range(keep)) or \
                combiner is None:
            return None
        return "reduce", domain[:keep], domain[keep:], combiner
    if lead is None or out_map != identity_map(n):
        return None
    if domain == lead:
        return "scalar", lead, trail, None
    if domain == lead + trail:
        return "full", lead, trail, None
    return None


class _Hazards:
    """The race rules of a group, checked op by op in program order."""

    def __init__(self, lead, trail):
        self.lead, self.trail = lead, trail
        self.written: Dict[object, Set[object]] = {}     # root -> memref values written
        self.read: Dict[object, Set[object]] = {}        # root -> memref values read
        self.foreign: Set[object] = set()               # roots read off the own position

    def _own(self, value, amap, kind) -> bool:
        """Whether a lane reads `value` only where it writes: its row's scalar (as SSA once
        written) or, in a full or reduce op, its own element of the row."""
        n = amap.n_dims
        if _shape(value) == self.lead:
            return amap == identity_map(n, range(len(self.lead)))
        return kind != "scalar" and _shape(value) == self.lead + self.trail and \
            amap == identity_map(n)

    def accept(self, row_op: RowOp) -> bool:
        op = row_op.op
        for value, amap in zip(op.inputs, _maps(op)):
            if not isinstance(value.type, ir.MemRefType):
                continue
            root = viewed_buffer(value)
            own = self._own(value, amap, row_op.kind)
            if root in self.written and (value not in self.written[root] or not own):
                return False
            # Every lane loads a row scalar not yet written here; lane 0 may store it later.
            if not own or (_shape(value) == self.lead and root not in self.written):
                self.foreign.add(root)
            self.read.setdefault(root, set()).add(value)
        out = op.outputs[0]
        root = viewed_buffer(out)
        if root in self.foreign or self.read.get(root, {out}) - {out}:
            return False
        if row_op.kind == "scalar" and root not in self.written and _reads_out(op):
            return False
        self.written.setdefault(root, set()).add(out)
        return True


def _reads_out(op) -> bool:
    """Whether the body reads the output's current value."""
    block = op.regions[0].blocks[0]
    return bool(list(block.arguments[len(block.arguments) - 1].uses))


def _accepts(ops: List[object], lead, trail) -> List[RowOp]:
    """The longest prefix of `ops` that is a race-free group on these rows."""
    hazards = _Hazards(lead, trail)
    accepted = []
    for op in ops:
        info = classify(op, lead, trail)
        if info is None or info[1] != lead or info[2] != trail:
            break
        row_op = RowOp(op, info[0], info[3])
        if not hazards.accept(row_op):
            break
        accepted.append(row_op)
    return accepted


def find_row_groups(block) -> List[RowGroup]:
    """The row groups among `block`'s top-level ops: around each reduction over innermost
    dims, the longest run of row ops on its rows (ops running nothing on the device may sit
    between) that the race rules accept, starting as early as possible."""
    runs: List[List[object]] = [[]]                      # device ops between inert host ops
    for op in block.operations:
        name = op.operation.name
        if name == "linalg.generic":
            runs[-1].append(op)
        elif name not in INERT_OPS:
            runs.append([])
    groups = []
    for run in runs:
        floor = i = 0                                   # ops before `floor` are grouped
        while i < len(run):
            info = classify(run[i])
            if info is None or info[0] != "reduce" or not info[2]:
                i += 1
                continue
            lead, trail = info[1], info[2]
            found = next(((s, a) for s in range(floor, i + 1)
                          for a in [_accepts(run[s:], lead, trail)] if len(a) > i - s), None)
            if found is None:
                i += 1
                continue
            start, accepted = found
            groups.append(RowGroup(lead, trail, accepted))
            floor = i = start + len(accepted)
    return groups


# ----------------------------------------------------------------------------- emission
def _apply(amap: ir.AffineMap, dims: List[object]) -> List[object]:
    """The indices `amap` gives at loop point `dims` (index values)."""
    out = []
    for expr in amap.results:
        if isinstance(expr, ir.AffineDimExpr):
            out.append(dims[expr.position])
        elif isinstance(expr, ir.AffineConstantExpr):
            out.append(index(expr.value))
        else:
            out.append(affine.apply(ir.AffineMap.get(amap.n_dims, 0, [expr]), dims))
    return out


def inline_body(op, args: List[object], dims: List[object]):
    """The value a linalg.generic's body yields for block arguments `args` at loop point
    `dims`, its ops cloned at the insertion point."""
    block = op.regions[0].blocks[0]
    values = dict(zip(block.arguments, args))
    for inner in block.operations:
        name = inner.operation.name
        if name == "linalg.yield":
            return values.get(inner.operands[0], inner.operands[0])
        if name == "linalg.index":
            values[inner.results[0]] = dims[ir.IntegerAttr(inner.attributes["dim"]).value]
            continue
        clone = inner.operation.clone()
        for i, operand in enumerate(clone.operands):
            if operand in values:
                clone.operands[i] = values[operand]
        values.update(zip(inner.results, clone.results))
    raise ValueError(f"{op.location}: linalg body without a yield")


def _stored_roots(group: RowGroup) -> Set[object]:
    """Buffers of the group's per-row scalars that something outside the group reads (all
    but allocations used by the group alone)."""
    members = [r.op.operation for r in group.ops]

    def users(value):
        for use in value.uses:
            owner = use.owner
            if owner.name in VIEW_OPS:
                yield from users(owner.results[0])
            else:
                yield owner
    stored = set()
    for r in group.ops:
        root = viewed_buffer(r.op.outputs[0])
        owner = root.owner
        internal = isinstance(owner, ir.OpView) and owner.operation.name in \
            ("memref.alloc", "memref.alloca") and all(u in members for u in users(root))
        if not internal:
            stored.add(root)
    return stored


class _RowEmitter:
    """Emits a group's ops for one row inside the kernel (see the module docstring)."""

    def __init__(self, group: RowGroup, layout: RowLayout, mapping: GpuMapping, row: Ix,
                 lane: Ix):
        self.group, self.layout, self.mapping, self.lane = group, layout, mapping, lane
        self.lead = [i.value for i in delinearize(row, group.lead)]
        self.scalars: Dict[object, object] = {}      # memref value -> this row's scalar
        self.stored = _stored_roots(group)

    def load(self, value, amap, dims):
        if not isinstance(value.type, ir.MemRefType):
            return value                             # a scalar operand (linalg.fill's)
        if value in self.scalars:
            return self.scalars[value]
        return memref.load(value, _apply(amap, dims))

    def args(self, op, dims):
        """Block arguments of `op`'s body at `dims`: inputs, then the output's value."""
        out = op.outputs[0]
        args = [self.load(v, m, dims) for v, m in zip(op.inputs, _maps(op))]
        return args + [self.load(out, _maps(op)[-1], dims) if _reads_out(op) else None]

    def set_scalar(self, out, value) -> None:
        self.scalars[out] = value
        if viewed_buffer(out) in self.stored:
            def store():
                memref.store(value, out, self.lead)
            if_(arith.cmpi(arith.CmpIPredicate.eq, self.lane.value, index(0)), build_then=store)

    def row_loop(self, body, iter_args=()):
        """body(dims, *acc) over this lane's elements of the row."""
        def step(j, *acc):
            dims = self.lead + [i.value for i in delinearize(Ix(j), self.group.trail)]
            return body(dims, *acc)
        return for_(self.lane.value, self.layout.length, self.layout.stride, iter_args, step)

    def scalar(self, op) -> None:
        self.set_scalar(op.outputs[0], inline_body(op, self.args(op, self.lead), self.lead))

    def full(self, op) -> None:
        def body(dims):
            memref.store(inline_body(op, self.args(op, dims), dims), op.outputs[0], dims)
        self.row_loop(body)

    def reduce(self, op, combiner: str) -> None:
        start, combine = COMBINERS[combiner]
        f32 = ir.F32Type.get()

        def body(dims, acc):
            return [inline_body(op, self.args(op, dims)[:-1] + [acc], dims)]
        partial, = self.row_loop(body, [arith.constant(f32, start)])
        total = self.combine_lanes(partial, combine)
        out = op.outputs[0]
        init = self.load(out, identity_map(len(self.lead)), self.lead)
        self.set_scalar(out, combine(init, total))

    def combine_lanes(self, value, combine):
        """The combination over all lanes of the row, in every lane."""
        i32 = ir.IntegerType.get_signless(32)
        warp = self.layout.warp
        for offset in butterfly_offsets(warp):
            other = gpu.shuffle(value, arith.constant(i32, offset), arith.constant(i32, warp),
                                gpu.ShuffleMode.XOR)[0]
            value = combine(value, other)
        if not self.layout.per_block:
            return value
        totals = self.mapping.shared([self.layout.warps], value.type)

        def publish():
            memref.store(value, totals, [(self.lane // warp).value])
        if_(arith.cmpi(arith.CmpIPredicate.eq, (self.lane % warp).value, index(0)),
            build_then=publish)
        gpu.barrier()
        value = memref.load(totals, [index(0)])
        for w in range(1, self.layout.warps):
            value = combine(value, memref.load(totals, [index(w)]))
        return value

    def emit(self) -> None:
        for r in self.group.ops:
            if r.kind == "reduce":
                self.reduce(r.op, r.combiner)
            else:
                getattr(self, r.kind)(r.op)


def emit_row_group(group: RowGroup, threads: int, warp: int):
    """The group's kernel as a gpu.launch at the insertion point; returns the launch."""
    layout = group.layout(threads, warp)
    mapping = GpuMapping(layout.block_threads)

    def block(bx, _by):
        row, lane = row_and_lane(layout, Ix(bx), Ix(mapping.tid))
        emitter = _RowEmitter(group, layout, mapping, row, lane)
        ragged = not layout.per_block and layout.rows % layout.rows_per_block
        inside = arith.cmpi(arith.CmpIPredicate.ult, row.value, index(layout.rows)) \
            if ragged else None
        if_(inside, build_then=emitter.emit)
    return mapping.blocks([layout.grid, 1], block)
