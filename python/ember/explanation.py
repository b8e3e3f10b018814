"""What ember makes of a model, as pseudo-code (`ember.explain(model, inputs)`, `ember explain`,
`CompiledModel.explain()`; ember.compiler runs the stages, this module reads their IR), and the
steps a profile build reports (`step_table`, the same numbering).

One line per op of the fused graph (ember's graph stage, after fusion and quantization) in
execution order, like AITemplate's sorted graph pseudo-code:

      7  %7 = ember.gemm(%6 [8,128,256] f32, weight [256,1024] f32, weight [1024] f32)
             -> [8,128,1024] f32  epilogue bias+gelu  kernel ember_gemm_2 (tile 14x32, KC 256,
             MC 252, A packed, parallel)  # aten.gelu at models.py:91

The kernel part comes from the same compile carried on to the kernels stage: the GEMM kernel
function the op became (its register tile, cache blocks, packing), the k-th kernel call made
from a source location going to the k-th op of that location (convolutions that took the
Winograd path show the GEMM of their transformed tiles); the origin is the aten op and the
user's source line the location names.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ember.dialect.ops import Conv2d, Gemm, QDepthwiseConv2d, QGemm
from ember.kit.ir_queries import program_steps, public_function, walk_ops
from ember.kit.op_costs import op_cost
from ember.source_locations import describe_origin, user_source_line

#: Ops that end a run of kernel calls (another op's code begins).
_OPS_BETWEEN = ("linalg.generic", "memref.copy", "linalg.fill", "linalg.transpose")
#: Ops that become GEMM kernel calls, and how many each (the others share their source line,
#: not their kernel).
_CALLS = {"ember.gemm": 1, "ember.qgemm": 1, "ember.conv2d": 1, "ember.attention": 2}


def step_table(module) -> List[Dict[str, Any]]:
    """What a profile reports per step of the public function at the graph stage (the steps
    ember-label-kernels numbers, in order): the op, its fused epilogue, its pseudo-code line,
    its origin and its cost (ember.kit.op_costs), as JSON-ready dicts."""
    rows = []
    for number, (op, (text, location)) in enumerate(zip(program_steps(public_function(module)),
                                                        graph_lines(module))):
        flops, moved = op_cost(op)
        rows.append({"step": number, "op": op.operation.name, "epilogue": _epilogue(op),
                     "text": text, "origin": describe_origin(location), "flops": flops,
                     "bytes": moved})
    return rows


def format_explanation(lines: List[tuple], module_at_kernels, target,
                       fallbacks: Sequence[tuple] = ()) -> str:
    """The explanation text: `lines` (from `graph_lines`) with the kernels the same module
    got by the kernels stage (`module_at_kernels`) and each op's origin (the header: the
    target's facts, a TargetInfo, and the threads parallel kernels run on), then the ATen ops
    that took torch-mlir's linalg fallback (`fallbacks`, the frontend's (aten op, location
    text, why)): they appear above as linalg-made steps, not as ember ops."""
    kernels = _kernels_by_location(module_at_kernels)
    threads = (f"parallel kernels on OpenMP threads ({target.cores} cores planned; "
               f"EMBER_NUM_THREADS or num_threads sets them)") if target.openmp else \
        "no threads" if not target.is_gpu else f"{target.arch} blocks"
    vectors = f", {target.vector_lanes} f32 lanes" if target.vector_lanes else ""
    out = [f"# ember.explain: {len(lines)} ops, target {target.spec} ({target.cpu or target.kind}"
           f"{vectors}), {threads}"]
    for number, (text, location) in enumerate(lines):
        op = text.split(" = ")[1].split("(")[0]
        calls = kernels.get(location, [])
        # the k-th op of a source line took that line's k-th kernel calls (attention: two,
        # its QK^T and PV products)
        taken = [calls.pop(0) for _ in range(min(len(calls), _CALLS.get(op, 0)))]
        kernel = ", ".join(taken)
        out.append(f"{number:4d}  {text}" + (f"  kernel {kernel}" if kernel else "") +
                   f"  # {describe_origin(location)}")
    if fallbacks:
        out.append(f"# {len(fallbacks)} op(s) took torch-mlir's linalg fallback (generic loops, "
                   f"no ember fusion or kernel):")
        out.extend(f"#   {op} at {user_source_line(location) or 'an unknown line'}: {why}"
                   for op, location, why in fallbacks)
    return "\n".join(out)


def graph_lines(module, symbolic_shapes: Optional[Mapping[str, Sequence[tuple]]] = None,
                input_shapes: Sequence[tuple] = ()) -> List[tuple]:
    """(pseudo-code, location text) per op of the public function of a module at the graph
    stage, in execution order: what `format_explanation` numbers. Dynamic dims are named (`s0`,
    `s0*128`) from the inputs' `input_shapes` and, for results, the frontend's
    `symbolic_shapes` of the aten call at the op's origin; `?` where neither tells."""
    fn = public_function(module)
    block = fn.regions[0].blocks[0]
    names: Dict[Any, str] = {arg: f"%arg{i}" for i, arg in enumerate(block.arguments)}
    names.update((op.results[0], "weight") for op in block.operations
                 if op.operation.name == "ember.weight")
    shown = {arg: _type(arg.type, [shape]) for arg, shape in zip(block.arguments, input_shapes)}
    lines = []
    for op in program_steps(fn):
        name = op.operation.name
        candidates = (symbolic_shapes or {}).get(describe_origin(str(op.location)), ())
        # else the first operand's names, dim by dim (a GEMM's or elementwise op's leading dims)
        like = _dims(shown[op.operands[0]]) if len(op.operands) and op.operands[0] in shown \
            else ()
        for i, result in enumerate(op.results):
            names[result] = f"%{len(lines)}" + (f"#{i}" if len(op.results) > 1 else "")
            shown[result] = _type(result.type, candidates, like)
        operands = ", ".join(f"{names.get(v, '?')} {shown.get(v) or _type(v.type)}"
                             for v in op.operands)
        results = ", ".join(shown[r] for r in op.results)
        text = f"{names[op.results[0]] if op.results else ''} = {name}({operands}) -> {results}"
        epilogue = _epilogue(op)
        lines.append((text + (f"  epilogue {epilogue}" if epilogue else ""), str(op.location)))
    return lines


