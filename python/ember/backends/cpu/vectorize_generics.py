"""ember-vectorize-generics: elementwise and row-reducing linalg ops on memrefs as vector code.

Outside the GEMM kernels, a model's linalg ops (ReLU after a residual add, the Winograd input
and output transforms, transposes' and pads' neighbours, LayerNorm's scaling) used to become
scalar loops that LLVM's loop vectorizer was left to vectorize. It often could not: a memref's
strides reach it as run-time values of the descriptor, so it vectorized with gathers and
scatters (measured: the CNN's ReLU loop spent its time in vgatherqps / vscatterqps). This
pass vectorizes them in MLIR instead, where the layouts are known: each chosen op is tiled by
1 on every loop but the last and by W (the target's f32 lanes, fewer for a short last dim) on
the last (upstream `transform.structured.tile_using_for`), the tile vectorized
(`transform.structured.vectorize`, masked when W does not divide the last dim) and its unit
dims dropped, so every access becomes one `vector.load` / `vector.store` (or a masked one).

An op is taken when all its loops are parallel (or some reduce, below), every indexing
map is a projected permutation, the last loop indexes the innermost, unit-stride dim of each operand that uses it (other
operands are broadcast along it), its last dim has at least 4 iterations, its body holds only
arith / math / linalg.index ops, and every operand holds integers (not i1: bool memrefs are
widened later) or floats (a vector of complex numbers is not a type: complex copies, pads and
broadcasts stay scalar loops, which complex-to-llvm lowers to two-float structs). Integer
divisions and remainders stay scalar: no target has a vector integer divide (LLVM splits it
into one divide per lane), and the lanes a masked tail pads would divide by zero, a SIGFPE.
A reduction over the last, contiguous dim (one result, combine(accumulator, f(x)) with an
arith combiner, e.g. a row max or, when ember-reassociate-reductions allowed it, a sum) is
tiled by up to 8 vectors on that dim: each chunk is one vector reduced in registers (the scalar
loop kept the accumulator in memory, and LLVM left it scalar when it could not rule out that
its store aliased the row). A float sum or product with a tail stays scalar (masked, it would
reach LLVM as an ordered vp.reduce.fadd). A reduction over leading loops with the last one
parallel (a column sum or max: int8 attention's per-channel scales of V, a pooling's mean) is
tiled by 1 on them like any leading loop: each step combines one vector of a row into the
accumulators' vector, in the scalar loop's order in every lane, so sums need no reassociation
and tails are masked (its unit-dim vector reduction is folded into that combine before the
lowering would split it into lanes; it was a scalar loop, 6% of a BERT attention's time).
Transposing ops keep their scalar loops, and so does a static last dim of 5, 6 or 7 (shorter
than two of the narrowest vectors, and not a multiple of one): one vector and a masked tail
gain little there, and LLVM fully unrolls such loops into blocks of thousands of masked
accesses whose memory chains its DAG combiner merges in quadratic time (a 2x3x5x5 grid_sample
took 28 s to compile, in fp16 over 5 minutes; 10 s without them). Runs on bufferized code,
after ember-parallelize-loops (so it vectorizes each thread's slice) and before linalg is
lowered to loops.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from mlir import ir


from ember.pipeline.pass_base import EmberPass, PassContext, register
from ember.kit.ir_queries import INTEGER_DIVISIONS, walk_ops
from ember.kit.rewrite import apply_transform_script

#: Marks an op to vectorize: the index of its (tile sizes, masked) plan in the script.
PLAN_ATTR = "ember.vector_plan"
#: Body ops the vectorizer turns into vector ops lane by lane.
VECTORIZABLE_PREFIXES = ("arith.", "math.", "linalg.index", "linalg.yield")
#: Narrowest vector worth using.
MIN_WIDTH = 4


def _innermost_stride_is_one(value) -> bool:
    strides, _ = ir.MemRefType(value.type).get_strides_and_offset()
    return strides[-1] == 1


def _vector_element(element) -> bool:
    """Whether a vector of `element`s is what this pass may build: floats and integers wider
    than i1."""
    if isinstance(element, ir.IntegerType):
        return ir.IntegerType(element).width > 1
    return isinstance(element, ir.FloatType)


def vector_tiles(op, lanes: int) -> Optional[Tuple[Tuple[int, ...], bool]]:
    """(tile sizes, masked) for a linalg.generic on memrefs this pass vectorizes, or None."""
    iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
    if not iterators:
        return None
    rank = len(iterators)
    last = rank - 1
    reduction = "reduction" in iterators[-1]
    # Reducing leading loops (a column max or sum) with a parallel last one: tiled by 1 like
    # any leading loop, each step combines a row's vector into the accumulators' vector in
    # the scalar loop's order (no reassociation, so sums and tails too).
    if any("reduction" in it for it in iterators[:-1]) and \
            (reduction or _reduction_combiner(op, ordered=True) is None):
        return None
    combiner = _reduction_combiner(op) if reduction else None
    if reduction and combiner is None:
        return None
    maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
    extent = None
    for value, amap in zip(op.operands, maps):
        if not isinstance(value.type, ir.MemRefType):
            if isinstance(value.type, ir.ShapedType):
                return None                     # tensors: not bufferized
            continue                            # a scalar operand
        memref_type = ir.MemRefType(value.type)
        if not _vector_element(memref_type.element_type):
            return None
        if not amap.is_projected_permutation:
            return None
        dims = [e.position for e in amap.results if isinstance(e, ir.AffineDimExpr)]
        if last not in dims:
            continue
        if dims[-1] != last or amap.results[-1] != ir.AffineDimExpr.get(last) or \
                not _innermost_stride_is_one(value):
            return None
        if not memref_type.is_dynamic_dim(memref_type.rank - 1):
            extent = memref_type.shape[-1]
    body = op.regions[0].blocks[0]
    if not all(o.operation.name.startswith(VECTORIZABLE_PREFIXES) and
               o.operation.name not in INTEGER_DIVISIONS for o in body.operations):
        return None
    if reduction:
        # Chunks of up to REDUCTION_VECTORS vectors, each reduced in registers as a tree and
        # combined with the accumulator once (the scalar loop kept it in memory).
        chunk = lanes * REDUCTION_VECTORS
        if extent is not None:
            if extent < 2 * MIN_WIDTH:
                return None
            chunk = min(chunk, -(-extent // lanes) * lanes)
        masked = extent is None or extent % chunk != 0
        if masked and combiner in ORDERED_COMBINERS:
            return None     # a masked float sum reaches LLVM as an ordered vp.reduce.fadd
        return (1,) * last + (chunk,), masked
    width = lanes
    if extent is not None:
        while width > MIN_WIDTH and width > extent:
            width //= 2
        if extent < width or (extent % width and extent < 2 * MIN_WIDTH):
            return None
    return (1,) * last + (width,), extent is None or extent % width != 0


#: What a vectorized reduction reduces as one vector (times the target's lanes).
REDUCTION_VECTORS = 8
#: Combining ops a vectorized reduction may end in (vector.multi_reduction's kinds).
COMBINERS = ("arith.addf", "arith.mulf", "arith.maximumf", "arith.minimumf", "arith.maxnumf",
             "arith.minnumf", "arith.addi", "arith.muli", "arith.maxsi", "arith.minsi",
             "arith.maxui", "arith.minui", "arith.andi", "arith.ori", "arith.xori")


#: Float combiners whose result depends on the order (rounding).
ORDERED_COMBINERS = ("arith.addf", "arith.mulf")


def _reduction_combiner(op, ordered: bool = False) -> Optional[str]:
    """The combining op's name of a generic reducing its last loop into one result as
    combine(accumulator, f(inputs)), one of COMBINERS, the accumulator used nowhere else (what
    the vectorizer splits into lanes: e.g. not an argmax's pair of results); else None."""
    body = op.regions[0].blocks[0]
    yielded = list(body.operations)[-1].operands
    if len(yielded) != 1 or len(body.arguments) != len(op.operands):
        return None
    acc = body.arguments[len(body.arguments) - 1]
    combine = yielded[0].owner
    if not isinstance(combine, ir.OpView) or combine.operation.name not in COMBINERS:
        return None
    combine = combine.operation
    uses = list(acc.uses)
    if len(uses) != 1 or uses[0].owner != combine or not any(o == acc for o in combine.operands):
        return None
    # A float sum or product in lanes is a reassociation: taken only where
    # ember-reassociate-reductions allowed it (`ordered`: lanes that each keep the order).
    reassociable = "fastmath" in combine.attributes and \
        "reassoc" in str(combine.attributes["fastmath"])
    if combine.name in ORDERED_COMBINERS and not (ordered or reassociable):
        return None
    return combine.name


def _schedule(plans) -> str:
    """Transform steps tiling and vectorizing the ops marked with each plan, then the
    patterns that turn the vectorized tiles into 1-D loads and stores."""
    steps = []
    for i, (sizes, masked) in enumerate(plans):
        listed = ", ".join(map(str, sizes))
        loops = ", ".join(["!transform.any_op"] * (len(sizes) + 1))
        vector_sizes = f" vector_sizes [{listed}]" if masked else ""
        steps.append(
            f"%m{i} = transform.structured.match attributes{{{PLAN_ATTR} = {i} : i64}} in %root "
            f": (!transform.any_op) -> !transform.any_op\n"
            f"%t{i}, %l{i}:{len(sizes)} = transform.structured.tile_using_for %m{i} "
            f"tile_sizes [{listed}] : (!transform.any_op) -> ({loops})\n"
            f"transform.structured.vectorize %t{i}{vector_sizes} : !transform.any_op\n")
    return "".join(steps) + (
        "%f = transform.structured.match ops{[\"func.func\"]} in %root "
        ": (!transform.any_op) -> !transform.any_op\n"
        # First: a reduction over unit dims only (a column reduction's tile) becomes the
        # combining op on whole vectors, before the lowering splits it into lanes.
        "transform.apply_patterns to %f {\n"
        "  transform.apply_patterns.canonicalization\n"
        "} : !transform.any_op\n"
        "transform.apply_patterns to %f {\n"
        "  transform.apply_patterns.vector.lower_masked_transfers\n"
        "  transform.apply_patterns.vector.lower_multi_reduction "
        "lowering_strategy = \"innerreduction\"\n"
        "  transform.apply_patterns.vector.transfer_permutation_patterns\n"
        "  transform.apply_patterns.vector.drop_unit_dims_with_shape_cast\n"
        "  transform.apply_patterns.vector.rank_reducing_subview_patterns\n"
        "  transform.apply_patterns.vector.lower_transfer max_transfer_rank = 1\n"
        "  transform.apply_patterns.canonicalization\n"
        "} : !transform.any_op\n")


@register
@dataclass
class VectorizeGenerics(EmberPass):
    """Vectorizes elementwise and row-reducing linalg.generic ops on memrefs along their
    contiguous last dim."""
    name = "ember-vectorize-generics"
    #: f32 lanes per vector; 0: the target's (AVX-512: 16, AVX2: 8, NEON: 4).
    lanes: int = 0

    def run(self, module, ctx: PassContext) -> None:
        lanes = self.lanes or ctx.require_target(self.name).vector_lanes
        plans = []
        for op in walk_ops(module.operation, ["linalg.generic"]):
            plan = vector_tiles(op, lanes)
            if plan is None:
                continue
            if plan not in plans:
                plans.append(plan)
            op.attributes[PLAN_ATTR] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64),
                                                          plans.index(plan))
        if not plans:
            return
        apply_transform_script(module, _schedule(plans))
        # The vectorizer drops the body's fastmath flags: without reassoc, LLVM would sum the
        # lanes one after another. Every float reduction here came from a reassociable body.
        # A max or min may also ignore the sign of zero (nsz), as PyTorch's vectorized max
        # does: LLVM otherwise orders -0 below +0 lane by lane with compares and blends.
        sums = ir.Attribute.parse("#arith.fastmath<reassoc,contract>")
        extrema = ir.Attribute.parse("#arith.fastmath<reassoc,contract,nsz>")
        for reduction in walk_ops(module.operation, ["vector.reduction"]):
            if isinstance(ir.VectorType(reduction.operands[0].type).element_type, ir.FloatType):
                kind = str(reduction.attributes["kind"])
                reduction.attributes["fastmath"] = extrema if ("max" in kind or "min" in kind) \
                    else sums