def _epilogue(op) -> str:
    """What a GEMM or convolution fused: bias, activation, residual, low-bit weights."""
    attrs = op.operation.attributes
    parts = []
    view = _EPILOGUE_OPS.get(op.operation.name)
    if view is not None:
        present = {name for name, value in view(op).operand_values().items() if value is not None}
        parts += [name for name in ("bias", "residual") if name in present]
        if op.operation.name == "ember.gemm" and "rhs_scale" in present:
            parts.append(f"int{attrs['rhs_bits'].value} weights")
    if "activation" in attrs:
        activation = str(attrs["activation"]).strip('"')
        if activation != "none":
            parts.insert(1 if parts[:1] == ["bias"] else 0, activation)
    return "+".join(parts)


#: Ops with a fused epilogue, and their views (which name their operands).
_EPILOGUE_OPS = {cls.op_name: cls for cls in (Gemm, QGemm, Conv2d, QDepthwiseConv2d)}


def _kernels_by_location(module) -> Dict[str, List[str]]:
    """Location text -> "name (schedule)" of the GEMM kernel calls made from it, in program
    order (one source line run for several layers makes several)."""
    from ember.kit.gemm_kernel_spec import KERNEL_ATTR
    schedules = {}
    for op in module.body.operations:
        if op.operation.name == "func.func" and KERNEL_ATTR in op.attributes:
            name = str(op.attributes["sym_name"]).strip('"')
            schedules[name] = _schedule_text(op)
    runs: Dict[str, List[list]] = {}        # location -> [[callee, consecutive calls]]
    previous = None
    for op in walk_ops(public_function(module).operation):
        if op.operation.name == "func.call":
            callee = str(op.attributes["callee"]).lstrip("@")
            if callee in schedules:
                calls = runs.setdefault(str(op.location), [])
                if previous == (callee, str(op.location)):      # the next call of one run
                    calls[-1][1] += 1
                else:
                    calls.append([callee, 1])
                previous = (callee, str(op.location))
        elif op.operation.name.startswith("ember.") or op.operation.name in _OPS_BETWEEN:
            previous = None
    # A run of one kernel called 16 times from one op: the Winograd F(2x2, 3x3) products of a
    # convolution's transformed tiles.
    return {location: [f"{callee}{f' x{count} (Winograd tiles)' if count > 1 else ''} "
                       f"({schedules[callee]})" for callee, count in calls]
            for location, calls in runs.items()}


def _schedule_text(fn) -> str:
    attrs = fn.attributes
    if "ember.gemm_schedule" not in attrs:
        return "reference"
    s = {a.name: a.attr for a in attrs["ember.gemm_schedule"]}
    spec = {a.name: a.attr for a in attrs["ember.gemm_kernel"]}

    def value(d, key):
        return str(d[key]).split(":")[0].strip() if key in d else "?"
    how = "implicit im2col, " if "patches" in spec else ""
    how += "i16 pairs, " if value(spec, "operands").strip('"') == "i16" else ""
    how += f"{value(spec, 'weights').strip(chr(34))} weights, " if "weights" in spec else ""
    return (f"{how}tile {value(s, 'mr')}x{value(s, 'nr')}, KC {value(s, 'kc')}, "
            f"MC {value(s, 'mc')}, A {'packed' if value(s, 'pack_a') == 'true' else 'in place'}"
            f"{', parallel' if value(s, 'parallel') == 'true' else ''}")


def _dims(shown: str) -> tuple:
    """"[s0,128] f32" -> ("s0", "128")."""
    return tuple(shown.split("]")[0].lstrip("[").split(",")) if shown.startswith("[") else ()


def _type(t, shapes: Sequence[tuple] = (), like: tuple = ()) -> str:
    """tensor<?x128x256xf32> -> "[?,128,256] f32", or "[s0,128,256] f32" with the first of
    `shapes` (symbolic: dims as ints or expression strings) that fits its static dims, else
    with the dims of `like` (same rank) where it has a name."""
    text = str(t)
    if not text.startswith("tensor<"):
        return text
    *dims, element = text[len("tensor<"):-1].split("x")
    if "?" in dims:
        fitting = [shape for shape in shapes if len(shape) == len(dims) and all(
            d == "?" or d == str(s) for d, s in zip(dims, shape))]
        if fitting:
            dims = [str(s) if d == "?" else d for d, s in zip(dims, fitting[0])]
        elif len(like) == len(dims):
            dims = [s if d == "?" else d for d, s in zip(dims, like)]
    return f"[{','.join(dims)}] {element}"
